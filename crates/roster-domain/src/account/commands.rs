//! The commands an account accepts. Times and fresh ids are passed in (`now`,
//! `invitation_id`); the domain reads no clock and draws no random numbers.

use crate::token::SendNonce;
use crate::{Email, InvitationId, Role, TokenDigest, UserId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A user as a command names them: id plus normalised email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    /// The user's id (their `User` stream id).
    pub id: UserId,
    /// The user's normalised email.
    pub email: Email,
}

/// What an actor asks of an account. Times are passed in (`now`); the domain reads no clock.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// Opens the account with `founder` as its only Admin (sign-up, `createAccount`). Refused with
    /// `VALIDATION` (`accountId` if it already exists; `name` unless a clean [`Text`](crate::Text) of 1–100 characters).
    Create {
        /// Account name as typed; parsed by `decide` as a [`Text`](crate::Text) of 1–100 characters
        /// ([`MAX_ACCOUNT_NAME_LEN`](super::MAX_ACCOUNT_NAME_LEN); NFC, trimmed, no control or bidi characters).
        name: String,
        /// The user who opens the account and becomes its only Admin.
        founder: UserRef,
        /// Current UTC instant; becomes `created_at` and `joined_at`.
        now: DateTime<Utc>,
    },
    /// Invites `email` with `role`; the token's digest is stored, never the token. Refused with
    /// `NOT_FOUND` (account), `FORBIDDEN` (not a member, or may not grant `role`; rule "Who"),
    /// `ALREADY_MEMBER`, `INVITATION_PENDING`, `VALIDATION` (`invitationId` already used).
    Invite {
        /// The inviting member's user id.
        actor: UserId,
        /// Fresh id for the new invitation, chosen by the caller.
        invitation_id: InvitationId,
        /// The invitee's normalised email (rule "Email").
        email: Email,
        /// Role granted on acceptance; must be in the actor's "may grant" column.
        role: Role,
        /// SHA-256 digest of the new invite token, 64 lower-case hex characters.
        token: TokenDigest,
        /// Current UTC instant; becomes `sent_at`.
        now: DateTime<Utc>,
        /// Invitation lifetime (`ROSTER_INVITE_TTL`, 7 days by default); `expires_at = now + ttl`.
        ttl: Duration,
        /// The token's nonce when the server delivers the link by email (see
        /// [`SendNonce`]); `None` when email delivery is off.
        mail_nonce: Option<SendNonce>,
    },
    /// Rotates the token of a pending or expired invitation and restarts its expiry (rule
    /// "Resend"). Refused with `NOT_FOUND` (account, invitation), `FORBIDDEN` (neither an Admin nor
    /// the original inviter still able to grant its role), `INVITATION_NOT_PENDING`,
    /// `ALREADY_MEMBER`, `INVITATION_PENDING` (another pending invitation for the email), and
    /// `RATE_LIMITED` ([`DomainError::ResendTooSoon`](crate::DomainError::ResendTooSoon)) when it
    /// would email the invitee (`mail_nonce` present) within `cooldown` of the last send.
    Resend {
        /// The user resending: the original inviter or an Admin.
        actor: UserId,
        /// The invitation to resend; its id is kept.
        invitation_id: InvitationId,
        /// SHA-256 digest of the new token (64 lower-case hex characters); the old link dies.
        token: TokenDigest,
        /// Current UTC instant; becomes the new `sent_at`.
        now: DateTime<Utc>,
        /// Invitation lifetime; the new `expires_at = now + ttl`.
        ttl: Duration,
        /// The token's nonce when the server delivers the link by email (see
        /// [`SendNonce`]); `None` when email delivery is off.
        mail_nonce: Option<SendNonce>,
        /// Least time between two emailed sends of one invitation (`ROSTER_RESEND_COOLDOWN`,
        /// 60 s by default; zero: none). Only a resend that emails is held back: without email
        /// a resend only shows the admin a new link, which bothers nobody.
        cooldown: Duration,
    },
    /// Cancels a pending or expired invitation (rule "Cancel"). Refused with `NOT_FOUND` (account,
    /// invitation), `FORBIDDEN` (neither an Admin nor the original inviter still able to invite),
    /// `INVITATION_NOT_PENDING`.
    Cancel {
        /// The user cancelling: the original inviter or an Admin.
        actor: UserId,
        /// The invitation to cancel.
        invitation_id: InvitationId,
        /// Current UTC instant; becomes `cancelled_at`.
        now: DateTime<Utc>,
    },
    /// Accepts an invitation for `user` with the digest of the presented token (rule "Accept").
    /// Refused with `INVALID_TOKEN` (also for an unknown invitation), `INVITATION_EXPIRED`,
    /// `INVITATION_NOT_PENDING`, `EMAIL_MISMATCH` (`user.email` is not the invited email),
    /// `ALREADY_MEMBER`.
    Accept {
        /// The invitation the presented token names.
        invitation_id: InvitationId,
        /// SHA-256 digest of the presented token, compared in constant time with the stored one.
        token: TokenDigest,
        /// The accepting user: the session's user, or the one registered by this acceptance.
        user: UserRef,
        /// Current UTC instant; decides expiry and becomes `accepted_at` and `joined_at`.
        now: DateTime<Utc>,
    },
    /// Changes a member's role (Admins only, rule "Change role"); a change to the current role
    /// appends nothing. Refused with `NOT_FOUND` (account, member), `FORBIDDEN`, `LAST_ADMIN`,
    /// `SELF_CHANGE`.
    ChangeRole {
        /// The Admin making the change.
        actor: UserId,
        /// The member whose role changes; never the actor.
        user_id: UserId,
        /// The new role.
        role: Role,
    },
    /// Removes a member (Admins only) and cancels the invitations that member sent (rule "Remove
    /// member"). Refused with `NOT_FOUND` (account, member), `FORBIDDEN`, `LAST_ADMIN`,
    /// `SELF_CHANGE`.
    RemoveMember {
        /// The Admin removing the member.
        actor: UserId,
        /// The member to remove; never the actor.
        user_id: UserId,
        /// Current UTC instant; becomes `removed_at` and the cancellations' `cancelled_at`.
        now: DateTime<Utc>,
    },
    /// Records the outcome of a delivery attempt of an invitation email (the mailer, after the
    /// attempt; no user acts). Refused with `NOT_FOUND` (account, invitation) and `VALIDATION`
    /// (`sendCount` not a send of the invitation).
    RecordEmail {
        /// The invitation.
        invitation_id: InvitationId,
        /// Which send the email carried (1 ..= the invitation's send count).
        send_count: u32,
        /// What happened.
        outcome: EmailOutcome,
        /// Current UTC instant; becomes `sent_at` or `failed_at`.
        now: DateTime<Utc>,
    },
}

/// The outcome of one delivery attempt of an invitation email.
#[derive(Debug, Clone, PartialEq)]
pub enum EmailOutcome {
    /// Handed over; `message_id` without angle brackets.
    Sent {
        /// The message's `Message-ID`.
        message_id: String,
    },
    /// Failed.
    Failed {
        /// The attempt, from 1.
        attempt: u32,
        /// The server's reply or the connection error, as received (cut to 500 characters
        /// and stripped of control characters by the decision).
        reply: String,
        /// Whether no further attempt follows.
        gave_up: bool,
    },
}
