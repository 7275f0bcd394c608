//! Change role (rule "Change role"): Admins only, never oneself, never the last Admin.

use crate::fixtures::*;

#[test]
fn change_role_by_an_admin_records_from_and_to() {
    given(team())
        .when(change_role(ADA, DEV, Role::SecurityEngineer))
        .then_expect_events(vec![E::MemberRoleChanged {
            user_id: DEV,
            from: Role::Developer,
            to: Role::SecurityEngineer,
            changed_by: ADA,
        }]);
}

#[test]
fn change_role_by_an_admin_may_grant_admin() {
    given(team())
        .when(change_role(ADA, GUS, Role::Admin))
        .then_expect_events(vec![E::MemberRoleChanged {
            user_id: GUS,
            from: Role::Guest,
            to: Role::Admin,
            changed_by: ADA,
        }]);
}

#[test]
fn change_role_by_a_non_admin_is_forbidden() {
    // A Security Engineer may not change roles either, not even within its "may grant" column.
    for actor in [SAM, DEV, GUS, EVE] {
        given(team())
            .when(change_role(actor, GUS, Role::Developer))
            .then_expect_error(DomainError::Forbidden);
    }
}

#[test]
fn change_role_of_oneself_is_self_change() {
    let history = team_and([joined(ALI, Role::Admin)]);
    given(history)
        .when(change_role(ADA, ADA, Role::Developer))
        .then_expect_error(DomainError::SelfChange);
}

#[test]
fn change_role_of_the_sole_admin_by_themself_is_last_admin() {
    for role in [Role::SecurityEngineer, Role::Developer, Role::Guest] {
        given(team())
            .when(change_role(ADA, ADA, role))
            .then_expect_error(DomainError::LastAdmin);
    }
}

#[test]
fn change_role_to_the_same_role_is_a_no_op() {
    given(team())
        .when(change_role(ADA, SAM, Role::SecurityEngineer))
        .then_expect_events(vec![]);
    let history = team_and([joined(ALI, Role::Admin)]);
    given(history)
        .when(change_role(ADA, ALI, Role::Admin))
        .then_expect_events(vec![]);
}

#[test]
fn change_role_of_a_non_member_is_not_found() {
    given(team())
        .when(change_role(ADA, EVE, Role::Guest))
        .then_expect_error(DomainError::NotFound("member"));
}

#[test]
fn change_role_may_demote_one_of_two_admins_but_never_the_last() {
    let demote_ali = E::MemberRoleChanged {
        user_id: ALI,
        from: Role::Admin,
        to: Role::Developer,
        changed_by: ADA,
    };
    given(team_and([joined(ALI, Role::Admin)]))
        .when(change_role(ADA, ALI, Role::Developer))
        .then_expect_events(vec![demote_ali.clone()]);
    // The two Admins demoting each other one after the other: the second one is no longer an
    // Admin, and Ada, now the last Admin, cannot demote herself.
    let history = team_and([joined(ALI, Role::Admin), demote_ali]);
    given(history.clone())
        .when(change_role(ALI, ADA, Role::Developer))
        .then_expect_error(DomainError::Forbidden);
    given(history)
        .when(change_role(ADA, ADA, Role::Developer))
        .then_expect_error(DomainError::LastAdmin);
}
