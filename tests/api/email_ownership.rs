//! Email ownership through a real SMTP server process (issue 12, "Email ownership"): sign-up
//! verification, password reset, reclaiming an address someone else registered, the same
//! answer for unknown emails, and expired or used links refused; no token at rest or in logs.

use crate::helpers::replica::Replica;
use crate::helpers::smtp::{self, Received, SmtpServer};
use crate::helpers::{code, fresh_database, spawn_app_with, ApiClient, TestApp, PASSWORD};
use roster_api::mail::MailDelivery;
use serde_json::{json, Value};
use std::time::Duration;

/// A server emailing through `server`, requiring verified emails when `require`.
async fn app_with(server: &SmtpServer, require: bool) -> TestApp {
    let url = server.url();
    spawn_app_with(|c| {
        c.mail.delivery = MailDelivery::Smtp(url);
        c.mail.retry_base = Duration::from_millis(50);
        c.ownership.require_verified_email = require;
    })
    .await
}

async fn sign_up(app: &ApiClient, email: &str, password: &str) -> Value {
    let input = json!({ "email": email, "password": password, "displayName": "Someone", "accountName": "Acme" });
    app.gql(None, "mutation($input: SignUpInput!) { signUp(input: $input) { token } }", json!({ "input": input })).await
}

async fn log_in(app: &ApiClient, email: &str, password: &str) -> Value {
    let input = json!({ "email": email, "password": password });
    app.gql(None, "mutation($input: LogInInput!) { logIn(input: $input) { token user { email } } }", json!({ "input": input })).await
}

async fn verify(app: &ApiClient, token: &str) -> Value {
    app.gql(None, "mutation($t: String!) { verifyEmail(token: $t) }", json!({ "t": token })).await
}

async fn request_reset(app: &ApiClient, email: &str) -> Value {
    app.gql(None, "mutation($e: String!) { requestPasswordReset(email: $e) }", json!({ "e": email })).await
}

async fn reset(app: &ApiClient, token: &str, password: &str) -> Value {
    app.gql(None, "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p) }", json!({ "t": token, "p": password })).await
}

