//! `inviteUser` through the whole stack: HTTP, GraphQL, the application's unit of work (load,
//! decide, append, wait for the projections), on the server `roster serve` runs, started
//! in-process through `Application::build`. Each simulated client has its own keep-alive HTTP
//! connection and waits for each answer before sending the next command.

use crate::baseline::{self, histogram, ms, Level};
use crate::report::Figure;
use crate::{progress, Plan};
use futures::StreamExt;
use roster_api::clock::SystemClock;
use roster_api::{Application, Config, DatabaseSettings, Settings};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One command phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// What ran, e.g. `inviteUser, 16 clients, 1000 accounts`.
    pub name: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Accounts the clients spread over.
    pub accounts: usize,
    /// Commands answered with data.
    pub ok: u64,
    /// Answers with `errors[0].extensions.code == "CONFLICT"`.
    pub conflicts: u64,
    /// Other refusals (any other error answer).
    pub refused: u64,
    /// The first other refusal, for diagnosis.
    pub first_refusal: Option<String>,
    /// Server-side conflict retries during the phase.
    pub retries: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Successful commands per second.
    pub per_second: f64,
    /// Median latency of one command (all answers), ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// What the database's busy backends were waiting on, sampled from `pg_stat_activity` every
    /// 10 ms: (wait, share of busy-backend samples).
    pub waits: Vec<(String, f64)>,
}

impl Phase {
    /// Human-readable notes for the report: the wait profile and the first refusal.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.waits.is_empty() {
            let waits: Vec<String> = self.waits.iter().map(|(w, share)| format!("{w} {:.0}%", share * 100.0)).collect();
            notes.push(format!("{}: database backends busy with {}", self.name, waits.join(", ")));
        }
        if let Some(refusal) = &self.first_refusal {
            notes.push(format!("{}: first refusal: {refusal}", self.name));
        }
        notes
    }
}

/// A signed-up admin: (session token, account id).
type Admin = (String, String);

/// One simulated client: its own keep-alive connection.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
}

/// How the server answered.
enum Answer {
    Ok(Value),
    Conflict,
    Refused(String),
}

impl Client {
    fn new(url: &str) -> Self {
        Self { http: reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("http client"), url: url.into() }
    }

    async fn call(&self, token: Option<&str>, query: &str, variables: Value) -> Answer {
        let mut request = self.http.post(&self.url).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await.expect("HTTP request").json().await.expect("JSON answer");
        match body.get("errors").and_then(|e| e.get(0)) {
            None => Answer::Ok(body["data"].clone()),
            Some(e) if e["extensions"]["code"] == "CONFLICT" => Answer::Conflict,
            Some(e) => Answer::Refused(e.to_string()),
        }
    }

    async fn sign_up(&self, n: usize) -> Admin {
        let input = json!({ "email": format!("admin{n}@example.com"), "password": "correct horse battery", "displayName": "Bench", "accountName": format!("Bench {n}") });
        match self.call(None, "mutation($i: SignUpInput!) { signUp(input: $i) { token account { id } } }", json!({ "i": input })).await {
            Answer::Ok(data) => (data["signUp"]["token"].as_str().expect("token").into(), data["signUp"]["account"]["id"].as_str().expect("id").into()),
            Answer::Conflict => panic!("sign-up answered CONFLICT"),
            Answer::Refused(e) => panic!("sign-up refused: {e}"),
        }
    }

    async fn invite(&self, (token, account): &Admin, email: &str) -> Answer {
        let input = json!({ "accountId": account, "email": email, "role": "GUEST" });
        self.call(Some(token), "mutation($i: InviteUserInput!) { inviteUser(input: $i) { invitation { id } } }", json!({ "i": input })).await
    }
}

/// Samples `pg_stat_activity` of the database at `url` until `stop` is set.
async fn sample_waits(url: String, stop: Arc<AtomicBool>) -> Vec<(String, f64)> {
    let mut conn = PgConnection::connect(&url).await.expect("connect sampler");
    let mut counts: HashMap<String, u64> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'",
        )
        .fetch_all(&mut conn)
        .await
        .expect("sample pg_stat_activity");
        for (state, kind, event) in rows {
            let key = match (state.as_deref(), kind, event) {
                (Some("idle in transaction"), _, _) => "idle in transaction (waiting for the app)".to_string(),
                (_, Some(kind), Some(event)) => format!("{kind}:{event}"),
                _ => "running (CPU)".to_string(),
            };
            *counts.entry(key).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total: u64 = counts.values().sum();
    let mut waits: Vec<(String, f64)> = counts.into_iter().map(|(k, n)| (k, n as f64 / total.max(1) as f64)).collect();
    waits.sort_by(|a, b| b.1.total_cmp(&a.1));
    waits.truncate(6);
    waits
}

