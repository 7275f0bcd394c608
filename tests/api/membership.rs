//! Issue "membership lifecycle": resend, cancel, accept with a session, change role, remove,
//! several accounts — each refusal asserting its code and that nothing was appended.

use crate::helpers::{code, spawn_app, token_of, PASSWORD};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn full_lifecycle_across_two_accounts() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Acme").await;
    let grace = app.sign_up("grace@example.com", "Grace Labs").await;

    // Invite, resend (new link, same id), cancel; invite again; Grace accepts with her session.
    let (first, first_token) = app.invite_ok(&ada.token, &ada.account_id, "grace@example.com", "DEVELOPER").await;
    let resent = app.resend(&ada.token, &first).await;
    assert_eq!(resent["data"]["resendInvite"]["invitation"]["sendCount"], 2, "{resent}");
    let second_token = token_of(resent["data"]["resendInvite"]["inviteLink"].as_str().unwrap());
    assert_ne!(first_token, second_token);
    let cancelled = app.cancel(&ada.token, &first).await;
    assert_eq!(cancelled["data"]["cancelInvite"]["status"], "CANCELLED", "{cancelled}");
    assert_eq!(cancelled["data"]["cancelInvite"]["statusText"], "Invitation cancelled");
    assert_eq!(cancelled["data"]["cancelInvite"]["cancelledBy"]["id"], ada.user_id.as_str());
    let before = app.event_count().await;
    app.assert_refused(&app.accept_as(&grace.token, &second_token).await, "INVITATION_NOT_PENDING", before).await;

    let (_, token) = app.invite_ok(&ada.token, &ada.account_id, "grace@example.com", "SECURITY_ENGINEER").await;
    let accepted = app.accept_as(&grace.token, &token).await;
    assert_eq!(accepted["data"]["acceptInvite"]["account"]["viewerRole"], "SECURITY_ENGINEER", "{accepted}");

    // Grace now belongs to two accounts, with a role in each.
    let viewer = app.ok(Some(&grace.token), "{ viewer { accounts { name viewerRole } } }", json!({})).await;
    let mut accounts: Vec<(String, String)> = viewer["viewer"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().into(), a["viewerRole"].as_str().unwrap().into()))
        .collect();
    accounts.sort();
    assert_eq!(accounts, vec![("Acme".into(), "SECURITY_ENGINEER".into()), ("Grace Labs".into(), "ADMIN".into())]);

    // createAccount: a third account, Grace is its only Admin.
    let created = app.ok(Some(&grace.token), "mutation { createAccount(input: {name: \"  Side project \"}) { id name viewerRole } }", json!({})).await;
    assert_eq!(created["createAccount"]["name"], "Side project");
    assert_eq!(created["createAccount"]["viewerRole"], "ADMIN");

    // Change role, including the no-op that appends nothing.
    let changed = app.change_role(&ada.token, &ada.account_id, &grace.user_id, "ADMIN").await;
    assert_eq!(changed["data"]["changeRole"]["role"], "ADMIN", "{changed}");
    let before = app.event_count().await;
    let same = app.change_role(&ada.token, &ada.account_id, &grace.user_id, "ADMIN").await;
    assert!(same.get("errors").is_none(), "{same}");
    assert_eq!(app.event_count().await, before, "a no-op role change appended events");

    // Grace (now Admin) removes Ada; Ada loses access.
    let removed = app.remove_member(&grace.token, &ada.account_id, &ada.user_id).await;
    assert_eq!(removed["data"]["removeMember"]["userId"], ada.user_id.as_str(), "{removed}");
    assert_eq!(app.members(&grace.token, &ada.account_id).await, vec![("grace@example.com".into(), "ADMIN".into())]);
    let gone = app.gql(Some(&ada.token), "query($id: ID!) { account(id: $id) { name } }", json!({ "id": ada.account_id })).await;
    assert_eq!(code(&gone), Some("FORBIDDEN"));

    // The audit log tells the story.
    let log = app
        .ok(Some(&grace.token), "query($id: ID!) { account(id: $id) { auditLog(first: 100) { totalCount nodes { action target details actor { email } requestId } } } }", json!({ "id": ada.account_id }))
        .await;
    let actions: Vec<&str> = log["account"]["auditLog"]["nodes"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        vec![
            "account.created", "member.joined", "member.invited", "invitation.resent", "invitation.cancelled",
            "member.invited", "invitation.accepted", "member.joined", "member.role_changed", "member.removed"
        ]
    );
    let role_change = &log["account"]["auditLog"]["nodes"][8];
    assert_eq!(role_change["details"]["from"], "SECURITY_ENGINEER");
    assert_eq!(role_change["details"]["to"], "ADMIN");
    assert_eq!(role_change["target"], "grace@example.com");
    assert_eq!(role_change["actor"]["email"], "ada@example.com");
    assert!(role_change["requestId"].as_str().is_some_and(|r| !r.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn resend_and_cancel_refusals() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (engineer, _) = app.add_member(&admin, "sec@example.com", "SECURITY_ENGINEER").await;
    let (other_engineer, _) = app.add_member(&admin, "sec2@example.com", "SECURITY_ENGINEER").await;
    let (developer, _) = app.add_member(&admin, "dev@example.com", "DEVELOPER").await;
    let (by_engineer, _) = app.invite_ok(&engineer, &admin.account_id, "x@example.com", "GUEST").await;
    let eve = app.sign_up("eve@example.com", "Evil").await;

    let before = app.event_count().await;
    // Neither the inviter nor an Admin.
    app.assert_refused(&app.resend(&other_engineer, &by_engineer).await, "FORBIDDEN", before).await;
    app.assert_refused(&app.cancel(&other_engineer, &by_engineer).await, "FORBIDDEN", before).await;
    app.assert_refused(&app.cancel(&developer, &by_engineer).await, "FORBIDDEN", before).await;
    // Unknown invitation, malformed id.
    app.assert_refused(&app.resend(&admin.token, &uuid::Uuid::new_v4().to_string()).await, "NOT_FOUND", before).await;
    let malformed = app.cancel(&admin.token, "not-an-id").await;
    app.assert_refused(&malformed, "VALIDATION", before).await;
    assert_eq!(malformed["errors"][0]["extensions"]["field"], "invitationId");
    // Another tenant's invitation.
    app.assert_refused(&app.cancel(&eve.token, &by_engineer).await, "FORBIDDEN", before).await;
    // The inviter and an Admin may.
    assert!(app.resend(&engineer, &by_engineer).await.get("errors").is_none());
    assert!(app.cancel(&admin.token, &by_engineer).await.get("errors").is_none());
    let before = app.event_count().await;
    app.assert_refused(&app.resend(&admin.token, &by_engineer).await, "INVITATION_NOT_PENDING", before).await;
    app.assert_refused(&app.cancel(&admin.token, &by_engineer).await, "INVITATION_NOT_PENDING", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn role_and_removal_refusals() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (developer, developer_id) = app.add_member(&admin, "dev@example.com", "DEVELOPER").await;
    let before = app.event_count().await;
    app.assert_refused(&app.change_role(&developer, &admin.account_id, &admin.user_id, "GUEST").await, "FORBIDDEN", before).await;
    app.assert_refused(&app.remove_member(&developer, &admin.account_id, &admin.user_id).await, "FORBIDDEN", before).await;
    let stranger = uuid::Uuid::new_v4().to_string();
    app.assert_refused(&app.change_role(&admin.token, &admin.account_id, &stranger, "GUEST").await, "NOT_FOUND", before).await;
    app.assert_refused(&app.remove_member(&admin.token, &admin.account_id, &stranger).await, "NOT_FOUND", before).await;
    let no_account = uuid::Uuid::new_v4().to_string();
    app.assert_refused(&app.change_role(&admin.token, &no_account, &developer_id, "GUEST").await, "NOT_FOUND", before).await;
    app.assert_refused(&app.change_role("bad-token", &admin.account_id, &developer_id, "GUEST").await, "UNAUTHENTICATED", before).await;
    // An accepted member cannot accept again with a fresh invitation: already a member.
    app.assert_refused(&app.invite(&admin.token, &admin.account_id, "dev@example.com", "GUEST").await, "ALREADY_MEMBER", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn accept_refusals_without_and_with_a_session() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, token) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    let before = app.event_count().await;
    // Missing or bad profile fields.
    let accept = "mutation($i: AcceptInviteInput!) { acceptInvite(input: $i) { token } }";
    for (input, field) in [
        (json!({ "token": token, "password": PASSWORD }), "displayName"),
        (json!({ "token": token, "displayName": "   ", "password": PASSWORD }), "displayName"),
        (json!({ "token": token, "displayName": "Grace" }), "password"),
        (json!({ "token": token, "displayName": "Grace", "password": "short" }), "password"),
    ] {
        let response = app.gql(None, accept, json!({ "i": input })).await;
        app.assert_refused(&response, "VALIDATION", before).await;
        assert_eq!(response["errors"][0]["extensions"]["field"], field, "{response}");
    }
    // The invited email already has a user: a session is required.
    app.sign_up("grace@example.com", "Grace's own").await;
    let before = app.event_count().await;
    app.assert_refused(&app.accept_new(&token, "Grace").await, "UNAUTHENTICATED", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_and_log_in_refusals() {
    let app = spawn_app().await;
    app.sign_up("ada@example.com", "Acme").await;
    let before = app.event_count().await;
    let sign_up = "mutation($i: SignUpInput!) { signUp(input: $i) { token } }";
    for (input, field) in [
        (json!({ "email": "ADA@example.com", "password": PASSWORD, "displayName": "A", "accountName": "B" }), "email"),
        (json!({ "email": "nope", "password": PASSWORD, "displayName": "A", "accountName": "B" }), "email"),
        (json!({ "email": "b@example.com", "password": "1234567", "displayName": "A", "accountName": "B" }), "password"),
        (json!({ "email": "b@example.com", "password": PASSWORD, "displayName": "", "accountName": "B" }), "displayName"),
        (json!({ "email": "b@example.com", "password": PASSWORD, "displayName": "A", "accountName": "x".repeat(101) }), "accountName"),
    ] {
        let response = app.gql(None, sign_up, json!({ "i": input })).await;
        app.assert_refused(&response, "VALIDATION", before).await;
        assert_eq!(response["errors"][0]["extensions"]["field"], field, "{response}");
    }
    // Repeated wrong passwords are rate limited, with a retry hint.
    let log_in = "mutation($i: LogInInput!) { logIn(input: $i) { token } }";
    let mut last = json!(null);
    for _ in 0..12 {
        last = app.gql(None, log_in, json!({ "i": { "email": "ada@example.com", "password": "wrong password" } })).await;
        if code(&last) == Some("RATE_LIMITED") {
            break;
        }
        assert_eq!(code(&last), Some("UNAUTHENTICATED"));
    }
    assert_eq!(code(&last), Some("RATE_LIMITED"), "{last}");
    assert!(last["errors"][0]["extensions"]["retryAfterSeconds"].as_u64().unwrap() >= 1);
    assert_eq!(app.event_count().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_query_exposes_the_permission_matrix() {
    let app = spawn_app().await;
    let data = app.ok(None, "{ roles { role displayName canGrant permissions { feature access } } }", json!({})).await;
    let roles = data["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 4);
    assert_eq!(roles[1]["displayName"], "Security Engineer");
    assert_eq!(roles[1]["canGrant"], json!(["SECURITY_ENGINEER", "DEVELOPER", "GUEST"]));
    let audit = roles[1]["permissions"].as_array().unwrap().iter().find(|p| p["feature"] == "Audit log").unwrap();
    assert_eq!(audit["access"], "NONE");
    assert_eq!(roles[3]["canGrant"], json!([]));
}

/// Invitations are listed newest first, so with offset cursors every invitation sent while an
/// admin pages would shift the rest by one (one shown twice). Keyset cursors hold their place;
/// an offset cursor from an earlier version still reads.
#[tokio::test(flavor = "multi_thread")]
async fn list_cursors_hold_their_place_when_items_are_added_and_old_offset_cursors_still_read() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    for i in 0..5 {
        app.invite_ok(&admin.token, &admin.account_id, &format!("p{i}@example.com"), "GUEST").await;
    }
    let page = "query($id: ID!, $after: String) { account(id: $id) { invitations(first: 2, after: $after) { pageInfo { hasPreviousPage hasNextPage endCursor } nodes { email } } } }";
    let emails = |conn: &Value| conn["nodes"].as_array().unwrap().iter().map(|n| n["email"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let first = app.ok(Some(&admin.token), page, json!({ "id": admin.account_id })).await;
    let conn = &first["account"]["invitations"];
    assert_eq!(emails(conn), ["p4@example.com", "p3@example.com"]);
    assert_eq!(conn["pageInfo"]["hasPreviousPage"], false);
    let mut after = conn["pageInfo"]["endCursor"].clone();
    // Two more invitations arrive ahead of the page already seen.
    app.invite_ok(&admin.token, &admin.account_id, "new1@example.com", "GUEST").await;
    app.invite_ok(&admin.token, &admin.account_id, "new2@example.com", "GUEST").await;
    let mut rest = Vec::new();
    loop {
        let data = app.ok(Some(&admin.token), page, json!({ "id": admin.account_id, "after": after })).await;
        let conn = &data["account"]["invitations"];
        assert_eq!(conn["pageInfo"]["hasPreviousPage"], true);
        rest.extend(emails(conn));
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(rest, ["p2@example.com", "p1@example.com", "p0@example.com"]);
    // An offset cursor ("after the item at offset 1") as earlier versions handed out.
    let old = app.ok(Some(&admin.token), page, json!({ "id": admin.account_id, "after": "1" })).await;
    assert_eq!(emails(&old["account"]["invitations"]), ["p4@example.com", "p3@example.com"]);
    let members = app.ok(Some(&admin.token), "query($id: ID!) { account(id: $id) { members(first: 1) { edges { cursor } pageInfo { hasNextPage } } } }", json!({ "id": admin.account_id })).await;
    let cursor = members["account"]["members"]["edges"][0]["cursor"].as_str().unwrap().to_string();
    assert!(cursor.starts_with('k'), "{members}");
    let next = app.ok(Some(&admin.token), "query($id: ID!, $a: String) { account(id: $id) { members(after: $a) { nodes { user { email } } } } }", json!({ "id": admin.account_id, "a": cursor })).await;
    assert_eq!(next["account"]["members"]["nodes"], json!([]), "one member, nothing after them");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_page_with_cursors_and_cap_first() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    for i in 0..5 {
        app.invite_ok(&admin.token, &admin.account_id, &format!("p{i}@example.com"), "GUEST").await;
    }
    let page = "query($id: ID!, $after: String) { account(id: $id) { invitations(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { email } } } } }";
    let mut seen = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let data = app.ok(Some(&admin.token), page, json!({ "id": admin.account_id, "after": after })).await;
        let conn = &data["account"]["invitations"];
        assert_eq!(conn["totalCount"], 5);
        seen.extend(conn["edges"].as_array().unwrap().iter().map(|e| e["node"]["email"].as_str().unwrap().to_string()));
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    seen.sort();
    assert_eq!(seen, (0..5).map(|i| format!("p{i}@example.com")).collect::<Vec<_>>());
    let negative = app.gql(Some(&admin.token), "query($id: ID!) { account(id: $id) { members(first: -1) { totalCount } } }", json!({ "id": admin.account_id })).await;
    assert_eq!(code(&negative), Some("VALIDATION"));
    let filtered = app.ok(Some(&admin.token), "query($id: ID!) { account(id: $id) { invitations(status: PENDING) { totalCount } members(search: \"ADA\") { totalCount } } }", json!({ "id": admin.account_id })).await;
    assert_eq!(filtered["account"]["invitations"]["totalCount"], 5);
    assert_eq!(filtered["account"]["members"]["totalCount"], 1);
}
