//! A user's own emails (issue 12, "Email ownership"): the verification link of a sign-up and
//! password-reset links, through the table `user_mail_outbox` (migration
//! `20261201000016_user_mail_outbox.sql`), delivered by the same mailer loop as invitations.
//!
//! [`ingest`] follows the log from the checkpoint row `users` (its row lock elects one replica,
//! as for invitations); the sender claims due rows with a lease, rebuilds the link from the
//! nonce and the server's token key, and records the outcome in the row. A crash after the
//! server accepted a message but before the row says so sends it again with the same
//! `Message-ID` (`<user id>.<verify|reset>.<request position>@<public host>`).

use super::message::{self, UserLink};
use super::Mailer;
use chrono::{DateTime, Utc};
use roster_domain::{Purpose, ResetReason, SendNonce, UserEvent, UserId, UserToken};
use roster_store::{reader, EventFilter, StoreError};
use sqlx::{PgConnection, PgPool};

/// Events read per ingest transaction.
const INGEST_BATCH: i64 = 500;

/// User event types that change the outbox; the rest are skipped without decoding.
const TYPES: [&str; 4] = ["EmailVerificationRequested", "PasswordResetRequested", "EmailVerified", "PasswordChanged"];

/// Reads up to [`INGEST_BATCH`] events after the checkpoint `users` into the outbox, if this
/// replica holds the checkpoint. Returns whether a full batch was read (call again).
///
/// Errors: database errors; an event that does not decode (the transaction is rolled back).
pub async fn ingest(pool: &PgPool) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let position: Option<i64> = sqlx::query_scalar("SELECT position FROM mail_checkpoint WHERE name = 'users' FOR UPDATE SKIP LOCKED")
        .fetch_optional(&mut *tx)
        .await?;
    let Some(after) = position else { return Ok(false) };
    let events = reader::read_after(&mut *tx, after, INGEST_BATCH, EventFilter { account_id: None }).await?;
    let Some(last) = events.last().map(|e| e.position) else { return Ok(false) };
    for event in events.iter().filter(|e| e.aggregate_type == "User" && TYPES.contains(&e.event_type.as_str())) {
        let user_id: UserId = event.aggregate_id.parse().map_err(|_| StoreError::Decode(format!("user id {}", event.aggregate_id)))?;
        apply(&mut tx, user_id, event.position, event.decode()?).await?;
    }
    sqlx::query("UPDATE mail_checkpoint SET position = $1 WHERE name = 'users'").bind(last).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(events.len() as i64 == INGEST_BATCH)
}

