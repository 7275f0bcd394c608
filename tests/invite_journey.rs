//! Issue "invite journey": sign-up → invite → preview → accept → both listed, and every
//! refusal of that slice, each asserting its code and that no event was appended.

mod common;

use common::{code, spawn_app, token_of, PASSWORD};
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
    assert!(link.starts_with(&format!("{}/invite/", common::PUBLIC_URL)), "{link}");
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
