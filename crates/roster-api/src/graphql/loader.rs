//! Per-request batching of per-row lookups (async-graphql's `DataLoader`): the users a page
//! names (`Invitation.invitedBy`, `cancelledBy`, `AuditEntry.actor`) are read in one query for
//! the whole response, not one per row.

use crate::app::App;
use async_graphql::dataloader::{DataLoader, Loader};
use roster_domain::UserId;
use roster_projections::queries::UserRow;
use std::collections::HashMap;

/// Loads users by id, many at once.
pub struct UserLoader(App);

impl Loader<UserId> for UserLoader {
    type Value = UserRow;
    /// The cause, for an `INTERNAL` error (the loader's error must be `Clone`).
    type Error = String;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, UserRow>, String> {
        self.0.users(keys).await.map_err(|e| format!("{e:?}"))
    }
}

/// A loader for one request (or one websocket connection). It batches without caching, so
/// a long-lived connection never answers from stale rows.
pub fn user_loader(app: App) -> DataLoader<UserLoader> {
    DataLoader::new(UserLoader(app), tokio::spawn)
}
