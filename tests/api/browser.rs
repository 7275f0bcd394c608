//! The web pages in headless Chromium (issue 11, docs/web.md): the whole invite journey with
//! two browser sessions, the invite page's refusals, GraphiQL offline, the security headers,
//! an axe-core accessibility run and a clean console. Harness: `helpers::browser`.

use crate::helpers::browser::{axe_violations, browser, choose, click, console_errors, fill, find, screenshot, until, webdriver};
use crate::helpers::{spawn_app, PASSWORD};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::json;

const XSS_NAME: &str = "<img src=x onerror=alert(1)>";

/// Asserts the page has no serious or critical axe violations and an empty error console.
async fn assert_clean(client: &Client, page: &str) {
    let violations = axe_violations(client).await;
    assert!(violations.is_empty(), "axe on {page}: {violations:?}");
    let errors = console_errors(client).await;
    assert!(errors.is_empty(), "console errors on {page}: {errors:?}");
}

/// The text of every element matching `css`.
async fn texts(client: &Client, css: &str) -> Vec<String> {
    let found = client.execute("return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent)", vec![json!(css)]).await.unwrap();
    serde_json::from_value(found).unwrap()
}

async fn sign_up(client: &Client, address: &str, email: &str, name: &str, account: &str) {
    client.goto(&format!("{address}/")).await.unwrap();
    let form = "form[aria-labelledby=signup-title]";
    fill(client, &format!("{form} input[name=email]"), email).await;
    fill(client, &format!("{form} input[name=password]"), PASSWORD).await;
    fill(client, &format!("{form} input[name=displayName]"), name).await;
    fill(client, &format!("{form} input[name=accountName]"), account).await;
    click(client, &format!("{form} button[type=submit]")).await;
    find(client, "tr.member").await;
}

/// Opens "Invite user", fills "Add team member" and returns the link from "Invite link".
async fn invite(client: &Client, email: &str, role: &str) -> String {
    click(client, ".page-head button.primary").await;
    let dialog = find(client, "dialog[open]").await;
    assert_eq!(dialog.find(Locator::Css("h2")).await.unwrap().text().await.unwrap(), "Add team member");
    let active = client.execute("return document.activeElement.closest('dialog') !== null", vec![]).await.unwrap();
    assert_eq!(active, json!(true), "focus moves into the dialog");
    fill(client, "dialog[open] input[type=email]", email).await;
    choose(client, "dialog[open] select", role).await;
    click(client, "dialog[open] button[type=submit]").await;
    let link = find(client, "dialog[open] input.invite-link").await;
    link.prop("value").await.unwrap().expect("the invite link")
}

async fn close_dialog(client: &Client) {
    client.execute("document.querySelector('dialog[open]').close()", vec![]).await.unwrap();
}

