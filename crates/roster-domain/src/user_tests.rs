//! The user aggregate's rules: verification and password reset links.

use super::*;
use crate::user_token::{Purpose, UserToken};
use crate::{TokenKey, UserId};
use chrono::Duration;

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
}

fn token(purpose: Purpose, nonce: u8) -> UserToken {
    UserToken::derive(&TokenKey::new([9; 32]), purpose, UserId::from(uuid::Uuid::nil()), &SendNonce::new([nonce; 16]))
}

fn link(purpose: Purpose, nonce: u8, expires_at: DateTime<Utc>) -> OwedLink {
    OwedLink { mail_nonce: SendNonce::new([nonce; 16]), token_digest: token(purpose, nonce).digest(), expires_at }
}

fn run(user: &mut User, command: UserCommand) -> Result<Vec<UserEvent>, DomainError> {
    let events = user.decide(command)?;
    for e in events.clone() {
        user.apply(e);
    }
    Ok(events)
}

fn registered(check: EmailCheck) -> User {
    let mut user = User::default();
    let email = Email::parse("ada@example.com").unwrap();
    run(&mut user, UserCommand::Register { email, display_name: "Ada".into(), now: at(0), check }).unwrap();
    user
}

#[test]
fn a_sign_up_owing_a_link_is_unverified_until_the_link_is_used_once() {
    let mut user = registered(EmailCheck::Owed(link(Purpose::Verify, 1, at(24 * 60))));
    assert!(!user.email_verified);
    let wrong = UserCommand::VerifyEmail { token_digest: token(Purpose::Reset, 1).digest(), now: at(1) };
    assert_eq!(run(&mut user, wrong), Err(DomainError::InvalidToken));
    let verify = UserCommand::VerifyEmail { token_digest: token(Purpose::Verify, 1).digest(), now: at(1) };
    let events = run(&mut user, verify.clone()).unwrap();
    assert_eq!(events, [UserEvent::EmailVerified { proof: EmailProof::VerificationLink, verified_at: at(1) }]);
    assert!(user.email_verified);
    assert_eq!(run(&mut user, verify), Err(DomainError::InvalidToken), "single use");
}

#[test]
fn an_expired_verification_link_is_refused() {
    let mut user = registered(EmailCheck::Owed(link(Purpose::Verify, 1, at(60))));
    let late = UserCommand::VerifyEmail { token_digest: token(Purpose::Verify, 1).digest(), now: at(60) };
    assert_eq!(run(&mut user, late), Err(DomainError::TokenExpired));
    assert!(!user.email_verified);
}

#[test]
fn invitees_are_verified_and_unchecked_users_are_not_held_back() {
    let invited = registered(EmailCheck::ProvenByInvitation);
    assert!(invited.email_verified);
    assert!(registered(EmailCheck::NotChecked).email_verified);
}

#[test]
fn a_reset_changes_the_password_once_verifies_and_a_newer_request_supersedes() {
    let mut user = registered(EmailCheck::Owed(link(Purpose::Verify, 1, at(24 * 60))));
    run(&mut user, UserCommand::RequestPasswordReset { link: link(Purpose::Reset, 2, at(62)), reason: ResetReason::Requested, now: at(2) }).unwrap();
    run(&mut user, UserCommand::RequestPasswordReset { link: link(Purpose::Reset, 3, at(63)), reason: ResetReason::Requested, now: at(3) }).unwrap();
    let old = UserCommand::ResetPassword { token_digest: token(Purpose::Reset, 2).digest(), now: at(4) };
    assert_eq!(run(&mut user, old), Err(DomainError::InvalidToken), "superseded");
    let reset = UserCommand::ResetPassword { token_digest: token(Purpose::Reset, 3).digest(), now: at(4) };
    let events = run(&mut user, reset.clone()).unwrap();
    assert_eq!(
        events,
        [UserEvent::PasswordChanged { changed_at: at(4) }, UserEvent::EmailVerified { proof: EmailProof::PasswordReset, verified_at: at(4) }]
    );
    assert!(user.email_verified && user.verification.is_none());
    assert_eq!(run(&mut user, reset), Err(DomainError::InvalidToken), "single use");
    run(&mut user, UserCommand::RequestPasswordReset { link: link(Purpose::Reset, 4, at(70)), reason: ResetReason::Requested, now: at(10) }).unwrap();
    let late = UserCommand::ResetPassword { token_digest: token(Purpose::Reset, 4).digest(), now: at(70) };
    assert_eq!(run(&mut user, late), Err(DomainError::TokenExpired));
}

#[test]
fn an_unregistered_user_owes_nothing() {
    let mut user = User::default();
    let request = UserCommand::RequestPasswordReset { link: link(Purpose::Reset, 1, at(60)), reason: ResetReason::Requested, now: at(0) };
    assert_eq!(run(&mut user, request), Err(DomainError::NotFound("user")));
    let reset = UserCommand::ResetPassword { token_digest: token(Purpose::Reset, 1).digest(), now: at(0) };
    assert_eq!(run(&mut user, reset), Err(DomainError::InvalidToken));
}

#[test]
fn link_events_hold_no_token() {
    let owed = link(Purpose::Reset, 5, at(60));
    let event = UserEvent::PasswordResetRequested { link: owed, reason: ResetReason::SignUpAttempt, requested_at: at(0) };
    let json = serde_json::to_string(&event).unwrap();
    assert!(!json.contains(&token(Purpose::Reset, 5).encode()), "{json}");
    assert!(json.contains(r#""reason":"SIGN_UP_ATTEMPT""#), "{json}");
    let back: UserEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, event);
}

#[test]
fn a_reset_request_written_before_reasons_existed_decodes_as_requested() {
    // As stored before `reason` existed (docs/events.md).
    let old = r#"{"PasswordResetRequested": {"mail_nonce": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "token_digest": "5d41402abc4b2a76b9719d911017c592ae7b9f2c1d0e8f3a6b5c4d3e2f1a0b9c", "expires_at": "2026-11-30T11:00:00Z", "requested_at": "2026-11-30T10:00:00Z"}}"#;
    let event: UserEvent = serde_json::from_str(old).unwrap();
    assert!(matches!(event, UserEvent::PasswordResetRequested { reason: ResetReason::Requested, .. }), "{event:?}");
}
