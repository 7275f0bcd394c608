//! Connecting to PostgreSQL and applying the migrations in `migrations/`.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// The migrations embedded from the repository's `migrations/` directory.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// How long the first connection may take before [`connect`] gives up: an unreachable host
/// answers within this rather than after the pool's acquire time-out.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a `postgres://` URL points, without its password: what operators need to find the
/// server and the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address, or the Unix socket directory.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name (PostgreSQL's default: the user's name).
    pub database: String,
    /// Role the connection logs in as.
    pub user: String,
}

impl Target {
    /// The target of parsed connect options.
    pub fn of(options: &PgConnectOptions) -> Self {
        let host = options.get_socket().map_or_else(|| options.get_host().to_string(), |socket| socket.display().to_string());
        let user = options.get_username().to_string();
        let database = options.get_database().map_or_else(|| user.clone(), str::to_string);
        Self { host, port: options.get_port(), database, user }
    }
}

impl std::fmt::Display for Target {
    /// `postgres://user@host:port/database`: the URL with no password, to paste elsewhere.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "postgres://{}@{}:{}/{}", self.user, self.host, self.port, self.database)
    }
}

/// Why a connection failed, in an operator's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The host answered but nothing listens on the port.
    Refused,
    /// The host name does not resolve.
    UnknownHost,
    /// The server refused the user or the password (SQLSTATE 28P01 or 28000).
    AuthenticationFailed(String),
    /// The server has no database of that name (SQLSTATE 3D000).
    UnknownDatabase,
    /// No answer within [`PROBE_TIMEOUT`] (a firewall, a wrong address, a stopped host).
    Timeout,
    /// Anything else (TLS, protocol, too many connections), as the driver says it.
    Other(String),
}

impl Cause {
    fn of(error: &sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Self::Refused,
                std::io::ErrorKind::TimedOut => Self::Timeout,
                // getaddrinfo's failures carry no kind of their own.
                _ if io.to_string().contains("lookup address") || io.to_string().contains("Name or service not known") => Self::UnknownHost,
                _ => Self::Other(io.to_string()),
            },
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some("28P01" | "28000") => Self::AuthenticationFailed(db.message().to_string()),
                Some("3D000") => Self::UnknownDatabase,
                _ => Self::Other(db.message().to_string()),
            },
            sqlx::Error::PoolTimedOut => Self::Timeout,
            other => Self::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused => f.write_str("connection refused: is PostgreSQL running and listening on that host and port?"),
            Self::UnknownHost => f.write_str("unknown host: the host name does not resolve"),
            Self::AuthenticationFailed(detail) => write!(f, "authentication failed: check the user and password ({detail})"),
            Self::UnknownDatabase => f.write_str("database does not exist: create it (createdb) or fix the name"),
            Self::Timeout => write!(f, "timeout: no answer within {} s (firewall, wrong address or host down?)", PROBE_TIMEOUT.as_secs()),
            Self::Other(detail) => f.write_str(detail),
        }
    }
}

/// A database that could not be reached, naming where and why (never the password).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("DATABASE_URL is not a valid postgres:// URL: {0}")]
    BadUrl(String),
    /// The server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL at host {host} port {port}, database {database}, user {user}: {cause}", host = .target.host, port = .target.port, database = .target.database, user = .target.user)]
    Unreachable {
        /// Where.
        target: Target,
        /// Why.
        cause: Cause,
    },
}

/// Parses a `postgres://` URL (the password stays inside the options).
///
/// Errors: [`ConnectError::BadUrl`], whose text never repeats the URL.
pub fn options(database_url: &str) -> Result<PgConnectOptions, ConnectError> {
    PgConnectOptions::from_str(database_url).map_err(|e| ConnectError::BadUrl(e.to_string().replace(database_url, "<url>")))
}

/// Opens a pool of at most `max_connections` to `database_url` (a `postgres://` URL). One
/// connection is tried first with a [`PROBE_TIMEOUT`] so a wrong URL fails fast and says why.
///
/// Errors: [`ConnectError`]: a malformed URL, or the host, port, database and user with the
/// cause (refused, unknown host, authentication failed, no such database, timeout).
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, ConnectError> {
    let options = options(database_url)?;
    let target = Target::of(&options);
    let unreachable = |cause| ConnectError::Unreachable { target: target.clone(), cause };
    let probe = tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await;
    match probe {
        Err(_) => return Err(unreachable(Cause::Timeout)),
        Ok(Err(e)) => return Err(unreachable(Cause::of(&e))),
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
        }
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // No ping before each use: it is a round trip per query. A connection that broke is
        // found by the query that uses it (an error, and the pool drops it) instead.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| unreachable(Cause::of(&e)))
}

/// Applies pending migrations; safe to run from several processes at once (sqlx takes an
/// advisory lock).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Whether every embedded migration has been applied (for `/readyz`).
pub async fn migrations_applied(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM _sqlx_migrations WHERE success",
    )
    .fetch_one(pool)
    .await?;
    Ok(applied as usize >= MIGRATOR.iter().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_errors_never_show_the_password() {
        let parsed = options("postgres://ada:hunter2-secret@db.internal:6432/roster").unwrap();
        let target = Target::of(&parsed);
        assert_eq!(target.to_string(), "postgres://ada@db.internal:6432/roster");
        let error = ConnectError::Unreachable { target, cause: Cause::Refused };
        let text = error.to_string();
        assert!(text.contains("host db.internal port 6432, database roster, user ada: connection refused"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let bad = options("postgres://ada:hunter2-secret@db.internal:notaport/roster").unwrap_err().to_string();
        assert!(bad.contains("DATABASE_URL") && !bad.contains("hunter2"), "{bad}");
    }
}
