//! Live feeds: `Subscription.events` over `graphql-transport-ws` and `roster events --follow`
//! catch up and then stream new events, with no gap and no duplicate at the seam; a
//! subscriber's access follows the events about their own membership.

use crate::helpers::{roster, spawn_app, WsClient};
use serde_json::{json, Value};
use std::io::BufRead;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn subscription_catches_up_then_streams_live_without_gap_or_duplicate() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    app.invite_ok(&admin.token, &admin.account_id, "one@example.com", "GUEST").await;

    let mut ws = WsClient::connect(&app, &admin.token).await;
    let query = "subscription($a: ID) { events(after: \"0\", accountId: $a) { position type accountId } }";
    ws.subscribe("1", query, json!({ "a": admin.account_id })).await;

    let mut positions = Vec::new();
    let mut types = Vec::new();
    // Catch-up: the 3 events so far (AccountCreated, MemberJoined, MemberInvited).
    // Live: an invite made after subscribing arrives as the 4th.
    let mut invited_live = false;
    while positions.len() < 4 {
        let body = ws.next_message().await;
        match body["type"].as_str() {
            Some("next") => {
                let event = &body["payload"]["data"]["events"];
                assert_eq!(event["accountId"], admin.account_id.as_str(), "{body}");
                positions.push(event["position"].as_str().unwrap().parse::<i64>().unwrap());
                types.push(event["type"].as_str().unwrap().to_string());
                if positions.len() == 3 && !invited_live {
                    invited_live = true;
                    app.invite_ok(&admin.token, &admin.account_id, "two@example.com", "GUEST").await;
                }
            }
            other => panic!("unexpected message {other:?}: {body}"),
        }
    }
    assert_eq!(types, vec!["AccountCreated", "MemberJoined", "MemberInvited", "MemberInvited"]);
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn subscription_refuses_callers_who_may_not_read() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let (guest, _) = app.add_member(&admin, "gus@example.com", "GUEST").await;
    // `/graphql/ws`, and an upgrade on `/graphql` itself; the token under the `token` key.
    for (path, token, expected) in [("/graphql/ws", guest.as_str(), "FORBIDDEN"), ("/graphql", "nonsense", "UNAUTHENTICATED")] {
        let mut ws = WsClient::connect_to(&app, path, json!({ "token": token })).await;
        let query = format!("subscription {{ events(accountId: \"{}\") {{ position }} }}", admin.account_id);
        ws.subscribe("1", &query, json!({})).await;
        let body = ws.next_message().await;
        // async-graphql reports a resolver error as a `next` carrying `errors`.
        let error = if body["type"] == "error" { &body["payload"][0] } else { &body["payload"]["errors"][0] };
        assert_eq!(error["extensions"]["code"], expected, "{body}");
        assert!(body["payload"]["data"]["events"].is_null(), "{body}");
        ws.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn roster_events_follow_streams_new_events_as_they_commit() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let mut child = roster(&["events", "--follow", "--account", &admin.account_id, "--limit", "4"])
        .env("DATABASE_URL", &app.database_url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    for _ in 0..2 {
        lines.push(tokio::time::timeout(Duration::from_secs(10), lines_rx.recv()).await.expect("catch-up line").unwrap());
    }
    app.invite_ok(&admin.token, &admin.account_id, "one@example.com", "GUEST").await;
    app.invite_ok(&admin.token, &admin.account_id, "two@example.com", "GUEST").await;
    for _ in 0..2 {
        lines.push(tokio::time::timeout(Duration::from_secs(10), lines_rx.recv()).await.expect("live line").unwrap());
    }
    let types: Vec<String> = lines.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(types, vec!["AccountCreated", "MemberJoined", "MemberInvited", "MemberInvited"]);
    // --limit 4 reached: the follower exits by itself.
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn subscription_ends_when_the_subscriber_stops_being_an_admin() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Acme").await;
    let (bob, _) = app.add_member(&ada, "bob@example.com", "ADMIN").await;
    let mut ws = WsClient::connect(&app, &ada.token).await;
    // Start after everything so far: only what happens next arrives.
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&app.pool).await.unwrap();
    let query = format!("subscription {{ events(after: \"{head}\", accountId: \"{}\") {{ type }} }}", ada.account_id);
    ws.subscribe("1", &query, json!({})).await;
    app.invite_ok(&ada.token, &ada.account_id, "one@example.com", "GUEST").await;
    let mut received = Vec::new();
    let mut removed = false;
    loop {
        let body = ws.next_message().await;
        match body["type"].as_str() {
            Some("next") if body["payload"]["errors"].is_null() => {
                received.push(body["payload"]["data"]["events"]["type"].as_str().unwrap().to_string());
                if !removed {
                    removed = true;
                    let response = app.remove_member(&bob, &ada.account_id, &ada.user_id).await;
                    assert!(response.get("errors").is_none(), "{response}");
                }
            }
            Some("next") => {
                assert_eq!(body["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
            }
            Some("complete") => break,
            other => panic!("unexpected {other:?}: {body}"),
        }
    }
    // Ada saw her own invite, but not the event that removed her.
    assert_eq!(received, vec!["MemberInvited"]);
    ws.close().await;
}

/// Appends `payload` (an `AccountEvent`, externally tagged) to `account_id`'s stream straight
/// into the log, as the next sequence.
async fn append_raw(app: &crate::helpers::TestApp, account_id: &str, event_type: &str, payload: Value) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Account', $1, max(sequence) + 1, $2, '1.0.0', $3, '{}' FROM events WHERE aggregate_type = 'Account' AND aggregate_id = $1",
    )
    .bind(account_id)
    .bind(event_type)
    .bind(payload)
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn subscription_decides_access_from_its_own_events_without_the_read_models() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Acme").await;
    let mut ws = WsClient::connect(&app, &ada.token).await;
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&app.pool).await.unwrap();
    let query = format!("subscription {{ events(after: \"{head}\", accountId: \"{}\") {{ type }} }}", ada.account_id);
    ws.subscribe("1", &query, json!({})).await;
    // An event the projections cannot apply: they stop there, and the read models stay behind
    // everything that follows.
    append_raw(&app, &ada.account_id, "MemberJoined", json!({ "MemberJoined": { "nonsense": true } })).await;
    let body = ws.next_message().await;
    assert_eq!(body["payload"]["data"]["events"]["type"], "MemberJoined", "{body}");
    // Ada demoted, as only the log knows: one FORBIDDEN instead of that event, then the end.
    let demoted = json!({ "MemberRoleChanged": { "user_id": ada.user_id, "from": "ADMIN", "to": "GUEST", "changed_by": ada.user_id } });
    append_raw(&app, &ada.account_id, "MemberRoleChanged", demoted).await;
    let body = ws.next_message().await;
    assert_eq!(body["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    assert!(body["payload"]["data"]["events"].is_null(), "{body}");
    assert_eq!(ws.next_message().await["type"], "complete");
    // The members read model never saw the demotion.
    let role: String = sqlx::query_scalar("SELECT role FROM members WHERE user_id = $1::uuid").bind(&ada.user_id).fetch_one(&app.pool).await.unwrap();
    assert_eq!(role, "ADMIN");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_demoted_and_promoted_again_in_the_past_reads_the_whole_history() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Acme").await;
    let (bob_token, bob_id) = app.add_member(&ada, "bob@example.com", "ADMIN").await;
    for role in ["DEVELOPER", "ADMIN"] {
        let response = app.change_role(&ada.token, &ada.account_id, &bob_id, role).await;
        assert!(response.get("errors").is_none(), "{response}");
    }
    let expected: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE account_id = $1::uuid").bind(&ada.account_id).fetch_one(&app.pool).await.unwrap();
    let mut ws = WsClient::connect(&app, &bob_token).await;
    let query = format!("subscription {{ events(after: \"0\", accountId: \"{}\") {{ type }} }}", ada.account_id);
    ws.subscribe("1", &query, json!({})).await;
    // The old demotion is before what the start check saw: catch-up goes through it.
    let mut types = Vec::new();
    while (types.len() as i64) < expected {
        let body = ws.next_message().await;
        assert!(body["payload"]["errors"].is_null(), "{body}");
        types.push(body["payload"]["data"]["events"]["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types.iter().filter(|t| *t == "MemberRoleChanged").count(), 2, "{types:?}");
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_joining_while_the_tail_is_idle_gets_each_event_once() {
    use futures::StreamExt;
    use roster_store::reader::{follow, Tail};
    use roster_store::EventFilter;
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let tail = Tail::spawn(app.pool.clone());
    let head = |pool: sqlx::PgPool| async move { sqlx::query_scalar::<_, i64>("SELECT max(position) FROM events").fetch_one(&pool).await.unwrap() };
    // A first follower makes the tail publish the head, then leaves: from then on the tail
    // reads nothing, and the head it last published falls behind.
    let published = head(app.pool.clone()).await;
    let mut first = Box::pin(follow(&tail, app.pool.clone(), published - 1, EventFilter::default()));
    assert_eq!(first.next().await.map(|e| e.position), Some(published));
    drop(first);
    for i in 0..5 {
        app.invite_ok(&admin.token, &admin.account_id, &format!("late{i}@example.com"), "GUEST").await;
    }
    let end = head(app.pool.clone()).await;
    // A follower from before that head reads its own pages past the stale head, and the tail's
    // batch for the same stretch must not hand it those events again.
    let mut second = Box::pin(follow(&tail, app.pool.clone(), 1, EventFilter::default()));
    let mut positions = Vec::new();
    while positions.last() != Some(&end) {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), second.next()).await.expect("the follower stalled").unwrap();
        positions.push(event.position);
    }
    app.invite_ok(&admin.token, &admin.account_id, "later@example.com", "GUEST").await;
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), second.next()).await.expect("the follower stalled").unwrap();
    positions.push(next.position);
    let expected: Vec<i64> = (2..=head(app.pool.clone()).await).collect();
    assert_eq!(positions, expected, "each event once, in order");
}

/// Subscriptions that select the same fields share each event's rendering (`graphql::renders`);
/// each still gets exactly what its own selection asks for, whatever the others on the same
/// server select: aliases, fragments, and directives whose variables differ per subscriber.
#[tokio::test(flavor = "multi_thread")]
async fn each_subscription_gets_what_its_own_selection_asks_for_whatever_the_others_select() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    app.invite_ok(&admin.token, &admin.account_id, "one@example.com", "GUEST").await;
    let all = "subscription($a: ID) { events(after: \"0\", accountId: $a) { position type payload } }";
    let a = json!({ "a": admin.account_id });
    let with_p = |p: bool| json!({ "a": admin.account_id, "p": p });
    // (id, query, variables, the keys its events must have)
    let subscriptions = [
        ("all", all.to_string(), a.clone(), vec!["position", "type", "payload"]),
        ("same", all.to_string(), a.clone(), vec!["position", "type", "payload"]),
        ("alias", all.replace("{ position", "{ at: position"), a.clone(), vec!["at", "type", "payload"]),
        ("without", all.replace("($a: ID)", "($a: ID, $p: Boolean!)").replace("payload", "payload @include(if: $p)"), with_p(false), vec!["position", "type"]),
        ("with", all.replace("($a: ID)", "($a: ID, $p: Boolean!)").replace("payload", "payload @include(if: $p)"), with_p(true), vec!["position", "type", "payload"]),
        ("fragment", all.replace("{ position type payload }", "{ ...F }") + " fragment F on Event { type position }", a.clone(), vec!["type", "position"]),
    ];
    let mut ws = WsClient::connect(&app, &admin.token).await;
    for (id, query, variables, _) in &subscriptions {
        ws.subscribe(id, query, variables.clone()).await;
    }
    // Catch-up: AccountCreated, MemberJoined, MemberInvited; live: one more MemberInvited.
    let expected_events = 4;
    let mut got: std::collections::HashMap<String, Vec<Value>> = Default::default();
    let mut invited_live = false;
    while got.values().map(Vec::len).sum::<usize>() < expected_events * subscriptions.len() {
        let body = ws.next_message().await;
        assert_eq!(body["type"], "next", "{body}");
        got.entry(body["id"].as_str().unwrap().to_string()).or_default().push(body["payload"]["data"]["events"].clone());
        if !invited_live && got.values().all(|events| events.len() == 3) && got.len() == subscriptions.len() {
            invited_live = true;
            app.invite_ok(&admin.token, &admin.account_id, "two@example.com", "GUEST").await;
        }
    }
    let truth = app.gql(Some(&admin.token), "query($a: ID) { events(accountId: $a, first: 10) { nodes { position type payload } } }", a).await;
    let truth = truth["data"]["events"]["nodes"].as_array().unwrap().clone();
    assert_eq!(truth.len(), expected_events, "{truth:?}");
    for (id, _, _, keys) in &subscriptions {
        let events = &got[*id];
        assert_eq!(events.len(), expected_events, "{id}: {events:?}");
        for (event, truth) in events.iter().zip(&truth) {
            let mut names: Vec<&str> = event.as_object().unwrap().keys().map(String::as_str).collect();
            let mut wanted = keys.clone();
            names.sort_unstable();
            wanted.sort_unstable();
            assert_eq!(names, wanted, "{id}: {event}");
            let position = if *id == "alias" { &event["at"] } else { &event["position"] };
            assert_eq!(position, &truth["position"], "{id}: {event}");
            assert_eq!(event["type"], truth["type"], "{id}: {event}");
            if keys.contains(&"payload") {
                assert_eq!(event["payload"], truth["payload"], "{id}: {event}");
            }
        }
    }
    ws.close().await;
}

