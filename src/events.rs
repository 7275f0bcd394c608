//! `roster events`: the audit feed as JSON Lines on stdout, in global order, optionally
//! following new events as they commit.

use crate::EventsArgs;
use anyhow::Result;
use futures::StreamExt;
use roster_store::{db, reader, EventFilter};
use std::io::Write;

/// Events read per query of `roster events` (keyset-paged; each page is streamed as
/// PostgreSQL produces it, so formatting overlaps the server's work).
const EVENTS_PAGE: i64 = 50_000;

/// Streams the events `args` select to stdout (see `roster events --help`).
///
/// Errors: the database (unreachable, a failed query) or stdout (other than a closed pipe).
pub async fn events(args: EventsArgs) -> Result<()> {
    let pool = db::connect(args.db.url()?, 2).await?;
    let filter = EventFilter { account_id: args.account };
    let limit = args.limit.unwrap_or(u64::MAX);
    if limit == 0 {
        return Ok(());
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut line = Vec::with_capacity(4096);
    let mut written = 0u64;
    let follow = args.follow;
    // Writes one feed line; false when the feed should end (limit reached or pipe closed).
    let mut write = |event: &reader::RawEvent| -> Result<bool> {
        line.clear();
        event.write_feed_line(&mut line)?;
        line.push(b'\n');
        let written_line = out.write_all(&line).and_then(|()| if follow { out.flush() } else { Ok(()) });
        if let Err(e) = written_line {
            // A closed pipe (e.g. `| head`) ends the feed quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(false);
            }
            return Err(e.into());
        }
        written += 1;
        Ok(written < limit)
    };
    let mut after = args.after;
    loop {
        let mut page = reader::stream_raw_after(&pool, after, EVENTS_PAGE, filter);
        let mut read = 0;
        while let Some(event) = page.next().await {
            let event = event?;
            after = event.position;
            read += 1;
            if !write(&event)? {
                return flushed(out);
            }
        }
        if read < EVENTS_PAGE {
            break;
        }
    }
    if !follow {
        return flushed(out);
    }
    // Database outages are retried inside (logged), resuming after the last line written.
    let tail = reader::Tail::spawn(pool.clone());
    let mut stream = Box::pin(reader::follow(&tail, pool.clone(), after, filter));
    while let Some(event) = stream.next().await {
        let event = std::sync::Arc::unwrap_or_clone(event);
        let raw = reader::RawEvent {
            position: event.position,
            recorded_at: event.recorded_at,
            account_id: event.account_id,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            payload: event.payload.to_string(),
            metadata: event.metadata.to_string(),
        };
        if !write(&raw)? {
            break;
        }
    }
    flushed(out)
}

/// Flushes the feed; a closed pipe is a normal end.
fn flushed(mut out: impl Write) -> Result<()> {
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
