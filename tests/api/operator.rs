//! Operator-grade messages from the real `roster` binary: database connection failures name
//! host, port, database, user and cause (never the password) for every command that connects;
//! missing or bad settings name their environment variable; `projections status --json`; and
//! JSON logs that say when the server starts and stops.

use crate::helpers::replica::Replica;
use crate::helpers::{fresh_database, roster, roster_output};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// A password that must never be printed.
const PASSWORD: &str = "Tr0ub4dor-never-print-me";

/// A role that logs in with a password even on a `trust` cluster (see [`password_role`]).
const PASSWORD_ROLE: &str = "roster_password_probe";

/// Every command that connects, as the operator would run it against `url`.
fn commands() -> [Vec<&'static str>; 5] {
    [vec!["migrate"], vec!["projections", "status"], vec!["events"], vec!["projections", "rebuild"], vec!["serve", "--dev", "--bind", "127.0.0.1:0"]]
}

/// Runs `args` against `url` and returns stderr, asserting it failed and never shows the password.
fn failure(url: &str, args: &[&str]) -> String {
    let out = roster_output(url, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} succeeded against {url}: {stderr}");
    assert!(!stderr.contains(PASSWORD), "{args:?} printed the password: {stderr}");
    stderr
}

fn base() -> PgConnectOptions {
    PgConnectOptions::from_str(&std::env::var("DATABASE_URL").expect("DATABASE_URL")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_port_is_named_with_connection_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://ada:{PASSWORD}@127.0.0.1:{port}/roster");
    for args in commands() {
        let stderr = failure(&url, &args);
        let expected = format!("host 127.0.0.1 port {port}, database roster, user ada: connection refused");
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
        assert_eq!(stderr.matches("cannot connect to PostgreSQL").count(), 1, "said once: {args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_host_and_a_silent_server_are_named() {
    // `.invalid` never resolves (RFC 6761).
    let stderr = failure(&format!("postgres://ada:{PASSWORD}@db.roster.invalid:5432/roster"), &["migrate"]);
    assert!(stderr.contains("host db.roster.invalid port 5432, database roster, user ada: unknown host"), "{stderr}");
    // A port that accepts connections (the kernel's backlog) but never answers: the probe's
    // time-out, not the pool's.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let stderr = failure(&format!("postgres://ada:{PASSWORD}@127.0.0.1:{port}/roster"), &["migrate"]);
    assert!(stderr.contains(&format!("host 127.0.0.1 port {port}, database roster, user ada: timeout")), "{stderr}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_database_is_named() {
    let o = base();
    let missing = format!("roster_missing_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://{}:{PASSWORD}@{}:{}/{missing}", o.get_username(), o.get_host(), o.get_port());
    for args in commands() {
        let stderr = failure(&url, &args);
        assert!(stderr.contains(&format!("database {missing}, user {}: database does not exist", o.get_username())), "{args:?}: {stderr}");
    }
}

/// Makes [`PASSWORD_ROLE`] log in with a password (scram) on the test cluster, whose other roles
/// may use `trust`: creates the role and puts its `pg_hba.conf` lines first, then reloads.
async fn password_role(admin: &mut PgConnection) {
    let create = format!("DO $$ BEGIN CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD 'the-right-one-4Qx9'; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    sqlx::query(&create).execute(&mut *admin).await.unwrap();
    let path: String = sqlx::query_scalar("SELECT current_setting('hba_file')").fetch_one(&mut *admin).await.unwrap();
    let hba: String = sqlx::query_scalar("SELECT pg_read_file(current_setting('hba_file'))").fetch_one(&mut *admin).await.unwrap();
    if hba.contains(PASSWORD_ROLE) {
        return;
    }
    let mut lines = vec![format!("host all {PASSWORD_ROLE} all scram-sha-256"), format!("local all {PASSWORD_ROLE} scram-sha-256")];
    lines.extend(hba.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string));
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    // CSV with delimiter and quote characters no line holds: each line is written as it is.
    let write = format!(
        "COPY (SELECT unnest(ARRAY[{}])) TO {} WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')",
        lines.iter().map(|l| quote(l)).collect::<Vec<_>>().join(","),
        quote(&path)
    );
    sqlx::query(&write).execute(&mut *admin).await.unwrap();
    sqlx::query("SELECT pg_reload_conf()").execute(&mut *admin).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_an_authentication_failure_and_never_printed() {
    let o = base();
    let mut admin = o.connect().await.expect("connect to DATABASE_URL");
    password_role(&mut admin).await;
    let database = fresh_database().await;
    let database = database.rsplit('/').next().unwrap();
    // The reload is asynchronous: wait until the server asks this role for its password.
    let wrong = o.clone().username(PASSWORD_ROLE).password(PASSWORD).database(database);
    let deadline = Instant::now() + Duration::from_secs(10);
    while PgConnection::connect_with(&wrong).await.is_ok() {
        assert!(Instant::now() < deadline, "the server never asked {PASSWORD_ROLE} for a password");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("postgres://{PASSWORD_ROLE}:{PASSWORD}@{}:{}/{database}", o.get_host(), o.get_port());
    for args in commands() {
        let stderr = failure(&url, &args);
        assert!(stderr.contains(&format!("database {database}, user {PASSWORD_ROLE}: authentication failed")), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_bad_settings_name_their_environment_variable() {
    let out = roster(&["migrate"]).env_remove("DATABASE_URL").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("set DATABASE_URL or pass --database-url"), "{stderr}");

    let url = fresh_database().await;
    let cases = [
        ("ROSTER_INVITE_TTL", "7w"),
        ("ROSTER_REQUEST_TIMEOUT", "soon"),
        ("ROSTER_MAX_BODY_BYTES", "1MB"),
        ("ROSTER_HASH_CONCURRENCY", "0"),
        ("ROSTER_TRUSTED_PROXIES", "proxy.local"),
        ("ROSTER_JWT_SECRET", "x"),
        ("ROSTER_OPERATOR_TOKEN", "change-me"),
        ("ROSTER_METRICS_TOKEN", "secret"),
        ("ROSTER_LOG_FORMAT", "yaml"),
        // Values clap refuses by type or range name their variable too.
        ("ROSTER_WEBSOCKET_NICE", "20"),
        ("ROSTER_MAX_SUBSCRIPTIONS_PER_USER", "-1"),
        ("ROSTER_SLOW_CONSUMER_TIMEOUT", "soon"),
        ("ROSTER_MAX_CONNECTIONS_PER_IP", "many"),
    ];
    for (var, value) in cases {
        let out = roster(&["serve", "--dev", "--bind", "127.0.0.1:0"]).env("DATABASE_URL", &url).env(var, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} was accepted: {stderr}");
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
    }
    let out = roster(&["serve", "--bind", "127.0.0.1:0"]).env("DATABASE_URL", &url).env_remove("ROSTER_JWT_SECRET").env_remove("ROSTER_DEV").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("set ROSTER_JWT_SECRET"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn projection_status_as_json_and_without_a_header_when_piped() {
    let url = fresh_database().await;
    assert!(roster_output(&url, &["migrate"]).status.success());
    let out = roster_output(&url, &["projections", "status", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON array");
    let names: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["members", "invitations", "audit_log"]);
    assert!(rows.as_array().unwrap().iter().all(|r| r["checkpoint"] == 0 && r["lag"] == 0), "{rows}");
    // Piped (as here): no header, one tab-separated line per projection.
    let out = roster_output(&url, &["projections", "status"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "members\t0\t0\ninvitations\t0\t0\naudit_log\t0\t0\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_say_when_the_server_starts_and_stops() {
    let url = fresh_database().await;
    let mut server = Replica::start(&url, &[("ROSTER_LOG_FORMAT", "json")]).await;
    let ready = server.client.get(format!("{}/readyz", server.address)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let exit = server.terminate(Duration::from_secs(20)).expect("the server exits after SIGTERM");
    assert!(exit.success(), "{exit:?}");
    let log = server.log();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))).collect();
    let find = |start: &str| {
        lines.iter().find(|l| l["message"].as_str().is_some_and(|m| m.starts_with(start))).unwrap_or_else(|| panic!("no {start:?} line in\n{log}"))
    };
    let listening = find("roster listening on http://");
    assert_eq!(listening["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(listening["address"], server.address.trim_start_matches("http://"));
    let database = url.rsplit('/').next().unwrap();
    assert!(listening["database"].as_str().unwrap().ends_with(&format!("/{database}")), "{listening}");
    assert_eq!(find("SIGTERM: stopping")["signal"], "SIGTERM");
    assert_eq!(find("drained")["drained"], true);
    assert_eq!(find("roster stopped")["exit_code"], 0);
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()), "{log}");

    // A failure to start is a JSON line too, naming the cause.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = roster(&["serve", "--dev", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", format!("postgres://ada:{PASSWORD}@127.0.0.1:{port}/roster"))
        .env("ROSTER_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let last = lines.last().expect("a log line");
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert!(last["message"].as_str().unwrap().contains("connection refused"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_exits_zero_only_for_a_ready_server() {
    let app = crate::helpers::spawn_app().await;
    let bind = app.address.trim_start_matches("http://").to_string();
    let out = roster(&["healthcheck", "--bind", &bind]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ready");
    // An unspecified address is asked on loopback, as in the container (ROSTER_BIND=0.0.0.0:…).
    let port = bind.rsplit(':').next().unwrap();
    let out = roster(&["healthcheck"]).env("ROSTER_BIND", format!("0.0.0.0:{port}")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Nothing listening: a failure that names the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = roster(&["healthcheck", "--bind", &closed.to_string()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&closed.to_string()), "{}", String::from_utf8_lossy(&out.stderr));
}
