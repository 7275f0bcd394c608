//! Property test: random sequences of commands over a small pool of users, emails and
//! invitation ids (see `strategies.rs`), checking the account's invariants after every step,
//! and that `Aggregate::handle` agrees with `decide`.

use crate::fixtures::*;
use crate::strategies::*;
use cqrs_es::event_sink::EventSink;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use roster_domain::account::Index;

/// The test's side of the world: the aggregate, the clock and the secrets handed out.
struct World {
    account: Account,
    now: DateTime<Utc>,
    next_secret: u32,
    /// Per invitation: the secrets of the last two successful sends, newest last.
    secrets: HashMap<InvitationId, Vec<[u8; 32]>>,
}

impl World {
    fn fresh_secret(&mut self) -> [u8; 32] {
        self.next_secret += 1;
        let mut secret = [0x5c; 32];
        secret[..4].copy_from_slice(&self.next_secret.to_le_bytes());
        secret
    }

    fn digest(invitation: InvitationId, secret: [u8; 32]) -> TokenDigest {
        InviteToken::new(ACCOUNT, invitation, secret).digest()
    }

    fn who(&self, who: &Who) -> UserId {
        match who {
            Who::Member(index) if !self.account.members.is_empty() => {
                let members: Vec<UserId> = self.account.members.keys().copied().collect();
                members[index.index(members.len())]
            }
            Who::Member(index) => pool_user(index.index(USERS)),
            Who::Pool(i) => pool_user(*i),
        }
    }

    fn which(&self, which: &Which) -> InvitationId {
        match which {
            Which::Existing(index) if !self.account.invitations.is_empty() => {
                let ids: Vec<InvitationId> = self.account.invitations.keys().copied().collect();
                ids[index.index(ids.len())]
            }
            Which::Existing(index) => pool_invitation(index.index(INVITATIONS)),
            Which::Pool(i) => pool_invitation(*i),
        }
    }

    /// Turns `op` into a command; returns the secret a successful invite/resend would issue.
    fn command(&mut self, op: &Op) -> (C, Option<(InvitationId, [u8; 32])>) {
        let now = self.now;
        match op {
            Op::Create {
                founder,
                valid_name,
            } => {
                let name = if *valid_name { "Pool Inc" } else { "   " };
                let founder = UserRef {
                    id: pool_user(*founder),
                    email: pool_email(*founder),
                };
                (
                    C::Create {
                        name: name.into(),
                        founder,
                        now,
                    },
                    None,
                )
            }
            Op::Invite {
                actor,
                inv,
                email,
                role,
            } => {
                let (id, secret) = (pool_invitation(*inv), self.fresh_secret());
                let command = C::Invite {
                    actor: self.who(actor),
                    invitation_id: id,
                    email: pool_email(*email),
                    role: *role,
                    token: Self::digest(id, secret),
                    now,
                    ttl: ttl(),
                    mail_nonce: None,
                };
                (command, Some((id, secret)))
            }
            Op::Resend { actor, inv } => {
                let (id, secret) = (self.which(inv), self.fresh_secret());
                let command = C::Resend {
                    actor: self.who(actor),
                    invitation_id: id,
                    token: Self::digest(id, secret),
                    now,
                    ttl: ttl(),
                    mail_nonce: None,
                    cooldown: cooldown(),
                };
                (command, Some((id, secret)))
            }
            Op::Cancel { actor, inv } => (
                C::Cancel {
                    actor: self.who(actor),
                    invitation_id: self.which(inv),
                    now,
                },
                None,
            ),
            Op::Accept { inv, by, token } => {
                let id = self.which(inv);
                let issued = self.secrets.get(&id).cloned().unwrap_or_default();
                let secret = match token {
                    TokenChoice::Current => issued.last().copied().unwrap_or([0xee; 32]),
                    TokenChoice::Previous => {
                        issued.iter().rev().nth(1).copied().unwrap_or([0xef; 32])
                    }
                    TokenChoice::Forged => [0xff; 32],
                };
                let who = match by {
                    Accepter::Invitee => {
                        let invitee = self.account.invitations.get(&id).map_or(0, |invitation| {
                            (0..USERS)
                                .find(|&i| pool_email(i) == invitation.email)
                                .unwrap()
                        });
                        UserRef {
                            id: pool_user(invitee),
                            email: pool_email(invitee),
                        }
                    }
                    Accepter::Pool { user, email } => UserRef {
                        id: pool_user(*user),
                        email: pool_email(*email),
                    },
                };
                let command = C::Accept {
                    invitation_id: id,
                    token: Self::digest(id, secret),
                    user: who,
                    now,
                };
                (command, None)
            }
            Op::ChangeRole { actor, user, role } => {
                let command = C::ChangeRole {
                    actor: self.who(actor),
                    user_id: self.who(user),
                    role: *role,
                };
                (command, None)
            }
            Op::Remove { actor, user } => {
                let command = C::RemoveMember {
                    actor: self.who(actor),
                    user_id: self.who(user),
                    now,
                };
                (command, None)
            }
        }
    }
}

