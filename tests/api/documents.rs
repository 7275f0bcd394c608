//! Documents refused before they cost anything (issue 10, found again by an attack): oversized
//! or sprawling documents, lists that multiply, malformed bodies, and account creation.

use crate::helpers::{code, spawn_app};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn big_or_sprawling_documents_are_refused_before_validation() {
    let app = spawn_app().await;
    let huge = format!("{{ roles {{ {} }} }}", "x ".repeat(200_000));
    let sprawling = format!("{{ roles {{ {} }} }}", (0..3_000).map(|i| format!("f{i}")).collect::<Vec<_>>().join(" "));
    let spreads = format!("{{ roles {{ {} }} }} fragment F on RoleInfo {{ role }}", "...F ".repeat(2_500));
    for (name, document) in [("huge", huge), ("sprawling", sprawling), ("spreads", spreads)] {
        let response = app.gql(None, &document, json!({})).await;
        assert_eq!(code(&response), Some("QUERY_TOO_COMPLEX"), "{name}: {}", &response.to_string()[..300.min(response.to_string().len())]);
        assert_eq!(response["errors"].as_array().map(Vec::len), Some(1), "{name}: one error, not one per node");
    }
    // GraphiQL's introspection query is well inside the limits.
    let introspection = app.gql(None, "{ __schema { types { name fields { name args { name type { name kind ofType { name kind } } } type { name kind ofType { name kind } } } } } }", json!({})).await;
    assert!(introspection.get("errors").is_none(), "{introspection}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_accounts_list_is_costed_as_a_page_and_creating_accounts_is_limited() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Acme").await;
    let accounts = "viewer { accounts { members(first: 100) { nodes { user { email } } } } }";
    let one = app.gql(Some(&ada.token), &format!("{{ {accounts} }}"), json!({})).await;
    assert!(one.get("errors").is_none(), "{one}");
    let two = app.gql(Some(&ada.token), &format!("{{ a: {accounts} b: {accounts} }}"), json!({})).await;
    assert_eq!(code(&two), Some("QUERY_TOO_COMPLEX"), "{two}");

    let create = "mutation($n: String!) { createAccount(input: { name: $n }) { id } }";
    // Sign-up opened one; nine more at once, then the limit.
    for i in 0..10 {
        let created = app.gql(Some(&ada.token), create, json!({ "n": format!("More {i}") })).await;
        assert!(created.get("errors").is_none(), "account {i}: {created}");
    }
    let refused = app.gql(Some(&ada.token), create, json!({ "n": "One too many" })).await;
    assert_eq!(code(&refused), Some("RATE_LIMITED"), "{refused}");
    assert!(refused["errors"][0]["extensions"]["retryAfterSeconds"].as_u64() >= Some(1), "{refused}");
    let grace = app.sign_up("grace@example.com", "Other").await;
    let theirs = app.gql(Some(&grace.token), create, json!({ "n": "Grace's second" })).await;
    assert!(theirs.get("errors").is_none(), "the limit is per user: {theirs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_answer_one_graphql_error_in_the_media_type_asked_for() {
    let app = spawn_app().await;
    for body in ["", "[{\"query\": \"{ roles { role } }\"}, {\"query\": \"{ roles { role } }\"}]", "{\"query\": 5}", "{\"query\": \"{ roles { role } }\", \"variables\": \"x\"}", "{"] {
        for accept in ["application/json", "application/graphql-response+json"] {
            let response = app
                .client
                .post(format!("{}/graphql", app.address))
                .header("content-type", "application/json")
                .header("accept", accept)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{body:?}");
            let media = response.headers()["content-type"].to_str().unwrap().to_string();
            assert!(media.starts_with(accept), "{body:?}: {media}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(code(&answer), Some("VALIDATION"), "{body:?}: {answer}");
            let message = answer["errors"][0]["message"].as_str().unwrap();
            assert!(!message.contains("InvalidRequest(") && !message.contains("Error("), "{message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_keep_the_order_the_query_selected_fields_in() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    // The lists take a database round trip, name and id none: resolved concurrently, the lists
    // finish last (async-graphql keeps fields in the order they finish).
    let query = "query($a: ID!) { account(id: $a) { members(first: 2) { totalCount } invitations(first: 2) { totalCount } name ...F } } \
                 fragment F on Account { id roles: viewerRole }";
    let body = json!({ "query": query, "variables": { "a": admin.account_id } });
    let text = app.client.post(format!("{}/graphql", app.address)).bearer_auth(&admin.token).json(&body).send().await.unwrap().text().await.unwrap();
    // async-graphql's Value keeps the keys in the order of the text (serde_json's sorts them).
    let answer: async_graphql::Value = serde_json::from_str(&text).unwrap();
    let field = |v: &async_graphql::Value, key: &str| match v {
        async_graphql::Value::Object(map) => map.get(key).cloned(),
        _ => None,
    };
    let Some(async_graphql::Value::Object(account)) = field(&answer, "data").and_then(|data| field(&data, "account")) else { panic!("{text}") };
    let keys: Vec<&str> = account.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["members", "invitations", "name", "id", "roles"], "{text}");
}
