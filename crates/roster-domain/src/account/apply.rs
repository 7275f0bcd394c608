//! How events change the account's state, and its cqrs-es `Aggregate` impl. Applying never
//! fails: events are facts already decided, so an event naming a missing invitation or member
//! (impossible in a well-formed stream) changes nothing.

use super::{Account, AccountCommand, AccountEvent, Invitation, InvitationState, Member};
use crate::{aggregate, DomainError};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: AccountCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        aggregate::handle(self, command, sink).await
    }

    fn apply(&mut self, event: AccountEvent) {
        use AccountEvent as E;
        match event {
            E::AccountCreated { name, .. } => {
                self.created = true;
                self.name = name;
            }
            E::MemberJoined { user_id, email, role, .. } => {
                let member = Member { email, role };
                if let Some(old) = self.members.insert(user_id, member.clone()) {
                    self.index.remove_member(user_id, &old);
                }
                self.index.add_member(user_id, &member);
            }
            E::MemberInvited { invitation_id, email, role, invited_by, token_digest, sent_at, expires_at, .. } => {
                let inv = Invitation {
                    email,
                    role,
                    invited_by,
                    last_sent_by: invited_by,
                    token_digest,
                    last_sent_at: sent_at,
                    expires_at,
                    send_count: 1,
                    state: InvitationState::Pending,
                };
                if let Some(old) = self.invitations.remove(&invitation_id) {
                    self.index.remove_invitation(invitation_id, &old);
                }
                self.index.add_invitation(invitation_id, &inv);
                self.invitations.insert(invitation_id, inv);
            }
            E::InvitationResent { invitation_id, resent_by, token_digest, sent_at, expires_at, send_count, .. } => {
                if let Some(inv) = self.invitations.get_mut(&invitation_id) {
                    self.index.remove_invitation(invitation_id, inv);
                    inv.last_sent_by = resent_by;
                    inv.token_digest = token_digest;
                    inv.last_sent_at = sent_at;
                    inv.expires_at = expires_at;
                    inv.send_count = send_count;
                    self.index.add_invitation(invitation_id, inv);
                }
            }
            E::InvitationCancelled { invitation_id, .. } => {
                if let Some(inv) = self.invitations.get_mut(&invitation_id) {
                    self.index.remove_invitation(invitation_id, inv);
                    inv.state = InvitationState::Cancelled;
                }
            }
            E::InvitationAccepted { invitation_id, .. } => {
                if let Some(inv) = self.invitations.get_mut(&invitation_id) {
                    self.index.remove_invitation(invitation_id, inv);
                    inv.state = InvitationState::Accepted;
                }
            }
            E::MemberRoleChanged { user_id, to, .. } => {
                if let Some(m) = self.members.get_mut(&user_id) {
                    self.index.remove_member(user_id, m);
                    m.role = to;
                    self.index.add_member(user_id, m);
                }
            }
            E::MemberRemoved { user_id, .. } => {
                if let Some(old) = self.members.remove(&user_id) {
                    self.index.remove_member(user_id, &old);
                }
            }
            // Delivery outcomes change no rule's state: the read models keep them.
            E::InvitationEmailSent { .. } | E::InvitationEmailFailed { .. } => {}
        }
    }
}