/// Runs `command` through `Aggregate::handle` on a copy of `account`, as cqrs-es would.
fn handle(
    runtime: &tokio::runtime::Runtime,
    account: &Account,
    command: C,
) -> (Account, Result<Vec<E>, DomainError>) {
    let mut copy = account.clone();
    let result = runtime.block_on(async {
        let sink = EventSink::<Account>::default();
        let result = copy.handle(command, &(), &sink).await;
        let events = sink.collect().await;
        result.map(|()| events)
    });
    (copy, result)
}

/// The invariants that hold after every step.
fn check_invariants(account: &Account, now: DateTime<Utc>) -> Result<(), TestCaseError> {
    if !account.created {
        prop_assert!(
            account.members.is_empty() && account.invitations.is_empty(),
            "{account:?}"
        );
        return Ok(());
    }
    // The look-ups kept by applying events are those the state implies, and a snapshot
    // (JSON without the index) decodes to the same account, index rebuilt.
    prop_assert_eq!(account.index(), &Index::of(account));
    let decoded: Account = serde_json::from_value(serde_json::to_value(account).unwrap()).unwrap();
    prop_assert_eq!(&decoded, account);

    // At least one Admin.
    prop_assert!(account.admin_count() >= 1, "no admin left: {account:?}");
    let admins = account.members.values().filter(|m| m.role == roster_domain::Role::Admin).count();
    prop_assert_eq!(account.admin_count(), admins);

    // At most one PENDING invitation per email.
    let mut pending: BTreeMap<&Email, usize> = BTreeMap::new();
    for invitation in account.invitations.values() {
        if invitation.status(now) == InvitationStatus::Pending {
            *pending.entry(&invitation.email).or_default() += 1;
        }
        prop_assert!(invitation.send_count >= 1);
    }
    for (email, count) in &pending {
        prop_assert!(
            *count <= 1,
            "{count} pending invitations for {email}: {account:?}"
        );
    }

    // Every member's email is unique (no email belongs to two members).
    let mut member_emails: BTreeMap<&Email, usize> = BTreeMap::new();
    for member in account.members.values() {
        *member_emails.entry(&member.email).or_default() += 1;
    }
    for (email, count) in &member_emails {
        prop_assert!(
            *count == 1,
            "{email} belongs to {count} members: {account:?}"
        );
    }

    // No member email also has a pending invitation (it would be ALREADY_MEMBER).
    for email in pending.keys() {
        prop_assert!(
            !member_emails.contains_key(email),
            "member {email} still has a pending invitation: {account:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_random_command_sequences(steps in steps_strategy()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut world = World { account: Account::default(), now: t0(), next_secret: 0, secrets: HashMap::new() };

        for (hours, op) in &steps {
            world.now += Duration::hours(*hours);
            let (command, issued) = world.command(op);
            let before = world.account.clone();

            let decided = world.account.decide(command.clone());
            let (handled_state, handled) = handle(&runtime, &before, command.clone());
            prop_assert_eq!(&handled, &decided, "handle and decide disagree on {:?}", command);

            match decided {
                Err(error) => {
                    prop_assert!(CONTRACT_CODES.contains(&error.code()), "{:?} is not a contract code", error);
                    // A refused command leaves the state unchanged and appends nothing.
                    prop_assert_eq!(&world.account, &before);
                    prop_assert_eq!(&handled_state, &before, "handle changed the state on {:?}", error);
                }
                Ok(events) => {
                    for event in events {
                        world.account.apply(event);
                    }
                    prop_assert_eq!(&handled_state, &world.account);
                    if let Some((id, secret)) = issued {
                        let secrets = world.secrets.entry(id).or_default();
                        secrets.push(secret);
                        if secrets.len() > 2 {
                            secrets.remove(0);
                        }
                    }
                }
            }
            check_invariants(&world.account, world.now)?;
        }
    }
}
