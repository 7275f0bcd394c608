//! Domain tests for the account aggregate: one test per rule of `shared/domain-rules.md`
//! (sections "Invitations" and "Members and roles") and per error code of the contract's
//! "Errors" table that `Account::decide` can return. One test binary; a module per topic.
//!
//! Most tests use cqrs-es's given/when/then [`TestFramework`](cqrs_es::test::TestFramework):
//! *given* the events already in the account's stream, *when* a command arrives, *then* these
//! events (or this error). `TestFramework::when` starts its own tokio runtime, so these are
//! plain `#[test]`s. `properties` is a property test over random command sequences.
//!
//! Run one topic with e.g. `cargo test -p roster-domain --test rules invite::`.

mod fixtures;
mod strategies;

mod accept;
mod cancel;
mod change_role;
mod create_account;
mod email;
mod invite;
mod properties;
mod readme;
mod remove_member;
mod resend;
mod serialization;
mod status_and_errors;
