//! What a session that a password reset ended can still do (issue 12, "Email ownership": the
//! owner who reclaims an address ends the other person's sessions), used as an attacker
//! holding one would: over HTTP no command of theirs runs at all (not even up to a rate limit
//! it would use up for the owner), and a websocket opened before the reset acts without a
//! session after it.

use crate::helpers::smtp::{self, SmtpServer};
use crate::helpers::{code, spawn_app_with, ApiClient, Signed, TestApp, WsClient, OPERATOR_TOKEN, PUBLIC_URL};
use crate::metrics::{sample, scrape_with};
use roster_api::mail::MailDelivery;
use serde_json::{json, Value};
use std::time::Duration;

const CREATE_ACCOUNT: &str = "mutation { createAccount(input: {name: \"Mine\"}) { id } }";

/// A server emailing through `server`; sign-ups get a session at once.
async fn app_with(server: &SmtpServer) -> TestApp {
    let url = server.url();
    spawn_app_with(|c| {
        c.mail.delivery = MailDelivery::Smtp(url);
        c.mail.retry_base = Duration::from_millis(50);
    })
    .await
}

/// The owner of `email` reclaims it: asks for a reset, opens the emailed link (the server has
/// `messages` messages then, this one among them) and logs in with the new password. Returns
/// the owner's session.
async fn reclaim(app: &ApiClient, server: &SmtpServer, email: &str, messages: usize) -> String {
    app.ok(None, "mutation($e: String!) { requestPasswordReset(email: $e) }", json!({ "e": email })).await;
    let marker = format!("{PUBLIC_URL}/reset/");
    let texts: Vec<String> = server.wait_for(messages).await.iter().map(|m| m.part("text/plain")).collect();
    let text = texts.iter().find(|t| t.contains(&marker)).unwrap_or_else(|| panic!("no reset link in:\n{texts:?}"));
    let at = text.find(&marker).unwrap();
    let token = text[at + marker.len()..].split_whitespace().next().unwrap();
    let password = "the owner's new password";
    let reset = app.ok(None, "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p) }", json!({ "t": token, "p": password })).await;
    assert_eq!(reset["resetPassword"], true);
    let input = json!({ "email": email, "password": password });
    let logged_in = app.ok(None, "mutation($input: LogInInput!) { logIn(input: $input) { token } }", json!({ "input": input })).await;
    logged_in["logIn"]["token"].as_str().unwrap().to_string()
}

/// A squatter who signed up with the victim's address, and the server.
async fn squatted(server: &SmtpServer) -> (TestApp, Signed) {
    let app = app_with(server).await;
    let squatter = app.sign_up("victim@example.com", "Squat").await;
    (app, squatter)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_session_does_not_use_up_the_owners_account_creations() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let (app, squatter) = squatted(&server).await;
    let owner = reclaim(&app, &server, "victim@example.com", 1).await;
    let before = app.event_count().await;
    // More than the per-user allowance (10 at once): none of them is a creation by that user.
    for _ in 0..12 {
        let refused = app.gql(Some(&squatter.token), CREATE_ACCOUNT, json!({})).await;
        app.assert_refused(&refused, "UNAUTHENTICATED", before).await;
    }
    let created = app.gql(Some(&owner), CREATE_ACCOUNT, json!({})).await;
    assert!(created["errors"].is_null(), "the owner still may create accounts: {created}");
    assert!(created["data"]["createAccount"]["id"].is_string(), "{created}");
}

