//! Reads of the read models, for the API. Every read that concerns an account takes the
//! account id, so one tenant's rows are never returned for another's.
//!
//! Lists come in a stable order and are paged by offset and limit or, for members and
//! invitations, after an ordering key (keyset: a page stays put when rows are added before it);
//! the API wraps them in Relay connections. Member and invitation lists walk an index in their
//! order and their totals come from the projections' counters (`migrations/…_big_account_reads.sql`).

use chrono::{DateTime, Utc};
use roster_domain::account::InvitationState;
use roster_domain::{AccountId, InvitationId, InvitationStatus, Role, TokenDigest, UserId};
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, FromRow, PgPool, Row};

mod invitations;

pub use invitations::{invitation, invitations, invitations_in};

/// An account.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AccountRow {
    /// The account id (also its event stream's aggregate id).
    pub id: AccountId,
    /// 1–100 characters, trimmed.
    pub name: String,
    /// When `AccountCreated` was decided.
    pub created_at: DateTime<Utc>,
}

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    /// The user id (the `User` stream's aggregate id).
    pub id: UserId,
    /// Normalised (trimmed, lower-case) email.
    pub email: String,
    /// 1–100 characters, trimmed.
    pub display_name: String,
}

/// A member of an account, with their profile.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    /// The member's profile.
    pub user: UserRow,
    /// The member's role in this account.
    pub role: Role,
    /// When the member joined (sign-up, account creation or accepting an invitation).
    pub joined_at: DateTime<Utc>,
}

/// An invitation. `status` is derived at read time from the stored state and `expires_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct InvitationRow {
    /// The invitation id; kept across resends.
    pub id: InvitationId,
    /// The account the invitation is to.
    pub account_id: AccountId,
    /// The invited, normalised email.
    pub email: String,
    /// The role the invitee gets on accepting.
    pub role: Role,
    /// Pending, accepted or cancelled; expiry is derived, see [`InvitationRow::status`].
    pub state: InvitationState,
    /// The member who sent the first invitation.
    pub invited_by: UserId,
    /// When it was first sent.
    pub created_at: DateTime<Utc>,
    /// When the current link stops working (last send + `ROSTER_INVITE_TTL`).
    pub expires_at: DateTime<Utc>,
    /// When it was last sent.
    pub last_sent_at: DateTime<Utc>,
    /// How many times it was sent, the first send included.
    pub send_count: i32,
    /// Who cancelled it, when cancelled.
    pub cancelled_by: Option<UserId>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// "cancelled" or "inviter removed".
    pub cancel_reason: Option<String>,
    /// SHA-256 digest of the current link's token (never the token), for the preview's check.
    pub token_digest: TokenDigest,
}

impl InvitationRow {
    /// The status at `now` (rule "Expiry": past `expires_at`, a pending invitation is expired).
    pub fn status(&self, now: DateTime<Utc>) -> InvitationStatus {
        InvitationStatus::at(&self.state, self.expires_at, now)
    }
}

/// One audit-log entry.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    /// The global position of the event behind the entry.
    pub position: i64,
    /// When the command was decided (`metadata.occurred_at`).
    pub occurred_at: DateTime<Utc>,
    /// E.g. `member.invited`, `member.role_changed`.
    pub action: String,
    /// The acting user; `None` for the system.
    pub actor_id: Option<UserId>,
    /// Whom it concerns: an email, or the account name for `account.created`.
    pub target: Option<String>,
    /// Action-specific facts, e.g. `{"from": "GUEST", "to": "ADMIN"}`.
    pub details: Value,
    /// The request that caused the event.
    pub request_id: Option<String>,
}

/// Binds `value` as the next argument.
fn bind<'q, T>(args: &mut PgArguments, value: T) -> Result<(), sqlx::Error>
where
    T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    args.add(value).map_err(sqlx::Error::Encode)
}

