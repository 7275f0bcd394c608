//! Projection `audit_log`: one entry per account event, with actor, action, target, details and
//! request id taken from the event and its metadata. Targets are people's emails; events that
//! name only an id find the email in this projection's own earlier entries, so the projection
//! depends on no other read model (and rebuilds alone).
//!
//! A batch is one multi-row `INSERT`. Target look-ups see the batch's earlier entries through
//! an in-memory [`Memo`]; what it does not know is looked up in the table with one query per
//! kind of look-up, as of before the batch (exactly the entries an event-by-event projector
//! would have found there).

use crate::Stop;
use chrono::{DateTime, Utc};
use roster_domain::{AccountEvent, AccountId, InvitationId, UserId};
use roster_store::reader::RawEvent;
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::collections::HashMap;

/// The emails earlier entries recorded: the latest `member.joined` per member, the
/// `member.invited` per invitation.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    members: HashMap<(AccountId, UserId), String>,
    invitations: HashMap<(AccountId, InvitationId), String>,
    /// Whether the memo holds every entry of the table (a rebuild that started from an empty
    /// table): then a miss means "none", without asking the database.
    pub complete: bool,
    /// How many entries [`copy_rows`] wrote per `(account, action)`, for the rebuild's
    /// `audit_counts` (see [`Memo::take_counts`]).
    copied: HashMap<(uuid::Uuid, &'static str), i64>,
}

enum Target {
    Known(Option<String>),
    Member(AccountId, UserId),
    Invitation(AccountId, InvitationId),
}

struct Entry {
    position: i64,
    account_id: AccountId,
    occurred_at: DateTime<Utc>,
    action: &'static str,
    actor_id: Option<UserId>,
    target: Target,
    details: Value,
    request_id: Option<String>,
}

impl Memo {
    /// A memo for a table that starts empty: every entry it will hold passes through it.
    pub(crate) fn complete() -> Self {
        Self { complete: true, ..Self::default() }
    }

    /// The `audit_counts` load of the entries [`copy_rows`] wrote so far (then forgotten).
    pub(crate) fn take_counts(&mut self) -> crate::copy::Load {
        crate::copy::Load::from_counts("audit_counts", "account_id, action, n", std::mem::take(&mut self.copied))
    }

    fn member(&self, account_id: AccountId, user_id: UserId) -> Target {
        match self.members.get(&(account_id, user_id)) {
            Some(email) => Target::Known(Some(email.clone())),
            None if self.complete => Target::Known(None),
            None => Target::Member(account_id, user_id),
        }
    }

    fn invitation(&self, account_id: AccountId, invitation_id: InvitationId) -> Target {
        match self.invitations.get(&(account_id, invitation_id)) {
            Some(email) => Target::Known(Some(email.clone())),
            None if self.complete => Target::Known(None),
            None => Target::Invitation(account_id, invitation_id),
        }
    }

