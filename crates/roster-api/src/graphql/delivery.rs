//! `Invitation.delivery`: what became of the invitation email of the current send.

use super::loader::RowLoader;
use super::{env, gql_err};
use crate::app::InvitationView;
use crate::error::ApiError;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, Result, SimpleObject};
use chrono::{DateTime, Utc};
use roster_domain::InvitationStatus;

/// Where an invitation email stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DeliveryStatus {
    /// Owed and not yet handed over (retries included: see `attempts` and `lastError`).
    Queued,
    /// Handed over to the mail server (or written to the mail directory).
    Sent,
    /// Given up: a permanent reply (5xx) or the retry limit; `lastError` says why.
    Failed,
    /// Not emailed: mail is off, or the invitation was cancelled, accepted or expired before
    /// the email left. The link was shown to the inviter either way.
    NotSent,
}

/// The delivery of the current send's email (a resend starts a new one).
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct Delivery {
    pub status: DeliveryStatus,
    /// Attempts made for the current send.
    pub attempts: i32,
    /// The last failed attempt's SMTP reply or connection error.
    pub last_error: Option<String>,
    /// When the mail server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

/// `invitation`'s delivery, through the request's loader. An invitation the mailer has not read
/// yet is `QUEUED` while pending and mail is on, else `NOT_SENT`.
pub(super) async fn delivery(ctx: &Context<'_>, invitation: &InvitationView) -> Result<Delivery> {
    let loader = ctx.data_unchecked::<DataLoader<RowLoader>>();
    let row = loader.load_one(invitation.row.id).await.map_err(|cause| gql_err(ctx, ApiError::Internal(cause)))?;
    Ok(match row {
        Some(row) => Delivery {
            status: match row.status.as_str() {
                "QUEUED" => DeliveryStatus::Queued,
                "SENT" => DeliveryStatus::Sent,
                "FAILED" => DeliveryStatus::Failed,
                _ => DeliveryStatus::NotSent,
            },
            attempts: row.attempts,
            last_error: row.last_error,
            sent_at: row.sent_at,
        },
        None => {
            let (app, _) = env(ctx);
            let owed = app.config().mail.is_on() && invitation.status() == InvitationStatus::Pending;
            let status = if owed { DeliveryStatus::Queued } else { DeliveryStatus::NotSent };
            Delivery { status, attempts: 0, last_error: None, sent_at: None }
        }
    })
}
