//! Domain tests for the account aggregate: one test per rule of `shared/domain-rules.md`
//! (sections "Invitations" and "Members and roles") and per error code of the contract's
//! "Errors" table that `Account::decide` can return.
//!
//! The first part uses cqrs-es's given/when/then [`TestFramework`]: *given* the events already
//! in the account's stream, *when* a command arrives, *then* these events (or this error).
//! `TestFramework::when` starts its own tokio runtime, so these are plain `#[test]`s.
//!
//! The second part is a property test: random sequences of commands over a small pool of
//! users, emails and invitation ids, checking the account's invariants after every step.
//!
//! Everything is deterministic: fixed ids, fixed timestamps ([`t0`] plus offsets), fixed token
//! secrets (`[n; 32]`) and the default 7-day TTL.
//!
//! One `#[ignore]`d test records a rule the domain does not enforce yet (run it with
//! `cargo test -p roster-domain --test account_rules -- --ignored`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::test::{AggregateResultValidator, AggregateTestExecutor, TestFramework};
use cqrs_es::Aggregate;
use proptest::prelude::*;
use roster_domain::account::{
    AccountCommand as C, AccountEvent as E, InvitationStatus, UserRef, MAX_ACCOUNT_NAME_LEN,
    REASON_CANCELLED, REASON_INVITER_REMOVED,
};
use roster_domain::{Account, DomainError, Email, InviteToken, Role, TokenDigest};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Fixtures: ids, people, times, tokens
// ---------------------------------------------------------------------------------------------

/// The account every test works in.
const ACCOUNT: Uuid = Uuid::from_u128(0xacc0);

/// The founder and first Admin.
const ADA: Uuid = Uuid::from_u128(0xada);
/// A second Admin (only in tests that say so).
const ALI: Uuid = Uuid::from_u128(0xa11);
/// A Security Engineer: may invite Security Engineers, Developers and Guests.
const SAM: Uuid = Uuid::from_u128(0x5a);
/// Another Security Engineer.
const SUE: Uuid = Uuid::from_u128(0x5e);
/// A Developer: may not invite.
const DEV: Uuid = Uuid::from_u128(0xde);
/// A Guest: may not invite.
const GUS: Uuid = Uuid::from_u128(0x65);
/// Someone who is not (yet) a member.
const NEW: Uuid = Uuid::from_u128(0xe1);
/// Someone else who is not a member.
const EVE: Uuid = Uuid::from_u128(0xe2);

/// Invitation ids.
const INV1: Uuid = Uuid::from_u128(0x1001);
const INV2: Uuid = Uuid::from_u128(0x1002);
const INV3: Uuid = Uuid::from_u128(0x1003);

/// The email of each fixture person.
fn email_of(user: Uuid) -> Email {
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

fn user(id: Uuid) -> UserRef {
    UserRef {
        id,
        email: email_of(id),
    }
}

/// A fixed instant: Monday 3 March 2025, 09:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0).unwrap()
}

fn days(n: i64) -> DateTime<Utc> {
    t0() + Duration::days(n)
}

/// `ROSTER_INVITE_TTL`'s default.
fn ttl() -> Duration {
    Duration::days(7)
}

/// The digest of the token for `invitation` with secret `[n; 32]`.
fn token(invitation: Uuid, n: u8) -> TokenDigest {
    InviteToken::new(ACCOUNT, invitation, [n; 32]).digest()
}

// ---------------------------------------------------------------------------------------------
// Event builders
// ---------------------------------------------------------------------------------------------

/// `AccountCreated` + the founder `ADA` joining as Admin, at `t0`.
fn created() -> Vec<E> {
    vec![
        E::AccountCreated {
            name: "Acme".into(),
            created_by: ADA,
            created_at: t0(),
        },
        joined(ADA, Role::Admin),
    ]
}

fn joined(user: Uuid, role: Role) -> E {
    E::MemberJoined {
        user_id: user,
        email: email_of(user),
        role,
        joined_at: t0(),
        invitation_id: None,
    }
}

/// Ada (Admin), Sam (Security Engineer), Dev (Developer), Gus (Guest).
fn team() -> Vec<E> {
    let mut events = created();
    events.extend([
        joined(SAM, Role::SecurityEngineer),
        joined(DEV, Role::Developer),
        joined(GUS, Role::Guest),
    ]);
    events
}

/// `team()` plus `events`.
fn team_and(events: impl IntoIterator<Item = E>) -> Vec<E> {
    let mut all = team();
    all.extend(events);
    all
}

/// `invitation` to `email` as `role`, sent by `by` on day `day` with token secret `[n; 32]`.
fn invited(invitation: Uuid, email: Email, role: Role, by: Uuid, n: u8, day: i64) -> E {
    E::MemberInvited {
        invitation_id: invitation,
        email,
        role,
        invited_by: by,
        token_digest: token(invitation, n),
        sent_at: days(day),
        expires_at: days(day) + ttl(),
    }
}

fn resent(invitation: Uuid, by: Uuid, n: u8, day: i64, send_count: u32) -> E {
    E::InvitationResent {
        invitation_id: invitation,
        resent_by: by,
        token_digest: token(invitation, n),
        sent_at: days(day),
        expires_at: days(day) + ttl(),
        send_count,
    }
}

fn cancelled(invitation: Uuid, by: Uuid, reason: &str, day: i64) -> E {
    E::InvitationCancelled {
        invitation_id: invitation,
        cancelled_by: by,
        reason: reason.into(),
        cancelled_at: days(day),
    }
}

