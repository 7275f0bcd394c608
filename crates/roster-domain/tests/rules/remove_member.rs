//! Remove member (rule "Remove member"): Admins only, not oneself, not the last Admin; the
//! removed member's pending invitations are cancelled.

use crate::fixtures::*;

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
            InvitationId::from_uuid(Uuid::from_u128(0x1004)),
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

/// Rule "Remove member": an invitation the removed member sent stays valid when an Admin has
/// resent it since (the Admin now vouches for the link).
#[test]
fn remove_member_keeps_invitations_an_admin_resent() {
    let history = team_and([new_invited_by_sam(), resent(INV1, ADA, 2, 1, 2)]);
    given(history)
        .when(remove(ADA, SAM, 2))
        .then_expect_events(vec![E::MemberRemoved { user_id: SAM, removed_by: ADA, removed_at: days(2) }]);
}
