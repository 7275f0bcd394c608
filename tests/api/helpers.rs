//! Test harness: each test gets its own database (created in the PostgreSQL that
//! `DATABASE_URL` points at — `scripts/with-postgres` starts a throwaway one), a migrated
//! schema, a running projector and an HTTP server on a free loopback port. Tests talk to it
//! over HTTP only, like any client; they read the database only to check what was stored.
//! Also the two other ways tests reach the service: the `roster` binary and a
//! `graphql-transport-ws` client.

use roster_api::clock::ShiftedClock;
use roster_api::rate_limit::Rate;
use roster_api::{App, Application, Config, DatabaseSettings, Settings};
use roster_projections::Projector;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub mod browser;
pub mod proxy;
pub mod replica;
pub mod smtp;
pub mod ws;

pub use ws::WsClient;

pub const OPERATOR_TOKEN: &str = "Zq8Lw2Rt6Yp4Nx0Vc7Bm5Kj3Hg1Fd9SaQe2Wr6Ty4Ui8Op0";
pub const PUBLIC_URL: &str = "https://roster.example.test";
pub const PASSWORD: &str = "correct horse battery";

/// A client of one running server (in this process, or a `roster serve` replica, see
/// [`replica`]) on its database: GraphQL over HTTP, and a pool to check what was stored.
#[derive(Clone)]
pub struct ApiClient {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub pool: PgPool,
    pub database_url: String,
    pub client: reqwest::Client,
}

/// A running server on its own database, and an HTTP client for it (its fields and methods
/// through `Deref`).
pub struct TestApp {
    api: ApiClient,
    // Server internals stay private: tests reach them through the accessors below, so how the
    // server is wired can change in `spawn_app_with` alone.
    clock: Arc<ShiftedClock>,
    projector: Projector,
    app: App,
}

/// A signed-up user with their first account.
#[derive(Debug, Clone)]
pub struct Signed {
    pub token: String,
    pub user_id: String,
    pub account_id: String,
}

/// Creates a fresh database and returns its URL.
pub async fn fresh_database() -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is not set: run the tests through scripts/with-postgres");
    let name = format!("roster_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&base).await.expect("connect to DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
    let options = PgConnectOptions::from_str(&base).unwrap().database(&name);
    // Rebuild the URL from the options so the binary under test can use it too.
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        name
    )
    .replace("postgres://@", "postgres://")
}

/// Starts the server with the test [`Config`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server on a fresh database through the same startup path as `roster serve`
/// (`Application::build`); `configure` adjusts the [`Config`] first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let database_url = fresh_database().await;
    spawn_app_on(&database_url, &database_url, 20, configure).await
}

/// Starts the server on the existing database `database_url`, the server reaching it at
/// `server_url` (the same, or through a [`proxy::Proxy`]) with a pool of `pool_size`; the
/// test's own pool connects directly.
pub async fn spawn_app_on(database_url: &str, server_url: &str, pool_size: u32, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::new(PUBLIC_URL, "jwt-secret-for-tests");
    config.operator_token = Some(OPERATOR_TOKEN.to_string());
    // Every test client comes from 127.0.0.1 and many sign up users: the per-IP password limit
    // is lifted unless a test sets it (tests/api/limits.rs does).
    config.password_rate_per_ip = Rate::new(u32::MAX, Duration::from_millis(1));
    configure(&mut config);
    let database = DatabaseSettings { max_connections: pool_size, ..DatabaseSettings::new(server_url) };
    let settings = Settings { database, bind: "127.0.0.1:0".into(), config };
    let clock = Arc::new(ShiftedClock::default());
    let application = Application::build(settings, clock.clone()).await.expect("start the server");
    let address = format!("http://{}", application.address());
    let app = application.app().clone();
    let projector = app.projector().clone();
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    let pool = PgPoolOptions::new().max_connections(20).connect(database_url).await.expect("connect test db");
    let database_url = database_url.to_string();
    TestApp { api: ApiClient { address, pool, database_url, client: reqwest::Client::new() }, clock, projector, app }
}

