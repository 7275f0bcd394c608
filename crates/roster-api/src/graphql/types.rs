//! GraphQL object types.

use super::connection::{offset_connection, offset_page, Page};
use super::{env, gql_err};
use crate::error::ApiError;
use async_graphql::{Context, Enum, Json, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use roster_projections::queries::{self, AccountRow, AuditRow, InvitationRow, UserRow};
use roster_store::StoredEvent;

/// A member's role in an account.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "roster_domain::Role", name = "Role")]
pub enum GqlRole {
    Admin,
    SecurityEngineer,
    Developer,
    Guest,
}

/// An invitation's status; `EXPIRED` is a pending invitation past its `expiresAt`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "roster_domain::InvitationStatus", name = "InvitationStatus")]
pub enum GqlInvitationStatus {
    Pending,
    Accepted,
    Cancelled,
    Expired,
}

/// A person.
#[derive(SimpleObject, Clone)]
#[graphql(name = "User")]
pub struct User {
    pub id: ID,
    /// Normalised (trimmed, lower-case) email.
    pub email: String,
    pub display_name: String,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        Self { id: ID(u.id.to_string()), email: u.email, display_name: u.display_name }
    }
}

pub(crate) async fn load_user(ctx: &Context<'_>, id: uuid::Uuid) -> Result<User> {
    let (state, _) = env(ctx);
    let row = queries::user(&state.pool, id).await.map_err(|e| gql_err(ctx, e.into()))?;
    // A user row exists for every user id an event names; its absence is a broken read model.
    row.map(User::from).ok_or_else(|| gql_err(ctx, ApiError::Internal(format!("user {id} missing from read model"))))
}

/// An account (tenant) as seen by one of its members.
pub struct Account {
    pub row: AccountRow,
    pub viewer_role: roster_domain::Role,
}

/// A member of an account.
#[derive(SimpleObject)]
#[graphql(name = "Member")]
pub struct Member {
    pub user: User,
    pub role: GqlRole,
    pub joined_at: DateTime<Utc>,
}

#[Object(name = "Account")]
impl Account {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.row.name
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    /// The signed-in user's role in this account.
    async fn viewer_role(&self) -> GqlRole {
        self.viewer_role.into()
    }

    /// Members by join time; `role` filters by role, `search` by email or name (substring,
    /// case-insensitive).
    async fn members(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>, role: Option<GqlRole>, search: Option<String>) -> Result<Page<Member>> {
        let (state, _) = env(ctx);
        let (offset, limit) = offset_page(first, after).map_err(|e| gql_err(ctx, e))?;
        let (rows, total) = queries::members(&state.pool, self.row.id, role.map(Into::into), search.as_deref(), offset, limit)
            .await
            .map_err(|e| gql_err(ctx, e.into()))?;
        let members = rows
            .into_iter()
            .map(|m| Member { user: m.user.into(), role: m.role.into(), joined_at: m.joined_at })
            .collect();
        Ok(offset_connection(members, offset, total))
    }

    /// Invitations, newest first; `status` filters by the status at the time of the query.
    async fn invitations(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>, status: Option<GqlInvitationStatus>) -> Result<Page<Invitation>> {
        let (state, _) = env(ctx);
        let (offset, limit) = offset_page(first, after).map_err(|e| gql_err(ctx, e))?;
        let now = state.clock.now();
        let (rows, total) = queries::invitations(&state.pool, self.row.id, status.map(Into::into), now, offset, limit)
            .await
            .map_err(|e| gql_err(ctx, e.into()))?;
        Ok(offset_connection(rows.into_iter().map(|row| Invitation { row, now }).collect(), offset, total))
    }

    /// The account's audit log, oldest first (Admins only: `FORBIDDEN` otherwise). `action`
    /// filters by action, e.g. `member.role_changed`.
    async fn audit_log(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>, action: Option<String>) -> Result<Page<AuditEntry>> {
        let (state, _) = env(ctx);
        if self.viewer_role != roster_domain::Role::Admin {
            return Err(gql_err(ctx, roster_domain::DomainError::Forbidden.into()));
        }
        let (offset, limit) = offset_page(first, after).map_err(|e| gql_err(ctx, e))?;
        let (rows, total) = queries::audit_log(&state.pool, self.row.id, action.as_deref(), offset, limit)
            .await
            .map_err(|e| gql_err(ctx, e.into()))?;
        Ok(offset_connection(rows.into_iter().map(AuditEntry).collect(), offset, total))
    }
}

/// An invitation, with its status at the time of the query.
pub struct Invitation {
    pub row: InvitationRow,
    pub now: DateTime<Utc>,
}

