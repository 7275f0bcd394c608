//! Text that people type and other people read: names, search strings, filters.
//!
//! Every such input is parsed into a [`Text`] by one rule (issue 10, "input hygiene"; described
//! in `docs/inputs.md`): Unicode NFC, trimmed, no control characters, no bidirectional formatting
//! characters, a length in characters. The rule exists because PostgreSQL refuses NUL in `text`
//! (which answered `INTERNAL`), and because names are shown to others — on the public invitation
//! preview, for one — where a newline or a right-to-left override can make one name pass for
//! another (the "Trojan Source" class of spoofing, CVE-2021-42574).
//!
//! Parsing is for new input only: names already in events are facts and decode unchecked.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Longest search string, in characters: the longest thing a member search can match is an
/// email (254, RFC 5321's path limit; equal to `email::MAX_EMAIL_LEN`, which a test of that
/// module checks, so this module depends on none other).
pub const MAX_SEARCH_LEN: usize = 254;

/// Longest audit-log `action` filter, in characters (actions are short names such as
/// `member.role_changed`).
pub const MAX_ACTION_LEN: usize = 100;

/// The bidirectional formatting characters refused in text: embeddings and overrides
/// (U+202A–U+202E), isolates (U+2066–U+2069), and the implicit marks (U+200E LRM, U+200F RLM,
/// U+061C ALM). The marks are refused too: a name needs none of them to display correctly,
/// and each can reorder what surrounds it.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// The control characters refused in text: Unicode's `Cc` category (C0 and C1, so NUL, tab,
/// CR, LF, DEL, NEL…) and the line and paragraph separators U+2028/U+2029, which break lines
/// as a newline does.
pub fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Checks that `text` holds no control and no bidirectional formatting character.
///
/// Errors: [`DomainError::Validation`] naming `field`, saying which kind of character and
/// where (as a `U+XXXX` code point).
pub fn check_characters(text: &str, field: &str) -> Result<(), DomainError> {
    if let Some(c) = text.chars().find(|c| is_control(*c)) {
        let message = format!("must not contain control characters such as NUL, tab or newline (found U+{:04X})", u32::from(c));
        return Err(DomainError::validation(field, message));
    }
    if let Some(c) = text.chars().find(|c| is_bidi_control(*c)) {
        let message = format!("must not contain bidirectional formatting characters (found U+{:04X})", u32::from(c));
        return Err(DomainError::validation(field, message));
    }
    Ok(())
}

/// A clean, non-empty piece of text of at most a given number of characters: an account name,
/// a display name, a search string, a filter.
///
/// Shape: a Rust `String` in Unicode NFC, without leading or trailing white space (as
/// [`str::trim`] defines it), without control or bidirectional formatting characters
/// ([`check_characters`]), 1 to `max` characters (Unicode scalar values, counted after
/// normalisation). Serialises as a plain JSON string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(String);

impl Text {
    /// Normalises `raw` (NFC, then trim) and checks it: characters, then 1 to `max` characters.
    ///
    /// Errors: [`DomainError::Validation`] naming `field` (the GraphQL argument or input field,
    /// e.g. `displayName`, `search`) for a control or bidi character, or for a length outside
    /// 1..=`max`.
    pub fn parse(raw: &str, field: &str, max: usize) -> Result<Self, DomainError> {
        let normalised: String = raw.nfc().collect();
        let text = normalised.trim();
        check_characters(text, field)?;
        let len = text.chars().count();
        if len == 0 || len > max {
            return Err(DomainError::validation(field, format!("must be 1 to {max} characters")));
        }
        Ok(Self(text.to_string()))
    }

    /// Parses an optional filter (a search string, an action): `None`, or text that is empty
    /// after trimming, means "no filter"; anything else must be a valid [`Text`].
    ///
    /// Errors: as [`Text::parse`], except that blank text is no error.
    pub fn parse_filter(raw: Option<&str>, field: &str, max: usize) -> Result<Option<Self>, DomainError> {
        match raw {
            Some(raw) if !raw.trim().is_empty() => Self::parse(raw, field, max).map(Some),
            _ => Ok(None),
        }
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalised text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: DomainError) -> String {
        match err {
            DomainError::Validation { field, .. } => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn text_is_nfc_normalised_and_trimmed() {
        // "e" + COMBINING ACUTE ACCENT is one character once composed.
        let text = Text::parse("  Rene\u{301}e ", "name", 100).unwrap();
        assert_eq!(text.as_str(), "Ren\u{e9}e");
        assert_eq!(Text::parse("\u{3000}Ada\u{a0}", "name", 100).unwrap().as_str(), "Ada");
    }

    #[test]
    fn text_refuses_control_characters_naming_the_field() {
        for bad in ["Ann\u{0}Lee", "Ann\nLee", "Ann\rLee", "Ann\tLee", "Ann\u{7f}", "Ann\u{85}Lee", "Ann\u{2028}Lee", "A\u{1b}[31m"] {
            let err = Text::parse(bad, "displayName", 100).unwrap_err();
            assert_eq!(err.code(), "VALIDATION", "{bad:?}");
            assert_eq!(field_of(err), "displayName", "{bad:?}");
        }
    }

    #[test]
    fn text_refuses_bidi_formatting_characters() {
        for c in ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}'] {
            let err = Text::parse(&format!("Ada{c}nimdA"), "name", 100).unwrap_err();
            assert_eq!(field_of(err), "name", "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn text_keeps_letters_of_every_script_and_joiners() {
        // Right-to-left scripts need no formatting characters; ZWJ builds emoji and some scripts.
        for ok in ["أحمد", "דוד", "李小龙", "Zoë", "👩\u{200D}💻 Ada"] {
            assert_eq!(Text::parse(ok, "name", 100).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn text_length_counts_characters_after_normalisation() {
        let composed_100 = "e\u{301}".repeat(100);
        assert_eq!(Text::parse(&composed_100, "name", 100).unwrap().as_str().chars().count(), 100);
        assert_eq!(Text::parse(&"é".repeat(101), "name", 100).unwrap_err().code(), "VALIDATION");
        for blank in ["", "   ", "\u{3000}"] {
            assert_eq!(field_of(Text::parse(blank, "name", 100).unwrap_err()), "name");
        }
    }

    #[test]
    fn blank_filters_mean_no_filter_and_dirty_ones_are_refused() {
        assert_eq!(Text::parse_filter(None, "search", 10).unwrap(), None);
        assert_eq!(Text::parse_filter(Some("  "), "search", 10).unwrap(), None);
        assert_eq!(Text::parse_filter(Some(" ada "), "search", 10).unwrap().unwrap().as_str(), "ada");
        assert_eq!(field_of(Text::parse_filter(Some("a\u{0}"), "search", 10).unwrap_err()), "search");
        assert_eq!(field_of(Text::parse_filter(Some(&"a".repeat(11)), "search", 10).unwrap_err()), "search");
    }
}
