//! Queries while subscriptions are open: `members(first: 50)` latency with the top level of
//! `inviteUser` writers running, first with no subscription open, then with `plan.subscribers`
//! websocket clients subscribed to every event (each draining what it receives). The figure is
//! the ratio of the two in the same run: what open subscriptions cost the other requests.

use crate::baseline::{histogram, ms};
use crate::report::Figure;
use crate::{progress, Plan};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use roster_api::clock::SystemClock;
use roster_api::{Application, Config, DatabaseSettings, Settings};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// The operator token of the benchmark's server (subscribers read every account's events).
const OPERATOR: &str = "bench-operator-token-0123456789abcdefghijklmnopqrstuvwxyz";

/// Each subscriber's websocket read buffer, bytes (a burst of `next` messages fits a few reads).
const CLIENT_READ_BUFFER: usize = 16 * 1024;

const MEMBERS: &str = "query($a: ID!) { account(id: $a) { members(first: 50) { totalCount nodes { role joinedAt user { id email } } } } }";

/// Query latency with and without open subscriptions.
#[derive(Debug, Clone)]
pub struct SubscriptionLoad {
    /// Subscriptions open in the second phase.
    pub subscribers: usize,
    /// Writers in both phases.
    pub writers: usize,
    /// `members(first: 50)` latency (µs) with writers and no subscription.
    pub without: Histogram<u64>,
    /// The same with the subscriptions open.
    pub with: Histogram<u64>,
    /// Events each subscriber received (the least of them).
    pub least_delivered: u64,
    /// Every subscriber's delivery lags (µs), merged.
    pub lag: Histogram<u64>,
}

/// One GraphQL call; panics on an error answer (the smoke run's check).
async fn call(http: &reqwest::Client, url: &str, token: &str, query: &str, variables: Value) -> Value {
    let body: Value = http.post(url).bearer_auth(token).json(&json!({ "query": query, "variables": variables })).send().await.expect("HTTP request").json().await.expect("JSON");
    assert!(body.get("errors").is_none(), "refused: {body}");
    body["data"].clone()
}

/// A graphql-ws message as the subscribers read it: its type and, for `next`, the event's
/// position. The rest (the event's payload) is skipped, not built into a tree: the 50
/// subscribers share the process and the two cores with the server they measure, and their
/// parsing is the load generator's cost, not the server's (docs/benchmarks.md).
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    payload: Option<NextPayload<'a>>,
}

#[derive(serde::Deserialize)]
struct NextPayload<'a> {
    #[serde(borrow)]
    data: Option<NextData<'a>>,
}

#[derive(serde::Deserialize)]
struct NextData<'a> {
    #[serde(borrow)]
    events: NextEvent<'a>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextEvent<'a> {
    position: &'a str,
    recorded_at: &'a str,
}

/// A websocket client subscribed to every event after `after`, reading (and counting) what
/// arrives and keeping the last position, until `stop`; returns each event's delivery lag (µs
/// from its `recordedAt`, the database's clock at its append's transaction, to its arrival here,
/// on the same machine).
async fn subscriber(ws_url: String, after: i64, last: Arc<AtomicI64>, delivered: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Histogram<u64> {
    let mut lag = histogram();
    let mut request = ws_url.into_client_request().expect("ws url");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    // tungstenite zeroes its free read buffer (128 KiB by default) before every read: 50 such
    // clients in this process would spend more CPU on that than the server spends delivering.
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false).await.expect("websocket");
    let init = json!({ "type": "connection_init", "payload": { "token": OPERATOR } });
    socket.send(Message::Text(init.to_string().into())).await.expect("init");
    let query = format!("subscription {{ events(after: \"{after}\") {{ position recordedAt type payload }} }}");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": query } });
    socket.send(Message::Text(subscribe.to_string().into())).await.expect("subscribe");
    while !stop.load(Ordering::Relaxed) {
        let Ok(Some(frame)) = tokio::time::timeout(Duration::from_millis(200), socket.next()).await else { continue };
        let Message::Text(text) = frame.expect("websocket frame") else { continue };
        let frame: Frame = serde_json::from_str(&text).unwrap_or_else(|e| panic!("subscription message {text}: {e}"));
        match (frame.kind, frame.payload.and_then(|p| p.data)) {
            ("next", Some(data)) => {
                let recorded = chrono::DateTime::parse_from_rfc3339(data.events.recorded_at).expect("recordedAt");
                let waited = (chrono::Utc::now() - recorded.to_utc()).num_microseconds().unwrap_or(i64::MAX).max(0);
                lag.record(waited as u64).expect("record");
                last.store(data.events.position.parse().expect("position"), Ordering::Relaxed);
                delivered.fetch_add(1, Ordering::Relaxed);
            }
            ("connection_ack", _) => {}
            _ => panic!("subscription: {text}"),
        }
    }
    lag
}

