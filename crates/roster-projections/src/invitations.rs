//! Projection `invitations`: every invitation with its state, sends and outcome. `EXPIRED` is
//! not stored: it depends on the clock and is derived from `expires_at` when read.
//!
//! A batch is folded per invitation: events after the batch's own `MemberInvited` change the
//! row in memory before its one `INSERT`; events on an invitation inserted before the batch
//! become one `UPDATE` whose columns are those the events set, last one winning (the `UPDATE`
//! runs before the `INSERT`s, as those events came before any `MemberInvited` of the batch).

use crate::copy::{Load, Rows};
use crate::{counted, Stop};
use chrono::{DateTime, Utc};
use roster_domain::{AccountEvent, AccountId, InvitationId, UserId};
use roster_store::reader::RawEvent;
use sqlx::PgConnection;
use std::collections::HashMap;

struct Row {
    account_id: AccountId,
    email: String,
    role: String,
    state: &'static str,
    invited_by: UserId,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_sent_at: DateTime<Utc>,
    send_count: i32,
    cancelled: Option<(UserId, DateTime<Utc>, String)>,
    accepted: Option<(UserId, DateTime<Utc>)>,
    token_digest: String,
}

/// Columns set on a row written before the batch.
#[derive(Default)]
struct Patch {
    resent: Option<(DateTime<Utc>, DateTime<Utc>, i32, String)>,
    state: Option<&'static str>,
    cancelled: Option<(UserId, DateTime<Utc>, String)>,
    accepted: Option<(UserId, DateTime<Utc>)>,
}

#[derive(Default)]
struct Ops {
    patch: Option<Patch>,
    insert: Option<Row>,
}

enum Change {
    Resent(DateTime<Utc>, DateTime<Utc>, i32, String),
    Cancelled(UserId, DateTime<Utc>, String),
    Accepted(UserId, DateTime<Utc>),
}

fn fold(ops: &mut HashMap<InvitationId, Ops>, order: &mut Vec<InvitationId>, event: &RawEvent) -> Result<(), String> {
    let Some(account_id) = event.account_id else { return Ok(()) };
    let (id, change) = match event.decode().map_err(crate::decode_error)? {
        AccountEvent::MemberInvited { invitation_id, email, role, invited_by, token_digest, sent_at, expires_at, .. } => {
            let entry = ops.entry(invitation_id).or_insert_with(|| {
                order.push(invitation_id);
                Ops::default()
            });
            if entry.insert.is_some() {
                return Err(crate::duplicate("invitations_pkey"));
            }
            entry.insert = Some(Row {
                account_id,
                email: email.as_str().to_string(),
                role: role.as_str().to_string(),
                state: "PENDING",
                invited_by,
                created_at: sent_at,
                expires_at,
                last_sent_at: sent_at,
                send_count: 1,
                cancelled: None,
                accepted: None,
                token_digest: token_digest.as_str().to_string(),
            });
            return Ok(());
        }
        AccountEvent::InvitationResent { invitation_id, token_digest, sent_at, expires_at, send_count, .. } => {
            (invitation_id, Change::Resent(sent_at, expires_at, send_count as i32, token_digest.as_str().to_string()))
        }
        AccountEvent::InvitationCancelled { invitation_id, cancelled_by, reason, cancelled_at } => {
            (invitation_id, Change::Cancelled(cancelled_by, cancelled_at, reason))
        }
        AccountEvent::InvitationAccepted { invitation_id, user_id, accepted_at } => (invitation_id, Change::Accepted(user_id, accepted_at)),
        _ => return Ok(()),
    };
    let entry = ops.entry(id).or_insert_with(|| {
        order.push(id);
        Ops::default()
    });
    if let Some(row) = &mut entry.insert {
        match change {
            Change::Resent(sent_at, expires_at, count, digest) => {
                (row.last_sent_at, row.expires_at, row.send_count, row.token_digest) = (sent_at, expires_at, count, digest)
            }
            Change::Cancelled(by, at, reason) => (row.state, row.cancelled) = ("CANCELLED", Some((by, at, reason))),
            Change::Accepted(by, at) => (row.state, row.accepted) = ("ACCEPTED", Some((by, at))),
        }
    } else {
        let patch = entry.patch.get_or_insert_with(Patch::default);
        match change {
            Change::Resent(sent_at, expires_at, count, digest) => patch.resent = Some((sent_at, expires_at, count, digest)),
            Change::Cancelled(by, at, reason) => (patch.state, patch.cancelled) = (Some("CANCELLED"), Some((by, at, reason))),
            Change::Accepted(by, at) => (patch.state, patch.accepted) = (Some("ACCEPTED"), Some((by, at))),
        }
    }
    Ok(())
}