#[tokio::test]
async fn browser_invite_journey_two_sessions_live_update_role_change_and_audit_log() {
    let Some(driver) = webdriver() else { return };
    let app = spawn_app().await;
    let admin = browser(driver).await;
    sign_up(&admin, &app.address, "ada@example.com", "Ada Admin", "Acme").await;

    // Keyboard: the dialog takes focus when it opens, and Esc closes it.
    click(&admin, ".page-head button.primary").await;
    find(&admin, "dialog[open]").await;
    let focused = admin.active_element().await.unwrap();
    assert_eq!(focused.attr("type").await.unwrap().as_deref(), Some("email"), "focus on Account email");
    focused.send_keys(&Key::Escape.to_string()).await.unwrap();
    until(&admin, "Esc to close the dialog", "return document.querySelector('dialog') === null").await;

    let link = invite(&admin, "sam@example.com", "SECURITY_ENGINEER").await;
    assert!(link.contains("/invite/"), "{link}");
    click(&admin, "dialog[open] button.primary").await; // Copy invitation
    until(&admin, "the copy to finish", "return document.querySelector('dialog[open] [role=status]').textContent !== ''").await;
    screenshot(&admin, "invite-link.png").await;
    close_dialog(&admin).await;
    let other = invite(&admin, "dev@example.com", "DEVELOPER").await;
    close_dialog(&admin).await;
    assert!(!other.is_empty());
    until(&admin, "the pending invitations", "return document.querySelectorAll('tr.invitation.pending').length === 2").await;
    let statuses = texts(&admin, "tr.invitation .status-text").await;
    assert!(statuses.contains(&"Invitation sent for Security Engineer".to_string()), "{statuses:?}");
    // Marks this page load: still there after the invitee joins means no reload happened.
    admin.execute("window.rosterMarker = 'same page'", vec![]).await.unwrap();

    // The invitee's own browser opens the link (on this server: the link's host is the public URL).
    let invitee = browser(driver).await;
    let path = &link[link.find("/invite/").unwrap()..];
    invitee.goto(&format!("{}{path}", app.address)).await.unwrap();
    let preview = find(&invitee, "dl.preview").await.text().await.unwrap();
    for fact in ["Ada Admin", "Acme", "Security Engineer", "sam@example.com"] {
        assert!(preview.contains(fact), "preview lacks {fact}: {preview}");
    }
    assert_clean(&invitee, "the invite page").await;
    fill(&invitee, "input[name=displayName]", XSS_NAME).await;
    fill(&invitee, "form[aria-labelledby=create-title] input[name=password]", PASSWORD).await;
    click(&invitee, "form[aria-labelledby=create-title] button[type=submit]").await;
    let me = find(&invitee, "#me").await;
    assert!(me.text().await.unwrap().starts_with(XSS_NAME), "the name shows as its characters");
    let images = invitee.execute("return document.querySelectorAll('img').length", vec![]).await.unwrap();
    assert_eq!(images, json!(0), "no element made from the name");

    // The admin's list shows the new member without a reload.
    until(&admin, "the new member", "return document.querySelector('tr.member[data-email=\"sam@example.com\"]') !== null").await;
    assert_eq!(admin.execute("return window.rosterMarker", vec![]).await.unwrap(), json!("same page"));
    let names = texts(&admin, "tr.member .name").await;
    assert!(names.contains(&XSS_NAME.to_string()), "{names:?}");
    let locked = admin.execute("return document.querySelector('tr.member[data-email=\"ada@example.com\"] select').disabled", vec![]).await.unwrap();
    assert_eq!(locked, json!(true), "own role and last Admin are locked");

    // The role dropdown.
    choose(&admin, "tr.member[data-email=\"sam@example.com\"] select", "DEVELOPER").await;
    until(&admin, "the role change", "return document.querySelector('p.status').textContent.includes('is now Developer')").await;
    let stored = admin.execute("return [sessionStorage.getItem('roster.token'), sessionStorage.getItem('roster.account')]", vec![]).await.unwrap();
    let members = app.members(stored[0].as_str().unwrap(), stored[1].as_str().unwrap()).await;
    assert!(members.contains(&("sam@example.com".to_string(), "DEVELOPER".to_string())), "{members:?}");

    // Resend, then cancel the other invitation; each changes what the row says.
    let row = "tr.invitation[data-email=\"dev@example.com\"]";
    click(&admin, &format!("{row} button:first-child")).await; // Resend
    let resent = find(&admin, "dialog[open] input.invite-link").await.prop("value").await.unwrap().unwrap();
    assert_ne!(resent, other, "a resend makes a new link");
    close_dialog(&admin).await;
    until(&admin, "the resend note", "return document.querySelector('p.status').textContent.includes('sent again')").await;
    screenshot(&admin, "users.png").await;
    click(&admin, &format!("{row} button:last-child")).await; // Cancel
    until(&admin, "the cancelled status", &format!("return document.querySelector('{row} .status-text')?.textContent === 'Invitation cancelled'")).await;
    assert_clean(&admin, "the Users page").await;
    // Remove asks first, in a dialog.
    click(&admin, "tr.member[data-email=\"sam@example.com\"] td.actions button").await;
    click(&admin, "dialog[open] button.danger").await;
    until(&admin, "the removal", "return document.querySelector('tr.member[data-email=\"sam@example.com\"]') === null").await;

    // The audit log lists every step, and filters by action.
    admin.goto(&format!("{}/#audit", app.address)).await.unwrap();
    until(&admin, "the audit log", "return document.querySelectorAll('tr.entry').length >= 9").await;
    let actions = texts(&admin, "tr.entry .action").await;
    for action in ["account.created", "member.invited", "invitation.accepted", "member.joined", "member.role_changed", "invitation.resent", "invitation.cancelled", "member.removed"] {
        assert!(actions.iter().any(|a| a == action), "{action} missing from {actions:?}");
    }
    choose(&admin, "select[name=action]", "member.role_changed").await;
    until(&admin, "the filter", "return [...document.querySelectorAll('tr.entry .action')].every((e) => e.textContent === 'member.role_changed') && document.querySelectorAll('tr.entry').length === 1").await;
    assert_clean(&admin, "the audit log").await;

    admin.goto(&format!("{}/#roles", app.address)).await.unwrap();
    let roles = find(&admin, "table.roles").await.text().await.unwrap();
    assert!(roles.contains("Security Engineer") && roles.contains("Audit log"), "{roles}");
    admin.close().await.unwrap();
    invitee.close().await.unwrap();
}