/// Starts the server on the fresh database at `url`, signs up `plan.accounts` accounts and runs
/// every phase. Panics when counts disagree, and in the smoke run on any refused command.
pub async fn run(url: &str, plan: &Plan, started: Instant) -> Vec<Phase> {
    let mut config = Config::new("http://bench.invalid", "bench-secret");
    // Every benchmark client signs up from one address: lift the per-IP password limit.
    config.password_rate_per_ip = roster_api::rate_limit::Rate::new(u32::MAX, std::time::Duration::from_millis(1));
    let settings = Settings { database: DatabaseSettings::new(url), bind: "127.0.0.1:0".into(), config };
    let application = Application::build(settings, Arc::new(SystemClock)).await.expect("start the server");
    let app = application.app().clone();
    let graphql = format!("http://{}/graphql", application.address());
    tokio::spawn(application.run_until_stopped(std::future::pending()));

    progress(started, format_args!("commands: signing up {} accounts (argon2: this takes a while)", plan.accounts));
    let signing = Client::new(&graphql);
    let admins: Vec<Admin> = futures::stream::iter(0..plan.accounts)
        .map(|n| {
            let client = signing.clone();
            async move { client.sign_up(n).await }
        })
        .buffered(8)
        .collect()
        .await;
    let admins = Arc::new(admins);

    let mut runs: Vec<(usize, usize)> = plan.levels.iter().map(|&c| (c, plan.accounts)).collect();
    runs.push((plan.top_level(), 1));
    let mut phases = Vec::new();
    for (index, (clients, accounts)) in runs.into_iter().enumerate() {
        let name = format!("inviteUser, {clients} client(s), {accounts} account(s)");
        progress(started, format_args!("commands: {name}, {} commands", plan.commands));
        let retries_before = app.conflict_retries();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn(sample_waits(url.to_string(), stop.clone()));
        let begin = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|i| {
                let client = Client::new(&graphql);
                let admins = admins.clone();
                // Client i sends commands i, i + clients, …: together every command once.
                let mine: Vec<u64> = (i as u64..plan.commands).step_by(clients).collect();
                tokio::spawn(async move {
                    let mut answers = (histogram(), 0u64, 0u64, 0u64, None::<String>);
                    for k in mine {
                        // Round-robin over the accounts (or all on the first one).
                        let admin = &admins[k as usize % accounts];
                        let email = format!("p{index}.n{k}@example.com");
                        let sent = Instant::now();
                        let answer = client.invite(admin, &email).await;
                        answers.0.record(sent.elapsed().as_micros() as u64).expect("record");
                        match answer {
                            Answer::Ok(_) => answers.1 += 1,
                            Answer::Conflict => answers.2 += 1,
                            Answer::Refused(e) => {
                                answers.3 += 1;
                                answers.4.get_or_insert(e);
                            }
                        }
                    }
                    answers
                })
            })
            .collect();
        let (mut latency, mut ok, mut conflicts, mut refused, mut first_refusal) = (histogram(), 0, 0, 0, None);
        for task in tasks {
            let (h, o, c, r, f) = task.await.expect("client task");
            latency.add(h).expect("merge");
            (ok, conflicts, refused) = (ok + o, conflicts + c, refused + r);
            first_refusal = first_refusal.or(f);
        }
        let seconds = begin.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let waits = sampler.await.expect("sampler");
        let phase = Phase {
            name,
            clients,
            accounts,
            ok,
            conflicts,
            refused,
            first_refusal,
            retries: app.conflict_retries() - retries_before,
            seconds,
            per_second: ok as f64 / seconds,
            p50_ms: ms(&latency, 0.5),
            p99_ms: ms(&latency, 0.99),
            waits,
        };
        if !plan.full {
            assert!(phase.conflicts == 0 && phase.refused == 0, "smoke: commands refused: {phase:?}");
        }
        phases.push(phase);
    }

    // Every accepted command appended exactly one event and its invitation is in the read model
    // (inviteUser answers only once the projections have caught up).
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let ok: u64 = phases.iter().map(|p| p.ok).sum();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut conn).await.expect("count events");
    let invitations: i64 = sqlx::query_scalar("SELECT count(*) FROM invitations").fetch_one(&mut conn).await.expect("count invitations");
    assert_eq!(events as u64, 3 * plan.accounts as u64 + ok, "events: 3 per sign-up + 1 per accepted invite");
    assert_eq!(invitations as u64, ok, "invitations read model: 1 per accepted invite");
    phases
}

/// Table rows for the phases, with ratios to the baseline at the same concurrency and the
/// issue's targets.
pub fn figures(phases: &[Phase], base: &[Level]) -> Vec<Figure> {
    let mut figures = Vec::new();
    let single_baseline_p50 = baseline::at(base, 1).map(|l| l.p50_ms);
    let top = phases.iter().map(|p| p.clients).max().unwrap_or(1);
    for p in phases {
        let one_account = p.accounts == 1 && phases.iter().any(|q| q.clients == p.clients && q.accounts > 1);
        let level = baseline::at(base, p.clients);
        let ratio = level.map(|l| p.per_second / l.per_second);
        let (target, min_ratio) = match (p.clients, one_account) {
            (c, false) if c == top && c > 1 => (Some("≥ 50 % of baseline"), Some(0.5)),
            (_, true) => (Some("≥ 10 % of baseline"), Some(0.1)),
            _ => (None, None),
        };
        let met = min_ratio.zip(ratio).map(|(min, r)| r >= min);
        figures.push(Figure::new(format!("{}: throughput", p.name), p.per_second, "cmd/s", ratio, target, met));
        if p.clients == 1 && !one_account {
            let bound = single_baseline_p50.map(|b| 2.0 * b + 2.0);
            figures.push(Figure::new(
                format!("{}: p50", p.name),
                p.p50_ms,
                "ms",
                single_baseline_p50.map(|b| p.p50_ms / b),
                Some("≤ 2 × baseline p50 + 2 ms"),
                bound.map(|b| p.p50_ms <= b),
            ));
        } else {
            figures.push(Figure::plain(format!("{}: p50", p.name), p.p50_ms, "ms"));
        }
        figures.push(Figure::plain(format!("{}: p99", p.name), p.p99_ms, "ms"));
        let conflict_target = one_account.then_some("0");
        figures.push(Figure::new(format!("{}: CONFLICT answers", p.name), p.conflicts as f64, "", None, conflict_target, one_account.then_some(p.conflicts == 0)));
        figures.push(Figure::plain(format!("{}: other refusals", p.name), p.refused as f64, ""));
        figures.push(Figure::plain(format!("{}: server conflict retries", p.name), p.retries as f64, ""));
    }
    figures
}
