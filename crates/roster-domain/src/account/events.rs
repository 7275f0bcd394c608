//! The events an account emits: past-tense facts, each with a version (rule "Events").
//! Ids serialise as bare UUIDs, so the stored JSON is what it was before the id newtypes.

use crate::token::SendNonce;
use crate::{Email, InvitationId, Role, TokenDigest, UserId};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

/// What happened to an account. Serialised externally tagged (`{"MemberInvited": {...}}`), the
/// shape cqrs-es stores; `event_type` is the variant name. See `docs/events.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// The account was opened; emitted by `Create`, always followed by the founder's
    /// `MemberJoined`.
    AccountCreated {
        /// Account name, trimmed, 1–100 characters.
        name: String,
        /// The founding user's id.
        created_by: UserId,
        /// When the account was opened (UTC instant).
        created_at: DateTime<Utc>,
    },
    /// A user became a member; emitted by `Create` (the founder, as Admin) and by `Accept`.
    MemberJoined {
        /// The new member's user id.
        user_id: UserId,
        /// The member's normalised email (for an accepted invitation, the invited email).
        email: Email,
        /// `Admin` for the founder, otherwise the invitation's role.
        role: Role,
        /// When they joined (UTC instant).
        joined_at: DateTime<Utc>,
        /// The invitation accepted to join; `None` for the founder.
        invitation_id: Option<InvitationId>,
    },
    /// An invitation was sent; emitted by `Invite`. Version 2.1.0: 2.0 had no `mail_nonce`
    /// (read as absent); 1.0 had `invited_at` and no `expires_at`, and is upcast on read.
    MemberInvited {
        /// The new invitation's id.
        invitation_id: InvitationId,
        /// The invitee's normalised email.
        email: Email,
        /// Role granted on acceptance.
        role: Role,
        /// The inviting member's user id.
        invited_by: UserId,
        /// SHA-256 digest of the invite token, 64 lower-case hex characters (never the token).
        token_digest: TokenDigest,
        /// When it was sent (UTC instant).
        sent_at: DateTime<Utc>,
        /// `sent_at` + the invite TTL, 7 days by default (rule "Expiry").
        expires_at: DateTime<Utc>,
        /// The send's token nonce (see `roster_domain::token`): present when the server delivers
        /// invitation emails, so its mailer can rebuild the link; absent when email delivery was
        /// off (the delivery status is then `NOT_SENT`) and in events before this field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail_nonce: Option<SendNonce>,
    },
    /// A pending or expired invitation was sent again with a new token; emitted by `Resend`
    /// (rule "Resend"). Version 1.1.0: 1.0 had no `mail_nonce` (read as absent).
    InvitationResent {
        /// The invitation; its id is kept.
        invitation_id: InvitationId,
        /// Who resent it: the original inviter or an Admin.
        resent_by: UserId,
        /// SHA-256 digest of the new token, 64 lower-case hex characters; replaces the old one.
        token_digest: TokenDigest,
        /// When it was re-sent (UTC instant).
        sent_at: DateTime<Utc>,
        /// `sent_at` + the invite TTL; the expiry restarts.
        expires_at: DateTime<Utc>,
        /// How many times the invitation has now been sent, the first send included.
        send_count: u32,
        /// The send's token nonce (see `roster_domain::token`): present when the server delivers
        /// invitation emails, so its mailer can rebuild the link; absent when email delivery was
        /// off (the delivery status is then `NOT_SENT`) and in events before this field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail_nonce: Option<SendNonce>,
    },
    /// The email of one send of an invitation was handed over: accepted by the SMTP server, or
    /// written to the mail directory. Emitted by `RecordEmail` (the mailer, after delivery).
    InvitationEmailSent {
        /// The invitation.
        invitation_id: InvitationId,
        /// Which send (1 for the invitation, 2 for its first resend, …).
        send_count: u32,
        /// The message's `Message-ID` (without angle brackets), the same on every attempt of
        /// this send, so receivers can drop a duplicate after a crash.
        message_id: String,
        /// When the server accepted it (UTC instant).
        sent_at: DateTime<Utc>,
    },
    /// A delivery attempt of one send failed. Emitted by `RecordEmail` (the mailer).
    InvitationEmailFailed {
        /// The invitation.
        invitation_id: InvitationId,
        /// Which send.
        send_count: u32,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// The SMTP reply or connection error, at most 500 characters, without control characters.
        reply: String,
        /// Whether the mailer gave up on this send: a permanent (5xx) reply, or the retry limit.
        /// `false`: another attempt follows after a back-off.
        gave_up: bool,
        /// When the attempt failed (UTC instant).
        failed_at: DateTime<Utc>,
    },
    /// An invitation was cancelled; emitted by `Cancel`, and by `RemoveMember` for each pending
    /// invitation whose current link the removed member sent (rule "Remove member").
    InvitationCancelled {
        /// The cancelled invitation.
        invitation_id: InvitationId,
        /// Who cancelled it; for [`REASON_INVITER_REMOVED`](super::REASON_INVITER_REMOVED), the Admin who removed the inviter.
        cancelled_by: UserId,
        /// [`REASON_CANCELLED`](super::REASON_CANCELLED) (`Cancel`) or [`REASON_INVITER_REMOVED`](super::REASON_INVITER_REMOVED) (`RemoveMember`).
        reason: String,
        /// When it was cancelled (UTC instant).
        cancelled_at: DateTime<Utc>,
    },
    /// An invitation was accepted; emitted by `Accept`, always followed by `MemberJoined`.
    InvitationAccepted {
        /// The accepted invitation.
        invitation_id: InvitationId,
        /// The accepting user, now a member.
        user_id: UserId,
        /// When it was accepted (UTC instant).
        accepted_at: DateTime<Utc>,
    },
    /// A member's role changed; emitted by `ChangeRole`, never for an unchanged role. Has no
    /// timestamp: its time is the metadata's `occurred_at`.
    MemberRoleChanged {
        /// The member whose role changed.
        user_id: UserId,
        /// The previous role.
        from: Role,
        /// The new role.
        to: Role,
        /// The Admin who changed it.
        changed_by: UserId,
    },
    /// A member was removed; emitted by `RemoveMember`, followed by the `InvitationCancelled`s
    /// (reason [`REASON_INVITER_REMOVED`](super::REASON_INVITER_REMOVED)) of their pending invitations.
    MemberRemoved {
        /// The removed member's user id.
        user_id: UserId,
        /// The Admin who removed them.
        removed_by: UserId,
        /// When they were removed (UTC instant).
        removed_at: DateTime<Utc>,
    },
}

