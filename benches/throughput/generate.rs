//! A seeded, valid event log: per account a founder (`UserRegistered`, `AccountCreated`,
//! `MemberJoined` as Admin), then a random walk of the commands the domain allows
//! (invite, resend, cancel, accept with a new user, change role, remove member with the
//! cancellations of the removed inviter's pending invitations). Payloads are the real domain
//! events serialised with serde, so projections and upcasters see exactly what the write path
//! writes. Rows come out in `COPY … FROM STDIN` text format.

use chrono::{DateTime, Duration, TimeZone, Utc};
use roster_domain::account::event_version;
use roster_domain::{AccountEvent, AccountId, Email, EventMetadata, InvitationId, Role, TokenDigest, UserEvent, UserId};
use std::io::Write;
use uuid::Uuid;

/// The seed of every run, so every run writes the same log.
pub const SEED: u64 = 0x5EED_0008;

/// SplitMix64: fast, deterministic, good enough to pick actions.
pub struct Rng(u64);

impl Rng {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A random (version 4) UUID.
    pub fn uuid(&mut self) -> Uuid {
        let bytes = ((self.next() as u128) << 64 | self.next() as u128).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// 64 hex characters, shaped like a token digest.
    pub fn digest(&mut self) -> TokenDigest {
        TokenDigest::from_stored((0..4).map(|_| format!("{:016x}", self.next())).collect())
    }
}

/// A sample event row as the app writes it: `(payload, metadata)` of a `MemberInvited`, the
/// most frequent event (~300 bytes of JSON each), for the baseline's inserts.
pub fn sample_invitation(rng: &mut Rng) -> (serde_json::Value, serde_json::Value) {
    let now = Utc::now();
    let inviter = UserId::from_uuid(rng.uuid());
    let event = AccountEvent::MemberInvited {
        invitation_id: InvitationId::from_uuid(rng.uuid()),
        email: Email::parse(&format!("user{}@example.com", rng.next() % 1_000_000)).expect("email"),
        role: Role::Developer,
        invited_by: inviter,
        token_digest: rng.digest(),
        sent_at: now,
        expires_at: now + Duration::days(7),
        mail_nonce: None,
    };
    let metadata = metadata(Some(inviter), rng, now);
    (serde_json::to_value(event).expect("json"), serde_json::to_value(metadata.to_map()).expect("json"))
}

/// The metadata the app writes for a command of `actor` at `at` (request id, IP, user agent).
pub fn metadata(actor: Option<UserId>, rng: &mut Rng, at: DateTime<Utc>) -> EventMetadata {
    let mut m = EventMetadata::new(actor, rng.uuid().to_string(), at);
    m.ip = Some(format!("203.0.113.{}", rng.below(250) + 1));
    m.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0".into());
    m
}

/// What the generated log must project to (for the smoke run's checks).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Events written.
    pub events: u64,
    /// Events of `Account` streams (one audit-log entry each).
    pub account_events: u64,
    /// `UserRegistered` events (rows of `users`).
    pub users: u64,
    /// Members at the end (rows of `members`).
    pub members: u64,
    /// `MemberInvited` events (rows of `invitations`).
    pub invitations: u64,
}

struct Invitation {
    id: InvitationId,
    email: Email,
    role: Role,
    /// Who sent the current link (the one whose removal cancels it).
    sent_by: UserId,
    send_count: u32,
}

/// Appends rows for one account until `budget` events are written or the log is full.
struct AccountWriter<'a> {
    out: &'a mut Vec<u8>,
    rng: &'a mut Rng,
    expected: &'a mut Expected,
    limit: u64,
    id: AccountId,
    sequence: i64,
    now: DateTime<Utc>,
}

