//! `GET /metrics`: Prometheus text readable with the metrics or operator token only, whose
//! series move with the traffic: requests by operation and outcome, command latency, projection
//! checkpoints and lag, pool usage and open subscriptions.

use crate::helpers::{spawn_app, spawn_app_with, ApiClient, WsClient, OPERATOR_TOKEN};
use serde_json::json;
use std::time::{Duration, Instant};

const METRICS_TOKEN: &str = "Mx7Pq2Lr9Tz4Wv6Ny1Kb8Hc3Jd5Gf0Se7Ua2Qi9Ro4Xp6Zl";

/// Scrapes `/metrics` with `token`; the status and body.
pub(crate) async fn scrape_with(app: &ApiClient, token: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(format!("{}/metrics", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn scrape(app: &ApiClient) -> String {
    let (status, text) = scrape_with(app, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    text
}

/// The value of series `name` whose labels include every `labels` pair; `None` when absent.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
        let matches = series_name == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        matches.then(|| value.parse().unwrap())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_the_metrics_or_operator_token() {
    let app = spawn_app_with(|c| c.metrics_token = Some(METRICS_TOKEN.into())).await;
    assert_eq!(scrape_with(&app, None).await.0, 401);
    assert_eq!(scrape_with(&app, Some("Mx7Pq2Lr9Tz4Wv6Ny1Kb8Hc3Jd5Gf0Se7Ua2Qi9Ro4XpXXX")).await.0, 401);
    assert_eq!(scrape_with(&app, Some(METRICS_TOKEN)).await.0, 200);
    assert_eq!(scrape_with(&app, Some(OPERATOR_TOKEN)).await.0, 200);
    // A user's session is not enough.
    let admin = app.sign_up("ada@example.com", "Acme").await;
    assert_eq!(scrape_with(&app, Some(&admin.token)).await.0, 401);
    // Without a metrics token, only the operator token reads them.
    let other = spawn_app().await;
    assert_eq!(scrape_with(&other, Some(METRICS_TOKEN)).await.0, 401);
    assert_eq!(scrape_with(&other, Some(OPERATOR_TOKEN)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn series_move_with_requests_commands_projections_and_subscriptions() {
    let app = spawn_app_with(|c| c.metrics_token = Some(METRICS_TOKEN.into())).await;
    let before = scrape(&app).await;
    assert_eq!(sample(&before, "roster_graphql_requests_total", &[("operation", "inviteUser")]), None);
    assert_eq!(sample(&before, "roster_projection_checkpoint", &[("projection", "members")]), Some(0.0));
    assert_eq!(sample(&before, "roster_subscriptions_open", &[]), Some(0.0));
    assert_eq!(sample(&before, "roster_db_pool_max_connections", &[]), Some(20.0));

    let admin = app.sign_up("ada@example.com", "Acme").await;
    for i in 0..3 {
        app.invite_ok(&admin.token, &admin.account_id, &format!("p{i}@example.com"), "GUEST").await;
    }
    let refused = app.invite(&admin.token, &admin.account_id, "p0@example.com", "GUEST").await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "INVITATION_PENDING");
    // Two root fields in one operation count once each, under their field names, not aliases.
    app.ok(Some(&admin.token), "{ a: viewer { user { id } } b: viewer { user { id } } }", json!({})).await;
    app.gql(None, "{ nope }", json!({})).await;
    // Made-up names and aliases never become labels: a refused document counts once.
    let made_up: String = (0..300).map(|i| format!("f{i}: made_up_{i} ")).collect();
    app.gql(None, &format!("{{ {made_up} }}"), json!({})).await;
    // Over a websocket a query counts as over HTTP; a subscription is not a request.
    let mut ws = WsClient::connect(&app, &admin.token).await;
    ws.subscribe("1", "{ roles { role } }", json!({})).await;
    assert_eq!(ws.next_message().await["type"], "next");
    assert_eq!(ws.next_message().await["type"], "complete");
    ws.subscribe("2", "subscription($a: ID!) { events(after: \"0\", accountId: $a) { position } }", json!({ "a": admin.account_id })).await;
    assert_eq!(ws.next_message().await["type"], "next");
    // Events appended while it streams are live: their delivery is timed; the history is not.
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&app.pool).await.unwrap();
    app.invite_ok(&admin.token, &admin.account_id, "p3@example.com", "GUEST").await;
    let account: uuid::Uuid = admin.account_id.parse().unwrap();
    let (last, live): (i64, i64) = sqlx::query_as("SELECT max(position), count(*) FROM events WHERE account_id = $1 AND position > $2")
        .bind(account)
        .bind(head)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(live > 0);
    let last = last.to_string(); // positions are decimal strings in the API
    loop {
        let message = ws.next_message().await;
        assert_eq!(message["type"], "next", "{message}");
        if message["payload"]["data"]["events"]["position"].as_str() == Some(last.as_str()) {
            break;
        }
    }
    ws.close().await;

    let after = scrape(&app).await;
    let requests = |operation: &str, outcome: &str| sample(&after, "roster_graphql_requests_total", &[("operation", operation), ("outcome", outcome)]);
    assert_eq!(requests("signUp", "ok"), Some(1.0), "{after}");
    assert_eq!(requests("inviteUser", "ok"), Some(4.0), "{after}");
    assert_eq!(requests("inviteUser", "INVITATION_PENDING"), Some(1.0), "{after}");
    assert_eq!(requests("viewer", "ok"), Some(2.0), "{after}");
    assert_eq!(requests("roles", "ok"), Some(1.0), "{after}");
    assert_eq!(requests("events", "ok"), None, "{after}");
    assert_eq!(requests("(none)", "VALIDATION"), Some(1.0), "{after}");
    assert_eq!(requests("(none)", "QUERY_TOO_COMPLEX"), Some(1.0), "{after}");
    assert!(!after.contains("nope") && !after.contains("made_up"), "{after}");
    let latency = |suffix: &str, outcome: &str| {
        sample(&after, &format!("roster_command_duration_seconds_{suffix}"), &[("command", "inviteUser"), ("outcome", outcome)])
    };
    assert_eq!(latency("count", "ok"), Some(4.0), "{after}");
    assert_eq!(latency("count", "INVITATION_PENDING"), Some(1.0), "{after}");
    assert!(latency("sum", "ok").unwrap() > 0.0, "{after}");
    let bucket = sample(&after, "roster_command_duration_seconds_bucket", &[("command", "inviteUser"), ("outcome", "ok"), ("le", "+Inf")]);
    assert_eq!(bucket, Some(4.0), "{after}");
    let delivered = sample(&after, "roster_subscription_delivery_seconds_count", &[]);
    assert_eq!(delivered, Some(live as f64), "each live event's delivery is timed once, the history's not: {after}");

    // Commands answer once their events are projected: every checkpoint is at the head.
    let head = app.event_count().await as f64;
    for projection in ["members", "invitations", "audit_log"] {
        assert_eq!(sample(&after, "roster_projection_checkpoint", &[("projection", projection)]), Some(head), "{after}");
        assert_eq!(sample(&after, "roster_projection_lag_events", &[("projection", projection)]), Some(0.0), "{after}");
    }
    let open = sample(&after, "roster_db_pool_connections", &[("state", "open")]).unwrap();
    let idle = sample(&after, "roster_db_pool_connections", &[("state", "idle")]).unwrap();
    assert!(open >= 1.0 && idle <= open, "{after}");

    let mut ws = WsClient::connect(&app, &admin.token).await;
    ws.subscribe("1", "subscription($a: ID) { events(after: \"0\", accountId: $a) { position } }", json!({ "a": admin.account_id })).await;
    assert_eq!(ws.next_message().await["type"], "next");
    assert_eq!(sample(&scrape(&app).await, "roster_subscriptions_open", &[]), Some(1.0));
    ws.close().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&scrape(&app).await, "roster_subscriptions_open", &[]) != Some(0.0) {
        assert!(Instant::now() < deadline, "the closed subscription is still counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
