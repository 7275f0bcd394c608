//! One `LISTEN` per process, fanned out: the [`Tail`].
//!
//! A follower used to hold a `PgListener` of its own (one connection each, for its lifetime),
//! so twenty subscriptions took as many connections as the pool has. The tail is one task with
//! one listening connection; it publishes the log's head (highest committed position) on a
//! `tokio::sync::watch`, and followers read their own pages from the pool only when the head
//! moves past what they have read. N followers hold no connection while they wait.
//!
//! It survives database outages: when the listening connection breaks or cannot be opened, it
//! retries with a back-off (20 ms doubling up to 5 s, logged) and publishes the head again once
//! back, since notifications sent meanwhile are lost. With nothing heard it still looks every
//! 5 s (a notification lost in any other way).

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use super::{listen, FOLLOW_POLL};

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// The longest wait between retries after a failure.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The log's head as this process last saw it, kept current by one listening task. Cheap to
/// clone; the task stops when the last clone (and every follower holding one) is dropped.
#[derive(Clone)]
pub struct Tail {
    head: watch::Receiver<i64>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail").field("head", &*self.head.borrow()).finish()
    }
}

impl Tail {
    /// Starts the listening task on the current tokio runtime. It keeps one of `pool`'s
    /// connections for listening, and borrows another for an instant to read the head after
    /// each notification.
    pub fn spawn(pool: PgPool) -> Self {
        let (publish, head) = watch::channel(0);
        let task = tokio::spawn(run(pool, publish));
        Self { head, _task: Arc::new(AbortOnDrop(task)) }
    }

    /// A receiver of the head: `changed()` resolves when it moves forward. Its value starts at
    /// 0 until the task has read the head once.
    pub fn head(&self) -> watch::Receiver<i64> {
        self.head.clone()
    }
}

/// The highest committed position, 0 for an empty log.
async fn read_head(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events").fetch_one(pool).await
}

/// Publishes `head` if it moved forward (it never goes back).
fn publish_head(publish: &watch::Sender<i64>, head: i64) {
    publish.send_if_modified(|h| {
        let moved = head > *h;
        if moved {
            *h = head;
        }
        moved
    });
}

async fn run(pool: PgPool, publish: watch::Sender<i64>) {
    let mut backoff = MIN_BACKOFF;
    let mut listener: Option<PgListener> = None;
    let mut failing = false;
    loop {
        if listener.is_none() {
            match listen(&pool).await {
                Ok(l) => listener = Some(l),
                Err(err) => tracing::warn!(%err, retry_in_ms = backoff.as_millis() as u64, "event tail cannot LISTEN; retrying"),
            }
        }
        // Read the head after (re)listening, so no commit between the two is missed.
        match read_head(&pool).await {
            Ok(head) => {
                if failing {
                    tracing::info!(head, "event tail reconnected to the database");
                    failing = false;
                }
                backoff = MIN_BACKOFF;
                publish_head(&publish, head);
            }
            Err(err) => {
                tracing::warn!(%err, retry_in_ms = backoff.as_millis() as u64, "event tail cannot read the head; retrying");
                failing = true;
            }
        }
        let Some(l) = listener.as_mut().filter(|_| !failing) else {
            failing = true;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        };
        // `try_recv` answers `None` when the connection broke (it reconnects on the next call);
        // an error when reconnecting failed.
        match tokio::time::timeout(FOLLOW_POLL, l.try_recv()).await {
            Ok(Ok(Some(_))) => while l.next_buffered().is_some() {},
            Ok(Ok(None)) => tracing::warn!("event tail lost its LISTEN connection; reconnecting"),
            Ok(Err(err)) => {
                tracing::warn!(%err, retry_in_ms = backoff.as_millis() as u64, "event tail cannot LISTEN; retrying");
                listener = None;
                failing = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(_) => {}
        }
    }
}