/// Reads `ws`'s messages into `got` (each `next`'s `data`, by subscription id) until `done`.
async fn read_until(ws: &mut WsClient, got: &mut std::collections::HashMap<String, Vec<Value>>, done: impl Fn(&std::collections::HashMap<String, Vec<Value>>) -> bool) {
    while !done(got) {
        let body = ws.next_message().await;
        assert_eq!(body["type"], "next", "{body}");
        got.entry(body["id"].as_str().unwrap().to_string()).or_default().push(body["payload"]["data"].clone());
    }
}

/// A shared rendering is keyed by the event, not by anything a subscription has in common with
/// another: subscriptions of two accounts' users and of the operator (other connections, one
/// under a root alias) select the same fields while events of both accounts interleave, and
/// each gets exactly the events, and the fields, that `Query.events` gives its own viewer.
/// Beside them, 19 more selections (20 in all, past the 16 that keep renderings) each get
/// their own fields too.
#[tokio::test(flavor = "multi_thread")]
async fn shared_renderings_reach_each_subscriber_as_its_own_viewer_account_and_root_alias() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Acme").await;
    let bob = app.sign_up("bob@example.com", "Bolt").await;
    let fields = "position type accountId aggregateId sequence payload";
    let by_account = format!("subscription($a: ID) {{ events(after: \"0\", accountId: $a) {{ {fields} }} }}");
    let mut got = std::collections::HashMap::new();
    let mut users = Vec::new();
    for (id, who) in [("ada", &ada), ("bob", &bob)] {
        let mut ws = WsClient::connect(&app, &who.token).await;
        ws.subscribe(id, &by_account, json!({ "a": who.account_id })).await;
        // Its first event means it holds its selection's renderings before the operator's 19 others.
        read_until(&mut ws, &mut got, |got| got.contains_key(id)).await;
        users.push(ws);
    }
    // The operator's: o0 as the users' selection under a root alias; o1..o19 each its own.
    let operator_selection = |n: usize| match n {
        0 => (format!("subscription {{ e: events(after: \"0\") {{ {fields} }} }}"), "e", "position".to_string(), false),
        1 => (format!("subscription {{ events(after: \"0\") {{ __typename p1: {fields} }} }}"), "events", "p1".to_string(), true),
        n => (format!("subscription {{ events(after: \"0\") {{ p{n}: {fields} }} }}"), "events", format!("p{n}"), false),
    };
    let mut operators = Vec::new();
    for connection in 0..2 {
        let mut ws = WsClient::connect(&app, crate::helpers::OPERATOR_TOKEN).await;
        for n in connection * 10..connection * 10 + 10 {
            ws.subscribe(&format!("o{n}"), &operator_selection(n).0, json!({})).await;
        }
        operators.push(ws);
    }
    // Live, interleaved across the two accounts.
    app.invite_ok(&ada.token, &ada.account_id, "one@example.com", "GUEST").await;
    app.invite_ok(&bob.token, &bob.account_id, "two@example.com", "GUEST").await;
    app.invite_ok(&ada.token, &ada.account_id, "three@example.com", "GUEST").await;

    let truth = |token: &str, account: Option<&str>| {
        let query = format!("query($a: ID) {{ events(accountId: $a, first: 100) {{ nodes {{ {fields} }} }} }}");
        let (token, variables) = (token.to_string(), json!({ "a": account }));
        let app = &app;
        async move { app.ok(Some(&token), &query, variables).await["events"]["nodes"].as_array().unwrap().clone() }
    };
    let ada_truth = truth(&ada.token, Some(&ada.account_id)).await;
    let bob_truth = truth(&bob.token, Some(&bob.account_id)).await;
    let all_truth = truth(crate::helpers::OPERATOR_TOKEN, None).await;
    assert_eq!((ada_truth.len(), bob_truth.len()), (4, 3), "{ada_truth:?} {bob_truth:?}");
    for (ws, (id, truth)) in users.iter_mut().zip([("ada", &ada_truth), ("bob", &bob_truth)]) {
        read_until(ws, &mut got, |got| got[id].len() == truth.len()).await;
        let wanted: Vec<Value> = truth.iter().map(|event| json!({ "events": event })).collect();
        assert_eq!(got[id], wanted, "{id}");
    }
    for (connection, ws) in operators.iter_mut().enumerate() {
        let ids: Vec<String> = (connection * 10..connection * 10 + 10).map(|n| format!("o{n}")).collect();
        read_until(ws, &mut got, |got| ids.iter().all(|id| got.get(id).is_some_and(|events| events.len() == all_truth.len()))).await;
    }
    for n in 0..20 {
        let (_, root, position, typename) = operator_selection(n);
        let wanted: Vec<Value> = all_truth
            .iter()
            .map(|event| {
                let mut event = event.as_object().unwrap().clone();
                let at = event.remove("position").unwrap();
                event.insert(position.clone(), at);
                if typename {
                    event.insert("__typename".into(), json!("Event"));
                }
                json!({ root: event })
            })
            .collect();
        assert_eq!(got[&format!("o{n}")], wanted, "o{n}");
    }
    for ws in users.into_iter().chain(operators) {
        ws.close().await;
    }
}
