//! Accept (rule "Accept"): token, status, expiry, email.

use crate::fixtures::*;

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
    let other_account = InviteToken::new(AccountId::from_uuid(Uuid::from_u128(0xbad)), INV1, [1; 32]).digest();
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

/// Rule "Token": the one check that accept and the API's preview share.
#[test]
fn invitation_for_token_verifies_the_current_digest_only() {
    let account = state(team_and([new_invited_by_sam(), resent(INV1, SAM, 2, 3, 2)]));
    let found = account.invitation_for_token(INV1, &token(INV1, 2)).unwrap();
    assert_eq!(found.email, email_of(NEW));
    // The rotated-away token, a forged one and an unknown invitation are all INVALID_TOKEN.
    for (id, n) in [(INV1, 1), (INV1, 9), (INV2, 2)] {
        assert_eq!(
            account.invitation_for_token(id, &token(id, n)).unwrap_err(),
            DomainError::InvalidToken
        );
    }
}
