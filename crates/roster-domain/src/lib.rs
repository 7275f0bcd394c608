//! Roster's domain: the aggregates that decide commands, the events they emit and the rules they
//! enforce. Everything here is pure: no I/O, no clock, no randomness. Callers pass the current time
//! and fresh identifiers inside commands, which keeps every decision reproducible in tests.
//!
//! Rules come from `shared/domain-rules.md`; each rule names its source there.
//!
//! - [`account::Account`] is the aggregate for one tenant: its members, their roles and its
//!   invitations. Every membership invariant (one pending invitation per email, never zero admins,
//!   no double membership) lives inside this one consistency boundary, so optimistic concurrency
//!   on its stream makes the invariants hold under concurrent commands.
//! - [`user::User`] is the aggregate for a person's profile (email and display name).
//! - Both decide commands through the [`Decide`] trait; [`aggregate::handle`] turns a decision
//!   into cqrs-es's `Aggregate::handle`.
//! - [`permission`] holds the permission matrix; every check asks it by name
//!   ([`Role::allows`]`(`[`Permission`]`::…)`).
//!
//! Feature `sqlx` (off by default) derives `sqlx::Type` on the ids, [`Role`] and
//! [`account::InvitationState`], so read models bind and decode them directly.

#![warn(missing_docs)]

pub mod account;
pub mod aggregate;
pub mod email;
pub mod error;
pub mod id;
pub mod metadata;
pub mod password;
pub mod permission;
pub mod role;
pub mod text;
pub mod time;
pub mod token;
pub mod user;
pub mod user_token;

pub use account::{Account, AccountCommand, AccountEvent, InvitationStatus};
pub use aggregate::Decide;
pub use email::Email;
pub use error::DomainError;
pub use id::{AccountId, InvitationId, UserId};
pub use metadata::EventMetadata;
pub use permission::{permission_matrix_markdown, Access, Permission};
pub use role::Role;
pub use text::Text;
pub use time::rfc3339;
pub use token::{InviteToken, SendNonce, TokenDigest, TokenKey};
pub use user::{EmailCheck, EmailProof, OwedLink, ResetReason, User, UserCommand, UserEvent};
pub use user_token::{Purpose, UserToken};
