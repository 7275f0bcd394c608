//! The table `mail_outbox` (migration `20261201000013_mail_outbox.sql`): the mailer's view of
//! the log, one row per invitation, and the sender's claims on it.
//!
//! Status columns change only by [`ingest`] from events, in log order, with the checkpoint in
//! the same transaction, so the table is what the events say; the schedule columns
//! (`next_attempt_at`, `claimed_until`) belong to the sender.

use chrono::{DateTime, Utc};
use roster_domain::{AccountEvent, AccountId, InvitationId, UserId};
use roster_store::{reader, EventFilter, StoreError};
use sqlx::{PgConnection, PgPool};

/// Events read per ingest transaction.
const INGEST_BATCH: i64 = 500;

/// Event types that change the outbox; the rest are skipped without decoding.
const TYPES: [&str; 6] = ["MemberInvited", "InvitationResent", "InvitationCancelled", "InvitationAccepted", "InvitationEmailSent", "InvitationEmailFailed"];

/// Reads up to [`INGEST_BATCH`] events after the mailer's checkpoint into the outbox, if this
/// replica holds the checkpoint (another one reading it is skipped, not waited for). Returns
/// whether a full batch was read (call again).
///
/// Errors: database errors; an event that does not decode (the transaction is rolled back).
pub async fn ingest(pool: &PgPool) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let position: Option<i64> = sqlx::query_scalar("SELECT position FROM mail_checkpoint WHERE name = 'invitations' FOR UPDATE SKIP LOCKED")
        .fetch_optional(&mut *tx)
        .await?;
    let Some(after) = position else { return Ok(false) };
    let events = reader::read_after(&mut *tx, after, INGEST_BATCH, EventFilter { account_id: None }).await?;
    let Some(last) = events.last().map(|e| e.position) else { return Ok(false) };
    for event in events.iter().filter(|e| TYPES.contains(&e.event_type.as_str())) {
        let Some(account_id) = event.account_id else { continue };
        apply(&mut tx, account_id, event.decode()?).await?;
    }
    sqlx::query("UPDATE mail_checkpoint SET position = $1 WHERE name = 'invitations'").bind(last).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(events.len() as i64 == INGEST_BATCH)
}

async fn apply(conn: &mut PgConnection, account_id: AccountId, event: AccountEvent) -> Result<(), sqlx::Error> {
    use AccountEvent as E;
    let query = match event {
        E::MemberInvited { invitation_id, email, role, invited_by, token_digest, expires_at, mail_nonce, .. } => sqlx::query(
            "INSERT INTO mail_outbox (invitation_id, account_id, email, role, send_count, sent_by, expires_at, token_digest, nonce, status)
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, CASE WHEN $8::text IS NULL THEN 'NOT_SENT' ELSE 'QUEUED' END)
             ON CONFLICT (invitation_id) DO NOTHING",
        )
        .bind(invitation_id)
        .bind(account_id)
        .bind(email.as_str().to_string())
        .bind(role.as_str())
        .bind(invited_by)
        .bind(expires_at)
        .bind(token_digest.as_str().to_string())
        .bind(mail_nonce.map(String::from)),
        E::InvitationResent { invitation_id, resent_by, token_digest, expires_at, send_count, mail_nonce, .. } => sqlx::query(
            "UPDATE mail_outbox SET send_count = $2, sent_by = $3, expires_at = $4, token_digest = $5, nonce = $6,
                    status = CASE WHEN $6::text IS NULL THEN 'NOT_SENT' ELSE 'QUEUED' END, attempts = 0,
                    last_error = NULL, sent_at = NULL, message_id = NULL, next_attempt_at = NULL, claimed_until = NULL
              WHERE invitation_id = $1",
        )
        .bind(invitation_id)
        .bind(send_count as i32)
        .bind(resent_by)
        .bind(expires_at)
        .bind(token_digest.as_str().to_string())
        .bind(mail_nonce.map(String::from)),
        // An invitation cancelled or accepted before its email left owes none any more.
        E::InvitationCancelled { invitation_id, .. } | E::InvitationAccepted { invitation_id, .. } => {
            sqlx::query("UPDATE mail_outbox SET status = 'NOT_SENT', nonce = NULL WHERE invitation_id = $1 AND status = 'QUEUED'").bind(invitation_id)
        }
        E::InvitationEmailSent { invitation_id, send_count, message_id, sent_at } => sqlx::query(
            "UPDATE mail_outbox SET status = 'SENT', sent_at = $3, message_id = $4, nonce = NULL, attempts = attempts + 1, claimed_until = NULL
              WHERE invitation_id = $1 AND send_count = $2",
        )
        .bind(invitation_id)
        .bind(send_count as i32)
        .bind(sent_at)
        .bind(message_id),
        E::InvitationEmailFailed { invitation_id, send_count, attempt, reply, gave_up, .. } => sqlx::query(
            "UPDATE mail_outbox SET attempts = $3, last_error = $4,
                    status = CASE WHEN $5 THEN 'FAILED' ELSE status END, nonce = CASE WHEN $5 THEN NULL ELSE nonce END
              WHERE invitation_id = $1 AND send_count = $2",
        )
        .bind(invitation_id)
        .bind(send_count as i32)
        .bind(attempt as i32)
        .bind(reply)
        .bind(gave_up),
        _ => return Ok(()),
    };
    query.execute(conn).await?;
    Ok(())
}

