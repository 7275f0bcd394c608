//! Cancel (rule "Cancel"): the record stays, its token stops working.

use crate::fixtures::*;

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
    for history in accepted_or_cancelled_by_day_1() {
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
