//! The load balancer an HA kubeadm cluster puts in front of its apiservers
//! (`controlPlaneEndpoint`), as haproxy in TCP mode would be set up for it: connections
//! spread round-robin over the backends, and a backend that refuses or does not answer
//! within a second is skipped, so a dead apiserver costs a client nothing but a retry
//! on the next backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Starts the balancer in network namespace `netns` (a name under /var/run/netns) on a
/// thread of its own, listening on `listen`; it runs until the test process exits.
pub fn start_in(netns: &str, listen: SocketAddr, backends: Vec<SocketAddr>) {
    let netns = netns.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        crate::netns::NetNs::enter_by_name(&netns);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind(listen).await.expect("balancer listen");
            ready_tx.send(()).unwrap();
            let next = Arc::new(AtomicUsize::new(0));
            let backends = Arc::new(backends);
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let (next, backends) = (next.clone(), backends.clone());
                tokio::spawn(async move {
                    let first = next.fetch_add(1, Ordering::Relaxed);
                    for i in 0..backends.len() {
                        let to = backends[(first + i) % backends.len()];
                        let connect = TcpStream::connect(to);
                        if let Ok(Ok(mut upstream)) =
                            tokio::time::timeout(Duration::from_secs(1), connect).await
                        {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            return;
                        }
                    }
                });
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the balancer did not start");
}
