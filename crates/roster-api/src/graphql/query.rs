//! `Query`. Each resolver makes one call to the application layer (`crate::app`).

use super::connection::{PageArgs, Page, TotalCount};
use super::types::{Account, Event, InvitationPreview, RoleInfo, User, Viewer};
use super::{parse_id, run};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, Result, ID};
use roster_domain::Role;

/// The root of all reads.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The signed-in user and their accounts; `null` without a valid token.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Option<Viewer>> {
        run(ctx, |app, req| async move {
            let viewer = app.viewer(req).await?;
            Ok(viewer.map(|(user, accounts)| Viewer { user: User::from(user), accounts: accounts.into_iter().map(Account).collect() }))
        })
        .await
    }

    /// An account the viewer belongs to.
    ///
    /// Errors: `UNAUTHENTICATED`, `NOT_FOUND`, `FORBIDDEN` (another tenant's), `VALIDATION`.
    async fn account(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Account>> {
        run(ctx, |app, req| async move { Ok(Some(Account(app.account(req, parse_id(&id, "id")?).await?))) }).await
    }

    /// What an invite link is for, for the accept page. Public: the token is the credential.
    ///
    /// Errors: `INVALID_TOKEN` (malformed, unknown, rotated); `RATE_LIMITED`.
    async fn invitation_preview(&self, ctx: &Context<'_>, token: String) -> Result<Option<InvitationPreview>> {
        run(ctx, |app, req| async move { Ok(Some(app.preview(req, &token).await?.into())) }).await
    }

    /// Every role with its permissions and the roles it may grant (the permission matrix).
    async fn roles(&self) -> Vec<RoleInfo> {
        Role::ALL.into_iter().map(RoleInfo::from).collect()
    }

    /// Events in global order after the position `after` (a cursor: `endCursor` of the last
    /// page), `first` of them (default 50, at most 500). Admins read their account's
    /// (`accountId` required); the operator token reads all.
    ///
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`, `VALIDATION` (`after`, `first`, `accountId`).
    #[graphql(complexity = "super::limits::page_cost(first, child_complexity)")]
    async fn events(&self, ctx: &Context<'_>, after: Option<String>, first: Option<i32>, account_id: Option<ID>) -> Result<Page<Event>> {
        run(ctx, |app, req| async move {
            let account_id = account_id.map(|id| parse_id(&id, "accountId")).transpose()?;
            let page = PageArgs::parse(first, after.as_deref())?;
            let (limit, after) = (page.limit(), page.after.map_or(0, |c| c.get()));
            let page = app.events(req, account_id, after, limit).await?;
            let mut connection = Connection::with_additional_fields(after > 0, page.has_next, TotalCount { total_count: page.total });
            connection.edges.extend(page.events.into_iter().map(|e| Edge::new(e.position.to_string(), Event(std::sync::Arc::new(e)))));
            Ok(connection)
        })
        .await
    }
}
