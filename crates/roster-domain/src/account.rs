//! The account aggregate: one tenant's members and invitations.
//!
//! Every rule of `domain-rules.md` sections "Invitations" and "Members and roles" is decided in
//! [`Account::decide`]. Keeping members and invitations in one aggregate makes each invariant a
//! check on one stream, which the event store's expected-version check then protects against
//! concurrent commands: at most one pending invitation per email, no double membership, and at
//! least one Admin.

use crate::{bounded_text, DomainError, Email, Role, TokenDigest};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Longest account name, in characters.
pub const MAX_ACCOUNT_NAME_LEN: usize = 100;

/// The reason recorded when removing a member cancels the invitations they sent
/// (rule "Remove member").
pub const REASON_INVITER_REMOVED: &str = "inviter removed";
/// The reason recorded when someone cancels an invitation by hand.
pub const REASON_CANCELLED: &str = "cancelled";

/// A user as a command names them: id plus normalised email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    /// The user's id (their `User` stream id).
    pub id: Uuid,
    /// The user's normalised email.
    pub email: Email,
}

/// What an actor asks of an account. Times are passed in (`now`); the domain reads no clock.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// Opens the account with `founder` as its only Admin (sign-up, `createAccount`). Refused with
    /// `VALIDATION` (`accountId` if it already exists; `name` if not 1–100 characters).
    Create {
        /// Account name; trimmed, 1–100 characters ([`MAX_ACCOUNT_NAME_LEN`]).
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
        actor: Uuid,
        /// Fresh id for the new invitation, chosen by the caller.
        invitation_id: Uuid,
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
    },
    /// Rotates the token of a pending or expired invitation and restarts its expiry (rule
    /// "Resend"). Refused with `NOT_FOUND` (account, invitation), `FORBIDDEN` (neither an Admin nor
    /// the original inviter still able to grant its role), `INVITATION_NOT_PENDING`,
    /// `ALREADY_MEMBER`, `INVITATION_PENDING` (another pending invitation for the email).
    Resend {
        /// The user resending: the original inviter or an Admin.
        actor: Uuid,
        /// The invitation to resend; its id is kept.
        invitation_id: Uuid,
        /// SHA-256 digest of the new token (64 lower-case hex characters); the old link dies.
        token: TokenDigest,
        /// Current UTC instant; becomes the new `sent_at`.
        now: DateTime<Utc>,
        /// Invitation lifetime; the new `expires_at = now + ttl`.
        ttl: Duration,
    },
    /// Cancels a pending or expired invitation (rule "Cancel"). Refused with `NOT_FOUND` (account,
    /// invitation), `FORBIDDEN` (neither an Admin nor the original inviter still able to invite),
    /// `INVITATION_NOT_PENDING`.
    Cancel {
        /// The user cancelling: the original inviter or an Admin.
        actor: Uuid,
        /// The invitation to cancel.
        invitation_id: Uuid,
        /// Current UTC instant; becomes `cancelled_at`.
        now: DateTime<Utc>,
    },
    /// Accepts an invitation for `user` with the digest of the presented token (rule "Accept").
    /// Refused with `INVALID_TOKEN` (also for an unknown invitation), `INVITATION_EXPIRED`,
    /// `INVITATION_NOT_PENDING`, `EMAIL_MISMATCH` (`user.email` is not the invited email),
    /// `ALREADY_MEMBER`.
    Accept {
        /// The invitation the presented token names.
        invitation_id: Uuid,
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
        actor: Uuid,
        /// The member whose role changes; never the actor.
        user_id: Uuid,
        /// The new role.
        role: Role,
    },
    /// Removes a member (Admins only) and cancels the invitations that member sent (rule "Remove
    /// member"). Refused with `NOT_FOUND` (account, member), `FORBIDDEN`, `LAST_ADMIN`,
    /// `SELF_CHANGE`.
    RemoveMember {
        /// The Admin removing the member.
        actor: Uuid,
        /// The member to remove; never the actor.
        user_id: Uuid,
        /// Current UTC instant; becomes `removed_at` and the cancellations' `cancelled_at`.
        now: DateTime<Utc>,
    },
}

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
        created_by: Uuid,
        /// When the account was opened (UTC instant).
        created_at: DateTime<Utc>,
    },
    /// A user became a member; emitted by `Create` (the founder, as Admin) and by `Accept`.
    MemberJoined {
        /// The new member's user id.
        user_id: Uuid,
        /// The member's normalised email (for an accepted invitation, the invited email).
        email: Email,
        /// `Admin` for the founder, otherwise the invitation's role.
        role: Role,
        /// When they joined (UTC instant).
        joined_at: DateTime<Utc>,
        /// The invitation accepted to join; `None` for the founder.
        invitation_id: Option<Uuid>,
    },
    /// An invitation was sent; emitted by `Invite`. Version 2.0.0: 1.0 had `invited_at` and no
    /// `expires_at`, and is upcast on read.
    MemberInvited {
        /// The new invitation's id.
        invitation_id: Uuid,
        /// The invitee's normalised email.
        email: Email,
        /// Role granted on acceptance.
        role: Role,
        /// The inviting member's user id.
        invited_by: Uuid,
        /// SHA-256 digest of the invite token, 64 lower-case hex characters (never the token).
        token_digest: TokenDigest,
        /// When it was sent (UTC instant).
        sent_at: DateTime<Utc>,
        /// `sent_at` + the invite TTL, 7 days by default (rule "Expiry").
        expires_at: DateTime<Utc>,
    },
    /// A pending or expired invitation was sent again with a new token; emitted by `Resend`
    /// (rule "Resend").
    InvitationResent {
        /// The invitation; its id is kept.
        invitation_id: Uuid,
        /// Who resent it: the original inviter or an Admin.
        resent_by: Uuid,
        /// SHA-256 digest of the new token, 64 lower-case hex characters; replaces the old one.
        token_digest: TokenDigest,
        /// When it was re-sent (UTC instant).
        sent_at: DateTime<Utc>,
        /// `sent_at` + the invite TTL; the expiry restarts.
        expires_at: DateTime<Utc>,
        /// How many times the invitation has now been sent, the first send included.
        send_count: u32,
    },
    /// An invitation was cancelled; emitted by `Cancel`, and by `RemoveMember` for each pending
    /// invitation whose current link the removed member sent (rule "Remove member").
    InvitationCancelled {
        /// The cancelled invitation.
        invitation_id: Uuid,
        /// Who cancelled it; for [`REASON_INVITER_REMOVED`], the Admin who removed the inviter.
        cancelled_by: Uuid,
        /// [`REASON_CANCELLED`] (`Cancel`) or [`REASON_INVITER_REMOVED`] (`RemoveMember`).
        reason: String,
        /// When it was cancelled (UTC instant).
        cancelled_at: DateTime<Utc>,
    },
    /// An invitation was accepted; emitted by `Accept`, always followed by `MemberJoined`.
    InvitationAccepted {
        /// The accepted invitation.
        invitation_id: Uuid,
        /// The accepting user, now a member.
        user_id: Uuid,
        /// When it was accepted (UTC instant).
        accepted_at: DateTime<Utc>,
    },
    /// A member's role changed; emitted by `ChangeRole`, never for an unchanged role. Has no
    /// timestamp: its time is the metadata's `occurred_at`.
    MemberRoleChanged {
        /// The member whose role changed.
        user_id: Uuid,
        /// The previous role.
        from: Role,
        /// The new role.
        to: Role,
        /// The Admin who changed it.
        changed_by: Uuid,
    },
    /// A member was removed; emitted by `RemoveMember`, followed by the `InvitationCancelled`s
    /// (reason [`REASON_INVITER_REMOVED`]) of their pending invitations.
    MemberRemoved {
        /// The removed member's user id.
        user_id: Uuid,
        /// The Admin who removed them.
        removed_by: Uuid,
        /// When they were removed (UTC instant).
        removed_at: DateTime<Utc>,
    },
}

