//! Stored JSON survives the id newtypes: events written before them still decode and re-encode
//! byte for byte, and `Account` snapshots (maps keyed by id) round-trip with UUID-string keys.

use crate::fixtures::*;

/// A `MemberInvited` (2.0.0) exactly as the store held it when ids were bare `Uuid`s.
const STORED_MEMBER_INVITED: &str = r#"{"MemberInvited":{"invitation_id":"00000000-0000-0000-0000-000000001001","email":"new@acme.test","role":"DEVELOPER","invited_by":"00000000-0000-0000-0000-00000000005a","token_digest":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","sent_at":"2025-03-03T09:00:00Z","expires_at":"2025-03-10T09:00:00Z"}}"#;

#[test]
fn an_event_stored_before_the_id_newtypes_still_decodes_unchanged() {
    let event: E = serde_json::from_str(STORED_MEMBER_INVITED).unwrap();
    match &event {
        E::MemberInvited { invitation_id, invited_by, role, sent_at, expires_at, .. } => {
            assert_eq!(*invitation_id, INV1);
            assert_eq!(*invited_by, SAM);
            assert_eq!(*role, Role::Developer);
            assert_eq!((*sent_at, *expires_at), (days(0), days(7)));
        }
        other => panic!("decoded as {other:?}"),
    }
    assert_eq!(serde_json::to_string(&event).unwrap(), STORED_MEMBER_INVITED);
}

#[test]
fn account_snapshot_round_trips_with_uuid_keys() {
    let mut history = team_and([new_invited_by_sam(), resent(INV1, ADA, 2, 1, 2)]);
    history.extend([
        invited(INV2, email_of(EVE), Role::Guest, SAM, 3, 1),
        cancelled(INV2, SAM, REASON_CANCELLED, 2),
    ]);
    let account = state(history);
    let json = serde_json::to_value(&account).unwrap();
    assert!(json["members"]["00000000-0000-0000-0000-000000000ada"].is_object(), "{json}");
    let inv = &json["invitations"]["00000000-0000-0000-0000-000000001001"];
    assert_eq!(inv["invited_by"], "00000000-0000-0000-0000-00000000005a");
    assert_eq!(inv["last_sent_by"], "00000000-0000-0000-0000-000000000ada");
    let back: Account = serde_json::from_value(json).unwrap();
    assert_eq!(back, account);
}

/// A snapshot written before `last_sent_by` existed (and before the id newtypes) still decodes;
/// the missing sender is the nil id, which matches nobody.
#[test]
fn an_old_snapshot_without_last_sent_by_decodes() {
    let stored = r#"{"created":true,"name":"Acme","members":{"00000000-0000-0000-0000-000000000ada":{"email":"ada@acme.test","role":"ADMIN"}},"invitations":{"00000000-0000-0000-0000-000000001001":{"email":"new@acme.test","role":"GUEST","invited_by":"00000000-0000-0000-0000-000000000ada","token_digest":"00","expires_at":"2025-03-10T09:00:00Z","send_count":1,"state":"Pending"}}}"#;
    let account: Account = serde_json::from_str(stored).unwrap();
    assert_eq!(account.role_of(ADA), Some(Role::Admin));
    let invitation = &account.invitations[&INV1];
    assert_eq!(invitation.invited_by, ADA);
    assert_eq!(invitation.last_sent_by, UserId::from_uuid(Uuid::nil()));
    assert_eq!(invitation.status(days(1)), InvitationStatus::Pending);
}