/// The token of the `/<route>/` link in the message's text part.
fn link_token(message: &Received, route: &str) -> String {
    let text = message.part("text/plain");
    let marker = format!("{}/{route}/", crate::helpers::PUBLIC_URL);
    let at = text.find(&marker).unwrap_or_else(|| panic!("no {marker} link in:\n{text}"));
    text[at + marker.len()..].split_whitespace().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_up_logs_in_only_after_opening_the_emailed_link() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = app_with(&server, true).await;
    let signed = sign_up(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(code(&signed), Some("EMAIL_NOT_VERIFIED"), "{signed}");
    assert_eq!(code(&log_in(&app, "ada@example.com", PASSWORD).await), Some("EMAIL_NOT_VERIFIED"));
    // A wrong password says nothing about verification.
    assert_eq!(code(&log_in(&app, "ada@example.com", "wrong password").await), Some("UNAUTHENTICATED"));
    let message = server.wait_for(1).await.remove(0);
    assert_eq!(message.to, ["ada@example.com"]);
    let id: String = sqlx::query_scalar("SELECT id::text FROM users WHERE email = 'ada@example.com'").fetch_one(&app.pool).await.unwrap();
    let message_id = message.header("Message-ID").unwrap();
    assert!(message_id.starts_with(&format!("<{id}.verify.")) && message_id.ends_with("@roster.example.test>"), "{message_id}");
    let token = link_token(&message, "verify");
    let html = message.part("text/html").replace("&#x2f;", "/");
    assert!(html.contains(&format!("href=\"{}/verify/{token}\"", crate::helpers::PUBLIC_URL)), "{html}");
    assert_eq!(verify(&app, &token).await["data"]["verifyEmail"], true);
    let logged = log_in(&app, "ada@example.com", PASSWORD).await;
    assert!(logged["data"]["logIn"]["token"].is_string(), "{logged}");
    assert_eq!(code(&verify(&app, &token).await), Some("INVALID_TOKEN"), "single use");
    let proofs: Vec<Value> = sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'EmailVerified'").fetch_all(&app.pool).await.unwrap();
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0]["EmailVerified"]["proof"], "VERIFICATION_LINK");
    let status: String = sqlx::query_scalar("SELECT status FROM user_mail_outbox").fetch_one(&app.pool).await.unwrap();
    assert_eq!(status, "SENT");
    app.assert_nowhere_at_rest(&[token], &["events", "user_mail_outbox"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_reclaims_an_address_someone_else_registered() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let url = server.url();
    let database_url = fresh_database().await;
    let env = [("ROSTER_SMTP_URL", url.as_str()), ("ROSTER_REQUIRE_VERIFIED_EMAIL", "true"), ("ROSTER_MAIL_RETRY_BASE", "1")];
    let replica = Replica::start(&database_url, &env).await;
    // The squatter registers the victim's address with a password of their own.
    let squatter_password = "squatter's password";
    assert_eq!(code(&sign_up(&replica, "victim@example.com", squatter_password).await), Some("EMAIL_NOT_VERIFIED"));
    let verification = link_token(&server.wait_for(1).await[0], "verify");
    // The owner asks for a reset and opens the link in their inbox.
    assert_eq!(request_reset(&replica, "victim@example.com").await, json!({ "data": { "requestPasswordReset": true } }));
    let message = server.wait_for(2).await.remove(1);
    assert_eq!(message.to, ["victim@example.com"]);
    let token = link_token(&message, "reset");
    assert_eq!(code(&reset(&replica, &token, "short").await), Some("VALIDATION"), "the password rule holds");
    assert_eq!(reset(&replica, &token, "the owner's new password").await["data"]["resetPassword"], true);
    let logged = log_in(&replica, "victim@example.com", "the owner's new password").await;
    assert_eq!(logged["data"]["logIn"]["user"]["email"], "victim@example.com", "{logged}");
    assert_eq!(code(&log_in(&replica, "victim@example.com", squatter_password).await), Some("UNAUTHENTICATED"));
    assert_eq!(code(&reset(&replica, &token, "another new password").await), Some("INVALID_TOKEN"), "single use");
    assert_eq!(code(&verify(&replica, &verification).await), Some("INVALID_TOKEN"), "the reset verified the email");
    let types: Vec<String> = sqlx::query_scalar("SELECT event_type FROM events WHERE aggregate_type = 'User' ORDER BY position").fetch_all(&replica.pool).await.unwrap();
    assert_eq!(types, ["UserRegistered", "EmailVerificationRequested", "PasswordResetRequested", "PasswordChanged", "EmailVerified"]);
    let tokens = [verification, token];
    let log = replica.log();
    assert!(tokens.iter().all(|t| !log.contains(t.as_str())), "a token in the log:\n{log}");
    replica.assert_nowhere_at_rest(&tokens, &["events", "user_mail_outbox"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_request_answers_the_same_for_an_unknown_email_and_sends_nothing() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = app_with(&server, false).await;
    app.sign_up("ada@example.com", "Acme").await;
    let unknown = request_reset(&app, "nobody@example.com").await;
    let known = request_reset(&app, "ada@example.com").await;
    assert_eq!(unknown, known);
    assert_eq!(known, json!({ "data": { "requestPasswordReset": true } }));
    let message = server.wait_for(1).await.remove(0);
    assert_eq!(message.to, ["ada@example.com"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.received().len(), 1, "nothing for the unknown email");
    // Three requests per email at once, known or not; then RATE_LIMITED for both alike.
    for email in ["ada@example.com", "nobody@example.com"] {
        for _ in 0..2 {
            request_reset(&app, email).await;
        }
        assert_eq!(code(&request_reset(&app, email).await), Some("RATE_LIMITED"), "{email}");
    }
    assert_eq!(code(&request_reset(&app, "not an email").await), Some("VALIDATION"));
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_superseded_and_used_links_are_refused() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = app_with(&server, true).await;
    assert_eq!(code(&sign_up(&app, "ada@example.com", PASSWORD).await), Some("EMAIL_NOT_VERIFIED"));
    let verification = link_token(&server.wait_for(1).await[0], "verify");
    app.clock().advance(chrono::Duration::hours(25));
    assert_eq!(code(&verify(&app, &verification).await), Some("TOKEN_EXPIRED"));
    assert_eq!(code(&log_in(&app, "ada@example.com", PASSWORD).await), Some("EMAIL_NOT_VERIFIED"));
    request_reset(&app, "ada@example.com").await;
    let first = link_token(&server.wait_for(2).await[1], "reset");
    app.clock().advance(chrono::Duration::minutes(61));
    assert_eq!(code(&reset(&app, &first, "a new password").await), Some("TOKEN_EXPIRED"));
    request_reset(&app, "ada@example.com").await;
    let second = link_token(&server.wait_for(3).await[2], "reset");
    request_reset(&app, "ada@example.com").await;
    let third = link_token(&server.wait_for(4).await[3], "reset");
    assert_eq!(code(&reset(&app, &second, "a new password").await), Some("INVALID_TOKEN"), "superseded");
    assert_eq!(code(&reset(&app, "not-a-token", "a new password").await), Some("INVALID_TOKEN"));
    assert_eq!(code(&reset(&app, &verification, "a new password").await), Some("INVALID_TOKEN"), "a verification link resets nothing");
    assert_eq!(reset(&app, &third, "a new password").await["data"]["resetPassword"], true);
    assert_eq!(code(&reset(&app, &third, "a newer password").await), Some("INVALID_TOKEN"));
    assert!(log_in(&app, "ada@example.com", "a new password").await["data"]["logIn"]["token"].is_string());
    app.assert_nowhere_at_rest(&[verification, first, second, third], &["events", "user_mail_outbox"]).await;
}

/// Waits until the page's text contains `words`.
async fn until_text(client: &fantoccini::Client, words: &str) {
    let condition = format!("return document.body.textContent.includes({})", serde_json::to_string(words).unwrap());
    crate::helpers::browser::until(client, words, &condition).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_sign_up_confirm_forget_and_reset_through_the_emailed_links() {
    use crate::helpers::browser::{axe_violations, browser, click, console_errors, fill, find, webdriver};
    let Some(driver) = webdriver() else { return };
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = app_with(&server, true).await;
    let client = browser(driver).await;
    client.goto(&format!("{}/", app.address)).await.unwrap();
    let form = "form[aria-labelledby=signup-title]";
    for (name, value) in [("email", "ada@example.com"), ("password", PASSWORD), ("displayName", "Ada"), ("accountName", "Acme")] {
        fill(&client, &format!("{form} input[name={name}]"), value).await;
    }
    click(&client, &format!("{form} button[type=submit]")).await;
    until_text(&client, "Confirm your email first").await;
    let verification = link_token(&server.wait_for(1).await[0], "verify");
    client.goto(&format!("{}/verify/{verification}", app.address)).await.unwrap();
    until_text(&client, "Your email is confirmed").await;
    let clean = |page: &'static str| {
        let client = client.clone();
        async move {
            assert!(axe_violations(&client).await.is_empty(), "axe on {page}");
            assert!(console_errors(&client).await.is_empty(), "console errors on {page}");
        }
    };
    clean("/verify").await;
    // Forgotten password: the log-in form asks for a link.
    client.goto(&format!("{}/", app.address)).await.unwrap();
    fill(&client, "form[aria-labelledby=login-title] input[name=email]", "ada@example.com").await;
    click(&client, "form[aria-labelledby=login-title] button[type=button]").await;
    until_text(&client, "a link to choose a new password is on its way").await;
    let token = link_token(&server.wait_for(2).await[1], "reset");
    client.goto(&format!("{}/reset/{token}", app.address)).await.unwrap();
    fill(&client, "form[aria-labelledby=reset-title] input[name=password]", "a brand new password").await;
    clean("/reset").await;
    click(&client, "form[aria-labelledby=reset-title] button[type=submit]").await;
    until_text(&client, "Your password is changed").await;
    client.goto(&format!("{}/", app.address)).await.unwrap();
    fill(&client, "form[aria-labelledby=login-title] input[name=email]", "ada@example.com").await;
    fill(&client, "form[aria-labelledby=login-title] input[name=password]", "a brand new password").await;
    click(&client, "form[aria-labelledby=login-title] button[type=submit]").await;
    find(&client, "tr.member").await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn accepting_an_invitation_verifies_a_new_user_and_refuses_an_unverified_session() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let url = server.url();
    let database_url = fresh_database().await;
    // Two servers on one database: one requiring verified emails, one not (as after a change
    // of the setting); sessions are good on both.
    let strict = crate::helpers::spawn_app_on(&database_url, &database_url, 5, |c| {
        c.mail.delivery = MailDelivery::Smtp(url.clone());
        c.ownership.require_verified_email = true;
    })
    .await;
    let lax = crate::helpers::spawn_app_on(&database_url, &database_url, 5, |_| {}).await;
    assert_eq!(code(&sign_up(&strict, "ada@example.com", PASSWORD).await), Some("EMAIL_NOT_VERIFIED"));
    let session = log_in(&lax, "ada@example.com", PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_string();
    let admin = lax.sign_up("grace@example.com", "Labs").await;
    let (_, ada_link) = lax.invite_ok(&admin.token, &admin.account_id, "ada@example.com", "DEVELOPER").await;
    let before = strict.event_count().await;
    let refused = strict.accept_as(&session, &ada_link).await;
    strict.assert_refused(&refused, "EMAIL_NOT_VERIFIED", before).await;
    // A new user who accepts proved the address with the invitation link.
    let (_, bob_link) = lax.invite_ok(&admin.token, &admin.account_id, "bob@example.com", "GUEST").await;
    strict.join(&bob_link, "Bob").await;
    let proof: Vec<Value> = sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'EmailVerified'").fetch_all(&strict.pool).await.unwrap();
    assert_eq!(proof, [json!({ "EmailVerified": { "proof": "INVITATION", "verified_at": proof[0]["EmailVerified"]["verified_at"] } })]);
    assert!(log_in(&strict, "bob@example.com", PASSWORD).await["data"]["logIn"]["token"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_ends_the_sessions_issued_before_it() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    // Not required: the registrant got a session at sign-up.
    let app = app_with(&server, false).await;
    let squatter = app.sign_up("victim@example.com", "Squat").await;
    let viewer = "{ viewer { user { email } } }";
    assert_eq!(app.ok(Some(&squatter.token), viewer, json!({})).await["viewer"]["user"]["email"], "victim@example.com");
    request_reset(&app, "victim@example.com").await;
    let token = link_token(&server.wait_for(1).await[0], "reset");
    assert_eq!(reset(&app, &token, "the owner's new password").await["data"]["resetPassword"], true);
    assert_eq!(app.ok(Some(&squatter.token), viewer, json!({})).await["viewer"], Value::Null, "the old session is over");
    let refused = app.gql(Some(&squatter.token), "mutation { createAccount(input: {name: \"Mine\"}) { id } }", json!({})).await;
    assert_eq!(code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    // The session is checked beside the request, not before it: an account command and an
    // account read by the old session still append nothing and show nothing.
    let before = app.event_count().await;
    let refused = app.invite(&squatter.token, &squatter.account_id, "friend@example.com", "ADMIN").await;
    app.assert_refused(&refused, "UNAUTHENTICATED", before).await;
    let read = app.gql(Some(&squatter.token), "query($a: ID!) { account(id: $a) { name members(first: 5) { totalCount } } }", json!({ "a": squatter.account_id })).await;
    assert_eq!(code(&read), Some("UNAUTHENTICATED"), "{read}");
    assert_eq!(read["data"]["account"], Value::Null, "{read}");
    let owner = log_in(&app, "victim@example.com", "the owner's new password").await["data"]["logIn"]["token"].as_str().unwrap().to_string();
    assert_eq!(app.ok(Some(&owner), viewer, json!({})).await["viewer"]["user"]["email"], "victim@example.com", "a session after the reset works");
}

/// (aggregate type, event type) of every event, in order.
async fn events(app: &ApiClient) -> Vec<(String, String)> {
    sqlx::query_as("SELECT aggregate_type, event_type FROM events ORDER BY position").fetch_all(&app.pool).await.unwrap()
}

/// Every audit-log row, as text.
async fn audit_rows(app: &ApiClient) -> Vec<String> {
    sqlx::query_scalar("SELECT t::text FROM audit_log t ORDER BY t::text").fetch_all(&app.pool).await.unwrap()
}

/// Waits until `app` holds `count` events, then a little longer to see that no more come.
async fn settled_at(app: &ApiClient, count: usize) -> Vec<(String, String)> {
    for _ in 0..100 {
        if events(app).await.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    events(app).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_up_with_a_registered_email_answers_as_a_fresh_one_and_emails_the_owner() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = app_with(&server, true).await;
    let fresh = sign_up(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(code(&fresh), Some("EMAIL_NOT_VERIFIED"), "{fresh}");
    server.wait_for(1).await;
    let (before, audit) = (events(&app).await, audit_rows(&app).await);
    // Someone else, with another password and names: the very same answer.
    let input = json!({ "email": "Ada@Example.com", "password": "someone else's", "displayName": "Eve", "accountName": "Eve's" });
    let again = app.gql(None, "mutation($input: SignUpInput!) { signUp(input: $input) { token } }", json!({ "input": input })).await;
    assert_eq!(again, fresh);
    // The owner is told, with a link that resets the password.
    let message = server.wait_for(2).await.remove(1);
    assert_eq!(message.to, ["ada@example.com"]);
    assert_eq!(message.header("Subject").as_deref(), Some("Someone tried to create a Roster account with your email"));
    assert!(message.part("text/plain").contains("Someone tried to create a Roster account with ada@example.com"));
    let after = events(&app).await;
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after[before.len()..], [("User".to_string(), "PasswordResetRequested".to_string())], "nothing on an Account stream");
    let reason: String = sqlx::query_scalar("SELECT payload->'PasswordResetRequested'->>'reason' FROM events WHERE event_type = 'PasswordResetRequested'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(reason, "SIGN_UP_ATTEMPT");
    assert_eq!(audit_rows(&app).await, audit, "no account's audit log shows it");
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(accounts, 1);
    let token = link_token(&message, "reset");
    assert_eq!(reset(&app, &token, "the owner's new password").await["data"]["resetPassword"], true);
    assert!(log_in(&app, "ada@example.com", "the owner's new password").await["data"]["logIn"]["token"].is_string());
    assert_eq!(code(&log_in(&app, "ada@example.com", "someone else's").await), Some("UNAUTHENTICATED"));
    // A flood of sign-ups answers alike but tells the owner within the reset limit only (3 per
    // email at once, this one's first included).
    let count = events(&app).await.len();
    for _ in 0..4 {
        assert_eq!(sign_up(&app, "ada@example.com", PASSWORD).await, fresh);
    }
    let flood = settled_at(&app, count + 2).await;
    assert_eq!(flood[count..], vec![("User".to_string(), "PasswordResetRequested".to_string()); 2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn where_verification_is_not_required_a_registered_email_is_a_validation_error() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    // A fresh sign-up here answers with a session, which a taken email cannot fake.
    let app = app_with(&server, false).await;
    assert!(sign_up(&app, "ada@example.com", PASSWORD).await["data"]["signUp"]["token"].is_string());
    let before = app.event_count().await;
    let taken = sign_up(&app, "ada@example.com", PASSWORD).await;
    app.assert_refused(&taken, "VALIDATION", before).await;
    assert_eq!(taken["errors"][0]["extensions"]["field"], "email", "{taken}");
    assert_eq!(settled_at(&app, before as usize).await.len() as i64, before, "nothing recorded after the answer either");
    assert!(server.received().is_empty(), "nobody is emailed");
}
