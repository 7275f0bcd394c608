//! Projection `audit_log`: one entry per account event, with actor, action, target, details and
//! request id taken from the event and its metadata. Targets are people's emails; events that
//! name only an id find the email in this projection's own earlier entries, so the projection
//! depends on no other read model (and rebuilds alone).

use crate::ProjectionError;
use roster_domain::{AccountEvent, AccountId, InvitationId, UserId};
use roster_store::StoredEvent;
use serde_json::{json, Value};
use sqlx::PgConnection;

async fn email_of_member(conn: &mut PgConnection, account_id: AccountId, user_id: UserId) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT target FROM audit_log
          WHERE account_id = $1 AND action = 'member.joined' AND details->>'userId' = $2
          ORDER BY position DESC LIMIT 1",
    )
    .bind(account_id)
    .bind(user_id.to_string())
    .fetch_optional(conn)
    .await
}

async fn email_of_invitation(conn: &mut PgConnection, account_id: AccountId, invitation_id: InvitationId) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT target FROM audit_log
          WHERE account_id = $1 AND action = 'member.invited' AND details->>'invitationId' = $2",
    )
    .bind(account_id)
    .bind(invitation_id.to_string())
    .fetch_optional(conn)
    .await
}

pub(crate) async fn apply(conn: &mut PgConnection, event: &StoredEvent) -> Result<(), ProjectionError> {
    let Some(account_id) = event.account_id else { return Ok(()) };
    let (action, target, details): (&str, Option<String>, Value) = match event.decode()? {
        AccountEvent::AccountCreated { name, .. } => ("account.created", Some(name), json!({})),
        AccountEvent::MemberJoined { user_id, email, role, invitation_id, .. } => (
            "member.joined",
            Some(email.to_string()),
            json!({ "userId": user_id, "role": role, "invitationId": invitation_id }),
        ),
        AccountEvent::MemberInvited { invitation_id, email, role, expires_at, .. } => (
            "member.invited",
            Some(email.to_string()),
            json!({ "invitationId": invitation_id, "role": role, "expiresAt": expires_at }),
        ),
        AccountEvent::InvitationResent { invitation_id, expires_at, send_count, .. } => (
            "invitation.resent",
            email_of_invitation(conn, account_id, invitation_id).await?,
            json!({ "invitationId": invitation_id, "expiresAt": expires_at, "sendCount": send_count }),
        ),
        AccountEvent::InvitationCancelled { invitation_id, reason, .. } => (
            "invitation.cancelled",
            email_of_invitation(conn, account_id, invitation_id).await?,
            json!({ "invitationId": invitation_id, "reason": reason }),
        ),
        AccountEvent::InvitationAccepted { invitation_id, user_id, .. } => (
            "invitation.accepted",
            email_of_invitation(conn, account_id, invitation_id).await?,
            json!({ "invitationId": invitation_id, "userId": user_id }),
        ),
        AccountEvent::MemberRoleChanged { user_id, from, to, .. } => (
            "member.role_changed",
            email_of_member(conn, account_id, user_id).await?,
            json!({ "userId": user_id, "from": from, "to": to }),
        ),
        AccountEvent::MemberRemoved { user_id, .. } => (
            "member.removed",
            email_of_member(conn, account_id, user_id).await?,
            json!({ "userId": user_id }),
        ),
    };
    sqlx::query(
        "INSERT INTO audit_log (position, account_id, occurred_at, action, actor_id, target, details, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event.position)
    .bind(account_id)
    .bind(event.occurred_at())
    .bind(action)
    .bind(event.actor_id())
    .bind(target)
    .bind(details)
    .bind(event.request_id())
    .execute(conn)
    .await?;
    Ok(())
}
