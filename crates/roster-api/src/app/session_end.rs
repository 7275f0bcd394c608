//! The end of a subscriber's session while their subscription runs: a subscription outlives
//! the session check made when it started, and a password reset after it ends the session
//! (see `App::identify`) and so the subscription too.

use super::ownership::session_counts;
use super::App;
use roster_domain::UserId;
use std::future::Future;
use tokio::sync::broadcast::error::RecvError;

impl App {
    /// Resolves once `user`'s session issued at `issued_ms` (Unix milliseconds) has ended.
    ///
    /// The rule of [`App::identify`] decides (`session_counts`); the credential is read
    /// once when this starts and again only when the events the tail reads from then on may
    /// hold a reset: a `PasswordChanged` on the user's stream (written in one transaction
    /// with the new `sessions_valid_after`), a stretch the tail did not hand over, or a
    /// receiver that lagged. A failed read is asked again at the next batch, so a database
    /// outage does not end a subscription (its reader survives outages too).
    pub(super) fn session_end(&self, user: UserId, issued_ms: i64) -> impl Future<Output = ()> + Send + 'static {
        let (tail, pool) = (self.0.tail.clone(), self.0.pool.clone());
        async move {
            // Taken before the first read: a reset committed after that read is in a batch.
            let mut batches = tail.batches();
            let mut read_to = *tail.head().borrow();
            let stream_id = user.to_string();
            let mut recheck = true;
            loop {
                if recheck {
                    match session_counts(&pool, user, issued_ms).await {
                        Ok(false) => return,
                        Ok(true) => recheck = false,
                        Err(err) => tracing::warn!(%err, "session check of a subscription failed: asked again at the next batch"),
                    }
                }
                match batches.recv().await {
                    Ok(batch) => {
                        let reset = batch.events.iter().any(|e| e.aggregate_type == "User" && e.event_type == "PasswordChanged" && e.aggregate_id == stream_id);
                        recheck |= reset || batch.after != read_to;
                        read_to = batch.upto;
                    }
                    Err(RecvError::Lagged(_)) => recheck = true,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        }
    }
}