/// The current version of every account event type (semantic versions, as cqrs-es upcasters
/// compare them). `MemberInvited` 1.0 is read through an upcaster; see `roster-store`.
pub fn event_version(event_type: &str) -> &'static str {
    match event_type {
        "MemberInvited" => "2.0.0",
        _ => "1.0.0",
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
        };
        name.to_string()
    }

    fn event_version(&self) -> String {
        event_version(&self.event_type()).to_string()
    }
}

/// A member as the aggregate needs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The member's normalised email.
    pub email: Email,
    /// The member's role in this account.
    pub role: Role,
}

/// Where an invitation stands, before expiry is considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InvitationState {
    /// Sent, neither accepted nor cancelled; may have expired (see [`InvitationStatus::at`]).
    Pending,
    /// Accepted; its token can never be used again.
    Accepted,
    /// Cancelled by hand or because the inviter was removed; its token no longer works.
    Cancelled,
}

/// An invitation's status as clients see it (`InvitationStatus` in the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

    /// The serialised name, e.g. `PENDING`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Accepted => "ACCEPTED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
        }
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
    pub invited_by: Uuid,
    /// Who sent the current link: the inviter, or whoever resent it last.
    #[serde(default)]
    pub last_sent_by: Uuid,
    /// SHA-256 digest of the current token, 64 lower-case hex characters.
    pub token_digest: TokenDigest,
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

