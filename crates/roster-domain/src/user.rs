//! The user aggregate: a person's profile. Credentials are not here: passwords live in the
//! credentials table, outside the event log (rule "Events").

use crate::aggregate::{self, Decide};
use crate::{DomainError, Email, Text};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// Longest display name, in characters (rule "Accept").
pub const MAX_DISPLAY_NAME_LEN: usize = 100;

/// What can be asked of a user.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// Registers a new user; emits `UserRegistered`. Email uniqueness is guarded by the store's
    /// credentials table. Refused with `VALIDATION` (`email` if this user is already registered;
    /// `displayName` unless a clean [`Text`] of 1–100 characters).
    Register {
        /// The user's normalised email; for an invitee, the invited email.
        email: Email,
        /// Display name as typed; parsed by `decide` as a [`Text`] of 1–100 characters
        /// ([`MAX_DISPLAY_NAME_LEN`], rule "Accept"; NFC, trimmed, no control or bidi characters).
        display_name: String,
        /// Current UTC instant; becomes `registered_at`.
        now: DateTime<Utc>,
    },
}

/// What happened to a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    /// A user registered; emitted by `Register` (sign-up, or accepting an invitation without an
    /// account). Holds no password (rule "Events").
    UserRegistered {
        /// The user's normalised email.
        email: Email,
        /// Display name, trimmed, 1–100 characters.
        display_name: String,
        /// When they registered (UTC instant).
        registered_at: DateTime<Utc>,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        "UserRegistered".to_string()
    }
    fn event_version(&self) -> String {
        "1.0.0".to_string()
    }
}

/// The user aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The user's normalised email; `None` until `UserRegistered`.
    pub email: Option<Email>,
    /// The user's display name; empty until `UserRegistered`.
    pub display_name: String,
}

impl Decide for User {
    /// Decides `command`: the events to append, or why not.
    ///
    /// Errors: `VALIDATION` (`displayName`) for a name that is not a clean [`Text`] of 1–100
    /// characters (control or bidi characters, blank, too long);
    /// `VALIDATION` (`email`) when this user is already registered.
    fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, DomainError> {
        match command {
            UserCommand::Register { email, display_name, now } => {
                if self.email.is_some() {
                    return Err(DomainError::validation("email", "user already registered"));
                }
                let display_name = Text::parse(&display_name, "displayName", MAX_DISPLAY_NAME_LEN)?.into_string();
                Ok(vec![UserEvent::UserRegistered { email, display_name, registered_at: now }])
            }
        }
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "User";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: UserCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        aggregate::handle(self, command, sink).await
    }

    fn apply(&mut self, event: UserEvent) {
        match event {
            UserEvent::UserRegistered { email, display_name, .. } => {
                self.email = Some(email);
                self.display_name = display_name;
            }
        }
    }
}