impl std::ops::Deref for TestApp {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

/// The `roster` binary under test with `args`; callers add environment and stdio.
pub fn roster(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    command.args(args);
    command
}

/// Runs `roster args` against `database_url` to completion.
pub fn roster_output(database_url: &str, args: &[&str]) -> Output {
    roster(args).env("DATABASE_URL", database_url).output().expect("run roster")
}

/// The `extensions.code` of the first error, if any.
pub fn code(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

/// The token at the end of an invite link.
pub fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap().to_string()
}

impl TestApp {
    /// The server's clock: tests move it forward instead of waiting.
    pub fn clock(&self) -> &ShiftedClock {
        &self.clock
    }

    /// The server's projector: for injecting failures and waiting for a position.
    pub fn projector(&self) -> &Projector {
        &self.projector
    }

    /// How many subscriptions the server has open.
    pub fn open_subscriptions(&self) -> usize {
        self.app.open_subscriptions()
    }

    /// How many times the server read users by id (a batch counts once).
    pub fn user_reads(&self) -> u64 {
        self.app.user_reads()
    }

    /// The most password hashes and checks the server ever ran at once.
    pub fn peak_password_jobs(&self) -> usize {
        self.app.peak_password_jobs()
    }

    /// How many times the server retried a command after a version conflict.
    pub fn conflict_retries(&self) -> u64 {
        self.app.conflict_retries()
    }
}

impl ApiClient {
    /// Posts a GraphQL request; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.gql_with_headers(token, &[], query, variables).await
    }

