//! The latest decided state of recently used accounts, each behind its own async lock.
//!
//! Commands on one account take its lock only to decide and queue their events with the
//! group-commit writer, not through the commit: the next command decides on the state after
//! the previous one's events (with their version as its expected version) while those are
//! still being written. So commands on a busy account neither conflict with each other nor
//! wait for each other's flush; they land in the same batch, in decision order. A command
//! whose commit fails empties its account's slot, and so do the commands decided on top of
//! it, which then fail their version check and retry on a fresh load.

use roster_domain::{Account, AccountId};
use roster_store::Loaded;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One account's slot: its state as the last decided command left it, if known.
pub(super) type Slot = Arc<tokio::sync::Mutex<Option<Loaded<Account>>>>;

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
}
