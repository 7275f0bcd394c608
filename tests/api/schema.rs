//! `roster schema` prints exactly the committed SDL (`schema/roster.graphql`), so a change to
//! the API shows up in review as a change to that file.

use crate::helpers::roster;

#[test]
fn roster_schema_prints_the_committed_sdl() {
    let output = roster(&["schema"]).output().expect("run roster schema");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/roster.graphql")).unwrap();
    assert!(
        printed == committed,
        "schema/roster.graphql is stale: run `cargo run -- schema > schema/roster.graphql` and review the diff"
    );
}

#[test]
fn committed_sdl_keeps_the_contract_names() {
    let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/roster.graphql")).unwrap();
    for name in [
        "signUp(input: SignUpInput!): SessionPayload!",
        "logIn(input: LogInInput!): SessionPayload!",
        "createAccount(input: CreateAccountInput!): Account!",
        "inviteUser(input: InviteUserInput!): InvitePayload!",
        "resendInvite(input: ResendInviteInput!): InvitePayload!",
        "cancelInvite(input: CancelInviteInput!): Invitation!",
        "acceptInvite(input: AcceptInviteInput!): SessionPayload!",
        "changeRole(input: ChangeRoleInput!): Member!",
        "removeMember(input: RemoveMemberInput!): RemoveMemberPayload!",
        "viewer: Viewer",
        "account(id: ID!): Account",
        "invitationPreview(token: String!): InvitationPreview",
        "roles: [RoleInfo!]!",
        "events(after: String, first: Int, accountId: ID): EventConnection!",
        "events(after: String, accountId: ID): Event!",
        "enum Role",
        "enum InvitationStatus",
        "scalar DateTime",
        "scalar JSON",
    ] {
        assert!(sdl.contains(name), "SDL lacks {name}");
    }
}
