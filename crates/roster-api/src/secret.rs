//! The strength rule for the two secrets the server is configured with: `ROSTER_JWT_SECRET`
//! (anyone who knows it can sign an Admin session) and `ROSTER_OPERATOR_TOKEN` (reads every
//! account's events). The contract asks for ≥ 32 bytes of entropy (issue 10: `x` and a fixed
//! secret shipped in `docker-compose.yml` were accepted).
//!
//! Entropy cannot be measured from one value, so the rule judges it simply, from the alphabet
//! and the length, and refuses the obviously guessable (documented in `docs/inputs.md`):
//!
//! - hex (only `0-9a-fA-F`) counts 4 bits a character: at least 64 characters
//!   (`openssl rand -hex 32`);
//! - anything else counts at most 6 bits a character, as base64 does: at least 43 characters
//!   besides `=` padding (`openssl rand -base64 32` prints 44);
//! - at least [`MIN_DISTINCT`] distinct characters, and not one short run repeated
//!   (`aaaa…`, `abcabc…`, `0123456789abcdef` four times);
//! - no placeholder word from [`PLACEHOLDERS`] (`change-me…`, `secret`, `password`…), in any case.
//!
//! Random values from the commands above pass with certainty for all practical purposes: the
//! odds that 43 random base64 characters contain a listed word, or show fewer than 10 distinct
//! characters, are below one in a million.

/// Fewest distinct characters a secret may have (64 random hex digits show about 15 of 16).
pub const MIN_DISTINCT: usize = 10;

/// Words that mark a value as a placeholder or a human choice rather than random bytes.
pub const PLACEHOLDERS: [&str; 10] =
    ["change", "secret", "passw", "placeholder", "example", "default", "insecure", "replace", "dummy", "sample"];

/// Checks that `value`, the setting of environment variable `var`, is a strong secret (rules
/// in the module documentation).
///
/// Errors: a message for the operator that names `var`, says what is wrong and how to make one.
pub fn check_secret(var: &str, value: &str) -> Result<(), String> {
    weakness(value).map_or(Ok(()), |why| {
        Err(format!(
            "{var} is too weak: {why}; it must carry at least 32 random bytes, e.g. `openssl rand -base64 32` \
             or `openssl rand -hex 32`"
        ))
    })
}

/// Why `value` is weak, or `None` when it passes.
fn weakness(value: &str) -> Option<String> {
    let chars: Vec<char> = value.trim_end_matches('=').chars().collect();
    let hex = !chars.is_empty() && chars.iter().all(char::is_ascii_hexdigit);
    let (needed, kind) = if hex { (64, "hex digits") } else { (43, "characters") };
    if chars.len() < needed {
        return Some(format!("{} {kind}, fewer than {needed}", chars.len()));
    }
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT {
        return Some(format!("only {} distinct characters", distinct.len()));
    }
    if let Some(period) = (1..=chars.len() / 2).find(|p| chars.iter().zip(&chars[*p..]).all(|(a, b)| a == b)) {
        return Some(format!("a run of {period} characters repeated"));
    }
    let lower = value.to_lowercase();
    PLACEHOLDERS.iter().find(|word| lower.contains(*word)).map(|word| format!("it contains the placeholder word {word:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE64: &str = "q3Jk9Zr0W1xYb8LmN2pQs4Tv6Uw7Ax5Bc+De/Fg0HiJ="; // 43 + padding
    const HEX: &str = "4f1c9a7e2b6d8035f1e4a9c7b2d6e80193a5c7e9f1b3d5a7c9e1f3b5d7a9c1e3";

    #[test]
    fn random_hex_and_base64_of_32_bytes_pass() {
        assert_eq!(check_secret("ROSTER_JWT_SECRET", BASE64), Ok(()));
        assert_eq!(check_secret("ROSTER_JWT_SECRET", HEX), Ok(()));
        assert_eq!(check_secret("ROSTER_JWT_SECRET", &BASE64.replace(['+', '/'], "-")), Ok(()));
    }

    #[test]
    fn short_repeated_and_placeholder_values_are_refused_naming_the_variable() {
        let refused = [
            "x".to_string(),
            "change-me-in-production".to_string(),
            HEX[..63].to_string(),
            BASE64[..42].to_string(),
            "a".repeat(64),
            "0123456789abcdef".repeat(4),
            "abcdefghijk".repeat(5),
            format!("{}change-me", &BASE64[..40]),
            format!("{}PASSWORD", &BASE64[..40]),
        ];
        for value in refused {
            let err = check_secret("ROSTER_OPERATOR_TOKEN", &value).unwrap_err();
            assert!(err.starts_with("ROSTER_OPERATOR_TOKEN is too weak"), "{value:?}: {err}");
        }
    }

    #[test]
    fn the_message_never_repeats_the_secret() {
        let value = format!("{}secret", &BASE64[..40]);
        assert!(!check_secret("ROSTER_JWT_SECRET", &value).unwrap_err().contains(&value));
    }
}
