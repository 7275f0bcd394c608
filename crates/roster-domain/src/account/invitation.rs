//! Invitations as the account aggregate keeps them, and the status clients see.

use crate::{Email, Role, TokenDigest, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an invitation stands, before expiry is considered. Snapshots hold it by serde as
/// `Pending`/`Accepted`/`Cancelled` (unchanged, so old snapshots decode); with the `sqlx`
/// feature the read models store it as TEXT `'PENDING'`/`'ACCEPTED'`/`'CANCELLED'`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
pub enum InvitationState {
    /// Sent, neither accepted nor cancelled; may have expired (see [`InvitationStatus::at`]).
    Pending,
    /// Accepted; its token can never be used again.
    Accepted,
    /// Cancelled by hand or because the inviter was removed; its token no longer works.
    Cancelled,
}

/// An invitation's status as clients see it (`InvitationStatus` in the contract). Serde and
/// [`InvitationStatus::as_str`] both spell it `PENDING`, `ACCEPTED`, `CANCELLED`, `EXPIRED`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::AsRefStr,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum InvitationStatus {
    /// Awaiting acceptance, before `expires_at`; shown as "Invitation sent for `<role>`".
    Pending,
    /// Accepted; the invitee is a member. Shown as "Joined as `<role>`".
    Accepted,
    /// Cancelled; the record stays. Shown as "Invitation cancelled".
    Cancelled,
    /// Pending but past `expires_at`: cannot be accepted, may be resent or cancelled (rule
    /// "Expiry"). Shown as "Invitation expired".
    Expired,
}

impl InvitationStatus {
    /// The derived status: a pending invitation whose `expires_at` is not after `now` reads
    /// `Expired` (rule "Expiry").
    pub fn at(state: &InvitationState, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        match state {
            InvitationState::Accepted => Self::Accepted,
            InvitationState::Cancelled => Self::Cancelled,
            InvitationState::Pending if expires_at <= now => Self::Expired,
            InvitationState::Pending => Self::Pending,
        }
    }

    /// The text the invitations list shows (rule "Status text").
    pub fn text(self, role: Role) -> String {
        match self {
            Self::Pending => format!("Invitation sent for {}", role.display_name()),
            Self::Expired => "Invitation expired".to_string(),
            Self::Cancelled => "Invitation cancelled".to_string(),
            Self::Accepted => format!("Joined as {}", role.display_name()),
        }
    }

    /// The serialised name, e.g. `PENDING`; always equal to serde's.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An invitation as the aggregate needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invitation {
    /// The invitee's normalised email.
    pub email: Email,
    /// Role granted on acceptance.
    pub role: Role,
    /// The original inviter's user id.
    pub invited_by: UserId,
    /// Who sent the current link: the inviter, or whoever resent it last.
    #[serde(default = "unknown_sender")]
    pub last_sent_by: UserId,
    /// SHA-256 digest of the current token, 64 lower-case hex characters.
    pub token_digest: TokenDigest,
    /// When the current link was sent (UTC instant): the `sent_at` of the last `MemberInvited`
    /// or `InvitationResent`. The resend cooldown counts from it.
    #[serde(default = "long_ago")]
    pub last_sent_at: DateTime<Utc>,
    /// When the current link expires (UTC instant): last `sent_at` + invite TTL.
    pub expires_at: DateTime<Utc>,
    /// How many times the invitation has been sent, the first send included.
    pub send_count: u32,
    /// Where it stands before expiry; see [`Invitation::status`] for the status clients see.
    pub state: InvitationState,
}

impl Invitation {
    /// This invitation's status at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> InvitationStatus {
        InvitationStatus::at(&self.state, self.expires_at, now)
    }
}

/// `last_sent_by` of snapshots taken before the field existed: the nil UUID, which matches no
/// user, so removing a member cancels none of those invitations (as before).
fn unknown_sender() -> UserId {
    UserId::from_uuid(Uuid::nil())
}

/// `last_sent_at` of states encoded before the field existed (snapshot format 2 and older,
/// which the store no longer loads): the Unix epoch, so no cooldown holds a resend back.
fn long_ago() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_equals_as_str() {
        use InvitationStatus::*;
        for status in [Pending, Accepted, Cancelled, Expired] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(status.as_ref(), status.as_str());
        }
    }
}
