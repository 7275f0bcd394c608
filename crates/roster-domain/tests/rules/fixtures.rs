//! Fixtures shared by every topic: ids, people, times, tokens, event and command builders,
//! and the given/when/then helpers. Topic modules `use crate::fixtures::*;`, which also brings
//! the domain types and the cqrs-es test framework into scope.
//!
//! Everything is deterministic: fixed ids, fixed timestamps ([`t0`] plus offsets), fixed token
//! secrets (`[n; 32]`) and the default 7-day TTL.

pub use chrono::{DateTime, Duration, TimeZone, Utc};
pub use cqrs_es::test::{AggregateResultValidator, AggregateTestExecutor, TestFramework};
pub use cqrs_es::Aggregate;
pub use roster_domain::account::{
    AccountCommand as C, AccountEvent as E, InvitationStatus, UserRef, MAX_ACCOUNT_NAME_LEN,
    REASON_CANCELLED, REASON_INVITER_REMOVED,
};
pub use roster_domain::{
    Account, AccountId, Decide, DomainError, Email, InvitationId, InviteToken, Role, TokenDigest,
    UserId,
};
pub use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Fixtures: ids, people, times, tokens
// ---------------------------------------------------------------------------------------------

/// The account every test works in.
pub const ACCOUNT: AccountId = AccountId::from_uuid(Uuid::from_u128(0xacc0));

/// The founder and first Admin.
pub const ADA: UserId = UserId::from_uuid(Uuid::from_u128(0xada));
/// A second Admin (only in tests that say so).
pub const ALI: UserId = UserId::from_uuid(Uuid::from_u128(0xa11));
/// A Security Engineer: may invite Security Engineers, Developers and Guests.
pub const SAM: UserId = UserId::from_uuid(Uuid::from_u128(0x5a));
/// Another Security Engineer.
pub const SUE: UserId = UserId::from_uuid(Uuid::from_u128(0x5e));
/// A Developer: may not invite.
pub const DEV: UserId = UserId::from_uuid(Uuid::from_u128(0xde));
/// A Guest: may not invite.
pub const GUS: UserId = UserId::from_uuid(Uuid::from_u128(0x65));
/// Someone who is not (yet) a member.
pub const NEW: UserId = UserId::from_uuid(Uuid::from_u128(0xe1));
/// Someone else who is not a member.
pub const EVE: UserId = UserId::from_uuid(Uuid::from_u128(0xe2));

/// Invitation ids.
pub const INV1: InvitationId = InvitationId::from_uuid(Uuid::from_u128(0x1001));
pub const INV2: InvitationId = InvitationId::from_uuid(Uuid::from_u128(0x1002));
pub const INV3: InvitationId = InvitationId::from_uuid(Uuid::from_u128(0x1003));

/// The email of each fixture person.
pub fn email_of(user: UserId) -> Email {
    let address = match user {
        ADA => "ada@acme.test",
        ALI => "ali@acme.test",
        SAM => "sam@acme.test",
        SUE => "sue@acme.test",
        DEV => "dev@acme.test",
        GUS => "gus@acme.test",
        NEW => "new@acme.test",
        EVE => "eve@elsewhere.test",
        _ => panic!("no fixture email for {user}"),
    };
    Email::parse(address).unwrap()
}

pub fn user(id: UserId) -> UserRef {
    UserRef {
        id,
        email: email_of(id),
    }
}

/// A fixed instant: Monday 3 March 2025, 09:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0).unwrap()
}

pub fn days(n: i64) -> DateTime<Utc> {
    t0() + Duration::days(n)
}

/// `ROSTER_INVITE_TTL`'s default.
pub fn ttl() -> Duration {
    Duration::days(7)
}

/// The digest of the token for `invitation` with secret `[n; 32]`.
pub fn token(invitation: InvitationId, n: u8) -> TokenDigest {
    InviteToken::new(ACCOUNT, invitation, [n; 32]).digest()
}

// ---------------------------------------------------------------------------------------------
// Event builders
// ---------------------------------------------------------------------------------------------

