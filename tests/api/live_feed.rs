//! Live feeds: `Subscription.events` over `graphql-transport-ws` and `roster events --follow`
//! catch up and then stream new events, with no gap and no duplicate at the seam.

use crate::helpers::{roster, spawn_app, WsClient};
use serde_json::{json, Value};
use std::io::BufRead;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn subscription_catches_up_then_streams_live_without_gap_or_duplicate() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    app.invite_ok(&admin.token, &admin.account_id, "one@example.com", "GUEST").await;

    let mut ws = WsClient::connect(&app, &admin.token).await;
    let query = "subscription($a: ID) { events(after: \"0\", accountId: $a) { position type accountId } }";
    ws.subscribe("1", query, json!({ "a": admin.account_id })).await;

    let mut positions = Vec::new();
    let mut types = Vec::new();
    // Catch-up: the 3 events so far (AccountCreated, MemberJoined, MemberInvited).
    // Live: an invite made after subscribing arrives as the 4th.
    let mut invited_live = false;
    while positions.len() < 4 {
        let body = ws.next_message().await;
        match body["type"].as_str() {
            Some("next") => {
                let event = &body["payload"]["data"]["events"];
                assert_eq!(event["accountId"], admin.account_id.as_str(), "{body}");
                positions.push(event["position"].as_str().unwrap().parse::<i64>().unwrap());
                types.push(event["type"].as_str().unwrap().to_string());
                if positions.len() == 3 && !invited_live {
                    invited_live = true;
                    app.invite_ok(&admin.token, &admin.account_id, "two@example.com", "GUEST").await;
                }
            }
            other => panic!("unexpected message {other:?}: {body}"),
        }
    }
    assert_eq!(types, vec!["AccountCreated", "MemberJoined", "MemberInvited", "MemberInvited"]);
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn subscription_refuses_callers_who_may_not_read() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (guest, _) = app.add_member(&admin, "gus@example.com", "GUEST").await;
    // `/graphql/ws`, and an upgrade on `/graphql` itself; the token under the `token` key.
    for (path, token, expected) in [("/graphql/ws", guest.as_str(), "FORBIDDEN"), ("/graphql", "nonsense", "UNAUTHENTICATED")] {
        let mut ws = WsClient::connect_to(&app, path, json!({ "token": token })).await;
        let query = format!("subscription {{ events(accountId: \"{}\") {{ position }} }}", admin.account_id);
        ws.subscribe("1", &query, json!({})).await;
        let body = ws.next_message().await;
        // async-graphql reports a resolver error as a `next` carrying `errors`.
        let error = if body["type"] == "error" { &body["payload"][0] } else { &body["payload"]["errors"][0] };
        assert_eq!(error["extensions"]["code"], expected, "{body}");
        assert!(body["payload"]["data"]["events"].is_null(), "{body}");
        ws.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn roster_events_follow_streams_new_events_as_they_commit() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let mut child = roster(&["events", "--follow", "--account", &admin.account_id, "--limit", "4"])
        .env("DATABASE_URL", &app.database_url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    for _ in 0..2 {
        lines.push(tokio::time::timeout(Duration::from_secs(10), lines_rx.recv()).await.expect("catch-up line").unwrap());
    }
    app.invite_ok(&admin.token, &admin.account_id, "one@example.com", "GUEST").await;
    app.invite_ok(&admin.token, &admin.account_id, "two@example.com", "GUEST").await;
    for _ in 0..2 {
        lines.push(tokio::time::timeout(Duration::from_secs(10), lines_rx.recv()).await.expect("live line").unwrap());
    }
    let types: Vec<String> = lines.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(types, vec!["AccountCreated", "MemberJoined", "MemberInvited", "MemberInvited"]);
    // --limit 4 reached: the follower exits by itself.
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn subscription_ends_when_the_subscriber_stops_being_an_admin() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Acme").await;
    let (bob, _) = app.add_member(&ada, "bob@example.com", "ADMIN").await;
    let mut ws = WsClient::connect(&app, &ada.token).await;
    // Start after everything so far: only what happens next arrives.
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&app.pool).await.unwrap();
    let query = format!("subscription {{ events(after: \"{head}\", accountId: \"{}\") {{ type }} }}", ada.account_id);
    ws.subscribe("1", &query, json!({})).await;
    app.invite_ok(&ada.token, &ada.account_id, "one@example.com", "GUEST").await;
    let mut received = Vec::new();
    let mut removed = false;
    loop {
        let body = ws.next_message().await;
        match body["type"].as_str() {
            Some("next") if body["payload"]["errors"].is_null() => {
                received.push(body["payload"]["data"]["events"]["type"].as_str().unwrap().to_string());
                if !removed {
                    removed = true;
                    let response = app.remove_member(&bob, &ada.account_id, &ada.user_id).await;
                    assert!(response.get("errors").is_none(), "{response}");
                }
            }
            Some("next") => {
                assert_eq!(body["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
            }
            Some("complete") => break,
            other => panic!("unexpected {other:?}: {body}"),
        }
    }
    // Ada saw her own invite, but not the event that removed her.
    assert_eq!(received, vec!["MemberInvited"]);
    ws.close().await;
}
