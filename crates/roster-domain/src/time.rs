//! How instants are spelled outside Rust values.

use chrono::{DateTime, SecondsFormat, Utc};

/// `at` as RFC 3339 in UTC with a `Z` and only the fractional digits it needs
/// (`2025-01-11T10:00:00Z`, `2025-01-11T10:00:00.123Z`): the spelling serde gives every
/// timestamp in event payloads, used for metadata and the audit feed too.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