impl AccountWriter<'_> {
    fn full(&self) -> bool {
        self.expected.events >= self.limit
    }

    /// One command's events, sharing one metadata; stops at the log's limit (a prefix of a valid
    /// log is a valid log).
    fn command(&mut self, actor: UserId, user_stream: Option<(UserId, UserEvent)>, events: Vec<AccountEvent>) {
        self.now += Duration::seconds(10 + self.rng.below(600) as i64);
        let meta = serde_json::to_string(&metadata(Some(actor), self.rng, self.now).to_map()).expect("json");
        if let Some((user, event)) = user_stream {
            if self.full() {
                return;
            }
            row(self.out, "User", &user.to_string(), 1, "UserRegistered", "1.0.0", &serde_json::to_string(&event).expect("json"), &meta);
            self.expected.events += 1;
            self.expected.users += 1;
        }
        for event in events {
            if self.full() {
                return;
            }
            let payload = serde_json::to_value(&event).expect("json");
            let event_type = payload.as_object().and_then(|o| o.keys().next()).expect("externally tagged").clone();
            self.sequence += 1;
            row(self.out, "Account", &self.id.to_string(), self.sequence, &event_type, event_version(&event_type), &payload.to_string(), &meta);
            self.expected.events += 1;
            self.expected.account_events += 1;
            match event {
                AccountEvent::MemberJoined { .. } => self.expected.members += 1,
                AccountEvent::MemberRemoved { .. } => self.expected.members -= 1,
                AccountEvent::MemberInvited { .. } => self.expected.invitations += 1,
                _ => {}
            }
        }
    }
}

/// One row of `COPY events (…)` in text format: tab-separated, backslash escapes.
#[allow(clippy::too_many_arguments)] // the seven columns of the COPY, in order
pub fn row(out: &mut Vec<u8>, aggregate_type: &str, aggregate_id: &str, sequence: i64, event_type: &str, version: &str, payload: &str, metadata: &str) {
    let _ = write!(out, "{aggregate_type}\t{aggregate_id}\t{sequence}\t{event_type}\t{version}\t");
    escape(out, payload);
    out.push(b'\t');
    escape(out, metadata);
    out.push(b'\n');
}

