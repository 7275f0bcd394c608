//! Input hygiene (issue 10): what an attacker typed and what it used to do. Each hostile input
//! now answers a typed `VALIDATION` naming the argument, appends nothing, and leaves the server
//! serving others. Text rules: `roster_domain::text`; paging: `graphql/connection.rs`; secrets:
//! `roster_api::secret`. Described in `docs/inputs.md`.

use crate::helpers::{code, fresh_database, roster, spawn_app, TestApp, OPERATOR_TOKEN, PASSWORD};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

/// Hostile text: NUL (PostgreSQL refuses it: this was `INTERNAL`), other control characters,
/// and bidi formatting characters that make a name read as another on the invitation preview.
const DIRTY: [&str; 6] = ["Ann\u{0}Lee", "Ann\nLee", "Ann\tLee", "Ann\u{1b}[2J", "Ann\u{202E}eeL", "Ann\u{2066}Lee\u{2069}"];

/// The `extensions.field` of the first error.
fn field(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["field"].as_str()
}

/// Asserts a `VALIDATION` error on `expected_field`, nothing appended since `before`.
async fn assert_invalid(app: &TestApp, response: &Value, expected_field: &str, before: i64) {
    app.assert_refused(response, "VALIDATION", before).await;
    assert_eq!(field(response), Some(expected_field), "{response}");
}

async fn sign_up_raw(app: &TestApp, email: &str, display_name: &str, account_name: &str) -> Value {
    let input = json!({ "email": email, "password": PASSWORD, "displayName": display_name, "accountName": account_name });
    app.gql(None, "mutation($input: SignUpInput!) { signUp(input: $input) { token user { email displayName } account { id name } } }", json!({ "input": input }))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn control_and_bidi_characters_in_names_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, invite) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    let before = app.event_count().await;
    for dirty in DIRTY {
        let response = sign_up_raw(&app, "ann@example.com", dirty, "Ann's").await;
        assert_invalid(&app, &response, "displayName", before).await;
        let response = sign_up_raw(&app, "ann@example.com", "Ann", dirty).await;
        assert_invalid(&app, &response, "accountName", before).await;
        let response = app.gql(Some(&admin.token), "mutation($n: String!) { createAccount(input: {name: $n}) { id } }", json!({ "n": dirty })).await;
        assert_invalid(&app, &response, "name", before).await;
        let response = app.accept_new(&invite, dirty).await;
        assert_invalid(&app, &response, "displayName", before).await;
    }
    // Still serving, and the invitation was not consumed by the refusals.
    app.join(&invite, "Grace").await;
    app.sign_up("ann@example.com", "Ann's").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nul_in_tokens_and_ids_answers_their_typed_error() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let before = app.event_count().await;
    let nul = "Ann\u{0}Lee";
    let preview = app.gql(None, "query($t: String!) { invitationPreview(token: $t) { email } }", json!({ "t": nul })).await;
    assert_eq!(code(&preview), Some("INVALID_TOKEN"), "{preview}");
    app.assert_refused(&app.accept_new(nul, "Ann").await, "INVALID_TOKEN", before).await;
    let account = app.gql(Some(&admin.token), "query($id: ID!) { account(id: $id) { id } }", json!({ "id": nul })).await;
    assert_invalid(&app, &account, "id", before).await;
    let invite = app.invite(&admin.token, nul, "grace@example.com", "GUEST").await;
    assert_invalid(&app, &invite, "accountId", before).await;
    // A password is hashed, never stored as text: NUL in it is just a character.
    let input = json!({ "email": "ann@example.com", "password": "pass\u{0}word!", "displayName": "Ann", "accountName": "Ann's" });
    let signed = app.gql(None, "mutation($input: SignUpInput!) { signUp(input: $input) { token } }", json!({ "input": input })).await;
    assert!(signed.get("errors").is_none(), "{signed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_stored_nfc_and_trimmed_and_the_preview_shows_them_so() {
    let app = spawn_app().await;
    // "e" + COMBINING ACUTE ACCENT, padded with an ideographic space and a no-break space.
    let response = sign_up_raw(&app, "rene@example.com", "\u{3000}Rene\u{301}e\u{a0}", " Cafe\u{301} ").await;
    let payload = &response["data"]["signUp"];
    assert_eq!(payload["user"]["displayName"], "Ren\u{e9}e", "{response}");
    assert_eq!(payload["account"]["name"], "Caf\u{e9}", "{response}");
    let token = payload["token"].as_str().unwrap();
    let account = payload["account"]["id"].as_str().unwrap();
    let (_, invite) = app.invite_ok(token, account, "grace@example.com", "GUEST").await;
    let preview = app
        .ok(None, "query($t: String!) { invitationPreview(token: $t) { accountName invitedByName } }", json!({ "t": invite }))
        .await;
    assert_eq!(preview["invitationPreview"], json!({ "accountName": "Caf\u{e9}", "invitedByName": "Ren\u{e9}e" }));
    // Length is counted in characters after composition: 100 decomposed "é" are 100 characters.
    let response = sign_up_raw(&app, "long@example.com", &"e\u{301}".repeat(100), "Long").await;
    assert!(response.get("errors").is_none(), "{response}");
    let before = app.event_count().await;
    let response = sign_up_raw(&app, "longer@example.com", &"\u{e9}".repeat(101), "Longer").await;
    assert_invalid(&app, &response, "displayName", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn search_and_action_filters_refuse_control_characters_and_match_nfc() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, invite) = app.invite_ok(&admin.token, &admin.account_id, "renee@example.com", "DEVELOPER").await;
    app.join(&invite, "Ren\u{e9}e").await;
    let members = "query($id: ID!, $s: String) { account(id: $id) { members(search: $s) { totalCount nodes { user { displayName } } } } }";
    let audit = "query($id: ID!, $a: String) { account(id: $id) { auditLog(action: $a) { totalCount } } }";
    let before = app.event_count().await;
    for dirty in DIRTY {
        let response = app.gql(Some(&admin.token), members, json!({ "id": admin.account_id, "s": dirty })).await;
        assert_invalid(&app, &response, "search", before).await;
        let response = app.gql(Some(&admin.token), audit, json!({ "id": admin.account_id, "a": dirty })).await;
        assert_invalid(&app, &response, "action", before).await;
    }
    let response = app.gql(Some(&admin.token), members, json!({ "id": admin.account_id, "s": "a".repeat(255) })).await;
    assert_invalid(&app, &response, "search", before).await;
    let response = app.gql(Some(&admin.token), audit, json!({ "id": admin.account_id, "a": "a".repeat(101) })).await;
    assert_invalid(&app, &response, "action", before).await;

    let search = |s: &str| app.ok(Some(&admin.token), members, json!({ "id": admin.account_id, "s": s }));
    // A decomposed search finds the precomposed name; a blank one filters nothing.
    let found = search(" Rene\u{301}e ").await;
    assert_eq!(found["account"]["members"]["nodes"], json!([{ "user": { "displayName": "Ren\u{e9}e" } }]));
    assert_eq!(search("  ").await["account"]["members"]["totalCount"], 2);
    let joined = app.ok(Some(&admin.token), audit, json!({ "id": admin.account_id, "a": " member.joined " })).await;
    assert_eq!(joined["account"]["auditLog"]["totalCount"], 2, "{joined}");
}

