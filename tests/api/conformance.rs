//! Third-party conformance suites against a live server (issue 10, "Done when"): the
//! `graphql-http` audit (GraphQL over HTTP), a `graphql-ws` client's subscription
//! (graphql-transport-ws), and a schemathesis run of generated operations with a session.
//!
//! The tools are pinned in `tests/conformance` (`package-lock.json`, `requirements.txt`) and
//! installed there by `tests/conformance/install`, which `.ci/run` runs. Where they are missing
//! each test says so loudly and passes, except under CI (`CI` set), where it fails.

use crate::helpers::{spawn_app, TestApp};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// `tests/conformance`, where the suites' scripts and installed tools live.
fn suites() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// Whether `what` (installed by `tests/conformance/install`) is there; when it is not, a loud
/// skip, or a failure under CI.
fn installed(what: &str, present: bool) -> bool {
    if !present {
        let message = format!("{what} is not installed: run tests/conformance/install (needs node, npm, python3-venv)");
        assert!(std::env::var_os("CI").is_none(), "{message}; CI must run every conformance suite");
        eprintln!("\n********** SKIPPED: {message} **********\n");
    }
    present
}

/// Node.js with the suites' npm packages.
fn node_ready() -> bool {
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    installed("node with tests/conformance/node_modules", node && suites().join("node_modules/graphql-http").is_dir() && suites().join("node_modules/graphql-ws").is_dir())
}

/// Runs `program args` in `tests/conformance` to its end, at most `limit` (a bound against a
/// hung tool, not a speed check); stdout and stderr are captured.
async fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Output {
    let mut command = tokio::process::Command::new(program);
    command.args(args).envs(envs.iter().copied()).current_dir(suites()).kill_on_drop(true);
    let child = command.output();
    tokio::time::timeout(limit, child).await.unwrap_or_else(|_| panic!("{args:?} did not finish within {limit:?}")).expect("start the tool")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The audit ids README.md lists as failing SHOULDs: the first column of the table between
/// `<!-- graphql-http-should:start -->` and `<!-- graphql-http-should:end -->`.
fn readme_failing_shoulds() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("<!-- graphql-http-should:start -->").expect("README lists the failing SHOULDs");
    let end = readme.find("<!-- graphql-http-should:end -->").expect("end of the list");
    readme[start..end]
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_http_audit_passes_every_must_and_readme_lists_the_failing_shoulds() {
    if !node_ready() {
        return;
    }
    let app = spawn_app().await;
    let output = run("node", &["audit.mjs", &format!("{}/graphql", app.address)], &[], Duration::from_secs(120)).await;
    let results: Vec<Value> = text(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON result a line")).collect();
    // The suite has dozens of audits; an empty or partial run is a broken harness.
    assert!(results.len() >= 50, "only {} audits ran: {}\n{}", results.len(), text(&output.stdout), text(&output.stderr));
    let failing = |status: &str| -> Vec<&Value> { results.iter().filter(|r| r["status"] == status).collect() };
    let musts = failing("error");
    assert!(musts.is_empty() && output.status.success(), "MUSTs failed: {musts:#?}\n{}", text(&output.stderr));
    let shoulds: BTreeSet<String> = failing("warn").iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(shoulds, readme_failing_shoulds(), "README's list of failing SHOULDs is stale: {:#?}", failing("warn"));
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_ws_client_receives_the_event_of_a_mutation() {
    if !node_ready() {
        return;
    }
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let after: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&app.pool).await.unwrap();
    let args = ["subscription.mjs", &app.address, &admin.token, &admin.account_id, &after.to_string()];
    let output = run("node", &args, &[], Duration::from_secs(60)).await;
    assert!(output.status.success(), "graphql-ws client failed:\n{}\n{}", text(&output.stdout), text(&output.stderr));
    let event: Value = serde_json::from_str(text(&output.stdout).trim()).expect("the event as JSON");
    assert_eq!(event["type"], "MemberInvited", "{event}");
    // It is the stored event of the client's own invitation, made after `after`.
    let position: i64 = event["position"].as_str().unwrap().parse().unwrap();
    let stored: Value = sqlx::query_scalar("SELECT payload FROM events WHERE position = $1 AND event_type = 'MemberInvited' AND account_id::text = $2")
        .bind(position)
        .bind(&admin.account_id)
        .fetch_one(&app.pool)
        .await
        .expect("the event is in the log");
    assert!(position > after && stored.to_string().contains("ws-client-"), "{stored}");
}

/// Runs schemathesis over every operation of `app`'s schema with the session `token`: 30
/// generated operations per root field (about 420), two workers.
async fn schemathesis(app: &TestApp, token: &str) -> Output {
    let url = format!("{}/graphql", app.address);
    let auth = format!("Authorization: Bearer {token}");
    let args = [
        "run",
        &url,
        "--header",
        &auth,
        // Our checks (hooks.py): schemathesis's own counts every typed refusal as a fault.
        "--checks",
        "no_server_error_status,no_internal_error",
        // GraphQL has no examples or coverage phase; the stateful one would triple the time.
        "--phases",
        "fuzzing",
        "--max-examples",
        "30",
        "--workers",
        "2",
        // Hypothesis's health checks judge the generator, not the server: never a fault here.
        "--suppress-health-check",
        "all",
        "--generation-database",
        "none",
        "--no-color",
    ];
    run(suites().join(".venv/bin/schemathesis"), &args, &[("SCHEMATHESIS_HOOKS", "hooks.py")], Duration::from_secs(300)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_internal_code() {
    if !installed("schemathesis in tests/conformance/.venv", suites().join(".venv/bin/schemathesis").is_file()) {
        return;
    }
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let output = schemathesis(&app, &admin.token).await;
    let report = format!("{}\n{}", text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "schemathesis found faults:\n{report}");
    // The summary counts what was generated: a few hundred operations, not a vacuous run.
    let generated = report
        .lines()
        .find_map(|l| l.split_once(" generated").and_then(|(head, _)| head.rsplit(' ').next()?.parse::<u64>().ok()))
        .unwrap_or_else(|| panic!("no test-case count in:\n{report}"));
    assert!(generated >= 200, "only {generated} operations generated:\n{report}");
    // And the server still answers.
    let viewer = app.ok(Some(&admin.token), "{ viewer { user { email } } }", json!({})).await;
    assert_eq!(viewer["viewer"]["user"]["email"], "ada@example.com");
}
