//! Reads of big accounts (issue 9, item 3): search by email and display-name prefix (the
//! substring search, so prefixes included), paging through hundreds of members while others
//! join, keyset pages of invitations while new ones arrive, and totals (kept as counters by the
//! projections) equal to the real counts, also after a rebuild. Members are seeded as events
//! appended to the account's stream, then projected.

use crate::helpers::{spawn_app, Signed, TestApp};
use chrono::{DateTime, Duration, TimeZone, Utc};
use roster_domain::token::TokenDigest;
use roster_domain::user::{User, UserEvent};
use roster_api::clock::Clock;
use roster_domain::{Account, AccountEvent, AccountId, Email, EventMetadata, InvitationId, Role, UserId};
use roster_projections::queries::{self, Window};
use roster_projections::rebuild;
use roster_store::{Append, EventStore};
use serde_json::{json, Value};
use std::collections::HashSet;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

/// Appends `events` to `admin`'s account stream after `version` (and registers the users who
/// join), projects them, and returns the new version.
async fn append(app: &TestApp, admin: &Signed, version: usize, events: Vec<AccountEvent>) -> usize {
    let mut appends = Vec::new();
    for event in &events {
        if let AccountEvent::MemberJoined { user_id, email, joined_at, .. } = event {
            let name = format!("Member {}", email.as_str().split('@').next().unwrap().trim_start_matches('m'));
            let registered = UserEvent::UserRegistered { email: email.clone(), display_name: name, registered_at: *joined_at };
            appends.push(Append::new::<User>(user_id.to_string(), 0, &[registered]).unwrap());
        }
    }
    appends.push(Append::new::<Account>(admin.account_id.clone(), version, &events).unwrap());
    let mut tx = app.pool.begin().await.unwrap();
    EventStore::append(&mut tx, &appends, &EventMetadata::new(None, "seeded", t0())).await.unwrap();
    tx.commit().await.unwrap();
    app.projector().catch_up().await.unwrap();
    version + events.len()
}

/// `MemberJoined` of member `n`: `m{n:03}@x.example.com`, display name "Member {n:03}".
fn joined(n: u32, role: Role) -> AccountEvent {
    AccountEvent::MemberJoined {
        user_id: UserId::from(uuid::Uuid::from_u128(u128::from(n) + 1_000)),
        email: Email::parse(&format!("m{n:03}@x.example.com")).unwrap(),
        role,
        joined_at: t0() + Duration::seconds(i64::from(n)),
        invitation_id: None,
    }
}

fn invited(n: u32, admin: UserId, sent_at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::MemberInvited {
        invitation_id: InvitationId::from(uuid::Uuid::from_u128(u128::from(n) + 1_000_000)),
        email: Email::parse(&format!("i{n:03}@x.example.com")).unwrap(),
        role: Role::Guest,
        invited_by: admin,
        token_digest: TokenDigest::from_stored(format!("{n:064x}")),
        sent_at,
        expires_at: sent_at + Duration::days(7),
        mail_nonce: None,
    }
}