/// Applies `events` (in position order) with at most two statements; stops folding at the
/// first event that cannot be applied and reports it, after writing the events before it.
pub(crate) async fn apply(conn: &mut PgConnection, events: &[RawEvent]) -> Result<Option<Stop>, sqlx::Error> {
    let mut fold = Fold::default();
    let stop = fold.events(events);
    fold.write(conn).await?;
    Ok(stop)
}

/// Events folded per invitation (see the module doc). A rebuild folds the whole log into one
/// `Fold` (the shadow table starts empty) and writes it once.
#[derive(Default)]
pub(crate) struct Fold {
    ops: HashMap<InvitationId, Ops>,
    order: Vec<InvitationId>,
}

impl Fold {
    /// Folds `events` (in position order) in, up to the first one that cannot be applied,
    /// which it returns.
    pub(crate) fn events(&mut self, events: &[RawEvent]) -> Option<Stop> {
        for event in events {
            if let Err(error) = fold(&mut self.ops, &mut self.order, event) {
                return Some(Stop { position: event.position, error });
            }
        }
        None
    }

    /// The folded rows as a bulk load of `invitations`, for a fold of the whole log into an
    /// empty table: there a patch of a row from before the fold touches nothing.
    pub(crate) fn copy_rows(self) -> Vec<Load> {
        let Fold { mut ops, order } = self;
        let mut rows = Rows::with_capacity(order.len() * 300);
        let mut states = Vec::with_capacity(order.len());
        for id in order {
            let Some(r) = ops.remove(&id).and_then(|o| o.insert) else { continue };
            states.push((r.account_id.uuid(), r.state));
            let (cancelled_by, cancelled_at, reason) = r.cancelled.map_or((None, None, None), |(b, a, r)| (Some(b.uuid()), Some(a), Some(r)));
            let (accepted_by, accepted_at) = r.accepted.map_or((None, None), |(b, a)| (Some(b.uuid()), Some(a)));
            rows.tuple(16).uuid(id.uuid()).uuid(r.account_id.uuid()).text(&r.email).text(&r.role).text(r.state)
                .uuid(r.invited_by.uuid()).timestamptz(r.created_at).timestamptz(r.expires_at).timestamptz(r.last_sent_at)
                .int4(r.send_count).opt_uuid(cancelled_by).opt_timestamptz(cancelled_at).opt_text(reason.as_deref())
                .opt_uuid(accepted_by).opt_timestamptz(accepted_at).text(&r.token_digest);
        }
        vec![
            Load {
                table: "invitations",
                columns: "id, account_id, email, role, state, invited_by, created_at, expires_at, last_sent_at, send_count, \
                          cancelled_by, cancelled_at, cancel_reason, accepted_by, accepted_at, token_digest",
                rows,
            },
            Load::counts("invitation_counts", "account_id, state, n", states.into_iter()),
        ]
    }

    /// Writes the folded rows and patches with at most two statements.
    pub(crate) async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let Fold { mut ops, order } = self;
        let mut patches: Vec<(InvitationId, Patch)> = Vec::new();
        let mut rows: Vec<(InvitationId, Row)> = Vec::new();
        for id in order {
            let Ops { patch, insert } = ops.remove(&id).expect("every ordered id has ops");
            if let Some(patch) = patch {
                patches.push((id, patch));
            }
            if let Some(row) = insert {
                rows.push((id, row));
            }
        }
        if !patches.is_empty() {
            update(conn, patches).await?;
        }
        if !rows.is_empty() {
            insert(conn, rows).await?;
        }
        Ok(())
    }
}

