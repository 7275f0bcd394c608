//! The report: one row per figure (name, value, unit, ratio to its baseline, target, met?) on
//! stdout, and the same with the machine, the PostgreSQL settings, the date and the commit as
//! JSON.

use crate::Plan;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use std::path::Path;
use std::time::Duration;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The measurement.
    pub value: f64,
    /// Its unit (empty for counts).
    pub unit: &'static str,
    /// Value ÷ its baseline in the same run, where there is one.
    pub ratio: Option<f64>,
    /// The target, where there is one.
    pub target: Option<&'static str>,
    /// Whether the target is met.
    pub met: Option<bool>,
    /// A remark, e.g. that a phase did not finish.
    pub note: Option<String>,
}

impl Figure {
    /// A figure with all its columns.
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str, ratio: Option<f64>, target: Option<&'static str>, met: Option<bool>) -> Self {
        Self { name: name.into(), value, unit, ratio, target, met, note: None }
    }

    /// A figure without ratio or target.
    pub fn plain(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Self::new(name, value, unit, None, None, None)
    }
}

/// The PostgreSQL server the run used.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// `SELECT version()`.
    pub version: String,
    /// `SHOW fsync`.
    pub fsync: String,
    /// `SHOW synchronous_commit`.
    pub synchronous_commit: String,
    /// `SHOW full_page_writes`.
    pub full_page_writes: String,
    /// `SHOW max_connections`.
    pub max_connections: String,
}

impl ServerInfo {
    /// Whether commits are durable (fsync and synchronous_commit on).
    pub fn durable(&self) -> bool {
        self.fsync == "on" && self.synchronous_commit == "on"
    }
}

/// Asks the server at `url` for its version and settings.
pub async fn server_info(url: &str) -> ServerInfo {
    let mut conn = PgConnection::connect(url).await.expect("connect to the cluster");
    let mut show = async |what: &str| -> String { sqlx::query_scalar(&format!("SHOW {what}")).fetch_one(&mut conn).await.expect("SHOW") };
    let fsync = show("fsync").await;
    let synchronous_commit = show("synchronous_commit").await;
    let full_page_writes = show("full_page_writes").await;
    let max_connections = show("max_connections").await;
    let version = sqlx::query_scalar("SELECT version()").fetch_one(&mut conn).await.expect("version");
    ServerInfo { version, fsync, synchronous_commit, full_page_writes, max_connections }
}

/// The machine the run used.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// `MemTotal` from /proc/meminfo, GiB.
    pub memory_gib: f64,
}

impl Machine {
    fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()).unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0.0);
        Self { cpus: std::thread::available_parallelism().map_or(1, |n| n.get()), cpu_model, memory_gib: kib / 1024.0 / 1024.0 }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `full` or `smoke`.
    pub mode: &'static str,
    /// When the run ended (UTC, RFC 3339).
    pub date: String,
    /// `git rev-parse --short HEAD`, when available.
    pub commit: Option<String>,
    /// The machine.
    pub machine: Machine,
    /// The PostgreSQL server.
    pub postgres: ServerInfo,
    /// Sizes: events in the log, commands per phase, accounts.
    pub events: u64,
    /// Commands per command phase.
    pub commands_per_phase: u64,
    /// Accounts signed up for the command phases.
    pub accounts: usize,
    /// Members (and pending invitations) seeded into the big account.
    pub big_account: u64,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
    /// The figures, in table order.
    pub figures: Vec<Figure>,
    /// Observations that are not figures (wait profiles, first refusals).
    pub notes: Vec<String>,
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A value with a sensible number of digits for its size.
fn number(v: f64) -> String {
    if (v == v.trunc() && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Report {
    /// A report of `figures` measured under `plan` on `postgres`.
    pub fn new(plan: &Plan, postgres: ServerInfo, figures: Vec<Figure>, notes: Vec<String>, elapsed: Duration) -> Self {
        Self {
            mode: if plan.full { "full" } else { "smoke" },
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            commit: git_commit(),
            machine: Machine::detect(),
            postgres,
            events: plan.events,
            commands_per_phase: plan.commands,
            accounts: plan.accounts,
            big_account: plan.big_account,
            seconds: elapsed.as_secs_f64(),
            figures,
            notes,
        }
    }

    /// The table (Markdown, so it can be pasted into docs/benchmarks.md as is).
    pub fn print(&self) {
        let m = &self.machine;
        println!("Roster throughput benchmark ({} run), {} at commit {}", self.mode, self.date, self.commit.as_deref().unwrap_or("unknown"));
        println!("Machine: {} CPUs ({}), {:.1} GiB RAM", m.cpus, m.cpu_model, m.memory_gib);
        let pg = &self.postgres;
        println!("PostgreSQL: {}; fsync={}, synchronous_commit={}, full_page_writes={}, max_connections={}", pg.version, pg.fsync, pg.synchronous_commit, pg.full_page_writes, pg.max_connections);
        println!("Server and load generator share one process (peak RSS covers both). Run took {:.0} s.", self.seconds);
        println!();
        println!("| figure | value | unit | ratio to baseline | target | met? |");
        println!("|---|---:|---|---:|---|---|");
        for f in &self.figures {
            // Latencies compare as a factor, rates as a share.
            let ratio = match (f.ratio, f.unit) {
                (Some(r), "ms") => format!("{r:.1} ×"),
                (Some(r), _) => format!("{:.1} %", r * 100.0),
                (None, _) => String::new(),
            };
            let met = match f.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let value = match &f.note {
                Some(note) => format!("< {} ({note})", number(f.value)),
                None => number(f.value),
            };
            println!("| {} | {value} | {} | {ratio} | {} | {met} |", f.name, f.unit, f.target.unwrap_or(""));
        }
        if !self.notes.is_empty() {
            println!();
            for note in &self.notes {
                println!("- {note}");
            }
        }
    }

    /// Writes the report as JSON to `path` (creating its directory).
    pub fn write_json(&self, path: &Path) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).expect("create the JSON report's directory");
        }
        std::fs::write(path, serde_json::to_string_pretty(self).expect("JSON")).expect("write the JSON report");
    }
}
