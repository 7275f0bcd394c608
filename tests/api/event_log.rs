//! Issue "an event log others can trust": gap-free global order under concurrent writers,
//! checkpointed projections that survive a failure mid-batch, rebuilds equal to incremental
//! read models, snapshots, upcasting, and the GraphQL feed.

use crate::helpers::{code, fresh_database, read_models, roster, roster_output, spawn_app, Signed, TestApp, OPERATOR_TOKEN};
use futures::StreamExt;
use roster_domain::{Account, AccountEvent, EventMetadata};
use roster_projections::{rebuild, Projection, Projector};
use roster_store::{reader, Append, EventFilter, EventStore};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// Some of everything: members, invitations, resends, cancels, role changes, removals.
async fn busy_account(app: &TestApp) -> Signed {
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (engineer, engineer_id) = app.add_member(&admin, "sec@example.com", "SECURITY_ENGINEER").await;
    let (dev_invite, _) = app.invite_ok(&engineer, &admin.account_id, "dev@example.com", "DEVELOPER").await;
    app.resend(&admin.token, &dev_invite).await;
    let (to_cancel, _) = app.invite_ok(&admin.token, &admin.account_id, "gone@example.com", "GUEST").await;
    app.cancel(&admin.token, &to_cancel).await;
    let (_, guest_id) = app.add_member(&admin, "gus@example.com", "GUEST").await;
    app.change_role(&admin.token, &admin.account_id, &guest_id, "DEVELOPER").await;
    app.remove_member(&admin.token, &admin.account_id, &engineer_id).await;
    admin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tailing_reader_sees_every_event_of_sixteen_concurrent_writers_once_in_order() {
    let url = fresh_database().await;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(40).connect(&url).await.unwrap();
    roster_store::db::migrate(&pool).await.unwrap();
    const WRITERS: usize = 16;
    const APPENDS: usize = 12;

    let follower = tokio::spawn(reader::follow(&reader::Tail::spawn(pool.clone()), pool.clone(), 0, EventFilter::default()).take(WRITERS * APPENDS).collect::<Vec<_>>());
    let writers = (0..WRITERS).map(|w| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let stream = uuid::Uuid::new_v4();
            let mut committed = Vec::new();
            let mut version = 0;
            let mut attempt = 0u64;
            while committed.len() < APPENDS {
                attempt += 1;
                let event = AccountEvent::AccountCreated { name: format!("w{w}-{attempt}"), created_by: stream.into(), created_at: chrono::Utc::now() };
                let append = Append::new::<Account>(stream.to_string(), version, &[event]).unwrap();
                let mut tx = pool.begin().await.unwrap();
                // Random delay before the append and before commit: commits land out of the
                // order in which transactions started.
                tokio::time::sleep(Duration::from_millis((attempt * 7 + w as u64 * 13) % 9)).await;
                EventStore::append(&mut tx, &[append], &EventMetadata::new(None, "test", chrono::Utc::now())).await.unwrap();
                tokio::time::sleep(Duration::from_millis((attempt * 5 + w as u64 * 3) % 7)).await;
                if attempt.is_multiple_of(5) {
                    tx.rollback().await.unwrap(); // aborted appends leave no event behind
                    continue;
                }
                tx.commit().await.unwrap();
                version += 1;
                committed.push((stream.to_string(), version as i64));
            }
            committed
        })
    });
    let mut expected = HashSet::new();
    for writer in futures::future::join_all(writers).await {
        expected.extend(writer.unwrap());
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), follower).await.expect("follower finished").unwrap();
    let positions: Vec<i64> = seen.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "not in strictly increasing order");
    let seen_keys: HashSet<(String, i64)> = seen.iter().map(|e| (e.aggregate_id.clone(), e.sequence)).collect();
    assert_eq!(seen_keys.len(), seen.len(), "duplicates");
    assert_eq!(seen_keys, expected, "reader missed or invented events");
    // And a catch-up read afterwards agrees with the live one.
    let all = reader::read_after(&pool, 0, 10_000, EventFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), positions);
}