#[tokio::test(flavor = "multi_thread")]
async fn emails_are_nfc_normalised_and_their_domain_idna_checked() {
    let app = spawn_app().await;
    let signed = sign_up_raw(&app, "Rene\u{301}e@Example.com", "Renée", "Renée's").await;
    assert_eq!(signed["data"]["signUp"]["user"]["email"], "ren\u{e9}e@example.com", "{signed}");
    let before = app.event_count().await;
    // The same address typed precomposed is the same user.
    let again = sign_up_raw(&app, "ren\u{e9}e@example.com", "Renée", "Other").await;
    assert_invalid(&app, &again, "email", before).await;
    let login = "mutation($e: String!, $p: String!) { logIn(input: {email: $e, password: $p}) { user { email } } }";
    let logged = app.ok(None, login, json!({ "e": "RENE\u{301}E@example.com", "p": PASSWORD })).await;
    assert_eq!(logged["logIn"]["user"]["email"], "ren\u{e9}e@example.com");

    let admin = app.sign_up("ada@example.com", "Acme").await;
    let before = app.event_count().await;
    for bad in ["ann\u{0}@example.com", "ann@exa\nmple.com", "ann\u{202E}@example.com", "ann@-example.com", "ann@exa_mple.com", "ann@[192.0.2.1]", "ann@xn--a.com"] {
        let response = app.invite(&admin.token, &admin.account_id, bad, "GUEST").await;
        assert_invalid(&app, &response, "email", before).await;
        let response = sign_up_raw(&app, bad, "Ann", "Ann's").await;
        assert_invalid(&app, &response, "email", before).await;
        let response = app.gql(None, login, json!({ "e": bad, "p": PASSWORD })).await;
        assert_eq!(code(&response), Some("UNAUTHENTICATED"), "{response}");
    }
    // Unicode domains are welcome, in their UTS #46 form (full-width letters fold to ASCII).
    let response = app.invite(&admin.token, &admin.account_id, "ann@B\u{fc}cher.de", "GUEST").await;
    assert_eq!(response["data"]["inviteUser"]["invitation"]["email"], "ann@b\u{fc}cher.de", "{response}");
    let response = app.invite(&admin.token, &admin.account_id, "bob@\u{ff45}xample.com", "GUEST").await;
    assert_eq!(response["data"]["inviteUser"]["invitation"]["email"], "bob@example.com", "{response}");
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_cursors_and_page_sizes_are_validation_errors_on_every_connection() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let connection = |name: &str| format!("query($id: ID!, $after: String, $first: Int) {{ account(id: $id) {{ {name}(after: $after, first: $first) {{ totalCount nodes {{ __typename }} }} }} }}");
    let events = "query($id: ID!, $after: String, $first: Int) { events(accountId: $id, after: $after, first: $first) { totalCount nodes { position } } }";
    let queries: Vec<(String, &str)> = ["members", "invitations", "auditLog"].map(|n| (connection(n), n)).into_iter().chain([(events.to_string(), "events")]).collect();
    let before = app.event_count().await;
    for (query, name) in &queries {
        let ask = |vars: Value| app.gql(Some(&admin.token), query, vars);
        // Offsets out of range, and keyset cursors (`k<micros>_<uuid>`) that no page handed out.
        let nil = "00000000-0000-0000-0000-000000000000";
        let keys = ["k".to_string(), "k_".to_string(), format!("k_{nil}"), format!("k1_{nil}x"), format!("k+1_{nil}"), format!("k1e3_{nil}"), "k1_not-a-uuid".to_string(), format!("k99999999999999999999_{nil}"), format!("k9223372036854775807_{nil}")];
        let offsets = ["9223372036854775807", "99999999999999999999", "-1", "+1", "1e3", " 1", "", "\u{0}"].map(String::from);
        for after in offsets.iter().chain(&keys) {
            let response = ask(json!({ "id": admin.account_id, "after": after })).await;
            assert_invalid(&app, &response, "after", before).await;
        }
        let response = ask(json!({ "id": admin.account_id, "first": -1 })).await;
        assert_invalid(&app, &response, "first", before).await;
        // Beyond GraphQL's 32-bit Int: refused before any resolver runs, still VALIDATION.
        let response = ask(json!({ "id": admin.account_id, "first": 2_147_483_648_i64 })).await;
        assert_eq!(code(&response), Some("VALIDATION"), "{name}: {response}");
        // The largest cursor is a valid, empty page; `first` above 500 is capped, not refused.
        let response = ask(json!({ "id": admin.account_id, "after": "9223372036854775806", "first": i32::MAX })).await;
        assert!(response.get("errors").is_none(), "{name}: {response}");
        let data = if *name == "events" { &response["data"]["events"] } else { &response["data"]["account"][name] };
        assert_eq!(data["nodes"], json!([]), "{name}: {response}");
    }
    // The subscription's `after` follows the same rule.
    let mut ws = crate::helpers::WsClient::connect(&app, OPERATOR_TOKEN).await;
    ws.subscribe("1", "subscription($a: String) { events(after: $a) { position } }", json!({ "a": "9223372036854775807" })).await;
    let body = ws.next_message().await;
    let error = if body["type"] == "error" { &body["payload"][0] } else { &body["payload"]["errors"][0] };
    assert_eq!(error["extensions"]["code"], "VALIDATION", "{body}");
    assert_eq!(error["extensions"]["field"], "after", "{body}");
    ws.close().await;
    // Still serving.
    assert_eq!(app.members(&admin.token, &admin.account_id).await.len(), 1);
}

