//! Connections as a hostile client holds them: request heads trickled a byte at a time
//! (slowloris) and many connections from one IP (`crates/roster-api/src/serve.rs`).

use crate::helpers::{spawn_app_with, TestApp};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap()
}

/// Sends a `GET /healthz` on `stream` and reads its answer's status line; `None` when the
/// server closed the connection instead.
async fn health(stream: &mut TcpStream) -> Option<String> {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: roster\r\n\r\n").await.ok()?;
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await.expect("an answer or a close").ok()?;
    (read > 0).then(|| String::from_utf8_lossy(&answer[..read]).lines().next().unwrap_or_default().to_string())
}

/// Whether the server closes `stream` (read gives end-of-file or an error) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(within, stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_trickling_its_request_head_is_disconnected() {
    let app = spawn_app_with(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let mut slow = connect(&app).await;
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: roster\r\n").await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    // One more header line every 200 ms, as slowloris does, for up to 8 s.
    while started.elapsed() < Duration::from_secs(8) {
        if slow.write_all(b"X-Trickle: a\r\n").await.is_err() || closed_within(&mut slow, Duration::from_millis(200)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a request head trickled for 8 s kept its connection (header read timeout 1 s)");
    // Everyone else is served as before.
    let mut other = connect(&app).await;
    assert_eq!(health(&mut other).await.as_deref(), Some("HTTP/1.1 200 OK"));
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_per_ip_cap_are_closed_and_a_freed_slot_is_reusable() {
    let app = spawn_app_with(|c| c.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&app).await;
        assert_eq!(health(&mut stream).await.as_deref(), Some("HTTP/1.1 200 OK"));
        held.push(stream);
    }
    let mut fourth = connect(&app).await;
    assert!(closed_within(&mut fourth, Duration::from_secs(5)).await, "a fourth connection from one IP was kept");
    // Closing one gives its slot back (once the server has seen the close).
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = connect(&app).await;
        if health(&mut again).await.as_deref() == Some("HTTP/1.1 200 OK") {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The held connections still work.
    assert_eq!(health(&mut held[0]).await.as_deref(), Some("HTTP/1.1 200 OK"));
}
