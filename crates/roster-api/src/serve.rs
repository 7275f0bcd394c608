//! The HTTP server loop: accepts connections and serves the router on each, as `axum::serve`
//! does, plus two bounds it does not offer (hyper runs here with a timer):
//!
//! - a client must send each request's head within [`Config::header_read_timeout`], so
//!   connections that trickle their headers a byte at a time (slowloris) are closed instead
//!   of piling up;
//! - one client IP holds at most [`Config::max_connections_per_ip`] connections; more are
//!   closed as soon as they are accepted (trusted proxies exempt: they carry many clients).
//!
//! Shutdown is `axum::serve`'s: stop accepting, let each connection finish its request in
//! flight, close idle ones. Upgraded websockets are no longer hyper's; `startup` closes them.

use crate::config::Config;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tower::Service;

/// Open connections per client IP, and the cap.
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
    cap: usize,
    exempt: Vec<IpNet>,
}

/// One connection's place under [`PerIp`]'s cap; given back on drop.
struct Slot(Arc<PerIp>, Option<IpAddr>);

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.exempt.iter().any(|net| net.contains(&ip)) {
            return Some(Slot(self.clone(), None));
        }
        let mut open = self.open.lock().expect("connection counts");
        let n = open.entry(ip).or_default();
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Slot(self.clone(), Some(ip)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(ip) = self.1 else { return };
        let mut open = self.0.open.lock().expect("connection counts");
        if let Some(n) = open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes the requests in
/// flight. Each request carries `ConnectInfo<SocketAddr>` of its connection's peer.
///
/// Errors: none so far (a failed `accept`, e.g. out of file descriptors, is logged and
/// retried after a pause).
pub async fn serve(listener: TcpListener, router: Router, config: &Config, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
    let per_ip = Arc::new(PerIp { open: Mutex::default(), cap: config.max_connections_per_ip, exempt: config.trusted_proxies.clone() });
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "cannot accept a connection; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = per_ip.take(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many from this IP");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            // A router is always ready: no `poll_ready` needed.
            router.clone().call(request)
        });
        let connection = graceful.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned());
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
