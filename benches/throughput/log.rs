//! The log at scale: a seeded log written with `COPY` into a fresh, migrated database, then
//! reading it back four ways: the `COPY … TO STDOUT` ceiling (what PostgreSQL can hand out),
//! catch-up reading through `reader::read_after` (as the projector reads), the real
//! `roster events` binary, and rebuilding every projection.

use crate::generate::{Expected, Generator};
use crate::report::Figure;
use crate::{progress, Plan};
use futures::StreamExt;
use serde::Serialize;
use sqlx::PgPool;
use std::process::Stdio;
use std::time::Instant;
use tokio::io::AsyncBufReadExt;

/// The columns the read ceiling and the readers return.
const COLUMNS: &str = "position, recorded_at, account_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata";

/// Figures of the log phase.
#[derive(Debug, Clone, Serialize)]
pub struct LogFigures {
    /// Events in the log.
    pub events: u64,
    /// Writing them with `COPY`, events/s (generation included).
    pub copy_in_per_second: f64,
    /// `COPY (SELECT … ORDER BY position) TO STDOUT`, events/s.
    pub ceiling_per_second: f64,
    /// Bytes the ceiling read handed out.
    pub ceiling_bytes: u64,
    /// `reader::read_after` in projector-sized batches, events/s.
    pub catch_up_per_second: f64,
    /// `roster events --after 0 > /dev/null`: wall time, seconds.
    pub feed_seconds: f64,
    /// The same as events/s.
    pub feed_per_second: f64,
    /// Rebuild of all projections: seconds, or `None` when it hit the time limit.
    pub rebuild_seconds: Option<f64>,
    /// The time limit of the rebuild, seconds.
    pub rebuild_timeout: f64,
}

impl LogFigures {
    /// Table rows, with ratios to the `COPY` ceiling and the targets.
    pub fn figures(&self) -> Vec<Figure> {
        let ceiling = self.ceiling_per_second;
        let feed_ratio = self.feed_per_second / ceiling;
        let mut figures = vec![
            Figure::plain(format!("log: events written with COPY ({} events)", self.events), self.copy_in_per_second, "events/s"),
            Figure::plain("read ceiling: COPY (SELECT … ORDER BY position) TO STDOUT", ceiling, "events/s"),
            Figure::new("catch-up read: reader::read_after, projector batches", self.catch_up_per_second, "events/s", Some(self.catch_up_per_second / ceiling), None, None),
            Figure::new("roster events --after 0 > /dev/null", self.feed_per_second, "events/s", Some(feed_ratio), Some("≥ 50 % of COPY ceiling"), Some(feed_ratio >= 0.5)),
            Figure::plain("roster events --after 0 > /dev/null: wall time", self.feed_seconds, "s"),
        ];
        match self.rebuild_seconds {
            Some(seconds) => {
                let rate = self.events as f64 / seconds;
                figures.push(Figure::new("rebuild of all projections", rate, "events/s", None, Some("≥ 100000 events/s"), Some(rate >= 100_000.0)));
                figures.push(Figure::plain("rebuild of all projections: wall time", seconds, "s"));
            }
            None => {
                // It did not finish: the rate is below events / limit; the table says so.
                let bound = self.events as f64 / self.rebuild_timeout;
                let mut figure = Figure::new("rebuild of all projections (did not finish: upper bound)", bound, "events/s", None, Some("≥ 100000 events/s"), Some(false));
                figure.note = Some(format!("did not finish in {:.0} s", self.rebuild_timeout));
                figures.push(figure);
            }
        }
        figures
    }
}

