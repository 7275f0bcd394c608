//! Set-based projection writes: the read models are the same whether the events are projected
//! one per batch, in large batches, or by a rebuild — including sequences that land inside
//! one batch (join, role change, remove and re-join; invite, resend, cancel; look-ups of
//! targets named earlier in the batch).

use crate::helpers::{fresh_database, read_models};
use chrono::{Duration, TimeZone, Utc};
use roster_domain::token::TokenDigest;
use roster_domain::user::{User, UserEvent};
use roster_domain::{Account, AccountEvent, AccountId, Email, EventMetadata, InvitationId, Role, UserId};
use roster_projections::{rebuild, Projector};
use roster_store::{Append, EventStore};
use sqlx::PgPool;

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

/// A seeded multi-account history, appended a few events per commit, interleaving accounts.
async fn history(pool: &PgPool) {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
    let mut streams: Vec<(AccountId, Vec<AccountEvent>)> = Vec::new();
    let mut users: Vec<(UserId, UserEvent)> = Vec::new();
    for a in 0..12u32 {
        let account = AccountId::from(uuid::Uuid::new_v4());
        let at = |i: u32| t0 + Duration::seconds(i64::from(a * 100 + i));
        let user = |n: u32| UserId::from(uuid::Uuid::from_u128(u128::from(a) << 8 | u128::from(n)));
        let admin = user(0);
        for n in 0..4 {
            users.push((user(n), UserEvent::UserRegistered { email: email(&format!("u{n}.a{a}@example.com")), display_name: format!("User {n}"), registered_at: at(n) }));
        }
        let inv = |n: u32| InvitationId::from(uuid::Uuid::from_u128(u128::from(a) << 16 | u128::from(n) | 1 << 100));
        let digest = |n: u32| TokenDigest::from_stored(format!("{:064x}", a * 1000 + n));
        let joined = |n: u32, role: Role, invitation: Option<InvitationId>, e: &str, i: u32| AccountEvent::MemberJoined { user_id: user(n), email: email(e), role, joined_at: at(i), invitation_id: invitation };
        let invited = |n: u32, e: &str, i: u32| AccountEvent::MemberInvited { invitation_id: inv(n), email: email(e), role: Role::Developer, invited_by: admin, token_digest: digest(n), sent_at: at(i), expires_at: at(i) + Duration::days(7), mail_nonce: None };
        let mut events = vec![
            AccountEvent::AccountCreated { name: format!("Account {a}"), created_by: admin, created_at: at(0) },
            joined(0, Role::Admin, None, &format!("u0.a{a}@example.com"), 1),
            invited(1, "x@example.com", 2),
            AccountEvent::InvitationResent { invitation_id: inv(1), resent_by: admin, token_digest: digest(11), sent_at: at(3), expires_at: at(3) + Duration::days(7), send_count: 2, mail_nonce: None },
            AccountEvent::InvitationCancelled { invitation_id: inv(1), cancelled_by: admin, reason: "cancelled".into(), cancelled_at: at(4) },
            invited(2, "y@example.com", 5),
            AccountEvent::InvitationAccepted { invitation_id: inv(2), user_id: user(1), accepted_at: at(6) },
            joined(1, Role::Developer, Some(inv(2)), "y@example.com", 6),
            AccountEvent::MemberRoleChanged { user_id: user(1), from: Role::Developer, to: Role::SecurityEngineer, changed_by: admin },
            AccountEvent::MemberRemoved { user_id: user(1), removed_by: admin, removed_at: at(7) },
            joined(1, Role::Guest, None, "y2@example.com", 8),
            AccountEvent::MemberRoleChanged { user_id: user(1), from: Role::Guest, to: Role::Developer, changed_by: admin },
            AccountEvent::MemberRemoved { user_id: user(3), removed_by: admin, removed_at: at(9) },
            AccountEvent::MemberRoleChanged { user_id: user(2), from: Role::Guest, to: Role::Admin, changed_by: admin },
            joined(2, Role::Guest, None, "z@example.com", 10),
            invited(3, "w@example.com", 11),
        ];
        // Later accounts continue past the first ones' batches: changes to rows written long
        // before, look-ups of targets from earlier batches.
        if a % 2 == 0 {
            events.extend([
                AccountEvent::InvitationResent { invitation_id: inv(3), resent_by: admin, token_digest: digest(13), sent_at: at(12), expires_at: at(12) + Duration::days(7), send_count: 2, mail_nonce: None },
                AccountEvent::InvitationAccepted { invitation_id: inv(3), user_id: user(3), accepted_at: at(13) },
                joined(3, Role::Developer, Some(inv(3)), "w@example.com", 13),
                AccountEvent::MemberRemoved { user_id: user(2), removed_by: admin, removed_at: at(14) },
                AccountEvent::MemberRoleChanged { user_id: user(1), from: Role::Developer, to: Role::Guest, changed_by: admin },
            ]);
        }
        streams.push((account, events));
    }
    let store_user = |(id, event): (UserId, UserEvent)| Append::new::<User>(id.to_string(), 0, &[event]).unwrap();
    let meta = EventMetadata::new(None, "seeded", t0);
    let mut users = users.into_iter();
    let mut versions = vec![0usize; streams.len()];
    // Round-robin over accounts, 1–3 events per commit, with user registrations in between.
    let mut round = 0;
    while versions.iter().zip(&streams).any(|(v, (_, e))| *v < e.len()) {
        for (k, (account, events)) in streams.iter().enumerate() {
            let take = 1 + (round + k) % 3;
            let from = versions[k];
            let to = (from + take).min(events.len());
            if from == to {
                continue;
            }
            let mut appends = Vec::new();
            if let Some(user) = users.next() {
                appends.push(store_user(user));
            }
            appends.push(Append::new::<Account>(account.to_string(), from, &events[from..to]).unwrap());
            let mut tx = pool.begin().await.unwrap();
            EventStore::append(&mut tx, &appends, &meta).await.unwrap();
            tx.commit().await.unwrap();
            versions[k] = to;
        }
        round += 1;
    }
    for user in users {
        let mut tx = pool.begin().await.unwrap();
        EventStore::append(&mut tx, &[store_user(user)], &meta).await.unwrap();
        tx.commit().await.unwrap();
    }
}

async fn reset(pool: &PgPool) {
    // Every projection's tables, counters included.
    let tables: Vec<&str> = roster_projections::Projection::ALL.iter().flat_map(|p| p.tables().iter().copied()).collect();
    sqlx::query(&format!("TRUNCATE {}", tables.join(", "))).execute(pool).await.unwrap();
    sqlx::query("UPDATE projection_checkpoints SET position = 0").execute(pool).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn read_models_are_the_same_for_any_batch_size_and_for_a_rebuild() {
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    roster_store::db::migrate(&pool).await.unwrap();
    history(&pool).await;
    let projector = Projector::new(pool.clone());

    projector.catch_up_in_batches_of(1).await.unwrap();
    let one_by_one = read_models(&pool).await;
    assert!(one_by_one.iter().all(|(_, rows)| !rows.is_empty()), "{one_by_one:?}");
    for size in [7, 10_000] {
        reset(&pool).await;
        projector.catch_up_in_batches_of(size).await.unwrap();
        assert_eq!(read_models(&pool).await, one_by_one, "batches of {size}");
    }
    reset(&pool).await;
    rebuild::rebuild(&pool, &[]).await.unwrap();
    assert_eq!(read_models(&pool).await, one_by_one, "rebuild");
}
