//! `NOTIFY` after commit, not inside it.
//!
//! **Why.** A transaction that sends a notification takes one database-wide lock in
//! PostgreSQL's commit (`PreCommit_Notify`) and keeps it through its WAL flush, so every
//! notifying transaction in the cluster commits one after another: the append batches and the
//! projector's rounds could never share a flush (the benchmark saw `Lock:object` waits). The
//! group-commit writer therefore commits without notifying, and a [`Notifier`] sends the
//! notification in a transaction of its own right after: it writes no WAL, so it holds that
//! lock only for an instant. (The projector's rounds commit asynchronously, without waiting
//! for their flush, so they notify inside their own transaction.)
//!
//! Listeners lose nothing by it: a notification still arrives after the data it announces is
//! visible. Notifications are coalesced: however many commits happen while one is being sent,
//! one more follows. Each carries its sender's origin as payload, so the sending process can
//! tell its own notifications (which it has no need to act on) from other servers'.

use crate::own_connection::OwnConnection;
use sqlx::{PgExecutor, PgPool};
use tokio::sync::watch;

/// Sends `NOTIFY <channel>` with `payload` on `executor`, in a transaction of its own.
async fn notify_on<'e>(executor: impl PgExecutor<'e>, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(executor).await.map(|_| ())
}

/// Sends `NOTIFY <channel>` with `payload` at once, in a transaction of its own on a pooled
/// connection. A failure is logged, not returned: listeners also look on their own every few
/// seconds.
pub async fn send(pool: &PgPool, channel: &str, payload: &str) {
    if let Err(err) = notify_on(pool, channel, payload).await {
        tracing::warn!(%err, channel, "cannot notify");
    }
}

/// Sends `NOTIFY <channel>` on request, coalescing requests that arrive while one is sent.
/// Cheap to clone; its task ends when every clone is dropped.
#[derive(Clone)]
pub struct Notifier {
    requests: watch::Sender<u64>,
    origin: String,
}

impl Notifier {
    /// Starts the sending task for `channel` on the current tokio runtime, sending on a
    /// connection of its own to `pool`'s database (see [`crate::own_connection`]); its
    /// notifications carry a fresh origin (a UUID) as payload.
    pub fn spawn(pool: PgPool, channel: &'static str) -> Self {
        let origin = uuid::Uuid::new_v4().to_string();
        let (requests, mut pending) = watch::channel(0u64);
        let payload = origin.clone();
        tokio::spawn(async move {
            let mut own = OwnConnection::new(pool);
            while pending.changed().await.is_ok() {
                pending.borrow_and_update();
                let sent = match own.get().await {
                    Ok(conn) => notify_on(conn, channel, &payload).await,
                    Err(err) => Err(err),
                };
                if let Err(err) = sent {
                    own.discard();
                    tracing::warn!(%err, channel, "cannot notify");
                }
            }
        });
        Self { requests, origin }
    }

    /// The payload of this notifier's notifications.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Asks for one notification after everything committed so far; returns at once.
    pub fn notify(&self) {
        self.requests.send_modify(|n| *n = n.wrapping_add(1));
    }
}