/// One page and the filtered total in one statement (one round trip, one snapshot):
/// `SELECT p.*, total FROM (<total>) LEFT JOIN LATERAL (<page>) p ORDER BY <order>`, after
/// `with` (a `WITH …` clause both may use, or empty). `page`'s first column must be non-null
/// in every row (an id, a position): an empty page is the one row whose first column is null. `persistent`
/// is whether the statement is prepared once per connection (see [`members_in`] for when not).
async fn page_and_total<R>(pool: &PgPool, with: &str, total: &str, page: &str, order: &str, args: PgArguments, persistent: bool) -> Result<(Vec<R>, i64), sqlx::Error>
where
    R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let sql = format!("{with} SELECT p.*, t.total FROM ({total}) t(total) LEFT JOIN LATERAL ({page}) p ON true ORDER BY {order}");
    let rows = sqlx::query_with(&sql, args).persistent(persistent).fetch_all(pool).await?;
    let total = match rows.first() {
        Some(row) => row.try_get("total")?,
        None => 0,
    };
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        if !sqlx::ValueRef::is_null(&row.try_get_raw(0)?) {
            items.push(R::from_row(row)?);
        }
    }
    Ok((items, total))
}

/// The account `id`, if it exists.
pub async fn account(pool: &PgPool, id: AccountId) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, created_at FROM accounts WHERE id = $1").bind(id).fetch_optional(pool).await
}

/// The account `id` (if it exists) and the role of `user_id` in it (if a member), in one
/// statement: the check every read of an account makes before anything else.
pub async fn account_as_member(pool: &PgPool, id: AccountId, user_id: UserId) -> Result<Option<(AccountRow, Option<Role>)>, sqlx::Error> {
    let row: Option<(AccountId, String, DateTime<Utc>, Option<Role>)> = sqlx::query_as(
        "SELECT a.id, a.name, a.created_at, m.role FROM accounts a LEFT JOIN members m ON m.account_id = a.id AND m.user_id = $2
          WHERE a.id = $1",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, name, created_at, role)| (AccountRow { id, name, created_at }, role)))
}

/// The role of `user_id` in `account_id` (if a member) and the position the members read
/// model had reached, read in one snapshot: the role is the one as of that position, so a
/// follower knows which later events may still change it.
pub async fn member_role_as_of(pool: &PgPool, account_id: AccountId, user_id: UserId) -> Result<(Option<Role>, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT role FROM members WHERE account_id = $1 AND user_id = $2),
                coalesce((SELECT position FROM projection_checkpoints WHERE name = $3), 0)",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(crate::Projection::Members.name())
    .fetch_one(pool)
    .await
}

/// Every account `user_id` belongs to, with the role there, oldest membership first.
pub async fn accounts_of(pool: &PgPool, user_id: UserId) -> Result<Vec<(AccountRow, Role)>, sqlx::Error> {
    let rows: Vec<(AccountId, String, DateTime<Utc>, Role)> = sqlx::query_as(
        "SELECT a.id, a.name, a.created_at, m.role FROM members m JOIN accounts a ON a.id = m.account_id
          WHERE m.user_id = $1 ORDER BY m.joined_at, a.id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id, name, created_at, role)| (AccountRow { id, name, created_at }, role)).collect())
}

/// The user `id`, if registered.
pub async fn user(pool: &PgPool, id: UserId) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, display_name FROM users WHERE id = $1").bind(id).fetch_optional(pool).await
}

/// The users among `ids` (in any order; unknown ids are left out), in one query.
pub async fn users(pool: &PgPool, ids: &[UserId]) -> Result<Vec<UserRow>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|id| uuid::Uuid::from(*id)).collect();
    sqlx::query_as("SELECT id, email, display_name FROM users WHERE id = ANY($1)").bind(ids).fetch_all(pool).await
}

type MemberTuple = (UserId, String, String, Role, DateTime<Utc>);

/// A member's row with its profile: `members` carries the email and display name (a user's
/// never change once registered), so no read looks the profile up in `users`. The display name
/// is empty while the user's registration is not projected yet (see the migration
/// `…_member_search_on_members.sql`).
const MEMBER_COLUMNS: &str = "m.user_id AS id, m.email, coalesce(m.display_name, '') AS display_name, m.role, m.joined_at";

