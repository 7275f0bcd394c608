//! `roster serve` replicas: the compiled binary as child processes on free loopback ports,
//! sharing one database, each with its log kept for the test to read. Also the operator
//! commands tests use around them (wait until caught up, compare with a rebuild).

use super::{read_models, roster, roster_output, ApiClient, OPERATOR_TOKEN, PUBLIC_URL};
use sqlx::postgres::PgPoolOptions;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The session secret every replica shares, so a token issued by one works on all.
const JWT_SECRET: &str = "3f9a1c7e5b2d8f4a6c0e9b7d5a3f1c8e2b6d4a0f9c7e5b3d1a8f6c4e2b0d9a7f";

/// What the server logs once it listens; the address follows.
const LISTENING: &str = "roster listening on http://";

/// What a command logs when its read models did not catch up within the timeout.
const LATE_READ: &str = "read models did not catch up in time";

/// A `roster serve` process and a client of it (fields and methods through `Deref`). Dropping
/// it kills the process.
pub struct Replica {
    api: ApiClient,
    child: Child,
    log: Arc<Mutex<String>>,
}

/// One committed projection batch, as the projector logs it at debug level.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Batch {
    /// The projection's name.
    pub projection: String,
    /// The checkpoint it started after.
    pub after: i64,
    /// The checkpoint it committed.
    pub reached: i64,
}

/// Starts `n` replicas on `database_url` at once (each migrates first, as `serve` does), with
/// extra environment `env`; returns when all listen.
pub async fn start_replicas(database_url: &str, n: usize, env: &[(&str, &str)]) -> Vec<Replica> {
    let started: Vec<_> = (0..n).map(|_| spawn(database_url, env)).collect();
    let mut replicas = Vec::new();
    for (child, log, address) in started {
        let address = match tokio::time::timeout(Duration::from_secs(30), address).await {
            Ok(Ok(address)) => address,
            _ => panic!("replica did not start; its log:\n{}", log.lock().unwrap()),
        };
        let pool = PgPoolOptions::new().max_connections(5).connect(database_url).await.expect("connect test db");
        let api = ApiClient { address, pool, database_url: database_url.to_string(), client: reqwest::Client::new() };
        replicas.push(Replica { api, child, log });
    }
    replicas
}

/// Spawns one `roster serve` on port 0; a thread drains its stderr into the log and sends the
/// address it announces.
fn spawn(database_url: &str, env: &[(&str, &str)]) -> (Child, Arc<Mutex<String>>, tokio::sync::oneshot::Receiver<String>) {
    let mut command = roster(&["serve", "--bind", "127.0.0.1:0"]);
    command
        .env("DATABASE_URL", database_url)
        .env("ROSTER_JWT_SECRET", JWT_SECRET)
        .env("ROSTER_PUBLIC_URL", PUBLIC_URL)
        .env("ROSTER_OPERATOR_TOKEN", OPERATOR_TOKEN)
        // As in the in-process test config: tests sign up and act at once (tests/api/verify.rs
        // turns it on).
        .env("ROSTER_REQUIRE_VERIFIED_EMAIL", "false")
        .env("RUST_LOG", "info,sqlx=warn,roster_projections=debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn roster serve");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (send, address) = tokio::sync::oneshot::channel();
    let kept = log.clone();
    std::thread::spawn(move || {
        let mut send = Some(send);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find(LISTENING) {
                let address = line[at + LISTENING.len() - "http://".len()..].split_whitespace().next().unwrap_or_default().to_string();
                if let Some(send) = send.take() {
                    let _ = send.send(address);
                }
            }
            let mut log = kept.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    (child, log, address)
}

impl Replica {
    /// Starts one replica, see [`start_replicas`].
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Replica {
        start_replicas(database_url, 1, env).await.pop().unwrap()
    }

    /// `kill -9`: the process gets no chance to finish anything; its log stays readable.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// `kill -TERM` (as Docker and Kubernetes stop a container), then waits up to `within` for
    /// the process to exit; its exit status, `None` if it is still running.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        self.exited(within)
    }

    /// Sends the process signal `name` (`TERM`, `INT`, …) and returns at once.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `within` for the process to exit; its exit status, `None` if still running.
    pub fn exited(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                return Some(exit);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Asserts that every command's read-your-writes wait ended because the read models caught
    /// up, never by its timeout (which would let a command answer before its events show).
    pub fn assert_no_late_reads(&self) {
        let log = self.log();
        assert!(!log.contains(LATE_READ), "a command answered before its read models caught up:\n{log}");
    }

    /// The projection batches this replica committed, from its debug log.
    pub fn batches(&self) -> Vec<Batch> {
        let field = |line: &str, name: &str| -> Option<String> {
            let at = line.find(&format!(" {name}="))? + name.len() + 2;
            Some(line[at..].split_whitespace().next()?.trim_matches('"').to_string())
        };
        self.log()
            .lines()
            .filter(|l| l.contains("projection batch committed"))
            .map(|l| Batch {
                projection: field(l, "projection").expect("projection field"),
                after: field(l, "after").and_then(|v| v.parse().ok()).expect("after field"),
                reached: field(l, "reached").and_then(|v| v.parse().ok()).expect("reached field"),
            })
            .collect()
    }
}

impl std::ops::Deref for Replica {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `roster projections status` as (name, checkpoint, lag) lines.
pub async fn projections_status(database_url: &str) -> Vec<(String, i64, i64)> {
    let url = database_url.to_string();
    let out = tokio::task::spawn_blocking(move || roster_output(&url, &["projections", "status"])).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields[0].to_string(), fields[1].parse().unwrap(), fields[2].parse().unwrap())
        })
        .collect()
}

/// Polls `roster projections status` until every projection's lag is 0 (30 s at most).
pub async fn wait_caught_up(database_url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = projections_status(database_url).await;
        if status.iter().all(|(_, _, lag)| *lag == 0) {
            return;
        }
        assert!(Instant::now() < deadline, "projections did not catch up: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts the read models equal what `roster projections rebuild` makes of the whole log.
pub async fn assert_equal_to_rebuild(api: &ApiClient) {
    let incremental = read_models(&api.pool).await;
    let url = api.database_url.clone();
    let out = tokio::task::spawn_blocking(move || roster_output(&url, &["projections", "rebuild"])).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(incremental.iter().any(|(_, rows)| !rows.is_empty()), "nothing was projected");
    assert_eq!(read_models(&api.pool).await, incremental, "read models differ from a fresh rebuild");
}
