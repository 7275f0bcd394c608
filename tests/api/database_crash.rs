//! The database crashing under a command load while the server keeps running. Projector rounds
//! commit asynchronously (`crates/roster-projections/src/projector`: their rows are derived
//! from events already flushed, and roll back with their checkpoints), and appends commit
//! durably: after the crash, recovery and the server's reconnection, every command answered OK
//! is in the log once and listed, and the read models equal a fresh rebuild.

use crate::cluster::Cluster;
use crate::helpers::replica::{wait_caught_up, Replica};
use crate::replicas::{assert_answered_invitations_kept, try_invite, InviteLoad};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn a_database_crash_loses_no_answered_command_and_the_read_models_recover() {
    let cluster = Cluster::start().expect("a PostgreSQL cluster of this test's own");
    let url = cluster.url().to_string();
    let server = Replica::start(&url, &[]).await;
    let ada = server.sign_up("ada@example.com", "Acme").await;
    // Answers stay OK until the database is gone.
    let load = InviteLoad::start(&server, &ada, true);
    load.enough.notified().await;
    cluster.crash().expect("crash the database");
    let mut answered = load.finish().await;
    cluster.restart().expect("restart the database");

    // The same server carries on once it has connections again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let after = try_invite(&server, &ada.token, &ada.account_id, "after@example.com").await;
        if after.as_ref().is_some_and(|r| r.get("errors").is_none()) {
            answered.push("after@example.com".to_string());
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover from the database restart: {after:?}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_caught_up(&url).await;
    assert!(answered.len() > 40);
    assert_answered_invitations_kept(&server, &ada.token, &ada.account_id, &answered).await;
}
