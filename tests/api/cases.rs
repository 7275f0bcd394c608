//! The field cases of `shared/cases/README.md`, one test each, named after the case id.

use crate::helpers::{code, spawn_app, token_of, PASSWORD, PUBLIC_URL};
use roster_api::clock::Clock;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn f1_guest_cannot_make_themself_admin() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (guest, guest_id) = app.add_member(&admin, "gus@example.com", "GUEST").await;
    let before = app.event_count().await;
    let response = app.change_role(&guest, &admin.account_id, &guest_id, "ADMIN").await;
    assert!(matches!(code(&response), Some("FORBIDDEN") | Some("SELF_CHANGE")), "{response}");
    app.assert_refused(&response, code(&response).unwrap(), before).await;
    assert!(app.members(&admin.token, &admin.account_id).await.contains(&("gus@example.com".into(), "GUEST".into())));
    // Nor may a Developer or Security Engineer change anyone's role.
    let (engineer, _) = app.add_member(&admin, "sec@example.com", "SECURITY_ENGINEER").await;
    let before = app.event_count().await;
    let response = app.change_role(&engineer, &admin.account_id, &guest_id, "DEVELOPER").await;
    app.assert_refused(&response, "FORBIDDEN", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn f2_wrong_signed_in_user_gets_email_mismatch_and_invitation_stays_pending() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, token) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    let mallory = app.sign_up("mallory@example.com", "Elsewhere").await;
    let before = app.event_count().await;
    let response = app.accept_as(&mallory.token, &token).await;
    app.assert_refused(&response, "EMAIL_MISMATCH", before).await;
    assert_eq!(app.invitation(&admin.token, &admin.account_id, &id).await["status"], "PENDING");
    // The right user can still accept.
    let grace = app.sign_up("grace@example.com", "Grace's own").await;
    let accepted = app.accept_as(&grace.token, &token).await;
    assert_eq!(accepted["data"]["acceptInvite"]["account"]["viewerRole"], "DEVELOPER", "{accepted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn f3_removing_an_inviter_cancels_their_pending_invitations() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (engineer, engineer_id) = app.add_member(&admin, "sec@example.com", "SECURITY_ENGINEER").await;
    let (id, token) = app.invite_ok(&engineer, &admin.account_id, "dev@example.com", "DEVELOPER").await;
    let removed = app.remove_member(&admin.token, &admin.account_id, &engineer_id).await;
    assert!(removed.get("errors").is_none(), "{removed}");
    let listed = app.invitation(&admin.token, &admin.account_id, &id).await;
    assert_eq!((listed["status"].as_str(), listed["cancelReason"].as_str()), (Some("CANCELLED"), Some("inviter removed")));
    let before = app.event_count().await;
    let response = app.accept_new(&token, "Dev").await;
    app.assert_refused(&response, "INVITATION_NOT_PENDING", before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn f4_resending_an_invitation_that_expired_a_day_ago_works() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (id, old_token) = app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    app.clock().advance(chrono::Duration::days(8));
    assert_eq!(app.invitation(&admin.token, &admin.account_id, &id).await["status"], "EXPIRED");
    let resent = app.resend(&admin.token, &id).await;
    let payload = &resent["data"]["resendInvite"];
    assert_eq!(payload["invitation"]["id"], id.as_str(), "{resent}");
    assert_eq!(payload["invitation"]["status"], "PENDING");
    assert_eq!(payload["invitation"]["sendCount"], 2);
    let expires: chrono::DateTime<chrono::Utc> = payload["invitation"]["expiresAt"].as_str().unwrap().parse().unwrap();
    let expected = app.clock().now() + chrono::Duration::days(7);
    assert!((expires - expected).num_seconds().abs() < 60, "expiry not reset: {expires}");
    let new_token = token_of(payload["inviteLink"].as_str().unwrap());
    assert_ne!(new_token, old_token);
    let before = app.event_count().await;
    app.assert_refused(&app.accept_new(&old_token, "Grace").await, "INVALID_TOKEN", before).await;
    app.join(&new_token, "Grace").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn f5_two_simultaneous_invites_for_one_email_one_wins_other_is_pending() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (a, b) = tokio::join!(
        app.invite(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER"),
        app.invite(&admin.token, &admin.account_id, "grace@example.com", "GUEST"),
    );
    let mut codes = vec![code(&a), code(&b)];
    codes.sort();
    assert_eq!(codes, vec![None, Some("INVITATION_PENDING")], "{a} {b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn f6_invite_link_ignores_host_and_origin_headers() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let headers = [("Host", "evil.example"), ("Origin", "https://evil.example"), ("X-Forwarded-Host", "evil.example")];
    let query = "mutation($a: ID!) { inviteUser(input: {accountId: $a, email: \"g@example.com\", role: GUEST}) { inviteLink } }";
    let response = app.gql_with_headers(Some(&admin.token), &headers, query, json!({ "a": admin.account_id })).await;
    let link = response["data"]["inviteUser"]["inviteLink"].as_str().expect("link");
    assert!(link.starts_with(&format!("{}/invite/", PUBLIC_URL)), "{link}");
    assert!(!link.contains("evil"));
}

#[tokio::test(flavor = "multi_thread")]
async fn f7_expired_invitation_is_refused_on_every_accept_path() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, new_user_token) = app.invite_ok(&admin.token, &admin.account_id, "new@example.com", "DEVELOPER").await;
    let (_, session_token) = app.invite_ok(&admin.token, &admin.account_id, "old@example.com", "DEVELOPER").await;
    let existing = app.sign_up("old@example.com", "Old's own").await;
    app.clock().advance(chrono::Duration::days(7) + chrono::Duration::minutes(1));
    let before = app.event_count().await;
    app.assert_refused(&app.accept_new(&new_user_token, "New").await, "INVITATION_EXPIRED", before).await;
    app.assert_refused(&app.accept_as(&existing.token, &session_token).await, "INVITATION_EXPIRED", before).await;
    // A session for another user does not bypass expiry either.
    app.assert_refused(&app.accept_as(&existing.token, &new_user_token).await, "INVITATION_EXPIRED", before).await;
    let preview = app.ok(None, "query($t: String!) { invitationPreview(token: $t) { status } }", json!({ "t": new_user_token })).await;
    assert_eq!(preview["invitationPreview"]["status"], "EXPIRED");
}

#[tokio::test(flavor = "multi_thread")]
async fn f8_unknown_role_names_are_validation_errors_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, user_id) = app.add_member(&admin, "gus@example.com", "GUEST").await;
    for role in ["admin", "OWNER", ""] {
        let before = app.event_count().await;
        let response = app.invite(&admin.token, &admin.account_id, "x@example.com", role).await;
        app.assert_refused(&response, "VALIDATION", before).await;
        assert_eq!(response["errors"][0]["extensions"]["field"], "role", "{response}");
        let response = app.change_role(&admin.token, &admin.account_id, &user_id, role).await;
        app.assert_refused(&response, "VALIDATION", before).await;
        assert_eq!(response["errors"][0]["extensions"]["field"], "role", "{response}");
        // Inline in the query text rather than as a variable.
        let inline = app
            .gql(
                Some(&admin.token),
                &format!("mutation {{ inviteUser(input: {{accountId: \"{}\", email: \"x@example.com\", role: {}}}) {{ inviteLink }} }}", admin.account_id, if role.is_empty() { "\"\"" } else { role }),
                json!({}),
            )
            .await;
        app.assert_refused(&inline, "VALIDATION", before).await;
        assert_eq!(inline["errors"][0]["extensions"]["field"], "role", "{inline}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn f9_invitee_email_in_upper_case_is_normalised_and_log_in_ignores_case() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (_, token) = app.invite_ok(&admin.token, &admin.account_id, "Grace.Hopper@EXAMPLE.COM", "DEVELOPER").await;
    let accepted = app.accept_new(&token, "Grace").await;
    assert_eq!(accepted["data"]["acceptInvite"]["user"]["email"], "grace.hopper@example.com", "{accepted}");
    let log_in = "mutation($i: LogInInput!) { logIn(input: $i) { user { email } } }";
    for typed in ["grace.hopper@example.com", "GRACE.HOPPER@EXAMPLE.COM", " Grace.Hopper@Example.com "] {
        let data = app.ok(None, log_in, json!({ "i": { "email": typed, "password": PASSWORD } })).await;
        assert_eq!(data["logIn"]["user"]["email"], "grace.hopper@example.com");
    }
    assert!(app.members(&admin.token, &admin.account_id).await.contains(&("grace.hopper@example.com".into(), "DEVELOPER".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn f10_sole_admin_cannot_leave_or_demote_themself() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let before = app.event_count().await;
    app.assert_refused(&app.change_role(&admin.token, &admin.account_id, &admin.user_id, "DEVELOPER").await, "LAST_ADMIN", before).await;
    app.assert_refused(&app.remove_member(&admin.token, &admin.account_id, &admin.user_id).await, "LAST_ADMIN", before).await;
    // With a second Admin, changing oneself is still refused, as SELF_CHANGE.
    let (_, second) = app.add_member(&admin, "bob@example.com", "ADMIN").await;
    let before = app.event_count().await;
    app.assert_refused(&app.change_role(&admin.token, &admin.account_id, &admin.user_id, "GUEST").await, "SELF_CHANGE", before).await;
    app.assert_refused(&app.remove_member(&admin.token, &admin.account_id, &admin.user_id).await, "SELF_CHANGE", before).await;
    assert!(!second.is_empty());
    assert!(app.members(&admin.token, &admin.account_id).await.contains(&("ada@example.com".into(), "ADMIN".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn f11_nul_and_control_characters_in_names_and_searches_are_validation_errors() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let field = |r: &serde_json::Value| r["errors"][0]["extensions"]["field"].as_str().map(str::to_string);
    let before = app.event_count().await;
    for bad in ["Ann\u{0}Lee", "Ann\u{7}Lee", "Ann\nLee", "Ann\u{202e}Lee"] {
        let input = json!({ "email": "ann@example.com", "password": PASSWORD, "displayName": bad, "accountName": "Ann's" });
        let response = app.gql(None, "mutation($i: SignUpInput!) { signUp(input: $i) { token } }", json!({ "i": input })).await;
        app.assert_refused(&response, "VALIDATION", before).await;
        assert_eq!(field(&response).as_deref(), Some("displayName"), "{bad:?}: {response}");
        let input = json!({ "email": "ann@example.com", "password": PASSWORD, "displayName": "Ann", "accountName": bad });
        let response = app.gql(None, "mutation($i: SignUpInput!) { signUp(input: $i) { token } }", json!({ "i": input })).await;
        app.assert_refused(&response, "VALIDATION", before).await;
        assert_eq!(field(&response).as_deref(), Some("accountName"), "{bad:?}: {response}");
        // Filters: an empty result or VALIDATION, never INTERNAL.
        for (query, name) in [
            ("query($id: ID!, $s: String) { account(id: $id) { members(search: $s) { totalCount } } }", "search"),
            ("query($id: ID!, $s: String) { account(id: $id) { auditLog(action: $s) { totalCount } } }", "action"),
        ] {
            let response = app.gql(Some(&admin.token), query, json!({ "id": admin.account_id, "s": bad })).await;
            match code(&response) {
                None => assert!(response["data"]["account"].is_object(), "{response}"),
                Some(c) => {
                    assert_eq!(c, "VALIDATION", "{name} {bad:?}: {response}");
                    assert_eq!(field(&response).as_deref(), Some(name), "{response}");
                }
            }
        }
    }
    assert_eq!(app.event_count().await, before, "nothing appended");
}

#[tokio::test(flavor = "multi_thread")]
async fn f12_a_page_after_the_largest_cursor_is_empty_or_validation_on_every_paged_field() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    app.invite_ok(&admin.token, &admin.account_id, "grace@example.com", "DEVELOPER").await;
    let lists = ["members", "invitations", "auditLog"]
        .map(|name| (format!("query($id: ID!, $a: String) {{ account(id: $id) {{ {name}(after: $a) {{ nodes {{ __typename }} }} }} }}"), name));
    let events = ("query($id: ID!, $a: String) { events(accountId: $id, after: $a) { nodes { __typename } } }".to_string(), "events");
    for (query, name) in lists.into_iter().chain([events]) {
        // Offsets at and past i64, and keyset cursors at the ends of time (PostgreSQL's
        // timestamps end where chrono's do not).
        let key = |micros: i64| format!("k{micros}_00000000-0000-0000-0000-000000000000");
        let extremes = ["9223372036854775807".to_string(), "9223372036854775806".into(), "18446744073709551616".into(), key(-300_000_000_000_000_000), key(i64::MAX), key(i64::MIN)];
        for after in &extremes {
            let response = app.gql(Some(&admin.token), &query, json!({ "id": admin.account_id, "a": after })).await;
            match code(&response) {
                None => {
                    let page = if name == "events" { &response["data"]["events"] } else { &response["data"]["account"][name] };
                    assert_eq!(page["nodes"], json!([]), "{name} after {after}: {response}");
                }
                Some(c) => assert_eq!(c, "VALIDATION", "{name} after {after}: {response}"),
            }
        }
    }
}
