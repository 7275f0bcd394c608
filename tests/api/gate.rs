//! Documents that try to get past the checks `graphql::gate` makes before async-graphql runs
//! an operation: fragments that spread themselves, fragments that multiply what they select,
//! and nesting far past the limits. Each is refused with a typed error and the server keeps
//! answering. And what the gate does after execution, over a websocket as over HTTP: answers in
//! selection order, async-graphql's cost and depth refusals named `QUERY_TOO_COMPLEX`, syntax
//! errors in a few words.

use crate::helpers::{code, spawn_app, ApiClient, WsClient};
use serde_json::{json, Value};

/// `document`'s answer, without a session. (A document async-graphql expanded without bound
/// would never answer: such a test hangs rather than fails.)
async fn answer(app: &ApiClient, document: &str) -> Value {
    app.gql(None, document, json!({})).await
}

/// `n` fragments on `on`, each spreading the next `width` times, the last selecting `leaf`.
fn multiplying(on: &str, n: usize, width: usize, leaf: &str) -> String {
    let mut text = String::new();
    for i in 0..n {
        text += &format!("fragment F{i} on {on} {{ {} }} ", format!("...F{} ", i + 1).repeat(width));
    }
    text + &format!("fragment F{n} on {on} {{ {leaf} }}")
}

async fn still_answers(app: &ApiClient) {
    let roles = app.gql(None, "{ roles { role } }", json!({})).await;
    assert!(roles["data"]["roles"].is_array(), "{roles}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fragments_that_spread_themselves_are_refused() {
    let app = spawn_app().await;
    for document in [
        "query { ...A } fragment A on Query { ...A }",
        "query { ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }",
        "{ roles { ...A } } fragment A on RoleInfo { role ...B ...B } fragment B on RoleInfo { ...A ...A }",
    ] {
        let refused = answer(&app, document).await;
        assert_eq!(code(&refused), Some("VALIDATION"), "{document}: {refused}");
        assert!(refused["data"].is_null(), "{refused}");
        still_answers(&app).await;
    }
    // Websocket operations go through the same checks.
    let ada = app.sign_up("ada@example.com", "Acme").await;
    let mut ws = WsClient::connect(&app, &ada.token).await;
    ws.subscribe("1", "query { ...A } fragment A on Query { ...A }", json!({})).await;
    let refused = ws.next_message().await;
    assert_eq!((refused["id"].as_str(), refused["type"].as_str()), (Some("1"), Some("next")), "{refused}");
    assert_eq!(code(&refused["payload"]), Some("VALIDATION"), "{refused}");
    ws.close().await;
    still_answers(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fragments_that_multiply_their_selections_are_refused_as_too_complex() {
    let app = spawn_app().await;
    // A hundred nodes of text, 3^30 selections once the spreads are followed.
    for document in [format!("{{ roles {{ ...F0 }} }} {}", multiplying("RoleInfo", 30, 3, "role")), format!("{{ ...F0 }} {}", multiplying("Query", 30, 3, "__typename"))] {
        let refused = answer(&app, &document).await;
        assert_eq!(code(&refused), Some("QUERY_TOO_COMPLEX"), "{refused}");
        assert_eq!(refused["errors"].as_array().map(Vec::len), Some(1), "{refused}");
        still_answers(&app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_of_fragments_far_past_the_depth_limit_is_refused_as_too_complex() {
    let app = spawn_app().await;
    // (Text nested that deep is a syntax error already: the parser has a recursion limit.)
    let chain = (0..100).map(|i| format!("fragment F{i} on Query {{ ...F{} }} ", i + 1)).collect::<String>();
    let refused = answer(&app, &format!("{{ ...F0 }} {chain} fragment F100 on Query {{ roles {{ role }} }}")).await;
    assert_eq!(code(&refused), Some("QUERY_TOO_COMPLEX"), "{refused}");
    still_answers(&app).await;
}

/// The text of the next text frame on `ws` (pings and pongs skipped).
async fn next_text(ws: &mut WsClient) -> String {
    loop {
        if let Some(tokio_tungstenite::tungstenite::Message::Text(text)) = ws.raw_next().await {
            return text.to_string();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_answers_keep_selection_order_and_cost_refusals_keep_their_code() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let mut ws = WsClient::connect(&app, &admin.token).await;
    // As `documents::answers_keep_the_order_the_query_selected_fields_in`, over a websocket.
    let query = "query($a: ID!) { account(id: $a) { members(first: 2) { totalCount } invitations(first: 2) { totalCount } name ...F } } \
                 fragment F on Account { id roles: viewerRole }";
    ws.subscribe("1", query, json!({ "a": admin.account_id })).await;
    let text = next_text(&mut ws).await;
    // async-graphql's Value keeps the keys in the order of the text (serde_json's sorts them).
    let message: async_graphql::Value = serde_json::from_str(&text).unwrap();
    let field = |v: &async_graphql::Value, key: &str| match v {
        async_graphql::Value::Object(map) => map.get(key).cloned(),
        _ => None,
    };
    let account = ["payload", "data", "account"].iter().try_fold(message, |v, key| field(&v, key));
    let Some(async_graphql::Value::Object(account)) = account else { panic!("{text}") };
    let keys: Vec<&str> = account.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["members", "invitations", "name", "id", "roles"], "{text}");
    assert_eq!(ws.next_message().await["type"], "complete");

    // async-graphql's own depth refusal, named as over HTTP.
    let deep = format!("{{ __type(name: \"Role\") {{ {} name {} }} }}", "ofType {".repeat(20), "}".repeat(20));
    ws.subscribe("2", &deep, json!({})).await;
    let refused = ws.next_message().await;
    assert_eq!(code(&refused["payload"]), Some("QUERY_TOO_COMPLEX"), "{refused}");
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_syntax_error_is_answered_in_a_few_words_with_its_place_whatever_the_line_length() {
    let app = spawn_app().await;
    for (document, line, column, expected) in [
        ("query { x(a: 1 }".to_string(), 1, 16, "expected name"),
        ("{\n  roles {\n    role\n  }".to_string(), 4, 4, "expected selection"),
        (format!("query {{ x(a: \"{}\" ", "A".repeat(30_000)), 1, 30_017, "expected"),
    ] {
        let refused = answer(&app, &document).await;
        assert_eq!(code(&refused), Some("VALIDATION"), "{refused}");
        let error = &refused["errors"][0];
        assert_eq!(error["locations"][0], json!({ "line": line, "column": column }), "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("syntax error at line {line}, column {column}: {expected}")), "{message}");
        assert!(message.len() < 300 && !message.contains('\n'), "one short line, not the document's: {} bytes", message.len());
    }
    still_answers(&app).await;
}
