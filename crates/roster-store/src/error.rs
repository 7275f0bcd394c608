//! Store errors.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream since it was loaded (expected-version check).
    #[error("the stream changed concurrently")]
    Conflict,
    /// The credentials table already holds this email.
    #[error("a user with this email already exists")]
    EmailTaken,
    /// A stored event or snapshot could not be read as the current type.
    #[error("stored data could not be decoded: {0}")]
    Decode(String),
    /// Anything the database reported.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Maps unique violations of the known constraints; everything else is `Database`.
    pub(crate) fn from_write(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            match db.constraint() {
                Some("events_pkey") => return StoreError::Conflict,
                Some("credentials_email_key") => return StoreError::EmailTaken,
                _ => {}
            }
        }
        StoreError::Database(err)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Decode(err.to_string())
    }
}
