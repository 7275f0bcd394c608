//! Snapshots are the aggregate's state in its serde shape, tagged with [`SNAPSHOT_FORMAT`]; a
//! snapshot of another format is ignored and the aggregate replayed. So any change to the
//! state's shape must bump the format, or old snapshots would decode into wrong states (as when
//! `Invitation` gained `last_sent_by` and format 1 snapshots decoded with a nil sender).
//!
//! This test pins the shape of each format with a sample: a state of the current format must
//! decode from its sample and encode back to exactly it. Adding, removing, renaming or retyping
//! a field of `Account`, `Member` or `Invitation` fails it until the format is bumped and the new
//! format's sample added here.

use roster_domain::Account;
use roster_store::event_store::SNAPSHOT_FORMAT;
use serde_json::Value;

/// One sample `Account` snapshot per format, every field present.
const ACCOUNT_SAMPLES: &[(i64, &str)] = &[
    (
        2,
        r#"{
        "created": true,
        "name": "Acme",
        "members": {
            "00000000-0000-0000-0000-000000000ada": { "email": "ada@acme.test", "role": "ADMIN" }
        },
        "invitations": {
            "00000000-0000-0000-0000-000000001001": {
                "email": "new@acme.test",
                "role": "DEVELOPER",
                "invited_by": "00000000-0000-0000-0000-000000000ada",
                "last_sent_by": "00000000-0000-0000-0000-000000000ada",
                "token_digest": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "expires_at": "2025-03-10T09:00:00Z",
                "send_count": 2,
                "state": "Pending"
            }
        }
    }"#,
    ),
    (
        3,
        r#"{
        "created": true,
        "name": "Acme",
        "members": {
            "00000000-0000-0000-0000-000000000ada": { "email": "ada@acme.test", "role": "ADMIN" }
        },
        "invitations": {
            "00000000-0000-0000-0000-000000001001": {
                "email": "new@acme.test",
                "role": "DEVELOPER",
                "invited_by": "00000000-0000-0000-0000-000000000ada",
                "last_sent_by": "00000000-0000-0000-0000-000000000ada",
                "token_digest": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "last_sent_at": "2025-03-03T09:00:00Z",
                "expires_at": "2025-03-10T09:00:00Z",
                "send_count": 2,
                "state": "Pending"
            }
        }
    }"#,
    ),
];

#[test]
fn the_account_snapshot_shape_is_pinned_to_its_format() {
    let (_, sample) = ACCOUNT_SAMPLES
        .iter()
        .find(|(format, _)| *format == SNAPSHOT_FORMAT)
        .unwrap_or_else(|| panic!("no sample for snapshot format {SNAPSHOT_FORMAT}: add the new shape to ACCOUNT_SAMPLES"));
    let sample: Value = serde_json::from_str(sample).expect("the sample is JSON");
    let account: Account = serde_json::from_value(sample.clone())
        .expect("the current Account no longer decodes this format's sample: bump SNAPSHOT_FORMAT and add a sample");
    assert_eq!(
        serde_json::to_value(&account).expect("encode"),
        sample,
        "the Account state's shape changed: bump SNAPSHOT_FORMAT (roster-store) and add the new shape to ACCOUNT_SAMPLES"
    );
}