#[Object(name = "Invitation")]
impl Invitation {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    async fn account_id(&self) -> ID {
        ID(self.row.account_id.to_string())
    }
    async fn email(&self) -> &str {
        &self.row.email
    }
    async fn role(&self) -> GqlRole {
        self.row.role.into()
    }
    async fn status(&self) -> GqlInvitationStatus {
        self.row.status(self.now).into()
    }
    /// E.g. "Invitation sent for Security Engineer", "Invitation expired", "Joined as Admin".
    async fn status_text(&self) -> String {
        self.row.status(self.now).text(self.row.role)
    }
    async fn invited_by(&self, ctx: &Context<'_>) -> Result<User> {
        load_user(ctx, self.row.invited_by).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.row.expires_at
    }
    async fn last_sent_at(&self) -> DateTime<Utc> {
        self.row.last_sent_at
    }
    /// How many times it was sent, the first send included.
    async fn send_count(&self) -> i32 {
        self.row.send_count
    }
    /// Who cancelled it, when cancelled.
    async fn cancelled_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.row.cancelled_by {
            Some(id) => load_user(ctx, id).await.map(Some),
            None => Ok(None),
        }
    }
    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.row.cancelled_at
    }
    /// Why it was cancelled: "cancelled" or "inviter removed".
    async fn cancel_reason(&self) -> Option<&str> {
        self.row.cancel_reason.as_deref()
    }
}

/// What the accept page shows before the invitee accepts.
#[derive(SimpleObject)]
pub struct InvitationPreview {
    pub account_name: String,
    pub invited_by_name: String,
    pub role: GqlRole,
    pub email: String,
    pub status: GqlInvitationStatus,
    pub expires_at: DateTime<Utc>,
}

/// A role with its permissions and the roles it may grant.
#[derive(SimpleObject)]
pub struct RoleInfo {
    pub role: GqlRole,
    /// E.g. "Security Engineer".
    pub display_name: String,
    pub permissions: Vec<Permission>,
    pub can_grant: Vec<GqlRole>,
}

/// One feature's access: `READ_WRITE`, `READ` or `NONE`.
#[derive(SimpleObject)]
pub struct Permission {
    pub feature: String,
    pub access: String,
}

/// A session: the bearer token for `Authorization: Bearer <token>`.
#[derive(SimpleObject)]
pub struct SessionPayload {
    pub token: String,
    pub user: User,
    /// The account the session was opened for (sign-up, accept).
    pub account: Option<Account>,
}

/// An invitation and its one-time link (shown once: only its digest is stored).
#[derive(SimpleObject)]
pub struct InvitePayload {
    pub invitation: Invitation,
    pub invite_link: String,
}

/// The member that was removed.
#[derive(SimpleObject)]
pub struct RemoveMemberPayload {
    pub user_id: ID,
    pub account_id: ID,
}

/// The signed-in user and their accounts.
#[derive(SimpleObject)]
pub struct Viewer {
    pub user: User,
    /// Every account the user belongs to, with the user's role there as `viewerRole`.
    pub accounts: Vec<Account>,
}

/// One audit-log entry.
pub struct AuditEntry(pub AuditRow);

#[Object(name = "AuditEntry")]
impl AuditEntry {
    /// The global position of the event behind this entry.
    async fn position(&self) -> String {
        self.0.position.to_string()
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// E.g. `member.invited`, `invitation.resent`, `member.role_changed`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// Who did it; `null` for the system.
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.actor_id {
            Some(id) => load_user(ctx, id).await.map(Some),
            None => Ok(None),
        }
    }
    /// Whom or what it concerns, usually an email.
    async fn target(&self) -> Option<&str> {
        self.0.target.as_deref()
    }
    /// Action-specific facts, e.g. `{"from": "DEVELOPER", "to": "ADMIN"}`.
    async fn details(&self) -> Json<serde_json::Value> {
        Json(self.0.details.clone())
    }
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
}

/// One event of the log, as the audit feed carries it.
pub struct Event(pub StoredEvent);

#[Object(name = "Event")]
impl Event {
    /// Global position (a decimal string; compare as integers).
    async fn position(&self) -> String {
        self.0.position.to_string()
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at()
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    async fn account_id(&self) -> Option<ID> {
        self.0.account_id.map(|id| ID(id.to_string()))
    }
    async fn aggregate_type(&self) -> &str {
        &self.0.aggregate_type
    }
    async fn aggregate_id(&self) -> &str {
        &self.0.aggregate_id
    }
    /// Position within its stream, from 1.
    async fn sequence(&self) -> i64 {
        self.0.sequence
    }
    /// E.g. `MemberInvited`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// Semantic version of the payload shape (old versions are upcast on read).
    async fn version(&self) -> &str {
        &self.0.event_version
    }
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }
    async fn metadata(&self) -> Json<serde_json::Value> {
        Json(self.0.metadata.clone())
    }
}

