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
    pub id: Uuid,
    pub email: Email,
}

/// What an actor asks of an account. Times are passed in (`now`); the domain reads no clock.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// Opens the account with `founder` as its only Admin (sign-up, `createAccount`).
    Create { name: String, founder: UserRef, now: DateTime<Utc> },
    /// Invites `email` with `role`; the token's digest is stored, never the token.
    Invite {
        actor: Uuid,
        invitation_id: Uuid,
        email: Email,
        role: Role,
        token: TokenDigest,
        now: DateTime<Utc>,
        ttl: Duration,
    },
    /// Rotates the token of a pending or expired invitation and restarts its expiry.
    Resend { actor: Uuid, invitation_id: Uuid, token: TokenDigest, now: DateTime<Utc>, ttl: Duration },
    /// Cancels a pending or expired invitation.
    Cancel { actor: Uuid, invitation_id: Uuid, now: DateTime<Utc> },
    /// Accepts an invitation for `user` with the digest of the presented token.
    /// `user.email` must be the invited email (`EMAIL_MISMATCH` otherwise).
    Accept { invitation_id: Uuid, token: TokenDigest, user: UserRef, now: DateTime<Utc> },
    /// Changes a member's role (Admins only).
    ChangeRole { actor: Uuid, user_id: Uuid, role: Role },
    /// Removes a member (Admins only) and cancels the invitations that member sent.
    RemoveMember { actor: Uuid, user_id: Uuid, now: DateTime<Utc> },
}

/// What happened to an account. Serialised externally tagged (`{"MemberInvited": {...}}`), the
/// shape cqrs-es stores; `event_type` is the variant name. See `docs/events.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountCreated { name: String, created_by: Uuid, created_at: DateTime<Utc> },
    MemberJoined {
        user_id: Uuid,
        email: Email,
        role: Role,
        joined_at: DateTime<Utc>,
        /// The invitation accepted to join; `None` for the founder.
        invitation_id: Option<Uuid>,
    },
    MemberInvited {
        invitation_id: Uuid,
        email: Email,
        role: Role,
        invited_by: Uuid,
        token_digest: TokenDigest,
        sent_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    InvitationResent {
        invitation_id: Uuid,
        resent_by: Uuid,
        token_digest: TokenDigest,
        sent_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        /// How many times the invitation has now been sent, the first send included.
        send_count: u32,
    },
    InvitationCancelled {
        invitation_id: Uuid,
        cancelled_by: Uuid,
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
    InvitationAccepted { invitation_id: Uuid, user_id: Uuid, accepted_at: DateTime<Utc> },
    MemberRoleChanged { user_id: Uuid, from: Role, to: Role, changed_by: Uuid },
    MemberRemoved { user_id: Uuid, removed_by: Uuid, removed_at: DateTime<Utc> },
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
    pub email: Email,
    pub role: Role,
}

/// Where an invitation stands, before expiry is considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InvitationState {
    Pending,
    Accepted,
    Cancelled,
}

/// An invitation's status as clients see it (`InvitationStatus` in the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Cancelled,
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
    pub email: Email,
    pub role: Role,
    pub invited_by: Uuid,
    /// Who sent the current link: the inviter, or whoever resent it last.
    #[serde(default)]
    pub last_sent_by: Uuid,
    pub token_digest: TokenDigest,
    pub expires_at: DateTime<Utc>,
    pub send_count: u32,
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
    pub name: String,
    pub members: BTreeMap<Uuid, Member>,
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
