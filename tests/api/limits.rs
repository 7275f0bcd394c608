//! Resource limits against a hostile client: each refusal is clean (a status or a typed
//! error) and the server goes on serving others. Issue 10, "resource limits".

use crate::helpers::{code, spawn_app, spawn_app_with, TestApp, WsClient, PASSWORD};
use roster_api::rate_limit::Rate;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ROLES: &str = "{ roles { role } }";
const LOG_IN: &str = "mutation($i: LogInInput!) { logIn(input: $i) { token } }";

/// The server still answers an ordinary query.
async fn assert_serving(app: &TestApp) {
    let data = app.ok(None, ROLES, json!({})).await;
    assert_eq!(data["roles"].as_array().map(Vec::len), Some(4));
}

/// A JSON GraphQL body of exactly `size` bytes (padded in an unused variable).
fn body_of_size(size: usize) -> Vec<u8> {
    let empty = json!({ "query": ROLES, "variables": { "pad": "" } }).to_string();
    json!({ "query": ROLES, "variables": { "pad": "x".repeat(size - empty.len()) } }).to_string().into_bytes()
}

/// Writes `head` and then `body` in chunks on a raw connection while reading the answer; the
/// status code of the answer. The server may answer and close before the body is all sent.
async fn raw_status(app: &TestApp, head: String, body: Vec<Vec<u8>>) -> u16 {
    let stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        for chunk in body {
            writer.write_all(&chunk).await?;
        }
        // Keep the connection open, as a slow client would.
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, std::io::Error>(())
    });
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), reader.read(&mut answer)).await.expect("an answer").unwrap();
    writing.abort();
    let status_line = String::from_utf8_lossy(&answer[..read]).to_string();
    status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {status_line:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_are_refused_with_413_however_they_are_sent() {
    let app = spawn_app().await;
    let limit = roster_api::config::DEFAULT_MAX_BODY_BYTES;
    let post = |body: Vec<u8>| app.client.post(format!("{}/graphql", app.address)).header("content-type", "application/json").body(body).send();

    // Exactly the limit is served; one byte more is not, before it is parsed.
    let at_limit = post(body_of_size(limit)).await.unwrap();
    assert_eq!(at_limit.status(), 200);
    assert!(at_limit.json::<Value>().await.unwrap()["data"]["roles"].is_array());
    assert_eq!(post(body_of_size(limit + 1)).await.unwrap().status(), 413);

    // Streamed without a length: cut off at the limit.
    let head = "POST /graphql HTTP/1.1\r\nhost: roster\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_string();
    let chunk = vec![b' '; 64 * 1024];
    let framed = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
    assert_eq!(raw_status(&app, head, vec![framed; limit / (64 * 1024) + 2]).await, 413);

    // Multipart (file uploads) is not accepted at all.
    let multipart = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "multipart/form-data; boundary=X")
        .body("--X\r\ncontent-disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{ roles { role } }\"}\r\n--X--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(multipart.status(), 415);
    assert_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_messages_over_the_body_limit_close_the_socket() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let app = spawn_app().await;
    let mut request = format!("{}/graphql/ws", app.address.replace("http://", "ws://")).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let huge = json!({ "type": "connection_init", "payload": { "pad": "x".repeat(roster_api::config::DEFAULT_MAX_BODY_BYTES) } });
    // The server may close while the message is still being sent.
    let _ = socket.send(Message::Text(huge.to_string().into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(text))) => assert!(!text.contains("connection_ack"), "accepted: {text}"),
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the socket stayed open");
    assert_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_requests_time_out_but_subscriptions_outlive_the_timeout() {
    let app = spawn_app_with(|config| config.request_timeout = Duration::from_secs(1)).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let mut ws = WsClient::connect(&app, &admin.token).await;
    let query = "subscription($a: ID) { events(after: \"0\", accountId: $a) { type } }";
    ws.subscribe("1", query, json!({ "a": admin.account_id })).await;
    for expected in ["AccountCreated", "MemberJoined"] {
        assert_eq!(ws.next_message().await["payload"]["data"]["events"]["type"], expected);
    }

    // A body that never arrives in full: answered 408 instead of holding the connection.
    let head = "POST /graphql HTTP/1.1\r\nhost: roster\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n".to_string();
    assert_eq!(raw_status(&app, head, vec![b"{\"query\":".to_vec()]).await, 408);

    // The subscription, open longer than the timeout by now, still delivers.
    app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "GUEST").await;
    assert_eq!(ws.next_message().await["payload"]["data"]["events"]["type"], "MemberInvited");
    assert_serving(&app).await;
}

/// `count` aliases of `field` in one selection set.
fn aliases(count: usize, field: &str) -> String {
    (0..count).map(|i| format!("a{i}: {field}")).collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn query_cost_multiplies_by_page_size_and_root_fields_are_capped() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let pages = |first: u32| {
        let page = format!("invitations(first: {first}) {{ nodes {{ invitedBy {{ id }} }} }}");
        format!("query($a: ID!) {{ account(id: $a) {{ {} }} }}", aliases(14, &page))
    };
    // 14 small pages are fine; 14 pages of 500 rows each are refused before anything runs
    // (the fields alone, counted once each, would be well under the limit).
    let small = app.gql(Some(&admin.token), &pages(10), json!({ "a": admin.account_id })).await;
    assert!(small.get("errors").is_none(), "{small}");
    let big = app.gql(Some(&admin.token), &pages(500), json!({ "a": admin.account_id })).await;
    assert_eq!(code(&big), Some("QUERY_TOO_COMPLEX"), "{big}");
    assert!(big["data"].is_null(), "{big}");

    // Root fields, aliases included, are capped: 20 run, 21 are refused whole.
    let twenty = app.gql(None, &format!("{{ {} }}", aliases(20, "roles { role }")), json!({})).await;
    assert!(twenty.get("errors").is_none(), "{twenty}");
    let many = app.gql(None, &format!("{{ {} }}", aliases(21, "roles { role }")), json!({})).await;
    assert_eq!(code(&many), Some("QUERY_TOO_COMPLEX"), "{many}");

    // Aliased log-ins are refused before any password is checked.
    let login = r#"logIn(input: {email: "ada@example.com", password: "wrong password"}) { token }"#;
    let logins = app.gql(None, &format!("mutation {{ {} }}", aliases(1000, login)), json!({})).await;
    assert_eq!(code(&logins), Some("QUERY_TOO_COMPLEX"), "{}", logins["errors"]);
    assert_eq!(app.peak_password_jobs(), 1, "only the sign-up hashed");
    assert_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_reads_the_users_it_names_in_one_batch() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, grace_invite) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "SECURITY_ENGINEER").await;
    let (grace_token, grace_id) = app.join(&grace_invite, "Grace").await;
    for i in 0..30 {
        let by = if i % 2 == 0 { &admin.token } else { &grace_token };
        let (id, _) = app.invite_ok(by, &admin.account_id, &format!("guest{i}@example.com"), "GUEST").await;
        if i % 3 == 0 {
            assert!(app.cancel(&admin.token, &id).await.get("errors").is_none());
        }
    }
    let query = "query($a: ID!) { account(id: $a) {
        invitations(first: 100) { nodes { email invitedBy { id } cancelledBy { id } } }
        auditLog(first: 100) { nodes { actor { id } } } } }";
    let before = app.user_reads();
    let data = app.ok(Some(&admin.token), query, json!({ "a": admin.account_id })).await;
    let reads = app.user_reads() - before;

    let invitations = data["account"]["invitations"]["nodes"].as_array().unwrap();
    let audit = data["account"]["auditLog"]["nodes"].as_array().unwrap();
    assert_eq!(invitations.len(), 31);
    assert!(audit.len() > 40, "{} audit entries", audit.len());
    for invitation in invitations {
        // Grace's own invitation was Ada's and stands; guest N was Ada's for even N, and
        // cancelled by Ada for N divisible by 3.
        let n = invitation["email"].as_str().unwrap().strip_prefix("guest").map(|rest| rest.trim_end_matches("@example.com").parse::<usize>().unwrap());
        let inviter = if n.is_none_or(|n| n % 2 == 0) { &admin.user_id } else { &grace_id };
        assert_eq!(&invitation["invitedBy"]["id"], inviter.as_str(), "{invitation}");
        let cancelled = n.is_some_and(|n| n % 3 == 0);
        let expected_canceller = if cancelled { json!({ "id": admin.user_id }) } else { Value::Null };
        assert_eq!(invitation["cancelledBy"], expected_canceller, "{invitation}");
    }
    assert!(audit.iter().all(|e| e["actor"]["id"] == admin.user_id.as_str() || e["actor"]["id"] == grace_id.as_str()));
    // Not one read per row: > 80 rows name a user here. Each page reads the users its rows
    // name right after its rows, in one query (graphql::loader::PageUsers), whatever the
    // build's speed (the loader's 1 ms window split a level into 4-5 reads in debug builds).
    let naming = invitations.len() + invitations.iter().filter(|i| !i["cancelledBy"].is_null()).count() + audit.len();
    assert!(naming > 80, "{naming} rows naming a user");
    assert_eq!(reads, 2, "user reads for two pages naming a user {naming} times");
    assert_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn password_hashing_runs_a_bounded_number_of_jobs_at_once() {
    let app = spawn_app_with(|config| config.hash_concurrency = 1).await;
    let sign_ups = (0..6).map(|i| {
        let app = &app;
        async move {
            let input = json!({ "email": format!("user{i}@example.com"), "password": PASSWORD, "displayName": "U", "accountName": "A" });
            app.gql(None, "mutation($i: SignUpInput!) { signUp(input: $i) { token } }", json!({ "i": input })).await
        }
    });
    for response in futures::future::join_all(sign_ups).await {
        assert!(response.get("errors").is_none(), "excess jobs wait their turn: {response}");
    }
    assert_eq!(app.peak_password_jobs(), 1);
    let login = app.gql(None, LOG_IN, json!({ "i": { "email": "user3@example.com", "password": PASSWORD } })).await;
    assert!(login.get("errors").is_none(), "{login}");
}