#[tokio::test]
async fn browser_invite_page_explains_cancelled_wrong_email_and_expired() {
    let Some(driver) = webdriver() else { return };
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Acme").await;
    let bob = app.sign_up("bob@example.com", "Bobs").await;
    app.ok(Some(&bob.token), "mutation { createAccount(input: {name: \"Bobs Lab\"}) { id } }", json!({})).await;
    let (cancelled_id, cancelled) = app.invite_ok(&owner.token, &owner.account_id, "gone@example.com", "GUEST").await;
    app.cancel(&owner.token, &cancelled_id).await;
    let (_, for_carol) = app.invite_ok(&owner.token, &owner.account_id, "carol@example.com", "DEVELOPER").await;
    let client = browser(driver).await;

    client.goto(&format!("{}/invite/{cancelled}", app.address)).await.unwrap();
    let words = find(&client, "p.explain").await.text().await.unwrap();
    assert!(words.contains("cancelled") && words.contains("invite you again"), "{words}");
    client.goto(&format!("{}/invite/not-a-token", app.address)).await.unwrap();
    let words = find(&client, "p.explain").await.text().await.unwrap();
    assert!(words.contains("resend"), "{words}");

    // Bob, signed in, opens Carol's invitation.
    client.goto(&format!("{}/", app.address)).await.unwrap();
    fill(&client, "form[aria-labelledby=login-title] input[name=email]", "bob@example.com").await;
    fill(&client, "form[aria-labelledby=login-title] input[name=password]", PASSWORD).await;
    click(&client, "form[aria-labelledby=login-title] button[type=submit]").await;
    find(&client, "tr.member").await;
    // The account switcher lists both of Bob's accounts and switches between them.
    let accounts = texts(&client, "#top select option").await;
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    assert!(accounts.iter().any(|a| a == "Bobs Lab (Admin)"), "{accounts:?}");
    let other = client.execute("const s = document.querySelector('#top select'); return [...s.options].find((o) => !o.selected).value", vec![]).await.unwrap();
    choose(&client, "#top select", other.as_str().unwrap()).await;
    until(&client, "the switch", &format!("return sessionStorage.getItem('roster.account') === '{}' && document.querySelector('#top select').value === '{0}'", other.as_str().unwrap())).await;
    client.goto(&format!("{}/invite/{for_carol}", app.address)).await.unwrap();
    let words = find(&client, "p.explain").await.text().await.unwrap();
    assert!(words.contains("signed in as bob@example.com") && words.contains("carol@example.com") && words.contains("Log out"), "{words}");
    click(&client, "main .buttons button").await; // Log out and continue
    find(&client, "form[aria-labelledby=create-title]").await;

    app.clock().advance(chrono::Duration::days(8));
    client.refresh().await.unwrap();
    find(&client, "h1").await;
    until(&client, "the expiry explanation", "return document.querySelector('h1').textContent === 'This invitation has expired'").await;
    let words = find(&client, "p.explain").await.text().await.unwrap();
    assert!(words.contains("resend"), "{words}");
    assert_clean(&client, "the invite page").await;
    client.close().await.unwrap();
}