    /// Like [`TestApp::gql`], with extra request headers.
    pub async fn gql_with_headers(&self, token: Option<&str>, headers: &[(&str, &str)], query: &str, variables: Value) -> Value {
        let mut request = self.client.post(format!("{}/graphql", self.address)).json(&json!({ "query": query, "variables": variables }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        assert!(response.status().is_success(), "HTTP {}", response.status());
        response.json().await.expect("json body")
    }

    /// Like [`TestApp::gql`], but panics on errors and returns `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let response = self.gql(token, query, variables).await;
        assert!(response.get("errors").is_none(), "unexpected errors: {response}");
        response["data"].clone()
    }

    /// Asserts that no row of any table (the events included), as text, contains one of
    /// `secrets`, and that every table of `required` exists (so the scan covers them).
    pub async fn assert_nowhere_at_rest(&self, secrets: &[String], required: &[&str]) {
        let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'").fetch_all(&self.pool).await.unwrap();
        assert!(required.iter().all(|r| tables.iter().any(|t| t == r)), "{required:?} not all in {tables:?}");
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t")).fetch_all(&self.pool).await.unwrap();
            for row in rows {
                assert!(secrets.iter().all(|secret| !row.contains(secret.as_str())), "a secret found in table {table}: {row}");
            }
        }
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&self.pool).await.unwrap()
    }

    pub async fn sign_up(&self, email: &str, account_name: &str) -> Signed {
        let data = self
            .ok(
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) { token user { id } account { id } } }",
                json!({ "input": { "email": email, "password": PASSWORD, "displayName": email.split('@').next().unwrap(), "accountName": account_name } }),
            )
            .await;
        Signed {
            token: data["signUp"]["token"].as_str().unwrap().to_string(),
            user_id: data["signUp"]["user"]["id"].as_str().unwrap().to_string(),
            account_id: data["signUp"]["account"]["id"].as_str().unwrap().to_string(),
        }
    }

    pub async fn invite(&self, token: &str, account_id: &str, email: &str, role: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($input: InviteUserInput!) { inviteUser(input: $input) { inviteLink invitation { id email role status statusText sendCount expiresAt invitedBy { id } } } }",
            json!({ "input": { "accountId": account_id, "email": email, "role": role } }),
        )
        .await
    }

    /// Invites and returns (invitation id, token); panics on refusal.
    pub async fn invite_ok(&self, token: &str, account_id: &str, email: &str, role: &str) -> (String, String) {
        let response = self.invite(token, account_id, email, role).await;
        assert!(response.get("errors").is_none(), "invite refused: {response}");
        let payload = &response["data"]["inviteUser"];
        (payload["invitation"]["id"].as_str().unwrap().to_string(), token_of(payload["inviteLink"].as_str().unwrap()))
    }

    /// Accepts as a new user (no session).
    pub async fn accept_new(&self, invite_token: &str, name: &str) -> Value {
        self.gql(
            None,
            "mutation($input: AcceptInviteInput!) { acceptInvite(input: $input) { token user { id email displayName } account { id viewerRole } } }",
            json!({ "input": { "token": invite_token, "displayName": name, "password": PASSWORD } }),
        )
        .await
    }

    /// Accepts as the signed-in user `session`.
    pub async fn accept_as(&self, session: &str, invite_token: &str) -> Value {
        self.gql(
            Some(session),
            "mutation($input: AcceptInviteInput!) { acceptInvite(input: $input) { token user { id email } account { id viewerRole } } }",
            json!({ "input": { "token": invite_token } }),
        )
        .await
    }

    /// Accepts as a new user and returns (session token, user id).
    pub async fn join(&self, invite_token: &str, name: &str) -> (String, String) {
        let response = self.accept_new(invite_token, name).await;
        assert!(response.get("errors").is_none(), "accept refused: {response}");
        let payload = &response["data"]["acceptInvite"];
        (payload["token"].as_str().unwrap().to_string(), payload["user"]["id"].as_str().unwrap().to_string())
    }

    /// Invites `email` with `role` and accepts as a new user: (session token, user id).
    pub async fn add_member(&self, admin: &Signed, email: &str, role: &str) -> (String, String) {
        let (_, token) = self.invite_ok(&admin.token, &admin.account_id, email, role).await;
        self.join(&token, email.split('@').next().unwrap()).await
    }

    /// The members of an account as (email, role) pairs.
    pub async fn members(&self, token: &str, account_id: &str) -> Vec<(String, String)> {
        let data = self
            .ok(
                Some(token),
                "query($id: ID!) { account(id: $id) { members(first: 500) { totalCount nodes { role user { email } } } } }",
                json!({ "id": account_id }),
            )
            .await;
        let mut members: Vec<(String, String)> = data["account"]["members"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["user"]["email"].as_str().unwrap().to_string(), m["role"].as_str().unwrap().to_string()))
            .collect();
        members.sort();
        members
    }

    /// One invitation of an account, by id, as the API lists it.
    pub async fn invitation(&self, token: &str, account_id: &str, id: &str) -> Value {
        let data = self
            .ok(
                Some(token),
                "query($id: ID!) { account(id: $id) { invitations(first: 500) { nodes { id email role status statusText sendCount expiresAt lastSentAt cancelReason delivery { status attempts lastError sentAt } } } } }",
                json!({ "id": account_id }),
            )
            .await;
        data["account"]["invitations"]["nodes"].as_array().unwrap().iter().find(|i| i["id"] == id).cloned().expect("invitation listed")
    }

    pub async fn change_role(&self, token: &str, account_id: &str, user_id: &str, role: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($input: ChangeRoleInput!) { changeRole(input: $input) { role user { id } } }",
            json!({ "input": { "accountId": account_id, "userId": user_id, "role": role } }),
        )
        .await
    }

    pub async fn remove_member(&self, token: &str, account_id: &str, user_id: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($input: RemoveMemberInput!) { removeMember(input: $input) { userId accountId } }",
            json!({ "input": { "accountId": account_id, "userId": user_id } }),
        )
        .await
    }

    pub async fn resend(&self, token: &str, invitation_id: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($input: ResendInviteInput!) { resendInvite(input: $input) { inviteLink invitation { id status sendCount expiresAt } } }",
            json!({ "input": { "invitationId": invitation_id } }),
        )
        .await
    }

    pub async fn cancel(&self, token: &str, invitation_id: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($input: CancelInviteInput!) { cancelInvite(input: $input) { id status statusText cancelReason cancelledBy { id } } }",
            json!({ "input": { "invitationId": invitation_id } }),
        )
        .await
    }

    /// Asserts `response` is refused with `expected` and that no event was appended since
    /// `events_before`.
    pub async fn assert_refused(&self, response: &Value, expected: &str, events_before: i64) {
        assert_eq!(code(response), Some(expected), "response: {response}");
        assert_eq!(self.event_count().await, events_before, "a refused command appended events");
    }
}


/// Every read-model row, table by table, in a stable order (to compare projections).
pub async fn read_models(pool: &PgPool) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for projection in roster_projections::Projection::ALL {
        for table in projection.tables() {
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY t::text")).fetch_all(pool).await.unwrap();
            out.push((table.to_string(), rows));
        }
    }
    out
}