/// The current version of every account event type (semantic versions, as cqrs-es upcasters
/// compare them). `MemberInvited` 1.0 is read through an upcaster; see `roster-store`.
pub fn event_version(event_type: &str) -> &'static str {
    match event_type {
        "MemberInvited" => "2.1.0",
        "InvitationResent" => "1.1.0",
        _ => "1.0.0",
    }
}

impl AccountEvent {
    /// Whether an event named `event_type` (a stored event's type) can say anything about a
    /// membership, i.e. whether [`AccountEvent::membership_of`] can answer other than `None`.
    /// Lets a follower skip decoding every other event's payload.
    pub fn may_change_membership(event_type: &str) -> bool {
        matches!(event_type, "MemberJoined" | "MemberRoleChanged" | "MemberRemoved")
    }

    /// What this event says about `user`'s membership of its account: `Some(Some(role))` when
    /// it gives them a role (`MemberJoined`, `MemberRoleChanged`), `Some(None)` when it ends
    /// their membership (`MemberRemoved`), `None` when it does not concern their membership.
    /// A follower of the account's events keeps the subscriber's access current with it,
    /// without asking the read models.
    pub fn membership_of(&self, user: UserId) -> Option<Option<Role>> {
        match self {
            AccountEvent::MemberJoined { user_id, role, .. } if *user_id == user => Some(Some(*role)),
            AccountEvent::MemberRoleChanged { user_id, to, .. } if *user_id == user => Some(Some(*to)),
            AccountEvent::MemberRemoved { user_id, .. } if *user_id == user => Some(None),
            _ => None,
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        let name = match self {
            AccountEvent::AccountCreated { .. } => "AccountCreated",
            AccountEvent::MemberJoined { .. } => "MemberJoined",
            AccountEvent::MemberInvited { .. } => "MemberInvited",
            AccountEvent::InvitationResent { .. } => "InvitationResent",
            AccountEvent::InvitationCancelled { .. } => "InvitationCancelled",
            AccountEvent::InvitationAccepted { .. } => "InvitationAccepted",
            AccountEvent::MemberRoleChanged { .. } => "MemberRoleChanged",
            AccountEvent::MemberRemoved { .. } => "MemberRemoved",
            AccountEvent::InvitationEmailSent { .. } => "InvitationEmailSent",
            AccountEvent::InvitationEmailFailed { .. } => "InvitationEmailFailed",
        };
        name.to_string()
    }

    fn event_version(&self) -> String {
        event_version(&self.event_type()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::AccountEvent;
    use cqrs_es::DomainEvent;
    use crate::{Role, UserId};
    use chrono::Utc;

    #[test]
    fn membership_of_tells_joins_role_changes_and_removals_of_that_user_only() {
        let (ann, bob) = (UserId::from(uuid::Uuid::new_v4()), UserId::from(uuid::Uuid::new_v4()));
        let changed = AccountEvent::MemberRoleChanged { user_id: ann, from: Role::Admin, to: Role::Guest, changed_by: bob };
        let removed = AccountEvent::MemberRemoved { user_id: ann, removed_by: bob, removed_at: Utc::now() };
        let created = AccountEvent::AccountCreated { name: "Acme".into(), created_by: ann, created_at: Utc::now() };
        assert_eq!(changed.membership_of(ann), Some(Some(Role::Guest)));
        assert_eq!(removed.membership_of(ann), Some(None));
        assert_eq!(changed.membership_of(bob), None);
        assert_eq!(removed.membership_of(bob), None);
        // Founding an account is followed by the founder's MemberJoined, which carries the role.
        assert_eq!(created.membership_of(ann), None);
        // The events that can name a membership, by their stored type; and no other.
        for event in [&changed, &removed] {
            assert!(AccountEvent::may_change_membership(&event.event_type()), "{}", event.event_type());
        }
        assert!(!AccountEvent::may_change_membership(&created.event_type()));
    }
}
