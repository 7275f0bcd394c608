//! Invitation-email deliveries: the mailer records each attempt's outcome through the account
//! (an event in its stream, for audit consumers), and queries read the outbox's view.

use super::{App, RequestContext, SessionCheck};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::mail::outbox::{self, DeliveryRow};
use roster_domain::account::EmailOutcome;
use roster_domain::{AccountCommand, AccountId, InvitationId};
use roster_store::Writer;
use sqlx::PgPool;
use std::collections::HashMap;

impl App {
    /// Records one delivery attempt of send `send_count` of `invitation_id` (no user acts: the
    /// events' actor is empty and their request id names the mailer).
    ///
    /// Errors: `NOT_FOUND` (account, invitation), `VALIDATION` (`sendCount`), store errors.
    pub async fn record_email(&self, account_id: AccountId, invitation_id: InvitationId, send_count: i32, outcome: EmailOutcome) -> ApiResult<()> {
        let ctx = RequestContext {
            request_id: format!("mailer-{}", uuid::Uuid::new_v4()),
            client_request_id: None,
            ip: None,
            user_agent: None,
            caller: Caller::Anonymous,
            session: SessionCheck::settled(),
        };
        let now = self.now();
        let send_count = u32::try_from(send_count).unwrap_or(0);
        self.execute(&ctx, account_id, None, now, || AccountCommand::RecordEmail { invitation_id, send_count, outcome: outcome.clone(), now })
            .await
    }

    /// The deliveries the mailer has recorded for `ids`, by invitation.
    ///
    /// Errors: `INTERNAL` (database).
    pub async fn deliveries(&self, ids: &[InvitationId]) -> ApiResult<HashMap<InvitationId, DeliveryRow>> {
        let rows = outbox::deliveries(&self.0.pool, ids).await?;
        Ok(rows.into_iter().map(|row| (row.invitation_id, row)).collect())
    }

    /// The pool (for the mailer).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    /// Changes when this process commits events (for the mailer's wake-ups).
    pub(crate) fn committed(&self) -> tokio::sync::watch::Receiver<i64> {
        Writer::committed(&self.0.writer)
    }
}