/// `AccountCreated` + the founder `ADA` joining as Admin, at `t0`.
pub fn created() -> Vec<E> {
    vec![
        E::AccountCreated {
            name: "Acme".into(),
            created_by: ADA,
            created_at: t0(),
        },
        joined(ADA, Role::Admin),
    ]
}

pub fn joined(user: UserId, role: Role) -> E {
    E::MemberJoined {
        user_id: user,
        email: email_of(user),
        role,
        joined_at: t0(),
        invitation_id: None,
    }
}

/// Ada (Admin), Sam (Security Engineer), Dev (Developer), Gus (Guest).
pub fn team() -> Vec<E> {
    let mut events = created();
    events.extend([
        joined(SAM, Role::SecurityEngineer),
        joined(DEV, Role::Developer),
        joined(GUS, Role::Guest),
    ]);
    events
}

/// `team()` plus `events`.
pub fn team_and(events: impl IntoIterator<Item = E>) -> Vec<E> {
    let mut all = team();
    all.extend(events);
    all
}

/// `invitation` to `email` as `role`, sent by `by` on day `day` with token secret `[n; 32]`.
pub fn invited(invitation: InvitationId, email: Email, role: Role, by: UserId, n: u8, day: i64) -> E {
    E::MemberInvited {
        invitation_id: invitation,
        email,
        role,
        invited_by: by,
        token_digest: token(invitation, n),
        sent_at: days(day),
        expires_at: days(day) + ttl(),
        mail_nonce: None,
    }
}

pub fn resent(invitation: InvitationId, by: UserId, n: u8, day: i64, send_count: u32) -> E {
    E::InvitationResent {
        invitation_id: invitation,
        resent_by: by,
        token_digest: token(invitation, n),
        sent_at: days(day),
        expires_at: days(day) + ttl(),
        send_count,
        mail_nonce: None,
    }
}

pub fn cancelled(invitation: InvitationId, by: UserId, reason: &str, day: i64) -> E {
    E::InvitationCancelled {
        invitation_id: invitation,
        cancelled_by: by,
        reason: reason.into(),
        cancelled_at: days(day),
    }
}

/// The two events of a successful accept of `invitation` by `user` as `role` on day `day`.
pub fn accepted(invitation: InvitationId, user: UserId, role: Role, day: i64) -> Vec<E> {
    vec![
        E::InvitationAccepted {
            invitation_id: invitation,
            user_id: user,
            accepted_at: days(day),
        },
        E::MemberJoined {
            user_id: user,
            email: email_of(user),
            role,
            joined_at: days(day),
            invitation_id: Some(invitation),
        },
    ]
}

/// The usual starting point for invitation tests: Sam invited `new@` as Developer on day 0
/// with secret 1 (so it expires on day 7).
pub fn new_invited_by_sam() -> E {
    invited(INV1, email_of(NEW), Role::Developer, SAM, 1, 0)
}

// ---------------------------------------------------------------------------------------------
// Command builders
// ---------------------------------------------------------------------------------------------

pub fn create(name: &str, founder: UserId, day: i64) -> C {
    C::Create {
        name: name.into(),
        founder: user(founder),
        now: days(day),
    }
}

pub fn invite(actor: UserId, invitation: InvitationId, email: Email, role: Role, n: u8, day: i64) -> C {
    C::Invite {
        actor,
        invitation_id: invitation,
        email,
        role,
        token: token(invitation, n),
        now: days(day),
        ttl: ttl(),
        mail_nonce: None,
    }
}

/// A resend without email (mail off), so the cooldown does not apply.
pub fn resend(actor: UserId, invitation: InvitationId, n: u8, day: i64) -> C {
    C::Resend {
        actor,
        invitation_id: invitation,
        token: token(invitation, n),
        now: days(day),
        ttl: ttl(),
        mail_nonce: None,
        cooldown: cooldown(),
    }
}

/// `ROSTER_RESEND_COOLDOWN`'s default.
pub fn cooldown() -> Duration {
    Duration::seconds(60)
}