async fn apply(conn: &mut PgConnection, user_id: UserId, position: i64, event: UserEvent) -> Result<(), sqlx::Error> {
    let (purpose, link, reason) = match event {
        UserEvent::EmailVerificationRequested { link, .. } => ("VERIFY", link, ResetReason::default()),
        UserEvent::PasswordResetRequested { link, reason, .. } => ("RESET", link, reason),
        // Used: an email still queued is not owed any more.
        UserEvent::EmailVerified { .. } | UserEvent::PasswordChanged { .. } => {
            let purpose = if matches!(event, UserEvent::EmailVerified { .. }) { "VERIFY" } else { "RESET" };
            sqlx::query("UPDATE user_mail_outbox SET status = 'NOT_SENT', nonce = NULL WHERE user_id = $1 AND purpose = $2 AND status = 'QUEUED'")
                .bind(user_id)
                .bind(purpose)
                .execute(conn)
                .await?;
            return Ok(());
        }
        UserEvent::UserRegistered { .. } => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO user_mail_outbox (user_id, purpose, send_position, expires_at, token_digest, nonce, reason, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'QUEUED')
         ON CONFLICT (user_id, purpose) DO UPDATE SET send_position = $3, expires_at = $4, token_digest = $5, nonce = $6, reason = $7,
                status = 'QUEUED', attempts = 0, last_error = NULL, sent_at = NULL, next_attempt_at = NULL, claimed_until = NULL
          WHERE user_mail_outbox.send_position < $3",
    )
    .bind(user_id)
    .bind(purpose)
    .bind(position)
    .bind(link.expires_at)
    .bind(link.token_digest.as_str())
    .bind(String::from(link.mail_nonce))
    .bind(reason.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// A claimed user email, with the profile it is addressed to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueUserMail {
    /// The user.
    pub user_id: UserId,
    /// `VERIFY` or `RESET`.
    pub purpose: String,
    /// Which request.
    pub send_position: i64,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
    /// The digest the link's token must have.
    pub token_digest: String,
    /// The request's nonce (hex).
    pub nonce: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Why a reset is owed: `REQUESTED` or `SIGN_UP_ATTEMPT` (`REQUESTED` for verification).
    pub reason: String,
    /// The user's email (read model), if known yet.
    pub email: Option<String>,
    /// The user's display name (read model), if known yet.
    pub display_name: Option<String>,
}

/// Claims up to `limit` due rows until `lease_until` (rows another replica holds are skipped).
///
/// Errors: database errors.
pub async fn claim(pool: &PgPool, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: i64) -> Result<Vec<DueUserMail>, sqlx::Error> {
    sqlx::query_as(
        "WITH due AS (SELECT user_id, purpose FROM user_mail_outbox
                       WHERE status = 'QUEUED' AND nonce IS NOT NULL
                         AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
                         AND (claimed_until IS NULL OR claimed_until < $1)
                       ORDER BY next_attempt_at NULLS FIRST LIMIT $3 FOR UPDATE SKIP LOCKED),
              claimed AS (UPDATE user_mail_outbox o SET claimed_until = $2 FROM due
                           WHERE (o.user_id, o.purpose) = (due.user_id, due.purpose) RETURNING o.*)
         SELECT c.user_id, c.purpose, c.send_position, c.expires_at, c.token_digest, c.nonce, c.attempts, c.reason,
                u.email, u.display_name
           FROM claimed c LEFT JOIN users u ON u.id = c.user_id",
    )
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How one attempt ended.
enum Outcome {
    Sent,
    /// Not sent: the reply, and whether no retry follows.
    Failed(String, bool),
    /// Not owed any more (expired), or not ready (profile not projected yet): retry at.
    Later(Option<DateTime<Utc>>),
}

/// Records `outcome` of attempt `attempt` of `due` (unless a newer request replaced it).
async fn record(pool: &PgPool, due: &DueUserMail, attempt: i32, outcome: Outcome, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let query = match outcome {
        Outcome::Sent => sqlx::query("UPDATE user_mail_outbox SET status = 'SENT', sent_at = $4, nonce = NULL, attempts = $3, claimed_until = NULL
                                        WHERE user_id = $1 AND send_position = $2 AND status = 'QUEUED'")
            .bind(due.user_id)
            .bind(due.send_position)
            .bind(attempt)
            .bind(now),
        Outcome::Failed(reply, gave_up) => sqlx::query(
            "UPDATE user_mail_outbox SET attempts = $3, last_error = $4, claimed_until = NULL, next_attempt_at = $6,
                    status = CASE WHEN $5 THEN 'FAILED' ELSE status END, nonce = CASE WHEN $5 THEN NULL ELSE nonce END
              WHERE user_id = $1 AND send_position = $2 AND status = 'QUEUED'",
        )
        .bind(due.user_id)
        .bind(due.send_position)
        .bind(attempt)
        .bind(reply)
        .bind(gave_up)
        .bind(None::<DateTime<Utc>>),
        Outcome::Later(Some(at)) => sqlx::query("UPDATE user_mail_outbox SET claimed_until = NULL, next_attempt_at = $3 WHERE user_id = $1 AND send_position = $2")
            .bind(due.user_id)
            .bind(due.send_position)
            .bind(at),
        Outcome::Later(None) => sqlx::query("UPDATE user_mail_outbox SET status = 'NOT_SENT', nonce = NULL, claimed_until = NULL WHERE user_id = $1 AND send_position = $2 AND status = 'QUEUED'")
            .bind(due.user_id)
            .bind(due.send_position),
    };
    query.execute(pool).await?;
    Ok(())
}

impl Mailer {
    /// Ingests the user events and sends each due user email.
    pub(super) async fn user_round(&self) -> Result<(), StoreError> {
        let pool = self.app.pool();
        while ingest(pool).await? {}
        let now = self.app.now();
        for due in claim(pool, now, now + self.app.config().mail.lease, 16).await? {
            self.deliver_user_mail(due).await;
        }
        Ok(())
    }

    async fn deliver_user_mail(&self, due: DueUserMail) {
        let settings = &self.app.config().mail;
        let now = self.app.now();
        let attempt = due.attempts + 1;
        let outcome = if due.expires_at <= now {
            Outcome::Later(None)
        } else if due.email.is_none() {
            // The users read model has not caught up with the registration yet.
            Outcome::Later(Some(now + chrono::Duration::seconds(1)))
        } else {
            match self.user_message(&due) {
                Err(reply) => Outcome::Failed(reply, true),
                Ok(message) => match self.transport.send(message).await {
                    Ok(went) => {
                        tracing::info!(user = %due.user_id, purpose = %due.purpose, handed_to = %went, "user email sent");
                        Outcome::Sent
                    }
                    Err(failure) => {
                        let gave_up = failure.permanent || u32::try_from(attempt).unwrap_or(u32::MAX) >= settings.max_attempts;
                        tracing::warn!(user = %due.user_id, purpose = %due.purpose, attempt, gave_up, reply = %failure.reply, "user email failed");
                        Outcome::Failed(failure.reply, gave_up)
                    }
                },
            }
        };
        let retry = match &outcome {
            Outcome::Failed(_, false) => Some(now + chrono::Duration::from_std(settings.backoff(attempt as u32, super::jitter())).unwrap_or_default()),
            _ => None,
        };
        if let Err(err) = record(self.app.pool(), &due, attempt, outcome, now).await {
            tracing::warn!(%err, user = %due.user_id, "mailer: recording a user email's outcome failed");
            return;
        }
        if let Some(at) = retry {
            if let Err(err) = record(self.app.pool(), &due, attempt, Outcome::Later(Some(at)), now).await {
                tracing::warn!(%err, "mailer: scheduling a retry");
            }
        }
    }

    /// The message of `due`, its link rebuilt from the nonce.
    fn user_message(&self, due: &DueUserMail) -> Result<lettre::Message, String> {
        let (purpose, kind, link_of): (_, _, fn(&crate::config::Config, &str) -> String) = match due.purpose.as_str() {
            "VERIFY" => (Purpose::Verify, "verify", crate::config::Config::verify_link),
            _ => (Purpose::Reset, "reset", crate::config::Config::reset_link),
        };
        let nonce: SendNonce = due.nonce.clone().try_into()?;
        let token = UserToken::derive(&self.app.config().token_key(), purpose, due.user_id, &nonce);
        if token.digest().as_str() != due.token_digest {
            return Err("the server's token key changed since this email was requested (ROSTER_JWT_SECRET): ask again".into());
        }
        let context = UserLink {
            to: due.email.clone().unwrap_or_default(),
            display_name: due.display_name.clone().unwrap_or_default(),
            link: link_of(self.app.config(), &token.encode()),
            expires_at: message::Invitation::expiry_words(due.expires_at),
            reason: due.reason.clone(),
        };
        let message_id = format!("{}.{kind}.{}@{}", due.user_id, due.send_position, self.host);
        self.templates.user_message(kind, &self.from, &message_id, &context)
    }
}
