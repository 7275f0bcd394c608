//! Status text (rule "Status text") and the contract's error codes.

use crate::fixtures::*;

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
        DomainError::ResendTooSoon { retry_after_seconds: 1 },
    ];
    for error in all {
        assert!(
            CONTRACT_CODES.contains(&error.code()),
            "{error:?} has code {} not in the contract",
            error.code()
        );
    }
}
