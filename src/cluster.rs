//! A throwaway PostgreSQL cluster with durable settings, stopped and deleted on drop (also on a
//! panic), like `scripts/with-postgres` but with fsync, synchronous_commit and full_page_writes
//! on. `roster` without a command (`cargo run`) serves on one when `DATABASE_URL` is unset; the
//! benchmark measures on one (its figures must be those of durable commits); the integration
//! tests crash and restart one (`tests/api/database_crash.rs`). Needs Debian's `postgresql`
//! server binaries (or `PG_BINDIR`); as root the cluster belongs to the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running cluster owned by this process.
pub struct Cluster {
    dir: PathBuf,
    bindir: PathBuf,
    url: String,
    /// `pg_ctl start -o …` of the running server, to start it again the same way.
    options: String,
}

/// The newest `/usr/lib/postgresql/*/bin` with `initdb` (or `PG_BINDIR`).
fn bindir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return Some(dir.into());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|p| p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()));
    dirs.pop()
}

/// Whether this process runs as root (effective uid 0, from `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// initdb refuses to run as root: then the cluster belongs to the `postgres` user.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
    }
}

/// A port nobody listens on right now (the OS picks it; PostgreSQL binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(54329)
}

impl Cluster {
    /// Creates and starts a cluster in a temporary directory, listening on 127.0.0.1 at a free
    /// port, with its socket in that directory.
    ///
    /// Errors: what initdb or pg_ctl said.
    pub fn start() -> Result<Self, String> {
        let bindir = bindir().ok_or("no PostgreSQL server binaries (install `postgresql` or set PG_BINDIR)")?;
        let dir = std::env::temp_dir().join(format!("roster-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        // From here on, Drop cleans up whatever exists.
        let mut cluster = Self { dir, bindir, url: String::new(), options: String::new() };
        if is_root() {
            run(Command::new("chown").args(["postgres"]).arg(&cluster.dir), "chown")?;
        }
        let data = cluster.dir.join("data");
        // --no-sync only skips syncing initdb's own files; the server below runs durably.
        let mut initdb = as_owner(&cluster.bindir.join("initdb"));
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        run(&mut initdb, "initdb")?;
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 \
                 -c fsync=on -c synchronous_commit=on -c full_page_writes=on",
                cluster.dir.display()
            );
            cluster.options = options;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
                    return Ok(cluster);
                }
                Err(e) => last_error = format!("{e}\n{}", std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default()),
            }
        }
        Err(last_error)
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let mut start = as_owner(&self.bindir.join("pg_ctl"));
        start.arg("-D").arg(self.dir.join("data")).arg("-l").arg(self.dir.join("server.log")).args(["-w", "-t", "30", "-o", &self.options, "start"]);
        run(&mut start, "pg_ctl start")
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server the way a crash would (`pg_ctl stop -m immediate`: no checkpoint, every
    /// connection cut; what was not flushed to the WAL is gone, and recovery replays the rest
    /// at the next start).
    ///
    /// Errors: what pg_ctl said.
    #[allow(dead_code)] // only the tests crash their cluster
    pub fn crash(&self) -> Result<(), String> {
        let mut stop = as_owner(&self.bindir.join("pg_ctl"));
        stop.arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "-w", "stop"]);
        run(&mut stop, "pg_ctl stop -m immediate")
    }

    /// Starts the server again on the same port with the same settings, after [`Cluster::crash`].
    ///
    /// Errors: what pg_ctl said.
    #[allow(dead_code)]
    pub fn restart(&self) -> Result<(), String> {
        self.pg_ctl_start()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut stop = as_owner(&self.bindir.join("pg_ctl"));
        stop.arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "stop"]);
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
