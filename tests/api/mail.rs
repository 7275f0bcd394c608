//! Invitation emails through a real SMTP server process (issue 12): delivery after commit,
//! links rebuilt without a stored token, retries, permanent failures, crashes and replicas.

use crate::helpers::replica::{start_replicas, Replica};
use crate::helpers::smtp::{self, SmtpServer};
use crate::helpers::{code, fresh_database, spawn_app_with, ApiClient, Signed, TestApp};
use roster_api::mail::MailDelivery;
use roster_api::Config;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A server emailing through `server`, retrying fast; `configure` adjusts the config after.
pub async fn mail_app_with(server: &SmtpServer, configure: impl FnOnce(&mut Config)) -> TestApp {
    let url = server.url();
    spawn_app_with(|c| {
        c.mail.delivery = MailDelivery::Smtp(url);
        c.mail.retry_base = Duration::from_millis(50);
        c.mail.max_attempts = 50;
        configure(c);
    })
    .await
}

pub async fn mail_app(server: &SmtpServer) -> TestApp {
    mail_app_with(server, |_| {}).await
}

/// Polls invitation `id`'s `delivery` (up to 30 s) until `done` holds; returns it.
pub async fn delivery_when(app: &ApiClient, admin: &Signed, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivery = app.invitation(&admin.token, &admin.account_id, id).await["delivery"].clone();
        if done(&delivery) {
            return delivery;
        }
        assert!(Instant::now() < deadline, "delivery stuck at {delivery}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_is_emailed_once_and_its_link_accepts() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = mail_app(&server).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, shown) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "SECURITY_ENGINEER").await;
    let message = server.wait_for(1).await.remove(0);
    assert_eq!(message.to, ["grace@example.com"]);
    let token = message.invite_token();
    assert_eq!(token, shown, "the email carries the link the inviter was shown");
    assert_eq!(message.header("Message-ID").as_deref(), Some(format!("<{id}.1@roster.example.test>").as_str()));
    let text = message.part("text/plain");
    for words in ["ada invited you to join Acme", "as Security Engineer", "If you did not expect this invitation"] {
        assert!(text.contains(words), "{words:?} missing from:\n{text}");
    }
    // minijinja escapes `/` in HTML as `&#x2f;`, which browsers read back as `/`.
    let html = message.part("text/html").replace("&#x2f;", "/");
    assert!(html.contains(&format!("href=\"{}/invite/{token}\"", crate::helpers::PUBLIC_URL)), "{html}");
    let delivery = delivery_when(&app, &admin, &id, |d| d["status"] == "SENT").await;
    assert_eq!((delivery["attempts"].as_i64(), delivery["lastError"].as_str()), (Some(1), None));
    assert!(delivery["sentAt"].is_string(), "{delivery}");
    let recorded: Vec<Value> = sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'InvitationEmailSent'").fetch_all(&app.pool).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["InvitationEmailSent"]["message_id"], format!("{id}.1@roster.example.test"));
    app.join(&token, "Grace").await;
    app.assert_nowhere_at_rest(&[token], &["events", "mail_outbox"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.received().len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resend_emails_a_new_link_and_the_old_one_is_refused() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = mail_app(&server).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, _) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    let first = server.wait_for(1).await.remove(0).invite_token();
    delivery_when(&app, &admin, &id, |d| d["status"] == "SENT").await;
    // Past the resend cooldown (tests/api/mail_limits.rs tests it).
    app.clock().advance(chrono::Duration::seconds(61));
    let resent = app.resend(&admin.token, &id).await;
    assert!(resent.get("errors").is_none(), "{resent}");
    let second = server.wait_for(2).await.remove(1);
    assert_eq!(second.header("Message-ID").as_deref(), Some(format!("<{id}.2@roster.example.test>").as_str()));
    let second = second.invite_token();
    assert_ne!(first, second);
    let old = app.accept_new(&first, "Grace").await;
    assert_eq!(code(&old), Some("INVALID_TOKEN"), "{old}");
    app.join(&second, "Grace").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_smtp_server_down_the_delivery_retries_then_is_sent() {
    if !smtp::available() {
        return;
    }
    let mut server = SmtpServer::stopped();
    let app = mail_app(&server).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, _) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "GUEST").await;
    let failing = delivery_when(&app, &admin, &id, |d| d["attempts"].as_i64() >= Some(2)).await;
    assert_eq!(failing["status"], "QUEUED", "{failing}");
    assert!(failing["lastError"].as_str().is_some_and(|e| !e.is_empty()), "{failing}");
    let failures: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'InvitationEmailFailed' AND payload #>> '{InvitationEmailFailed,gave_up}' = 'false'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(failures >= 2, "each attempt is an event: {failures}");
    server.start();
    let sent = delivery_when(&app, &admin, &id, |d| d["status"] == "SENT").await;
    assert!(sent["attempts"].as_i64() > Some(2), "{sent}");
    assert_eq!(server.wait_for(1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_550_reply_fails_at_once_with_the_reason() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = mail_app(&server).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, _) = app.invite_ok(&admin.token, &admin.account_id, "rejected@example.com", "GUEST").await;
    let failed = delivery_when(&app, &admin, &id, |d| d["status"] == "FAILED").await;
    assert_eq!(failed["attempts"], 1, "a permanent failure is not retried: {failed}");
    assert!(failed["lastError"].as_str().is_some_and(|e| e.contains("550") && e.contains("mailbox unavailable")), "{failed}");
    let audit = app
        .ok(Some(&admin.token), "query($id: ID!) { account(id: $id) { auditLog(first: 50, action: \"invitation.email_failed\") { nodes { action details } } } }", json!({ "id": admin.account_id }))
        .await;
    let entry = &audit["account"]["auditLog"]["nodes"][0];
    assert_eq!(entry["details"]["gaveUp"], true, "{audit}");
    assert!(server.received().is_empty());
}

/// Invites `email` on `replica` as `admin`; returns the invitation id.
pub async fn invite_on(replica: &Replica, admin: &Signed, email: &str) -> String {
    replica.invite_ok(&admin.token, &admin.account_id, email, "DEVELOPER").await.0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_between_commit_and_delivery_delivers_after_restart() {
    if !smtp::available() {
        return;
    }
    let mut server = SmtpServer::stopped();
    let url = server.url();
    // A short lease: the killed replica may die holding the send.
    let env = [("ROSTER_SMTP_URL", url.as_str()), ("ROSTER_MAIL_RETRY_BASE", "1"), ("ROSTER_MAIL_LEASE", "2")];
    let database_url = fresh_database().await;
    let mut first = Replica::start(&database_url, &env).await;
    let admin = first.sign_up("ada@example.com", "Acme").await;
    let id = invite_on(&first, &admin, "grace@example.com").await;
    first.kill();
    server.start();
    let second = Replica::start(&database_url, &env).await;
    let message = server.wait_for(1).await.remove(0);
    assert_eq!(message.to, ["grace@example.com"]);
    delivery_when(&second, &admin, &id, |d| d["status"] == "SENT").await;
    second.join(&message.invite_token(), "Grace").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_send_each_email_once_and_log_no_token() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let url = server.url();
    let database_url = fresh_database().await;
    let replicas = start_replicas(&database_url, 2, &[("ROSTER_SMTP_URL", url.as_str())]).await;
    let admin = replicas[0].sign_up("ada@example.com", "Acme").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(invite_on(&replicas[i % 2], &admin, &format!("user{i}@example.com")).await);
    }
    for id in &ids {
        delivery_when(&replicas[1], &admin, id, |d| d["status"] == "SENT").await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = server.received();
    let mut to: Vec<String> = received.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, (0..6).map(|i| format!("user{i}@example.com")).collect::<Vec<_>>(), "each email exactly once");
    let tokens: Vec<String> = received.iter().map(|m| m.invite_token()).collect();
    for replica in &replicas {
        let log = replica.log();
        assert!(tokens.iter().all(|t| !log.contains(t.as_str())), "a token in the log:\n{log}");
    }
    replicas[0].assert_nowhere_at_rest(&tokens, &["events", "mail_outbox"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_smtp_the_email_is_written_to_a_file_named_in_the_log() {
    let dir = std::env::temp_dir().join(format!("roster-mail-{}", uuid::Uuid::new_v4().simple()));
    let database_url = fresh_database().await;
    // Debug logs include each request's path: an invite link's token must not be in them.
    let env = [("ROSTER_MAIL_DIR", dir.to_str().unwrap()), ("RUST_LOG", "debug,sqlx=warn,hyper=info,hyper_util=info,h2=info")];
    let replica = Replica::start(&database_url, &env).await;
    let admin = replica.sign_up("ada@example.com", "Acme").await;
    let (id, token) = replica.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "GUEST").await;
    delivery_when(&replica, &admin, &id, |d| d["status"] == "SENT").await;
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let parsed = smtp::Received { to: vec![], raw: std::fs::read(&files[0]).unwrap() };
    assert_eq!(parsed.invite_token(), token);
    assert!(replica.log().contains(&files[0].display().to_string()), "the log names the file:\n{}", replica.log());
    let page = replica.client.get(format!("{}/invite/{token}", replica.address)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    // The log is read from the process's stderr by a thread: give the line a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica.log().contains("/invite/…") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = replica.log();
    assert!(log.contains("/invite/…"), "the request is logged, without its token:\n{log}");
    assert!(!log.contains(&token), "a token in the log:\n{log}");
    #[cfg(unix)]
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions()) & 0o777, 0o700, "the directory is its owner's");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_mail_off_the_delivery_is_not_sent() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, _) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "GUEST").await;
    let delivery = app.invitation(&admin.token, &admin.account_id, &id).await["delivery"].clone();
    assert_eq!(delivery, json!({ "status": "NOT_SENT", "attempts": 0, "lastError": null, "sentAt": null }));
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_from_roster_mail_templates_change_the_delivered_message() {
    if !smtp::available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("roster-tpl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("invitation.subject.txt"), "Come work with {{ inviter_name }} at {{ account_name }}").unwrap();
    std::fs::write(dir.join("invitation.txt"), "Our own words. Your {{ role }} seat: {{ link }}\n").unwrap();
    let server = SmtpServer::start_new();
    let templates = dir.clone();
    let app = mail_app_with(&server, |c| c.mail.templates = Some(templates)).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, shown) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "SECURITY_ENGINEER").await;
    let message = server.wait_for(1).await.remove(0);
    assert_eq!(message.header("Subject").as_deref(), Some("Come work with ada at Acme"));
    let text = message.part("text/plain");
    assert!(text.starts_with("Our own words. Your Security Engineer seat: "), "{text}");
    assert_eq!(message.invite_token(), shown);
    // A template without an override stays the built-in one.
    assert!(message.part("text/html").contains("If you did not expect this invitation"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_escaped_in_the_html_part_and_cannot_add_headers() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = mail_app(&server).await;
    let sign_up = "mutation($input: SignUpInput!) { signUp(input: $input) { token account { id } } }";
    let signed = |display: &str, account: &str| json!({ "input": { "email": "ada@example.com", "password": crate::helpers::PASSWORD, "displayName": display, "accountName": account } });
    // A line break in a name or an email is refused where it is typed, so none reaches a header.
    for (display, account) in [("Ada\r\nBcc: victim@example.com", "Acme"), ("Ada", "Acme\nBcc: victim@example.com")] {
        let refused = app.gql(None, sign_up, signed(display, account)).await;
        assert_eq!(code(&refused), Some("VALIDATION"), "{refused}");
    }
    let (display, account) = ("<b>Ada</b> & \"Co\"", "<script>alert(1)</script> Bcc: victim@example.com");
    let data = app.ok(None, sign_up, signed(display, account)).await;
    let admin = Signed {
        token: data["signUp"]["token"].as_str().unwrap().to_string(),
        user_id: String::new(),
        account_id: data["signUp"]["account"]["id"].as_str().unwrap().to_string(),
    };
    let refused = app.invite(&admin.token, &admin.account_id, "grace@example.com\r\nBcc: victim@example.com", "GUEST").await;
    assert_eq!(code(&refused), Some("VALIDATION"), "{refused}");
    app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "GUEST").await;
    let message = server.wait_for(1).await.remove(0);
    assert_eq!(message.to, ["grace@example.com"], "the envelope has the invitee only");
    let raw = String::from_utf8_lossy(&message.raw).to_string();
    let headers = raw.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(!headers.lines().any(|l| l.starts_with("bcc:") || l.starts_with("cc:")), "{headers}");
    // The names stay inside the Subject, as typed.
    assert_eq!(message.header("Subject"), Some(format!("{display} invited you to join {account} on Roster")));
    let html = message.part("text/html").replace("&#x2f;", "/");
    assert!(!html.contains("<script>") && !html.contains("<b>Ada"), "{html}");
    for escaped in ["&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;Ada&lt;/b&gt; &amp; &quot;Co&quot;"] {
        assert!(html.contains(escaped), "{escaped} missing from:\n{html}");
    }
    // Plain text needs no escaping: the names read as typed.
    assert!(message.part("text/plain").contains(&format!("{display} invited you to join {account}")));
}