/// The nonce of an emailed send with secret `[n; 16]`.
pub fn nonce(n: u8) -> roster_domain::SendNonce {
    roster_domain::SendNonce::new([n; 16])
}

/// A resend that emails the invitee (mail on), at instant `at`, held back by [`cooldown`].
pub fn resend_emailed(actor: UserId, invitation: InvitationId, n: u8, at: DateTime<Utc>) -> C {
    C::Resend {
        actor,
        invitation_id: invitation,
        token: token(invitation, n),
        now: at,
        ttl: ttl(),
        mail_nonce: Some(nonce(n)),
        cooldown: cooldown(),
    }
}

/// The event of [`resend_emailed`].
pub fn resent_emailed(invitation: InvitationId, by: UserId, n: u8, at: DateTime<Utc>, send_count: u32) -> E {
    E::InvitationResent {
        invitation_id: invitation,
        resent_by: by,
        token_digest: token(invitation, n),
        sent_at: at,
        expires_at: at + ttl(),
        send_count,
        mail_nonce: Some(nonce(n)),
    }
}

pub fn cancel(actor: UserId, invitation: InvitationId, day: i64) -> C {
    C::Cancel {
        actor,
        invitation_id: invitation,
        now: days(day),
    }
}

/// `who` accepts `invitation` presenting the token with secret `[n; 32]`.
pub fn accept(invitation: InvitationId, n: u8, who: UserRef, day: i64) -> C {
    C::Accept {
        invitation_id: invitation,
        token: token(invitation, n),
        user: who,
        now: days(day),
    }
}

pub fn change_role(actor: UserId, target: UserId, role: Role) -> C {
    C::ChangeRole {
        actor,
        user_id: target,
        role,
    }
}

pub fn remove(actor: UserId, target: UserId, day: i64) -> C {
    C::RemoveMember {
        actor,
        user_id: target,
        now: days(day),
    }
}

// ---------------------------------------------------------------------------------------------
// Test-framework helpers
// ---------------------------------------------------------------------------------------------

pub fn given(events: Vec<E>) -> AggregateTestExecutor<Account> {
    TestFramework::<Account>::with(()).given(events)
}

pub fn given_nothing() -> AggregateTestExecutor<Account> {
    TestFramework::<Account>::with(()).given_no_previous_events()
}

/// Asserts a `VALIDATION` error naming `field` (the message is free text).
pub fn expect_validation(result: AggregateResultValidator<Account>, field: &str) {
    match result.inspect_result() {
        Err(DomainError::Validation { field: got, .. }) => assert_eq!(got, field),
        other => panic!("expected VALIDATION on {field:?}, got {other:?}"),
    }
}

/// The account state after `events` (for status checks the framework does not expose).
pub fn state(events: Vec<E>) -> Account {
    let mut account = Account::default();
    for event in events {
        account.apply(event);
    }
    account
}

/// Every `extensions.code` of the contract's "Errors" table (`shared/api-contract.md`).
pub const CONTRACT_CODES: [&str; 15] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "VALIDATION",
    "ALREADY_MEMBER",
    "INVITATION_PENDING",
    "INVITATION_EXPIRED",
    "INVITATION_NOT_PENDING",
    "INVALID_TOKEN",
    "EMAIL_MISMATCH",
    "LAST_ADMIN",
    "SELF_CHANGE",
    "RATE_LIMITED",
    "CONFLICT",
    "INTERNAL",
];
/// The team with Sam's invitation `INV1` accepted on day 1, and with it cancelled on day 1:
/// the two ways an invitation stops being pending.
pub fn accepted_or_cancelled_by_day_1() -> [Vec<E>; 2] {
    let mut was_accepted = team_and([new_invited_by_sam()]);
    was_accepted.extend(accepted(INV1, NEW, Role::Developer, 1));
    let was_cancelled = team_and([new_invited_by_sam(), cancelled(INV1, SAM, REASON_CANCELLED, 1)]);
    [was_accepted, was_cancelled]
}
