//! Look-ups the account's rules need, kept beside its state so no decision scans every member
//! or invitation: a command's cost does not grow with the account (issue "big accounts").
//!
//! The index is derived data: it is not part of snapshots (they stay as compact as the state)
//! and is rebuilt in one pass when a snapshot is decoded ([`Index::of`]); `apply.rs` keeps it
//! in step with every event. `tests/rules` checks that an index kept by applying equals one
//! rebuilt from the state, for random streams.

use super::{Account, Invitation, InvitationState, Member};
use crate::{Email, InvitationId, Role, UserId};
use std::collections::{BTreeMap, BTreeSet};

/// What the rules look up by something other than an id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Index {
    /// Members by normalised email (rule: never invite a member).
    member_by_email: BTreeMap<Email, UserId>,
    /// Members whose role is Admin (rule: never zero Admins).
    admins: BTreeSet<UserId>,
    /// Invitations in state Pending (expired or not) by invited email (rule: one pending
    /// invitation per email). Expiry is checked on these few at decision time.
    pending_by_email: BTreeMap<Email, BTreeSet<InvitationId>>,
    /// Invitations in state Pending by who sent them last (rule "Remove member").
    pending_by_sender: BTreeMap<UserId, BTreeSet<InvitationId>>,
}

impl Index {
    /// The index of `account`'s members and invitations, built in one pass.
    pub fn of(account: &Account) -> Self {
        let mut index = Self::default();
        for (user_id, member) in &account.members {
            index.add_member(*user_id, member);
        }
        for (id, invitation) in &account.invitations {
            index.add_invitation(*id, invitation);
        }
        index
    }

    /// The member with `email`, if any.
    pub fn member_with_email(&self, email: &Email) -> Option<UserId> {
        self.member_by_email.get(email).copied()
    }

    /// How many members are Admins.
    pub fn admin_count(&self) -> usize {
        self.admins.len()
    }

    /// Invitations to `email` in state Pending (some may have expired).
    pub fn pending_for(&self, email: &Email) -> impl Iterator<Item = InvitationId> + '_ {
        self.pending_by_email.get(email).into_iter().flatten().copied()
    }

    /// Invitations in state Pending that `sender` sent last.
    pub fn pending_sent_by(&self, sender: UserId) -> impl Iterator<Item = InvitationId> + '_ {
        self.pending_by_sender.get(&sender).into_iter().flatten().copied()
    }

    pub(super) fn add_member(&mut self, user_id: UserId, member: &Member) {
        self.member_by_email.insert(member.email.clone(), user_id);
        if member.role == Role::Admin {
            self.admins.insert(user_id);
        } else {
            self.admins.remove(&user_id);
        }
    }

    pub(super) fn remove_member(&mut self, user_id: UserId, member: &Member) {
        if self.member_by_email.get(&member.email) == Some(&user_id) {
            self.member_by_email.remove(&member.email);
        }
        self.admins.remove(&user_id);
    }

    pub(super) fn add_invitation(&mut self, id: InvitationId, invitation: &Invitation) {
        if invitation.state == InvitationState::Pending {
            self.pending_by_email.entry(invitation.email.clone()).or_default().insert(id);
            self.pending_by_sender.entry(invitation.last_sent_by).or_default().insert(id);
        }
    }

    pub(super) fn remove_invitation(&mut self, id: InvitationId, invitation: &Invitation) {
        remove_from(&mut self.pending_by_email, &invitation.email, id);
        remove_from(&mut self.pending_by_sender, &invitation.last_sent_by, id);
    }
}

/// Removes `id` from `key`'s set, and the set once empty (so the maps hold no dead keys).
fn remove_from<K: Ord>(map: &mut BTreeMap<K, BTreeSet<InvitationId>>, key: &K, id: InvitationId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}