    fn entry(&mut self, event: &RawEvent) -> Result<Option<Entry>, String> {
        let Some(account_id) = event.account_id else { return Ok(None) };
        let (action, target, details): (&str, Target, Value) = match event.decode().map_err(crate::decode_error)? {
            AccountEvent::AccountCreated { name, .. } => ("account.created", Target::Known(Some(name)), json!({})),
            AccountEvent::MemberJoined { user_id, email, role, invitation_id, .. } => {
                self.members.insert((account_id, user_id), email.to_string());
                (
                    "member.joined",
                    Target::Known(Some(email.to_string())),
                    json!({ "userId": user_id, "role": role, "invitationId": invitation_id }),
                )
            }
            AccountEvent::MemberInvited { invitation_id, email, role, expires_at, .. } => {
                // The first entry wins, as the look-up by id finds it.
                self.invitations.entry((account_id, invitation_id)).or_insert_with(|| email.to_string());
                (
                    "member.invited",
                    Target::Known(Some(email.to_string())),
                    json!({ "invitationId": invitation_id, "role": role, "expiresAt": expires_at }),
                )
            }
            AccountEvent::InvitationResent { invitation_id, expires_at, send_count, .. } => (
                "invitation.resent",
                self.invitation(account_id, invitation_id),
                json!({ "invitationId": invitation_id, "expiresAt": expires_at, "sendCount": send_count }),
            ),
            AccountEvent::InvitationCancelled { invitation_id, reason, .. } => (
                "invitation.cancelled",
                self.invitation(account_id, invitation_id),
                json!({ "invitationId": invitation_id, "reason": reason }),
            ),
            AccountEvent::InvitationAccepted { invitation_id, user_id, .. } => (
                "invitation.accepted",
                self.invitation(account_id, invitation_id),
                json!({ "invitationId": invitation_id, "userId": user_id }),
            ),
            AccountEvent::MemberRoleChanged { user_id, from, to, .. } => (
                "member.role_changed",
                self.member(account_id, user_id),
                json!({ "userId": user_id, "from": from, "to": to }),
            ),
            AccountEvent::MemberRemoved { user_id, .. } => {
                ("member.removed", self.member(account_id, user_id), json!({ "userId": user_id }))
            }
            AccountEvent::InvitationEmailSent { invitation_id, send_count, message_id, .. } => (
                "invitation.email_sent",
                self.invitation(account_id, invitation_id),
                json!({ "invitationId": invitation_id, "sendCount": send_count, "messageId": message_id }),
            ),
            AccountEvent::InvitationEmailFailed { invitation_id, send_count, attempt, reply, gave_up, .. } => (
                "invitation.email_failed",
                self.invitation(account_id, invitation_id),
                json!({ "invitationId": invitation_id, "sendCount": send_count, "attempt": attempt, "reply": reply, "gaveUp": gave_up }),
            ),
        };
        let meta = event.meta();
        Ok(Some(Entry {
            position: event.position,
            account_id,
            occurred_at: meta.occurred_at,
            action,
            actor_id: meta.actor_id,
            target,
            details,
            request_id: meta.request_id,
        }))
    }
}

/// Resolves the targets the memo did not know from the table, as it was before the batch.
async fn look_up(conn: &mut PgConnection, entries: &mut [Entry]) -> Result<(), sqlx::Error> {
    let (mut members, mut invitations) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for entry in entries.iter() {
        match entry.target {
            Target::Member(a, u) => (members.0.push(a), members.1.push(u.to_string())),
            Target::Invitation(a, i) => (invitations.0.push(a), invitations.1.push(i.to_string())),
            Target::Known(_) => ((), ()),
        };
    }
    let mut found: HashMap<(AccountId, String, bool), Option<String>> = HashMap::new();
    if !members.0.is_empty() {
        let rows: Vec<(AccountId, String, Option<String>)> = sqlx::query_as(
            "SELECT DISTINCT ON (k.account_id, k.user_id) k.account_id, k.user_id, a.target
               FROM UNNEST($1::uuid[], $2::text[]) AS k(account_id, user_id)
               JOIN audit_log a ON a.account_id = k.account_id AND a.action = 'member.joined' AND a.details->>'userId' = k.user_id
              ORDER BY k.account_id, k.user_id, a.position DESC",
        )
        .bind(members.0)
        .bind(members.1)
        .fetch_all(&mut *conn)
        .await?;
        found.extend(rows.into_iter().map(|(a, u, t)| ((a, u, true), t)));
    }
    if !invitations.0.is_empty() {
        let rows: Vec<(AccountId, String, Option<String>)> = sqlx::query_as(
            "SELECT DISTINCT ON (k.account_id, k.invitation_id) k.account_id, k.invitation_id, a.target
               FROM UNNEST($1::uuid[], $2::text[]) AS k(account_id, invitation_id)
               JOIN audit_log a ON a.account_id = k.account_id AND a.action = 'member.invited'
                               AND a.details->>'invitationId' = k.invitation_id
              ORDER BY k.account_id, k.invitation_id, a.position",
        )
        .bind(invitations.0)
        .bind(invitations.1)
        .fetch_all(&mut *conn)
        .await?;
        found.extend(rows.into_iter().map(|(a, i, t)| ((a, i, false), t)));
    }
    for entry in entries.iter_mut() {
        let key = match entry.target {
            Target::Member(a, u) => (a, u.to_string(), true),
            Target::Invitation(a, i) => (a, i.to_string(), false),
            Target::Known(_) => continue,
        };
        entry.target = Target::Known(found.get(&key).cloned().flatten());
    }
    Ok(())
}

