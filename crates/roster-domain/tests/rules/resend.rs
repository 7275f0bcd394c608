//! Resend (rule "Resend"): rotate the token, reset the expiry, keep the id, count.

use crate::fixtures::*;

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
    for history in accepted_or_cancelled_by_day_1() {
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

/// Rule "Resend cooldown" (issue 12, abuse limits): an emailed resend within the cooldown of
/// the invitation's last send is refused with the whole seconds left, rounded up.
#[test]
fn an_emailed_resend_within_the_cooldown_is_rate_limited_with_the_seconds_left() {
    let at = |secs: i64, millis: i64| t0() + Duration::seconds(secs) + Duration::milliseconds(millis);
    for (now, left) in [(at(0, 0), 60), (at(20, 0), 40), (at(59, 200), 1), (at(59, 999), 1)] {
        given(team_and([new_invited_by_sam()]))
            .when(resend_emailed(SAM, INV1, 2, now))
            .then_expect_error(DomainError::ResendTooSoon { retry_after_seconds: left });
    }
    assert_eq!(DomainError::ResendTooSoon { retry_after_seconds: 1 }.code(), "RATE_LIMITED");
    // At the cooldown's end it goes.
    given(team_and([new_invited_by_sam()]))
        .when(resend_emailed(SAM, INV1, 2, at(60, 0)))
        .then_expect_events(vec![resent_emailed(INV1, SAM, 2, at(60, 0), 2)]);
}

#[test]
fn the_cooldown_counts_from_the_last_resend_not_the_first_send() {
    let first_resend = days(2);
    let history = team_and([new_invited_by_sam(), resent_emailed(INV1, ADA, 2, first_resend, 2)]);
    given(history.clone())
        .when(resend_emailed(SAM, INV1, 3, first_resend + Duration::seconds(45)))
        .then_expect_error(DomainError::ResendTooSoon { retry_after_seconds: 15 });
    given(history)
        .when(resend_emailed(SAM, INV1, 3, first_resend + Duration::seconds(61)))
        .then_expect_events(vec![resent_emailed(INV1, SAM, 3, first_resend + Duration::seconds(61), 3)]);
}

#[test]
fn a_resend_without_email_is_not_held_back() {
    // Mail off: the resend only shows the admin a new link, so no cooldown.
    let mut command = resend_emailed(SAM, INV1, 2, t0() + Duration::seconds(5));
    if let C::Resend { mail_nonce, .. } = &mut command {
        *mail_nonce = None;
    }
    let mut expected = resent_emailed(INV1, SAM, 2, t0() + Duration::seconds(5), 2);
    if let E::InvitationResent { mail_nonce, .. } = &mut expected {
        *mail_nonce = None;
    }
    given(team_and([new_invited_by_sam()])).when(command).then_expect_events(vec![expected]);
}

#[test]
fn an_emailed_resend_of_an_expired_invitation_is_not_held_back() {
    // Case F4: expired a day ago, sent eight days ago, far beyond any cooldown.
    given(team_and([new_invited_by_sam()]))
        .when(resend_emailed(SAM, INV1, 2, days(8)))
        .then_expect_events(vec![resent_emailed(INV1, SAM, 2, days(8), 2)]);
}

#[test]
fn the_other_resend_rules_are_checked_before_the_cooldown() {
    // Within the cooldown, a Developer still hears FORBIDDEN, and a cancelled invitation
    // INVITATION_NOT_PENDING: the cooldown says nothing to whom the rules refuse anyway.
    given(team_and([new_invited_by_sam()]))
        .when(resend_emailed(DEV, INV1, 2, t0() + Duration::seconds(1)))
        .then_expect_error(DomainError::Forbidden);
    given(team_and([new_invited_by_sam(), cancelled(INV1, SAM, REASON_CANCELLED, 0)]))
        .when(resend_emailed(SAM, INV1, 2, t0() + Duration::seconds(1)))
        .then_expect_error(DomainError::InvitationNotPending);
}
