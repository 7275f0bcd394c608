//! `roster` without a command (the README's `cargo run`): the service on a throwaway PostgreSQL
//! of its own, emails written to files, everything gone after Ctrl-C.

use crate::helpers::{roster, PASSWORD};
use serde_json::{json, Value};
use sqlx::Connection;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The text after `marker` on a logged line, up to the next space or colon-space.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split([' ', '"']).next().map(|s| s.trim_end_matches(':'))
}

async fn gql(client: &reqwest::Client, address: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = client.post(format!("{address}/graphql")).json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request").json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn roster_without_a_command_serves_the_journey_on_a_throwaway_database_it_deletes() {
    let dir = std::env::temp_dir().join(format!("roster-try-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    let mut child = roster(&[])
        .current_dir(&dir)
        .env_remove("DATABASE_URL")
        .env_remove("ROSTER_JWT_SECRET")
        .env_remove("ROSTER_DEV")
        .env_remove("ROSTER_SMTP_URL")
        .env_remove("ROSTER_MAIL_DIR")
        .env("ROSTER_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start roster");
    let (lines, seen) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).for_each(|line| drop(lines.send(line))));
    let (mut database, mut address, mut log) = (None, None, String::new());
    while address.is_none() {
        let line = seen.recv_timeout(Duration::from_secs(90)).unwrap_or_else(|e| panic!("roster did not start ({e}):\n{log}"));
        database = database.or_else(|| after(&line, "throwaway PostgreSQL at ").map(str::to_string));
        address = after(&line, "roster listening on ").map(str::to_string);
        log.extend([line.as_str(), "\n"]);
    }
    let (database, address) = (database.unwrap_or_else(|| panic!("no throwaway database logged:\n{log}")), address.unwrap());

    // The journey: sign up (no verification in --dev), invite; the email lands in roster-mail/.
    let client = reqwest::Client::new();
    let signed = gql(&client, &address, None, "mutation($i: SignUpInput!) { signUp(input: $i) { token account { id } } }",
        json!({ "i": { "email": "ada@example.com", "password": PASSWORD, "displayName": "Ada", "accountName": "Acme" } })).await;
    let token = signed["data"]["signUp"]["token"].as_str().unwrap_or_else(|| panic!("{signed}")).to_string();
    let account = signed["data"]["signUp"]["account"]["id"].as_str().unwrap().to_string();
    let invited = gql(&client, &address, Some(&token), "mutation($i: InviteUserInput!) { inviteUser(input: $i) { inviteLink } }",
        json!({ "i": { "accountId": account, "email": "grace@example.com", "role": "DEVELOPER" } })).await;
    let link = invited["data"]["inviteUser"]["inviteLink"].as_str().unwrap_or_else(|| panic!("{invited}")).to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let emailed = loop {
        let files: Vec<_> = std::fs::read_dir(dir.join("roster-mail")).into_iter().flatten().flatten().map(|e| e.path()).collect();
        if let Some(file) = files.first() {
            break std::fs::read_to_string(file).unwrap();
        }
        assert!(Instant::now() < deadline, "no email file in {}", dir.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(emailed.contains("grace@example.com"), "{emailed}");
    let preview = gql(&client, &address, None, "query($t: String!) { invitationPreview(token: $t) { accountName email } }",
        json!({ "t": link.rsplit('/').next().unwrap() })).await;
    assert_eq!(preview["data"]["invitationPreview"], json!({ "accountName": "Acme", "email": "grace@example.com" }), "{preview}");

    // Ctrl-C: the server stops cleanly and the database is gone with it.
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let exit = child.wait().expect("roster exits");
    assert!(exit.success(), "{exit:?}");
    assert!(sqlx::PgConnection::connect(&database).await.is_err(), "the throwaway database still answers at {database}");
    let _ = std::fs::remove_dir_all(&dir);
}