/// The account aggregate's state, rebuilt from its events (and snapshotted as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// `false` until `AccountCreated`.
    pub created: bool,
    /// Account name, trimmed, 1–100 characters.
    pub name: String,
    /// Current members by user id.
    pub members: BTreeMap<Uuid, Member>,
    /// Every invitation ever sent, by invitation id; accepted and cancelled ones stay.
    pub invitations: BTreeMap<Uuid, Invitation>,
}

impl Account {
    /// The role of `user_id` in this account, if a member.
    pub fn role_of(&self, user_id: Uuid) -> Option<Role> {
        self.members.get(&user_id).map(|m| m.role)
    }

    /// How many members are Admins.
    pub fn admin_count(&self) -> usize {
        self.members.values().filter(|m| m.role == Role::Admin).count()
    }

    fn actor_role(&self, actor: Uuid) -> Result<Role, DomainError> {
        self.require_created()?;
        self.role_of(actor).ok_or(DomainError::Forbidden)
    }

    fn require_created(&self) -> Result<(), DomainError> {
        if self.created {
            Ok(())
        } else {
            Err(DomainError::NotFound("account"))
        }
    }

    fn invitation(&self, id: Uuid) -> Result<&Invitation, DomainError> {
        self.invitations.get(&id).ok_or(DomainError::NotFound("invitation"))
    }

    fn is_member_email(&self, email: &Email) -> bool {
        self.members.values().any(|m| &m.email == email)
    }

    fn has_pending_for(&self, email: &Email, now: DateTime<Utc>, except: Option<Uuid>) -> bool {
        self.invitations.iter().any(|(id, inv)| {
            Some(*id) != except && &inv.email == email && inv.status(now) == InvitationStatus::Pending
        })
    }

    /// Resend and cancel are for the original inviter or an Admin, on a pending or expired
    /// invitation (rules "Resend" and "Cancel"). Resending issues a new link, so a non-Admin
    /// inviter must still be allowed to grant the invited role (rule "Who"); cancelling only
    /// takes access away, so inviting at all suffices.
    fn check_inviter_or_admin(&self, actor: Uuid, id: Uuid, now: DateTime<Utc>, grants: bool) -> Result<&Invitation, DomainError> {
        let role = self.actor_role(actor)?;
        let inv = self.invitation(id)?;
        let may = if grants { role.can_grant().contains(&inv.role) } else { role.can_invite() };
        if role != Role::Admin && !(inv.invited_by == actor && may) {
            return Err(DomainError::Forbidden);
        }
        match inv.status(now) {
            InvitationStatus::Pending | InvitationStatus::Expired => Ok(inv),
            _ => Err(DomainError::InvitationNotPending),
        }
    }

