//! Projection `members`: users, accounts and their members.
//!
//! A batch is folded in memory into final per-key operations, then written with a few
//! multi-row statements. For one `(account, user)` key the batch's events become, in this
//! order: an `UPDATE` of a row that existed before the batch, a `DELETE` of it, an `INSERT` of
//! the row the batch ends with (or passes through), a `DELETE` of that row. This sequence has
//! the same outcome as one statement per event, errors included: the `INSERT` still fails when
//! a member joins whom the table already holds.

use crate::copy::{Load, Rows};
use crate::{counted, unzip4, Stop};
use chrono::{DateTime, Utc};
use roster_domain::{AccountEvent, AccountId, Role, UserEvent, UserId};
use roster_store::reader::RawEvent;
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

struct Member {
    email: String,
    role: Role,
    joined_at: DateTime<Utc>,
}

/// What the batch does to one member key (see the module doc for the order).
#[derive(Default)]
struct KeyOps {
    pre_update: Option<Role>,
    pre_delete: bool,
    insert: Option<Member>,
    post_delete: bool,
}

/// A batch's events folded into final per-key operations. A rebuild folds the whole log into
/// one `Fold` (the shadow table starts empty) and writes it once.
#[derive(Default)]
pub(crate) struct Fold {
    users: Vec<(UserId, String, String, DateTime<Utc>)>,
    user_ids: HashSet<UserId>,
    accounts: Vec<(AccountId, String, UserId, DateTime<Utc>)>,
    account_ids: HashSet<AccountId>,
    members: HashMap<(AccountId, UserId), KeyOps>,
    order: Vec<(AccountId, UserId)>,
}

impl Fold {
    fn key(&mut self, key: (AccountId, UserId)) -> &mut KeyOps {
        if !self.members.contains_key(&key) {
            self.order.push(key);
        }
        self.members.entry(key).or_default()
    }

