//! Password hashes (argon2id PHC strings, made by the API), one per user, keyed by normalised
//! email. Kept outside the event log so that no event holds a secret.

use crate::StoreError;
use sqlx::{PgConnection, PgPool};
use roster_domain::UserId;

/// A user's stored credential.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credential {
    /// The user the credential belongs to.
    pub user_id: UserId,
    /// Normalised email; unique.
    pub email: String,
    /// argon2id PHC string (`$argon2id$v=19$…`), never the password.
    pub password_hash: String,
}

/// Inserts the credential for a new user, in the caller's transaction.
///
/// Errors: [`StoreError::EmailTaken`] when the email already has a credential.
pub async fn insert(conn: &mut PgConnection, user_id: UserId, email: &str, password_hash: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO credentials (user_id, email, password_hash) VALUES ($1, $2, $3)")
        .bind(user_id)
        .bind(email)
        .bind(password_hash)
        .execute(conn)
        .await
        .map_err(StoreError::from_write)?;
    Ok(())
}

/// The credential for a normalised `email`, if any.
pub async fn find_by_email(pool: &PgPool, email: &str) -> Result<Option<Credential>, StoreError> {
    Ok(sqlx::query_as("SELECT user_id, email, password_hash FROM credentials WHERE email = $1")
        .bind(email)
        .fetch_optional(pool)
        .await?)
}

/// When `user_id`'s sessions start to count: a session issued before it is refused (set by a
/// password reset). `None`: no reset, or no such user.
pub async fn sessions_valid_after(pool: &PgPool, user_id: UserId) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    let found: Option<Option<chrono::DateTime<chrono::Utc>>> = sqlx::query_scalar("SELECT sessions_valid_after FROM credentials WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.flatten())
}
