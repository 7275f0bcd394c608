//! Abuse limits on invitation emails (issue 12, item 7), through a real SMTP server process:
//! the resend cooldown per invitation, and the per-account daily cap on emails.

use crate::helpers::replica::{start_replicas, Replica};
use crate::helpers::smtp::{self, SmtpServer};
use crate::helpers::{code, fresh_database};
use crate::mail::{delivery_when, invite_on, mail_app, mail_app_with};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_resend_within_the_cooldown_is_rate_limited_and_appends_nothing() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = mail_app(&server).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, _) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    delivery_when(&app, &admin, &id, |d| d["status"] == "SENT").await;
    // 20 s after the send, with the default cooldown of 60 s: at most 40 s to wait.
    app.clock().advance(chrono::Duration::seconds(20));
    let before = app.event_count().await;
    let refused = app.resend(&admin.token, &id).await;
    app.assert_refused(&refused, "RATE_LIMITED", before).await;
    let wait = refused["errors"][0]["extensions"]["retryAfterSeconds"].as_u64();
    assert!(wait.is_some_and(|s| (1..=40).contains(&s)), "{refused}");
    assert_eq!(app.invitation(&admin.token, &admin.account_id, &id).await["sendCount"], 1);
    // Once it has passed, the resend goes and is emailed.
    app.clock().advance(chrono::Duration::seconds(41));
    let resent = app.resend(&admin.token, &id).await;
    assert!(resent.get("errors").is_none(), "{resent}");
    let second = server.wait_for(2).await.remove(1);
    assert_eq!(second.header("Message-ID").as_deref(), Some(format!("<{id}.2@roster.example.test>").as_str()));
    // And the cooldown starts again from that resend.
    let again = app.resend(&admin.token, &id).await;
    assert_eq!(code(&again), Some("RATE_LIMITED"), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn f4_an_invitation_that_expired_a_day_ago_is_resent_by_email() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = mail_app(&server).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, old) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    delivery_when(&app, &admin, &id, |d| d["status"] == "SENT").await;
    app.clock().advance(chrono::Duration::days(8));
    let resent = app.resend(&admin.token, &id).await;
    assert_eq!(resent["data"]["resendInvite"]["invitation"]["status"], "PENDING", "{resent}");
    let emailed = server.wait_for(2).await.remove(1).invite_token();
    assert_ne!(emailed, old);
    app.join(&emailed, "Grace").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cooldown_is_read_from_roster_resend_cooldown() {
    let dir = std::env::temp_dir().join(format!("roster-mail-{}", uuid::Uuid::new_v4().simple()));
    let database_url = fresh_database().await;
    let env = [("ROSTER_MAIL_DIR", dir.to_str().unwrap()), ("ROSTER_RESEND_COOLDOWN", "1h")];
    let replica = Replica::start(&database_url, &env).await;
    let admin = replica.sign_up("ada@example.com", "Acme").await;
    let (id, _) = replica.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "GUEST").await;
    let refused = replica.resend(&admin.token, &id).await;
    assert_eq!(code(&refused), Some("RATE_LIMITED"), "{refused}");
    let wait = refused["errors"][0]["extensions"]["retryAfterSeconds"].as_u64();
    assert!(wait.is_some_and(|s| s > 3000 && s <= 3600), "{refused}");
    drop(replica);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_the_daily_cap_the_invitation_works_but_its_email_fails_with_the_reason() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let app = mail_app_with(&server, |c| c.mail.daily_cap_per_account = 2).await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    for email in ["a@example.com", "b@example.com"] {
        let (id, _) = app.invite_ok(&admin.token, &admin.account_id, email, "GUEST").await;
        delivery_when(&app, &admin, &id, |d| d["status"] == "SENT").await;
    }
    let (third, shown) = app.invite_ok(&admin.token, &admin.account_id, "c@example.com", "GUEST").await;
    let failed = delivery_when(&app, &admin, &third, |d| d["status"] == "FAILED").await;
    assert_eq!(failed["attempts"], 1, "{failed}");
    assert_eq!(
        failed["lastError"],
        "daily cap of 2 invitation emails for this account reached: share the link, or resend tomorrow",
        "{failed}"
    );
    let gave_up: Vec<bool> = sqlx::query_scalar("SELECT (payload #>> '{InvitationEmailFailed,gave_up}')::bool FROM events WHERE event_type = 'InvitationEmailFailed'")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(gave_up, [true], "one failure, final");
    // Another account has its own cap.
    let other = app.sign_up("bob@example.com", "Other").await;
    let (theirs, _) = app.invite_ok(&other.token, &other.account_id, "d@example.com", "GUEST").await;
    delivery_when(&app, &other, &theirs, |d| d["status"] == "SENT").await;
    let to: Vec<String> = server.received().iter().flat_map(|m| m.to.clone()).collect();
    assert_eq!(to, ["a@example.com", "b@example.com", "d@example.com"], "nothing went to c@");
    // The window rolls: a day later the resend is emailed, and the link shown at first was
    // rotated by it.
    app.clock().advance(chrono::Duration::hours(24) + chrono::Duration::minutes(1));
    let resent = app.resend(&admin.token, &third).await;
    assert!(resent.get("errors").is_none(), "{resent}");
    delivery_when(&app, &admin, &third, |d| d["status"] == "SENT").await;
    let message = server.wait_for(4).await.remove(3);
    assert_eq!(message.to, ["c@example.com"]);
    assert_eq!(code(&app.accept_new(&shown, "C").await), Some("INVALID_TOKEN"));
    app.join(&message.invite_token(), "C").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_one_daily_cap() {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_new();
    let url = server.url();
    let database_url = fresh_database().await;
    let env = [("ROSTER_SMTP_URL", url.as_str()), ("ROSTER_MAIL_DAILY_CAP_PER_ACCOUNT", "3")];
    let replicas = start_replicas(&database_url, 2, &env).await;
    let admin = replicas[0].sign_up("ada@example.com", "Acme").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(invite_on(&replicas[i % 2], &admin, &format!("user{i}@example.com")).await);
    }
    let mut statuses = Vec::new();
    for id in &ids {
        let done = delivery_when(&replicas[1], &admin, id, |d| d["status"] == "SENT" || d["status"] == "FAILED").await;
        statuses.push(done["status"].as_str().unwrap().to_string());
    }
    statuses.sort();
    assert_eq!(statuses, ["FAILED", "FAILED", "FAILED", "SENT", "SENT", "SENT"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.received().len(), 3, "three emails in all, whichever replica sent them");
}
