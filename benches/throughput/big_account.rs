//! Big accounts (issue 9, item 3): one account seeded with N members and N pending
//! invitations, written with `COPY` as real domain events (each member invited, accepted and
//! joined, with its user's `UserRegistered`), and a fresh account seeded with one member the
//! same way. Then, at one client through HTTP + GraphQL: the commands on the big account
//! against the same commands on the fresh one (p50 ratio), and the list reads against a
//! `SELECT 1` round trip (p99 ratio), all in the same run.

use crate::baseline::{histogram, ms};
use crate::generate::{metadata, row, Rng};
use crate::report::Figure;
use crate::{progress, Plan};
use chrono::{Duration as Days, Utc};
use hdrhistogram::Histogram;
use roster_api::clock::SystemClock;
use roster_api::{Application, Config, DatabaseSettings, Settings};
use roster_domain::account::event_version;
use roster_domain::{Account, AccountEvent, AccountId, Email, InvitationId, Role, UserEvent, UserId};
use roster_store::EventStore;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::Instant;

/// One cold load: the stream's length in events, ms to load it from all of them, ms from its
/// snapshot plus the tail, and the snapshot's size in bytes.
pub type ColdLoad = (usize, f64, f64, usize);

/// Latency figures of the phase, ms.
#[derive(Debug, Clone)]
pub struct BigAccount {
    /// Members (and pending invitations) seeded into the big account.
    pub n: u64,
    /// Events written with `COPY` and events/s of writing them plus the projector's catch-up.
    pub seeded_events: u64,
    /// Seconds from the start of the `COPY` until the projections had caught up.
    pub seed_seconds: f64,
    /// `(command, p50 on the big account, p50 on the fresh account)`.
    pub commands: Vec<(&'static str, f64, f64)>,
    /// `(read, p50, p99)`.
    pub reads: Vec<(String, f64, f64)>,
    /// p50 and p99 of `SELECT 1` on one connection.
    pub select1: (f64, f64),
    /// Cold loads (issue 9, item 2) of the big account and of the fresh one after the command
    /// rounds (two history lengths): the stream's length in events, ms to load it from all of
    /// them, ms from its snapshot plus the tail, and the snapshot's size in bytes.
    pub cold_load: Vec<(&'static str, ColdLoad)>,
}

fn seeded_email(domain: &str, n: u64) -> Email {
    Email::parse(&format!("member{n:05}@{domain}.example.com")).expect("email")
}

/// Appends `members` joined members (`member00000@<domain>.example.com`, "Member 00000", …) (DEVELOPER, invited and accepted) and `pending` pending
/// invitations to the stream of `account` after its `sequence`, as COPY rows.
#[allow(clippy::too_many_arguments)] // the stream to append to and the two seed sizes, as named values
fn seed_rows(out: &mut Vec<u8>, rng: &mut Rng, domain: &str, account: AccountId, admin: UserId, sequence: i64, members: u64, pending: u64) -> u64 {
    let now = Utc::now() - Days::minutes(5);
    let mut stream = (sequence, 0u64);
    // One command's events on the account stream, sharing one metadata.
    let put = |out: &mut Vec<u8>, rng: &mut Rng, (sequence, written): &mut (i64, u64), actor: UserId, events: Vec<AccountEvent>| {
        let meta = serde_json::to_string(&metadata(Some(actor), rng, now).to_map()).expect("json");
        for event in events {
            let payload = serde_json::to_value(&event).expect("json");
            let event_type = payload.as_object().and_then(|o| o.keys().next()).expect("externally tagged").clone();
            *sequence += 1;
            *written += 1;
            row(out, "Account", &account.to_string(), *sequence, &event_type, event_version(&event_type), &payload.to_string(), &meta);
        }
    };
    let invite = |rng: &mut Rng, email: Email| AccountEvent::MemberInvited {
        invitation_id: InvitationId::from_uuid(rng.uuid()), email, role: Role::Developer, invited_by: admin, token_digest: rng.digest(), sent_at: now, expires_at: now + Days::days(7), mail_nonce: None,
    };
    for i in 0..members {
        let (user, email) = (UserId::from_uuid(rng.uuid()), seeded_email(domain, i));
        let invited = invite(rng, email.clone());
        let AccountEvent::MemberInvited { invitation_id: id, .. } = invited else { unreachable!() };
        put(out, rng, &mut stream, admin, vec![invited]);
        let registered = UserEvent::UserRegistered { email: email.clone(), display_name: format!("Member {i:05}"), registered_at: now };
        let meta = serde_json::to_string(&metadata(Some(user), rng, now).to_map()).expect("json");
        row(out, "User", &user.to_string(), 1, "UserRegistered", "1.0.0", &serde_json::to_string(&registered).expect("json"), &meta);
        stream.1 += 1;
        put(out, rng, &mut stream, user, vec![
            AccountEvent::InvitationAccepted { invitation_id: id, user_id: user, accepted_at: now },
            AccountEvent::MemberJoined { user_id: user, email, role: Role::Developer, joined_at: now, invitation_id: Some(id) },
        ]);
    }
    for i in 0..pending {
        let invited = invite(rng, Email::parse(&format!("pending{i:05}@{domain}.example.com")).expect("email"));
        put(out, rng, &mut stream, admin, vec![invited]);
    }
    stream.1
}

/// One client's keep-alive connection to the GraphQL endpoint; panics on any error answer.
struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn call(&self, token: &str, query: &str, variables: Value) -> Value {
        let request = self.http.post(&self.url).bearer_auth(token).json(&json!({ "query": query, "variables": variables }));
        let body: Value = request.send().await.expect("HTTP request").json().await.expect("JSON answer");
        assert!(body.get("errors").is_none(), "big account: refused: {body}");
        body["data"].clone()
    }

    /// `call`, timed into `h` (µs).
    async fn timed(&self, h: &mut Histogram<u64>, token: &str, query: &str, variables: Value) -> Value {
        let sent = Instant::now();
        let data = self.call(token, query, variables).await;
        h.record(sent.elapsed().as_micros() as u64).expect("record");
        data
    }
}

const INVITE: &str = "mutation($i: InviteUserInput!) { inviteUser(input: $i) { invitation { id } } }";
const RESEND: &str = "mutation($i: ResendInviteInput!) { resendInvite(input: $i) { invitation { sendCount } } }";
const CANCEL: &str = "mutation($i: CancelInviteInput!) { cancelInvite(input: $i) { status } }";
const CHANGE: &str = "mutation($i: ChangeRoleInput!) { changeRole(input: $i) { role } }";
const MEMBERS: &str = "query($a: ID!, $s: String) { account(id: $a) { members(first: 50, search: $s) { totalCount pageInfo { hasNextPage endCursor } nodes { role joinedAt user { id email displayName } } } } }";
const INVITATIONS: &str = "query($a: ID!) { account(id: $a) { invitations(first: 50) { totalCount pageInfo { hasNextPage endCursor } nodes { id email status sendCount invitedBy { id displayName } } } } }";
const AUDIT_LOG: &str = "query($a: ID!, $c: String) { account(id: $a) { auditLog(first: 50, after: $c) { totalCount pageInfo { hasNextPage endCursor } nodes { position occurredAt action target actor { id displayName } } } } }";

/// A signed-up account: admin token, account id, the seeded member `changeRole` changes.
struct Seeded {
    token: String,
    account: String,
    member: String,
}

/// Runs the phase on the fresh database at `url`: `n` members and invitations (plan: tiny in
/// the smoke run), `plan.commands` rounds of commands and reads. Panics on any refusal and on
/// counts that disagree with the seed.
pub async fn run(url: &str, plan: &Plan, n: u64, started: Instant) -> BigAccount {
    let settings = Settings { database: DatabaseSettings::new(url), bind: "127.0.0.1:0".into(), config: Config::new("http://bench.invalid", "bench-secret") };
    let application = Application::build(settings, Arc::new(SystemClock)).await.expect("start the server");
    let app = application.app().clone();
    let client = Client { http: reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("http client"), url: format!("http://{}/graphql", application.address()) };
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    let mut conn = PgConnection::connect(url).await.expect("connect");

    // Sign up both accounts, then append their seeds to their streams with one COPY.
    let mut rng = Rng::new(crate::generate::SEED ^ 0xB16);
    let mut out = Vec::new();
    let mut seeded_events = 0;
    let mut accounts = Vec::new();
    for (name, members, pending) in [("big", n, n), ("fresh", 1, 0)] {
        let input = json!({ "email": format!("admin@{name}.example.com"), "password": "correct horse battery", "displayName": "Bench", "accountName": name });
        let data = client.call("", "mutation($i: SignUpInput!) { signUp(input: $i) { token user { id } account { id } } }", json!({ "i": input })).await;
        let (token, account) = (data["signUp"]["token"].as_str().expect("token").to_string(), data["signUp"]["account"]["id"].as_str().expect("id").to_string());
        let admin: UserId = data["signUp"]["user"]["id"].as_str().expect("user id").parse().expect("user id");
        let account_id: AccountId = account.parse().expect("account id");
        let sequence: i64 = sqlx::query_scalar("SELECT max(sequence) FROM events WHERE aggregate_type = 'Account' AND aggregate_id = $1")
            .bind(&account).fetch_one(&mut conn).await.expect("stream version");
        seeded_events += seed_rows(&mut out, &mut rng, name, account_id, admin, sequence, members, pending);
        accounts.push((token, account));
    }
    progress(started, format_args!("big account: writing {seeded_events} events with COPY ({n} members, {n} invitations)"));
    let begin = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) FROM STDIN")
        .await
        .expect("COPY FROM STDIN");
    copy.send(out).await.expect("COPY data");
    assert_eq!(copy.finish().await.expect("COPY finish"), seeded_events, "COPY wrote every seeded event");
    // COPY bypasses the writer that wakes the projector: have the server's projector catch up.
    app.projector().catch_up().await.expect("projections catch up on the seed");
    let seed_seconds = begin.elapsed().as_secs_f64();
    sqlx::query("ANALYZE").execute(&mut conn).await.expect("analyze");