    /// Folds one event in; on error nothing of it was folded.
    fn event(&mut self, event: &RawEvent) -> Result<(), String> {
        match event.aggregate_type.as_str() {
            "User" => {
                let user_id: UserId = event.aggregate_id.parse().map_err(crate::decode_error)?;
                // The profile comes from `UserRegistered` only; email-ownership events change
                // no read model.
                let UserEvent::UserRegistered { email, display_name, registered_at } = event.decode().map_err(crate::decode_error)? else { return Ok(()) };
                if !self.user_ids.insert(user_id) {
                    return Err(crate::duplicate("users_pkey"));
                }
                self.users.push((user_id, email.as_str().to_string(), display_name, registered_at));
            }
            "Account" => {
                let account_id = event.account_id.ok_or_else(|| crate::decode_error("account event without account id"))?;
                match event.decode().map_err(crate::decode_error)? {
                    AccountEvent::AccountCreated { name, created_by, created_at } => {
                        if !self.account_ids.insert(account_id) {
                            return Err(crate::duplicate("accounts_pkey"));
                        }
                        self.accounts.push((account_id, name, created_by, created_at));
                    }
                    AccountEvent::MemberJoined { user_id, email, role, joined_at, .. } => {
                        let ops = self.key((account_id, user_id));
                        if ops.insert.is_some() && !ops.post_delete {
                            return Err(crate::duplicate("members_pkey"));
                        }
                        // Replacing a row inserted and deleted earlier in the batch keeps the
                        // INSERT's check against the rows the table held before the batch.
                        ops.insert = Some(Member { email: email.as_str().to_string(), role, joined_at });
                        ops.post_delete = false;
                    }
                    AccountEvent::MemberRoleChanged { user_id, to, .. } => {
                        let ops = self.key((account_id, user_id));
                        match (&mut ops.insert, ops.post_delete, ops.pre_delete) {
                            (Some(member), false, _) => member.role = to,
                            (None, _, false) => ops.pre_update = Some(to),
                            _ => {} // the row is known to be absent: an UPDATE touches nothing
                        }
                    }
                    AccountEvent::MemberRemoved { user_id, .. } => {
                        let ops = self.key((account_id, user_id));
                        if ops.insert.is_some() {
                            ops.post_delete = true;
                        } else {
                            ops.pre_delete = true;
                            ops.pre_update = None;
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Applies `events` (in position order) with a few statements; stops folding at the first
/// event that cannot be applied and reports it, after writing the events before it.
pub(crate) async fn apply(conn: &mut PgConnection, events: &[RawEvent]) -> Result<Option<Stop>, sqlx::Error> {
    let mut fold = Fold::default();
    let stop = fold.events(events);
    fold.write(conn).await?;
    Ok(stop)
}

impl Fold {
    /// Folds `events` (in position order) in, up to the first one that cannot be applied,
    /// which it returns.
    pub(crate) fn events(&mut self, events: &[RawEvent]) -> Option<Stop> {
        for event in events {
            if let Err(error) = self.event(event) {
                return Some(Stop { position: event.position, error });
            }
        }
        None
    }

    /// The folded rows as bulk loads of `users`, `accounts` and `members`, for a fold of the
    /// whole log into empty tables: there an update or delete of a row from before the fold
    /// touches nothing, and a member inserted then deleted is no row.
    pub(crate) fn copy_rows(mut self) -> Vec<Load> {
        let mut users = Rows::with_capacity(self.users.len() * 100);
        for (id, email, name, at) in &self.users {
            users.tuple(4).uuid(id.uuid()).text(email).text(name).timestamptz(*at);
        }
        let mut accounts = Rows::with_capacity(self.accounts.len() * 100);
        for (id, name, by, at) in &self.accounts {
            accounts.tuple(4).uuid(id.uuid()).text(name).uuid(by.uuid()).timestamptz(*at);
        }
        // A member's display name is their user's (NULL for a user the log does not register,
        // as the live path leaves it).
        let names: HashMap<UserId, &str> = self.users.iter().map(|(id, _, name, _)| (*id, name.as_str())).collect();
        let mut members = Rows::with_capacity(self.order.len() * 100);
        let mut roles = Vec::with_capacity(self.order.len());
        for key in &self.order {
            let ops = self.members.remove(key).expect("every ordered key has ops");
            if let (Some(m), false) = (ops.insert, ops.post_delete) {
                members.tuple(6).uuid(key.0.uuid()).uuid(key.1.uuid()).text(&m.email).opt_text(names.get(&key.1).copied());
                members.text(m.role.as_str()).timestamptz(m.joined_at);
                roles.push((key.0.uuid(), m.role.as_str()));
            }
        }
        vec![
            Load { table: "users", columns: "id, email, display_name, registered_at", rows: users },
            Load { table: "accounts", columns: "id, name, created_by, created_at", rows: accounts },
            Load { table: "members", columns: "account_id, user_id, email, display_name, role, joined_at", rows: members },
            Load::counts("member_counts", "account_id, role, n", roles.into_iter()),
        ]
    }

    /// Writes the folded operations with a few multi-row statements.
    pub(crate) async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        write(conn, self).await
    }
}

async fn write(conn: &mut PgConnection, mut fold: Fold) -> Result<(), sqlx::Error> {
    if !fold.users.is_empty() {
        let (ids, emails, names, at) = unzip4(fold.users);
        sqlx::query(
            "INSERT INTO users (id, email, display_name, registered_at)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])",
        )
        .bind(&ids).bind(emails).bind(&names).bind(at)
        .execute(&mut *conn)
        .await?;
        // Members who joined before their user's registration was projected (the service
        // registers first; the read model does not depend on it) get the display name now.
        sqlx::query("UPDATE members m SET display_name = u.name FROM UNNEST($1::uuid[], $2::text[]) AS u(id, name) WHERE m.user_id = u.id")
            .bind(ids).bind(names)
            .execute(&mut *conn)
            .await?;
    }
    if !fold.accounts.is_empty() {
        let (ids, names, by, at) = unzip4(fold.accounts);
        sqlx::query(
            "INSERT INTO accounts (id, name, created_by, created_at)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[])",
        )
        .bind(ids).bind(names).bind(by).bind(at)
        .execute(&mut *conn)
        .await?;
    }
    let mut updates = (Vec::new(), Vec::new(), Vec::new());
    let mut pre_deletes = (Vec::new(), Vec::new());
    let mut inserts = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut post_deletes = (Vec::new(), Vec::new());
    for key in fold.order {
        let ops = fold.members.remove(&key).expect("every ordered key has ops");
        let (account, user) = key;
        if let Some(role) = ops.pre_update {
            updates.0.push(account);
            updates.1.push(user);
            updates.2.push(role.as_str().to_string());
        }
        if ops.pre_delete {
            pre_deletes.0.push(account);
            pre_deletes.1.push(user);
        }
        if let Some(m) = ops.insert {
            inserts.0.push(account);
            inserts.1.push(user);
            inserts.2.push(m.email);
            inserts.3.push(m.role.as_str().to_string());
            inserts.4.push(m.joined_at);
        }
        if ops.post_delete {
            post_deletes.0.push(account);
            post_deletes.1.push(user);
        }
    }
    if !updates.0.is_empty() {
        // `old` is the statement's snapshot of the row: the role before the update.
        sqlx::query(&counted(
            "upd AS (UPDATE members m SET role = u.role
                       FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS u(account_id, user_id, role), members old
                      WHERE m.account_id = u.account_id AND m.user_id = u.user_id
                        AND old.account_id = m.account_id AND old.user_id = m.user_id
                  RETURNING m.account_id, old.role AS old_role, m.role AS new_role),
             changes(account_id, k, d) AS (SELECT account_id, old_role, -1 FROM upd UNION ALL SELECT account_id, new_role, 1 FROM upd)",
            "member_counts",
            "role",
        ))
        .bind(updates.0).bind(updates.1).bind(updates.2)
        .execute(&mut *conn)
        .await?;
    }
    delete(conn, pre_deletes).await?;
    if !inserts.0.is_empty() {
        sqlx::query(&counted(
            "ins AS (INSERT INTO members (account_id, user_id, email, display_name, role, joined_at)
                     SELECT x.account_id, x.user_id, x.email, (SELECT display_name FROM users WHERE id = x.user_id), x.role, x.joined_at
                       FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[]) AS x(account_id, user_id, email, role, joined_at)
                     RETURNING account_id, role),
             changes(account_id, k, d) AS (SELECT account_id, role, 1 FROM ins)",
            "member_counts",
            "role",
        ))
        .bind(inserts.0).bind(inserts.1).bind(inserts.2).bind(inserts.3).bind(inserts.4)
        .execute(&mut *conn)
        .await?;
    }
    delete(conn, post_deletes).await?;
    Ok(())
}

async fn delete(conn: &mut PgConnection, (accounts, users): (Vec<AccountId>, Vec<UserId>)) -> Result<(), sqlx::Error> {
    if accounts.is_empty() {
        return Ok(());
    }
    sqlx::query(&counted(
        "del AS (DELETE FROM members WHERE (account_id, user_id) IN (SELECT * FROM UNNEST($1::uuid[], $2::uuid[])) RETURNING account_id, role),
         changes(account_id, k, d) AS (SELECT account_id, role, -1 FROM del)",
        "member_counts",
        "role",
    ))
        .bind(accounts)
        .bind(users)
        .execute(conn)
        .await?;
    Ok(())
}
