//! A TCP proxy between a server and PostgreSQL that a test can cut and restore: a database
//! outage on demand, with PostgreSQL itself untouched (other clients keep writing).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; dropping it stops accepting.
pub struct Proxy {
    /// `127.0.0.1:<port>` to connect to instead of the database.
    pub address: String,
    up: Arc<AtomicBool>,
    /// Bumped on each cut: every open connection ends.
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Forwards a free loopback port to `target` (`host:port`).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (accepting, cut_rx) = (up.clone(), cuts.subscribe());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                // While cut, connections are accepted and closed at once: "connection reset".
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let (target, mut cut) = (target.clone(), cut_rx.clone());
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { address, up, cuts, task }
    }

    /// `database_url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, database_url: &str) -> String {
        let (scheme_user, rest) = database_url.split_once("://").map(|(s, r)| (format!("{s}://"), r)).unwrap();
        let (user, host_path) = rest.rsplit_once('@').map_or(("", rest), |(u, h)| (u, h));
        let path = &host_path[host_path.find('/').unwrap()..];
        let user = if user.is_empty() { String::new() } else { format!("{user}@") };
        format!("{scheme_user}{user}{}{path}", self.address)
    }

    /// The outage starts: open connections are closed, new ones refused.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// The outage ends: new connections go through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
