//! Projection `members`: users, accounts and their members.

use crate::ProjectionError;
use roster_domain::{AccountEvent, UserEvent, UserId};
use roster_store::StoredEvent;
use sqlx::PgConnection;

pub(crate) async fn apply(conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ProjectionError> {
    match event.aggregate_type.as_str() {
        "User" => {
            let user_id: UserId = event.aggregate_id.parse().map_err(ProjectionError::decode)?;
            let UserEvent::UserRegistered { email, display_name, registered_at } = event.decode()?;
            sqlx::query("INSERT INTO users (id, email, display_name, registered_at) VALUES ($1, $2, $3, $4)")
                .bind(user_id)
                .bind(email.as_str())
                .bind(display_name)
                .bind(registered_at)
                .execute(conn)
                .await?;
        }
        "Account" => {
            let account_id = event.account_id.ok_or_else(|| ProjectionError::decode("account event without account id"))?;
            match event.decode()? {
                AccountEvent::AccountCreated { name, created_by, created_at } => {
                    sqlx::query("INSERT INTO accounts (id, name, created_by, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(account_id)
                        .bind(name)
                        .bind(created_by)
                        .bind(created_at)
                        .execute(conn)
                        .await?;
                }
                AccountEvent::MemberJoined { user_id, email, role, joined_at, .. } => {
                    sqlx::query(
                        "INSERT INTO members (account_id, user_id, email, role, joined_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(account_id)
                    .bind(user_id)
                    .bind(email.as_str())
                    .bind(role)
                    .bind(joined_at)
                    .execute(conn)
                    .await?;
                }
                AccountEvent::MemberRoleChanged { user_id, to, .. } => {
                    sqlx::query("UPDATE members SET role = $3 WHERE account_id = $1 AND user_id = $2")
                        .bind(account_id)
                        .bind(user_id)
                        .bind(to)
                        .execute(conn)
                        .await?;
                }
                AccountEvent::MemberRemoved { user_id, .. } => {
                    sqlx::query("DELETE FROM members WHERE account_id = $1 AND user_id = $2")
                        .bind(account_id)
                        .bind(user_id)
                        .execute(conn)
                        .await?;
                }
                _ => {}
            }
        }
        _ => {}
    }
    Ok(())
}
