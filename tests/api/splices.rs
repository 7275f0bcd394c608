//! Shared renderings spliced into websocket messages (`graphql::splices`), attacked from the
//! client's side: what reaches a client must be exactly what its own subscription resolved
//! per subscriber would send, whatever it or anyone else puts in names, ids and selections,
//! and no rendering marker may ever leave the server (`WsClient` checks every message it reads).

use crate::helpers::{spawn_app, TestApp, WsClient, OPERATOR_TOKEN};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Names a client controls that look like markers, JSON and escapes: a forged marker (whose
/// nonce is one digit short of a real one's, so the helpers' check still tells them apart),
/// quotes, a backslash, HTML, emoji.
const ACCOUNT_NAME: &str = "Acme \"roster.rendering.0000000000000000000000000000000:0\" \\\" </script> 🎉 \u{e9}";
const DISPLAY_NAME: &str = "\"roster.rendering.\" \\ roster.rendering.: \"}\"{ é";

/// Every field of `Event`, scrambled, one aliased, with `__typename` among them.
const FIELDS: &str = "payload t: __typename at: position type metadata accountId sequence aggregateId recordedAt occurredAt version aggregateType";

/// A subscription id a client chose, echoed in every message of its subscription.
fn id(n: &str) -> String {
    format!("{n} \"roster.rendering.\" \\")
}

/// The keys of the JSON object `text`, in the order they are written.
fn keys_in_order(text: &str) -> Vec<String> {
    let value: async_graphql::Value = serde_json::from_str(text).unwrap();
    let async_graphql::Value::Object(map) = value else { panic!("not an object: {text}") };
    map.keys().map(ToString::to_string).collect()
}

/// Reads `ws` until each of `ids` has `n` messages: their texts by id, each checked to be a
/// `next` of valid JSON (and free of markers, by `WsClient`).
async fn read_texts(ws: &mut WsClient, got: &mut HashMap<String, Vec<String>>, ids: &[String], n: usize) {
    while !ids.iter().all(|id| got.get(id).is_some_and(|texts| texts.len() >= n)) {
        let text = ws.next_text().await;
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(body["type"] == "next" || body["type"] == "data", "{text}");
        got.entry(body["id"].as_str().unwrap().to_string()).or_default().push(text);
    }
}

/// The `payload` of a protocol message's text, as written (everything after `"payload":`).
fn payload_text(text: &str) -> &str {
    let at = text.find(",\"payload\":").unwrap_or_else(|| panic!("{text}"));
    &text[at + 11..text.len() - 1]
}

/// Events with the names above, as the operator's `Query.events` gives them with `FIELDS`.
async fn truth(app: &TestApp) -> Vec<Value> {
    let query = format!("{{ events(first: 100) {{ nodes {{ {FIELDS} }} }} }}");
    app.ok(Some(OPERATOR_TOKEN), &query, json!({})).await["events"]["nodes"].as_array().unwrap().clone()
}

/// Two subscriptions selecting the same flat fields (they share renderings) and one selecting
/// them through a fragment (resolved per subscriber) get byte-for-byte the same payloads, for
/// catch-up and live events whose names hold forged markers, quotes and escapes, under ids
/// that do too; keys in selection order; content as `Query.events` gives it.
#[tokio::test(flavor = "multi_thread")]
async fn shared_and_per_subscriber_answers_are_the_same_bytes_whatever_names_and_ids_hold() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", ACCOUNT_NAME).await;
    let (_, invite) = app.invite_ok(&ada.token, &ada.account_id, "one@example.com", "GUEST").await;
    app.join(&invite, DISPLAY_NAME).await;
    let shared = format!("subscription {{ events(after: \"0\") {{ {FIELDS} }} }}");
    let fragment = format!("subscription {{ events(after: \"0\") {{ ... on Event {{ {FIELDS} }} }} }}");
    let ids = [id("a"), id("b"), id("fragment")];
    let mut ws = WsClient::connect(&app, OPERATOR_TOKEN).await;
    for (id, query) in ids.iter().zip([&shared, &shared, &fragment]) {
        ws.subscribe(id, query, json!({})).await;
    }
    let mut got = HashMap::new();
    let caught_up = truth(&app).await.len();
    read_texts(&mut ws, &mut got, &ids, caught_up).await;
    // Live: one more member with the same names.
    let (_, invite) = app.invite_ok(&ada.token, &ada.account_id, "two@example.com", "GUEST").await;
    app.join(&invite, DISPLAY_NAME).await;
    let truth = truth(&app).await;
    assert!(truth.len() > caught_up, "{truth:?}");
    read_texts(&mut ws, &mut got, &ids, truth.len()).await;

    let wanted_keys: Vec<&str> = {
        let words: Vec<&str> = FIELDS.split(' ').collect();
        let mut keys = Vec::new();
        let mut i = 0;
        while i < words.len() {
            keys.push(words[i].trim_end_matches(':'));
            i += if words[i].ends_with(':') { 2 } else { 1 };
        }
        keys
    };
    for (n, truth) in truth.iter().enumerate() {
        let per_subscriber = payload_text(&got[&ids[2]][n]);
        for id in &ids[..2] {
            assert_eq!(payload_text(&got[id][n]), per_subscriber, "{id}, event {n}");
        }
        let event: Value = serde_json::from_str(per_subscriber).unwrap();
        assert_eq!(event, json!({ "data": { "events": truth } }), "event {n}");
        let object = &per_subscriber["{\"data\":{\"events\":".len()..per_subscriber.len() - 2];
        assert_eq!(keys_in_order(object), wanted_keys, "{object}");
    }
    let names = serde_json::to_string(&got).unwrap();
    assert!(names.contains("Acme") && names.contains("roster.rendering.0000"), "the names arrived as they are");
    ws.close().await;
}

