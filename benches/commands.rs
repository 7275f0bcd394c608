//! Prints latency and throughput figures for the write and read paths against a real
//! PostgreSQL (`scripts/with-postgres cargo bench --bench commands`). Figures, not pass/fail:
//! compare them across changes on the same machine.
//!
//! - `inviteUser` over HTTP, one client: latency percentiles (includes waiting for the
//!   projections: read-your-writes).
//! - `inviteUser` over HTTP, 16 clients on 16 accounts: throughput.
//! - catch-up reading of the whole log: events per second.
//! - rebuilding every projection from position 0.
//!
//! The server is started through the same `Application::build` as `roster serve`, on a fresh
//! database created in the cluster `DATABASE_URL` points at.

use futures::future::join_all;
use hdrhistogram::Histogram;
use roster_api::clock::SystemClock;
use roster_api::{Application, Config, DatabaseSettings, Settings};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

/// A GraphQL client of the server under test.
struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self.http.post(&self.url).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await.expect("request").json().await.expect("json");
        assert!(body.get("errors").is_none(), "refused: {body}");
        body["data"].clone()
    }

    /// Signs up `email`; returns (session token, account id).
    async fn sign_up(&self, email: &str) -> (String, String) {
        let input = json!({ "email": email, "password": "correct horse battery", "displayName": "Bench", "accountName": "Bench" });
        let data = self.ok(None, "mutation($i: SignUpInput!) { signUp(input: $i) { token account { id } } }", json!({ "i": input })).await;
        (data["signUp"]["token"].as_str().unwrap().into(), data["signUp"]["account"]["id"].as_str().unwrap().into())
    }

    async fn invite(&self, (token, account): &(String, String), email: &str) {
        let input = json!({ "accountId": account, "email": email, "role": "GUEST" });
        self.ok(Some(token), "mutation($i: InviteUserInput!) { inviteUser(input: $i) { inviteLink } }", json!({ "i": input })).await;
    }
}

fn report(name: &str, histogram: &Histogram<u64>) {
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let max = histogram.max() as f64 / 1000.0;
    println!("{name:<36} n={:<6} p50={:>7.2}ms p95={:>7.2}ms p99={:>7.2}ms max={max:>7.2}ms", histogram.len(), ms(0.5), ms(0.95), ms(0.99));
}

/// A fresh database in the cluster `DATABASE_URL` points at; returns its URL.
async fn fresh_database() -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is not set: run through scripts/with-postgres");
    let name = format!("roster_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&base).await.expect("connect to DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
    let options = PgConnectOptions::from_str(&base).unwrap();
    format!("postgres://{}@{}:{}/{name}", options.get_username(), options.get_host(), options.get_port())
}

#[tokio::main]
async fn main() {
    let database_url = fresh_database().await;
    let config = Config::new("http://bench.invalid", "bench-secret");
    let settings = Settings { database: DatabaseSettings::new(&database_url), bind: "127.0.0.1:0".into(), config };
    let application = Application::build(settings, Arc::new(SystemClock)).await.expect("start");
    let client = Client { http: reqwest::Client::new(), url: format!("http://{}/graphql", application.address()) };
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    let pool = PgPool::connect(&database_url).await.unwrap();

    let admin = client.sign_up("bench@example.com").await;
    let mut latency = Histogram::<u64>::new(3).unwrap();
    for i in 0..300 {
        let started = Instant::now();
        client.invite(&admin, &format!("seq{i}@example.com")).await;
        latency.record(started.elapsed().as_micros() as u64).unwrap();
    }
    report("inviteUser, 1 client", &latency);

    let admins = join_all((0..16).map(|i| {
        let client = &client;
        async move { client.sign_up(&format!("admin{i}@example.com")).await }
    }))
    .await;
    let started = Instant::now();
    let per_client = 50;
    join_all(admins.iter().map(|a| async {
        for i in 0..per_client {
            client.invite(a, &format!("par{i}@example.com")).await;
        }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    println!("{:<36} {:>8.0} commands/s ({} in {elapsed:.2}s)", "inviteUser, 16 clients", (16 * per_client) as f64 / elapsed, 16 * per_client);

    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    let started = Instant::now();
    let (mut after, mut read) = (0, 0);
    loop {
        let batch = roster_store::reader::read_after(&pool, after, 1000, Default::default()).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        read += batch.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(read as i64, total);
    println!("{:<36} {:>8.0} events/s ({read} events)", "catch-up read", read as f64 / elapsed);

    let started = Instant::now();
    roster_projections::rebuild::rebuild(&pool, &[]).await.unwrap();
    println!("{:<36} {:>8.2}s for {total} events, 3 projections", "rebuild", started.elapsed().as_secs_f64());
}
