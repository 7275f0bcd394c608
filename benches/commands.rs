//! Prints latency and throughput figures for the write and read paths against a real
//! PostgreSQL (`scripts/with-postgres cargo bench --bench commands`). Figures, not pass/fail:
//! compare them across changes on the same machine.
//!
//! - `inviteUser` over HTTP, one client: latency percentiles (includes waiting for the
//!   projections: read-your-writes).
//! - `inviteUser` over HTTP, 16 clients on 16 accounts: throughput.
//! - catch-up reading of the whole log: events per second.
//! - rebuilding every projection from position 0.

#[path = "../tests/common/mod.rs"]
mod common;

use futures::future::join_all;
use hdrhistogram::Histogram;
use std::time::Instant;

fn report(name: &str, histogram: &Histogram<u64>) {
    println!(
        "{name:<36} n={:<6} p50={:>7.2}ms p95={:>7.2}ms p99={:>7.2}ms max={:>7.2}ms",
        histogram.len(),
        histogram.value_at_quantile(0.50) as f64 / 1000.0,
        histogram.value_at_quantile(0.95) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let app = common::spawn_app().await;

    let admin = app.sign_up("bench@example.com", "Bench").await;
    let mut latency = Histogram::<u64>::new(3).unwrap();
    for i in 0..300 {
        let started = Instant::now();
        app.invite_ok(&admin.token, &admin.account_id, &format!("seq{i}@example.com"), "GUEST").await;
        latency.record(started.elapsed().as_micros() as u64).unwrap();
    }
    report("inviteUser, 1 client", &latency);

    let admins = join_all((0..16).map(|i| app.sign_up(format!("admin{i}@example.com").leak(), "Parallel"))).await;
    let started = Instant::now();
    let per_client = 50;
    join_all(admins.iter().map(|a| async {
        for i in 0..per_client {
            app.invite_ok(&a.token, &a.account_id, &format!("par{i}@example.com"), "GUEST").await;
        }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    println!("{:<36} {:>8.0} commands/s ({} in {elapsed:.2}s)", "inviteUser, 16 clients", (16 * per_client) as f64 / elapsed, 16 * per_client);

    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
    let started = Instant::now();
    let mut after = 0;
    let mut read = 0;
    loop {
        let batch = roster_store::reader::read_after(&app.pool, after, 1000, Default::default()).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        read += batch.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(read as i64, total);
    println!("{:<36} {:>8.0} events/s ({read} events)", "catch-up read", read as f64 / elapsed);

    let started = Instant::now();
    roster_projections::rebuild::rebuild(&app.pool, &[]).await.unwrap();
    println!("{:<36} {:>8.2}s for {total} events, 3 projections", "rebuild", started.elapsed().as_secs_f64());
}
