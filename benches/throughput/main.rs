//! Roster's throughput benchmark (issue 8; how to run and read it: `docs/benchmarks.md`).
//!
//! One process, one PostgreSQL with durable settings, every figure next to the baseline it is
//! judged against, all measured in the same run (absolute times drift on shared machines;
//! ratios to a same-run baseline do not):
//!
//! - [`baseline`]: raw single-row `INSERT` + `COMMIT` into an `events`-shaped table;
//! - [`commands`]: `inviteUser` through HTTP + GraphQL at 1, 4 and 16 clients;
//! - [`log`]: a seeded log written with `COPY` ([`generate`]), then the `COPY … TO STDOUT` read
//!   ceiling, catch-up reading, `roster events` and the rebuild of every projection;
//! - [`big_account`]: commands and list reads on an account with N members and N invitations,
//!   against a fresh account and a `SELECT 1` round trip;
//! - [`subscriptions`]: query latency with many subscriptions open while clients write, as a
//!   ratio to the same query without them;
//! - [`report`]: the table on stdout and the same figures as JSON.
//!
//! `cargo bench --bench throughput` passes `--bench`: that selects the full run. Without it
//! (`cargo test`, which runs this target because of `test = true`) it is a smoke run with tiny
//! sizes against `DATABASE_URL` that panics when anything is broken.

mod baseline;
mod big_account;
#[path = "../../src/cluster.rs"]
mod cluster;
mod commands;
mod generate;
mod log;
mod report;
mod subscriptions;

use clap::Parser;
use report::{Figure, Report};
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};

/// Flags of the full run (`cargo bench --bench throughput -- --events 200000 …`).
#[derive(Debug, Parser)]
#[command(about = "Roster throughput benchmark (docs/benchmarks.md)")]
struct Args {
    /// Set by `cargo bench`: selects the full run; without it the program runs the smoke test.
    #[arg(long, hide = true)]
    bench: bool,
    /// Events in the generated log.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// `inviteUser` commands per phase (each concurrency level is one phase).
    #[arg(long, default_value_t = 1_000)]
    commands: u64,
    /// Accounts the command phases spread over.
    #[arg(long, default_value_t = 1_000)]
    accounts: usize,
    /// Members (and as many pending invitations) seeded into the big account.
    #[arg(long, default_value_t = 10_000)]
    big_account: u64,
    /// Seconds each baseline concurrency level runs.
    #[arg(long, default_value_t = 5.0)]
    baseline_secs: f64,
    /// Give up on the rebuild after this many seconds (reported as "did not finish").
    #[arg(long, default_value_t = 600)]
    rebuild_timeout: u64,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/benchmarks/throughput.json")]
    json: std::path::PathBuf,
    /// Use this cluster (it must run with fsync and synchronous_commit on) instead of starting
    /// a throwaway one.
    #[arg(long)]
    database_url: Option<String>,
    /// Run only these phases (comma-separated: baseline, commands, big-account, subscriptions,
    /// log); the command phases need the baseline and run it too. For profiling one phase;
    /// the figures quoted in `docs/benchmarks.md` come from runs of every phase.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Phase>,
}

/// A phase of the full run (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Baseline,
    Commands,
    BigAccount,
    Subscriptions,
    Log,
}

/// Sizes of one run: full or smoke.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Full run (durable cluster, report) or smoke run (tiny, panics on any failure).
    pub full: bool,
    /// Events in the generated log.
    pub events: u64,
    /// Commands per command phase.
    pub commands: u64,
    /// Accounts signed up for the command phases.
    pub accounts: usize,
    /// Members and pending invitations of the big account.
    pub big_account: u64,
    /// Concurrency levels of the baseline and the command phases over many accounts.
    pub levels: Vec<usize>,
    /// Time per baseline level.
    pub baseline_time: Duration,
    /// Limit on the rebuild.
    pub rebuild_timeout: Duration,
    /// Websocket subscriptions open in the subscription phase.
    pub subscribers: usize,
    /// Queries timed without subscriptions, and as many with them, in the subscription phase.
    pub queries: u64,
    /// Blocks of each (alternating) they are split into.
    pub rounds: usize,
}

impl Plan {
    fn full(args: &Args) -> Self {
        Self {
            full: true,
            events: args.events,
            commands: args.commands,
            accounts: args.accounts.max(1),
            big_account: args.big_account,
            levels: vec![1, 4, 16],
            baseline_time: Duration::from_secs_f64(args.baseline_secs),
            rebuild_timeout: Duration::from_secs(args.rebuild_timeout),
            subscribers: 50,
            queries: 4_000,
            rounds: 4,
        }
    }

