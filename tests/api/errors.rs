//! The error codes that need a broken or contended world to appear: `CONFLICT` once the
//! bounded retries run out, and `INTERNAL` that names a request id and hides the cause. Also
//! the metadata every event carries.

use crate::helpers::{code, spawn_app};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn conflict_after_bounded_retries_appends_nothing() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    // Make every append to this account's stream look like a concurrent writer got there
    // first (the unique violation the store maps to an expected-version conflict).
    sqlx::query(&format!(
        "CREATE FUNCTION always_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.aggregate_id = '{}' THEN
             RAISE unique_violation USING CONSTRAINT = 'events_pkey', MESSAGE = 'simulated concurrent append';
           END IF;
           RETURN NEW;
         END $$",
        admin.account_id
    ))
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("CREATE TRIGGER always_conflict BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION always_conflict()")
        .execute(&app.pool)
        .await
        .unwrap();
    let before = app.event_count().await;
    let response = app.invite(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    app.assert_refused(&response, "CONFLICT", before).await;
    // Other streams are unaffected.
    app.sign_up("bob@example.com", "Bob's").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_errors_name_the_request_id_and_hide_the_cause() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    sqlx::query("ALTER TABLE users RENAME TO users_broken").execute(&app.pool).await.unwrap();
    let answer = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&admin.token)
        .header("x-request-id", "req-12345")
        .json(&json!({ "query": "{ viewer { user { email } } }" }))
        .send()
        .await
        .unwrap();
    // The server's request id, echoed in the header; never the client's.
    let request_id = answer.headers()["x-request-id"].to_str().unwrap().to_string();
    let response: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(code(&response), Some("INTERNAL"), "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&request_id) && !message.contains("req-12345"), "{message}");
    assert!(!message.contains("users") && !message.contains("relation"), "leaks internals: {message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_carries_actor_request_time_ip_and_user_agent() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let headers = [("x-request-id", "invite-1"), ("user-agent", "roster-tests/1.0")];
    let query = "mutation($a: ID!) { inviteUser(input: {accountId: $a, email: \"g@example.com\", role: GUEST}) { inviteLink } }";
    let response = app.gql_with_headers(Some(&admin.token), &headers, query, json!({ "a": admin.account_id })).await;
    assert!(response.get("errors").is_none(), "{response}");
    let metadata: Value = sqlx::query_scalar("SELECT metadata FROM events WHERE event_type = 'MemberInvited'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(metadata["actor_user_id"], admin.user_id.as_str());
    assert!(uuid::Uuid::parse_str(metadata["request_id"].as_str().unwrap()).is_ok(), "{metadata}");
    assert_eq!(metadata["client_request_id"], "invite-1");
    assert_eq!(metadata["ip"], "127.0.0.1");
    assert_eq!(metadata["user_agent"], "roster-tests/1.0");
    let occurred: chrono::DateTime<chrono::Utc> = metadata["occurred_at"].as_str().unwrap().parse().unwrap();
    assert!((chrono::Utc::now() - occurred).num_seconds().abs() < 60);
    // Every event has the required keys.
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE NOT (metadata ? 'actor_user_id' AND metadata ? 'request_id' AND metadata ? 'occurred_at')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(missing, 0);
}