/// A send the sender has claimed, with the names its email shows.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    /// The invitation.
    pub invitation_id: InvitationId,
    /// Its account.
    pub account_id: AccountId,
    /// The invitee.
    pub email: String,
    /// The role granted, as stored (`SECURITY_ENGINEER`).
    pub role: String,
    /// Which send.
    pub send_count: i32,
    /// Who sent it.
    pub sent_by: UserId,
    /// When its link stops working.
    pub expires_at: DateTime<Utc>,
    /// The digest the link's token must have.
    pub token_digest: String,
    /// The send's nonce (hex).
    pub nonce: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The account's name (read model), if known yet.
    pub account_name: Option<String>,
    /// The sender's display name (read model), if known yet.
    pub inviter_name: Option<String>,
}

/// Claims up to `limit` due sends until `lease_until`: queued, owed, their retry time reached,
/// and no other claim alive (rows locked by another replica's claim are skipped).
///
/// Errors: database errors.
pub async fn claim(pool: &PgPool, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query_as(
        "WITH due AS (SELECT invitation_id FROM mail_outbox
                       WHERE status = 'QUEUED' AND nonce IS NOT NULL
                         AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
                         AND (claimed_until IS NULL OR claimed_until < $1)
                       ORDER BY next_attempt_at NULLS FIRST LIMIT $3 FOR UPDATE SKIP LOCKED),
              claimed AS (UPDATE mail_outbox o SET claimed_until = $2 FROM due WHERE o.invitation_id = due.invitation_id RETURNING o.*)
         SELECT c.invitation_id, c.account_id, c.email, c.role, c.send_count, c.sent_by, c.expires_at, c.token_digest, c.nonce,
                c.attempts, a.name AS account_name, u.display_name AS inviter_name
           FROM claimed c LEFT JOIN accounts a ON a.id = c.account_id LEFT JOIN users u ON u.id = c.sent_by",
    )
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Releases `due`'s claim with its next attempt at `at` (unless a newer send replaced it).
///
/// Errors: database errors.
pub async fn retry_at(pool: &PgPool, due: &Due, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mail_outbox SET claimed_until = NULL, next_attempt_at = $3 WHERE invitation_id = $1 AND send_count = $2")
        .bind(due.invitation_id)
        .bind(due.send_count)
        .bind(at)
        .execute(pool)
        .await?;
    Ok(())
}

/// Marks `due` as not sent: its link expired before it could be delivered.
///
/// Errors: database errors.
pub async fn not_sent(pool: &PgPool, due: &Due) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mail_outbox SET status = 'NOT_SENT', nonce = NULL, claimed_until = NULL WHERE invitation_id = $1 AND send_count = $2 AND status = 'QUEUED'")
        .bind(due.invitation_id)
        .bind(due.send_count)
        .execute(pool)
        .await?;
    Ok(())
}

/// The delivery of an invitation's current send, as `Invitation.delivery` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    /// The invitation.
    pub invitation_id: InvitationId,
    /// `QUEUED`, `SENT`, `FAILED` or `NOT_SENT`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The last failure's reply.
    pub last_error: Option<String>,
    /// When the server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

/// The deliveries of `ids` (those the mailer has read; the others are not in the answer).
///
/// Errors: database errors.
pub async fn deliveries(pool: &PgPool, ids: &[InvitationId]) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.uuid()).collect();
    sqlx::query_as("SELECT invitation_id, status, attempts, last_error, sent_at FROM mail_outbox WHERE invitation_id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}
