//! The permission matrix (feature → access per role), section "Roles" of `domain-rules.md`.
//!
//! Every permission check in the domain asks by name, e.g.
//! `role.allows(Permission::Members)`, never by position or by comparing with `Role::Admin`.
//! The API asks the same way (e.g. [`Role::may_read_audit_log`]) instead of hard-coding
//! "Admins only", so changing a cell of the table changes every check that depends on it.

use crate::Role;
use serde::{Deserialize, Serialize};

/// How far a role may use a feature. Ordered `None < Read < ReadWrite`, so
/// `access >= Access::Read` means "may at least read".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
    strum::IntoStaticStr, strum::AsRefStr,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Access {
    /// No access (`NONE`).
    None,
    /// May only read (`READ`).
    Read,
    /// May read and change (`READ_WRITE`).
    ReadWrite,
}

impl Access {
    /// The contract's spelling: `READ_WRITE`, `READ` or `NONE`; always equal to serde's.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A feature of the permission matrix, one per row of the table in `domain-rules.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// "API inventory".
    ApiInventory,
    /// "Testing".
    Testing,
    /// "Test library".
    TestLibrary,
    /// "Issues".
    Issues,
    /// "Sensitive data".
    SensitiveData,
    /// "Settings".
    Settings,
    /// "Members (invite, resend, cancel)": `ReadWrite` is what lets a role invite, resend and
    /// cancel (the "may invite" column).
    Members,
    /// "Roles (change role, remove member)": `ReadWrite` is what lets a role change roles and
    /// remove members (rules "Change role" and "Remove member").
    Roles,
    /// "Audit log": `ReadWrite` is what lets a role read the audit log.
    AuditLog,
    /// "Event stream (account scope)": at least `Read` lets a role subscribe to the account's
    /// event stream.
    EventStream,
}

impl Permission {
    /// Every feature, in the order `domain-rules.md` lists them.
    pub const ALL: [Permission; 10] = [
        Permission::ApiInventory,
        Permission::Testing,
        Permission::TestLibrary,
        Permission::Issues,
        Permission::SensitiveData,
        Permission::Settings,
        Permission::Members,
        Permission::Roles,
        Permission::AuditLog,
        Permission::EventStream,
    ];

    /// The feature's name as the contract's `roles` query and `domain-rules.md` show it,
    /// e.g. "Members (invite, resend, cancel)".
    pub fn label(self) -> &'static str {
        match self {
            Permission::ApiInventory => "API inventory",
            Permission::Testing => "Testing",
            Permission::TestLibrary => "Test library",
            Permission::Issues => "Issues",
            Permission::SensitiveData => "Sensitive data",
            Permission::Settings => "Settings",
            Permission::Members => "Members (invite, resend, cancel)",
            Permission::Roles => "Roles (change role, remove member)",
            Permission::AuditLog => "Audit log",
            Permission::EventStream => "Event stream (account scope)",
        }
    }
}

impl Role {
    /// This role's access to `permission`: the one permission table of the crate.
    pub fn access(self, permission: Permission) -> Access {
        use Access::{None as N, Read as R, ReadWrite as RW};
        // One row per feature, columns as in domain-rules.md: Admin, Security Engineer,
        // Developer, Guest.
        let [admin, security_engineer, developer, guest] = match permission {
            Permission::ApiInventory => [RW, RW, R, R],
            Permission::Testing => [RW, RW, R, R],
            Permission::TestLibrary => [RW, RW, R, R],
            Permission::Issues => [RW, RW, R, R],
            Permission::SensitiveData => [RW, RW, N, N],
            Permission::Settings => [RW, R, R, R],
            Permission::Members => [RW, RW, R, R],
            Permission::Roles => [RW, R, R, R],
            Permission::AuditLog => [RW, N, N, N],
            Permission::EventStream => [R, N, N, N],
        };
        match self {
            Role::Admin => admin,
            Role::SecurityEngineer => security_engineer,
            Role::Developer => developer,
            Role::Guest => guest,
        }
    }

    /// Whether this role may *act* on `permission`: true exactly when its access is
    /// [`Access::ReadWrite`]. E.g. `allows(Permission::Members)` = may invite, resend and cancel;
    /// `allows(Permission::Roles)` = may change roles and remove members.
    pub fn allows(self, permission: Permission) -> bool {
        self.access(permission) == Access::ReadWrite
    }

    /// Whether this role may at least read `permission` (access `Read` or `ReadWrite`).
    pub fn may_read(self, permission: Permission) -> bool {
        self.access(permission) >= Access::Read
    }