#[tokio::test(flavor = "multi_thread")]
async fn failure_between_read_model_write_and_commit_loses_nothing() {
    let app = spawn_app().await;
    let admin = app.sign_up("first@example.com", "First").await;
    for projection in Projection::ALL {
        app.projector().fail_next_batch_before_commit(projection);
        app.invite_ok(&admin.token, &admin.account_id, &format!("{}@example.com", projection.name()), "GUEST").await;
        assert!(!app.projector().failure_armed(), "the injected failure did not fire for {}", projection.name());
    }
    busy_account(&app).await;
    let incremental = read_models(&app.pool).await;
    rebuild::rebuild(&app.pool, &[]).await.unwrap();
    assert_eq!(read_models(&app.pool).await, incremental, "after failures, read models differ from a fresh rebuild");
    assert_eq!(app.members(&admin.token, &admin.account_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rebuild_equals_incremental_row_by_row_and_status_reports_no_lag() {
    let app = spawn_app().await;
    let admin = busy_account(&app).await;
    let incremental = read_models(&app.pool).await;
    assert!(incremental.iter().all(|(_, rows)| !rows.is_empty()));
    let reports = rebuild::rebuild(&app.pool, &[Projection::Members, Projection::Invitations, Projection::AuditLog]).await.unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(read_models(&app.pool).await, incremental);
    // The server keeps answering from the swapped-in tables.
    assert_eq!(app.members(&admin.token, &admin.account_id).await.len(), 2);
    let status = Projector::new(app.pool.clone()).status().await.unwrap();
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&app.pool).await.unwrap();
    for s in status {
        assert_eq!((s.checkpoint, s.lag, s.failed_position), (head, 0, None), "{}", s.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_projectors_on_one_database_apply_each_event_once() {
    let app = spawn_app().await;
    let others: Vec<Projector> = (0..3).map(|_| Projector::new(app.pool.clone())).collect();
    let runners: Vec<_> = others
        .iter()
        .cloned()
        .map(|p| tokio::spawn(async move { for _ in 0..200 { let _ = p.catch_up().await; tokio::time::sleep(Duration::from_millis(2)).await; } }))
        .collect();
    busy_account(&app).await;
    futures::future::join_all(runners).await;
    let account_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE account_id IS NOT NULL").fetch_one(&app.pool).await.unwrap();
    let audit_entries: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&app.pool).await.unwrap();
    assert_eq!(audit_entries, account_events);
    let incremental = read_models(&app.pool).await;
    rebuild::rebuild(&app.pool, &[]).await.unwrap();
    assert_eq!(read_models(&app.pool).await, incremental);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projection_that_cannot_apply_an_event_stops_there_and_reports_it() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Account', $1, 100, 'MemberJoined', '1.0.0', '{\"MemberJoined\": {\"nonsense\": true}}', '{}')",
    )
    .bind(&admin.account_id)
    .execute(&app.pool)
    .await
    .unwrap();
    let bad: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&app.pool).await.unwrap();
    let projector = Projector::new(app.pool.clone());
    assert!(projector.catch_up().await.is_err());
    for status in projector.status().await.unwrap() {
        assert_eq!(status.failed_position, Some(bad), "{}", status.name);
        assert_eq!(status.checkpoint, bad - 1, "{} skipped or lost events", status.name);
        assert!(status.last_error.as_deref().is_some_and(|e| e.contains("decode")), "{:?}", status.last_error);
        assert_eq!(status.lag, 1);
    }
    // A rebuild stops at the same event and leaves the live tables and no shadow schema behind.
    let live = read_models(&app.pool).await;
    match rebuild::rebuild(&app.pool, &[]).await {
        Err(roster_projections::ProjectionError::Stopped { name, position, .. }) => assert_eq!((name, position), ("members", bad)),
        other => panic!("rebuild over an undecodable event: {other:?}"),
    }
    assert_eq!(read_models(&app.pool).await, live);
    let leftovers: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild%'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(leftovers, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_plus_tail_loads_the_same_account_as_all_events() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    for i in 0..55 {
        app.invite_ok(&admin.token, &admin.account_id, &format!("p{i}@example.com"), "GUEST").await;
    }
    let snapshot: i64 = sqlx::query_scalar("SELECT last_sequence FROM snapshots WHERE aggregate_id = $1").bind(&admin.account_id).fetch_one(&app.pool).await.unwrap();
    assert_eq!(snapshot, 50);
    let store = EventStore::new(app.pool.clone());
    let with_snapshot = store.load::<Account>(&admin.account_id).await.unwrap();
    let from_events = store.load_from_events::<Account>(&admin.account_id).await.unwrap();
    assert_eq!(with_snapshot.version, 57);
    assert_eq!(with_snapshot.version, from_events.version);
    assert_eq!(with_snapshot.aggregate, from_events.aggregate);
    assert_eq!(with_snapshot.aggregate.invitations.len(), 55);
    // Commands decided on the snapshot still see every invitation.
    let again = app.invite(&admin.token, &admin.account_id, "p3@example.com", "GUEST").await;
    assert_eq!(code(&again), Some("INVITATION_PENDING"));
}

#[tokio::test(flavor = "multi_thread")]
async fn member_invited_version_one_is_upcast_on_read() {
    let app = spawn_app().await;
    let fixture: Vec<Value> = serde_json::from_str(include_str!("../fixtures/account_stream_v1.json")).unwrap();
    let account_id = uuid::Uuid::new_v4().to_string();
    for (i, event) in fixture.iter().enumerate() {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('Account', $1, $2, $3, $4, $5, '{\"actor_user_id\": \"system\", \"request_id\": \"fixture\"}')",
        )
        .bind(&account_id)
        .bind(i as i64 + 1)
        .bind(event["event_type"].as_str())
        .bind(event["event_version"].as_str())
        .bind(&event["payload"])
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let events = reader::read_after(&app.pool, 0, 100, EventFilter { account_id: Some(account_id.parse().unwrap()) }).await.unwrap();
    let invited = events.iter().find(|e| e.event_type == "MemberInvited").unwrap();
    assert_eq!(invited.event_version, "2.0.0");
    let decoded: AccountEvent = invited.decode().unwrap();
    let AccountEvent::MemberInvited { sent_at, expires_at, .. } = decoded else { panic!("{decoded:?}") };
    assert_eq!(sent_at.to_rfc3339(), "2025-01-11T10:00:00+00:00");
    assert_eq!(expires_at - sent_at, chrono::Duration::days(7));
    // The aggregate and the projections read it too.
    let account = EventStore::new(app.pool.clone()).load::<Account>(&account_id).await.unwrap();
    assert_eq!(account.aggregate.invitations.len(), 1);
    assert!(app.projector().wait_for(invited.position, Duration::from_secs(5)).await);
    let expires: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT expires_at FROM invitations WHERE account_id = $1::uuid")
        .bind(&account_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(expires, expires_at);
}

#[tokio::test(flavor = "multi_thread")]
async fn roster_events_output_rebuilds_the_members_graphql_shows() {
    let app = spawn_app().await;
    let admin = busy_account(&app).await;
    app.sign_up("other@example.com", "Other tenant").await;
    let file = std::env::temp_dir().join(format!("roster-events-{}.jsonl", uuid::Uuid::new_v4()));
    let status = roster(&["events", "--after", "0"])
        .env("DATABASE_URL", &app.database_url)
        .stdout(std::fs::File::create(&file).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&file).unwrap();
    let mut members = std::collections::BTreeMap::new();
    let mut last_position = 0i64;
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        for key in ["position", "occurredAt", "accountId", "aggregateType", "aggregateId", "sequence", "type", "version", "payload", "metadata"] {
            assert!(event.get(key).is_some(), "missing {key} in {line}");
        }
        let position: i64 = event["position"].as_str().unwrap().parse().unwrap();
        assert!(position > last_position);
        last_position = position;
        if event["accountId"] != admin.account_id.as_str() {
            continue;
        }
        match serde_json::from_value::<AccountEvent>(event["payload"].clone()).unwrap() {
            AccountEvent::MemberJoined { user_id, email, role, .. } => {
                members.insert(user_id, (email.to_string(), role.as_str().to_string()));
            }
            AccountEvent::MemberRoleChanged { user_id, to, .. } => members.get_mut(&user_id).unwrap().1 = to.as_str().to_string(),
            AccountEvent::MemberRemoved { user_id, .. } => {
                members.remove(&user_id);
            }
            _ => {}
        }
    }
    let mut from_feed: Vec<(String, String)> = members.into_values().collect();
    from_feed.sort();
    assert_eq!(from_feed, app.members(&admin.token, &admin.account_id).await);

    // --account and --limit narrow the feed.
    let output = roster_output(&app.database_url, &["events", "--account", &admin.account_id, "--limit", "3"]);
    let lines: Vec<Value> = String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["accountId"] == admin.account_id.as_str()));
    let _ = std::fs::remove_file(file);
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_events_page_by_position_and_respect_tenants() {
    let app = spawn_app().await;
    let admin = busy_account(&app).await;
    let other = app.sign_up("other@example.com", "Other").await;
    let query = "query($after: String, $a: ID) { events(first: 4, after: $after, accountId: $a) { totalCount pageInfo { hasNextPage endCursor } nodes { position accountId type sequence } } }";
    let mut after = Value::Null;
    let mut positions = Vec::new();
    loop {
        let data = app.ok(Some(&admin.token), query, json!({ "after": after, "a": admin.account_id })).await;
        let page = &data["events"];
        for node in page["nodes"].as_array().unwrap() {
            assert_eq!(node["accountId"], admin.account_id.as_str());
            positions.push(node["position"].as_str().unwrap().parse::<i64>().unwrap());
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            assert_eq!(page["totalCount"].as_i64().unwrap() as usize, positions.len());
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    // Another tenant's admin, a non-admin, and a user without accountId are refused.
    let refused = app.gql(Some(&other.token), query, json!({ "a": admin.account_id })).await;
    assert_eq!(code(&refused), Some("FORBIDDEN"));
    let all = app.gql(Some(&admin.token), query, json!({})).await;
    assert_eq!(code(&all), Some("FORBIDDEN"));
    let anonymous = app.gql(None, query, json!({ "a": admin.account_id })).await;
    assert_eq!(code(&anonymous), Some("UNAUTHENTICATED"));
    // The operator token reads every account.
    let data = app.ok(Some(OPERATOR_TOKEN), "{ events(first: 500) { totalCount nodes { accountId } } }", json!({})).await;
    let accounts: HashSet<&str> = data["events"]["nodes"].as_array().unwrap().iter().filter_map(|n| n["accountId"].as_str()).collect();
    assert!(accounts.contains(admin.account_id.as_str()) && accounts.contains(other.account_id.as_str()));
}
