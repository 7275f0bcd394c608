//! Reads of the read models, for the API. Every read that concerns an account takes the
//! account id, so one tenant's rows are never returned for another's.
//!
//! Paging is by offset and limit (the API wraps them in Relay connections); lists come in a
//! stable order so offsets stay meaningful between pages.

use chrono::{DateTime, Utc};
use roster_domain::account::InvitationState;
use roster_domain::{InvitationStatus, Role};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// An account.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AccountRow {
    /// The account id (also its event stream's aggregate id).
    pub id: Uuid,
    /// 1–100 characters, trimmed.
    pub name: String,
    /// When `AccountCreated` was decided.
    pub created_at: DateTime<Utc>,
}

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    /// The user id (the `User` stream's aggregate id).
    pub id: Uuid,
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
    pub id: Uuid,
    /// The account the invitation is to.
    pub account_id: Uuid,
    /// The invited, normalised email.
    pub email: String,
    /// The role the invitee gets on accepting.
    pub role: Role,
    /// Pending, accepted or cancelled; expiry is derived, see [`InvitationRow::status`].
    pub state: InvitationState,
    /// The member who sent the first invitation.
    pub invited_by: Uuid,
    /// When it was first sent.
    pub created_at: DateTime<Utc>,
    /// When the current link stops working (last send + `ROSTER_INVITE_TTL`).
    pub expires_at: DateTime<Utc>,
    /// When it was last sent.
    pub last_sent_at: DateTime<Utc>,
    /// How many times it was sent, the first send included.
    pub send_count: i32,
    /// Who cancelled it, when cancelled.
    pub cancelled_by: Option<Uuid>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// "cancelled" or "inviter removed".
    pub cancel_reason: Option<String>,
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
    pub actor_id: Option<Uuid>,
    /// Whom it concerns: an email, or the account name for `account.created`.
    pub target: Option<String>,
    /// Action-specific facts, e.g. `{"from": "GUEST", "to": "ADMIN"}`.
    pub details: Value,
    /// The request that caused the event.
    pub request_id: Option<String>,
}

fn role(text: &str) -> Result<Role, sqlx::Error> {
    text.parse().map_err(|e: roster_domain::DomainError| sqlx::Error::Decode(e.to_string().into()))
}

/// The account `id`, if it exists.
pub async fn account(pool: &PgPool, id: Uuid) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, created_at FROM accounts WHERE id = $1").bind(id).fetch_optional(pool).await
}

/// The role of `user_id` in `account_id`, if a member.
pub async fn member_role(pool: &PgPool, account_id: Uuid, user_id: Uuid) -> Result<Option<Role>, sqlx::Error> {
    let text: Option<String> = sqlx::query_scalar("SELECT role FROM members WHERE account_id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    text.as_deref().map(role).transpose()
}

/// Every account `user_id` belongs to, with the role there, oldest membership first.
pub async fn accounts_of(pool: &PgPool, user_id: Uuid) -> Result<Vec<(AccountRow, Role)>, sqlx::Error> {
    let rows: Vec<(Uuid, String, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT a.id, a.name, a.created_at, m.role FROM members m JOIN accounts a ON a.id = m.account_id
          WHERE m.user_id = $1 ORDER BY m.joined_at, a.id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(id, name, created_at, r)| Ok((AccountRow { id, name, created_at }, role(&r)?)))
        .collect()
}

/// The user `id`, if registered.
pub async fn user(pool: &PgPool, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, display_name FROM users WHERE id = $1").bind(id).fetch_optional(pool).await
}

/// The user registered with normalised `email`, if any.
pub async fn user_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, display_name FROM users WHERE email = $1").bind(email).fetch_optional(pool).await
}