    /// Rule "Who" (`domain-rules.md`, "Invitations"): whether this role may invite someone
    /// with the role `granted`: it [`allows`](Role::allows) [`Permission::Members`] and
    /// `granted` is in its "may grant" column ([`Role::can_grant`]).
    pub fn may_invite(self, granted: Role) -> bool {
        self.allows(Permission::Members) && self.can_grant().contains(&granted)
    }

    /// Rule "Resend": whether this role may resend an invitation for the role `invited`; `own`
    /// says whether the actor sent it. An Admin (the role itself, as the rule says) may resend
    /// any; the original inviter only while it [`may_invite`](Role::may_invite) with `invited`,
    /// since a resend issues a new link.
    pub fn may_resend(self, own: bool, invited: Role) -> bool {
        self == Role::Admin || (own && self.may_invite(invited))
    }

    /// Rule "Cancel": whether this role may cancel an invitation; `own` as in
    /// [`may_resend`](Role::may_resend). An Admin may cancel any; the original inviter while its
    /// role [`allows`](Role::allows) [`Permission::Members`] (cancelling only takes access away,
    /// so the granted role does not matter).
    pub fn may_cancel(self, own: bool) -> bool {
        self == Role::Admin || (own && self.allows(Permission::Members))
    }

    /// Whether this role may read the account's audit log: [`allows`](Role::allows)
    /// [`Permission::AuditLog`] (today: Admins only). The API's `auditLog` asks this.
    pub fn may_read_audit_log(self) -> bool {
        self.allows(Permission::AuditLog)
    }

    /// Whether this role may subscribe to the account's event stream:
    /// [`may_read`](Role::may_read) [`Permission::EventStream`] (today: Admins only).
    pub fn may_read_event_stream(self) -> bool {
        self.may_read(Permission::EventStream)
    }
}

/// The permission matrix as a markdown table, exactly as README.md and `domain-rules.md` show
/// it: a `| feature | Admin | … |` header, a `|---|…|` separator and one row per
/// [`Permission::ALL`] with access names (`READ_WRITE`, `READ`, `NONE`); lines end in `\n`.
pub fn permission_matrix_markdown() -> String {
    let mut table = String::from("| feature |");
    for role in Role::ALL {
        table.push_str(&format!(" {} |", role.display_name()));
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(Role::ALL.len()));
    table.push('\n');
    for permission in Permission::ALL {
        table.push_str(&format!("| {} |", permission.label()));
        for role in Role::ALL {
            table.push_str(&format!(" {} |", role.access(permission).as_str()));
        }
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_serde_name_equals_as_str_and_orders_by_power() {
        for access in [Access::None, Access::Read, Access::ReadWrite] {
            let json = serde_json::to_string(&access).unwrap();
            assert_eq!(json, format!("\"{}\"", access.as_str()));
        }
        assert!(Access::None < Access::Read && Access::Read < Access::ReadWrite);
    }

    /// The derived rules equal the ones the domain enforced before it asked by name.
    #[test]
    fn derived_rules_equal_the_role_rules() {
        for role in Role::ALL {
            let admin = role == Role::Admin;
            // May invite: Admin and Security Engineer, the roles with a "may grant" column.
            assert_eq!(role.allows(Permission::Members), !role.can_grant().is_empty());
            assert_eq!(
                role.allows(Permission::Members),
                matches!(role, Role::Admin | Role::SecurityEngineer)
            );
            // Change role, remove member, audit log, event stream: Admins only.
            assert_eq!(role.allows(Permission::Roles), admin);
            assert_eq!(role.may_read_audit_log(), admin);
            assert_eq!(role.may_read_event_stream(), admin);
            assert_eq!(role.access(Permission::AuditLog) == Access::ReadWrite, admin);
            assert_eq!(role.access(Permission::EventStream) == Access::Read, admin);
            // Someone else's invitation: Admins only; one's own: while one may still invite.
            for invited in Role::ALL {
                assert_eq!(role.may_invite(invited), role.allows(Permission::Members) && role.can_grant().contains(&invited));
                assert_eq!(role.may_resend(false, invited), admin);
                assert_eq!(role.may_resend(true, invited), admin || role.may_invite(invited));
            }
            assert_eq!(role.may_cancel(false), admin);
            assert_eq!(role.may_cancel(true), role.allows(Permission::Members));
        }
    }

    #[test]
    fn labels_are_the_feature_names_in_order() {
        let labels: Vec<&str> = Permission::ALL.iter().map(|p| p.label()).collect();
        assert_eq!(
            labels,
            [
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
            ]
        );
    }
}
