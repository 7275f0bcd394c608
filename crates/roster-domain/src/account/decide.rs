//! How the account decides commands: every rule of `domain-rules.md` sections "Invitations" and
//! "Members and roles". Pure: the state is only read; events come back to be applied.
//!
//! Permission checks ask the matrix by name: [`Role::may_invite`], [`Role::may_resend`] and
//! [`Role::may_cancel`] (built on `Permission::Members`), `Permission::Roles` to change roles and
//! remove members. The authorization test (`tests/api/authorization.rs`) asks the same methods.

use super::{
    Account, AccountCommand, AccountEvent, EmailOutcome, Invitation, InvitationStatus, Member,
    MAX_ACCOUNT_NAME_LEN, REASON_CANCELLED, REASON_INVITER_REMOVED,
};
use crate::{Decide, DomainError, Email, InvitationId, Permission, Role, Text, UserId};
use chrono::{DateTime, Utc};

impl Account {
    fn actor_role(&self, actor: UserId) -> Result<Role, DomainError> {
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

    fn invitation(&self, id: InvitationId) -> Result<&Invitation, DomainError> {
        self.invitations.get(&id).ok_or(DomainError::NotFound("invitation"))
    }

    fn is_member_email(&self, email: &Email) -> bool {
        self.index().member_with_email(email).is_some()
    }

    fn has_pending_for(&self, email: &Email, now: DateTime<Utc>, except: Option<InvitationId>) -> bool {
        self.index().pending_for(email).any(|id| {
            Some(id) != except && self.invitations.get(&id).is_some_and(|inv| inv.status(now) == InvitationStatus::Pending)
        })
    }

    /// Resend and cancel are for the original inviter or an Admin ([`Role::may_resend`],
    /// [`Role::may_cancel`]), on a pending or expired invitation (rules "Resend" and "Cancel").
    fn check_inviter_or_admin(
        &self,
        actor: UserId,
        id: InvitationId,
        now: DateTime<Utc>,
        grants: bool,
    ) -> Result<&Invitation, DomainError> {
        let role = self.actor_role(actor)?;
        let inv = self.invitation(id)?;
        let own = inv.invited_by == actor;
        let may = if grants { role.may_resend(own, inv.role) } else { role.may_cancel(own) };
        if !may {
            return Err(DomainError::Forbidden);
        }
        match inv.status(now) {
            InvitationStatus::Pending | InvitationStatus::Expired => Ok(inv),
            _ => Err(DomainError::InvitationNotPending),
        }
    }

    /// Rules shared by role change and removal: only roles allowed the Roles feature (Admins),
    /// the last Admin stays, nobody changes themself. The last-Admin check comes first so the
    /// sole Admin hears the reason that actually holds them back (`LAST_ADMIN`, case F10).
    fn check_member_change(&self, actor: UserId, user_id: UserId, loses_admin: bool) -> Result<&Member, DomainError> {
        if !self.actor_role(actor)?.allows(Permission::Roles) {
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
}

impl Decide for Account {
    /// Decides `command` against the current state: the events to append, or why not (each
    /// [`AccountCommand`] variant lists its errors). `Ok(vec![])` is a no-op.
    fn decide(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, DomainError> {
        use AccountEvent as E;
        match command {
            AccountCommand::Create { name, founder, now } => {
                if self.created {
                    return Err(DomainError::validation("accountId", "account already exists"));
                }
                let name = Text::parse(&name, "name", MAX_ACCOUNT_NAME_LEN)?.into_string();
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
            AccountCommand::Invite { actor, invitation_id, email, role, token, now, ttl, mail_nonce } => {
                if !self.actor_role(actor)?.may_invite(role) {
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
                    mail_nonce,
                }])
            }
            AccountCommand::Resend { actor, invitation_id, token, now, ttl, mail_nonce, cooldown } => {
                let inv = self.check_inviter_or_admin(actor, invitation_id, now, true)?;
                if self.is_member_email(&inv.email) {
                    return Err(DomainError::AlreadyMember);
                }
                // An expired invitation may have been followed by a fresh one for the same email.
                if self.has_pending_for(&inv.email, now, Some(invitation_id)) {
                    return Err(DomainError::InvitationPending);
                }
                if mail_nonce.is_some() {
                    check_cooldown(inv.last_sent_at + cooldown, now)?;
                }
                Ok(vec![E::InvitationResent {
                    invitation_id,
                    resent_by: actor,
                    token_digest: token,
                    sent_at: now,
                    expires_at: now + ttl,
                    send_count: inv.send_count + 1,
                    mail_nonce,
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
                let inv = self.invitation_for_token(invitation_id, &token)?;
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
                    self.index()
                        // Rule "Remove member": the removed member's pending invitations are
                        // cancelled unless someone else (an Admin) has resent them since.
                        .pending_sent_by(user_id)
                        .map(|id| E::InvitationCancelled {
                            invitation_id: id,
                            cancelled_by: actor,
                            reason: REASON_INVITER_REMOVED.to_string(),
                            cancelled_at: now,
                        }),
                );
                Ok(events)
            }
            AccountCommand::RecordEmail { invitation_id, send_count, outcome, now } => {
                self.require_created()?;
                let inv = self.invitation(invitation_id)?;
                if send_count == 0 || send_count > inv.send_count {
                    return Err(DomainError::validation("sendCount", "not a send of this invitation"));
                }
                Ok(vec![match outcome {
                    EmailOutcome::Sent { message_id } => E::InvitationEmailSent { invitation_id, send_count, message_id, sent_at: now },
                    EmailOutcome::Failed { attempt, reply, gave_up } => E::InvitationEmailFailed {
                        invitation_id,
                        send_count,
                        attempt,
                        reply: clean_reply(&reply),
                        gave_up,
                        failed_at: now,
                    },
                }])
            }
        }
    }
}

/// Rule "Resend cooldown" (issue 12, abuse limits): an emailed resend before `ready_at` (the
/// last send + the cooldown) is refused with the whole seconds left, at least 1.
fn check_cooldown(ready_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), DomainError> {
    let left = ready_at - now;
    if left <= chrono::Duration::zero() {
        return Ok(());
    }
    let millis = u64::try_from(left.num_milliseconds()).unwrap_or(0);
    Err(DomainError::ResendTooSoon { retry_after_seconds: millis.div_ceil(1000).max(1) })
}

/// A server's reply as an event keeps it: control characters (CR/LF of multi-line replies
/// included) become spaces, at most [`MAX_REPLY_CHARS`] characters.
fn clean_reply(reply: &str) -> String {
    let spaced: String = reply.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MAX_REPLY_CHARS).collect()
}

/// Most characters of an SMTP reply an `InvitationEmailFailed` keeps.
pub const MAX_REPLY_CHARS: usize = 500;
