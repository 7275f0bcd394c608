//! The projector's loop ([`Projector::spawn`]): a round, publish the lowest checkpoint, then
//! sleep until something asks for more — this process's writer, another server's append or
//! checkpoint move (`LISTEN`), or the 5 s look that covers a lost notification.

use super::{knobs, Projector, CHECKPOINT_CHANNEL};
use crate::{Projection, ProjectionError};
use roster_store::reader::NOTIFY_CHANNEL;
use sqlx::postgres::PgListener;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What a notification asks of the projector loop, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Wake {
    /// Its own notification: nothing.
    Nothing,
    /// Another server moved a checkpoint: publish the new lowest checkpoint.
    Publish,
    /// Events were appended by another process: a round.
    Round,
}

impl Wake {
    fn of(notification: &sqlx::postgres::PgNotification, own_appends: Option<&str>, own_checkpoints: &str) -> Self {
        let from = Some(notification.payload());
        match notification.channel() {
            CHECKPOINT_CHANNEL if from == Some(own_checkpoints) => Wake::Nothing,
            CHECKPOINT_CHANNEL => Wake::Publish,
            _ if from == own_appends => Wake::Nothing,
            _ => Wake::Round,
        }
    }
}

impl Projector {
    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen_all([NOTIFY_CHANNEL, CHECKPOINT_CHANNEL]).await?;
        for projection in Projection::ALL {
            sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(projection.name())
                .execute(&self.pool)
                .await?;
        }
        Ok(listener)
    }

    /// Runs the projections in this process until the task is aborted: a round, then publish
    /// the checkpoint, then sleep until a notification (an append or a moved checkpoint) wakes
    /// it. After a failure it retries with a back-off from 20 ms up to 5 s; with nothing to do
    /// it still looks every 5 s (a lost notification, a stopped projection).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        self.running.store(true, Ordering::Relaxed);
        tokio::spawn(async move {
            // The payload of this loop's checkpoint notifications (sent by its rounds).
            let origin = uuid::Uuid::new_v4().to_string();
            let (mut appended, own_appends) = self.appended.clone().unzip();
            let mut listener: Option<PgListener> = None;
            let mut backoff = Duration::from_millis(20);
            let mut round = true;
            let mut own = None;
            loop {
                if listener.is_none() {
                    match self.listen().await {
                        Ok(l) => listener = Some(l),
                        Err(err) => tracing::warn!(%err, "projector cannot LISTEN; polling"),
                    }
                }
                let mut wait = Duration::from_secs(5);
                let mut lowest = None;
                match if round { self.run_round(&mut own, &origin).await } else { Ok((0, None)) } {
                    Ok((applied, seen)) => {
                        lowest = seen;
                        backoff = Duration::from_millis(20);
                        // A full batch: more is waiting, go on at once.
                        if applied as i64 >= knobs().batch_size {
                            wait = Duration::ZERO;
                        }
                    }
                    Err(err) => {
                        if !matches!(err, ProjectionError::Stopped { .. }) {
                            tracing::warn!(%err, "projection round failed");
                        }
                        wait = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                match lowest {
                    Some(lowest) => self.publish_seen(lowest),
                    None => self.publish().await,
                }
                if wait.is_zero() {
                    round = true;
                    continue;
                }
                let appended_here = async {
                    let changed = match appended.as_mut() {
                        Some(rx) => rx.changed().await.is_ok(),
                        None => false,
                    };
                    if !changed {
                        // No writer here (or it stopped): only notifications and time wake.
                        std::future::pending::<()>().await;
                    }
                };
                let Some(l) = listener.as_mut() else {
                    let _ = tokio::time::timeout(wait.min(Duration::from_secs(1)), appended_here).await;
                    round = true;
                    continue;
                };
                // What wakes the loop decides what it does next: a round for appends it has not
                // heard of in-process, only re-reading the checkpoints when another server moved
                // them, nothing for its own notifications (it acted on those already).
                tokio::pin!(appended_here);
                let timeout = tokio::time::sleep(wait);
                tokio::pin!(timeout);
                round = loop {
                    tokio::select! {
                        notified = l.recv() => match notified {
                            Ok(first) => {
                                let mut wake = Wake::of(&first, own_appends.as_deref(), &origin);
                                while let Some(next) = l.next_buffered() {
                                    wake = wake.max(Wake::of(&next, own_appends.as_deref(), &origin));
                                }
                                match wake {
                                    Wake::Nothing => continue,
                                    Wake::Publish => break false,
                                    Wake::Round => break true,
                                }
                            }
                            Err(_) => {
                                listener = None;
                                break true;
                            }
                        },
                        () = &mut appended_here => break true,
                        () = &mut timeout => break true,
                    }
                };
            }
        })
    }
}