/// The two events of a successful accept of `invitation` by `user` as `role` on day `day`.
fn accepted(invitation: Uuid, user: Uuid, role: Role, day: i64) -> Vec<E> {
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
fn new_invited_by_sam() -> E {
    invited(INV1, email_of(NEW), Role::Developer, SAM, 1, 0)
}

// ---------------------------------------------------------------------------------------------
// Command builders
// ---------------------------------------------------------------------------------------------

fn create(name: &str, founder: Uuid, day: i64) -> C {
    C::Create {
        name: name.into(),
        founder: user(founder),
        now: days(day),
    }
}

fn invite(actor: Uuid, invitation: Uuid, email: Email, role: Role, n: u8, day: i64) -> C {
    C::Invite {
        actor,
        invitation_id: invitation,
        email,
        role,
        token: token(invitation, n),
        now: days(day),
        ttl: ttl(),
    }
}

fn resend(actor: Uuid, invitation: Uuid, n: u8, day: i64) -> C {
    C::Resend {
        actor,
        invitation_id: invitation,
        token: token(invitation, n),
        now: days(day),
        ttl: ttl(),
    }
}

fn cancel(actor: Uuid, invitation: Uuid, day: i64) -> C {
    C::Cancel {
        actor,
        invitation_id: invitation,
        now: days(day),
    }
}

/// `who` accepts `invitation` presenting the token with secret `[n; 32]`.
fn accept(invitation: Uuid, n: u8, who: UserRef, day: i64) -> C {
    C::Accept {
        invitation_id: invitation,
        token: token(invitation, n),
        user: who,
        now: days(day),
    }
}

fn change_role(actor: Uuid, target: Uuid, role: Role) -> C {
    C::ChangeRole {
        actor,
        user_id: target,
        role,
    }
}

fn remove(actor: Uuid, target: Uuid, day: i64) -> C {
    C::RemoveMember {
        actor,
        user_id: target,
        now: days(day),
    }
}

// ---------------------------------------------------------------------------------------------
// Test-framework helpers
// ---------------------------------------------------------------------------------------------

fn given(events: Vec<E>) -> AggregateTestExecutor<Account> {
    TestFramework::<Account>::with(()).given(events)
}

fn given_nothing() -> AggregateTestExecutor<Account> {
    TestFramework::<Account>::with(()).given_no_previous_events()
}

/// Asserts a `VALIDATION` error naming `field` (the message is free text).
fn expect_validation(result: AggregateResultValidator<Account>, field: &str) {
    match result.inspect_result() {
        Err(DomainError::Validation { field: got, .. }) => assert_eq!(got, field),
        other => panic!("expected VALIDATION on {field:?}, got {other:?}"),
    }
}

/// The account state after `events` (for status checks the framework does not expose).
fn state(events: Vec<E>) -> Account {
    let mut account = Account::default();
    for event in events {
        account.apply(event);
    }
    account
}

/// Every `extensions.code` of the contract's "Errors" table (`shared/api-contract.md`).
const CONTRACT_CODES: [&str; 15] = [
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

// =============================================================================================
// Create account
// =============================================================================================

#[test]
fn create_account_makes_the_founder_its_only_admin() {
    given_nothing()
        .when(create("Acme", ADA, 0))
        .then_expect_events(created());
}

#[test]
fn create_account_trims_the_name() {
    let mut expected = created();
    expected[0] = E::AccountCreated {
        name: "Acme Corp".into(),
        created_by: ADA,
        created_at: t0(),
    };
    given_nothing()
        .when(create("  Acme Corp \n", ADA, 0))
        .then_expect_events(expected);
}

#[test]
fn create_account_name_must_be_1_to_100_characters() {
    let too_long = "x".repeat(MAX_ACCOUNT_NAME_LEN + 1);
    for bad in ["", "   ", "\t\n", too_long.as_str()] {
        expect_validation(given_nothing().when(create(bad, ADA, 0)), "name");
    }
    // 100 characters (not bytes) is still fine.
    let longest = "é".repeat(MAX_ACCOUNT_NAME_LEN);
    let result = given_nothing()
        .when(create(&longest, ADA, 0))
        .inspect_result();
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn create_an_existing_account_is_validation() {
    expect_validation(given(created()).when(create("Again", SAM, 1)), "accountId");
}

#[test]
fn commands_on_a_not_created_account_are_not_found() {
    let commands = [
        invite(ADA, INV1, email_of(NEW), Role::Developer, 1, 0),
        resend(ADA, INV1, 2, 0),
        cancel(ADA, INV1, 0),
        change_role(ADA, SAM, Role::Guest),
        remove(ADA, SAM, 0),
    ];
    for command in commands {
        given_nothing()
            .when(command)
            .then_expect_error(DomainError::NotFound("account"));
    }
}

#[test]
fn accept_on_a_not_created_account_is_invalid_token() {
    // A token naming an account that does not exist does not verify (no account is revealed).
    given_nothing()
        .when(accept(INV1, 1, user(NEW), 0))
        .then_expect_error(DomainError::InvalidToken);
}

// =============================================================================================
// Invite
// =============================================================================================

#[test]
fn invite_records_a_pending_invitation_expiring_after_the_ttl() {
    given(team())
        .when(invite(SAM, INV1, email_of(NEW), Role::Developer, 1, 0))
        .then_expect_events(vec![new_invited_by_sam()]);

    let account = state(team_and([new_invited_by_sam()]));
    let invitation = &account.invitations[&INV1];
    assert_eq!(invitation.expires_at, days(7));
    assert_eq!(invitation.send_count, 1);
    assert_eq!(invitation.status(days(6)), InvitationStatus::Pending);
    assert_eq!(
        invitation.status(days(7) + Duration::seconds(1)),
        InvitationStatus::Expired
    );
}

#[test]
fn invite_requires_a_role_that_may_invite() {
    for actor in [DEV, GUS] {
        for role in Role::ALL {
            given(team())
                .when(invite(actor, INV1, email_of(NEW), role, 1, 0))
                .then_expect_error(DomainError::Forbidden);
        }
    }
}

#[test]
fn invite_by_a_non_member_is_forbidden() {
    given(team())
        .when(invite(EVE, INV1, email_of(NEW), Role::Guest, 1, 0))
        .then_expect_error(DomainError::Forbidden);
}

#[test]
fn security_engineer_cannot_grant_admin() {
    given(team())
        .when(invite(SAM, INV1, email_of(NEW), Role::Admin, 1, 0))
        .then_expect_error(DomainError::Forbidden);
}

#[test]
fn security_engineer_may_grant_security_engineer_developer_and_guest() {
    for role in [Role::SecurityEngineer, Role::Developer, Role::Guest] {
        given(team())
            .when(invite(SAM, INV1, email_of(NEW), role, 1, 0))
            .then_expect_events(vec![invited(INV1, email_of(NEW), role, SAM, 1, 0)]);
    }
}

#[test]
fn admin_may_grant_every_role() {
    for role in Role::ALL {
        given(team())
            .when(invite(ADA, INV1, email_of(NEW), role, 1, 0))
            .then_expect_events(vec![invited(INV1, email_of(NEW), role, ADA, 1, 0)]);
    }
}

#[test]
fn one_pending_invitation_per_email() {
    // Same email, another inviter, another role, another id: still refused while INV1 is pending.
    given(team_and([new_invited_by_sam()]))
        .when(invite(ADA, INV2, email_of(NEW), Role::Guest, 2, 3))
        .then_expect_error(DomainError::InvitationPending);
}

#[test]
fn one_pending_invitation_per_email_counts_resent_invitations() {
    // INV1 expired, then was resent on day 8: it is pending again and blocks a new invite.
    given(team_and([new_invited_by_sam(), resent(INV1, SAM, 2, 8, 2)]))
        .when(invite(ADA, INV2, email_of(NEW), Role::Guest, 3, 9))
        .then_expect_error(DomainError::InvitationPending);
}

#[test]
fn expired_invitation_does_not_block_a_new_invite() {
    given(team_and([new_invited_by_sam()]))
        .when(invite(ADA, INV2, email_of(NEW), Role::Guest, 2, 8))
        .then_expect_events(vec![invited(INV2, email_of(NEW), Role::Guest, ADA, 2, 8)]);
}

#[test]
fn cancelled_invitation_does_not_block_a_new_invite() {
    given(team_and([
        new_invited_by_sam(),
        cancelled(INV1, SAM, REASON_CANCELLED, 1),
    ]))
    .when(invite(ADA, INV2, email_of(NEW), Role::Guest, 2, 2))
    .then_expect_events(vec![invited(INV2, email_of(NEW), Role::Guest, ADA, 2, 2)]);
}

#[test]
fn inviting_a_member_is_already_member() {
    for member in [ADA, SAM, DEV, GUS] {
        given(team())
            .when(invite(ADA, INV1, email_of(member), Role::Guest, 1, 0))
            .then_expect_error(DomainError::AlreadyMember);
    }
}

#[test]
fn inviting_someone_who_joined_through_an_invitation_is_already_member() {
    let mut history = team_and([new_invited_by_sam()]);
    history.extend(accepted(INV1, NEW, Role::Developer, 1));
    given(history)
        .when(invite(ADA, INV2, email_of(NEW), Role::Guest, 2, 2))
        .then_expect_error(DomainError::AlreadyMember);
}

#[test]
fn invitation_id_cannot_be_reused() {
    given(team_and([new_invited_by_sam()]))
        .when(invite(ADA, INV1, email_of(EVE), Role::Guest, 2, 1))
        .then_expect_error(DomainError::validation(
            "invitationId",
            "invitation id already used",
        ));
}

// =============================================================================================
// Resend
// =============================================================================================

#[test]
fn resend_rotates_token_resets_expiry_keeps_id_and_counts() {
    // PENDING: resent on day 3 with a new secret; expiry moves to day 10, count goes to 2.
    given(team_and([new_invited_by_sam()]))
        .when(resend(SAM, INV1, 2, 3))
        .then_expect_events(vec![resent(INV1, SAM, 2, 3, 2)]);
    // And again on day 5: count 3.
    given(team_and([new_invited_by_sam(), resent(INV1, SAM, 2, 3, 2)]))
        .when(resend(SAM, INV1, 3, 5))
        .then_expect_events(vec![resent(INV1, SAM, 3, 5, 3)]);
    // EXPIRED (day 9 > day 7): resend revives it the same way.
    given(team_and([new_invited_by_sam()]))
        .when(resend(SAM, INV1, 2, 9))
        .then_expect_events(vec![resent(INV1, SAM, 2, 9, 2)]);

    let account = state(team_and([new_invited_by_sam(), resent(INV1, SAM, 2, 9, 2)]));
    let invitation = &account.invitations[&INV1];
    assert_eq!(
        account.invitations.len(),
        1,
        "the id is kept, no new invitation"
    );
    assert_eq!(invitation.expires_at, days(16));
    assert_eq!(invitation.send_count, 2);
    assert_eq!(invitation.token_digest, token(INV1, 2));
    assert_eq!(invitation.status(days(10)), InvitationStatus::Pending);
}

#[test]
fn resent_invitation_accepts_the_new_token() {
    given(team_and([new_invited_by_sam(), resent(INV1, SAM, 2, 9, 2)]))
        .when(accept(INV1, 2, user(NEW), 12))
        .then_expect_events(accepted(INV1, NEW, Role::Developer, 12));
}

#[test]
fn resend_of_accepted_or_cancelled_is_not_pending() {
    let mut was_accepted = team_and([new_invited_by_sam()]);
    was_accepted.extend(accepted(INV1, NEW, Role::Developer, 1));
    let was_cancelled = team_and([
        new_invited_by_sam(),
        cancelled(INV1, SAM, REASON_CANCELLED, 1),
    ]);
    for history in [was_accepted, was_cancelled] {
        for actor in [SAM, ADA] {
            given(history.clone())
                .when(resend(actor, INV1, 2, 2))
                .then_expect_error(DomainError::InvitationNotPending);
        }
    }
}

#[test]
fn resend_by_non_inviter_non_admin_is_forbidden() {
    let mut history = team_and([new_invited_by_sam()]);
    history.push(joined(SUE, Role::SecurityEngineer));
    // Another Security Engineer, a Developer, a Guest and a stranger.
    for actor in [SUE, DEV, GUS, EVE] {
        given(history.clone())
            .when(resend(actor, INV1, 2, 1))
            .then_expect_error(DomainError::Forbidden);
    }
}

#[test]
fn resend_by_an_admin_who_did_not_invite_is_allowed() {
    given(team_and([new_invited_by_sam()]))
        .when(resend(ADA, INV1, 2, 1))
        .then_expect_events(vec![resent(INV1, ADA, 2, 1, 2)]);
}

#[test]
fn resend_by_an_inviter_who_may_no_longer_invite_is_forbidden() {
    // Sam invited, then was made a Developer: the "Members" feature is READ for Developers.
    let history = team_and([
        new_invited_by_sam(),
        E::MemberRoleChanged {
            user_id: SAM,
            from: Role::SecurityEngineer,
            to: Role::Developer,
            changed_by: ADA,
        },
    ]);
    given(history)
        .when(resend(SAM, INV1, 2, 1))
        .then_expect_error(DomainError::Forbidden);
}

/// Rule "Who": resending issues a new link, so an inviter who is no longer an Admin may not
/// re-issue an Admin invitation they sent earlier (they may no longer grant Admin).
#[test]
fn resend_by_an_inviter_who_may_no_longer_grant_the_role_is_forbidden() {
    let history = team_and([
        joined(ALI, Role::Admin),
        invited(INV1, email_of(NEW), Role::Admin, ADA, 1, 0),
        E::MemberRoleChanged {
            user_id: ADA,
            from: Role::Admin,
            to: Role::SecurityEngineer,
            changed_by: ALI,
        },
    ]);
    given(history)
        .when(resend(ADA, INV1, 2, 1))
        .then_expect_error(DomainError::Forbidden);
}

#[test]
fn resend_of_unknown_invitation_is_not_found() {
    given(team())
        .when(resend(ADA, INV1, 2, 1))
        .then_expect_error(DomainError::NotFound("invitation"));
}

#[test]
fn resend_of_expired_when_a_newer_invitation_is_pending_is_invitation_pending() {
    // INV1 expired on day 7; INV2 to the same email was sent on day 8 and is pending.
    let history = team_and([
        new_invited_by_sam(),
        invited(INV2, email_of(NEW), Role::Guest, ADA, 2, 8),
    ]);
    given(history)
        .when(resend(ADA, INV1, 3, 9))
        .then_expect_error(DomainError::InvitationPending);
}

#[test]
fn resend_to_an_email_that_has_since_joined_is_already_member() {
    // INV1 expired; NEW then joined through INV2; reviving INV1 would invite a member.
    let mut history = team_and([
        new_invited_by_sam(),
        invited(INV2, email_of(NEW), Role::Guest, ADA, 2, 8),
    ]);
    history.extend(accepted(INV2, NEW, Role::Guest, 9));
    given(history)
        .when(resend(ADA, INV1, 3, 10))
        .then_expect_error(DomainError::AlreadyMember);
}

// =============================================================================================
// Cancel
// =============================================================================================

#[test]
fn cancel_by_the_inviter_records_who_when_and_why() {
    given(team_and([new_invited_by_sam()]))
        .when(cancel(SAM, INV1, 2))
        .then_expect_events(vec![cancelled(INV1, SAM, REASON_CANCELLED, 2)]);

    // The record stays, with status CANCELLED.
    let account = state(team_and([
        new_invited_by_sam(),
        cancelled(INV1, SAM, REASON_CANCELLED, 2),
    ]));
    assert_eq!(
        account.invitations[&INV1].status(days(3)),
        InvitationStatus::Cancelled
    );
    assert_eq!(
        account.invitations[&INV1].status(days(30)),
        InvitationStatus::Cancelled
    );
}

#[test]
fn cancel_by_an_admin_who_did_not_invite_is_allowed() {
    given(team_and([new_invited_by_sam()]))
        .when(cancel(ADA, INV1, 2))
        .then_expect_events(vec![cancelled(INV1, ADA, REASON_CANCELLED, 2)]);
}

#[test]
fn cancel_of_an_expired_invitation_is_allowed() {
    given(team_and([new_invited_by_sam()]))
        .when(cancel(SAM, INV1, 30))
        .then_expect_events(vec![cancelled(INV1, SAM, REASON_CANCELLED, 30)]);
}

#[test]
fn cancel_by_non_inviter_non_admin_is_forbidden() {
    let mut history = team_and([new_invited_by_sam()]);
    history.push(joined(SUE, Role::SecurityEngineer));
    for actor in [SUE, DEV, GUS, EVE] {
        given(history.clone())
            .when(cancel(actor, INV1, 1))
            .then_expect_error(DomainError::Forbidden);
    }
}

#[test]
fn cancel_of_accepted_or_cancelled_is_not_pending() {
    let mut was_accepted = team_and([new_invited_by_sam()]);
    was_accepted.extend(accepted(INV1, NEW, Role::Developer, 1));
    let was_cancelled = team_and([
        new_invited_by_sam(),
        cancelled(INV1, SAM, REASON_CANCELLED, 1),
    ]);
    for history in [was_accepted, was_cancelled] {
        given(history)
            .when(cancel(ADA, INV1, 2))
            .then_expect_error(DomainError::InvitationNotPending);
    }
}

#[test]
fn cancel_of_unknown_invitation_is_not_found() {
    given(team())
        .when(cancel(ADA, INV1, 1))
        .then_expect_error(DomainError::NotFound("invitation"));
}

#[test]
fn cancelled_invitation_token_stops_working() {
    given(team_and([
        new_invited_by_sam(),
        cancelled(INV1, SAM, REASON_CANCELLED, 1),
    ]))
    .when(accept(INV1, 1, user(NEW), 2))
    .then_expect_error(DomainError::InvitationNotPending);
}

// =============================================================================================
// Accept
// =============================================================================================

#[test]
fn accept_makes_the_invitee_a_member_with_the_invited_role() {
    given(team_and([new_invited_by_sam()]))
        .when(accept(INV1, 1, user(NEW), 2))
        .then_expect_events(accepted(INV1, NEW, Role::Developer, 2));

    let mut history = team_and([new_invited_by_sam()]);
    history.extend(accepted(INV1, NEW, Role::Developer, 2));
    let account = state(history);
    assert_eq!(account.role_of(NEW), Some(Role::Developer));
    assert_eq!(
        account.invitations[&INV1].status(days(30)),
        InvitationStatus::Accepted
    );
}

#[test]
fn accept_just_before_expiry_succeeds() {
    let just_before = days(7) - Duration::seconds(1);
    let command = C::Accept {
        invitation_id: INV1,
        token: token(INV1, 1),
        user: user(NEW),
        now: just_before,
    };
    let events = given(team_and([new_invited_by_sam()]))
        .when(command)
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 2);
}

#[test]
fn accept_with_wrong_token_is_invalid_token() {
    given(team_and([new_invited_by_sam()]))
        .when(accept(INV1, 9, user(NEW), 1))
        .then_expect_error(DomainError::InvalidToken);
    // The right secret for another account's token does not verify either.
    let other_account = InviteToken::new(Uuid::from_u128(0xbad), INV1, [1; 32]).digest();
    let command = C::Accept {
        invitation_id: INV1,
        token: other_account,
        user: user(NEW),
        now: days(1),
    };
    given(team_and([new_invited_by_sam()]))
        .when(command)
        .then_expect_error(DomainError::InvalidToken);
}

#[test]
fn accept_of_unknown_invitation_is_invalid_token() {
    given(team_and([new_invited_by_sam()]))
        .when(accept(INV2, 1, user(NEW), 1))
        .then_expect_error(DomainError::InvalidToken);
}

#[test]
fn accept_after_resend_with_old_token_is_invalid_token() {
    given(team_and([new_invited_by_sam(), resent(INV1, SAM, 2, 3, 2)]))
        .when(accept(INV1, 1, user(NEW), 4))
        .then_expect_error(DomainError::InvalidToken);
}

#[test]
fn accept_expired_is_invitation_expired() {
    for day in [7, 8, 100] {
        given(team_and([new_invited_by_sam()]))
            .when(accept(INV1, 1, user(NEW), day))
            .then_expect_error(DomainError::InvitationExpired);
    }
}

#[test]
fn accept_twice_is_not_pending() {
    let mut history = team_and([new_invited_by_sam()]);
    history.extend(accepted(INV1, NEW, Role::Developer, 1));
    given(history)
        .when(accept(INV1, 1, user(NEW), 2))
        .then_expect_error(DomainError::InvitationNotPending);
}

#[test]
fn accept_with_other_email_is_email_mismatch_and_stays_pending() {
    let history = team_and([new_invited_by_sam()]);
    given(history.clone())
        .when(accept(INV1, 1, user(EVE), 1))
        .then_expect_error(DomainError::EmailMismatch);

    // The refused command changed nothing: the invitation is still PENDING ...
    let account = state(history.clone());
    let before = account.clone();
    assert_eq!(
        account.decide(accept(INV1, 1, user(EVE), 1)),
        Err(DomainError::EmailMismatch)
    );
    assert_eq!(account, before);
    assert_eq!(
        account.invitations[&INV1].status(days(1)),
        InvitationStatus::Pending
    );
    // ... and the right person can still accept it with the same token.
    given(history)
        .when(accept(INV1, 1, user(NEW), 2))
        .then_expect_events(accepted(INV1, NEW, Role::Developer, 2));
}

#[test]
fn accept_by_a_user_who_is_already_a_member_is_already_member() {
    // The invitation went to new@, but the session's user id is already Dev's membership.
    let dev_with_new_email = UserRef {
        id: DEV,
        email: email_of(NEW),
    };
    given(team_and([new_invited_by_sam()]))
        .when(accept(INV1, 1, dev_with_new_email, 1))
        .then_expect_error(DomainError::AlreadyMember);
}

// =============================================================================================
// Change role
// =============================================================================================

#[test]
fn change_role_by_an_admin_records_from_and_to() {
    given(team())
        .when(change_role(ADA, DEV, Role::SecurityEngineer))
        .then_expect_events(vec![E::MemberRoleChanged {
            user_id: DEV,
            from: Role::Developer,
            to: Role::SecurityEngineer,
            changed_by: ADA,
        }]);
}

#[test]
fn change_role_by_an_admin_may_grant_admin() {
    given(team())
        .when(change_role(ADA, GUS, Role::Admin))
        .then_expect_events(vec![E::MemberRoleChanged {
            user_id: GUS,
            from: Role::Guest,
            to: Role::Admin,
            changed_by: ADA,
        }]);
}

#[test]
fn change_role_by_a_non_admin_is_forbidden() {
    // A Security Engineer may not change roles either, not even within its "may grant" column.
    for actor in [SAM, DEV, GUS, EVE] {
        given(team())
            .when(change_role(actor, GUS, Role::Developer))
            .then_expect_error(DomainError::Forbidden);
    }
}

#[test]
fn change_role_of_oneself_is_self_change() {
    let history = team_and([joined(ALI, Role::Admin)]);
    given(history)
        .when(change_role(ADA, ADA, Role::Developer))
        .then_expect_error(DomainError::SelfChange);
}

#[test]
fn change_role_of_the_sole_admin_by_themself_is_last_admin() {
    for role in [Role::SecurityEngineer, Role::Developer, Role::Guest] {
        given(team())
            .when(change_role(ADA, ADA, role))
            .then_expect_error(DomainError::LastAdmin);
    }
}

#[test]
fn change_role_to_the_same_role_is_a_no_op() {
    given(team())
        .when(change_role(ADA, SAM, Role::SecurityEngineer))
        .then_expect_events(vec![]);
    let history = team_and([joined(ALI, Role::Admin)]);
    given(history)
        .when(change_role(ADA, ALI, Role::Admin))
        .then_expect_events(vec![]);
}

#[test]
fn change_role_of_a_non_member_is_not_found() {
    given(team())
        .when(change_role(ADA, EVE, Role::Guest))
        .then_expect_error(DomainError::NotFound("member"));
}

#[test]
fn change_role_may_demote_one_of_two_admins_but_never_the_last() {
    let demote_ali = E::MemberRoleChanged {
        user_id: ALI,
        from: Role::Admin,
        to: Role::Developer,
        changed_by: ADA,
    };
    given(team_and([joined(ALI, Role::Admin)]))
        .when(change_role(ADA, ALI, Role::Developer))
        .then_expect_events(vec![demote_ali.clone()]);
    // The two Admins demoting each other one after the other: the second one is no longer an
    // Admin, and Ada, now the last Admin, cannot demote herself.
    let history = team_and([joined(ALI, Role::Admin), demote_ali]);
    given(history.clone())
        .when(change_role(ALI, ADA, Role::Developer))
        .then_expect_error(DomainError::Forbidden);
    given(history)
        .when(change_role(ADA, ADA, Role::Developer))
        .then_expect_error(DomainError::LastAdmin);
}

// =============================================================================================
// Remove member
// =============================================================================================

#[test]
fn remove_member_by_an_admin_records_who_and_when() {
    given(team())
        .when(remove(ADA, DEV, 1))
        .then_expect_events(vec![E::MemberRemoved {
            user_id: DEV,
            removed_by: ADA,
            removed_at: days(1),
        }]);
}

#[test]
fn remove_member_may_remove_another_admin() {
    given(team_and([joined(ALI, Role::Admin)]))
        .when(remove(ADA, ALI, 1))
        .then_expect_events(vec![E::MemberRemoved {
            user_id: ALI,
            removed_by: ADA,
            removed_at: days(1),
        }]);
}

#[test]
fn remove_member_by_a_non_admin_is_forbidden() {
    for actor in [SAM, DEV, GUS, EVE] {
        given(team())
            .when(remove(actor, GUS, 1))
            .then_expect_error(DomainError::Forbidden);
    }
}

#[test]
fn remove_member_oneself_is_self_change() {
    given(team_and([joined(ALI, Role::Admin)]))
        .when(remove(ADA, ADA, 1))
        .then_expect_error(DomainError::SelfChange);
}

#[test]
fn remove_member_the_sole_admin_is_last_admin() {
    given(team())
        .when(remove(ADA, ADA, 1))
        .then_expect_error(DomainError::LastAdmin);
}

#[test]
fn remove_member_of_a_non_member_is_not_found() {
    given(team())
        .when(remove(ADA, EVE, 1))
        .then_expect_error(DomainError::NotFound("member"));
}

#[test]
fn remove_member_cancels_their_pending_invitations_with_reason_inviter_removed() {
    let mut history = team_and([
        // Sam's pending invitation: cancelled by the removal.
        new_invited_by_sam(),
        // Sam's invitation that was accepted: untouched.
        invited(INV2, email_of(EVE), Role::Guest, SAM, 2, 0),
    ]);
    history.extend(accepted(INV2, EVE, Role::Guest, 1));
    history.extend([
        // Sam's invitation that was already cancelled: untouched.
        invited(INV3, email_of(SUE), Role::Guest, SAM, 3, 1),
        cancelled(INV3, SAM, REASON_CANCELLED, 1),
        // Ada's pending invitation: untouched.
        invited(
            Uuid::from_u128(0x1004),
            email_of(ALI),
            Role::Admin,
            ADA,
            4,
            1,
        ),
    ]);
    given(history.clone())
        .when(remove(ADA, SAM, 2))
        .then_expect_events(vec![
            E::MemberRemoved {
                user_id: SAM,
                removed_by: ADA,
                removed_at: days(2),
            },
            cancelled(INV1, ADA, REASON_INVITER_REMOVED, 2),
        ]);

    // Its token stops working.
    history.extend([
        E::MemberRemoved {
            user_id: SAM,
            removed_by: ADA,
            removed_at: days(2),
        },
        cancelled(INV1, ADA, REASON_INVITER_REMOVED, 2),
    ]);
    given(history)
        .when(accept(INV1, 1, user(NEW), 3))
        .then_expect_error(DomainError::InvitationNotPending);
}

#[test]
fn remove_member_also_cancels_their_expired_invitations() {
    // An expired invitation could still be revived by a resend, so it is cancelled too.
    given(team_and([new_invited_by_sam()]))
        .when(remove(ADA, SAM, 10))
        .then_expect_events(vec![
            E::MemberRemoved {
                user_id: SAM,
                removed_by: ADA,
                removed_at: days(10),
            },
            cancelled(INV1, ADA, REASON_INVITER_REMOVED, 10),
        ]);
}

// =============================================================================================
// Status text and error codes
// =============================================================================================

#[test]
fn status_text_follows_the_rules() {
    assert_eq!(
        InvitationStatus::Pending.text(Role::SecurityEngineer),
        "Invitation sent for Security Engineer"
    );
    assert_eq!(
        InvitationStatus::Expired.text(Role::Admin),
        "Invitation expired"
    );
    assert_eq!(
        InvitationStatus::Cancelled.text(Role::Guest),
        "Invitation cancelled"
    );
    assert_eq!(
        InvitationStatus::Accepted.text(Role::Developer),
        "Joined as Developer"
    );
}

#[test]
fn every_domain_error_code_is_in_the_contract_table() {
    let all = [
        DomainError::Forbidden,
        DomainError::NotFound("account"),
        DomainError::validation("name", "x"),
        DomainError::AlreadyMember,
        DomainError::InvitationPending,
        DomainError::InvitationExpired,
        DomainError::InvitationNotPending,
        DomainError::InvalidToken,
        DomainError::EmailMismatch,
        DomainError::LastAdmin,
        DomainError::SelfChange,
    ];
    for error in all {
        assert!(
            CONTRACT_CODES.contains(&error.code()),
            "{error:?} has code {} not in the contract",
            error.code()
        );
    }
}

// =============================================================================================
// Property test: invariants under random command sequences
// =============================================================================================

/// Pool sizes: users (user `i` owns email `i`), invitation ids.
const USERS: usize = 4;
const INVITATIONS: usize = 6;

fn pool_user(i: usize) -> Uuid {
    Uuid::from_u128(0x7000 + i as u128)
}

fn pool_email(i: usize) -> Email {
    Email::parse(&format!("user{i}@pool.test")).unwrap()
}

fn pool_invitation(i: usize) -> Uuid {
    Uuid::from_u128(0x8000 + i as u128)
}

/// Who acts or is acted on. Resolved against the state when the step runs, so that most
/// commands come from members (and get past the permission checks to the interesting rules).
#[derive(Debug, Clone)]
enum Who {
    /// One of the current members (any pool user when there are none).
    Member(prop::sample::Index),
    /// Pool user `i`, member or not.
    Pool(usize),
}

/// Which invitation a command names, resolved like [`Who`].
#[derive(Debug, Clone)]
enum Which {
    /// One of the invitations the account has (any pool id when there are none).
    Existing(prop::sample::Index),
    /// Pool invitation id `i`, existing or not.
    Pool(usize),
}

/// Which token an accept presents.
#[derive(Debug, Clone)]
enum TokenChoice {
    /// The one from the last successful invite or resend.
    Current,
    /// The one before that (rotated away by a resend).
    Previous,
    /// One that was never issued.
    Forged,
}

/// Who accepts.
#[derive(Debug, Clone)]
enum Accepter {
    /// The pool user who owns the invited email (the usual case).
    Invitee,
    /// Pool user `user` with pool email `email` (either may differ from the invitee's).
    Pool { user: usize, email: usize },
}

/// A command over the pools, before ids, tokens and times are filled in.
#[derive(Debug, Clone)]
enum Op {
    Create {
        founder: usize,
        valid_name: bool,
    },
    Invite {
        actor: Who,
        inv: usize,
        email: usize,
        role: Role,
    },
    Resend {
        actor: Who,
        inv: Which,
    },
    Cancel {
        actor: Who,
        inv: Which,
    },
    Accept {
        inv: Which,
        by: Accepter,
        token: TokenChoice,
    },
    ChangeRole {
        actor: Who,
        user: Who,
        role: Role,
    },
    Remove {
        actor: Who,
        user: Who,
    },
}

fn role_strategy() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

fn who_strategy() -> impl Strategy<Value = Who> {
    prop_oneof![
        4 => any::<prop::sample::Index>().prop_map(Who::Member),
        1 => (0..USERS).prop_map(Who::Pool),
    ]
}

fn which_strategy() -> impl Strategy<Value = Which> {
    prop_oneof![
        4 => any::<prop::sample::Index>().prop_map(Which::Existing),
        1 => (0..INVITATIONS).prop_map(Which::Pool),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let token = prop_oneof![
        4 => Just(TokenChoice::Current),
        1 => Just(TokenChoice::Previous),
        1 => Just(TokenChoice::Forged),
    ];
    let accepter = prop_oneof![
        4 => Just(Accepter::Invitee),
        1 => (0..USERS, 0..USERS).prop_map(|(user, email)| Accepter::Pool { user, email }),
    ];
    prop_oneof![
        1 => (0..USERS, prop::bool::weighted(0.8))
            .prop_map(|(founder, valid_name)| Op::Create { founder, valid_name }),
        6 => (who_strategy(), 0..INVITATIONS, 0..USERS, role_strategy())
            .prop_map(|(actor, inv, email, role)| Op::Invite { actor, inv, email, role }),
        3 => (who_strategy(), which_strategy()).prop_map(|(actor, inv)| Op::Resend { actor, inv }),
        2 => (who_strategy(), which_strategy()).prop_map(|(actor, inv)| Op::Cancel { actor, inv }),
        6 => (which_strategy(), accepter, token)
            .prop_map(|(inv, by, token)| Op::Accept { inv, by, token }),
        4 => (who_strategy(), who_strategy(), role_strategy())
            .prop_map(|(actor, user, role)| Op::ChangeRole { actor, user, role }),
        2 => (who_strategy(), who_strategy()).prop_map(|(actor, user)| Op::Remove { actor, user }),
    ]
}

/// A step: how many hours pass (so invitations expire now and then), then an op. Most
/// sequences open the account first.
fn steps_strategy() -> impl Strategy<Value = Vec<(i64, Op)>> {
    let step = (0i64..60, op_strategy());
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(step, 0..40),
    )
        .prop_map(|(open_first, mut steps)| {
            if open_first {
                steps.insert(
                    0,
                    (
                        0,
                        Op::Create {
                            founder: 0,
                            valid_name: true,
                        },
                    ),
                );
            }
            steps
        })
}

/// The test's side of the world: the aggregate, the clock and the secrets handed out.
struct World {
    account: Account,
    now: DateTime<Utc>,
    next_secret: u32,
    /// Per invitation: the secrets of the last two successful sends, newest last.
    secrets: HashMap<Uuid, Vec<[u8; 32]>>,
}

impl World {
    fn fresh_secret(&mut self) -> [u8; 32] {
        self.next_secret += 1;
        let mut secret = [0x5c; 32];
        secret[..4].copy_from_slice(&self.next_secret.to_le_bytes());
        secret
    }

    fn digest(invitation: Uuid, secret: [u8; 32]) -> TokenDigest {
        InviteToken::new(ACCOUNT, invitation, secret).digest()
    }

    fn who(&self, who: &Who) -> Uuid {
        match who {
            Who::Member(index) if !self.account.members.is_empty() => {
                let members: Vec<Uuid> = self.account.members.keys().copied().collect();
                members[index.index(members.len())]
            }
            Who::Member(index) => pool_user(index.index(USERS)),
            Who::Pool(i) => pool_user(*i),
        }
    }

    fn which(&self, which: &Which) -> Uuid {
        match which {
            Which::Existing(index) if !self.account.invitations.is_empty() => {
                let ids: Vec<Uuid> = self.account.invitations.keys().copied().collect();
                ids[index.index(ids.len())]
            }
            Which::Existing(index) => pool_invitation(index.index(INVITATIONS)),
            Which::Pool(i) => pool_invitation(*i),
        }
    }

    /// Turns `op` into a command; returns the secret a successful invite/resend would issue.
    fn command(&mut self, op: &Op) -> (C, Option<(Uuid, [u8; 32])>) {
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
    // At least one Admin.
    prop_assert!(account.admin_count() >= 1, "no admin left: {account:?}");

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

/// Rule "Remove member": an invitation the removed member sent stays valid when an Admin has
/// resent it since (the Admin now vouches for the link).
#[test]
fn remove_member_keeps_invitations_an_admin_resent() {
    let history = team_and([new_invited_by_sam(), resent(INV1, ADA, 2, 1, 2)]);
    given(history)
        .when(remove(ADA, SAM, 2))
        .then_expect_events(vec![E::MemberRemoved { user_id: SAM, removed_by: ADA, removed_at: days(2) }]);
}
