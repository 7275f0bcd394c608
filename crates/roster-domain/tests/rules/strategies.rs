//! The property test's pools (users, emails, invitation ids) and the proptest strategies that
//! draw commands over them. Ids and tokens are resolved against the state when a step runs
//! (see `properties.rs`).

use crate::fixtures::*;
use proptest::prelude::*;

/// Pool sizes: users (user `i` owns email `i`), invitation ids.
pub const USERS: usize = 4;
pub const INVITATIONS: usize = 6;

pub fn pool_user(i: usize) -> UserId {
    UserId::from_uuid(Uuid::from_u128(0x7000 + i as u128))
}

pub fn pool_email(i: usize) -> Email {
    Email::parse(&format!("user{i}@pool.test")).unwrap()
}

pub fn pool_invitation(i: usize) -> InvitationId {
    InvitationId::from_uuid(Uuid::from_u128(0x8000 + i as u128))
}

/// Who acts or is acted on. Resolved against the state when the step runs, so that most
/// commands come from members (and get past the permission checks to the interesting rules).
#[derive(Debug, Clone)]
pub enum Who {
    /// One of the current members (any pool user when there are none).
    Member(prop::sample::Index),
    /// Pool user `i`, member or not.
    Pool(usize),
}

/// Which invitation a command names, resolved like [`Who`].
#[derive(Debug, Clone)]
pub enum Which {
    /// One of the invitations the account has (any pool id when there are none).
    Existing(prop::sample::Index),
    /// Pool invitation id `i`, existing or not.
    Pool(usize),
}

/// Which token an accept presents.
#[derive(Debug, Clone)]
pub enum TokenChoice {
    /// The one from the last successful invite or resend.
    Current,
    /// The one before that (rotated away by a resend).
    Previous,
    /// One that was never issued.
    Forged,
}

/// Who accepts.
#[derive(Debug, Clone)]
pub enum Accepter {
    /// The pool user who owns the invited email (the usual case).
    Invitee,
    /// Pool user `user` with pool email `email` (either may differ from the invitee's).
    Pool { user: usize, email: usize },
}

/// A command over the pools, before ids, tokens and times are filled in.
#[derive(Debug, Clone)]
pub enum Op {
    Create {
        founder: usize,
        valid_name: bool,
    },
    Invite {
        actor: Who,
        inv: usize,
        email: usize,
        role: Role,
    },
    Resend {
        actor: Who,
        inv: Which,
    },
    Cancel {
        actor: Who,
        inv: Which,
    },
    Accept {
        inv: Which,
        by: Accepter,
        token: TokenChoice,
    },
    ChangeRole {
        actor: Who,
        user: Who,
        role: Role,
    },
    Remove {
        actor: Who,
        user: Who,
    },
}

pub fn role_strategy() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

pub fn who_strategy() -> impl Strategy<Value = Who> {
    prop_oneof![
        4 => any::<prop::sample::Index>().prop_map(Who::Member),
        1 => (0..USERS).prop_map(Who::Pool),
    ]
}

pub fn which_strategy() -> impl Strategy<Value = Which> {
    prop_oneof![
        4 => any::<prop::sample::Index>().prop_map(Which::Existing),
        1 => (0..INVITATIONS).prop_map(Which::Pool),
    ]
}

pub fn op_strategy() -> impl Strategy<Value = Op> {
    let token = prop_oneof![
        4 => Just(TokenChoice::Current),
        1 => Just(TokenChoice::Previous),
        1 => Just(TokenChoice::Forged),
    ];
    let accepter = prop_oneof![
        4 => Just(Accepter::Invitee),
        1 => (0..USERS, 0..USERS).prop_map(|(user, email)| Accepter::Pool { user, email }),
    ];
    prop_oneof![
        1 => (0..USERS, prop::bool::weighted(0.8))
            .prop_map(|(founder, valid_name)| Op::Create { founder, valid_name }),
        6 => (who_strategy(), 0..INVITATIONS, 0..USERS, role_strategy())
            .prop_map(|(actor, inv, email, role)| Op::Invite { actor, inv, email, role }),
        3 => (who_strategy(), which_strategy()).prop_map(|(actor, inv)| Op::Resend { actor, inv }),
        2 => (who_strategy(), which_strategy()).prop_map(|(actor, inv)| Op::Cancel { actor, inv }),
        6 => (which_strategy(), accepter, token)
            .prop_map(|(inv, by, token)| Op::Accept { inv, by, token }),
        4 => (who_strategy(), who_strategy(), role_strategy())
            .prop_map(|(actor, user, role)| Op::ChangeRole { actor, user, role }),
        2 => (who_strategy(), who_strategy()).prop_map(|(actor, user)| Op::Remove { actor, user }),
    ]
}

/// A step: how many hours pass (so invitations expire now and then), then an op. Most
/// sequences open the account first.
pub fn steps_strategy() -> impl Strategy<Value = Vec<(i64, Op)>> {
    let step = (0i64..60, op_strategy());
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(step, 0..40),
    )
        .prop_map(|(open_first, mut steps)| {
            if open_first {
                steps.insert(
                    0,
                    (
                        0,
                        Op::Create {
                            founder: 0,
                            valid_name: true,
                        },
                    ),
                );
            }
            steps
        })
}
