//! Invariants under real concurrent HTTP requests: one pending invitation per email, never
//! zero Admins, no lost events, conflicts retried inside the server (never `INTERNAL`).

use crate::helpers::{code, spawn_app};
use futures::future::join_all;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_invites_for_one_email_exactly_one_succeeds() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let responses = join_all((0..50).map(|_| app.invite(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER"))).await;
    let succeeded = responses.iter().filter(|r| code(r).is_none()).count();
    let pending = responses.iter().filter(|r| code(r) == Some("INVITATION_PENDING")).count();
    assert_eq!((succeeded, pending), (1, 49), "{:?}", responses.iter().map(code).collect::<Vec<_>>());
    let invited: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MemberInvited'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(invited, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_invites_for_different_emails_all_land() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let emails: Vec<String> = (0..20).map(|i| format!("p{i}@example.com")).collect();
    let responses = join_all(emails.iter().map(|e| app.invite(&admin.token, &admin.account_id, e, "GUEST"))).await;
    for r in &responses {
        assert!(code(r).is_none(), "{r}");
    }
    let invited: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MemberInvited'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(invited, 20, "events lost");
    let sequences: Vec<i64> = sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_type = 'Account' AND aggregate_id = $1 ORDER BY sequence")
        .bind(&admin.account_id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(sequences, (1..=sequences.len() as i64).collect::<Vec<_>>(), "stream has gaps");
    // One server decides an account's commands one after another on its latest state, so they
    // do not conflict with each other (only another server's writes could).
    assert_eq!(app.conflict_retries(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_or_removing_each_other_leave_one_admin() {
    let app = spawn_app().await;
    for round in 0..6 {
        let ada = app.sign_up(&format!("ada{round}@example.com"), "Acme").await;
        let (bob, bob_id) = app.add_member(&ada, &format!("bob{round}@example.com"), "ADMIN").await;
        let (a, b) = if round % 2 == 0 {
            tokio::join!(
                app.change_role(&ada.token, &ada.account_id, &bob_id, "DEVELOPER"),
                app.change_role(&bob, &ada.account_id, &ada.user_id, "DEVELOPER"),
            )
        } else {
            tokio::join!(
                app.remove_member(&ada.token, &ada.account_id, &bob_id),
                app.remove_member(&bob, &ada.account_id, &ada.user_id),
            )
        };
        let mut codes = vec![code(&a), code(&b)];
        codes.sort();
        assert_eq!(codes, vec![None, Some("FORBIDDEN")], "round {round}: {a} {b}");
        let admins = app.members(if code(&a).is_none() { &ada.token } else { &bob }, &ada.account_id).await;
        assert_eq!(admins.iter().filter(|(_, role)| role == "ADMIN").count(), 1, "round {round}: {admins:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_token_accepted_in_parallel_joins_once() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, token) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    let responses = join_all((0..8).map(|_| app.accept_new(&token, "Grace"))).await;
    let codes: Vec<Option<&str>> = responses.iter().map(code).collect();
    assert_eq!(codes.iter().filter(|c| c.is_none()).count(), 1, "{codes:?}");
    assert!(codes.iter().flatten().all(|c| matches!(*c, "INVITATION_NOT_PENDING" | "UNAUTHENTICATED")), "{codes:?}");
    let members = app.members(&admin.token, &admin.account_id).await;
    assert_eq!(members.len(), 2);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM credentials WHERE email = 'grace@example.com'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(users, 1);
}