/// Starts `roster serve` with `env` and `args` on `database_url`; returns its exit status and
/// stderr if it exits, or `None` (after stopping it) once it logs that it is listening.
/// Panics if it does neither within 60 s.
fn serve_with(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> Option<(std::process::ExitStatus, String)> {
    let mut command = roster(&[&["serve", "--bind", "127.0.0.1:0"], args].concat());
    command.env("DATABASE_URL", database_url).env_remove("ROSTER_JWT_SECRET").env_remove("ROSTER_OPERATOR_TOKEN").env_remove("ROSTER_DEV");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start roster");
    let stderr = child.stderr.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).for_each(|line| drop(lines.send(line))));
    let mut log = String::new();
    loop {
        match seen.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("listening on") => {
                child.kill().expect("stop roster");
                child.wait().expect("reap roster");
                return None;
            }
            Ok(line) => log.extend([line.as_str(), "\n"]),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Some((child.wait().expect("roster exits"), log)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                child.kill().expect("stop roster");
                panic!("roster neither served nor exited within 60 s:\n{log}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_weak_secrets_naming_the_variable() {
    const STRONG: &str = "q3Jk9Zr0W1xYb8LmN2pQs4Tv6Uw7Ax5Bc+De/Fg0HiJ=";
    let url = fresh_database().await;
    let weak = ["x", "change-me-in-production", "jwt-secret-for-tests-jwt-secret-for-tests-xyz", &"a".repeat(64), &"0123456789abcdef".repeat(4)];
    for value in weak {
        let (status, log) = serve_with(&url, &[("ROSTER_JWT_SECRET", value)], &[]).expect("refused, not serving");
        assert!(!status.success());
        assert!(log.contains("ROSTER_JWT_SECRET is too weak"), "{value:?}: {log}");
        assert!(value.len() < 8 || !log.contains(value), "the secret is echoed: {log}");
        // --dev does not excuse a weak secret that was given.
        let (status, log) = serve_with(&url, &[("ROSTER_JWT_SECRET", value)], &["--dev"]).expect("refused, not serving");
        assert!(!status.success() && log.contains("ROSTER_JWT_SECRET is too weak"), "{log}");
        let (status, log) = serve_with(&url, &[("ROSTER_JWT_SECRET", STRONG), ("ROSTER_OPERATOR_TOKEN", value)], &[]).expect("refused, not serving");
        assert!(!status.success() && log.contains("ROSTER_OPERATOR_TOKEN is too weak"), "{log}");
    }
    // Strong secrets start; so does `--dev` with none (the README's first command).
    assert_eq!(serve_with(&url, &[("ROSTER_JWT_SECRET", STRONG), ("ROSTER_OPERATOR_TOKEN", &STRONG.replace('+', "-"))], &[]), None);
    assert_eq!(serve_with(&url, &[], &["--dev"]), None);
}

/// The image's shape (issue 10, item 7), read from the Dockerfile's instructions: there is no
/// container engine where the tests run to build it. Its last stage is the runtime image.
#[test]
fn the_dockerfile_builds_a_slim_non_root_image_with_a_healthcheck_and_compose_builds_it() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let stages: Vec<usize> = instructions.iter().enumerate().filter(|(_, l)| l.starts_with("FROM ")).map(|(i, _)| i).collect();
    assert!(stages.len() >= 2, "a build stage and a runtime stage:\n{dockerfile}");
    let runtime = &instructions[*stages.last().unwrap()..];
    assert!(runtime[0].contains("-slim"), "a slim runtime base: {}", runtime[0]);
    assert!(runtime.iter().any(|l| l.starts_with("COPY --from=")), "the runtime stage copies the built binary:\n{dockerfile}");
    assert!(!runtime.iter().any(|l| l.contains("cargo ")), "no compiling in the runtime stage:\n{dockerfile}");
    let user = runtime.iter().rev().find_map(|l| l.strip_prefix("USER ")).expect("the runtime stage names its user");
    let uid = user.split(':').next().unwrap();
    assert!(uid.parse::<u32>().is_ok_and(|uid| uid != 0), "a numeric, non-root user: {user}");
    let healthcheck = runtime.iter().find(|l| l.starts_with("HEALTHCHECK ")).expect("a HEALTHCHECK");
    assert!(healthcheck.contains(r#"CMD ["roster", "healthcheck"]"#), "{healthcheck}");
    let compose = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml")).unwrap();
    assert!(compose.lines().any(|l| l.trim() == "build: ."), "compose builds the Dockerfile:\n{compose}");
    assert!(!compose.contains("image: rust"), "compose compiles inside a Rust image at start-up:\n{compose}");
}

#[test]
fn docker_compose_requires_secrets_and_publishes_only_roster_on_loopback() {
    let compose = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml")).unwrap();
    assert!(compose.contains("ROSTER_JWT_SECRET: ${ROSTER_JWT_SECRET:?"), "compose must require the secret:\n{compose}");
    assert!(!compose.contains("change-me"), "compose ships a placeholder secret:\n{compose}");
    let published: Vec<&str> = compose.lines().filter(|l| l.trim_start().starts_with("ports:")).collect();
    // Roster's port only: PostgreSQL (fixed password) stays on the compose network.
    assert_eq!(published, [r#"    ports: ["127.0.0.1:8080:8080"]"#], "published ports");
}
