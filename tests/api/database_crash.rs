//! The database crashing under a command load while the server keeps running. Projector rounds
//! commit asynchronously (`crates/roster-projections/src/projector`: their rows are derived
//! from events already flushed, and roll back with their checkpoints), and appends commit
//! durably: after the crash, recovery and the server's reconnection, every command answered OK
//! is in the log once and listed, and the read models equal a fresh rebuild.

use crate::cluster::Cluster;
use crate::helpers::replica::{assert_equal_to_rebuild, wait_caught_up, Replica};
use crate::replicas::{assert_one_audit_entry_per_account_event, try_invite};
use crate::helpers::ApiClient;
use serde_json::json;
use std::collections::BTreeMap;
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
    let listed = server
        .ok(Some(&ada.token), "query($id: ID!) { account(id: $id) { invitations(first: 500) { nodes { email status } } } }", json!({ "id": ada.account_id }))
        .await;
    let listed: BTreeMap<&str, &str> = listed["account"]["invitations"]["nodes"].as_array().unwrap().iter().map(|i| (i["email"].as_str().unwrap(), i["status"].as_str().unwrap())).collect();
    for email in &answered {
        let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MemberInvited' AND payload->'MemberInvited'->>'email' = $1")
            .bind(email)
            .fetch_one(&server.pool)
            .await
            .unwrap();
        assert_eq!(logged, 1, "{email} was answered OK but is not in the log once");
        assert_eq!(listed.get(email.as_str()), Some(&"PENDING"), "{email} was answered OK but is not listed");
    }
    assert_one_audit_entry_per_account_event(&server.pool).await;
    assert_equal_to_rebuild(&server).await;
}
