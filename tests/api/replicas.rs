//! Several `roster serve` processes (the compiled binary) on one database, and crash safety:
//! read-your-writes across replicas, each projection advancing on one replica at a time,
//! concurrent migrations, `kill -9` during a command load and during a projection batch.

use crate::helpers::replica::{assert_equal_to_rebuild, projections_status, start_replicas, wait_caught_up, Batch, Replica};
use crate::helpers::{fresh_database, roster, ApiClient, Signed};
use chrono::{Duration as Days, Utc};
use roster_domain::token::TokenDigest;
use roster_domain::user::{User, UserEvent};
use roster_domain::{Account, AccountEvent, AccountId, Email, EventMetadata, InvitationId, Role, UserId};
use roster_projections::projector::{BATCH_SIZE_VAR, ENABLED_VAR, PAUSE_VAR};
use roster_store::{Append, EventStore};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_each_see_their_own_and_earlier_writes_at_once() {
    let url = fresh_database().await;
    // B and C project nothing: their commands' waits can only end through A's checkpoint
    // notifications. (When all three project, the replica that wrote usually projects its own
    // events first, and the cross-process path would go untested.)
    let a = Replica::start(&url, &[]).await;
    let [b, c]: [Replica; 2] = start_replicas(&url, 2, &[(ENABLED_VAR, "false")]).await.try_into().ok().unwrap();

    let ada = a.sign_up("ada@example.com", "Acme").await;
    let (invitation_id, token) = a.invite_ok(&ada.token, &ada.account_id, "bob@example.com", "DEVELOPER").await;
    // B: the invitation A wrote, by the token of its link, then accepted as a new user.
    let preview = b
        .ok(None, "query($t: String!) { invitationPreview(token: $t) { accountName invitedByName email role status } }", json!({ "t": token }))
        .await;
    assert_eq!(preview["invitationPreview"], json!({ "accountName": "Acme", "invitedByName": "ada", "email": "bob@example.com", "role": "DEVELOPER", "status": "PENDING" }));
    let (bob_token, bob_id) = b.join(&token, "Bob").await;
    // C: Bob is a member the moment B answered; promote him (a session A issued works on C).
    assert_eq!(c.members(&ada.token, &ada.account_id).await, [pair("ada@example.com", "ADMIN"), pair("bob@example.com", "DEVELOPER")]);
    let changed = c.change_role(&ada.token, &ada.account_id, &bob_id, "SECURITY_ENGINEER").await;
    assert_eq!(changed["data"]["changeRole"]["role"], "SECURITY_ENGINEER", "{changed}");

    // A: everything, as written on B and C.
    assert_eq!(a.members(&bob_token, &ada.account_id).await, [pair("ada@example.com", "ADMIN"), pair("bob@example.com", "SECURITY_ENGINEER")]);
    assert_eq!(a.invitation(&ada.token, &ada.account_id, &invitation_id).await["status"], "ACCEPTED");
    let log = a
        .ok(Some(&ada.token), "query($id: ID!) { account(id: $id) { auditLog(first: 100) { nodes { action actor { email } } } } }", json!({ "id": ada.account_id }))
        .await;
    let actions: Vec<&str> = log["account"]["auditLog"]["nodes"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["account.created", "member.joined", "member.invited", "invitation.accepted", "member.joined", "member.role_changed"]);

    // No answer above came from a read-your-writes wait that timed out instead of catching up.
    for replica in [&a, &b, &c] {
        replica.assert_no_late_reads();
    }
    assert!(b.batches().is_empty() && c.batches().is_empty(), "B or C projected");
    assert_equal_to_rebuild(&a).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_projection_advances_on_one_replica_at_a_time() {
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    roster_store::db::migrate(&pool).await.unwrap();
    backlog(&pool, 6, 200).await;
    // Small rounds, so the backlog takes many of them and the replicas contend for each.
    let replicas = start_replicas(&url, 3, &[(BATCH_SIZE_VAR, "20")]).await;
    // New commands on every replica meanwhile: each writer wakes its own projector at once.
    let ada = replicas[0].sign_up("ada@example.com", "Acme").await;
    let ada = &ada;
    let invites = replicas.iter().enumerate().map(|(r, replica)| async move {
        for i in 0..5 {
            replica.invite_ok(&ada.token, &ada.account_id, &format!("r{r}.{i}@example.com"), "GUEST").await;
        }
    });
    futures::future::join_all(invites).await;
    wait_caught_up(&url).await;

    let end: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&pool).await.unwrap();
    let logged = |replicas: &[Replica]| replicas.iter().flat_map(Replica::batches).collect::<Vec<_>>();
    await_logged(|| logged(&replicas), end).await;
    let batches = logged(&replicas);
    assert_exact_chains(&batches, &start_at(0), &start_at(end));
    let working = replicas.iter().filter(|r| !r.batches().is_empty()).count();
    assert!(working >= 2, "only one replica projected; the test did not exercise sharing");
    assert_one_audit_entry_per_account_event(&pool).await;
    assert_equal_to_rebuild(&replicas[0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_migrating_at_once_apply_the_schema_once() {
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    // Hold the advisory lock sqlx's migrator takes, to see both processes wait on it.
    let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.unwrap();
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)").bind(sqlx_migrate_lock_id(&database)).execute(&mut *holder).await.unwrap();
    let spawn = || roster(&["migrate"]).env("DATABASE_URL", &url).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (first, second) = (spawn(), spawn());
    await_condition("both migrations waiting on the advisory lock", || async {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetch_one(&pool).await.unwrap();
        waiting == 2
    })
    .await;
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text").fetch_one(&pool).await.unwrap();
    assert_eq!(table, None, "a migrator ran without the lock");
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(sqlx_migrate_lock_id(&database)).execute(&mut *holder).await.unwrap();

    for child in [first, second] {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let applied: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.unwrap();
    let expected: Vec<(i64, bool)> = roster_store::db::MIGRATOR.iter().map(|m| (m.version, true)).collect();
    assert_eq!(applied, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_answered_before_a_kill_9_survive_it() {
    let url = fresh_database().await;
    let mut first = Replica::start(&url, &[]).await;
    let ada = first.sign_up("ada@example.com", "Acme").await;
    // Answers stay OK until the server is gone.
    let load = InviteLoad::start(&first, &ada, false);
    load.enough.notified().await;
    first.kill();
    let answered = load.finish().await;

    let second = Replica::start(&url, &[]).await;
    wait_caught_up(&url).await;
    assert!(answered.len() >= 40);
    assert_answered_invitations_kept(&second, &ada.token, &ada.account_id, &answered).await;
}

/// 8 clients inviting distinct emails into `ada`'s account one after another, until the server
/// is gone (no answer) or, with `errors_end`, answers an error (without it, an error answer
/// fails the test); every OK answer is recorded. `enough` wakes once 40 were answered OK.
pub(crate) struct InviteLoad {
    pub enough: Arc<tokio::sync::Notify>,
    answered: Arc<Mutex<Vec<String>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl InviteLoad {
    pub(crate) fn start(api: &ApiClient, ada: &Signed, errors_end: bool) -> Self {
        let answered = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let enough = Arc::new(tokio::sync::Notify::new());
        let clients = (0..8)
            .map(|c| {
                let (api, ada, answered, count, enough) = (api.clone(), ada.clone(), answered.clone(), count.clone(), enough.clone());
                tokio::spawn(async move {
                    for i in 0.. {
                        let email = format!("c{c}.{i}@example.com");
                        let Some(response) = try_invite(&api, &ada.token, &ada.account_id, &email).await else { return };
                        if errors_end && response.get("errors").is_some() {
                            return;
                        }
                        assert!(response.get("errors").is_none(), "{response}");
                        answered.lock().unwrap().push(email);
                        if count.fetch_add(1, Ordering::SeqCst) + 1 == 40 {
                            enough.notify_one();
                        }
                    }
                })
            })
            .collect();
        Self { enough, answered, clients }
    }

    /// Waits for every client to stop; the emails answered OK.
    pub(crate) async fn finish(self) -> Vec<String> {
        for client in self.clients {
            client.await.unwrap();
        }
        let answered = self.answered.lock().unwrap().clone();
        answered
    }
}

/// After a crash: every invitation in `answered` (answered OK) is in the log once and listed
/// as pending, each account event has one audit entry, and the read models equal a rebuild.
pub(crate) async fn assert_answered_invitations_kept(api: &ApiClient, token: &str, account_id: &str, answered: &[String]) {
    let listed = api
        .ok(Some(token), "query($id: ID!) { account(id: $id) { invitations(first: 500) { nodes { email status } } } }", json!({ "id": account_id }))
        .await;
    let listed: BTreeMap<&str, &str> = listed["account"]["invitations"]["nodes"].as_array().unwrap().iter().map(|i| (i["email"].as_str().unwrap(), i["status"].as_str().unwrap())).collect();
    for email in answered {
        let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MemberInvited' AND payload->'MemberInvited'->>'email' = $1")
            .bind(email)
            .fetch_one(&api.pool)
            .await
            .unwrap();
        assert_eq!(logged, 1, "{email} was answered OK but is not in the log once");
        assert_eq!(listed.get(email.as_str()), Some(&"PENDING"), "{email} was answered OK but is not listed");
    }
    assert_one_audit_entry_per_account_event(&api.pool).await;
    assert_equal_to_rebuild(api).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projector_killed_mid_batch_resumes_without_skipping_or_repeating() {
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    roster_store::db::migrate(&pool).await.unwrap();
    let end = backlog(&pool, 4, 150).await;
    // Rounds of 100 events that wait 300 ms between writing the read models and committing:
    // a round is open almost all the time, so a kill lands inside one.
    let mut killed = Replica::start(&url, &[(BATCH_SIZE_VAR, "100"), (PAUSE_VAR, "300")]).await;
    await_condition("a committed round and another open with writes", || async {
        let moved = projections_status(&url).await.iter().any(|(_, checkpoint, _)| *checkpoint > 0);
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND state = 'idle in transaction' AND backend_xid IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        moved && open == 1
    })
    .await;
    killed.kill();

    let at_kill: BTreeMap<String, i64> = projections_status(&url).await.into_iter().map(|(name, checkpoint, _)| (name, checkpoint)).collect();
    assert!(at_kill.values().all(|c| *c < end), "killed after the backlog was done: {at_kill:?}");
    assert!(at_kill.values().any(|c| *c > 0), "killed before any round committed: {at_kill:?}");
    // The rounds the killed process committed end exactly where the checkpoints stand.
    assert_exact_chains(&killed.batches(), &start_at(0), &at_kill);

    let restarted = Replica::start(&url, &[]).await;
    wait_caught_up(&url).await;
    await_logged(|| restarted.batches(), end).await;
    assert_exact_chains(&restarted.batches(), &at_kill, &start_at(end));
    assert_one_audit_entry_per_account_event(&pool).await;
    assert_equal_to_rebuild(&restarted).await;
}

/// The advisory lock id sqlx's migrator takes for `database` (sqlx-postgres 0.8,
/// `generate_lock_id`: a constant times the CRC-32/ISO-HDLC of the database name).
fn sqlx_migrate_lock_id(database: &str) -> i64 {
    let mut crc = !0u32;
    for byte in database.bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    0x3d32ad9e * i64::from(!crc)
}

fn pair(email: &str, role: &str) -> (String, String) {
    (email.to_string(), role.to_string())
}

/// Every projection starting after `position`.
fn start_at(position: i64) -> BTreeMap<String, i64> {
    roster_projections::Projection::ALL.iter().map(|p| (p.name().to_string(), position)).collect()
}

/// Asserts that, per projection, the `batches` follow each other exactly from `from` to `to`
/// (no gap: nothing skipped; no overlap: nothing applied twice).
fn assert_exact_chains(batches: &[Batch], from: &BTreeMap<String, i64>, to: &BTreeMap<String, i64>) {
    for (projection, start) in from {
        let mut chain: Vec<&Batch> = batches.iter().filter(|b| &b.projection == projection).collect();
        chain.sort();
        let mut at = *start;
        for batch in chain {
            assert_eq!(batch.after, at, "{projection}: batch {batch:?} does not follow {at}: {batches:?}");
            at = batch.reached;
        }
        assert_eq!(at, to[projection], "{projection}: the batches do not end at {}: {batches:?}", to[projection]);
    }
}

/// Waits until the logs' batches cover `end` for every projection (a log line follows its
/// commit, so it may still be on its way when the status shows no lag).
async fn await_logged(batches: impl Fn() -> Vec<Batch>, end: i64) {
    await_condition("every projection's batches logged", || async {
        let batches = batches();
        roster_projections::Projection::ALL.iter().all(|p| batches.iter().any(|b| b.projection == p.name() && b.reached == end))
    })
    .await;
}

/// Polls `condition` until it holds (30 s at most).
async fn await_condition<F: std::future::Future<Output = bool>>(what: &str, condition: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn assert_one_audit_entry_per_account_event(pool: &PgPool) {
    let (events, entries): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events WHERE aggregate_type = 'Account'), (SELECT count(*) FROM audit_log)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(entries, events, "audit log entries vs account events");
}

/// Invites `email`; `None` when the server did not answer (gone).
pub(crate) async fn try_invite(api: &ApiClient, token: &str, account_id: &str, email: &str) -> Option<Value> {
    let body = json!({
        "query": "mutation($input: InviteUserInput!) { inviteUser(input: $input) { invitation { id } } }",
        "variables": { "input": { "accountId": account_id, "email": email, "role": "GUEST" } },
    });
    let response = api.client.post(format!("{}/graphql", api.address)).bearer_auth(token).json(&body).send().await.ok()?;
    response.json().await.ok()
}

/// Appends, with no server running, `accounts` accounts of an admin and `invites` invitations
/// each; returns the last position.
async fn backlog(pool: &PgPool, accounts: u32, invites: u32) -> i64 {
    let now = Utc::now();
    let meta = EventMetadata::new(None, "backlog", now);
    let mut last = 0;
    for a in 0..accounts {
        let (account, admin) = (AccountId::from(uuid::Uuid::new_v4()), UserId::from(uuid::Uuid::new_v4()));
        let email = |s: String| Email::parse(&s).unwrap();
        let mut events = vec![
            AccountEvent::AccountCreated { name: format!("Account {a}"), created_by: admin, created_at: now },
            AccountEvent::MemberJoined { user_id: admin, email: email(format!("admin{a}@example.com")), role: Role::Admin, joined_at: now, invitation_id: None },
        ];
        events.extend((0..invites).map(|i| AccountEvent::MemberInvited {
            invitation_id: InvitationId::from(uuid::Uuid::new_v4()),
            email: email(format!("i{i}.a{a}@example.com")),
            role: Role::Developer,
            invited_by: admin,
            token_digest: TokenDigest::from_stored(format!("{:064x}", a * 100_000 + i)),
            sent_at: now,
            expires_at: now + Days::days(7),
            mail_nonce: None,
        }));
        let registered = UserEvent::UserRegistered { email: email(format!("admin{a}@example.com")), display_name: format!("Admin {a}"), registered_at: now };
        let mut tx = pool.begin().await.unwrap();
        let appends = [Append::new::<User>(admin.to_string(), 0, &[registered]).unwrap(), Append::new::<Account>(account.to_string(), 0, &events).unwrap()];
        last = *EventStore::append(&mut tx, &appends, &meta).await.unwrap().last().unwrap();
        tx.commit().await.unwrap();
    }
    last
}

/// A replica that already holds an account's state decides on it: events another replica
/// appended since must not make it refuse what the log allows (an invitation it has not
/// seen is not NOT_FOUND, its token not INVALID_TOKEN, a member not NOT_FOUND).
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_with_a_cached_account_sees_what_another_replica_appended() {
    let url = fresh_database().await;
    let [a, b]: [Replica; 2] = start_replicas(&url, 2, &[]).await.try_into().ok().unwrap();
    let ada = a.sign_up("ada@example.com", "Acme").await;
    // B decides once on the account, so it keeps its state.
    b.invite_ok(&ada.token, &ada.account_id, "first@example.com", "GUEST").await;
    // A appends an invitation B has not seen; B resends it, then accepts its new link.
    let (id, _) = a.invite_ok(&ada.token, &ada.account_id, "grace@example.com", "DEVELOPER").await;
    let resent = b.resend(&ada.token, &id).await;
    assert!(resent.get("errors").is_none(), "{resent}");
    let token = crate::helpers::token_of(resent["data"]["resendInvite"]["inviteLink"].as_str().unwrap());
    // Now A is the one behind: it accepts B's resent link and an invitation B made.
    let (_, bob_token) = b.invite_ok(&ada.token, &ada.account_id, "bob@example.com", "GUEST").await;
    let (_, bob_id) = a.join(&bob_token, "Bob").await;
    let (_, grace_id) = a.join(&token, "Grace").await;
    // B has not seen Grace or Bob join: it removes Bob and changes Grace's role.
    let removed = b.remove_member(&ada.token, &ada.account_id, &bob_id).await;
    assert!(removed.get("errors").is_none(), "{removed}");
    let changed = b.change_role(&ada.token, &ada.account_id, &grace_id, "GUEST").await;
    assert!(changed.get("errors").is_none(), "{changed}");
}
