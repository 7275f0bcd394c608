//! Queries while subscriptions are open: `members(first: 50)` latency with the top level of
//! `inviteUser` writers running, with no subscription open and with `plan.subscribers` websocket
//! clients subscribed to every event (each draining what it receives), in alternating blocks
//! (`plan.rounds` of each, so that drift on a shared machine falls on both alike). The figure is
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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
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
    /// Subscriptions open in the blocks with subscriptions.
    pub subscribers: usize,
    /// Writers in every block.
    pub writers: usize,
    /// `members(first: 50)` latency (µs) with writers and no subscription.
    pub without: Histogram<u64>,
    /// The same with the subscriptions open.
    pub with: Histogram<u64>,
    /// Events each subscriber received (every one the same, checked), summed over the blocks.
    pub delivered_each: u64,
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

/// A websocket client subscribed to every event after `after`, counting its `connection_ack`
/// in `acked`, reading (and counting) what arrives and keeping the last position, until `stop`;
/// returns each event's delivery lag (µs from its `recordedAt`, the database's clock at its
/// append's transaction, to its arrival here, on the same machine).
async fn subscriber(ws_url: String, after: i64, acked: Arc<AtomicUsize>, last: Arc<AtomicI64>, delivered: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Histogram<u64> {
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
            ("connection_ack", _) => {
                acked.fetch_add(1, Ordering::Relaxed);
            }
            _ => panic!("subscription: {text}"),
        }
    }
    lag
}

/// `queries` calls of [`MEMBERS`] one after another while `writers` clients send `inviteUser`
/// without pause; the reader's latencies. The reader runs on a thread of its own, so that its
/// answers do not wait behind the writers' and subscribers' tasks in this process's runtime
/// (they are load, not the server).
async fn measure(url: &str, admins: &[(String, String)], writers: usize, queries: u64, block: usize) -> Histogram<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (http, url, stop) = (reqwest::Client::new(), url.to_string(), stop.clone());
            let (token, account) = admins[w % admins.len()].clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let input = json!({ "accountId": account, "email": format!("s{block}.w{w}.n{n}@example.com"), "role": "GUEST" });
                    call(&http, &url, &token, "mutation($i: InviteUserInput!) { inviteUser(input: $i) { invitation { id } } }", json!({ "i": input })).await;
                    n += 1;
                }
            })
        })
        .collect();
    let ((token, account), url) = (admins[0].clone(), url.to_string());
    let reader = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("reader runtime");
        runtime.block_on(async move {
            let http = reqwest::Client::new();
            let mut latency = histogram();
            for _ in 0..queries {
                let sent = Instant::now();
                let data = call(&http, &url, &token, MEMBERS, json!({ "a": account })).await;
                latency.record(sent.elapsed().as_micros() as u64).expect("record");
                assert!(data["account"]["members"]["totalCount"].as_i64() >= Some(1), "{data}");
            }
            latency
        })
    });
    let latency = tokio::task::spawn_blocking(move || reader.join().expect("reader")).await.expect("reader");
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("writer");
    }
    latency
}

/// A running subscriber: its task (returning its lags), its last position, its event count.
type Client = (tokio::task::JoinHandle<Histogram<u64>>, Arc<AtomicI64>, Arc<AtomicU64>);

/// Subscribers following every event after the head at their start.
struct Subscribers {
    start: i64,
    stop: Arc<AtomicBool>,
    clients: Vec<Client>,
}