    let mut seeded = Vec::new();
    for (token, account) in accounts {
        let data = client.call(&token, MEMBERS, json!({ "a": account, "s": "member00000@" })).await;
        let member = data["account"]["members"]["nodes"][0]["user"]["id"].as_str().expect("the first seeded member").to_string();
        seeded.push(Seeded { token, account, member });
    }

    progress(started, format_args!("big account: {} rounds of commands and reads at 1 client", plan.commands));
    let mut h: Vec<[Histogram<u64>; 4]> = (0..2).map(|_| [histogram(), histogram(), histogram(), histogram()]).collect();
    for round in 0..=plan.commands {
        // Round 0 warms both accounts up (loads their state) and is not recorded.
        for (which, s) in seeded.iter().enumerate() {
            let mut scratch = [histogram(), histogram(), histogram(), histogram()];
            let h = if round == 0 { &mut scratch } else { &mut h[which] };
            let email = format!("round{round}@new.example.com");
            let data = client.timed(&mut h[0], &s.token, INVITE, json!({ "i": { "accountId": s.account, "email": email, "role": "GUEST" } })).await;
            let id = data["inviteUser"]["invitation"]["id"].clone();
            client.timed(&mut h[1], &s.token, RESEND, json!({ "i": { "invitationId": id } })).await;
            client.timed(&mut h[2], &s.token, CANCEL, json!({ "i": { "invitationId": id } })).await;
            let role = if round % 2 == 0 { "DEVELOPER" } else { "GUEST" };
            client.timed(&mut h[3], &s.token, CHANGE, json!({ "i": { "accountId": s.account, "userId": s.member, "role": role } })).await;
        }
    }
    let names = ["inviteUser", "resendInvite", "cancelInvite", "changeRole"];
    let commands = (0..4).map(|i| (names[i], ms(&h[0][i], 0.5), ms(&h[1][i], 0.5))).collect();

