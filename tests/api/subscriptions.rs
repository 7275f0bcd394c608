//! Subscriptions under load and on bad days: one shared `LISTEN` for any number of them, caps
//! per connection and per user, and surviving a database outage (the server's subscriptions
//! and `roster events --follow`) without skipping or repeating an event.

use crate::helpers::proxy::Proxy;
use crate::helpers::{fresh_database, roster, spawn_app_on, spawn_app_with, ApiClient, WsClient};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use std::io::BufRead;
use std::str::FromStr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const EVENTS: &str = "subscription($after: String, $a: ID) { events(after: $after, accountId: $a) { position type } }";

async fn head(api: &ApiClient) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events").fetch_one(&api.pool).await.unwrap()
}

/// The positions of `account_id`'s events after `after`, from the database.
async fn positions_after(api: &ApiClient, account_id: &str, after: i64) -> Vec<i64> {
    let account: uuid::Uuid = account_id.parse().unwrap();
    sqlx::query_scalar("SELECT position FROM events WHERE account_id = $1 AND position > $2 ORDER BY position")
        .bind(account)
        .bind(after)
        .fetch_all(&api.pool)
        .await
        .unwrap()
}

/// The subscription id and position of the next `next` message; panics on anything else.
async fn next_event(ws: &mut WsClient) -> (String, i64) {
    let body = ws.next_message().await;
    assert_eq!(body["type"], "next", "{body}");
    assert!(body["payload"]["errors"].is_null(), "{body}");
    let position = body["payload"]["data"]["events"]["position"].as_str().unwrap().parse().unwrap();
    (body["id"].as_str().unwrap().to_string(), position)
}

/// The error in `body`, a subscription's refusal (async-graphql sends a resolver error as
/// `next` with `errors`, then `complete`, which this reads; a request error as `error`).
async fn refusal_of(ws: &mut WsClient, body: Value) -> Value {
    let id = body["id"].as_str().unwrap().to_string();
    let id = id.as_str();
    if body["type"] == "error" {
        return body["payload"][0].clone();
    }
    let complete = ws.next_message().await;
    assert_eq!((complete["id"].as_str(), complete["type"].as_str()), (Some(id), Some("complete")), "{complete}");
    body["payload"]["errors"][0].clone()
}

/// How many server connections to the test's database are `LISTEN`ing.
async fn listening_connections(api: &ApiClient) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
        .fetch_one(&api.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_subscriptions_share_one_listen_and_leave_the_pool_to_queries() {
    // A pool of 4: before the shared tail, each subscription held one of them.
    let database_url = fresh_database().await;
    let app = spawn_app_on(&database_url, &database_url, 4, |c| c.max_subscriptions_per_user = 30).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let listening_before = listening_connections(&app).await;
    let after = head(&app).await.to_string();
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut ws = WsClient::connect(&app, &admin.token).await;
        for id in 0..10 {
            ws.subscribe(&id.to_string(), EVENTS, json!({ "after": after, "a": admin.account_id })).await;
        }
        sockets.push(ws);
    }
    // Ordinary requests still answer while all 30 are open, and each subscription delivers.
    for n in 0..6 {
        app.invite_ok(&admin.token, &admin.account_id, &format!("guest{n}@example.com"), "GUEST").await;
        assert_eq!(app.members(&admin.token, &admin.account_id).await.len(), 1);
    }
    let expected = positions_after(&app, &admin.account_id, after.parse().unwrap()).await;
    assert_eq!(expected.len(), 6);
    for ws in &mut sockets {
        let mut seen: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for _ in 0..60 {
            let (id, position) = next_event(ws).await;
            seen.entry(id).or_default().push(position);
        }
        assert_eq!(seen.len(), 10);
        assert!(seen.values().all(|p| *p == expected), "{seen:?}");
    }
    // One LISTEN for all of them (besides the projector's, there before any subscription).
    assert_eq!(listening_connections(&app).await, listening_before, "subscriptions opened LISTEN connections");
    assert_eq!(listening_before, 2, "the projector's and the subscriptions' tail");
}