/// Applies `events` (in position order) with one `INSERT` (and the look-ups the memo cannot
/// answer); stops at the first event that cannot be applied and reports it, after writing the
/// events before it.
pub(crate) async fn apply(conn: &mut PgConnection, events: &[RawEvent], memo: &mut Memo) -> Result<Option<Stop>, sqlx::Error> {
    let mut entries = Vec::with_capacity(events.len());
    let mut stop = None;
    for event in events {
        match memo.entry(event) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(error) => {
                stop = Some(Stop { position: event.position, error });
                break;
            }
        }
    }
    if entries.is_empty() {
        return Ok(stop);
    }
    if !memo.complete {
        look_up(conn, &mut entries).await?;
    }
    let n = entries.len();
    let (mut pos, mut acc, mut at, mut action) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut actor, mut target, mut details, mut request) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for e in entries {
        pos.push(e.position); acc.push(e.account_id); at.push(e.occurred_at); action.push(e.action);
        let Target::Known(t) = e.target else { unreachable!("targets resolved above") };
        actor.push(e.actor_id); target.push(t); details.push(e.details.to_string()); request.push(e.request_id);
    }
    // The entries and their counters (`audit_counts`) in one statement.
    sqlx::query(&crate::counted(
        "ins AS (INSERT INTO audit_log (position, account_id, occurred_at, action, actor_id, target, details, request_id)
                 SELECT p, a, o, ac, au, t, d::jsonb, r
                   FROM UNNEST($1::int8[], $2::uuid[], $3::timestamptz[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[])
                        AS u(p, a, o, ac, au, t, d, r)
                 RETURNING account_id, action),
         changes(account_id, k, d) AS (SELECT account_id, action, 1 FROM ins)",
        "audit_counts",
        "action",
    ))
    .bind(pos).bind(acc).bind(at).bind(action).bind(actor).bind(target).bind(details).bind(request)
    .execute(conn)
    .await?;
    Ok(stop)
}

/// The columns [`copy_rows`] writes, in order.
pub(crate) const COPY_COLUMNS: &str = "position, account_id, occurred_at, action, actor_id, target, details, request_id";

/// Appends the entries of `events` (in position order) to `out` as binary `COPY` tuples of
/// [`COPY_COLUMNS`], for a rebuild: its memo is complete, so no look-up is needed. Returns the
/// first event it cannot apply; the entries before it are appended.
pub(crate) fn copy_rows(memo: &mut Memo, events: &[RawEvent], out: &mut crate::copy::Rows) -> Option<Stop> {
    debug_assert!(memo.complete, "only a complete memo answers every look-up");
    for event in events {
        let entry = match memo.entry(event) {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            Err(error) => return Some(Stop { position: event.position, error }),
        };
        let Target::Known(target) = entry.target else { unreachable!("a complete memo resolves every target") };
        *memo.copied.entry((entry.account_id.uuid(), entry.action)).or_default() += 1;
        out.tuple(8)
            .int8(entry.position)
            .uuid(entry.account_id.uuid())
            .timestamptz(entry.occurred_at)
            .text(entry.action)
            .opt_uuid(entry.actor_id.map(UserId::uuid))
            .opt_text(target.as_deref())
            .jsonb(&entry.details)
            .opt_text(entry.request_id.as_deref());
    }
    None
}
