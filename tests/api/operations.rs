//! Operator-facing behaviour: the `roster` subcommands, health probes, GraphiQL, and a rebuild
//! running while the server keeps answering queries.

use crate::helpers::{code, fresh_database, roster, roster_output, spawn_app};
use roster_projections::rebuild;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn migrate_status_and_rebuild_commands() {
    let url = fresh_database().await;
    let out = roster_output(&url, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Running it again is harmless.
    assert!(roster_output(&url, &["migrate"]).status.success());

    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    app.add_member(&admin, "grace@example.com", "DEVELOPER").await;
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&app.pool).await.unwrap();

    let out = roster_output(&app.database_url, &["projections", "status"]);
    assert!(out.status.success());
    let status = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = status.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.iter().map(|l| l[0]).collect::<Vec<_>>(), vec!["members", "invitations", "audit_log"], "{status}");
    for line in &lines {
        assert_eq!(line[1], head.to_string(), "{status}");
        assert_eq!(line[2], "0", "{status}");
    }

    let out = roster_output(&app.database_url, &["projections", "rebuild", "members"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("members\trebuilt\t{head}\n"));
    assert_eq!(app.members(&admin.token, &admin.account_id).await.len(), 2);

    let out = roster_output(&app.database_url, &["projections", "rebuild", "nonsense"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown projection"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_to_start_without_a_jwt_secret() {
    let url = fresh_database().await;
    let out = roster(&["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", url)
        .env_remove("ROSTER_JWT_SECRET")
        .env_remove("ROSTER_DEV")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ROSTER_JWT_SECRET"));
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_and_graphiql() {
    let app = spawn_app().await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.address)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    let page = get("/graphql").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("x-request-id").is_some());
    assert!(page.text().await.unwrap().to_lowercase().contains("graphiql"));
    // Malformed GraphQL is a VALIDATION error, not a crash.
    let broken = app.gql(None, "mutation { inviteUser(", json!({})).await;
    assert_eq!(code(&broken), Some("VALIDATION"));
    let unknown = app.gql(None, "{ nope }", json!({})).await;
    assert_eq!(code(&unknown), Some("VALIDATION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_keep_answering_during_a_rebuild() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    for i in 0..30 {
        app.invite_ok(&admin.token, &admin.account_id, &format!("p{i}@example.com"), "GUEST").await;
    }
    let pool = app.pool.clone();
    let rebuilding = tokio::spawn(async move {
        for _ in 0..5 {
            rebuild::rebuild(&pool, &[]).await.unwrap();
        }
    });
    let query = "query($id: ID!) { account(id: $id) { members { totalCount } invitations { totalCount } } }";
    // Several readers at once, so some wait on the swap's locks (and must then read the new tables).
    let reader = || async {
        let mut answers = 0;
        while !rebuilding.is_finished() || answers == 0 {
            let data = app.ok(Some(&admin.token), query, json!({ "id": admin.account_id })).await;
            assert_eq!(data["account"]["invitations"]["totalCount"], 30, "{data}");
            assert_eq!(data["account"]["members"]["totalCount"], 1, "{data}");
            answers += 1;
        }
    };
    futures::future::join_all((0..4).map(|_| reader())).await;
    rebuilding.await.unwrap();
    // Writes during and after the rebuild still project.
    app.invite_ok(&admin.token, &admin.account_id, "late@example.com", "GUEST").await;
    let data = app.ok(Some(&admin.token), query, json!({ "id": admin.account_id })).await;
    assert_eq!(data["account"]["invitations"]["totalCount"], 31);
}

/// The read-model tables' indexes, constraints, owners and grants, as the catalog shows them.
async fn read_model_catalog(pool: &sqlx::PgPool) -> Vec<String> {
    let tables: Vec<&str> = roster_projections::Projection::ALL.iter().flat_map(|p| p.tables()).copied().collect();
    sqlx::query_scalar(
        "SELECT c.relname || ' ' || pg_get_userbyid(c.relowner) || ' ' || coalesce(c.relacl::text, '')
           FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1)
         UNION ALL
         SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY($1)
         UNION ALL
         SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
           FROM pg_constraint WHERE conrelid::regclass::text = ANY($1)
         ORDER BY 1",
    )
    .bind(&tables)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rebuilds_keep_the_tables_indexes_and_grants_and_the_projector_goes_on() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    app.invite_ok(&admin.token, &admin.account_id, "p@example.com", "GUEST").await;
    let role = format!("reader_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE ROLE {role}")).execute(&app.pool).await.unwrap();
    sqlx::query(&format!("GRANT SELECT ON members, audit_log TO {role}")).execute(&app.pool).await.unwrap();
    let before = read_model_catalog(&app.pool).await;
    assert!(before.iter().any(|line| line.contains("CREATE INDEX members_user ON public.members")), "{before:?}");
    for _ in 0..2 {
        rebuild::rebuild(&app.pool, &[]).await.unwrap();
        assert_eq!(read_model_catalog(&app.pool).await, before);
    }
    let leftovers: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild%'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(leftovers, 0, "no shadow schema is left behind");
    // The live projector writes the swapped-in tables.
    app.invite_ok(&admin.token, &admin.account_id, "q@example.com", "GUEST").await;
    let query = "query($id: ID!) { account(id: $id) { invitations { totalCount } } }";
    let data = app.ok(Some(&admin.token), query, json!({ "id": admin.account_id })).await;
    assert_eq!(data["account"]["invitations"]["totalCount"], 2);
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&app.pool).await.unwrap();
    let account_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE account_id IS NOT NULL").fetch_one(&app.pool).await.unwrap();
    assert_eq!(entries, account_events);
}

/// The introspection query GraphiQL and code generators send (graphql-js
/// `getIntrospectionQuery()`), which must fit under the depth and complexity limits.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_introspection_fits_the_query_limits() {
    let app = spawn_app().await;
    let data = app.ok(None, INTROSPECTION, json!({})).await;
    let types = data["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "InvitationStatus"));
    // Deeper nesting than any real client sends is refused before it runs.
    let deep = format!("{{ __type(name: \"Role\") {{ {} name {} }} }}", "ofType {".repeat(20), "}".repeat(20));
    assert_eq!(code(&app.gql(None, &deep, json!({})).await), Some("QUERY_TOO_COMPLEX"));
}
