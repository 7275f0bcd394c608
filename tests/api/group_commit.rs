//! Issue "writes at the store's speed": the group-commit writer puts many commands in one
//! transaction, yet each command keeps its own outcome, and a tailing reader still sees every
//! event once, in order.

use crate::helpers::fresh_database;
use futures::StreamExt;
use roster_domain::{Account, AccountEvent, EventMetadata, UserId};
use roster_store::{reader, Append, Commit, EventFilter, NewCredential, StoreError, Writer};
use sqlx::PgPool;
use uuid::Uuid;

async fn store() -> PgPool {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(20).connect(&fresh_database().await).await.unwrap();
    roster_store::db::migrate(&pool).await.unwrap();
    pool
}

/// One `AccountCreated`-shaped event for `stream` at `expected` version.
fn commit(stream: Uuid, expected: usize, name: &str) -> Commit {
    let event = AccountEvent::AccountCreated { name: name.into(), created_by: UserId::from(stream), created_at: chrono::Utc::now() };
    let append = Append::new::<Account>(stream.to_string(), expected, &[event]).unwrap();
    Commit { appends: vec![append], credential: None, metadata: EventMetadata::new(None, "test", chrono::Utc::now()) }
}

async fn sequences(pool: &PgPool, stream: Uuid) -> Vec<i64> {
    sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence").bind(stream.to_string()).fetch_all(pool).await.unwrap()
}

#[tokio::test]
async fn a_conflict_in_a_batch_fails_only_its_own_command() {
    let pool = store().await;
    let writer = Writer::spawn(pool.clone());
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    writer.submit(commit(b, 0, "b1")).await.unwrap();
    // Submitted together, so they share batches; b's expected version 0 is stale.
    let pending = [writer.submit(commit(a, 0, "a1")), writer.submit(commit(b, 0, "b-stale")), writer.submit(commit(c, 0, "c1"))];
    let [ra, rb, rc] = futures::future::join_all(pending).await.try_into().unwrap();
    assert!(matches!(rb, Err(StoreError::Conflict)), "{rb:?}");
    let (pa, pc) = (ra.unwrap(), rc.unwrap());
    assert_eq!((pa.len(), pc.len()), (1, 1));
    assert!(pa[0] < pc[0], "positions follow submission order");
    assert_eq!(sequences(&pool, b).await, vec![1], "the stale append wrote nothing");
}

#[tokio::test]
async fn commands_decided_on_an_earlier_one_in_flight_follow_its_fate() {
    let pool = store().await;
    let writer = Writer::spawn(pool.clone());
    let stream = Uuid::new_v4();
    // Three commands on one stream, each decided on the one before, all in flight at once.
    let pending = [writer.submit(commit(stream, 0, "1")), writer.submit(commit(stream, 1, "2")), writer.submit(commit(stream, 2, "3"))];
    for outcome in futures::future::join_all(pending).await {
        outcome.unwrap();
    }
    assert_eq!(sequences(&pool, stream).await, vec![1, 2, 3]);
    // If the first fails its check, those decided on it must fail too: never a gap.
    let pending = [writer.submit(commit(stream, 2, "stale")), writer.submit(commit(stream, 4, "on-stale")), writer.submit(commit(stream, 3, "fresh"))];
    let [stale, on_stale, fresh] = futures::future::join_all(pending).await.try_into().unwrap();
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert!(matches!(on_stale, Err(StoreError::Conflict)), "{on_stale:?}");
    fresh.unwrap();
    assert_eq!(sequences(&pool, stream).await, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn one_email_gets_one_credential_even_within_a_batch() {
    let pool = store().await;
    let writer = Writer::spawn(pool.clone());
    let with_credential = |stream: Uuid| {
        let mut c = commit(stream, 0, "signup");
        c.credential = Some(NewCredential { user_id: UserId::from(stream), email: "same@example.com".into(), password_hash: "$argon2id$x".into() });
        c
    };
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let [r1, r2] = futures::future::join_all([writer.submit(with_credential(first)), writer.submit(with_credential(second))]).await.try_into().unwrap();
    r1.unwrap();
    assert!(matches!(r2, Err(StoreError::EmailTaken)), "{r2:?}");
    assert!(sequences(&pool, second).await.is_empty(), "the refused sign-up appended nothing");
    let credentials: i64 = sqlx::query_scalar("SELECT count(*) FROM credentials").fetch_one(&pool).await.unwrap();
    assert_eq!(credentials, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_reader_sees_every_batched_event_once_in_order() {
    let pool = store().await;
    // Two writers, as two replicas would have: their batches interleave under the lock.
    let writers = [Writer::spawn(pool.clone()), Writer::spawn(pool.clone())];
    const STREAMS: usize = 32;
    const EVENTS: usize = 10;
    let follower = tokio::spawn(reader::follow(&reader::Tail::spawn(pool.clone()), pool.clone(), 0, EventFilter::default()).take(STREAMS * EVENTS).collect::<Vec<_>>());
    let tasks = (0..STREAMS).map(|s| {
        let writer = writers[s % 2].clone();
        tokio::spawn(async move {
            let stream = Uuid::new_v4();
            for version in 0..EVENTS {
                writer.submit(commit(stream, version, "e")).await.unwrap();
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(20), follower).await.expect("follower saw every event").unwrap();
    let positions: Vec<i64> = seen.into_iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in order, no duplicate");
    assert_eq!(positions.len(), STREAMS * EVENTS);
}

#[tokio::test]
async fn listeners_hear_of_a_batch_after_it_commits_and_the_writer_publishes_its_position() {
    let pool = store().await;
    let mut listener = reader::listen(&pool).await.unwrap();
    let writer = Writer::spawn(pool.clone());
    let mut committed = writer.committed();
    let positions = writer.submit(commit(Uuid::new_v4(), 0, "n")).await.unwrap();
    // The batch's own transaction does not notify (roster_append defers it); the writer's
    // notifier does, after commit — so the notification must still come.
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await;
    assert!(matches!(heard, Ok(Ok(_))), "no notification after the append: {heard:?}");
    committed.wait_for(|p| *p == positions[0]).await.unwrap();
    // Appends outside the writer (tools, COPY) still notify from the trigger.
    let mut tx = pool.begin().await.unwrap();
    let append = Append::new::<Account>(Uuid::new_v4().to_string(), 0, &[AccountEvent::AccountCreated { name: "t".into(), created_by: UserId::from(Uuid::new_v4()), created_at: chrono::Utc::now() }]).unwrap();
    roster_store::EventStore::append(&mut tx, &[append], &EventMetadata::new(None, "test", chrono::Utc::now())).await.unwrap();
    tx.commit().await.unwrap();
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await;
    assert!(matches!(heard, Ok(Ok(_))), "no notification after a direct append: {heard:?}");
}