/// Runs without a browser: the headers every page and asset carries, and pages that name no
/// other origin.
#[tokio::test]
async fn pages_carry_security_headers_and_load_nothing_from_another_origin() {
    let app = spawn_app().await;
    for path in ["/", "/invite/some-token", "/graphql", "/assets/app.js", "/assets/vendor/graphiql-3.8.3/graphiql.min.css"] {
        let response = app.client.get(format!("{}{path}", app.address)).header("accept", "text/html").send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let csp = header("content-security-policy");
        for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        if path != "/assets/vendor/graphiql-3.8.3/graphiql.min.css" {
            let body = response.text().await.unwrap();
            assert!(!body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"), "{path} names another origin");
        }
    }
    for path in ["/assets/nope.js", "/assets/../index.html", "/assets/vendor/../../src/lib.rs"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn browser_graphiql_runs_a_query_offline() {
    let Some(driver) = webdriver() else { return };
    let app = spawn_app().await;
    let client = browser(driver).await;
    client.goto(&format!("{}/graphql?query=%7B%20roles%20%7B%20displayName%20%7D%20%7D", app.address)).await.unwrap();
    click(&client, ".graphiql-execute-button").await;
    until(&client, "the query result", "return (document.querySelector('.graphiql-response')?.textContent ?? '').includes('Security Engineer')").await;
    let outside = client
        .execute("return performance.getEntriesByType('resource').map((e) => e.name).filter((n) => !n.startsWith(location.origin))", vec![])
        .await
        .unwrap();
    assert_eq!(outside, json!([]), "requests left the server's origin");
    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "console errors in GraphiQL: {errors:?}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn browser_existing_user_logs_in_on_the_invite_page_and_joins_in_one_click() {
    let Some(driver) = webdriver() else { return };
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Acme").await;
    app.sign_up("dave@example.com", "Daves").await;
    let (_, token) = app.invite_ok(&owner.token, &owner.account_id, "dave@example.com", "GUEST").await;
    let client = browser(driver).await;
    client.goto(&format!("{}/invite/{token}", app.address)).await.unwrap();

    // A new tab has no session: Dave logs in as the invited email right on the page.
    fill(&client, "form[aria-labelledby=login-title] input[name=password]", PASSWORD).await;
    click(&client, "form[aria-labelledby=login-title] button[type=submit]").await;
    let join = find(&client, "main > div > button.primary").await;
    assert_eq!(join.text().await.unwrap(), "Join Acme as dave");
    join.click().await.unwrap();
    until(&client, "the account's Users page", "return document.querySelector('#top select option:checked')?.textContent === 'Acme (Guest)'").await;
    let members = app.members(&owner.token, &owner.account_id).await;
    assert!(members.contains(&("dave@example.com".to_string(), "GUEST".to_string())), "{members:?}");
    // A Guest is offered no invitation and no role change.
    find(&client, "tr.member").await;
    let offered = client.execute("return [document.querySelector('.page-head button'), ...[...document.querySelectorAll('tr.member select')].filter((s) => !s.disabled)].filter(Boolean).length", vec![]).await.unwrap();
    assert_eq!(offered, json!(0));
    assert_clean(&client, "the Users page as a Guest").await;
    client.close().await.unwrap();
}
