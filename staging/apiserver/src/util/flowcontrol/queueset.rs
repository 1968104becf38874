//! One priority level's seats and queues (upstream `fairqueuing/queueset`): requests run
//! while seats are free; otherwise, for a queuing level, they wait in the shortest queue
//! of a hand dealt from their flow's hash (shuffle sharding), and queues take turns
//! when seats come free, so one heavy flow cannot starve the others.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queuing {
    pub queues: usize,
    pub hand_size: usize,
    pub queue_length_limit: usize,
}

/// Why a request was turned away (the `reason` label of the rejection metric).
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    ConcurrencyLimit,
    QueueFull,
    TimeOut,
}

impl Rejected {
    pub fn reason(&self) -> &'static str {
        match self {
            Rejected::ConcurrencyLimit => "concurrency-limit",
            Rejected::QueueFull => "queue-full",
            Rejected::TimeOut => "time-out",
        }
    }
}

struct Waiter {
    id: u64,
    seats: usize,
    wake: oneshot::Sender<()>,
}

#[derive(Default)]
struct State {
    executing_seats: usize,
    executing_requests: usize,
    queues: Vec<VecDeque<Waiter>>,
    /// The queue whose turn is next when seats come free.
    next: usize,
    next_id: u64,
}

impl State {
    fn waiting(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }
}

pub struct QueueSet {
    /// Seats this level may use at once.
    pub limit: usize,
    pub queuing: Option<Queuing>,
    state: Mutex<State>,
}

/// Seats held by a running request; dropping it hands them to the next waiter.
pub struct Seats {
    set: Arc<QueueSet>,
    seats: usize,
}

impl Drop for Seats {
    fn drop(&mut self) {
        let mut st = self.set.state.lock().unwrap();
        st.executing_seats -= self.seats;
        st.executing_requests -= 1;
        self.set.dispatch(&mut st);
    }
}

/// Upstream's shuffle-sharding dealer: `hand_size` distinct queues drawn from the hash.
fn deal(mut hash: u64, queues: usize, hand_size: usize) -> Vec<usize> {
    let mut hand: Vec<usize> = Vec::with_capacity(hand_size);
    for i in 0..hand_size.min(queues) {
        let remaining = (queues - i) as u64;
        let mut card = (hash % remaining) as usize;
        hash /= remaining;
        // Index among the queues not dealt yet.
        let mut sorted = hand.clone();
        sorted.sort_unstable();
        for taken in sorted {
            if card >= taken {
                card += 1;
            }
        }
        hand.push(card);
    }
    hand
}

impl QueueSet {
    pub fn new(limit: usize, queuing: Option<Queuing>) -> Arc<Self> {
        let queues = queuing.map_or(0, |q| q.queues);
        Arc::new(QueueSet {
            limit: limit.max(1),
            queuing,
            state: Mutex::new(State {
                queues: (0..queues).map(|_| VecDeque::new()).collect(),
                ..Default::default()
            }),
        })
    }

    /// (executing requests, executing seats, waiting requests).
    pub fn usage(&self) -> (usize, usize, usize) {
        let st = self.state.lock().unwrap();
        (st.executing_requests, st.executing_seats, st.waiting())
    }

    /// Starts waiters, queue by queue in turn, while their seats fit.
    fn dispatch(&self, st: &mut State) {
        let n = st.queues.len();
        let mut idle_rounds = 0;
        while idle_rounds < n {
            let q = st.next % n.max(1);
            st.next = (q + 1) % n;
            let fits = st.queues[q].front().is_some_and(|w| {
                st.executing_seats + w.seats <= self.limit || st.executing_seats == 0
            });
            if !fits {
                idle_rounds += 1;
                continue;
            }
            idle_rounds = 0;
            let w = st.queues[q].pop_front().unwrap();
            if w.wake.send(()).is_ok() {
                st.executing_seats += w.seats;
                st.executing_requests += 1;
            }
        }
    }

    /// Seats for a request of this flow, waiting at most `max_wait` in a queue.
    pub async fn acquire(
        self: &Arc<Self>,
        seats: usize,
        flow_hash: u64,
        max_wait: Duration,
    ) -> Result<Seats, Rejected> {
        let seats = seats.clamp(1, self.limit);
        let (id, mut rx) = {
            let mut st = self.state.lock().unwrap();
            if st.waiting() == 0 && st.executing_seats + seats <= self.limit {
                st.executing_seats += seats;
                st.executing_requests += 1;
                return Ok(Seats {
                    set: self.clone(),
                    seats,
                });
            }
            let Some(q) = self.queuing else {
                return Err(Rejected::ConcurrencyLimit);
            };
            let hand = deal(flow_hash, q.queues, q.hand_size);
            let shortest = hand
                .into_iter()
                .min_by_key(|&i| st.queues[i].len())
                .unwrap_or(0);
            if st.queues[shortest].len() >= q.queue_length_limit {
                return Err(Rejected::QueueFull);
            }
            let (tx, rx) = oneshot::channel();
            st.next_id += 1;
            let id = st.next_id;
            st.queues[shortest].push_back(Waiter {
                id,
                seats,
                wake: tx,
            });
            (id, rx)
        };
        let granted = Seats {
            set: self.clone(),
            seats,
        };
        // The receiver outlives the timeout so a dispatch racing with it still lands.
        match tokio::time::timeout(max_wait, &mut rx).await {
            Ok(Ok(())) => Ok(granted),
            _ => {
                let mut st = self.state.lock().unwrap();
                let mut found = false;
                for q in st.queues.iter_mut() {
                    if let Some(pos) = q.iter().position(|w| w.id == id) {
                        q.remove(pos);
                        found = true;
                    }
                }
                drop(st);
                if found {
                    #[expect(
                        clippy::mem_forget,
                        reason = "never dispatched: the guard holds no seats to give back"
                    )]
                    std::mem::forget(granted);
                    Err(Rejected::TimeOut)
                } else {
                    // Dispatched just as the wait ran out: the seats are ours.
                    Ok(granted)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_are_distinct_queues() {
        for hash in [0u64, 1, 12345, u64::MAX] {
            let mut hand = deal(hash, 8, 4);
            assert_eq!(hand.len(), 4);
            assert!(hand.iter().all(|&q| q < 8));
            hand.sort_unstable();
            hand.dedup();
            assert_eq!(hand.len(), 4, "{hash}");
        }
    }

    #[tokio::test]
    async fn queues_then_rejects() {
        let set = QueueSet::new(
            1,
            Some(Queuing {
                queues: 1,
                hand_size: 1,
                queue_length_limit: 1,
            }),
        );
        let first = set.acquire(1, 1, Duration::from_secs(5)).await.unwrap();
        let waiter = {
            let set = set.clone();
            tokio::spawn(async move { set.acquire(1, 2, Duration::from_secs(5)).await.is_ok() })
        };
        while set.usage().2 == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            set.acquire(1, 3, Duration::from_secs(5)).await.err(),
            Some(Rejected::QueueFull)
        );
        drop(first);
        assert!(waiter.await.unwrap());
        assert_eq!(set.usage(), (0, 0, 0));
        let held = set.acquire(1, 1, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            set.acquire(1, 1, Duration::from_millis(10)).await.err(),
            Some(Rejected::TimeOut)
        );
        drop(held);
        assert_eq!(set.usage(), (0, 0, 0));
    }
}
