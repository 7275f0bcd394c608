//! Create account (rule "Sign-up"): the founder becomes the only Admin.

use crate::fixtures::*;

#[test]
fn create_account_makes_the_founder_its_only_admin() {
    given_nothing()
        .when(create("Acme", ADA, 0))
        .then_expect_events(created());
}

#[test]
fn create_account_trims_the_name() {
    let mut expected = created();
    expected[0] = E::AccountCreated {
        name: "Acme Corp".into(),
        created_by: ADA,
        created_at: t0(),
    };
    given_nothing()
        .when(create("  Acme Corp \n", ADA, 0))
        .then_expect_events(expected);
}

#[test]
fn create_account_name_must_be_1_to_100_characters() {
    let too_long = "x".repeat(MAX_ACCOUNT_NAME_LEN + 1);
    for bad in ["", "   ", "\t\n", too_long.as_str()] {
        expect_validation(given_nothing().when(create(bad, ADA, 0)), "name");
    }
    // 100 characters (not bytes) is still fine.
    let longest = "é".repeat(MAX_ACCOUNT_NAME_LEN);
    let result = given_nothing()
        .when(create(&longest, ADA, 0))
        .inspect_result();
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn create_an_existing_account_is_validation() {
    expect_validation(given(created()).when(create("Again", SAM, 1)), "accountId");
}

#[test]
fn commands_on_a_not_created_account_are_not_found() {
    let commands = [
        invite(ADA, INV1, email_of(NEW), Role::Developer, 1, 0),
        resend(ADA, INV1, 2, 0),
        cancel(ADA, INV1, 0),
        change_role(ADA, SAM, Role::Guest),
        remove(ADA, SAM, 0),
    ];
    for command in commands {
        given_nothing()
            .when(command)
            .then_expect_error(DomainError::NotFound("account"));
    }
}

#[test]
fn accept_on_a_not_created_account_is_invalid_token() {
    // A token naming an account that does not exist does not verify (no account is revealed).
    given_nothing()
        .when(accept(INV1, 1, user(NEW), 0))
        .then_expect_error(DomainError::InvalidToken);
}