fn member_row((id, email, display_name, role, joined_at): MemberTuple) -> MemberRow {
    MemberRow { user: UserRow { id, email, display_name }, role, joined_at }
}

/// The member `user_id` of `account_id`, if a member.
pub async fn member(pool: &PgPool, account_id: AccountId, user_id: UserId) -> Result<Option<MemberRow>, sqlx::Error> {
    let row: Option<MemberTuple> = sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members m WHERE m.account_id = $1 AND m.user_id = $2"
    ))
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(member_row))
}

/// Where a page starts: after `n` rows (offset cursors), or after the row with this ordering
/// key (keyset cursors, which stay put when rows are added before them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window<K> {
    /// Skip this many rows (≥ 0) of the filtered list.
    Offset(i64),
    /// Start after the row whose ordering key is this; `None` is the first page.
    After(Option<K>),
}

/// The ordering key of a member in [`members`]: `(joined_at, user id)`.
pub type MemberKey = (DateTime<Utc>, UserId);

/// The ordering key of an invitation in [`invitations`]: `(created_at, id)`.
pub type InvitationKey = (DateTime<Utc>, InvitationId);

/// The `LIKE` pattern of a case-insensitive substring `search` (`\`, `%`, `_` taken literally).
fn substring_pattern(search: &str) -> String {
    format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// Binds the key when paging by key (`bind_key` binds it and returns the keyset condition)
/// or a non-zero offset, and returns the SQL of the window: the condition and the
/// `[OFFSET $n] LIMIT <limit>` suffix.
///
/// The limit is written into the statement, not bound: with `LIMIT $n` a prepared statement's
/// generic plan cannot know how few rows a page takes, costs the whole filtered list, and
/// loses to a custom plan, so PostgreSQL planned every page read again (0.14 ms of a members
/// page's 0.31 ms, by `pg_stat_statements` with `track_planning`). With the limit in the text
/// the generic plan is chosen after the first five executions. Limits are bounded by the API
/// (`first`), so there are few such statements per query shape; an offset is not (it stays a
/// parameter, and a page by key has none).
fn window_with<K>(
    args: &mut PgArguments,
    window: Window<K>,
    limit: i64,
    bind_key: impl FnOnce(&mut PgArguments, K) -> Result<String, sqlx::Error>,
) -> Result<(String, String), sqlx::Error> {
    let (condition, offset) = match window {
        Window::Offset(offset) => (String::new(), offset),
        Window::After(None) => (String::new(), 0),
        Window::After(Some(key)) => (bind_key(args, key)?, 0),
    };
    if offset == 0 {
        return Ok((condition, format!("LIMIT {limit}")));
    }
    bind(args, offset)?;
    Ok((condition, format!("OFFSET ${} LIMIT {limit}", args.len())))
}

/// [`window_with`] for a two-column key: `key_filter` formats the keyset condition from the
/// two parameters' numbers.
fn window<A, B>(args: &mut PgArguments, window: Window<(A, B)>, limit: i64, key_filter: impl Fn(usize, usize) -> String) -> Result<(String, String), sqlx::Error>
where
    for<'q> A: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    for<'q> B: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    window_with(args, window, limit, |args, (a, b)| {
        bind(args, a)?;
        bind(args, b)?;
        Ok(key_filter(args.len() - 1, args.len()))
    })
}