    /// Rules shared by role change and removal: Admins only, the last Admin stays, nobody
    /// changes themself. The last-Admin check comes first so the sole Admin hears the reason
    /// that actually holds them back (`LAST_ADMIN`), as case F10 expects.
    fn check_member_change(&self, actor: Uuid, user_id: Uuid, loses_admin: bool) -> Result<&Member, DomainError> {
        if self.actor_role(actor)? != Role::Admin {
            return Err(DomainError::Forbidden);
        }
        let target = self.members.get(&user_id).ok_or(DomainError::NotFound("member"))?;
        if loses_admin && target.role == Role::Admin && self.admin_count() <= 1 {
            return Err(DomainError::LastAdmin);
        }
        if actor == user_id {
            return Err(DomainError::SelfChange);
        }
        Ok(target)
    }

    /// Decides `command` against the current state: the events to append, or why not.
    /// An `Ok(vec![])` is a no-op (e.g. changing a role to the role it already is).
    pub fn decide(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, DomainError> {
        use AccountEvent as E;
        match command {
            AccountCommand::Create { name, founder, now } => {
                if self.created {
                    return Err(DomainError::validation("accountId", "account already exists"));
                }
                let name = bounded_text(&name, "name", MAX_ACCOUNT_NAME_LEN)?;
                Ok(vec![
                    E::AccountCreated { name, created_by: founder.id, created_at: now },
                    E::MemberJoined {
                        user_id: founder.id,
                        email: founder.email,
                        role: Role::Admin,
                        joined_at: now,
                        invitation_id: None,
                    },
                ])
            }
            AccountCommand::Invite { actor, invitation_id, email, role, token, now, ttl } => {
                let actor_role = self.actor_role(actor)?;
                if !actor_role.can_grant().contains(&role) {
                    return Err(DomainError::Forbidden);
                }
                if self.is_member_email(&email) {
                    return Err(DomainError::AlreadyMember);
                }
                if self.has_pending_for(&email, now, None) {
                    return Err(DomainError::InvitationPending);
                }
                if self.invitations.contains_key(&invitation_id) {
                    return Err(DomainError::validation("invitationId", "invitation id already used"));
                }
                Ok(vec![E::MemberInvited {
                    invitation_id,
                    email,
                    role,
                    invited_by: actor,
                    token_digest: token,
                    sent_at: now,
                    expires_at: now + ttl,
                }])
            }
            AccountCommand::Resend { actor, invitation_id, token, now, ttl } => {
                let inv = self.check_inviter_or_admin(actor, invitation_id, now, true)?;
                if self.is_member_email(&inv.email) {
                    return Err(DomainError::AlreadyMember);
                }
                // An expired invitation may have been followed by a fresh one for the same email.
                if self.has_pending_for(&inv.email, now, Some(invitation_id)) {
                    return Err(DomainError::InvitationPending);
                }
                Ok(vec![E::InvitationResent {
                    invitation_id,
                    resent_by: actor,
                    token_digest: token,
                    sent_at: now,
                    expires_at: now + ttl,
                    send_count: inv.send_count + 1,
                }])
            }
            AccountCommand::Cancel { actor, invitation_id, now } => {
                self.check_inviter_or_admin(actor, invitation_id, now, false)?;
                Ok(vec![E::InvitationCancelled {
                    invitation_id,
                    cancelled_by: actor,
                    reason: REASON_CANCELLED.to_string(),
                    cancelled_at: now,
                }])
            }
            AccountCommand::Accept { invitation_id, token, user, now } => {
                // A token that names an unknown invitation does not verify either.
                let inv = self.invitation(invitation_id).map_err(|_| DomainError::InvalidToken)?;
                if !inv.token_digest.verifies(&token) {
                    return Err(DomainError::InvalidToken);
                }
                match inv.status(now) {
                    InvitationStatus::Pending => {}
                    InvitationStatus::Expired => return Err(DomainError::InvitationExpired),
                    _ => return Err(DomainError::InvitationNotPending),
                }
                if inv.email != user.email {
                    return Err(DomainError::EmailMismatch);
                }
                if self.members.contains_key(&user.id) {
                    return Err(DomainError::AlreadyMember);
                }
                Ok(vec![
                    E::InvitationAccepted { invitation_id, user_id: user.id, accepted_at: now },
                    E::MemberJoined {
                        user_id: user.id,
                        email: user.email,
                        role: inv.role,
                        joined_at: now,
                        invitation_id: Some(invitation_id),
                    },
                ])
            }
            AccountCommand::ChangeRole { actor, user_id, role } => {
                let target = self.check_member_change(actor, user_id, role != Role::Admin)?;
                if target.role == role {
                    return Ok(vec![]);
                }
                Ok(vec![E::MemberRoleChanged { user_id, from: target.role, to: role, changed_by: actor }])
            }
            AccountCommand::RemoveMember { actor, user_id, now } => {
                self.check_member_change(actor, user_id, true)?;
                let mut events = vec![E::MemberRemoved { user_id, removed_by: actor, removed_at: now }];
                events.extend(
                    self.invitations
                        .iter()
                        // Rule "Remove member": the removed member's pending invitations are
                        // cancelled unless someone else (an Admin) has resent them since.
                        .filter(|(_, inv)| inv.last_sent_by == user_id && inv.state == InvitationState::Pending)
                        .map(|(id, _)| E::InvitationCancelled {
                            invitation_id: *id,
                            cancelled_by: actor,
                            reason: REASON_INVITER_REMOVED.to_string(),
                            cancelled_at: now,
                        }),
                );
                Ok(events)
            }
        }
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: AccountCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        use AccountEvent as E;
        match event {
            E::AccountCreated { name, .. } => {
                self.created = true;
                self.name = name;
            }
            E::MemberJoined { user_id, email, role, .. } => {
                self.members.insert(user_id, Member { email, role });
            }
            E::MemberInvited { invitation_id, email, role, invited_by, token_digest, expires_at, .. } => {
                let inv = Invitation {
                    email,
                    role,
                    invited_by,
                    last_sent_by: invited_by,
                    token_digest,
                    expires_at,
                    send_count: 1,
                    state: InvitationState::Pending,
                };
                self.invitations.insert(invitation_id, inv);
            }
            E::InvitationResent { invitation_id, resent_by, token_digest, expires_at, send_count, .. } => {
                if let Some(inv) = self.invitations.get_mut(&invitation_id) {
                    inv.last_sent_by = resent_by;
                    inv.token_digest = token_digest;
                    inv.expires_at = expires_at;
                    inv.send_count = send_count;
                }
            }
            E::InvitationCancelled { invitation_id, .. } => {
                if let Some(inv) = self.invitations.get_mut(&invitation_id) {
                    inv.state = InvitationState::Cancelled;
                }
            }
            E::InvitationAccepted { invitation_id, .. } => {
                if let Some(inv) = self.invitations.get_mut(&invitation_id) {
                    inv.state = InvitationState::Accepted;
                }
            }
            E::MemberRoleChanged { user_id, to, .. } => {
                if let Some(m) = self.members.get_mut(&user_id) {
                    m.role = to;
                }
            }
            E::MemberRemoved { user_id, .. } => {
                self.members.remove(&user_id);
            }
        }
    }
}