    fn smoke() -> Self {
        Self {
            full: false,
            events: 400,
            commands: 6,
            accounts: 4,
            big_account: 30,
            levels: vec![1, 2],
            baseline_time: Duration::from_millis(200),
            rebuild_timeout: Duration::from_secs(20),
            subscribers: 3,
            queries: 20,
            rounds: 2,
        }
    }

    /// The highest concurrency level (also the client count of the one-account phase).
    pub fn top_level(&self) -> usize {
        *self.levels.iter().max().expect("levels")
    }
}

/// `base` with its database name replaced by `name` (password and query parameters kept).
pub fn with_database(base: &str, name: &str) -> String {
    let (url, query) = base.split_once('?').map_or((base, ""), |(u, q)| (u, q));
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..].find('/').map_or(url.len(), |i| authority_start + i);
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    format!("{}/{name}{query}", &url[..authority_end])
}

/// Creates an empty database in the cluster `admin_url` points at; returns its URL.
pub async fn fresh_database(admin_url: &str, purpose: &str) -> String {
    let name = format!("roster_bench_{purpose}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(admin_url).await.expect("connect to the cluster");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
    with_database(admin_url, &name)
}

/// Peak resident set size of this process so far (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Progress on stderr, with the time since start (stdout is kept for the table).
pub fn progress(started: Instant, message: impl std::fmt::Display) {
    eprintln!("[{:>6.1}s] {message}", started.elapsed().as_secs_f64());
}

/// The allocator `roster` runs with (src/main.rs): mimalloc instead of glibc's allocator: under 16 concurrent clients `malloc`/`free` were a
/// third of the server's user-space CPU here (many small, short-lived allocations across threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let full = argv.iter().any(|a| a == "--bench");
    // The smoke run takes no flags: `cargo test` may pass its own, which are not ours.
    let args = if full { Args::parse_from(&argv) } else { Args::try_parse_from(&argv[..1]).expect("defaults") };
    let plan = if full { Plan::full(&args) } else { Plan::smoke() };
    let started = Instant::now();

    // Held until the end of main: dropping it stops and deletes the throwaway cluster.
    let mut cluster = None;
    let admin_url = match (&args.database_url, full) {
        (Some(url), _) => url.clone(),
        (None, true) => {
            let c = cluster::Cluster::start().expect("start a throwaway PostgreSQL cluster");
            progress(started, format_args!("throwaway durable cluster at {}", c.url()));
            cluster.insert(c).url().to_string()
        }
        (None, false) => std::env::var("DATABASE_URL").expect("DATABASE_URL is not set: run through scripts/with-postgres"),
    };
    let server = report::server_info(&admin_url).await;
    if full && !server.durable() {
        panic!("refusing to run: fsync={} synchronous_commit={} (every figure must be with durable commits)", server.fsync, server.synchronous_commit);
    }
    progress(started, format_args!("{} (fsync={}, synchronous_commit={}, full_page_writes={})", server.version, server.fsync, server.synchronous_commit, server.full_page_writes));

    let mut figures: Vec<Figure> = Vec::new();
    let runs = |phase: Phase| args.only.is_empty() || args.only.contains(&phase) || (phase == Phase::Baseline && args.only.contains(&Phase::Commands));

    let mut phases = Vec::new();
    if runs(Phase::Baseline) {
        let url = fresh_database(&admin_url, "baseline").await;
        let base = baseline::run(&url, &plan, started).await;
        figures.extend(baseline::figures(&base));
        if runs(Phase::Commands) {
            let url = fresh_database(&admin_url, "commands").await;
            phases = commands::run(&url, &plan, started).await;
            figures.extend(commands::figures(&phases, &base));
        }
    }
    let rss_after_commands = peak_rss_mib();

    if runs(Phase::BigAccount) {
        let url = fresh_database(&admin_url, "big_account").await;
        let big = big_account::run(&url, &plan, plan.big_account, started).await;
        figures.extend(big.figures());
    }

    if runs(Phase::Subscriptions) {
        let url = fresh_database(&admin_url, "subscriptions").await;
        let subs = subscriptions::run(&url, &plan, started).await;
        figures.extend(subs.figures());
    }

    if runs(Phase::Log) {
        let url = fresh_database(&admin_url, "log").await;
        let log = log::run(&url, &plan, started).await;
        figures.extend(log.figures());
    }

    figures.push(Figure::plain("peak RSS after the command phases", rss_after_commands, "MiB"));
    figures.push(Figure::plain("peak RSS at the end", peak_rss_mib(), "MiB"));
    let report = Report::new(&plan, server, figures, phases.iter().flat_map(|p| p.notes()).collect(), started.elapsed());
    report.print();
    if full {
        report.write_json(&args.json);
        progress(started, format_args!("JSON written to {}", args.json.display()));
    }
    progress(started, "done");
    drop(cluster);
}