/// The first message of operation `id` on `ws`: `next`'s payload (a query or command answers
/// with one `next`, then `complete`, which this reads).
async fn answer(ws: &mut WsClient, id: &str, query: &str, variables: Value) -> Value {
    ws.subscribe(id, query, variables).await;
    let body = ws.next_message().await;
    assert_eq!((body["id"].as_str(), body["type"].as_str()), (Some(id), Some("next")), "{body}");
    let complete = ws.next_message().await;
    assert_eq!((complete["id"].as_str(), complete["type"].as_str()), (Some(id), Some("complete")), "{complete}");
    body["payload"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_opened_before_a_reset_acts_without_a_session_after_it() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let (app, squatter) = squatted(&server).await;
    let mut ws = WsClient::connect(&app, &squatter.token).await;
    let viewer = "{ viewer { user { email } } }";
    let seen = answer(&mut ws, "1", viewer, json!({})).await;
    assert_eq!(seen["data"]["viewer"]["user"]["email"], "victim@example.com", "the session works before the reset: {seen}");
    reclaim(&app, &server, "victim@example.com", 1).await;
    let before = app.event_count().await;
    let refused = answer(&mut ws, "2", CREATE_ACCOUNT, json!({})).await;
    assert_eq!(code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    let invite = "mutation($a: ID!) { inviteUser(input: {accountId: $a, email: \"friend@example.com\", role: ADMIN}) { inviteLink } }";
    let refused = answer(&mut ws, "3", invite, json!({ "a": squatter.account_id })).await;
    assert_eq!(code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    assert_eq!(app.event_count().await, before, "nothing appended");
    let seen = answer(&mut ws, "4", viewer, json!({})).await;
    assert_eq!(seen["data"]["viewer"], Value::Null, "{seen}");
    let read = answer(&mut ws, "5", "query($a: ID!) { account(id: $a) { name } }", json!({ "a": squatter.account_id })).await;
    assert_eq!(code(&read), Some("UNAUTHENTICATED"), "{read}");
    // A new subscription is refused as one without a session.
    let events = "subscription($a: ID) { events(accountId: $a) { position } }";
    let refused = answer(&mut ws, "6", events, json!({ "a": squatter.account_id })).await;
    assert_eq!(code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_opened_before_a_reset_ends_with_the_session() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let (app, squatter) = squatted(&server).await;
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events").fetch_one(&app.pool).await.unwrap();
    let mut ws = WsClient::connect(&app, &squatter.token).await;
    let events = "subscription($after: String, $a: ID) { events(after: $after, accountId: $a) { position type } }";
    ws.subscribe("1", events, json!({ "after": head.to_string(), "a": squatter.account_id })).await;
    // The subscription runs: it delivers the account's next event.
    app.invite_ok(&squatter.token, &squatter.account_id, "guest@example.com", "GUEST").await;
    let delivered = ws.next_message().await;
    assert_eq!((delivered["type"].as_str(), delivered["payload"]["data"]["events"]["type"].as_str()), (Some("next"), Some("MemberInvited")), "{delivered}");
    reclaim(&app, &server, "victim@example.com", 2).await;
    // Events of the account may come first (the mailer records the invitation's email).
    let mut ended = ws.next_message().await;
    while ended["type"] == "next" && ended["payload"]["errors"].is_null() {
        ended = ws.next_message().await;
    }
    assert_eq!((ended["id"].as_str(), ended["type"].as_str()), (Some("1"), Some("next")), "{ended}");
    assert_eq!(code(&ended["payload"]), Some("UNAUTHENTICATED"), "{ended}");
    let complete = ws.next_message().await;
    assert_eq!((complete["id"].as_str(), complete["type"].as_str()), (Some("1"), Some("complete")), "{complete}");
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_of_an_ended_session_counts_once_in_the_metrics() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let (app, squatter) = squatted(&server).await;
    reclaim(&app, &server, "victim@example.com", 1).await;
    let requests = |text: &str, operation: &str| sample(text, "roster_graphql_requests_total", &[("operation", operation)]).unwrap_or(0.0);
    let (_, before) = scrape_with(&app, Some(OPERATOR_TOKEN)).await;
    // A query runs beside the check and is answered again without a session; a command is
    // refused before it runs and answered without a session.
    let seen = app.ok(Some(&squatter.token), "{ viewer { user { email } } }", json!({})).await;
    assert_eq!(seen["viewer"], Value::Null, "{seen}");
    let refused = app.gql(Some(&squatter.token), CREATE_ACCOUNT, json!({})).await;
    assert_eq!(code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    let (_, after) = scrape_with(&app, Some(OPERATOR_TOKEN)).await;
    assert_eq!(requests(&after, "viewer") - requests(&before, "viewer"), 1.0, "{after}");
    assert_eq!(requests(&after, "createAccount") - requests(&before, "createAccount"), 1.0, "{after}");
    assert_eq!(requests(&after, "(none)"), requests(&before, "(none)"), "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_sessions_link_previews_count_once_against_the_ip() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let (app, squatter) = squatted(&server).await;
    reclaim(&app, &server, "victim@example.com", 1).await;
    // 30 token attempts per IP at once: 20 previews are 20 attempts, each refused for its token.
    let preview = "query($t: String!) { invitationPreview(token: $t) { email } }";
    for _ in 0..20 {
        let refused = app.gql(Some(&squatter.token), preview, json!({ "t": "not-a-token" })).await;
        assert_eq!(code(&refused), Some("INVALID_TOKEN"), "{refused}");
    }
}
