//! GraphQL object types.

use super::connection::{ListArgs, ListCursor, LogCursor, Page};
use super::loader::PageUsers;
use super::{env, gql_err, run};
use crate::error::ApiError;
use crate::app::{AccountView, InvitationView, InviteIssued, PreviewView, SessionView};
use async_graphql::{Context, Enum, Json, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use roster_projections::queries::{AuditRow, MemberRow, UserRow};
use roster_store::StoredEvent;
use std::sync::Arc;
use roster_domain::Permission as Feature;
use roster_domain::text::{MAX_ACTION_LEN, MAX_SEARCH_LEN};
use roster_domain::{Role, Text, UserId};

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

/// A user by id: from the users read with the page, else read now. Only a single invitation
/// (a command's payload) misses the page: one read, without waiting out a loader's window for
/// keys that will not come (1 ms on every such payload).
async fn load_user(ctx: &Context<'_>, id: UserId, page: &PageUsers) -> Result<User> {
    if let Some(user) = page.get(id) {
        return Ok(user.clone().into());
    }
    let (app, _) = env(ctx);
    let mut users = app.users(&[id]).await.map_err(|e| gql_err(ctx, e))?;
    let user = users.remove(&id).ok_or_else(|| gql_err(ctx, ApiError::Internal(format!("user {id} missing from read model"))))?;
    Ok(user.into())
}

async fn load_optional_user(ctx: &Context<'_>, id: Option<UserId>, page: &PageUsers) -> Result<Option<User>> {
    match id {
        Some(id) => load_user(ctx, id, page).await.map(Some),
        None => Ok(None),
    }
}

/// An account (tenant) as seen by one of its members.
pub struct Account(pub AccountView);

/// A member of an account.
#[derive(SimpleObject)]
#[graphql(name = "Member")]
pub struct Member {
    pub user: User,
    pub role: GqlRole,
    pub joined_at: DateTime<Utc>,
}

impl From<MemberRow> for Member {
    fn from(m: MemberRow) -> Self {
        Self { user: m.user.into(), role: m.role.into(), joined_at: m.joined_at }
    }
}

#[Object(name = "Account")]
impl Account {
    async fn id(&self) -> ID {
        ID(self.0.row.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.row.name
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.row.created_at
    }
    /// The signed-in user's role in this account.
    async fn viewer_role(&self) -> GqlRole {
        self.0.viewer_role.into()
    }

    /// Members by join time; `role` filters by role, `search` by email or name (substring,
    /// case-insensitive; a clean text of at most 254 characters, blank for none). Cursors are
    /// keyset cursors: a page holds its place while members join.
    ///
    /// Errors: `FORBIDDEN` (a role that may not read Members, per the permission matrix);
    /// `VALIDATION` on `first`, `after` or `search` (control or bidi characters, too long).
    #[graphql(complexity = "super::limits::page_cost(first, child_complexity)")]
    async fn members(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>, role: Option<GqlRole>, search: Option<String>) -> Result<Page<Member>> {
        run(ctx, |app, _| async move {
            let page = ListArgs::parse(first, after.as_deref())?;
            let search = Text::parse_filter(search.as_deref(), "search", MAX_SEARCH_LEN)?;
            let (rows, total) = app.members(&self.0, role.map(Into::into), search.as_ref(), ListCursor::window(page.after), page.fetch()).await?;
            Ok(page.connection(rows, total, |m| (m.joined_at, m.user.id.into()), Member::from))
        })
        .await
    }

    /// Invitations, newest first; `status` filters by the status at the time of the query.
    /// Cursors are keyset cursors: invitations sent while paging do not shift the next page.
    ///
    /// Errors: `FORBIDDEN` (as `members`); `VALIDATION` on `first` or `after`.
    #[graphql(complexity = "super::limits::page_cost(first, child_complexity)")]
    async fn invitations(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>, status: Option<GqlInvitationStatus>) -> Result<Page<Invitation>> {
        let (inviters, cancellers) = (PageUsers::wanted(ctx, "invitedBy"), PageUsers::wanted(ctx, "cancelledBy"));
        run(ctx, |app, _| async move {
            let page = ListArgs::parse(first, after.as_deref())?;
            let (rows, total) = app.invitations(&self.0, status.map(Into::into), ListCursor::window(page.after), page.fetch()).await?;
            let named: Vec<UserId> = rows.iter().flat_map(|i| [inviters.then_some(i.row.invited_by), i.row.cancelled_by.filter(|_| cancellers)]).flatten().collect();
            let users = PageUsers::read(app, named).await?;
            Ok(page.connection(rows, total, |i| (i.row.created_at, i.row.id.into()), |i| Invitation(i, users.clone())))
        })
        .await
    }

    /// The account's audit log, oldest first (Admins only: `FORBIDDEN` otherwise). `action`
    /// filters by action, e.g. `member.role_changed` (a clean text of at most 100 characters,
    /// blank for none). Cursors name an entry's position: a page holds its place while entries
    /// are recorded, and page 1,000 costs what page 1 costs.
    ///
    /// Errors: `FORBIDDEN`; `VALIDATION` on `first`, `after` or `action`.
    #[graphql(complexity = "super::limits::page_cost(first, child_complexity)")]
    async fn audit_log(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>, action: Option<String>) -> Result<Page<AuditEntry>> {
        let actors = PageUsers::wanted(ctx, "actor");
        run(ctx, |app, _| async move {
            let page = ListArgs::<LogCursor>::parse(first, after.as_deref())?;
            let action = Text::parse_filter(action.as_deref(), "action", MAX_ACTION_LEN)?;
            let (rows, total) = app.audit_log(&self.0, action.as_ref(), LogCursor::window(page.after), page.fetch()).await?;
            let named: Vec<UserId> = rows.iter().filter_map(|r| r.actor_id.filter(|_| actors)).collect();
            let users = PageUsers::read(app, named).await?;
            Ok(page.connection(rows, total, |r| r.position, |r| AuditEntry(r, users.clone())))
        })
        .await
    }
}

/// An invitation, with its status at the time of the query, and the users read with its page
/// (empty outside a page).
pub struct Invitation(pub InvitationView, pub PageUsers);

#[Object(name = "Invitation")]
impl Invitation {
    async fn id(&self) -> ID {
        ID(self.0.row.id.to_string())
    }
    async fn account_id(&self) -> ID {
        ID(self.0.row.account_id.to_string())
    }
    async fn email(&self) -> &str {
        &self.0.row.email
    }
    async fn role(&self) -> GqlRole {
        self.0.row.role.into()
    }
    async fn status(&self) -> GqlInvitationStatus {
        self.0.status().into()
    }
    /// E.g. "Invitation sent for Security Engineer", "Invitation expired", "Joined as Admin".
    async fn status_text(&self) -> String {
        self.0.status().text(self.0.row.role)
    }
    async fn invited_by(&self, ctx: &Context<'_>) -> Result<User> {
        load_user(ctx, self.0.row.invited_by, &self.1).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.row.created_at
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.row.expires_at
    }
    async fn last_sent_at(&self) -> DateTime<Utc> {
        self.0.row.last_sent_at
    }
    /// How many times it was sent, the first send included.
    async fn send_count(&self) -> i32 {
        self.0.row.send_count
    }
    /// Who cancelled it, when cancelled.
    async fn cancelled_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        load_optional_user(ctx, self.0.row.cancelled_by, &self.1).await
    }
    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.row.cancelled_at
    }
    /// Why it was cancelled: "cancelled" or "inviter removed".
    async fn cancel_reason(&self) -> Option<&str> {
        self.0.row.cancel_reason.as_deref()
    }
    /// What became of the current send's email.
    async fn delivery(&self, ctx: &Context<'_>) -> Result<super::delivery::Delivery> {
        super::delivery::delivery(ctx, &self.0).await
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

impl From<PreviewView> for InvitationPreview {
    fn from(p: PreviewView) -> Self {
        Self {
            account_name: p.account_name,
            invited_by_name: p.invited_by_name,
            role: p.role.into(),
            email: p.email,
            status: p.status.into(),
            expires_at: p.expires_at,
        }
    }
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

impl From<Role> for RoleInfo {
    fn from(role: Role) -> Self {
        Self {
            role: role.into(),
            display_name: role.display_name().to_string(),
            permissions: Feature::ALL
                .into_iter()
                .map(|feature| Permission { feature: feature.label().to_string(), access: role.access(feature).as_str().to_string() })
                .collect(),
            can_grant: role.can_grant().iter().map(|r| (*r).into()).collect(),
        }
    }
}

/// A session: the bearer token for `Authorization: Bearer <token>`.
#[derive(SimpleObject)]
pub struct SessionPayload {
    pub token: String,
    pub user: User,
    /// The account the session was opened for (sign-up, accept).
    pub account: Option<Account>,
}

impl From<SessionView> for SessionPayload {
    fn from(s: SessionView) -> Self {
        Self { token: s.token, user: s.user.into(), account: s.account.map(Account) }
    }
}

/// An invitation and its one-time link (shown once: only its digest is stored).
#[derive(SimpleObject)]
pub struct InvitePayload {
    pub invitation: Invitation,
    pub invite_link: String,
}

impl From<InviteIssued> for InvitePayload {
    fn from(i: InviteIssued) -> Self {
        Self { invitation: Invitation(i.invitation, PageUsers::default()), invite_link: i.link }
    }
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
    /// Every account the user belongs to, with the user's role there as `viewerRole`. Costed
    /// as a page of 50 (the list is not paged; `createAccount` is rate-limited per user).
    #[graphql(complexity = "super::limits::page_cost(None, child_complexity)")]
    pub accounts: Vec<Account>,
}

/// One audit-log entry, and the users read with its page.
pub struct AuditEntry(pub AuditRow, pub PageUsers);

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
        load_optional_user(ctx, self.0.actor_id, &self.1).await
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

/// One event of the log, as the audit feed carries it. Shared: a subscription's event is the
/// same allocation for every subscriber.
pub struct Event(pub Arc<StoredEvent>);

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
    async fn payload(&self) -> Json<&serde_json::Value> {
        Json(&self.0.payload)
    }
    async fn metadata(&self) -> Json<&serde_json::Value> {
        Json(&self.0.metadata)
    }
}