/// The emails of `members(search: …)`, in list order, and the total.
async fn search(app: &TestApp, admin: &Signed, search: &str) -> (Vec<String>, i64) {
    let data = app.ok(Some(&admin.token), "query($id: ID!, $s: String) { account(id: $id) { members(search: $s) { totalCount nodes { user { email } } } } }", json!({ "id": admin.account_id, "s": search })).await;
    let members = &data["account"]["members"];
    let emails = members["nodes"].as_array().unwrap().iter().map(|n| n["user"]["email"].as_str().unwrap().to_string()).collect();
    (emails, members["totalCount"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn search_finds_members_by_email_and_display_name_prefix() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    append(&app, &admin, 2, (0..300).map(|n| joined(n, Role::Developer)).collect()).await;
    let tens: Vec<String> = (10..20).map(|n| format!("m{n:03}@x.example.com")).collect();
    assert_eq!(search(&app, &admin, "m01").await, (tens.clone(), 10), "email prefix, in join order");
    assert_eq!(search(&app, &admin, "Member 01").await, (tens.clone(), 10), "display-name prefix");
    assert_eq!(search(&app, &admin, "MEMBER 01").await, (tens.clone(), 10), "case-insensitive");
    assert_eq!(search(&app, &admin, "ber 01").await, (tens, 10), "still a substring search");
    assert_eq!(search(&app, &admin, "m2").await.1, 100);
    assert_eq!(search(&app, &admin, "m2").await.0.len(), 50, "first defaults to 50");
    assert_eq!(search(&app, &admin, "m0_").await.1, 0, "LIKE wildcards are literal");
    assert_eq!(search(&app, &admin, "nobody").await, (vec![], 0));
    assert_eq!(search(&app, &admin, "comMember").await, (vec![], 0), "a match never spans the email and the display name");
    let other = app.sign_up("bob@x.example.com", "Other").await;
    assert_eq!(search(&app, &admin, "bob").await, (vec![], 0), "another account's members are not found");
    assert_eq!(search(&app, &other, "x.example").await, (vec!["bob@x.example.com".to_string()], 1), "nor this account's by the other");
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_300_members_by_50_sees_each_once_while_others_join() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let mut version = append(&app, &admin, 2, (0..300).map(|n| joined(n, Role::Developer)).collect()).await;
    let page = "query($id: ID!, $after: String) { account(id: $id) { members(first: 50, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { user { email } } } } }";
    let (mut seen, mut after, mut late) = (Vec::new(), Value::Null, 300);
    loop {
        let data = app.ok(Some(&admin.token), page, json!({ "id": admin.account_id, "after": after })).await;
        let conn = &data["account"]["members"];
        seen.extend(conn["nodes"].as_array().unwrap().iter().map(|n| n["user"]["email"].as_str().unwrap().to_string()));
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
        // Others join between pages (after everyone seeded, as joins are by time).
        version = append(&app, &admin, version, (late..late + 3).map(|n| joined(n, Role::Guest)).collect()).await;
        late += 3;
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no member twice");
    // The admin joined at sign-up (the real clock), the seeded members at fixed instants.
    assert_eq!(seen.iter().filter(|e| *e == "ada@example.com").count(), 1);
    let seeded: Vec<String> = seen.into_iter().filter(|e| e != "ada@example.com").collect();
    let expected: Vec<String> = (0..late).map(|n| format!("m{n:03}@x.example.com")).collect();
    assert_eq!(seeded, expected, "every member once, in join order, the late ones last");
}

#[tokio::test(flavor = "multi_thread")]
async fn invitation_keyset_pages_stay_put_while_new_invitations_arrive() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let admin_id: UserId = admin.user_id.parse().unwrap();
    let account: AccountId = admin.account_id.parse().unwrap();
    // Two at each instant, so the id breaks ties.
    let mut version = append(&app, &admin, 2, (0..300).map(|n| invited(n, admin_id, t0() + Duration::seconds(i64::from(n / 2)))).collect()).await;
    let (mut seen, mut key, mut next) = (Vec::new(), None, 300);
    loop {
        let (rows, total) = queries::invitations_in(&app.pool, account, None, t0(), Window::After(key), 50).await.unwrap();
        assert_eq!(total, i64::from(next), "total counts the arrivals too");
        let Some(last) = rows.last() else { break };
        key = Some((last.created_at, last.id));
        seen.extend(rows.iter().map(|r| r.email.clone()));
        // Newer invitations arrive before the next page: they sort before it, not into it.
        version = append(&app, &admin, version, (next..next + 3).map(|n| invited(n, admin_id, t0() + Duration::hours(1))).collect()).await;
        next += 3;
    }
    let mut expected: Vec<(DateTime<Utc>, InvitationId, String)> = (0..300u32)
        .map(|n| (t0() + Duration::seconds(i64::from(n / 2)), InvitationId::from(uuid::Uuid::from_u128(u128::from(n) + 1_000_000)), format!("i{n:03}@x.example.com")))
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(seen, expected.into_iter().map(|e| e.2).collect::<Vec<_>>(), "each seeded invitation once, newest first");
    let (first, _) = queries::invitations_in(&app.pool, account, None, t0(), Window::After(None), 50).await.unwrap();
    let (by_offset, _) = queries::invitations(&app.pool, account, None, t0(), 0, 50).await.unwrap();
    assert_eq!(first, by_offset, "the first page is the same either way");
}

/// `(totalCount of members by role filter, of invitations by status filter)` from the API.
async fn api_counts(app: &TestApp, admin: &Signed) -> Vec<i64> {
    let data = app.ok(Some(&admin.token), "query($id: ID!) { account(id: $id) {
        all: members { totalCount } admins: members(role: ADMIN) { totalCount } devs: members(role: DEVELOPER) { totalCount } guests: members(role: GUEST) { totalCount }
        invs: invitations { totalCount } pending: invitations(status: PENDING) { totalCount } expired: invitations(status: EXPIRED) { totalCount }
        accepted: invitations(status: ACCEPTED) { totalCount } cancelled: invitations(status: CANCELLED) { totalCount } } }", json!({ "id": admin.account_id })).await;
    ["all", "admins", "devs", "guests", "invs", "pending", "expired", "accepted", "cancelled"].iter().map(|k| data["account"][k]["totalCount"].as_i64().unwrap()).collect()
}

/// The same counts, counted in the read-model tables.
async fn real_counts(app: &TestApp, admin: &Signed) -> Vec<i64> {
    let account: AccountId = admin.account_id.parse().unwrap();
    let now = app.clock().now();
    let count = |sql: &'static str, arg: Option<&'static str>| {
        let pool = app.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).bind(account).bind(arg).bind(now).fetch_one(&pool).await.unwrap() }
    };
    let members = "SELECT count(*) FROM members WHERE account_id = $1 AND ($2::text IS NULL OR role = $2) AND $3::timestamptz IS NOT NULL";
    let invitations = "SELECT count(*) FROM invitations WHERE account_id = $1 AND ($2::text IS NULL OR state = $2) AND $3::timestamptz IS NOT NULL";
    vec![
        count(members, None).await, count(members, Some("ADMIN")).await, count(members, Some("DEVELOPER")).await, count(members, Some("GUEST")).await,
        count(invitations, None).await,
        count("SELECT count(*) FROM invitations WHERE account_id = $1 AND state = 'PENDING' AND expires_at > $3 AND $2::text IS NULL", None).await,
        count("SELECT count(*) FROM invitations WHERE account_id = $1 AND state = 'PENDING' AND expires_at <= $3 AND $2::text IS NULL", None).await,
        count(invitations, Some("ACCEPTED")).await, count(invitations, Some("CANCELLED")).await,
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn totals_equal_the_real_counts_also_after_a_rebuild() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let other = app.sign_up("bob@example.com", "Other").await;
    let admin_id: UserId = admin.user_id.parse().unwrap();
    let uid = |n: u32| UserId::from(uuid::Uuid::from_u128(u128::from(n) + 1_000));
    let iid = |n: u32| InvitationId::from(uuid::Uuid::from_u128(u128::from(n) + 1_000_000));
    let old = app.clock().now() - Duration::days(30);
    let mut events: Vec<AccountEvent> = (0..40).map(|n| joined(n, if n % 3 == 0 { Role::Guest } else { Role::Developer })).collect();
    // Role changes and removals, in the same batch as the joins and in later ones.
    events.extend((0..10).map(|n| AccountEvent::MemberRoleChanged { user_id: uid(n), from: if n % 3 == 0 { Role::Guest } else { Role::Developer }, to: Role::Admin, changed_by: admin_id }));
    events.extend((10..15).map(|n| AccountEvent::MemberRemoved { user_id: uid(n), removed_by: admin_id, removed_at: t0() }));
    // Invitations: pending, expired (sent long ago), cancelled, accepted.
    events.extend((0..30).map(|n| invited(n, admin_id, if n < 8 { old } else { app.clock().now() })));
    events.extend((20..25).map(|n| AccountEvent::InvitationCancelled { invitation_id: iid(n), cancelled_by: admin_id, reason: "cancelled".into(), cancelled_at: t0() }));
    let version = append(&app, &admin, 2, events).await;
    let mut later: Vec<AccountEvent> = (25..28).map(|n| AccountEvent::InvitationAccepted { invitation_id: iid(n), user_id: uid(100 + n), accepted_at: t0() }).collect();
    later.extend((15..20).map(|n| AccountEvent::MemberRoleChanged { user_id: uid(n), from: if n % 3 == 0 { Role::Guest } else { Role::Developer }, to: Role::Guest, changed_by: admin_id }));
    later.push(AccountEvent::MemberRemoved { user_id: uid(0), removed_by: admin_id, removed_at: t0() });
    append(&app, &admin, version, later).await;

    let real = real_counts(&app, &admin).await;
    assert_eq!(real, vec![35, 10, 13, 12, 30, 14, 8, 3, 5], "the seed is what this test thinks it is");
    assert_eq!(api_counts(&app, &admin).await, real);
    assert_eq!(api_counts(&app, &other).await, real_counts(&app, &other).await, "another account's totals are its own");
    rebuild::rebuild(&app.pool, &[]).await.unwrap();
    assert_eq!(api_counts(&app, &admin).await, real, "after a rebuild");
    for (counters, rows, key) in [("member_counts", "members", "role"), ("audit_counts", "audit_log", "action")] {
        let stale: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM (SELECT account_id, {key}, n FROM {counters} EXCEPT SELECT account_id, {key}, count(*) FROM {rows} GROUP BY 1, 2) d"
        ))
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(stale, 0, "{counters} holds exactly the grouped counts of {rows}");
    }
    let audit = "query($id: ID!) { account(id: $id) { all: auditLog { totalCount } joins: auditLog(action: \"member.joined\") { totalCount } } }";
    let data = app.ok(Some(&admin.token), audit, json!({ "id": admin.account_id })).await;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).bind(admin.account_id.parse::<AccountId>().unwrap()).fetch_one(&app.pool);
    assert_eq!(data["account"]["all"]["totalCount"].as_i64(), Some(count("SELECT count(*) FROM audit_log WHERE account_id = $1").await.unwrap()));
    assert_eq!(data["account"]["joins"]["totalCount"].as_i64(), Some(count("SELECT count(*) FROM audit_log WHERE account_id = $1 AND action = 'member.joined'").await.unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_the_audit_log_by_cursor_sees_each_entry_once_while_entries_are_recorded() {
    let app = spawn_app().await;
    let admin = app.sign_up("ada@example.com", "Acme").await;
    let mut version = append(&app, &admin, 2, (0..120).map(|n| joined(n, Role::Developer)).collect()).await;
    let page = "query($id: ID!, $after: String) { account(id: $id) { auditLog(first: 50, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { position action } } } } }";
    let (mut seen, mut after, mut late, mut pages) = (Vec::new(), Value::Null, 120, 0);
    loop {
        let data = app.ok(Some(&admin.token), page, json!({ "id": admin.account_id, "after": after })).await;
        let conn = &data["account"]["auditLog"];
        for edge in conn["edges"].as_array().unwrap() {
            let position: i64 = edge["node"]["position"].as_str().unwrap().parse().unwrap();
            assert_eq!(edge["cursor"], format!("p{position}"), "a cursor names its entry's position");
            seen.push(position);
        }
        pages += 1;
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
        // Entries are recorded between pages: they come after, never shift the next page.
        version = append(&app, &admin, version, (late..late + 3).map(|n| joined(n, Role::Guest)).collect()).await;
        late += 3;
    }
    let account: AccountId = admin.account_id.parse().unwrap();
    let all: Vec<i64> = sqlx::query_scalar("SELECT position FROM audit_log WHERE account_id = $1 ORDER BY position").bind(account).fetch_all(&app.pool).await.unwrap();
    assert_eq!(seen, all, "every entry once, in position order, the late ones last");
    assert_eq!((all.len(), pages), (2 + 126, 3), "sign-up's two entries, 120 joins and 3 late ones after each of two pages");
    // An offset cursor of an earlier version still reads the entries after that offset.
    let data = app.ok(Some(&admin.token), page, json!({ "id": admin.account_id, "after": "49" })).await;
    assert_eq!(data["account"]["auditLog"]["edges"][0]["node"]["position"], all[50].to_string());
}

/// What keeps member search on its trigram index: the index's definition and storage
/// parameters, and the statistics target and gathered statistics (`pg_stats` rows) of the
/// searched column.
async fn search_settings(app: &TestApp) -> (Vec<(String, String, Option<Vec<String>>)>, i64, i64) {
    let indexes = sqlx::query_as(
        "SELECT relname::text, pg_get_indexdef(oid), reloptions FROM pg_class WHERE relname = 'members_search' OR relname LIKE '%trgm%' ORDER BY relname",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let target = sqlx::query_scalar("SELECT attstattarget::int8 FROM pg_attribute WHERE attrelid = 'members'::regclass AND attname = 'search'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query("ANALYZE members").execute(&app.pool).await.unwrap();
    let gathered = sqlx::query_scalar("SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = 'members' AND attname = 'search'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (indexes, target, gathered)
}

#[tokio::test(flavor = "multi_thread")]
async fn search_index_and_column_keep_their_settings_also_after_a_rebuild() {
    // A GIN pending list is scanned whole by every search, and a histogram of whole values
    // misjudges substrings: either made the planner read every member instead of the index
    // (migrations/…_search_without_pending_list.sql, …_search_estimates.sql,
    // …_member_search_on_members.sql). The index leads with the account, so a search reads
    // only its own account's entries.
    let app = spawn_app().await;
    app.sign_up("ada@example.com", "Acme").await;
    let index = "CREATE INDEX members_search ON public.members USING gin (account_id, search gin_trgm_ops) WITH (fastupdate=off)";
    let expected = (vec![("members_search".to_string(), index.to_string(), Some(vec!["fastupdate=off".to_string()]))], 0, 0);
    assert_eq!(search_settings(&app).await, expected);
    rebuild::rebuild(&app.pool, &[]).await.unwrap();
    assert_eq!(search_settings(&app).await, expected, "the rebuild's new table and indexes keep them");
}
