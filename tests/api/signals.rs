//! Stopping a `roster serve` process (the compiled binary) with SIGTERM, as Docker and
//! Kubernetes do, or SIGINT (Ctrl-C): it stops accepting, finishes what is in flight, says so
//! and exits 0. (Open websockets get their close frame: `subscriptions.rs`.)

use crate::helpers::fresh_database;
use crate::helpers::replica::Replica;
use serde_json::json;

#[tokio::test]
async fn sigterm_stops_a_replica_cleanly_and_says_so() {
    let url = fresh_database().await;
    let mut replica = Replica::start(&url, &[]).await;
    // Serving before the signal.
    let before = replica.gql(None, "{ viewer { user { id } } }", json!({})).await;
    assert!(before.get("errors").is_none(), "{before}");
    let exit = replica.terminate(std::time::Duration::from_secs(20)).expect("the replica exits after SIGTERM");
    assert!(exit.success(), "exit status after SIGTERM: {exit:?}\n{}", replica.log());
    let log = replica.log();
    assert!(log.contains("SIGTERM: stopping"), "no stop line in the log:\n{log}");
    assert!(log.contains("roster stopped"), "no stopped line in the log:\n{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log that is not a terminal:\n{log}");
}

/// SIGTERM (Docker, Kubernetes) and SIGINT (Ctrl-C) while a request is in flight: the server
/// stops accepting connections at once, answers the request in flight in full, then exits 0.
/// The request is held in flight deterministically: its headers are sent, its body only after
/// the signal (the server cannot answer before it has the body).
#[tokio::test(flavor = "multi_thread")]
async fn a_stop_signal_refuses_new_connections_and_finishes_the_request_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = fresh_database().await;
    for signal in ["TERM", "INT"] {
        let mut replica = Replica::start(&url, &[]).await;
        let host = replica.address.trim_start_matches("http://").to_string();
        let body = r#"{"query":"{ __typename }"}"#;
        let mut in_flight = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = format!("POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
        in_flight.write_all(head.as_bytes()).await.unwrap();
        in_flight.write_all(&body.as_bytes()[..5]).await.unwrap();
        // The server has the request (its headers and part of its body) before the signal.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        replica.signal(signal);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::net::TcpStream::connect(&host).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "SIG{signal}: still accepting connections");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(replica.exited(std::time::Duration::ZERO).is_none(), "SIG{signal}: exited with a request in flight");
        in_flight.write_all(&body.as_bytes()[5..]).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(std::time::Duration::from_secs(10), in_flight.read_to_string(&mut answer)).await.expect("the answer comes").unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "SIG{signal}: {answer}");
        assert!(answer.ends_with(r#"{"data":{"__typename":"QueryRoot"}}"#), "SIG{signal}: {answer}");
        let exit = replica.exited(std::time::Duration::from_secs(20)).expect("the replica exits once the request is answered");
        assert!(exit.success(), "exit status after SIG{signal}: {exit:?}\n{}", replica.log());
        assert!(replica.log().contains(&format!("SIG{signal}: stopping")), "{}", replica.log());
    }
}