/// `queries` calls of [`MEMBERS`] one after another while `writers` clients send `inviteUser`
/// without pause; the reader's latencies.
async fn measure(url: &str, admins: &[(String, String)], writers: usize, queries: u64, phase: usize) -> Histogram<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (http, url, stop) = (reqwest::Client::new(), url.to_string(), stop.clone());
            let (token, account) = admins[w % admins.len()].clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let input = json!({ "accountId": account, "email": format!("s{phase}.w{w}.n{n}@example.com"), "role": "GUEST" });
                    call(&http, &url, &token, "mutation($i: InviteUserInput!) { inviteUser(input: $i) { invitation { id } } }", json!({ "i": input })).await;
                    n += 1;
                }
            })
        })
        .collect();
    let http = reqwest::Client::new();
    let (token, account) = &admins[0];
    let mut latency = histogram();
    for _ in 0..queries {
        let sent = Instant::now();
        let data = call(&http, url, token, MEMBERS, json!({ "a": account })).await;
        latency.record(sent.elapsed().as_micros() as u64).expect("record");
        assert!(data["account"]["members"]["totalCount"].as_i64() >= Some(1), "{data}");
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("writer");
    }
    latency
}

/// Runs both phases on the fresh database at `url`. Panics when a command or query is refused
/// or a subscriber misses events.
pub async fn run(url: &str, plan: &Plan, started: Instant) -> SubscriptionLoad {
    let mut config = Config::new("http://bench.invalid", "bench-secret");
    config.password_rate_per_ip = roster_api::rate_limit::Rate::new(u32::MAX, Duration::from_millis(1));
    config.operator_token = Some(OPERATOR.into());
    let settings = Settings { database: DatabaseSettings::new(url), bind: "127.0.0.1:0".into(), config };
    let application = Application::build(settings, Arc::new(SystemClock)).await.expect("start the server");
    let (graphql, ws) = (format!("http://{}/graphql", application.address()), format!("ws://{}/graphql/ws", application.address()));
    tokio::spawn(application.run_until_stopped(std::future::pending()));

    let writers = plan.top_level();
    let http = reqwest::Client::new();
    let mut admins = Vec::new();
    for n in 0..writers.min(4) {
        let input = json!({ "email": format!("sub{n}@example.com"), "password": "correct horse battery", "displayName": "Bench", "accountName": format!("Subs {n}") });
        let body: Value = http.post(&graphql).json(&json!({ "query": "mutation($i: SignUpInput!) { signUp(input: $i) { token account { id } } }", "variables": { "i": input } })).send().await.expect("sign up").json().await.expect("JSON");
        let up = &body["data"]["signUp"];
        admins.push((up["token"].as_str().unwrap_or_else(|| panic!("sign-up: {body}")).to_string(), up["account"]["id"].as_str().expect("id").to_string()));
    }

    progress(started, format_args!("subscriptions: {} queries with {writers} writers, no subscription", plan.queries));
    let without = measure(&graphql, &admins, writers, plan.queries, 0).await;

    let mut db = PgConnection::connect(url).await.expect("connect");
    let start: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events").fetch_one(&mut db).await.expect("head");
    progress(started, format_args!("subscriptions: the same with {} subscriptions open", plan.subscribers));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..plan.subscribers)
        .map(|_| {
            let (last, delivered) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicU64::new(0)));
            let task = tokio::spawn(subscriber(ws.clone(), start, last.clone(), delivered.clone(), stop.clone()));
            (task, last, delivered)
        })
        .collect();
    let with = measure(&graphql, &admins, writers, plan.queries, 1).await;
    // Every subscriber gets every event, once.
    let (end, count): (i64, i64) = sqlx::query_as("SELECT max(position), count(*) FROM events WHERE position > $1").bind(start).fetch_one(&mut db).await.expect("head");
    let deadline = Instant::now() + Duration::from_secs(60);
    while clients.iter().any(|(_, last, _)| last.load(Ordering::Relaxed) < end) {
        assert!(Instant::now() < deadline, "subscribers did not receive every event up to {end}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut least_delivered = u64::MAX;
    let mut lag = histogram();
    for (task, _, delivered) in clients {
        lag.add(task.await.expect("subscriber")).expect("merge");
        least_delivered = least_delivered.min(delivered.load(Ordering::Relaxed));
    }
    assert_eq!(least_delivered as i64, count, "a subscriber missed or repeated events");
    SubscriptionLoad { subscribers: plan.subscribers, writers, without, with, least_delivered, lag }
}

impl SubscriptionLoad {
    /// Table rows: the query's p50 and p99 without subscriptions, and with them as ratios.
    pub fn figures(&self) -> Vec<Figure> {
        let base = format!("members(first: 50), {} writers", self.writers);
        let with = format!("{base}, {} subscriptions open", self.subscribers);
        let mut figures = Vec::new();
        for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
            let (without, with_subs) = (ms(&self.without, q), ms(&self.with, q));
            figures.push(Figure::plain(format!("{base}: {label}"), without, "ms"));
            let ratio = with_subs / without.max(0.001);
            figures.push(Figure::new(format!("{with}: {label}"), with_subs, "ms", Some(ratio), Some("≤ 1.5 × without"), Some(ratio <= 1.5)));
        }
        figures.push(Figure::plain(format!("{with}: events delivered per subscriber"), self.least_delivered as f64, ""));
        // What the subscribers wait: delivery runs below requests (roster_api::lane).
        for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
            figures.push(Figure::plain(format!("{with}: delivery lag, append to subscriber, {label}"), ms(&self.lag, q), "ms"));
        }
        figures
    }
}