/// Reads `ws` until `done` holds of the texts read so far by id (every message, `complete`
/// included; each valid JSON and, by `WsClient`, free of markers).
async fn read_by_id(ws: &mut WsClient, got: &mut HashMap<String, Vec<Value>>, done: impl Fn(&HashMap<String, Vec<Value>>) -> bool) {
    while !done(got) {
        let text = ws.next_text().await;
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        got.entry(body["id"].as_str().unwrap_or_default().to_string()).or_default().push(body);
    }
}

/// The legacy protocol (`graphql-ws`, subscriptions-transport-ws: `start`, `data`, `stop`)
/// splices too: two subscriptions that share and one that does not get the same events as
/// `Query.events`; a query and a command sent over the same socket get their plain answers.
#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_protocol_and_queries_and_commands_on_the_socket_get_whole_answers() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", ACCOUNT_NAME).await;
    let bearer = json!({ "Authorization": format!("Bearer {}", ada.token) });
    let mut ws = WsClient::connect_speaking(&app, "graphql-ws", "/graphql/ws", bearer).await;
    let shared = "subscription($a: ID) { events(after: \"0\", accountId: $a) { type at: position payload } }";
    let fragment = "subscription($a: ID) { events(after: \"0\", accountId: $a) { ...F } } fragment F on Event { type at: position payload }";
    let a = json!({ "a": ada.account_id });
    for (id, query) in [("1", shared), ("2", shared), ("3", fragment)] {
        ws.send(json!({ "type": "start", "id": id, "payload": { "query": query, "variables": a } })).await;
    }
    let events = "query($a: ID) { events(accountId: $a, first: 100) { nodes { type at: position payload } } }";
    ws.send(json!({ "type": "start", "id": "query", "payload": { "query": events, "variables": a } })).await;
    let invite = "mutation($input: InviteUserInput!) { inviteUser(input: $input) { invitation { email } } }";
    let input = json!({ "input": { "accountId": ada.account_id, "email": "one@example.com", "role": "GUEST" } });
    ws.send(json!({ "type": "start", "id": "command", "payload": { "query": invite, "variables": input } })).await;
    let mut got = HashMap::new();
    // AccountCreated, MemberJoined, then the command's MemberInvited, live.
    read_by_id(&mut ws, &mut got, |got| ["1", "2", "3"].iter().all(|id| got.get(*id).is_some_and(|m| m.len() == 3)) && got.get("command").is_some_and(|m| m.len() == 2) && got.get("query").is_some_and(|m| m.len() == 2)).await;
    let truth = app.ok(Some(&ada.token), events, a.clone()).await["events"]["nodes"].as_array().unwrap().clone();
    assert_eq!(truth.len(), 3, "{truth:?}");
    for id in ["1", "2", "3"] {
        let data: Vec<&Value> = got[id].iter().inspect(|m| assert_eq!(m["type"], "data", "{m}")).map(|m| &m["payload"]["data"]["events"]).collect();
        assert_eq!(data, truth.iter().collect::<Vec<_>>(), "{id}");
    }
    let command = &got["command"];
    assert_eq!((&command[0]["type"], &command[0]["payload"]["data"]["inviteUser"]["invitation"]["email"]), (&json!("data"), &json!("one@example.com")), "{command:?}");
    assert_eq!(command[1]["type"], "complete");
    let query = &got["query"];
    assert_eq!(query[0]["payload"]["data"]["events"]["nodes"].as_array().unwrap()[..2], truth[..2], "{query:?}");
    assert_eq!(query[1]["type"], "complete");
    ws.send(json!({ "type": "stop", "id": "1" })).await;
    let stopped = ws.next_message().await;
    assert_eq!((&stopped["type"], &stopped["id"]), (&json!("complete"), &json!("1")), "{stopped}");
    ws.close().await;
}

