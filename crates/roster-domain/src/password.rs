//! The password rule (rule "Accept" of `domain-rules.md`). Passwords themselves never reach the
//! domain's events: the API hashes them into the credentials table.

use crate::DomainError;

/// Password length bounds, in characters (Unicode scalar values).
pub const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=128;

/// Checks the password length rule.
///
/// Errors: [`DomainError::Validation`] on field `password` outside 8–128 characters.
pub fn check_password(password: &str) -> Result<(), DomainError> {
    if PASSWORD_LEN.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(DomainError::validation("password", "must be 8 to 128 characters"))
    }
}
