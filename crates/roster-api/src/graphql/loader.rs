//! Per-request batching of per-row lookups (async-graphql's `DataLoader`): the users a page
//! names (`Invitation.invitedBy`, `cancelledBy`, `AuditEntry.actor`) and the invitations'
//! deliveries (`Invitation.delivery`) are read in one query each for the whole response, not
//! one per row.

use crate::app::App;
use async_graphql::dataloader::{DataLoader, Loader};
use crate::mail::outbox::DeliveryRow;
use roster_domain::{InvitationId, UserId};
use roster_projections::queries::UserRow;
use std::collections::HashMap;

/// Loads rows by key, many at once: users by id, deliveries by invitation id.
pub struct RowLoader(App);

impl Loader<UserId> for RowLoader {
    type Value = UserRow;
    /// The cause, for an `INTERNAL` error (the loader's error must be `Clone`).
    type Error = String;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, UserRow>, String> {
        self.0.users(keys).await.map_err(|e| format!("{e:?}"))
    }
}

impl Loader<InvitationId> for RowLoader {
    type Value = DeliveryRow;
    /// The cause, for an `INTERNAL` error.
    type Error = String;

    async fn load(&self, keys: &[InvitationId]) -> Result<HashMap<InvitationId, DeliveryRow>, String> {
        self.0.deliveries(keys).await.map_err(|e| format!("{e:?}"))
    }
}

/// A loader for one request (or one websocket connection). It batches without caching, so
/// a long-lived connection never answers from stale rows.
pub fn row_loader(app: App) -> DataLoader<RowLoader> {
    DataLoader::new(RowLoader(app), tokio::spawn)
}
