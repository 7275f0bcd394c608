//! The latest decided state of recently used accounts, each behind its own async lock.
//!
//! Commands on one account take its lock only to decide and queue their events with the
//! group-commit writer, not through the commit: the next command decides on the state after
//! the previous one's events (with their version as its expected version) while those are
//! still being written. So commands on a busy account neither conflict with each other nor
//! wait for each other's flush; they land in the same batch, in decision order. A command
//! whose commit fails empties its account's slot, and so do the commands decided on top of
//! it, which then fail their version check and retry on a fresh load.
//!
//! Commands that also write other streams (accepting as a new user) decide on the cached state
//! without changing it and mark it *behind*: the next command reads only the events after the
//! cached version (one indexed read), never the whole account again. Sign-up decides its new
//! account on the (empty) stream and keeps the state after its commit, so the first command
//! after a sign-up reads nothing. So no
//! command's cost grows with the account's size once it is cached; only a cold load (first
//! use, eviction, a conflict with another server) reads the snapshot and its tail.
//!
//! Another server's appends reach a cached state only through a conflict, and a refused command
//! appends nothing: so a refusal checks the stream's last sequence and, when the store is
//! ahead, is decided again on the stored state (`App::stored_if_newer`).

use roster_domain::{Account, AccountId};
use roster_store::{EventStore, Loaded, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// An account's state as this process last knew it.
pub(super) struct Cached {
    /// The state and the stream version it is at.
    pub loaded: Loaded<Account>,
    /// Events were appended after `loaded.version` outside this slot: read them before
    /// deciding.
    pub behind: bool,
}

/// One account's slot: its state as the last decided command left it, if known.
pub(super) type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Slots by account, at most [`AccountCache::CAPACITY`] idle ones kept.
#[derive(Default)]
pub(super) struct AccountCache {
    slots: Mutex<HashMap<AccountId, Slot>>,
}

impl AccountCache {
    /// How many accounts' states are kept; past it, idle slots are dropped.
    const CAPACITY: usize = 4096;

    /// The slot of `account_id`, created empty when absent.
    pub(super) fn slot(&self, account_id: AccountId) -> Slot {
        let mut slots = self.slots.lock().expect("account cache lock");
        if slots.len() >= Self::CAPACITY && !slots.contains_key(&account_id) {
            // Keep only slots someone holds (a command in flight): the rest reload on demand.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slots.entry(account_id).or_default().clone()
    }

    /// Forgets what is known of `account_id`: the next command loads it from the store.
    pub(super) async fn invalidate(&self, account_id: AccountId) {
        let slot = self.slot(account_id);
        *slot.lock().await = None;
    }

    /// Keeps `loaded`, the state the store holds for `account_id` after a commit that
    /// decided on the whole stream (sign-up's new account), unless the slot already knows a
    /// later version: the next command then starts from it instead of loading the stream.
    pub(super) async fn remember(&self, account_id: AccountId, loaded: Loaded<Account>) {
        let slot = self.slot(account_id);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_none_or(|c| c.loaded.version < loaded.version) {
            *cached = Some(Cached { loaded, behind: false });
        }
    }

    /// Notes that `account_id`'s stream moved on outside its slot.
    pub(super) async fn mark_behind(&self, account_id: AccountId) {
        let slot = self.slot(account_id);
        let mut cached = slot.lock().await;
        if let Some(cached) = cached.as_mut() {
            cached.behind = true;
        }
    }
}

/// The current state in `cached` (taken out of it): as is, caught up with its tail when
/// behind, or loaded from the store when unknown.
///
/// Errors: database and decode errors of the store.
pub(super) async fn current(store: &EventStore, account_id: AccountId, cached: &mut Option<Cached>) -> Result<Loaded<Account>, StoreError> {
    match cached.take() {
        Some(Cached { loaded, behind: false }) => Ok(loaded),
        Some(Cached { loaded, behind: true }) => store.catch_up(&account_id.to_string(), loaded).await,
        None => store.load(&account_id.to_string()).await,
    }
}