fn escape(out: &mut Vec<u8>, text: &str) {
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// The log, account by account, in chunks of rows.
pub struct Generator {
    rng: Rng,
    expected: Expected,
    limit: u64,
    account: u64,
    start: DateTime<Utc>,
}

impl Generator {
    /// A log of `limit` events from [`SEED`].
    pub fn new(limit: u64) -> Self {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("date");
        Self { rng: Rng::new(SEED), expected: Expected::default(), limit, account: 0, start }
    }

    /// The next whole accounts' rows, about `bytes` long; `None` once the log is complete.
    pub fn next_chunk(&mut self, bytes: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(bytes + 64 * 1024);
        while self.expected.events < self.limit && out.len() < bytes {
            let budget = self.expected.events + 100 + self.rng.below(400) as u64;
            let id = AccountId::from_uuid(self.rng.uuid());
            let now = self.start + Duration::minutes(self.account as i64);
            let limit = self.limit.min(budget);
            let mut w = AccountWriter { out: &mut out, rng: &mut self.rng, expected: &mut self.expected, limit, id, sequence: 0, now };
            account_history(&mut w, self.account);
            self.account += 1;
        }
        (!out.is_empty()).then_some(out)
    }

    /// What has been generated so far.
    pub fn expected(&self) -> Expected {
        self.expected
    }
}

fn email(account: u64, n: u64) -> Email {
    Email::parse(&format!("user{n}.acct{account}@example.com")).expect("email")
}

/// Sign-up, then random commands until the account's budget is spent.
fn account_history(w: &mut AccountWriter<'_>, account: u64) {
    let founder = UserId::from_uuid(w.rng.uuid());
    let founder_email = email(account, 0);
    let now = w.now;
    let registered = UserEvent::UserRegistered { email: founder_email.clone(), display_name: format!("Founder {account}"), registered_at: now };
    w.command(founder, Some((founder, registered)), vec![
        AccountEvent::AccountCreated { name: format!("Account {account}"), created_by: founder, created_at: now },
        AccountEvent::MemberJoined { user_id: founder, email: founder_email, role: Role::Admin, joined_at: now, invitation_id: None },
    ]);
    // The founder stays Admin and is never removed, so there is always an admin to act.
    let mut members: Vec<(UserId, Role)> = vec![(founder, Role::Admin)];
    let mut pending: Vec<Invitation> = Vec::new();
    let mut next_email = 1;
    while !w.full() {
        let now = w.now;
        let pick = w.rng.below(100);
        let others = members.len() - 1;
        if (40..50).contains(&pick) && !pending.is_empty() {
            let i = w.rng.below(pending.len());
            let inv = &mut pending[i];
            inv.send_count += 1;
            // Resent by the founder (an Admin may resend any invitation): the founder's link now.
            inv.sent_by = founder;
            let digest = w.rng.digest();
            let event = AccountEvent::InvitationResent { invitation_id: inv.id, resent_by: founder, token_digest: digest, sent_at: now, expires_at: now + Duration::days(7), send_count: inv.send_count, mail_nonce: None };
            w.command(founder, None, vec![event]);
        } else if (50..58).contains(&pick) && !pending.is_empty() {
            let inv = pending.swap_remove(w.rng.below(pending.len()));
            w.command(founder, None, vec![AccountEvent::InvitationCancelled { invitation_id: inv.id, cancelled_by: founder, reason: "cancelled".into(), cancelled_at: now }]);
        } else if (58..82).contains(&pick) && !pending.is_empty() {
            let inv = pending.swap_remove(w.rng.below(pending.len()));
            let user = UserId::from_uuid(w.rng.uuid());
            let registered = UserEvent::UserRegistered { email: inv.email.clone(), display_name: "Invited User".into(), registered_at: now };
            w.command(user, Some((user, registered)), vec![
                AccountEvent::InvitationAccepted { invitation_id: inv.id, user_id: user, accepted_at: now },
                AccountEvent::MemberJoined { user_id: user, email: inv.email, role: inv.role, joined_at: now, invitation_id: Some(inv.id) },
            ]);
            members.push((user, inv.role));
        } else if (82..92).contains(&pick) && others > 0 {
            let i = 1 + w.rng.below(others);
            let to = [Role::Admin, Role::SecurityEngineer, Role::Developer, Role::Guest].into_iter().filter(|r| *r != members[i].1).nth(w.rng.below(3)).expect("three other roles");
            w.command(founder, None, vec![AccountEvent::MemberRoleChanged { user_id: members[i].0, from: members[i].1, to, changed_by: founder }]);
            members[i].1 = to;
        } else if (92..97).contains(&pick) && others > 0 {
            let (user, _) = members.swap_remove(1 + w.rng.below(others));
            let mut events = vec![AccountEvent::MemberRemoved { user_id: user, removed_by: founder, removed_at: now }];
            pending.retain(|inv| {
                let theirs = inv.sent_by == user;
                if theirs {
                    events.push(AccountEvent::InvitationCancelled { invitation_id: inv.id, cancelled_by: founder, reason: "inviter removed".into(), cancelled_at: now });
                }
                !theirs
            });
            w.command(founder, None, events);
        } else {
            // Invite, by an Admin or a Security Engineer, with a role that one may grant.
            let inviters: Vec<(UserId, Role)> = members.iter().copied().filter(|(_, r)| matches!(r, Role::Admin | Role::SecurityEngineer)).collect();
            let (inviter, inviter_role) = inviters[w.rng.below(inviters.len())];
            let grantable = inviter_role.can_grant();
            let role = grantable[w.rng.below(grantable.len())];
            let inv = Invitation { id: InvitationId::from_uuid(w.rng.uuid()), email: email(account, next_email), role, sent_by: inviter, send_count: 1 };
            next_email += 1;
            let event = AccountEvent::MemberInvited { invitation_id: inv.id, email: inv.email.clone(), role, invited_by: inviter, token_digest: w.rng.digest(), sent_at: now, expires_at: now + Duration::days(7), mail_nonce: None };
            w.command(inviter, None, vec![event]);
            pending.push(inv);
        }
    }
}
