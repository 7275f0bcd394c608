//! Invite (rules "Who", "Uniqueness", "Expiry").

use crate::fixtures::*;

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