    let big = &seeded[0];
    let (mut select1, mut members, mut by_email, mut by_name, mut invitations) = (histogram(), histogram(), histogram(), histogram(), histogram());
    let mut audit_log = histogram();
    // The audit log's page halfway through the big account's entries, by the cursor before it.
    let (middle, entries): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT position FROM audit_log WHERE account_id = $1::uuid ORDER BY position
                  OFFSET (SELECT count(*) / 2 FROM audit_log WHERE account_id = $1::uuid) LIMIT 1),
                (SELECT count(*) FROM audit_log WHERE account_id = $1::uuid)",
    )
    .bind(&big.account)
    .fetch_one(&mut conn)
    .await
    .expect("the audit log's middle");
    let audit_page = (entries - entries / 2 - 1).min(50);
    let groups = (n / 10).max(1);
    for round in 0..plan.commands.max(1) * 2 {
        let sent = Instant::now();
        sqlx::query("SELECT 1").execute(&mut conn).await.expect("SELECT 1");
        select1.record(sent.elapsed().as_micros() as u64).expect("record");
        let data = client.timed(&mut members, &big.token, MEMBERS, json!({ "a": big.account })).await;
        assert_eq!(data["account"]["members"]["totalCount"], n + 1, "big account: every member counted");
        assert_eq!(data["account"]["members"]["nodes"].as_array().expect("nodes").len() as u64, (n + 1).min(50));
        // Prefixes that match ~10 of the seeded members (all of them when fewer than 10).
        let group = round % groups;
        let prefix = if n >= 10 { format!("member{group:04}") } else { "member".to_string() };
        let data = client.timed(&mut by_email, &big.token, MEMBERS, json!({ "a": big.account, "s": prefix })).await;
        assert_eq!(data["account"]["members"]["totalCount"], n.min(10), "big account: email prefix matches");
        let prefix = if n >= 10 { format!("Member {group:04}") } else { "Member".to_string() };
        let data = client.timed(&mut by_name, &big.token, MEMBERS, json!({ "a": big.account, "s": prefix })).await;
        assert_eq!(data["account"]["members"]["totalCount"], n.min(10), "big account: name prefix matches");
        let data = client.timed(&mut invitations, &big.token, INVITATIONS, json!({ "a": big.account })).await;
        assert_eq!(data["account"]["invitations"]["totalCount"], 2 * n + plan.commands + 1, "big account: every invitation counted");
        let data = client.timed(&mut audit_log, &big.token, AUDIT_LOG, json!({ "a": big.account, "c": format!("p{middle}") })).await;
        assert_eq!(data["account"]["auditLog"]["totalCount"], entries, "big account: every audit entry counted");
        assert_eq!(data["account"]["auditLog"]["nodes"].as_array().expect("nodes").len() as i64, audit_page, "big account: a full page halfway");
    }
    let both = |h: &Histogram<u64>| (ms(h, 0.5), ms(h, 0.99));
    let reads = [
        ("members(first: 50)", both(&members)),
        ("members(first: 50, search: email prefix)", both(&by_email)),
        ("members(first: 50, search: name prefix)", both(&by_name)),
        ("invitations(first: 50)", both(&invitations)),
        ("auditLog(first: 50) halfway through", both(&audit_log)),
    ];
    let reads = reads.into_iter().map(|(name, (p50, p99))| (name.to_string(), p50, p99)).collect();
    // Two history lengths: the big account's, and the fresh one's after the command rounds.
    let cold_load = vec![("big account", cold_load(url, &big.account).await), ("fresh account", cold_load(url, &seeded[1].account).await)];
    BigAccount { n, seeded_events, seed_seconds, commands, reads, select1: both(&select1), cold_load }
}

