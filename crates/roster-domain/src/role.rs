//! Roles and who may grant what (section "Roles" of `domain-rules.md`, modelled on Akto's
//! Admin / Security Engineer / Developer / Guest roles). What each role may do with each feature
//! is the permission matrix in [`crate::permission`].

use crate::DomainError;
use serde::{Deserialize, Serialize};

/// A member's role in one account. Serialised as `ADMIN`, `SECURITY_ENGINEER`, `DEVELOPER`, `GUEST`
/// by serde, by [`Role::as_str`] and by [`str::parse`] alike: strum derives the strings from the
/// same `SCREAMING_SNAKE_CASE` rule serde uses, so they cannot drift apart.
///
/// With the `sqlx` feature it is a `sqlx::Type` stored as TEXT (`'ADMIN'`, …).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
    strum::IntoStaticStr, strum::AsRefStr, strum::EnumString,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(
    serialize_all = "SCREAMING_SNAKE_CASE",
    parse_err_ty = DomainError,
    parse_err_fn = unknown_role
)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
pub enum Role {
    /// "Admin": may invite and grant every role; alone may change roles, remove members and read
    /// the audit log and event stream.
    Admin,
    /// "Security Engineer": may invite and grant Security Engineer, Developer or Guest; settings
    /// and roles read-only; no audit log or event stream.
    SecurityEngineer,
    /// "Developer": may not invite; reads everything except sensitive data, audit log and event
    /// stream.
    Developer,
    /// "Guest": may not invite; the same read-only access as Developer.
    Guest,
}

/// `Role::from_str`'s error: `VALIDATION` on field `role` (case F8: `admin`, `OWNER`, …).
fn unknown_role(s: &str) -> DomainError {
    DomainError::validation("role", format!("unknown role {s:?}"))
}

impl Role {
    /// Every role, most powerful first (the column order of the permission matrix).
    pub const ALL: [Role; 4] = [Role::Admin, Role::SecurityEngineer, Role::Developer, Role::Guest];

    /// The name shown to people, e.g. "Security Engineer" ("shown as" column).
    pub fn display_name(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::SecurityEngineer => "Security Engineer",
            Role::Developer => "Developer",
            Role::Guest => "Guest",
        }
    }

    /// The serialised name, e.g. `SECURITY_ENGINEER`; always equal to serde's.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The roles this role may grant by inviting or by changing a role ("may grant" column).
    /// Non-empty exactly for the roles that may invite, i.e. that
    /// [`allow`](Role::allows) [`Permission::Members`](crate::Permission::Members).
    pub fn can_grant(self) -> &'static [Role] {
        match self {
            Role::Admin => &Role::ALL,
            Role::SecurityEngineer => &[Role::SecurityEngineer, Role::Developer, Role::Guest],
            Role::Developer | Role::Guest => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn may_grant_column_matches_the_rules() {
        assert_eq!(Role::Admin.can_grant(), &Role::ALL);
        assert!(!Role::SecurityEngineer.can_grant().contains(&Role::Admin));
        assert!(Role::Developer.can_grant().is_empty() && Role::Guest.can_grant().is_empty());
        // "May invite" is the Members feature, asked by name.
        use crate::Permission::Members;
        assert!(Role::SecurityEngineer.allows(Members));
        assert!(!Role::Developer.allows(Members) && !Role::Guest.allows(Members));
    }

    #[test]
    fn serde_name_equals_as_str_and_parses_back() {
        for role in Role::ALL {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(role.as_ref(), role.as_str());
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }

    #[test]
    fn unknown_role_names_are_validation_errors_on_role() {
        for bad in ["admin", "OWNER", "", "Admin"] {
            assert_eq!(
                bad.parse::<Role>(),
                Err(DomainError::validation("role", format!("unknown role {bad:?}")))
            );
        }
    }
}
