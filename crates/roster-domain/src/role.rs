//! Roles, who may grant what, and the permission matrix (section "Roles" of `domain-rules.md`,
//! modelled on Akto's Admin / Security Engineer / Developer / Guest roles).

use serde::{Deserialize, Serialize};

/// A member's role in one account. Serialised as `ADMIN`, `SECURITY_ENGINEER`, `DEVELOPER`, `GUEST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

/// How far a role may use a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Access {
    /// May read and change (`READ_WRITE`).
    ReadWrite,
    /// May only read (`READ`).
    Read,
    /// No access (`NONE`).
    None,
}

impl Access {
    /// The contract's spelling: `READ_WRITE`, `READ` or `NONE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadWrite => "READ_WRITE",
            Access::Read => "READ",
            Access::None => "NONE",
        }
    }
}

/// The features of the permission matrix, in the order `domain-rules.md` lists them.
pub const FEATURES: [&str; 10] = [
    "API inventory",
    "Testing",
    "Test library",
    "Issues",
    "Sensitive data",
    "Settings",
    "Members (invite, resend, cancel)",
    "Roles (change role, remove member)",
    "Audit log",
    "Event stream (account scope)",
];

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::SecurityEngineer, Role::Developer, Role::Guest];

    /// The name shown to people, e.g. "Security Engineer".
    pub fn display_name(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::SecurityEngineer => "Security Engineer",
            Role::Developer => "Developer",
            Role::Guest => "Guest",
        }
    }

    /// The serialised name, e.g. `SECURITY_ENGINEER`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::SecurityEngineer => "SECURITY_ENGINEER",
            Role::Developer => "DEVELOPER",
            Role::Guest => "GUEST",
        }
    }

    /// The roles this role may grant by inviting or by changing a role ("may grant" column).
    pub fn can_grant(self) -> &'static [Role] {
        match self {
            Role::Admin => &Role::ALL,
            Role::SecurityEngineer => &[Role::SecurityEngineer, Role::Developer, Role::Guest],
            Role::Developer | Role::Guest => &[],
        }
    }

    /// Whether this role may invite, resend and cancel ("may invite" column).
    pub fn can_invite(self) -> bool {
        !self.can_grant().is_empty()
    }

    /// This role's access to each of [`FEATURES`], in the same order.
    pub fn permissions(self) -> [Access; 10] {
        use Access::{None as N, Read as R, ReadWrite as RW};
        match self {
            Role::Admin => [RW, RW, RW, RW, RW, RW, RW, RW, RW, R],
            Role::SecurityEngineer => [RW, RW, RW, RW, RW, R, RW, R, N, N],
            Role::Developer => [R, R, R, R, N, R, R, R, N, N],
            Role::Guest => [R, R, R, R, N, R, R, R, N, N],
        }
    }
}

impl std::str::FromStr for Role {
    type Err = crate::DomainError;

    /// Parses the serialised name (`ADMIN`, …); anything else, such as `admin` or `OWNER`, is a
    /// `VALIDATION` error on field `role` (case F8).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::DomainError::validation("role", format!("unknown role {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn may_grant_column_matches_the_rules() {
        assert_eq!(Role::Admin.can_grant(), &Role::ALL);
        assert!(!Role::SecurityEngineer.can_grant().contains(&Role::Admin));
        assert!(Role::SecurityEngineer.can_invite());
        assert!(!Role::Developer.can_invite() && !Role::Guest.can_invite());
    }

    #[test]
    fn only_admins_read_the_audit_log_and_event_stream() {
        for role in Role::ALL {
            let p = role.permissions();
            assert_eq!(p[8] == Access::ReadWrite, role == Role::Admin);
            assert_eq!(p[9] == Access::Read, role == Role::Admin);
        }
    }
}
