//! Normalised email addresses.

use crate::DomainError;
use serde::{Deserialize, Serialize};

/// Longest address accepted, in characters (RFC 5321's path limit, as `domain-rules.md` says).
pub const MAX_EMAIL_LEN: usize = 254;

/// An email address that is trimmed, lower-cased, at most [`MAX_EMAIL_LEN`] characters and valid
/// per the `email_address` crate (RFC 5322 addr-spec; rule "Email" of `domain-rules.md`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Normalises and validates `raw`.
    ///
    /// Errors: [`DomainError::Validation`] with field `"email"` when the address is invalid.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let email = raw.trim().to_lowercase();
        if email.chars().count() > MAX_EMAIL_LEN {
            return Err(DomainError::validation(
                "email",
                format!("must be at most {MAX_EMAIL_LEN} characters"),
            ));
        }
        // The crate accepts display-name forms such as `A <a@b.c>`; only a bare addr-spec is
        // an address a person types into an invite box.
        match email.parse::<email_address::EmailAddress>() {
            Ok(parsed) if parsed.as_str() == email && !email.contains(['<', '>', ' ']) => {
                Ok(Self(email))
            }
            _ => Err(DomainError::validation("email", "is not a valid email address")),
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
    }

    #[test]
    fn email_rejects_malformed_addresses_naming_the_field() {
        for bad in ["", "ada", "ada@", "@example.com", "a b@example.com", "Ada <ada@example.com>"] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.code(), "VALIDATION", "{bad:?}");
            assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "email"));
        }
    }

    #[test]
    fn email_longer_than_254_characters_is_rejected() {
        // DNS labels are at most 63 characters, so long domains have several labels.
        let local = "a".repeat(64);
        let label = "b".repeat(60);
        let ok = format!("{local}@{label}.{label}.{}.com", "c".repeat(63));
        assert_eq!(ok.len(), MAX_EMAIL_LEN);
        assert!(Email::parse(&ok).is_ok(), "{ok}");
        let long = format!("{local}@x{label}.{label}.{}.com", "c".repeat(63));
        assert_eq!(long.len(), MAX_EMAIL_LEN + 1);
        assert_eq!(Email::parse(&long).unwrap_err().code(), "VALIDATION");
    }
}
