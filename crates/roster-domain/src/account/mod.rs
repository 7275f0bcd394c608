//! The account aggregate: one tenant's members and invitations.
//!
//! Every rule of `domain-rules.md` sections "Invitations" and "Members and roles" is decided in
//! [`decide`](crate::Decide::decide) (file `decide.rs`); `apply.rs` folds events into state.
//! Keeping members and invitations in one aggregate makes each invariant a check on one stream,
//! which the event store's expected-version check then protects against concurrent commands:
//! at most one pending invitation per email, no double membership, and at least one Admin.

mod apply;
mod commands;
mod decide;
mod events;
mod index;
mod invitation;

pub use commands::{AccountCommand, EmailOutcome, UserRef};
pub use decide::MAX_REPLY_CHARS;
pub use events::{event_version, AccountEvent};
pub use index::Index;
pub use invitation::{Invitation, InvitationState, InvitationStatus};

use crate::{DomainError, Email, InvitationId, Role, TokenDigest, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest account name, in characters.
pub const MAX_ACCOUNT_NAME_LEN: usize = 100;

/// The reason recorded when removing a member cancels the invitations they sent
/// (rule "Remove member").
pub const REASON_INVITER_REMOVED: &str = "inviter removed";
/// The reason recorded when someone cancels an invitation by hand.
pub const REASON_CANCELLED: &str = "cancelled";

/// A member as the aggregate needs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The member's normalised email.
    pub email: Email,
    /// The member's role in this account.
    pub role: Role,
}

/// The account aggregate's state, rebuilt from its events (and snapshotted as JSON; the id
/// newtypes serialise as bare UUIDs, so map keys stay UUID strings). The [`Index`] is not in
/// the JSON: decoding rebuilds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct Account {
    /// `false` until `AccountCreated`.
    pub created: bool,
    /// Account name, trimmed, 1–100 characters.
    pub name: String,
    /// Current members by user id.
    pub members: BTreeMap<UserId, Member>,
    /// Every invitation ever sent, by invitation id; accepted and cancelled ones stay.
    pub invitations: BTreeMap<InvitationId, Invitation>,
    /// Look-ups by email, role and sender, kept by `apply`.
    #[serde(skip)]
    index: Index,
}

/// [`Account`] as snapshots hold it (the same fields, less the index).
#[derive(Deserialize)]
struct Stored {
    created: bool,
    name: String,
    members: BTreeMap<UserId, Member>,
    invitations: BTreeMap<InvitationId, Invitation>,
}

impl From<Stored> for Account {
    fn from(stored: Stored) -> Self {
        let mut account = Account { created: stored.created, name: stored.name, members: stored.members, invitations: stored.invitations, index: Index::default() };
        account.index = Index::of(&account);
        account
    }
}

impl Account {
    /// The role of `user_id` in this account, if a member.
    pub fn role_of(&self, user_id: UserId) -> Option<Role> {
        self.members.get(&user_id).map(|m| m.role)
    }

    /// How many members are Admins.
    pub fn admin_count(&self) -> usize {
        self.index.admin_count()
    }

    /// The look-ups the rules use (see [`Index`]).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The invitation `invitation_id` if `presented` (the SHA-256 digest of the token a client
    /// presented) is its current token's digest, compared in constant time (rule "Token").
    /// Says nothing about status or expiry: accepting checks those next, and a preview shows
    /// them. Both accept and the API's invitation preview verify tokens here, and only here.
    ///
    /// Errors: [`DomainError::InvalidToken`] for an unknown invitation (so a token reveals no
    /// more than a wrong one) or a digest that does not match (e.g. rotated by a resend).
    pub fn invitation_for_token(
        &self,
        invitation_id: InvitationId,
        presented: &TokenDigest,
    ) -> Result<&Invitation, DomainError> {
        let invitation = self.invitations.get(&invitation_id);
        crate::token::verify(invitation.map(|inv| &inv.token_digest), presented)?;
        invitation.ok_or(DomainError::InvalidToken)
    }
}