async fn update(conn: &mut PgConnection, patches: Vec<(InvitationId, Patch)>) -> Result<(), sqlx::Error> {
    let n = patches.len();
    let (mut ids, mut resent, mut sent, mut expires, mut counts, mut digests) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut states, mut cancelled, mut c_by, mut c_at, mut c_reason) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut accepted, mut a_by, mut a_at) = (Vec::new(), Vec::new(), Vec::new());
    for (id, p) in patches {
        ids.push(id);
        resent.push(p.resent.is_some());
        let (s, e, c, d) = p.resent.map_or((None, None, None, None), |(s, e, c, d)| (Some(s), Some(e), Some(c), Some(d)));
        sent.push(s); expires.push(e); counts.push(c); digests.push(d);
        states.push(p.state);
        cancelled.push(p.cancelled.is_some());
        let (by, at, reason) = p.cancelled.map_or((None, None, None), |(b, a, r)| (Some(b), Some(a), Some(r)));
        c_by.push(by); c_at.push(at); c_reason.push(reason);
        accepted.push(p.accepted.is_some());
        let (by, at) = p.accepted.map_or((None, None), |(b, a)| (Some(b), Some(a)));
        a_by.push(by); a_at.push(at);
    }
    // `old` is the statement's snapshot of the row: the state before the update, for the counters.
    sqlx::query(&counted(
        "upd AS (UPDATE invitations i SET
                last_sent_at  = CASE WHEN u.resent THEN u.last_sent_at ELSE i.last_sent_at END,
                expires_at    = CASE WHEN u.resent THEN u.expires_at ELSE i.expires_at END,
                send_count    = CASE WHEN u.resent THEN u.send_count ELSE i.send_count END,
                token_digest  = CASE WHEN u.resent THEN u.token_digest ELSE i.token_digest END,
                state         = coalesce(u.state, i.state),
                cancelled_by  = CASE WHEN u.cancelled THEN u.cancelled_by ELSE i.cancelled_by END,
                cancelled_at  = CASE WHEN u.cancelled THEN u.cancelled_at ELSE i.cancelled_at END,
                cancel_reason = CASE WHEN u.cancelled THEN u.cancel_reason ELSE i.cancel_reason END,
                accepted_by   = CASE WHEN u.accepted THEN u.accepted_by ELSE i.accepted_by END,
                accepted_at   = CASE WHEN u.accepted THEN u.accepted_at ELSE i.accepted_at END
           FROM UNNEST($1::uuid[], $2::bool[], $3::timestamptz[], $4::timestamptz[], $5::int4[], $6::text[], $7::text[],
                       $8::bool[], $9::uuid[], $10::timestamptz[], $11::text[], $12::bool[], $13::uuid[], $14::timestamptz[])
                AS u(id, resent, last_sent_at, expires_at, send_count, token_digest, state,
                     cancelled, cancelled_by, cancelled_at, cancel_reason, accepted, accepted_by, accepted_at),
                invitations old
          WHERE i.id = u.id AND old.id = i.id
      RETURNING i.account_id, old.state AS old_state, i.state AS new_state),
         changes(account_id, k, d) AS (SELECT account_id, old_state, -1 FROM upd WHERE old_state <> new_state
                             UNION ALL SELECT account_id, new_state, 1 FROM upd WHERE old_state <> new_state)",
        "invitation_counts",
        "state",
    ))
    .bind(ids).bind(resent).bind(sent).bind(expires).bind(counts).bind(digests).bind(states)
    .bind(cancelled).bind(c_by).bind(c_at).bind(c_reason).bind(accepted).bind(a_by).bind(a_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert(conn: &mut PgConnection, rows: Vec<(InvitationId, Row)>) -> Result<(), sqlx::Error> {
    let mut c: (Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>) = Default::default();
    let mut d: (Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>) = Default::default();
    for (id, r) in rows {
        c.0.push(id); c.1.push(r.account_id); c.2.push(r.email); c.3.push(r.role); c.4.push(r.state); c.5.push(r.invited_by); c.6.push(r.created_at); c.7.push(r.expires_at);
        let (cb, ca, cr) = r.cancelled.map_or((None, None, None), |(b, a, r)| (Some(b), Some(a), Some(r)));
        let (ab, aa) = r.accepted.map_or((None, None), |(b, a)| (Some(b), Some(a)));
        d.0.push(r.last_sent_at); d.1.push(r.send_count); d.2.push(cb); d.3.push(ca); d.4.push(cr); d.5.push(ab); d.6.push(aa); d.7.push(r.token_digest);
    }
    sqlx::query(&counted(
        "ins AS (INSERT INTO invitations (id, account_id, email, role, state, invited_by, created_at, expires_at, last_sent_at,
                                  send_count, cancelled_by, cancelled_at, cancel_reason, accepted_by, accepted_at, token_digest)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::timestamptz[],
                              $8::timestamptz[], $9::timestamptz[], $10::int4[], $11::uuid[], $12::timestamptz[], $13::text[],
                              $14::uuid[], $15::timestamptz[], $16::text[])
         RETURNING account_id, state),
         changes(account_id, k, d) AS (SELECT account_id, state, 1 FROM ins)",
        "invitation_counts",
        "state",
    ))
    .bind(c.0).bind(c.1).bind(c.2).bind(c.3).bind(c.4).bind(c.5).bind(c.6).bind(c.7)
    .bind(d.0).bind(d.1).bind(d.2).bind(d.3).bind(d.4).bind(d.5).bind(d.6).bind(d.7)
    .execute(conn)
    .await?;
    Ok(())
}
