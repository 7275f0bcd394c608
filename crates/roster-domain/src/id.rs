//! Typed identifiers, so an account id can never be passed where a user id is expected.
//!
//! Each id is a `#[serde(transparent)]` wrapper of a [`Uuid`]: events, snapshots and map keys
//! serialise exactly as the bare UUID did (hyphenated lower-case string), so stored JSON is
//! unchanged. The domain does no I/O and no randomness, so there is no `new()`: callers
//! generate a UUID (v4 or v7) and wrap it with `from_uuid` or `From<Uuid>`.
//!
//! With the `sqlx` feature each id is also a transparent `sqlx::Type` (a `UUID` column).

use crate::DomainError;
use uuid::Uuid;

/// Declares one id newtype with its conversions; the three ids differ only in name and docs.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID the caller generated (or read from storage).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The wrapped UUID.
            pub const fn uuid(self) -> Uuid {
                self.0
            }

            /// Parses a UUID typed by a client (any form [`Uuid::parse_str`] accepts).
            ///
            /// Errors: [`DomainError::Validation`] naming `field` (the input field, e.g.
            /// `"invitationId"`) when `raw` is not a UUID. Use [`str::parse`] instead to get
            /// `uuid`'s own [`uuid::Error`].
            pub fn parse(raw: &str, field: &str) -> Result<Self, DomainError> {
                raw.trim()
                    .parse()
                    .map_err(|_| DomainError::validation(field, "is not a valid id"))
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        /// The hyphenated lower-case UUID, as serde writes it.
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        /// Parses like [`Uuid::from_str`](std::str::FromStr); the error is `uuid`'s.
        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type! {
    /// An account's id: the account aggregate's stream id.
    AccountId
}

id_type! {
    /// A user's id: the user aggregate's stream id, and the key of their memberships.
    UserId
}

id_type! {
    /// An invitation's id, unique within its account; chosen by the caller of `Invite`.
    InvitationId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialise_as_the_bare_uuid() {
        let uuid = Uuid::from_u128(0xada);
        let id = UserId::from_uuid(uuid);
        assert_eq!(serde_json::to_string(&id).unwrap(), serde_json::to_string(&uuid).unwrap());
        assert_eq!(id.to_string(), uuid.to_string());
        assert_eq!(id.to_string().parse::<UserId>().unwrap(), id);
        assert_eq!(Uuid::from(id), uuid);
    }

    #[test]
    fn parse_names_the_field() {
        let err = InvitationId::parse("nope", "invitationId").unwrap_err();
        assert_eq!(err, DomainError::validation("invitationId", "is not a valid id"));
        assert!("nope".parse::<AccountId>().is_err());
    }
}