/// A page of `account_id`'s members ordered by join time, filtered by `role` and by `search`
/// (case-insensitive substring of email or display name), plus the filtered total.
pub async fn members(
    pool: &PgPool,
    account_id: Uuid,
    role_filter: Option<Role>,
    search: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<MemberRow>, i64), sqlx::Error> {
    let pattern = search.map(|s| format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
    let filter = "FROM members m JOIN users u ON u.id = m.user_id
                  WHERE m.account_id = $1 AND ($2::text IS NULL OR m.role = $2)
                    AND ($3::text IS NULL OR u.email ILIKE $3 OR u.display_name ILIKE $3)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {filter}"))
        .bind(account_id)
        .bind(role_filter.map(Role::as_str))
        .bind(&pattern)
        .fetch_one(pool)
        .await?;
    let rows: Vec<(Uuid, String, String, String, DateTime<Utc>)> = sqlx::query_as(&format!(
        "SELECT u.id, u.email, u.display_name, m.role, m.joined_at {filter}
          ORDER BY m.joined_at, u.id OFFSET $4 LIMIT $5"
    ))
    .bind(account_id)
    .bind(role_filter.map(Role::as_str))
    .bind(&pattern)
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let members = rows
        .into_iter()
        .map(|(id, email, display_name, r, joined_at)| {
            Ok(MemberRow { user: UserRow { id, email, display_name }, role: role(&r)?, joined_at })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((members, total))
}

type InvitationTuple = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    Uuid,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
    i32,
    Option<Uuid>,
    Option<DateTime<Utc>>,
    Option<String>,
);

const INVITATION_COLUMNS: &str = "id, account_id, email, role, state, invited_by, created_at, expires_at,
    last_sent_at, send_count, cancelled_by, cancelled_at, cancel_reason";

fn invitation_row(t: InvitationTuple) -> Result<InvitationRow, sqlx::Error> {
    let state = match t.4.as_str() {
        "PENDING" => InvitationState::Pending,
        "ACCEPTED" => InvitationState::Accepted,
        "CANCELLED" => InvitationState::Cancelled,
        other => return Err(sqlx::Error::Decode(format!("unknown invitation state {other}").into())),
    };
    Ok(InvitationRow {
        id: t.0,
        account_id: t.1,
        email: t.2,
        role: role(&t.3)?,
        state,
        invited_by: t.5,
        created_at: t.6,
        expires_at: t.7,
        last_sent_at: t.8,
        send_count: t.9,
        cancelled_by: t.10,
        cancelled_at: t.11,
        cancel_reason: t.12,
    })
}

/// The invitation `id`, if it exists.
pub async fn invitation(pool: &PgPool, id: Uuid) -> Result<Option<InvitationRow>, sqlx::Error> {
    let row: Option<InvitationTuple> =
        sqlx::query_as(&format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(invitation_row).transpose()
}

/// A page of `account_id`'s invitations, newest first, with the status at `now` equal to
/// `status` when given, plus the filtered total.
pub async fn invitations(
    pool: &PgPool,
    account_id: Uuid,
    status: Option<InvitationStatus>,
    now: DateTime<Utc>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<InvitationRow>, i64), sqlx::Error> {
    // EXPIRED is PENDING past expires_at; PENDING excludes those.
    let filter = "FROM invitations WHERE account_id = $1 AND (
          $2::text IS NULL
       OR ($2 = 'EXPIRED' AND state = 'PENDING' AND expires_at <= $3)
       OR ($2 = 'PENDING' AND state = 'PENDING' AND expires_at > $3)
       OR ($2 IN ('ACCEPTED', 'CANCELLED') AND state = $2))";
    let status = status.map(InvitationStatus::as_str);
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {filter}"))
        .bind(account_id)
        .bind(status)
        .bind(now)
        .fetch_one(pool)
        .await?;
    let rows: Vec<InvitationTuple> = sqlx::query_as(&format!(
        "SELECT {INVITATION_COLUMNS} {filter} ORDER BY created_at DESC, id OFFSET $4 LIMIT $5"
    ))
    .bind(account_id)
    .bind(status)
    .bind(now)
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let rows = rows.into_iter().map(invitation_row).collect::<Result<_, _>>()?;
    Ok((rows, total))
}

/// A page of `account_id`'s audit log in position order after `after`, optionally only one
/// `action`, plus the filtered total.
pub async fn audit_log(
    pool: &PgPool,
    account_id: Uuid,
    action: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<AuditRow>, i64), sqlx::Error> {
    let filter = "FROM audit_log WHERE account_id = $1 AND ($2::text IS NULL OR action = $2)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {filter}"))
        .bind(account_id)
        .bind(action)
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT position, occurred_at, action, actor_id, target, details, request_id {filter}
          ORDER BY position OFFSET $3 LIMIT $4"
    ))
    .bind(account_id)
    .bind(action)
    .bind(offset)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}
