//! Invitation emails (issue 12): a send records its nonce when mail is on, and the mailer's
//! outcomes become events of the account (rule: any send of an existing invitation).

use crate::fixtures::*;
use roster_domain::account::{EmailOutcome, MAX_REPLY_CHARS};
use roster_domain::SendNonce;

fn record(send_count: u32, outcome: EmailOutcome) -> C {
    C::RecordEmail { invitation_id: INV1, send_count, outcome, now: days(1) }
}

#[test]
fn a_send_carries_its_nonce_into_the_event() {
    let nonce = Some(SendNonce::new([9; 16]));
    let C::Invite { actor, invitation_id, email, role, token, now, ttl, .. } = invite(SAM, INV1, email_of(NEW), Role::Developer, 1, 0) else {
        unreachable!()
    };
    let E::MemberInvited { invitation_id: i, email: e, role: r, invited_by, token_digest, sent_at, expires_at, .. } = new_invited_by_sam() else {
        unreachable!()
    };
    given(team())
        .when(C::Invite { actor, invitation_id, email, role, token, now, ttl, mail_nonce: nonce })
        .then_expect_events(vec![E::MemberInvited { invitation_id: i, email: e, role: r, invited_by, token_digest, sent_at, expires_at, mail_nonce: nonce }]);
}

#[test]
fn delivery_outcomes_are_recorded_for_a_send_of_the_invitation() {
    given(team_and([new_invited_by_sam()]))
        .when(record(1, EmailOutcome::Sent { message_id: "m@x".into() }))
        .then_expect_events(vec![E::InvitationEmailSent { invitation_id: INV1, send_count: 1, message_id: "m@x".into(), sent_at: days(1) }]);
    // Recorded whatever became of the invitation since: the email's fate is a fact of its own.
    given(team_and([new_invited_by_sam(), cancelled(INV1, SAM, REASON_CANCELLED, 0)]))
        .when(record(1, EmailOutcome::Failed { attempt: 2, reply: "421 busy".into(), gave_up: false }))
        .then_expect_events(vec![E::InvitationEmailFailed {
            invitation_id: INV1,
            send_count: 1,
            attempt: 2,
            reply: "421 busy".into(),
            gave_up: false,
            failed_at: days(1),
        }]);
}

#[test]
fn a_reply_is_kept_on_one_line_and_cut_to_its_limit() {
    let reply = format!("550 5.1.1\r\n  no such\tuser {}", "x".repeat(2 * MAX_REPLY_CHARS));
    let events = state(team_and([new_invited_by_sam()]))
        .decide(record(1, EmailOutcome::Failed { attempt: 1, reply, gave_up: true }))
        .unwrap();
    let E::InvitationEmailFailed { reply, .. } = &events[0] else { panic!("{events:?}") };
    assert!(reply.starts_with("550 5.1.1 no such user xxx"), "{reply}");
    assert_eq!(reply.chars().count(), MAX_REPLY_CHARS);
    assert!(!reply.chars().any(char::is_control));
}

#[test]
fn an_unknown_invitation_or_send_is_refused() {
    given(team()).when(record(1, EmailOutcome::Sent { message_id: "m".into() })).then_expect_error(DomainError::NotFound("invitation"));
    expect_validation(given(team_and([new_invited_by_sam()])).when(record(2, EmailOutcome::Sent { message_id: "m".into() })), "sendCount");
    expect_validation(given(team_and([new_invited_by_sam()])).when(record(0, EmailOutcome::Sent { message_id: "m".into() })), "sendCount");
    given_nothing().when(record(1, EmailOutcome::Sent { message_id: "m".into() })).then_expect_error(DomainError::NotFound("account"));
}