/// Posts as the client at `ip`, through a proxy the server trusts.
async fn gql_from(app: &TestApp, ip: &str, query: &str, variables: Value) -> Value {
    app.gql_with_headers(None, &[("x-forwarded-for", ip)], query, variables).await
}

fn login_as(email: &str, password: &str) -> Value {
    json!({ "i": { "email": email, "password": password } })
}

#[tokio::test(flavor = "multi_thread")]
async fn password_attempts_are_limited_per_client_ip() {
    let app = spawn_app_with(|config| {
        config.password_rate_per_ip = Rate::new(3, Duration::from_secs(3600));
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.sign_up("ada@example.com", "Acme").await;
    let attacker = "198.51.100.1";
    for _ in 0..3 {
        let response = gql_from(&app, attacker, LOG_IN, login_as("ada@example.com", "wrong password")).await;
        assert_eq!(code(&response), Some("UNAUTHENTICATED"), "{response}");
    }
    let limited = gql_from(&app, attacker, LOG_IN, login_as("ada@example.com", "wrong password")).await;
    assert_eq!(code(&limited), Some("RATE_LIMITED"), "{limited}");
    assert!(limited["errors"][0]["extensions"]["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0), "{limited}");
    // Sign-ups from that address count too.
    let input = json!({ "email": "new@example.com", "password": PASSWORD, "displayName": "N", "accountName": "N" });
    let sign_up = gql_from(&app, attacker, "mutation($i: SignUpInput!) { signUp(input: $i) { token } }", json!({ "i": input })).await;
    assert_eq!(code(&sign_up), Some("RATE_LIMITED"), "{sign_up}");

    // Aliases in one request do not escape it: the rest of the batch is refused.
    let login = r#"logIn(input: {email: "ada@example.com", password: "wrong password"}) { token }"#;
    let batch = gql_from(&app, "198.51.100.2", &format!("mutation {{ {} }}", aliases(5, login)), json!({})).await;
    let codes: Vec<&str> = batch["errors"].as_array().unwrap().iter().map(|e| e["extensions"]["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["UNAUTHENTICATED", "UNAUTHENTICATED", "UNAUTHENTICATED", "RATE_LIMITED", "RATE_LIMITED"], "{batch}");

    // Another client logs in as usual.
    let other = gql_from(&app, "203.0.113.7", LOG_IN, login_as("ada@example.com", PASSWORD)).await;
    assert!(other.get("errors").is_none(), "{other}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_log_ins_limit_their_source_and_a_success_clears_them() {
    let app = spawn_app_with(|config| config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    app.sign_up("victim@example.com", "Acme").await;
    let attempt = |ip: &'static str, password: &'static str| {
        let app = &app;
        async move { gql_from(app, ip, LOG_IN, login_as("victim@example.com", password)).await }
    };
    let (attacker, owner) = ("198.51.100.1", "203.0.113.7");
    // Correct log-ins never count, however many.
    for _ in 0..12 {
        assert!(attempt(attacker, PASSWORD).await.get("errors").is_none());
    }
    // Nine failures, then a success that clears them, then nine more: never limited.
    for round in 0..2 {
        for _ in 0..9 {
            assert_eq!(code(&attempt(attacker, "wrong password").await), Some("UNAUTHENTICATED"));
        }
        assert!(attempt(attacker, PASSWORD).await.get("errors").is_none(), "round {round}");
    }
    // Ten failures from one source limit that source, even for the right password...
    for _ in 0..10 {
        assert_eq!(code(&attempt(attacker, "wrong password").await), Some("UNAUTHENTICATED"));
    }
    let limited = attempt(attacker, PASSWORD).await;
    assert_eq!(code(&limited), Some("RATE_LIMITED"), "{limited}");
    assert_eq!(code(&attempt(attacker, "wrong password").await), Some("RATE_LIMITED"));
    // ...but not the owner elsewhere (issue 10: one source could lock anyone out).
    let elsewhere = attempt(owner, PASSWORD).await;
    assert!(elsewhere.get("errors").is_none(), "{elsewhere}");
    // Nor other users from the same source.
    app.sign_up("other@example.com", "Other").await;
    let other = gql_from(&app, attacker, LOG_IN, login_as("other@example.com", PASSWORD)).await;
    assert!(other.get("errors").is_none(), "{other}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_log_ins_from_many_sources_reach_a_ceiling_per_email() {
    let app = spawn_app_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        config.login_failures_per_email = Rate::new(12, Duration::from_secs(3600));
    })
    .await;
    app.sign_up("victim@example.com", "Acme").await;
    let attempt = |n: usize, password: &'static str| {
        let app = &app;
        async move { gql_from(app, &format!("198.51.100.{n}"), LOG_IN, login_as("victim@example.com", password)).await }
    };
    // Two failures from each of six sources, none near its own limit: twelve in all.
    for n in 0..12 {
        assert_eq!(code(&attempt(n / 2, "wrong password").await), Some("UNAUTHENTICATED"), "failure {n}");
    }
    // The ceiling refuses every source alike, the right password included (else it would tell
    // guessers when they are right).
    for (n, password) in [(0, PASSWORD), (50, PASSWORD), (51, "wrong password")] {
        let limited = attempt(n, password).await;
        assert_eq!(code(&limited), Some("RATE_LIMITED"), "{limited}");
        assert!(limited["errors"][0]["extensions"]["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0), "{limited}");
    }
    // Other emails are not held back.
    app.sign_up("other@example.com", "Other").await;
    let other = gql_from(&app, "198.51.100.50", LOG_IN, login_as("other@example.com", PASSWORD)).await;
    assert!(other.get("errors").is_none(), "{other}");
}

/// Invites `email` as `admin` from `x-forwarded-for` (if any) with `x-request-id`; the
/// response's `x-request-id` and the stored metadata of the `MemberInvited` event.
async fn invite_with(app: &TestApp, token: &str, account_id: &str, email: &str, forwarded: Option<&str>) -> (String, Value) {
    let query = "mutation($a: ID!, $e: String!) { inviteUser(input: {accountId: $a, email: $e, role: GUEST}) { inviteLink } }";
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .header("x-request-id", "client-chosen-1")
        .json(&json!({ "query": query, "variables": { "a": account_id, "e": email } }));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let response = request.send().await.unwrap();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    let metadata = sqlx::query_scalar("SELECT metadata FROM events WHERE event_type = 'MemberInvited' AND strpos(payload::text, $1) > 0")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (request_id, metadata)
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_is_believed_only_from_trusted_proxies_and_request_ids_are_the_servers() {
    // Not trusted: the header is the client's word, and the peer is the client.
    let direct = spawn_app().await;
    let admin = direct.sign_up("ada@example.com", "Acme").await;
    let (request_id, metadata) = invite_with(&direct, &admin.token, &admin.account_id, "a@example.com", Some("198.51.100.1")).await;
    assert_eq!(metadata["ip"], "127.0.0.1");
    // The server's id, not the client's, is the request id; the client's is kept apart.
    assert!(uuid::Uuid::parse_str(&request_id).is_ok(), "{request_id}");
    assert_eq!(metadata["request_id"], request_id.as_str());
    assert_eq!(metadata["client_request_id"], "client-chosen-1");

    // Trusted: the right-most hop that is not a trusted proxy; hops left of it are ignored.
    let proxied = spawn_app_with(|config| config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]).await;
    let admin = proxied.sign_up("ada@example.com", "Acme").await;
    let (_, metadata) = invite_with(&proxied, &admin.token, &admin.account_id, "b@example.com", Some("203.0.113.66, 198.51.100.1, 10.1.2.3")).await;
    assert_eq!(metadata["ip"], "198.51.100.1");
    let audit = proxied
        .ok(Some(&admin.token), "query($a: ID!) { account(id: $a) { auditLog(first: 10, action: \"member.invited\") { nodes { requestId } } } }", json!({ "a": admin.account_id }))
        .await;
    assert_eq!(audit["account"]["auditLog"]["nodes"][0]["requestId"], metadata["request_id"]);
}