impl Subscribers {
    /// Opens `n` subscriptions on `ws` after the current head of `db` and waits until every
    /// connection is acknowledged.
    async fn open(ws: &str, db: &mut PgConnection, n: usize) -> Self {
        let start: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events").fetch_one(&mut *db).await.expect("head");
        let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let clients = (0..n)
            .map(|_| {
                let (last, delivered) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicU64::new(0)));
                let task = tokio::spawn(subscriber(ws.to_string(), start, acked.clone(), last.clone(), delivered.clone(), stop.clone()));
                (task, last, delivered)
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "subscribers were not acknowledged");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Subscribers { start, stop, clients }
    }

    /// Waits until every subscriber has the last event, closes them, and checks that each got
    /// every event after the start exactly once. Panics otherwise. Returns how many events
    /// each got and their delivery lags, merged.
    async fn close(self, db: &mut PgConnection) -> (u64, Histogram<u64>) {
        let (end, count): (i64, i64) = sqlx::query_as("SELECT coalesce(max(position), 0), count(*) FROM events WHERE position > $1").bind(self.start).fetch_one(&mut *db).await.expect("head");
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.clients.iter().any(|(_, last, _)| last.load(Ordering::Relaxed) < end) {
            assert!(Instant::now() < deadline, "subscribers did not receive every event up to {end}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut lag = histogram();
        for (task, _, delivered) in self.clients {
            lag.add(task.await.expect("subscriber")).expect("merge");
            // Each one, not only the least: a subscriber that got an event twice shows here.
            assert_eq!(delivered.load(Ordering::Relaxed) as i64, count, "a subscriber missed or repeated events");
        }
        (count as u64, lag)
    }
}

/// Starts the server on a runtime of its own (a worker per core, as `roster serve` has), on a
/// thread of its own, for the rest of the process; its address. Not on this process's runtime:
/// there the 50 subscribers' and 16 writers' client tasks would share the server's workers,
/// and a request's task would queue behind a burst of subscribers reading their messages
/// (tokio does not preempt a task), a cost no deployed server pays, its clients being elsewhere.
/// Measured: p99 with subscriptions 1.5-1.8× the same without on the shared runtime, 1.3-1.4×
/// on its own, four runs each alternating (docs/benchmarks.md).
async fn serve_apart(settings: Settings) -> std::net::SocketAddr {
    let (started, address) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().thread_name("bench-server").enable_all().build().expect("server runtime");
            runtime.block_on(async move {
                let application = Application::build(settings, Arc::new(SystemClock)).await.expect("start the server");
                let _ = started.send(application.address());
                application.run_until_stopped(std::future::pending()).await
            })
        })
        .expect("server thread");
    address.await.expect("the server started")
}

/// Runs `plan.rounds` rounds (a block without subscriptions, then one with them) on the fresh
/// database at `url`. Panics when a command or query is refused or a subscriber misses events.
pub async fn run(url: &str, plan: &Plan, started: Instant) -> SubscriptionLoad {
    let mut config = Config::new("http://bench.invalid", "bench-secret");
    config.password_rate_per_ip = roster_api::rate_limit::Rate::new(u32::MAX, Duration::from_millis(1));
    config.operator_token = Some(OPERATOR.into());
    let settings = Settings { database: DatabaseSettings::new(url), bind: "127.0.0.1:0".into(), config };
    let address = serve_apart(settings).await;
    let (graphql, ws) = (format!("http://{address}/graphql"), format!("ws://{address}/graphql/ws"));

    let writers = plan.top_level();
    let http = reqwest::Client::new();
    let mut admins = Vec::new();
    for n in 0..writers.min(4) {
        let input = json!({ "email": format!("sub{n}@example.com"), "password": "correct horse battery", "displayName": "Bench", "accountName": format!("Subs {n}") });
        let body: Value = http.post(&graphql).json(&json!({ "query": "mutation($i: SignUpInput!) { signUp(input: $i) { token account { id } } }", "variables": { "i": input } })).send().await.expect("sign up").json().await.expect("JSON");
        let up = &body["data"]["signUp"];
        admins.push((up["token"].as_str().unwrap_or_else(|| panic!("sign-up: {body}")).to_string(), up["account"]["id"].as_str().expect("id").to_string()));
    }

    let mut db = PgConnection::connect(url).await.expect("connect");
    let (mut without, mut with, mut lag, mut delivered_each) = (histogram(), histogram(), histogram(), 0);
    let queries = (plan.queries / plan.rounds as u64).max(1);
    for round in 0..plan.rounds {
        progress(started, format_args!("subscriptions: round {}/{}: {queries} queries with {writers} writers, no subscription, then with {} open", round + 1, plan.rounds, plan.subscribers));
        without.add(measure(&graphql, &admins, writers, queries, 2 * round).await).expect("merge");
        let subscribers = Subscribers::open(&ws, &mut db, plan.subscribers).await;
        with.add(measure(&graphql, &admins, writers, queries, 2 * round + 1).await).expect("merge");
        let (delivered, lags) = subscribers.close(&mut db).await;
        delivered_each += delivered;
        lag.add(lags).expect("merge");
    }
    SubscriptionLoad { subscribers: plan.subscribers, writers, without, with, delivered_each, lag }
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
        figures.push(Figure::plain(format!("{with}: events delivered per subscriber"), self.delivered_each as f64, ""));
        // What the subscribers wait: delivery runs below requests (roster_api::lane).
        for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
            figures.push(Figure::plain(format!("{with}: delivery lag, append to subscriber, {label}"), ms(&self.lag, q), "ms"));
        }
        figures
    }
}
