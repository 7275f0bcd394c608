//! The database crashing under a command load while the server keeps running. Projector rounds
//! commit asynchronously (`crates/roster-projections/src/projector`: their rows are derived
//! from events already flushed, and roll back with their checkpoints), and appends commit
//! durably: after the crash, recovery and the server's reconnection, every command answered OK
//! is in the log once and listed, and the read models equal a fresh rebuild.

use crate::cluster::Cluster;
use crate::helpers::replica::{wait_caught_up, Replica};
use crate::helpers::ApiClient;
use crate::replicas::{assert_answered_invitations_kept, try_invite};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn a_database_crash_loses_no_answered_command_and_the_read_models_recover() {
    let cluster = Cluster::start().expect("a PostgreSQL cluster of this test's own");
    let url = cluster.url().to_string();
    let server = Replica::start(&url, &[]).await;
    let ada = server.sign_up("ada@example.com", "Acme").await;
    let answered = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    // 8 clients invite distinct emails until an answer is not OK, recording every OK.
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (api, ada, answered, count, enough) = (ApiClient::clone(&server), ada.clone(), answered.clone(), count.clone(), enough.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let email = format!("c{c}.{i}@example.com");
                    let Some(response) = try_invite(&api, &ada.token, &ada.account_id, &email).await else { return };
                    if response.get("errors").is_some() {
                        return;
                    }
                    answered.lock().unwrap().push(email);
                    if count.fetch_add(1, Ordering::SeqCst) + 1 == 40 {
                        enough.notify_one();
                    }
                }
            })
        })
        .collect();
    enough.notified().await;
    cluster.crash().expect("crash the database");
    for client in clients {
        client.await.unwrap();
    }
    cluster.restart().expect("restart the database");

    // The same server carries on once it has connections again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let after = try_invite(&server, &ada.token, &ada.account_id, "after@example.com").await;
        if after.as_ref().is_some_and(|r| r.get("errors").is_none()) {
            answered.lock().unwrap().push("after@example.com".to_string());
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover from the database restart: {after:?}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_caught_up(&url).await;
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() > 40);
    assert_answered_invitations_kept(&server, &ada.token, &ada.account_id, &answered).await;
}
