//! Normalised email addresses.

use crate::text::check_characters;
use crate::DomainError;
use idna::uts46::{AsciiDenyList, Hyphens, Uts46};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Longest address accepted, in characters (RFC 5321's path limit, as `domain-rules.md` says).
pub const MAX_EMAIL_LEN: usize = 254;

/// An email address that is trimmed, lower-cased, in Unicode NFC, at most [`MAX_EMAIL_LEN`]
/// characters and valid per the `email_address` crate (RFC 5322 addr-spec; rule "Email" of
/// `domain-rules.md`), whose domain is a valid internationalised domain name per the `idna`
/// crate (UTS #46 with the STD3 rules, hyphen and DNS length checks) and is kept in its UTS #46
/// Unicode form when it is not ASCII (so `ＡＤＡ.example` and `ada.example` are one domain).
///
/// Deserialising does not check: stored addresses are facts, parsed when they were new.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Normalises and validates `raw`: trim, lower-case, NFC (so that `é` typed as one or two
    /// code points is one address), no control or bidi characters, then the checks above.
    ///
    /// Errors: [`DomainError::Validation`] with field `"email"` when the address is invalid.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let email: String = raw.trim().to_lowercase().nfc().collect();
        check_characters(&email, "email")?;
        let too_long = || DomainError::validation("email", format!("must be at most {MAX_EMAIL_LEN} characters"));
        if email.chars().count() > MAX_EMAIL_LEN {
            return Err(too_long());
        }
        let invalid = || DomainError::validation("email", "is not a valid email address");
        // The crate accepts display-name forms such as `A <a@b.c>`; only a bare addr-spec is
        // an address a person types into an invite box.
        match email.parse::<email_address::EmailAddress>() {
            Ok(parsed) if parsed.as_str() == email && !email.contains(['<', '>', ' ']) => {}
            _ => return Err(invalid()),
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        if !is_dot_atom(local) {
            return Err(DomainError::validation("email", "must not quote its local part or carry an encoded word (`=?`)"));
        }
        let email = format!("{local}@{}", idn_domain(domain).ok_or_else(invalid)?);
        if email.chars().count() > MAX_EMAIL_LEN {
            return Err(too_long());
        }
        Ok(Self(email))
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

/// Whether `local` is an RFC 5322 dot-atom of `atext` (or non-ASCII, RFC 6531) characters
/// without `=?`: quoted local parts (`"a b"@x`) are valid addresses but many mail servers and
/// lettre refuse them, and an RFC 2047 encoded word (`=?utf-8?q?…?=`) is decoded by mail clients
/// into whatever it hides, so an invitation could never be emailed to the first and would show
/// something else than was typed for the second.
fn is_dot_atom(local: &str) -> bool {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    !local.is_empty()
        && !local.contains("=?")
        && local.split('.').all(|atom| !atom.is_empty() && atom.chars().all(atext))
}

/// The domain as stored, or `None` when it is not a valid domain name: ASCII domains as typed
/// (already lower-cased; `xn--` labels stay as they are), others in their UTS #46 Unicode form.
/// Domain literals such as `[192.0.2.1]` are refused: an invitee has a named domain.
fn idn_domain(domain: &str) -> Option<String> {
    idna::domain_to_ascii_strict(domain).ok()?;
    if domain.is_ascii() {
        return Some(domain.to_string());
    }
    let (unicode, result) = Uts46::new().to_unicode(domain.as_bytes(), AsciiDenyList::STD3, Hyphens::Check);
    result.ok().map(|()| unicode.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_local_parts_and_encoded_words_are_refused() {
        for bad in ["\"x\\\"y\"@example.com", "\"a b\"@example.com", "=?utf-8?q?x?=@example.com", "a..b@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        for good in ["o'brien+tag@example.com", "a.b-c_d@example.com", "josé@example.com"] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
    }

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
    fn email_is_nfc_normalised() {
        // "e" + COMBINING ACUTE ACCENT and the precomposed "é" are one address.
        let decomposed = Email::parse("Rene\u{301}e@Example.com").unwrap();
        assert_eq!(decomposed, Email::parse("ren\u{e9}e@example.com").unwrap());
        assert_eq!(decomposed.as_str(), "ren\u{e9}e@example.com");
    }

    #[test]
    fn email_domain_is_checked_as_an_internationalised_domain_name() {
        assert_eq!(Email::parse("ada@B\u{fc}cher.de").unwrap().as_str(), "ada@b\u{fc}cher.de");
        assert_eq!(Email::parse("ada@xn--bcher-kva.de").unwrap().as_str(), "ada@xn--bcher-kva.de");
        // Full-width letters map to their ASCII forms (UTS #46).
        assert_eq!(Email::parse("ada@\u{ff45}xample.com").unwrap().as_str(), "ada@example.com");
        let label = "a".repeat(64);
        for bad in ["ada@-example.com", "ada@exa_mple.com", "ada@[192.0.2.1]", &format!("ada@{label}.com"), "ada@xn--a.com"] {
            let err = Email::parse(bad).unwrap_err();
            assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "email"), "{bad:?}");
        }
    }

    #[test]
    fn email_refuses_control_and_bidi_characters() {
        for bad in ["ann\u{0}lee@example.com", "ann@exa\nmple.com", "\"a\u{7}\"@example.com", "ada\u{202e}@example.com"] {
            let err = Email::parse(bad).unwrap_err();
            assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "email"), "{bad:?}");
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
        // A member search may be as long as the longest email it can match.
        assert_eq!(crate::text::MAX_SEARCH_LEN, MAX_EMAIL_LEN);
    }
}