/// Generates `plan.events` events into the fresh database at `url` and measures reading and
/// rebuilding them. Panics when any reader's count disagrees with what was written, and in the
/// smoke run when the rebuilt read models disagree with the generated log.
pub async fn run(url: &str, plan: &Plan, started: Instant) -> LogFigures {
    let pool = roster_store::db::connect(url, 4).await.expect("connect");
    roster_store::db::migrate(&pool).await.expect("migrate");

    progress(started, format_args!("log: generating and writing {} events with COPY", plan.events));
    let begin = Instant::now();
    let mut conn = pool.acquire().await.expect("connection");
    let mut copy = conn
        .copy_in_raw("COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) FROM STDIN")
        .await
        .expect("COPY FROM STDIN");
    let mut generator = Generator::new(plan.events);
    let mut reported = 0;
    while let Some(chunk) = generator.next_chunk(1 << 20) {
        copy.send(chunk).await.expect("COPY data");
        let written = generator.expected().events;
        if written >= reported + 100_000 {
            progress(started, format_args!("log: {written} events"));
            reported = written;
        }
    }
    let expected = generator.expected();
    let rows = copy.finish().await.expect("COPY finish");
    let copy_in_per_second = rows as f64 / begin.elapsed().as_secs_f64();
    assert_eq!(rows, expected.events, "COPY wrote every generated event");
    drop(conn);
    // Reads below should measure reading, not setting hint bits on a million fresh rows.
    sqlx::query("VACUUM (ANALYZE) events").execute(&pool).await.expect("vacuum");
    let events = expected.events;

    progress(started, "log: read ceiling (COPY TO STDOUT)");
    let mut conn = pool.acquire().await.expect("connection");
    let begin = Instant::now();
    let mut out = conn.copy_out_raw(&format!("COPY (SELECT {COLUMNS} FROM events ORDER BY position) TO STDOUT")).await.expect("COPY TO STDOUT");
    let (mut ceiling_bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = out.next().await {
        let chunk = chunk.expect("COPY data");
        ceiling_bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let ceiling_per_second = events as f64 / begin.elapsed().as_secs_f64();
    drop(out);
    drop(conn);
    assert_eq!(lines, events, "COPY TO STDOUT returned every event");

    progress(started, "log: catch-up read (reader::read_after)");
    let begin = Instant::now();
    let (mut after, mut read) = (0, 0u64);
    loop {
        let batch = roster_store::reader::read_after(&pool, after, roster_projections::projector::BATCH_SIZE, Default::default()).await.expect("read_after");
        let Some(last) = batch.last() else { break };
        after = last.position;
        read += batch.len() as u64;
    }
    let catch_up_per_second = read as f64 / begin.elapsed().as_secs_f64();
    assert_eq!(read, events, "catch-up read returned every event");

    progress(started, "log: roster events --after 0 > /dev/null");
    let feed_seconds = feed(url, None).await;
    if !plan.full {
        // Once, with a counter on the pipe: the feed must have one line per event.
        let mut count = 0;
        feed(url, Some(&mut count)).await;
        assert_eq!(count, events, "roster events printed one line per event");
    }

    progress(started, format_args!("log: rebuilding all projections (limit {} s)", plan.rebuild_timeout.as_secs()));
    let begin = Instant::now();
    let rebuild_seconds = match tokio::time::timeout(plan.rebuild_timeout, roster_projections::rebuild::rebuild(&pool, &[])).await {
        Ok(result) => {
            result.expect("rebuild");
            Some(begin.elapsed().as_secs_f64())
        }
        Err(_) => {
            assert!(plan.full, "smoke: the rebuild did not finish in {:?}", plan.rebuild_timeout);
            progress(started, format_args!("log: rebuild did not finish in {} s", plan.rebuild_timeout.as_secs()));
            None
        }
    };
    if rebuild_seconds.is_some() {
        check_read_models(&pool, expected).await;
    }
    LogFigures {
        events,
        copy_in_per_second,
        ceiling_per_second,
        ceiling_bytes,
        catch_up_per_second,
        feed_seconds,
        feed_per_second: events as f64 / feed_seconds,
        rebuild_seconds,
        rebuild_timeout: plan.rebuild_timeout.as_secs_f64(),
    }
}

/// Runs `roster events --after 0` against `url` with stdout to /dev/null (or counted into
/// `lines`); returns its wall time in seconds. Panics when it fails.
async fn feed(url: &str, lines: Option<&mut u64>) -> f64 {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"));
    command.args(["events", "--after", "0"]).env("DATABASE_URL", url).env("RUST_LOG", "warn").stdin(Stdio::null());
    command.stdout(if lines.is_some() { Stdio::piped() } else { Stdio::null() });
    let begin = Instant::now();
    let mut child = command.spawn().expect("start roster events");
    if let Some(lines) = lines {
        let mut reader = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        while reader.next_line().await.expect("read the feed").is_some() {
            *lines += 1;
        }
    }
    let status = child.wait().await.expect("roster events");
    assert!(status.success(), "roster events failed: {status}");
    begin.elapsed().as_secs_f64()
}

/// The rebuilt read models hold what the generated log says.
async fn check_read_models(pool: &PgPool, expected: Expected) {
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.expect(sql) as u64 };
    assert_eq!(count("SELECT count(*) FROM audit_log").await, expected.account_events, "audit_log: one entry per account event");
    assert_eq!(count("SELECT count(*) FROM users").await, expected.users, "users: one per UserRegistered");
    assert_eq!(count("SELECT count(*) FROM members").await, expected.members, "members: joined minus removed");
    assert_eq!(count("SELECT count(*) FROM invitations").await, expected.invitations, "invitations: one per MemberInvited");
    let lag: i64 = sqlx::query_scalar("SELECT count(*) FROM projection_checkpoints WHERE position < (SELECT max(position) FROM events)")
        .fetch_one(pool)
        .await
        .expect("checkpoints");
    assert_eq!(lag, 0, "every checkpoint at the end of the log after the rebuild");
}
