//! Projection `invitations`: every invitation with its state, sends and outcome. `EXPIRED` is
//! not stored: it depends on the clock and is derived from `expires_at` when read.

use crate::ProjectionError;
use roster_domain::AccountEvent;
use roster_store::StoredEvent;
use sqlx::PgConnection;

pub(crate) async fn apply(conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ProjectionError> {
    let Some(account_id) = event.account_id else { return Ok(()) };
    let query = match event.decode()? {
        AccountEvent::MemberInvited { invitation_id, email, role, invited_by, token_digest, sent_at, expires_at } => {
            sqlx::query(
                "INSERT INTO invitations (id, account_id, email, role, state, invited_by, created_at,
                                          expires_at, last_sent_at, send_count, token_digest)
                 VALUES ($1, $2, $3, $4, 'PENDING', $5, $6, $7, $6, 1, $8)",
            )
            .bind(invitation_id)
            .bind(account_id)
            .bind(email.as_str().to_string())
            .bind(role)
            .bind(invited_by)
            .bind(sent_at)
            .bind(expires_at)
            .bind(token_digest.as_str().to_string())
        }
        AccountEvent::InvitationResent { invitation_id, token_digest, sent_at, expires_at, send_count, .. } => sqlx::query(
            "UPDATE invitations SET last_sent_at = $2, expires_at = $3, send_count = $4, token_digest = $5 WHERE id = $1",
        )
        .bind(invitation_id)
        .bind(sent_at)
        .bind(expires_at)
        .bind(send_count as i32)
        .bind(token_digest.as_str().to_string()),
        AccountEvent::InvitationCancelled { invitation_id, cancelled_by, reason, cancelled_at } => sqlx::query(
            "UPDATE invitations SET state = 'CANCELLED', cancelled_by = $2, cancelled_at = $3, cancel_reason = $4
             WHERE id = $1",
        )
        .bind(invitation_id)
        .bind(cancelled_by)
        .bind(cancelled_at)
        .bind(reason),
        AccountEvent::InvitationAccepted { invitation_id, user_id, accepted_at } => sqlx::query(
            "UPDATE invitations SET state = 'ACCEPTED', accepted_by = $2, accepted_at = $3 WHERE id = $1",
        )
        .bind(invitation_id)
        .bind(user_id)
        .bind(accepted_at),
        _ => return Ok(()),
    };
    query.execute(conn).await?;
    Ok(())
}