/// Starts subscriptions `ids` on `ws` and returns the ones refused with `RATE_LIMITED`, reading
/// `refused` refusals (subscriptions start concurrently: which one is over a cap is not fixed).
async fn subscribe_all(ws: &mut WsClient, ids: &[&str], variables: &Value, refused: usize) -> Vec<String> {
    for id in ids {
        ws.subscribe(id, EVENTS, variables.clone()).await;
    }
    let mut out = Vec::new();
    while out.len() < refused {
        let body = ws.next_message().await;
        let id = body["id"].as_str().unwrap().to_string();
        let error = refusal_of(ws, body).await;
        assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{error}");
        assert!(error["extensions"]["retryAfterSeconds"].as_u64().is_some(), "{error}");
        out.push(id);
    }
    out
}

/// Two events' subscription ids on `ws`, sorted.
async fn two_events(ws: &mut WsClient) -> Vec<String> {
    let mut ids = vec![next_event(ws).await.0, next_event(ws).await.0];
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_beyond_the_caps_are_rate_limited_and_the_others_go_on() {
    let app = spawn_app_with(|c| {
        c.max_subscriptions_per_connection = 2;
        c.max_subscriptions_per_user = 3;
    })
    .await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let after = head(&app).await.to_string();
    let variables = json!({ "after": after, "a": admin.account_id });
    // Three on one connection: one is over the per-connection cap.
    let mut first = WsClient::connect(&app, &admin.token).await;
    let refused = subscribe_all(&mut first, &["a", "b", "c"], &variables, 1).await;
    let mut open_first: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).filter(|id| !refused.contains(id)).collect();
    // A second connection: one more fits the user's 3, a fourth does not.
    let mut second = WsClient::connect(&app, &admin.token).await;
    let refused = subscribe_all(&mut second, &["d", "e"], &variables, 1).await;
    let open_second: Vec<String> = ["d", "e"].iter().map(|s| s.to_string()).filter(|id| !refused.contains(id)).collect();
    assert_eq!(app.open_subscriptions(), 3);
    // The open ones still deliver, and queries answer.
    app.invite_ok(&admin.token, &admin.account_id, "one@example.com", "GUEST").await;
    assert_eq!(two_events(&mut first).await, open_first);
    assert_eq!(next_event(&mut second).await.0, open_second[0]);
    // Completing one frees its place for the user.
    let completed = open_first.remove(0);
    first.complete(&completed).await;
    let body = first.next_message().await;
    assert_eq!((body["id"].as_str(), body["type"].as_str()), (Some(completed.as_str()), Some("complete")), "{body}");
    assert_eq!(app.open_subscriptions(), 2);
    let now = json!({ "after": head(&app).await.to_string(), "a": admin.account_id });
    subscribe_all(&mut second, &["f"], &now, 0).await;
    app.invite_ok(&admin.token, &admin.account_id, "two@example.com", "GUEST").await;
    assert_eq!(two_events(&mut second).await, [open_second[0].clone(), "f".to_string()]);
    assert_eq!(next_event(&mut first).await.0, open_first[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn subscription_and_follower_resume_after_a_database_outage_without_gap_or_duplicate() {
    let database_url = fresh_database().await;
    let options = PgConnectOptions::from_str(&database_url).unwrap();
    let proxy = Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
    let through_proxy = proxy.url_for(&database_url);
    // The server under test reaches the database through the proxy; a second server (and the
    // test) directly, to write while the first is cut off.
    let app = spawn_app_on(&database_url, &through_proxy, 5, |_| {}).await;
    let other = spawn_app_on(&database_url, &database_url, 5, |_| {}).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let start = head(&app).await;
    let mut ws = WsClient::connect(&app, &admin.token).await;
    ws.subscribe("1", EVENTS, json!({ "after": start.to_string(), "a": admin.account_id })).await;
    let mut child = roster(&["events", "--follow", "--account", &admin.account_id, "--after", &start.to_string(), "--limit", "6"])
        .env("DATABASE_URL", &through_proxy)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
            if lines_tx.send(event["position"].as_str().unwrap().parse::<i64>().unwrap()).is_err() {
                break;
            }
        }
    });
    let mut follower = Vec::new();
    let mut subscriber = Vec::new();
    app.invite_ok(&admin.token, &admin.account_id, "before@example.com", "GUEST").await;
    subscriber.push(next_event(&mut ws).await.1);
    follower.push(tokio::time::timeout(Duration::from_secs(10), lines.recv()).await.expect("line before the outage").unwrap());

    proxy.cut();
    for n in 0..3 {
        other.invite_ok(&admin.token, &admin.account_id, &format!("during{n}@example.com"), "GUEST").await;
    }
    // Long enough for the readers to fail and retry a few times.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.restore();
    other.invite_ok(&admin.token, &admin.account_id, "after@example.com", "GUEST").await;

    let expected = positions_after(&app, &admin.account_id, start).await;
    assert_eq!(expected.len(), 5);
    while subscriber.len() < 5 {
        subscriber.push(next_event(&mut ws).await.1);
    }
    while follower.len() < 5 {
        follower.push(tokio::time::timeout(Duration::from_secs(20), lines.recv()).await.expect("line after the outage").unwrap());
    }
    assert_eq!(subscriber, expected);
    assert_eq!(follower, expected);
    // Nothing repeated after them either: the next event is the next position.
    other.invite_ok(&admin.token, &admin.account_id, "last@example.com", "GUEST").await;
    let last = *positions_after(&app, &admin.account_id, start).await.last().unwrap();
    assert_eq!(next_event(&mut ws).await.1, last);
    assert_eq!(tokio::time::timeout(Duration::from_secs(20), lines.recv()).await.expect("last line").unwrap(), last);
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "the follower stopped after its 6 events");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_closed_with_1013_and_its_subscription_dropped() {
    let app = spawn_app_with(|c| c.slow_consumer_timeout = Duration::from_millis(500)).await;
    // 800 events of 20 kB each (16 MB, beyond what socket buffers hold), written straight to
    // the log: a kind the read models ignore.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Padding', 'p', n, 'Padded', '1.0.0', jsonb_build_object('pad', repeat('x', 20000)), '{}' FROM generate_series(1, 800) n",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    // A client with a small receive buffer that subscribes from the start and then reads
    // nothing.
    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address).await.unwrap();
    let mut ws = WsClient::over(stream, &app, json!({ "token": crate::helpers::OPERATOR_TOKEN })).await;
    ws.subscribe("1", "subscription { events(after: \"0\") { position payload } }", json!({})).await;
    // The server gives up on it: the subscription is gone while the client still reads nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if app.open_subscriptions() == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the slow subscription was never dropped");
    }
    // Reading again: what was buffered, then the close frame saying why; not all 800 events.
    let mut delivered = 0;
    let close = loop {
        match ws.raw_next().await {
            Some(Message::Text(_)) => delivered += 1,
            Some(Message::Close(frame)) => break frame,
            Some(_) => {}
            None => panic!("the connection ended without a close frame after {delivered} messages: {:?}", ws.raw_next().await),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1013, "{close:?}");
    assert!(close.reason.contains("slow consumer"), "{close:?}");
    assert!(delivered < 800, "every event was delivered: the client was not slow enough to test anything");
    // The server serves others meanwhile.
    let other = app.sign_up("ada@example.com", "Acme").await;
    assert_eq!(app.members(&other.token, &other.account_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_closes_open_websockets_with_1001_without_waiting_for_the_grace_period() {
    let database_url = fresh_database().await;
    let mut replica = crate::helpers::replica::Replica::start(&database_url, &[]).await;
    let admin = replica.sign_up("ada@example.com", "Acme").await;
    let mut ws = WsClient::connect(&replica, &admin.token).await;
    ws.subscribe("1", EVENTS, json!({ "a": admin.account_id })).await;
    for _ in 0..2 {
        next_event(&mut ws).await;
    }
    let closed = tokio::spawn(async move { ws.close_frame().await });
    let exit = tokio::task::block_in_place(|| replica.terminate(Duration::from_secs(20))).expect("the server exits after SIGTERM");
    assert!(exit.success(), "{exit:?}");
    let (code, reason) = closed.await.unwrap().expect("a close frame");
    assert_eq!(code, 1001, "{reason}");
    assert!(!replica.log().contains("grace period over"), "shutdown waited for the websocket:\n{}", replica.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_without_connection_init_is_closed_with_4408_and_an_initialised_one_is_not() {
    let app = spawn_app_with(|c| c.connection_init_timeout = Duration::from_millis(300)).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let mut idle = WsClient::open_uninitialised(&app).await;
    let mut live = WsClient::connect(&app, &admin.token).await;
    assert_eq!(idle.close_frame().await, Some((4408, "Connection initialisation timeout".to_string())));
    // Well past the timeout, the initialised connection still serves a subscription.
    tokio::time::sleep(Duration::from_millis(300)).await;
    live.subscribe("1", "subscription($a: ID!) { events(accountId: $a) { position } }", json!({ "a": admin.account_id })).await;
    assert_eq!(live.next_message().await["type"], "next");
}
