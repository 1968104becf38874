//! The client-side token bucket (upstream `util/flowcontrol`): `qps` tokens a second, at
//! most `burst` saved up; a request waits for its token.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// `qps <= 0` means no limit.
    pub fn new(qps: f32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            qps: f64::from(qps),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until a request may go.
    pub async fn wait(&self) {
        if self.qps <= 0.0 {
            return;
        }
        let delay = {
            let mut st = self.state.lock().unwrap();
            let now = Instant::now();
            let refill = now.duration_since(st.1).as_secs_f64() * self.qps;
            st.0 = (st.0 + refill).min(self.burst);
            st.1 = now;
            st.0 -= 1.0;
            if st.0 >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-st.0 / self.qps)
            }
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn burst_then_qps() {
        let rl = RateLimiter::new(20.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            rl.wait().await;
        }
        assert!(start.elapsed() < Duration::from_millis(40));
        // The fourth waits for a token: 1/20 s.
        rl.wait().await;
        assert!(start.elapsed() >= Duration::from_millis(45));
    }
}
