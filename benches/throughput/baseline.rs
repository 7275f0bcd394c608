//! The baseline: what the database itself does with single-row durable appends. A table with the
//! columns and indexes of `events` but none of its triggers, one `INSERT` per transaction
//! (autocommit, so every insert waits for its own WAL flush unless group commit joins it with
//! others), at each concurrency level for a fixed time. Every write-path figure is divided by the
//! baseline at the same concurrency.

use crate::generate::{sample_invitation, Rng};
use crate::report::Figure;
use crate::{progress, Plan};
use hdrhistogram::Histogram;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};

/// `events` from `migrations/20261130000001_event_store.sql`, without the triggers.
const TABLE: &str = "
CREATE TABLE baseline_events
(
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL CHECK (sequence >= 1),
    event_type     text   NOT NULL,
    event_version  text   NOT NULL,
    payload        jsonb  NOT NULL,
    metadata       jsonb  NOT NULL,
    position       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    account_id     uuid GENERATED ALWAYS AS (
        CASE WHEN aggregate_type = 'Account' THEN aggregate_id::uuid END) STORED,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE INDEX baseline_events_account_position ON baseline_events (account_id, position) WHERE account_id IS NOT NULL;
";

/// One concurrency level of the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Connections inserting at once.
    pub connections: usize,
    /// Committed inserts.
    pub count: u64,
    /// Wall time of the level, seconds.
    pub seconds: f64,
    /// Committed inserts per second.
    pub per_second: f64,
    /// Median latency of one INSERT + COMMIT, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// A latency histogram in microseconds, 1 µs .. 60 s.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Milliseconds at quantile `q` of a microsecond histogram.
pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// One connection appending to its own stream until `deadline`.
async fn writer(url: String, seed: u64, deadline: Instant) -> Histogram<u64> {
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let mut rng = Rng::new(seed);
    let (payload, metadata) = sample_invitation(&mut rng);
    let stream = rng.uuid().to_string();
    let mut latency = histogram();
    let mut sequence = 0i64;
    while Instant::now() < deadline {
        sequence += 1;
        let started = Instant::now();
        sqlx::query(
            "INSERT INTO baseline_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('Account', $1, $2, 'MemberInvited', '2.0.0', $3, $4)",
        )
        .bind(&stream)
        .bind(sequence)
        .bind(&payload)
        .bind(&metadata)
        .execute(&mut conn)
        .await
        .expect("baseline insert");
        latency.record(started.elapsed().as_micros() as u64).expect("record");
    }
    latency
}

/// Runs every level of `plan` against the fresh database at `url`.
pub async fn run(url: &str, plan: &Plan, started: Instant) -> Vec<Level> {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(TABLE).execute(&mut conn).await.expect("create baseline table");
    let mut levels = Vec::new();
    for &connections in &plan.levels {
        progress(started, format_args!("baseline: {connections} connection(s) for {:.1}s", plan.baseline_time.as_secs_f64()));
        // Connections are opened before the clock starts: a short warm-up, then the level.
        let begin = Instant::now() + Duration::from_millis(300);
        let deadline = begin + plan.baseline_time;
        let tasks: Vec<_> = (0..connections)
            .map(|i| {
                let url = url.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep_until(begin.into()).await;
                    writer(url, ((connections as u64) << 16) + i as u64, deadline).await
                })
            })
            .collect();
        let mut all = histogram();
        for task in tasks {
            all.add(task.await.expect("baseline writer")).expect("merge");
        }
        let seconds = begin.elapsed().as_secs_f64();
        let count = all.len();
        assert!(count > 0, "the baseline committed nothing");
        levels.push(Level { connections, count, seconds, per_second: count as f64 / seconds, p50_ms: ms(&all, 0.5), p99_ms: ms(&all, 0.99) });
    }
    levels
}

/// The baseline at `connections`, if measured.
pub fn at(levels: &[Level], connections: usize) -> Option<&Level> {
    levels.iter().find(|l| l.connections == connections)
}

/// Table rows for the baseline.
pub fn figures(levels: &[Level]) -> Vec<Figure> {
    levels
        .iter()
        .flat_map(|l| {
            let name = format!("baseline INSERT+COMMIT, {} conn", l.connections);
            [
                Figure::plain(format!("{name}: throughput"), l.per_second, "tx/s"),
                Figure::plain(format!("{name}: p50"), l.p50_ms, "ms"),
                Figure::plain(format!("{name}: p99"), l.p99_ms, "ms"),
            ]
        })
        .collect()
}
