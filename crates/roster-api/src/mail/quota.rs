//! The per-account daily cap on invitation emails (issue 12, abuse limits; table `mail_sends`,
//! migration `20261201000030_mail_quota.sql`).
//!
//! Inviting is never refused for it: the admin is shown the link either way. The mailer
//! counts, before each hand-over, the sends of the invitation's account in the last 24 hours
//! (rolling, not a calendar day); at [`MailSettings::daily_cap_per_account`](super::MailSettings)
//! it sends nothing and records `InvitationEmailFailed` with `gave_up` and [`cap_reply`], so
//! the invitation's `delivery` reads `FAILED` with the reason. A resend after the window
//! frees a place is emailed again.
//!
//! The count is in the database, so every replica counts every replica's sends; a
//! per-account advisory lock makes count-and-record atomic, so two replicas sending at once
//! cannot both take the last place. A send counts once, however many attempts it takes, and
//! it counts whether or not it is then delivered (a server that refused it was still asked).

use super::outbox::Due;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

/// The first key of the advisory locks this module takes (the second is the account's hash);
/// the two-key space does not overlap the event store's one-key lock.
const LOCK_CLASS: i32 = 0x6d61_696c; // "mail"

/// The window the cap counts over.
pub fn window() -> Duration {
    Duration::hours(24)
}

/// Takes a place for `due` in its account's cap of `cap` sends per [`window`] ending at
/// `now`: `true` when it may be sent (a place was free, or this send already holds one from
/// an earlier attempt), `false` when the cap is reached.
///
/// Errors: database errors (nothing is recorded; the send's lease runs out and it is tried
/// again).
pub async fn take_place(pool: &PgPool, due: &Due, now: DateTime<Utc>, cap: u32) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(LOCK_CLASS)
        .bind(due.account_id)
        .execute(&mut *tx)
        .await?;
    let held: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM mail_sends WHERE invitation_id = $1 AND send_count = $2)")
        .bind(due.invitation_id)
        .bind(due.send_count)
        .fetch_one(&mut *tx)
        .await?;
    if held {
        return Ok(true);
    }
    let since = now - window();
    sqlx::query("DELETE FROM mail_sends WHERE account_id = $1 AND counted_at <= $2").bind(due.account_id).bind(since).execute(&mut *tx).await?;
    let used: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_sends WHERE account_id = $1").bind(due.account_id).fetch_one(&mut *tx).await?;
    if used >= i64::from(cap) {
        return Ok(false);
    }
    sqlx::query("INSERT INTO mail_sends (invitation_id, send_count, account_id, counted_at) VALUES ($1, $2, $3, $4)")
        .bind(due.invitation_id)
        .bind(due.send_count)
        .bind(due.account_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// The reply a send refused by the cap records: what happened and what the admin can do.
pub fn cap_reply(cap: u32) -> String {
    format!("daily cap of {cap} invitation emails for this account reached: share the link, or resend tomorrow")
}
