//! One `LISTEN` per process, fanned out: the [`Tail`].
//!
//! A follower used to hold a `PgListener` of its own (one connection each, for its lifetime),
//! so twenty subscriptions took as many connections as the pool has. The tail is one task with
//! one listening connection; it publishes the log's head (highest committed position) on a
//! `tokio::sync::watch`. N followers hold no connection while they wait.
//!
//! Each new stretch of the log is read once, by the tail, and handed to every follower as a
//! [`Batch`] (a `tokio::sync::broadcast`, sent before the head that covers it is published):
//! with 50 subscriptions, every new event used to be read 50 times (measured: queries 5.5×
//! slower under 16 writers). A follower that is not where a batch starts (still catching up,
//! or it lagged behind the channel) reads its own pages from the pool, as before, so nothing
//! is skipped or repeated either way.
//!
//! With no follower it reads nothing: a notification only marks the head unknown, and the
//! first follower to arrive has it read before it waits (a process that only writes paid one
//! head query per append batch for no one).
//!
//! It survives database outages: when the listening connection breaks or cannot be opened, it
//! retries with a back-off (20 ms doubling up to 5 s, logged) and publishes the head again once
//! back, since notifications sent meanwhile are lost. With nothing heard it still looks every
//! 5 s (a notification lost in any other way).

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use super::{read_after, EventFilter, StoredEvent};

use super::{listen, FOLLOW_POLL};

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// The longest wait between retries after a failure.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Batches kept for followers that have not taken them yet; one that falls further behind
/// reads from the database.
const BATCHES: usize = 256;

/// The most events the tail reads into one batch; a longer stretch (after an outage, say) is
/// left to the followers' own pages.
const MAX_BATCH_EVENTS: i64 = 5_000;

/// Every event after `after` up to and including `upto`, in position order (all accounts).
#[derive(Debug)]
pub struct Batch {
    /// The position the stretch starts after.
    pub after: i64,
    /// The head it reaches.
    pub upto: i64,
    /// Its events, each shared by every follower that delivers it (not copied per follower).
    pub events: Vec<Arc<StoredEvent>>,
}

/// The log's head as this process last saw it, kept current by one listening task. Cheap to
/// clone; the task stops when the last clone (and every follower holding one) is dropped.
#[derive(Clone)]
pub struct Tail {
    head: watch::Receiver<i64>,
    batches: broadcast::Sender<Arc<Batch>>,
    /// Wakes the task when a follower arrives, so a head left unread meanwhile is read.
    arrived: Arc<tokio::sync::Notify>,
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
        let (batches, _) = broadcast::channel(BATCHES);
        let arrived = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(run(pool, publish, batches.clone(), arrived.clone()));
        Self { head, batches, arrived, _task: Arc::new(AbortOnDrop(task)) }
    }

    /// A receiver of the head: `changed()` resolves when it moves forward. Its value starts at
    /// 0 until the task has read the head once.
    pub fn head(&self) -> watch::Receiver<i64> {
        self.head.clone()
    }

    /// The batches read from now on (see the module doc). Taking this receiver makes the
    /// caller a follower: the task keeps the head current while any follower holds one, and
    /// reads it at once if it went unread while there was none.
    pub fn batches(&self) -> broadcast::Receiver<Arc<Batch>> {
        let receiver = self.batches.subscribe();
        self.arrived.notify_one();
        receiver
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

/// Reads the events after `after` up to `head` for the followers, when any listens and the
/// stretch is short; `None` otherwise or when a read fails (the followers then read it).
async fn read_batch(pool: &PgPool, batches: &broadcast::Sender<Arc<Batch>>, after: i64, head: i64) -> Option<Arc<Batch>> {
    if batches.receiver_count() == 0 || head <= after || head - after > MAX_BATCH_EVENTS {
        return None;
    }
    let mut events: Vec<Arc<StoredEvent>> = Vec::new();
    let mut from = after;
    while from < head {
        let page = read_after(pool, from, 1_000, EventFilter::default()).await.ok()?;
        let short = page.len() < 1_000;
        events.extend(page.into_iter().take_while(|e| e.position <= head).map(Arc::new));
        from = events.last().map_or(head, |e| e.position);
        if short {
            break;
        }
    }
    Some(Arc::new(Batch { after, upto: head, events }))
}

async fn run(pool: PgPool, publish: watch::Sender<i64>, batches: broadcast::Sender<Arc<Batch>>, arrived: Arc<tokio::sync::Notify>) {
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
        // No follower: nobody needs the head now, so it is left unread; the next follower to
        // arrive wakes this loop.
        let idle = batches.receiver_count() == 0 && listener.is_some() && !failing;
        if !idle {
            refresh(&pool, &publish, &batches, &mut failing, &mut backoff).await;
        }
        let Some(l) = listener.as_mut().filter(|_| !failing) else {
            failing = true;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        };
        // `try_recv` answers `None` when the connection broke (it reconnects on the next call);
        // an error when reconnecting failed.
        let notified = tokio::select! {
            received = tokio::time::timeout(FOLLOW_POLL, l.try_recv()) => received,
            () = arrived.notified(), if idle => continue,
        };
        match notified {
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

/// Reads the head (after (re)listening, so no commit between the two is missed), hands the
/// followers the stretch up to it, and publishes it. A failed read is logged and sets
/// `failing`.
async fn refresh(pool: &PgPool, publish: &watch::Sender<i64>, batches: &broadcast::Sender<Arc<Batch>>, failing: &mut bool, backoff: &mut Duration) {
    match read_head(pool).await {
        Ok(head) => {
            if *failing {
                tracing::info!(head, "event tail reconnected to the database");
                *failing = false;
            }
            *backoff = MIN_BACKOFF;
            let published = *publish.borrow();
            if let Some(batch) = read_batch(pool, batches, published, head).await {
                // Before the head moves: a follower woken by it finds the batch waiting.
                let _ = batches.send(batch);
            }
            publish_head(publish, head);
        }
        Err(err) => {
            tracing::warn!(%err, retry_in_ms = backoff.as_millis() as u64, "event tail cannot read the head; retrying");
            *failing = true;
        }
    }
}

