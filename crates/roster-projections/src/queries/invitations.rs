//! Reads of the invitations read model: one invitation, and an account's pages of them.

use super::*;

type InvitationTuple = (
    InvitationId,
    AccountId,
    String,
    Role,
    InvitationState,
    UserId,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
    i32,
    Option<UserId>,
    Option<DateTime<Utc>>,
    Option<String>,
    String,
);

const INVITATION_COLUMNS: &str = "id, account_id, email, role, state, invited_by, created_at, expires_at,
    last_sent_at, send_count, cancelled_by, cancelled_at, cancel_reason, token_digest";

fn invitation_row(t: InvitationTuple) -> InvitationRow {
    InvitationRow {
        id: t.0,
        account_id: t.1,
        email: t.2,
        role: t.3,
        state: t.4,
        invited_by: t.5,
        created_at: t.6,
        expires_at: t.7,
        last_sent_at: t.8,
        send_count: t.9,
        cancelled_by: t.10,
        cancelled_at: t.11,
        cancel_reason: t.12,
        token_digest: TokenDigest::from_stored(t.13),
    }
}

/// The invitation `id`, if it exists.
pub async fn invitation(pool: &PgPool, id: InvitationId) -> Result<Option<InvitationRow>, sqlx::Error> {
    let row: Option<InvitationTuple> =
        sqlx::query_as(&format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(invitation_row))
}

/// A page of `account_id`'s invitations, newest first (then by id), with the status at `now`
/// equal to `status` when given, from `offset`, at most `limit` rows; plus the filtered total.
///
/// Errors: what the database reports.
pub async fn invitations(
    pool: &PgPool,
    account_id: AccountId,
    status: Option<InvitationStatus>,
    now: DateTime<Utc>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<InvitationRow>, i64), sqlx::Error> {
    invitations_in(pool, account_id, status, now, Window::Offset(offset), limit).await
}

/// As [`invitations`], but the page is `window` (by offset or after an [`InvitationKey`]).
/// The page walks the `(account_id[, state], created_at DESC, id)` index; the total comes
/// from `invitation_counts`, except that `PENDING` and `EXPIRED` count the expired pending
/// invitations (by the partial index on `expires_at`), as expiry depends on `now`. Page and
/// total are one statement.
///
/// Errors: what the database reports.
pub async fn invitations_in(
    pool: &PgPool,
    account_id: AccountId,
    status: Option<InvitationStatus>,
    now: DateTime<Utc>,
    page: Window<InvitationKey>,
    limit: i64,
) -> Result<(Vec<InvitationRow>, i64), sqlx::Error> {
    const STORED: &str = "SELECT coalesce(sum(n), 0)::int8 FROM invitation_counts WHERE account_id = $1";
    const EXPIRED: &str = "SELECT count(*) FROM invitations WHERE account_id = $1 AND state = 'PENDING' AND expires_at <= $2";
    let mut args = PgArguments::default();
    bind(&mut args, account_id)?;
    // EXPIRED is PENDING past expires_at; PENDING excludes those.
    let (filter, total) = match status.map(InvitationStatus::as_str) {
        None => (String::new(), STORED.to_string()),
        Some("EXPIRED") => {
            bind(&mut args, now)?;
            (" AND state = 'PENDING' AND expires_at <= $2".to_string(), EXPIRED.to_string())
        }
        Some("PENDING") => {
            bind(&mut args, now)?;
            (" AND state = 'PENDING' AND expires_at > $2".to_string(), format!("SELECT ({STORED} AND state = 'PENDING') - ({EXPIRED})"))
        }
        Some(state) => {
            bind(&mut args, state)?;
            (" AND state = $2".to_string(), format!("{STORED} AND state = $2"))
        }
    };
    let (after, slice) = window(&mut args, page, limit, |a, b| format!(" AND (created_at < ${a} OR (created_at = ${a} AND id > ${b}))"))?;
    let select = format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE account_id = $1{filter}{after} ORDER BY created_at DESC, id {slice}");
    let (rows, total) = page_and_total::<InvitationTuple>(pool, "", &total, &select, "p.created_at DESC, p.id", args, true).await?;
    Ok((rows.into_iter().map(invitation_row).collect(), total))
}