/// What a server pays the first time it uses `account` (after a start or an eviction): the
/// aggregate replayed from every event, then from a snapshot of that state plus its (empty)
/// tail — best of three each, as the caches are warm after the first.
async fn cold_load(url: &str, account: &str) -> ColdLoad {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let store = EventStore::new(pool);
    let best = |mut runs: Vec<f64>| {
        runs.sort_by(f64::total_cmp);
        runs[0]
    };
    let mut full = Vec::new();
    let mut loaded = None;
    for _ in 0..3 {
        let begin = Instant::now();
        loaded = Some(store.load_from_events::<Account>(account).await.expect("replay the big account"));
        full.push(begin.elapsed().as_secs_f64() * 1e3);
    }
    let loaded = loaded.expect("loaded");
    let state = serde_json::to_value(&loaded.aggregate).expect("snapshot");
    let bytes = state.to_string().len();
    store.save_snapshot::<Account>(account, loaded.version, &state).await.expect("save the snapshot");
    let mut from_snapshot = Vec::new();
    for _ in 0..3 {
        let begin = Instant::now();
        let again = store.load::<Account>(account).await.expect("load from the snapshot");
        from_snapshot.push(begin.elapsed().as_secs_f64() * 1e3);
        assert!(again.version == loaded.version && again.aggregate == loaded.aggregate, "the snapshot loads the same state");
    }
    (loaded.version, best(full), best(from_snapshot), bytes)
}

impl BigAccount {
    /// Table rows: command p50s with their big/fresh ratio (target ≤ 1.5×), read p99s with
    /// their ratio to `SELECT 1`'s p99 (target ≤ 10×).
    pub fn figures(&self) -> Vec<Figure> {
        let label = format!("big account ({} members, {} invitations)", self.n, self.n);
        let mut figures = vec![
            Figure::plain(format!("{label}: seed written with COPY and projected"), self.seeded_events as f64 / self.seed_seconds, "events/s"),
            Figure::plain(format!("{label}: SELECT 1 round trip p50"), self.select1.0, "ms"),
            Figure::plain(format!("{label}: SELECT 1 round trip p99"), self.select1.1, "ms"),
        ];
        for (name, big, fresh) in &self.commands {
            figures.push(Figure::plain(format!("{label}: {name} p50, fresh account"), *fresh, "ms"));
            let ratio = big / fresh;
            figures.push(Figure::new(format!("{label}: {name} p50, big account"), *big, "ms", Some(ratio), Some("≤ 1.5 × fresh account"), Some(ratio <= 1.5)));
        }
        for (which, (events, full, snapshot, bytes)) in &self.cold_load {
            figures.push(Figure::plain(format!("{label}: cold load of the {which}, all {events} events replayed"), *full, "ms"));
            figures.push(Figure::new(format!("{label}: cold load of the {which}, snapshot ({} KiB) + tail", bytes / 1024), *snapshot, "ms", Some(snapshot / full), None, None));
        }
        for (name, p50, p99) in &self.reads {
            // The p50 is context for the p99 the target names (it moves less from run to run).
            figures.push(Figure::new(format!("{label}: {name} p50"), *p50, "ms", Some(p50 / self.select1.0), None, None));
            let ratio = p99 / self.select1.1;
            figures.push(Figure::new(format!("{label}: {name} p99"), *p99, "ms", Some(ratio), Some("≤ 10 × SELECT 1 p99"), Some(ratio <= 10.0)));
        }
        figures
    }
}
