//! Caps on open subscriptions: per websocket connection
//! (`ROSTER_MAX_SUBSCRIPTIONS_PER_CONNECTION`, default 10) and per user across connections
//! (`ROSTER_MAX_SUBSCRIPTIONS_PER_USER`, default 20). A subscription holds a
//! [`SubscriptionSlot`] for its lifetime; dropping the stream (completed, stopped, connection
//! closed) gives it back.

use crate::error::ApiError;
use roster_domain::UserId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a client is told to wait before trying again beyond a cap (the contract's
/// `RATE_LIMITED` carries `retryAfterSeconds`): a slot frees only when one of its own
/// subscriptions ends, so this is a hint, not a promise.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// The subscriptions open on one websocket connection (one per connection, in its data).
#[derive(Debug, Default, Clone)]
pub struct ConnectionSubscriptions(Arc<AtomicUsize>);

impl ConnectionSubscriptions {
    /// How many are open now.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// This process's open subscriptions: in all, and per user across connections.
#[derive(Debug, Default, Clone)]
pub(super) struct OpenSubscriptions(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    all: AtomicUsize,
    per_user: Mutex<HashMap<UserId, usize>>,
}

impl OpenSubscriptions {
    /// How many are open in this process.
    pub(super) fn count(&self) -> usize {
        self.0.all.load(Ordering::Relaxed)
    }
}

/// One open subscription's place under the caps; released on drop.
#[derive(Debug)]
pub struct SubscriptionSlot {
    open: OpenSubscriptions,
    connection: Option<ConnectionSubscriptions>,
    user: Option<UserId>,
}

impl SubscriptionSlot {
    /// Takes a slot on `connection` (at most `per_connection`) and for `user` (at most
    /// `per_user`), or neither.
    ///
    /// Errors: `RATE_LIMITED` (with [`RETRY_AFTER_SECONDS`]) when either cap is reached.
    pub(super) fn take(
        open: &OpenSubscriptions,
        connection: Option<&ConnectionSubscriptions>,
        per_connection: usize,
        user: Option<UserId>,
        per_user: usize,
    ) -> Result<Self, ApiError> {
        open.0.all.fetch_add(1, Ordering::AcqRel);
        let mut slot = SubscriptionSlot { open: open.clone(), connection: None, user: None };
        if let Some(c) = connection {
            let taken = c.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < per_connection).then_some(n + 1));
            if taken.is_err() {
                return Err(ApiError::RateLimited(RETRY_AFTER_SECONDS));
            }
            slot.connection = Some(c.clone());
        }
        if let Some(id) = user {
            let mut counts = open.0.per_user.lock().expect("subscription counts");
            let n = counts.entry(id).or_default();
            if *n >= per_user {
                // `slot` gives the connection's place back as it drops.
                return Err(ApiError::RateLimited(RETRY_AFTER_SECONDS));
            }
            *n += 1;
            slot.user = Some(id);
        }
        Ok(slot)
    }
}

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        if let Some(c) = &self.connection {
            c.0.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(id) = &self.user {
            let mut per_user = self.open.0.per_user.lock().expect("subscription counts");
            if let Some(n) = per_user.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    per_user.remove(id);
                }
            }
        }
        self.open.0.all.fetch_sub(1, Ordering::AcqRel);
    }
}
