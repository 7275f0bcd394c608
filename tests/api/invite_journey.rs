//! Issue "invite journey": sign-up → invite → preview → accept → both listed, and every
//! refusal of that slice, each asserting its code and that no event was appended.

use crate::helpers::{code, spawn_app, token_of, PASSWORD, PUBLIC_URL};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_invite_preview_accept_lists_both_members_with_roles() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;

    let invited = app.invite(&admin.token, &admin.account_id, "grace@example.com", "SECURITY_ENGINEER").await;
    let payload = &invited["data"]["inviteUser"];
    assert_eq!(payload["invitation"]["status"], "PENDING", "{invited}");
    assert_eq!(payload["invitation"]["statusText"], "Invitation sent for Security Engineer");
    assert_eq!(payload["invitation"]["invitedBy"]["id"], admin.user_id.as_str());
    let link = payload["inviteLink"].as_str().unwrap();
    assert!(link.starts_with(&format!("{}/invite/", PUBLIC_URL)), "{link}");
    let token = token_of(link);

    let preview = app
        .ok(None, "query($t: String!) { invitationPreview(token: $t) { accountName invitedByName role email status } }", json!({ "t": token }))
        .await;
    assert_eq!(
        preview["invitationPreview"],
        json!({ "accountName": "Acme", "invitedByName": "ada", "role": "SECURITY_ENGINEER", "email": "grace@example.com", "status": "PENDING" })
    );

    let accepted = app.accept_new(&token, "Grace Hopper").await;
    let session = &accepted["data"]["acceptInvite"];
    assert_eq!(session["user"]["email"], "grace@example.com", "{accepted}");
    assert_eq!(session["user"]["displayName"], "Grace Hopper");
    assert_eq!(session["account"]["viewerRole"], "SECURITY_ENGINEER");

    // Read-your-writes: the very next query sees both members.
    assert_eq!(
        app.members(&admin.token, &admin.account_id).await,
        vec![("ada@example.com".into(), "ADMIN".into()), ("grace@example.com".into(), "SECURITY_ENGINEER".into())]
    );
    // The invitee's own session works and sees the account.
    let viewer = app.ok(Some(session["token"].as_str().unwrap()), "{ viewer { user { email } accounts { id name viewerRole } } }", json!({})).await;
    assert_eq!(viewer["viewer"]["accounts"], json!([{ "id": admin.account_id, "name": "Acme", "viewerRole": "SECURITY_ENGINEER" }]));
    let listed = app.invitation(&admin.token, &admin.account_id, payload["invitation"]["id"].as_str().unwrap()).await;
    assert_eq!(listed["status"], "ACCEPTED");
    assert_eq!(listed["statusText"], "Joined as Security Engineer");

    // Logging in with the new credentials works; a wrong password does not.
    let log_in = "mutation($i: LogInInput!) { logIn(input: $i) { token user { email } } }";
    let login = app.ok(None, log_in, json!({ "i": { "email": "grace@example.com", "password": PASSWORD } })).await;
    assert_eq!(login["logIn"]["user"]["email"], "grace@example.com");
    let wrong = app.gql(None, log_in, json!({ "i": { "email": "grace@example.com", "password": "not the password" } })).await;
    assert_eq!(code(&wrong), Some("UNAUTHENTICATED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_email_is_validation_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    for bad in ["not-an-email", "", "a@", "Ada <ada@example.com>", &format!("{}@example.com", "x".repeat(250))] {
        let before = app.event_count().await;
        let response = app.invite(&admin.token, &admin.account_id, bad, "DEVELOPER").await;
        app.assert_refused(&response, "VALIDATION", before).await;
        assert_eq!(response["errors"][0]["extensions"]["field"], "email", "{bad:?}: {response}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_pending_invitation_is_refused() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    let before = app.event_count().await;
    // Same address after normalisation.
    let response = app.invite(&admin.token, &admin.account_id, "  Grace@EXAMPLE.com ", "GUEST").await;
    app.assert_refused(&response, "INVITATION_PENDING", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inviting_a_member_is_already_member() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    app.add_member(&admin, "grace@example.com", "DEVELOPER").await;
    for email in ["grace@example.com", "ada@example.com"] {
        let before = app.event_count().await;
        let response = app.invite(&admin.token, &admin.account_id, email, "GUEST").await;
        app.assert_refused(&response, "ALREADY_MEMBER", before).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_cannot_invite() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (guest, _) = app.add_member(&admin, "gus@example.com", "GUEST").await;
    let before = app.event_count().await;
    let response = app.invite(&guest, &admin.account_id, "new@example.com", "GUEST").await;
    app.assert_refused(&response, "FORBIDDEN", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn security_engineer_cannot_grant_admin_but_can_grant_the_rest() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (engineer, _) = app.add_member(&admin, "sec@example.com", "SECURITY_ENGINEER").await;
    let before = app.event_count().await;
    let response = app.invite(&engineer, &admin.account_id, "boss@example.com", "ADMIN").await;
    app.assert_refused(&response, "FORBIDDEN", before).await;
    app.invite_ok(&engineer, &admin.account_id, "dev@example.com", "DEVELOPER").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_tenant_cannot_invite_or_read() {
    let app = spawn_app().await;
    let acme = app.sign_up("ada@example.com", "Acme").await;
    let other = app.sign_up("eve@example.com", "Evil").await;
    let before = app.event_count().await;
    let response = app.invite(&other.token, &acme.account_id, "x@example.com", "GUEST").await;
    app.assert_refused(&response, "FORBIDDEN", before).await;
    let read = app.gql(Some(&other.token), "query($id: ID!) { account(id: $id) { name } }", json!({ "id": acme.account_id })).await;
    assert_eq!(code(&read), Some("FORBIDDEN"));
    assert!(read["data"]["account"].is_null());
    let anonymous = app.invite("not-a-token", &acme.account_id, "x@example.com", "GUEST").await;
    app.assert_refused(&anonymous, "UNAUTHENTICATED", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_is_invalid_token() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, token) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    // Same account and invitation, different secret: flip the last character.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [forged.as_str(), "garbage", ""] {
        let before = app.event_count().await;
        let response = app.accept_new(bad, "Grace").await;
        app.assert_refused(&response, "INVALID_TOKEN", before).await;
    }
    let preview = app.gql(None, "query($t: String!) { invitationPreview(token: $t) { email } }", json!({ "t": forged })).await;
    assert_eq!(code(&preview), Some("INVALID_TOKEN"));
}

#[tokio::test(flavor = "multi_thread")]
async fn reused_token_is_not_pending() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, token) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    app.join(&token, "Grace").await;
    let before = app.event_count().await;
    let response = app.accept_new(&token, "Grace again").await;
    app.assert_refused(&response, "INVITATION_NOT_PENDING", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_token_is_invitation_expired() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, token) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    app.clock().advance(chrono::Duration::days(7) + chrono::Duration::seconds(1));
    let before = app.event_count().await;
    let response = app.accept_new(&token, "Grace").await;
    app.assert_refused(&response, "INVITATION_EXPIRED", before).await;
    let listed = app.invitation(&admin.token, &admin.account_id, &id).await;
    assert_eq!((listed["status"].as_str(), listed["statusText"].as_str()), (Some("EXPIRED"), Some("Invitation expired")));
}

#[tokio::test(flavor = "multi_thread")]
async fn invite_token_is_in_no_table_and_no_event() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, token) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    let (_, second) = app.invite_ok(&admin.token, &admin.account_id, "alan@example.com", "GUEST").await;
    app.join(&second, "Alan").await;
    let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(tables.contains(&"events".to_string()) && tables.len() >= 8, "{tables:?}");
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t")).fetch_all(&app.pool).await.unwrap();
        for row in rows {
            for secret in [&token, &second] {
                assert!(!row.contains(secret.as_str()), "token found in table {table}: {row}");
            }
            assert!(!row.contains(PASSWORD), "password found in table {table}");
        }
    }
}