/// A client that stops, restarts and replaces (an id already running) its subscriptions while
/// events commit gets only whole messages, none with a marker, each event as `Query.events`
/// has it; another connection's subscribers, sharing the renderings, too.
#[tokio::test(flavor = "multi_thread")]
async fn stopping_restarting_and_replacing_subscriptions_while_events_commit_sends_whole_answers() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", ACCOUNT_NAME).await;
    let query = "subscription { events(after: \"0\") { at: position type payload } }";
    let mut churner = WsClient::connect(&app, OPERATOR_TOKEN).await;
    let mut steady = WsClient::connect(&app, OPERATOR_TOKEN).await;
    let ids: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    for id in &ids {
        churner.subscribe(id, query, json!({})).await;
    }
    steady.subscribe("steady", query, json!({})).await;
    let writer = {
        let (app, ada) = (crate::helpers::ApiClient::clone(&app), ada.clone());
        tokio::spawn(async move {
            for n in 0..8 {
                app.invite_ok(&ada.token, &ada.account_id, &format!("n{n}@example.com"), "GUEST").await;
            }
        })
    };
    let mut got = HashMap::new();
    for round in 0..8 {
        read_by_id(&mut churner, &mut got, |got| got.values().map(Vec::len).sum::<usize>() > round * 6).await;
        let id = &ids[round % ids.len()];
        churner.complete(id).await;
        churner.subscribe(id, query, json!({})).await;
        // Started again while it runs: async-graphql replaces the running one.
        churner.subscribe(&ids[(round + 5) % ids.len()], query, json!({})).await;
    }
    writer.await.unwrap();
    let truth = app.ok(Some(OPERATOR_TOKEN), "{ events(first: 100) { nodes { at: position type payload } } }", json!({})).await;
    let truth: HashMap<String, Value> = truth["events"]["nodes"].as_array().unwrap().iter().map(|e| (e["at"].as_str().unwrap().to_string(), e.clone())).collect();
    let last = truth.keys().map(|p| p.parse::<i64>().unwrap()).max().unwrap().to_string();
    // Every subscription running now reaches the last event.
    let reached = |got: &HashMap<String, Vec<Value>>, id: &str| got.get(id).is_some_and(|m| m.iter().any(|m| m["payload"]["data"]["events"]["at"] == json!(last)));
    read_by_id(&mut churner, &mut got, |got| ids.iter().all(|id| reached(got, id))).await;
    read_by_id(&mut steady, &mut got, |got| reached(got, "steady")).await;
    let first = truth.keys().map(|p| p.parse::<i64>().unwrap()).min().unwrap().to_string();
    let mut nexts = 0;
    for (id, messages) in &got {
        let mut stopped = false;
        for message in messages {
            match message["type"].as_str() {
                Some("next") => {
                    let event = &message["payload"]["data"]["events"];
                    assert_eq!(event, &truth[event["at"].as_str().unwrap()], "{id}: {message}");
                    // Nothing of a stopped subscription after its `complete`: the next one is
                    // the restarted subscription's first event.
                    assert!(!stopped || event["at"] == json!(first), "{id}: {message} after complete");
                    stopped = false;
                    nexts += 1;
                }
                Some("complete") => stopped = true,
                _ => panic!("{id}: {message}"),
            }
        }
    }
    assert!(nexts > truth.len(), "{nexts}");
    // The subscription on the other connection got each event once, in order.
    let delivered: Vec<i64> = got["steady"].iter().map(|m| m["payload"]["data"]["events"]["at"].as_str().unwrap().parse().unwrap()).collect();
    let mut all: Vec<i64> = truth.keys().map(|p| p.parse().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(delivered, all);
    churner.close().await;
    steady.close().await;
}