/// A page of `account_id`'s members ordered by join time (then user id), filtered by `role`
/// and by `search` (case-insensitive substring of email or display name), the page `window`
/// (by offset or after a [`MemberKey`]), at most `limit` rows; plus the filtered total.
///
/// The page walks the `(account_id[, role], joined_at, user_id)` index and stops after `limit`
/// rows (plus the offset); `search` uses the account's entries of the `members_search` trigram
/// index; the total comes from `member_counts` unless `search` is given (then it counts the
/// matches, not the account).
///
/// Errors: what the database reports.
pub async fn members_in(
    pool: &PgPool,
    account_id: AccountId,
    role_filter: Option<Role>,
    search: Option<&str>,
    page: Window<MemberKey>,
    limit: i64,
) -> Result<(Vec<MemberRow>, i64), sqlx::Error> {
    // One statement per filter combination: a generic plan of "$n IS NULL OR …" uses no index.
    let mut args = PgArguments::default();
    bind(&mut args, account_id)?;
    let mut filter = String::from("m.account_id = $1");
    if let Some(role) = role_filter {
        bind(&mut args, role)?;
        filter += &format!(" AND m.role = ${}", args.len());
    }
    let Some(search) = search else {
        let total = format!("SELECT coalesce(sum(n), 0)::int8 FROM member_counts m WHERE {filter}");
        let (after, slice) = window(&mut args, page, limit, |a, b| format!(" AND (m.joined_at, m.user_id) > (${a}, ${b})"))?;
        let select = format!("SELECT {MEMBER_COLUMNS} FROM members m WHERE {filter}{after} ORDER BY m.joined_at, m.user_id {slice}");
        let (rows, total) = page_and_total::<MemberTuple>(pool, "", &total, &select, "p.joined_at, p.id", args, true).await?;
        return Ok((rows.into_iter().map(member_row).collect(), total));
    };
    // `search` is `email || U+0001 || display_name` (migrations/…_member_search_on_members.sql):
    // a pattern without control characters matches it when it matches either. No email or
    // display name holds a control character, so a search with one matches no member.
    if search.chars().any(char::is_control) {
        return Ok((Vec::new(), 0));
    }
    bind(&mut args, substring_pattern(search))?;
    filter += &format!(" AND m.search ILIKE ${}", args.len());
    let hits = format!("WITH hits AS MATERIALIZED (SELECT {MEMBER_COLUMNS} FROM members m WHERE {filter})");
    let (after, slice) = window(&mut args, page, limit, |a, b| format!(" AND (joined_at, id) > (${a}, ${b})"))?;
    let select = format!("SELECT * FROM hits WHERE true{after} ORDER BY joined_at, id {slice}");
    // A prepared statement: its one table leaves the planner one index for the pattern (the
    // account's trigram entries) whatever plan it caches, and a named statement is one round
    // trip (an unnamed one waits for its Parse/Describe answer before Bind/Execute).
    let (rows, total) = page_and_total::<MemberTuple>(pool, &hits, "SELECT count(*) FROM hits", &select, "p.joined_at, p.id", args, true).await?;
    Ok((rows.into_iter().map(member_row).collect(), total))
}

/// A page of `account_id`'s audit log in position order, optionally only one `action`: the
/// page `window` (by offset, or after the entry at a position), at most `limit` entries; plus
/// the filtered total, from `audit_counts` (not by counting the account's entries). A page by
/// position starts where `audit_log_account` (or `audit_log_account_action`) has it, however
/// deep in the log.
///
/// Errors: what the database reports.
pub async fn audit_log(
    pool: &PgPool,
    account_id: AccountId,
    action: Option<&str>,
    window: Window<i64>,
    limit: i64,
) -> Result<(Vec<AuditRow>, i64), sqlx::Error> {
    // One statement per filter: a generic plan of "$n IS NULL OR …" uses no index.
    let mut args = PgArguments::default();
    bind(&mut args, account_id)?;
    let mut filter = String::from("account_id = $1");
    if let Some(action) = action {
        bind(&mut args, action.to_string())?;
        filter += &format!(" AND action = ${}", args.len());
    }
    let total = format!("SELECT coalesce(sum(n), 0)::int8 FROM audit_counts WHERE {filter}");
    let (after, slice) = window_with(&mut args, window, limit, |args, position| {
        bind(args, position)?;
        Ok(format!(" AND position > ${}", args.len()))
    })?;
    // `position` first: `page_and_total` tells an empty page by its first column.
    let select = format!(
        "SELECT position, occurred_at, action, actor_id, target, details, request_id
           FROM audit_log WHERE {filter}{after} ORDER BY position {slice}"
    );
    page_and_total(pool, "", &total, &select, "p.position", args, true).await
}
