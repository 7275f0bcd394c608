//! Who may do what, as one table: every actor (each role of the permission matrix, a signed-in
//! non-member, an anonymous caller, the operator token) × every mutation and every read of the
//! schema (the account's connections and the event feed, as query and as subscription).
//!
//! The expected outcome of each cell comes from the domain's own rules — `Role::allows`,
//! `may_read`, `may_invite`, `may_resend`, `may_cancel`, `may_read_audit_log`,
//! `may_read_event_stream` (crates/roster-domain/src/permission.rs) — never from a copy of the
//! matrix, so a resolver that stops checking, or checks something else, fails here. A refusal
//! must carry the contract's code (`UNAUTHENTICATED` without a session, `FORBIDDEN` for a role or
//! tenant that may not, `NOT_FOUND` for no such account) and leave the event log's last position
//! where it was. One account with one member per role serves every cell.

use crate::helpers::{code, spawn_app, ApiClient, Signed, TestApp, WsClient, OPERATOR_TOKEN, PASSWORD};
use roster_domain::{Permission, Role};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Actor {
    /// A member of the account with this role.
    Member(Role),
    /// Signed in, but a member of another account only.
    NonMember,
    /// No token.
    Anonymous,
    /// The operator token (`ROSTER_OPERATOR_TOKEN`).
    Operator,
}

impl Actor {
    fn all() -> Vec<Actor> {
        let mut all: Vec<Actor> = Role::ALL.into_iter().map(Actor::Member).collect();
        all.extend([Actor::NonMember, Actor::Anonymous, Actor::Operator]);
        all
    }
}

/// What a call should come to: done, or refused with an `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Refused(&'static str),
}
use Outcome::{Allowed, Refused};

/// An account-scoped operation: a member whose role passes `rule` may; another member or a
/// non-member (another tenant's) is `FORBIDDEN`; without a session, `UNAUTHENTICATED` (the
/// operator token is no session).
fn members_who(actor: Actor, rule: impl Fn(Role) -> bool) -> Outcome {
    match actor {
        Actor::Member(role) if rule(role) => Allowed,
        Actor::Member(_) | Actor::NonMember => Refused("FORBIDDEN"),
        Actor::Anonymous | Actor::Operator => Refused("UNAUTHENTICATED"),
    }
}

/// Any signed-in user may (it concerns only themself).
fn any_session(actor: Actor) -> Outcome {
    match actor {
        Actor::Member(_) | Actor::NonMember => Allowed,
        Actor::Anonymous | Actor::Operator => Refused("UNAUTHENTICATED"),
    }
}

/// Something that does not exist: `NOT_FOUND` to anyone signed in, whatever their roles.
fn not_found(actor: Actor) -> Outcome {
    match any_session(actor) {
        Allowed => Refused("NOT_FOUND"),
        refused => refused,
    }
}

/// The account's event feed: the operator token reads every account's; a member whose role may
/// read the event stream reads this one's.
fn event_feed(actor: Actor) -> Outcome {
    match actor {
        Actor::Operator => Allowed,
        other => members_who(other, Role::may_read_event_stream),
    }
}

/// One cell of the table: a GraphQL operation (by its root field) and its expected outcome.
struct Cell {
    /// Root field, e.g. `inviteUser`; `Subscription.events` is `subscription events`.
    field: &'static str,
    /// Which variant of the operation, for the report.
    label: String,
    query: &'static str,
    variables: Value,
    expected: Outcome,
}

/// The account, its members and what the cells act on.
struct World {
    app: TestApp,
    admin: Signed,
    /// Session and user id per role, the Admin's included.
    members: HashMap<Role, (String, String)>,
    /// A signed-in user of another account.
    outsider: Signed,
    /// A pending invitation's link token, for the preview.
    preview_token: String,
    /// Pending invitations for resending, by the Admin and by the Security Engineer.
    resend: [(Role, String); 2],
    /// The member whose role is changed, and the one who is removed.
    change_target: String,
    remove_target: String,
}

const SENDERS: [Role; 2] = [Role::Admin, Role::SecurityEngineer];

impl World {
    async fn new() -> World {
        let app = spawn_app().await;
        let admin = app.sign_up("admin@example.com", "Acme").await;
        let mut members = HashMap::from([(Role::Admin, (admin.token.clone(), admin.user_id.clone()))]);
        for role in [Role::SecurityEngineer, Role::Developer, Role::Guest] {
            let email = format!("{}@example.com", role.as_str().to_lowercase());
            members.insert(role, app.add_member(&admin, &email, role.as_str()).await);
        }
        let outsider = app.sign_up("outsider@example.com", "Elsewhere").await;
        let (_, preview_token) = app.invite_ok(&admin.token, &admin.account_id, "preview@example.com", "GUEST").await;
        let mut resend = Vec::new();
        for sender in SENDERS {
            let email = format!("resend-by-{}@example.com", sender.as_str().to_lowercase());
            resend.push((sender, app.invite_ok(&members[&sender].0, &admin.account_id, &email, "GUEST").await.0));
        }
        let (_, change_target) = app.add_member(&admin, "change-target@example.com", "DEVELOPER").await;
        let (_, remove_target) = app.add_member(&admin, "remove-target@example.com", "DEVELOPER").await;
        let resend = resend.try_into().unwrap();
        World { app, admin, members, outsider, preview_token, resend, change_target, remove_target }
    }

    fn token(&self, actor: Actor) -> Option<String> {
        match actor {
            Actor::Member(role) => Some(self.members[&role].0.clone()),
            Actor::NonMember => Some(self.outsider.token.clone()),
            Actor::Anonymous => None,
            Actor::Operator => Some(OPERATOR_TOKEN.to_string()),
        }
    }

    /// Whether `actor` is the member who sent invitations as `sender`.
    fn is(actor: Actor, sender: Role) -> bool {
        actor == Actor::Member(sender)
    }

    /// Every cell of `actor`'s row. Cells that consume what they act on (cancel, accept) get a
    /// fresh invitation each.
    async fn row(&self, actor: Actor, n: usize) -> Vec<Cell> {
        let account = &self.admin.account_id;
        let mut cells = vec![
            // Public: the caller's token neither grants nor takes away anything.
            Cell {
                field: "signUp",
                label: String::new(),
                query: "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
                variables: json!({ "i": { "email": format!("new-{n}@example.com"), "password": PASSWORD, "displayName": "New", "accountName": "New" } }),
                expected: Allowed,
            },
            Cell {
                field: "logIn",
                label: String::new(),
                query: "mutation($i: LogInInput!) { logIn(input: $i) { token } }",
                variables: json!({ "i": { "email": "admin@example.com", "password": PASSWORD } }),
                expected: Allowed,
            },
            Cell {
                field: "invitationPreview",
                label: String::new(),
                query: "query($t: String!) { invitationPreview(token: $t) { email } }",
                variables: json!({ "t": self.preview_token }),
                expected: Allowed,
            },
            // Email ownership: public; the emailed token is the credential, and a reset request
            // answers the same for any email (an unknown one here: nothing is appended later).
            Cell {
                field: "requestPasswordReset",
                label: String::new(),
                query: "mutation($e: String!) { requestPasswordReset(email: $e) }",
                variables: json!({ "e": format!("nobody-{n}@example.com") }),
                expected: Allowed,
            },
            Cell {
                field: "verifyEmail",
                label: "someone else's token".into(),
                query: "mutation($t: String!) { verifyEmail(token: $t) }",
                variables: json!({ "t": "A".repeat(64) }),
                expected: Refused("INVALID_TOKEN"),
            },
            Cell {
                field: "resetPassword",
                label: "someone else's token".into(),
                query: "mutation($t: String!) { resetPassword(token: $t, password: \"a new password\") }",
                variables: json!({ "t": "A".repeat(64) }),
                expected: Refused("INVALID_TOKEN"),
            },
            Cell { field: "roles", label: String::new(), query: "{ roles { role } }", variables: json!({}), expected: Allowed },
            Cell { field: "viewer", label: String::new(), query: "{ viewer { user { id } } }", variables: json!({}), expected: Allowed },
            Cell {
                field: "createAccount",
                label: String::new(),
                query: "mutation { createAccount(input: {name: \"Own\"}) { id } }",
                variables: json!({}),
                expected: any_session(actor),
            },
            // Reads of the account.
            Cell {
                field: "account",
                label: "account itself".into(),
                query: "query($a: ID!) { account(id: $a) { id viewerRole } }",
                variables: json!({ "a": account }),
                expected: members_who(actor, |_| true),
            },
            Cell {
                field: "account",
                label: "no such account".into(),
                query: "query($a: ID!) { account(id: $a) { id } }",
                variables: json!({ "a": uuid::Uuid::new_v4().to_string() }),
                expected: not_found(actor),
            },
            Cell {
                field: "inviteUser",
                label: "no such account".into(),
                query: "mutation($a: ID!) { inviteUser(input: {accountId: $a, email: \"x@example.com\", role: GUEST}) { inviteLink } }",
                variables: json!({ "a": uuid::Uuid::new_v4().to_string() }),
                expected: not_found(actor),
            },
            Cell {
                field: "cancelInvite",
                label: "no such invitation".into(),
                query: "mutation($i: ID!) { cancelInvite(input: {invitationId: $i}) { status } }",
                variables: json!({ "i": uuid::Uuid::new_v4().to_string() }),
                expected: not_found(actor),
            },
            Cell {
                field: "account",
                label: "members".into(),
                query: "query($a: ID!) { account(id: $a) { members { totalCount } } }",
                variables: json!({ "a": account }),
                expected: members_who(actor, |r| r.may_read(Permission::Members)),
            },
            Cell {
                field: "account",
                label: "invitations".into(),
                query: "query($a: ID!) { account(id: $a) { invitations { totalCount } } }",
                variables: json!({ "a": account }),
                expected: members_who(actor, |r| r.may_read(Permission::Members)),
            },
            Cell {
                field: "account",
                label: "auditLog".into(),
                query: "query($a: ID!) { account(id: $a) { auditLog { totalCount } } }",
                variables: json!({ "a": account }),
                expected: members_who(actor, Role::may_read_audit_log),
            },
            Cell {
                field: "events",
                label: "this account".into(),
                query: "query($a: ID) { events(accountId: $a) { totalCount } }",
                variables: json!({ "a": account }),
                expected: event_feed(actor),
            },
            Cell {
                field: "events",
                label: "every account".into(),
                query: "{ events { totalCount } }",
                variables: json!({}),
                // Only the operator reads across accounts; a user must name one.
                expected: match actor {
                    Actor::Operator => Allowed,
                    Actor::Anonymous => Refused("UNAUTHENTICATED"),
                    _ => Refused("FORBIDDEN"),
                },
            },
            // Commands on the account.
            Cell {
                field: "removeMember",
                label: String::new(),
                query: "mutation($a: ID!, $u: ID!) { removeMember(input: {accountId: $a, userId: $u}) { userId } }",
                variables: json!({ "a": account, "u": self.remove_target }),
                expected: members_who(actor, |r| r.allows(Permission::Roles)),
            },
        ];
        for granted in Role::ALL {
            cells.push(Cell {
                field: "inviteUser",
                label: format!("as {}", granted.as_str()),
                query: "mutation($a: ID!, $e: String!, $r: Role!) { inviteUser(input: {accountId: $a, email: $e, role: $r}) { inviteLink } }",
                variables: json!({ "a": account, "e": format!("invitee-{n}-{}@example.com", granted.as_str().to_lowercase()), "r": granted.as_str() }),
                expected: members_who(actor, |r| r.may_invite(granted)),
            });
            cells.push(Cell {
                field: "changeRole",
                label: format!("to {}", granted.as_str()),
                query: "mutation($a: ID!, $u: ID!, $r: Role!) { changeRole(input: {accountId: $a, userId: $u, role: $r}) { role } }",
                variables: json!({ "a": account, "u": self.change_target, "r": granted.as_str() }),
                expected: members_who(actor, |r| r.allows(Permission::Roles)),
            });
        }
        for (sender, invitation) in &self.resend {
            let own = Self::is(actor, *sender);
            cells.push(Cell {
                field: "resendInvite",
                label: format!("sent by {}", sender.as_str()),
                query: "mutation($i: ID!) { resendInvite(input: {invitationId: $i}) { inviteLink } }",
                variables: json!({ "i": invitation }),
                expected: members_who(actor, |r| r.may_resend(own, Role::Guest)),
            });
        }
        for sender in SENDERS {
            let email = format!("cancel-{n}-by-{}@example.com", sender.as_str().to_lowercase());
            let (invitation, _) = self.app.invite_ok(&self.members[&sender].0, account, &email, "GUEST").await;
            let own = Self::is(actor, sender);
            cells.push(Cell {
                field: "cancelInvite",
                label: format!("sent by {}", sender.as_str()),
                query: "mutation($i: ID!) { cancelInvite(input: {invitationId: $i}) { status } }",
                variables: json!({ "i": invitation }),
                expected: members_who(actor, |r| r.may_cancel(own)),
            });
        }
        // Rule "Accept": the invite token is the credential; with a session, the session's
        // email must be the invited one (no actor here has it), without one a user is made.
        let (_, invite) = self.app.invite_ok(&self.admin.token, account, &format!("accept-{n}@example.com"), "GUEST").await;
        cells.push(Cell {
            field: "acceptInvite",
            label: String::new(),
            query: "mutation($t: String!) { acceptInvite(input: {token: $t, displayName: \"New\", password: \"correct horse battery\"}) { token } }",
            variables: json!({ "t": invite }),
            expected: match actor {
                Actor::Anonymous | Actor::Operator => Allowed,
                _ => Refused("EMAIL_MISMATCH"),
            },
        });
        cells
    }
}

impl Outcome {
    /// Whether an answer refused with `refusal` (`None`: not refused) is this outcome.
    fn is(self, refusal: Option<&str>) -> bool {
        match self {
            Allowed => refusal.is_none(),
            Refused(expected) => refusal == Some(expected),
        }
    }
}

/// The `extensions.code` an answer was refused with, `None` when it has no errors.
fn refusal(response: &Value) -> Option<String> {
    response.get("errors").map(|_| code(response).unwrap_or("<no code>").to_string())
}

/// The event log's last global position (0 when empty).
async fn last_position(api: &ApiClient) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events").fetch_one(&api.pool).await.unwrap()
}

/// `Subscription.events` for the account: the first message decides (see [`refusal`]).
async fn subscribe(world: &World, actor: Actor) -> Option<String> {
    let payload = world.token(actor).map_or(json!({}), |t| json!({ "Authorization": format!("Bearer {t}") }));
    let mut ws = WsClient::connect_to(&world.app, "/graphql/ws", payload).await;
    ws.subscribe("1", "subscription($a: ID) { events(after: \"0\", accountId: $a) { position } }", json!({ "a": world.admin.account_id }))
        .await;
    let message = ws.next_message().await;
    ws.close().await;
    // async-graphql reports a resolver's refusal as a `next` with `errors`, others as `error`.
    match message["type"].as_str() {
        Some("next") => refusal(&message["payload"]),
        Some("error") => refusal(&json!({ "errors": message["payload"] })),
        _ => panic!("unexpected message {message}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_actor_times_every_operation_gets_what_the_permission_rules_say() {
    let world = World::new().await;
    let (mut mismatches, mut fields) = (Vec::new(), BTreeSet::new());
    let mut cells_run = 0;
    for (n, actor) in Actor::all().into_iter().enumerate() {
        for cell in world.row(actor, n).await {
            let before = last_position(&world.app).await;
            let response = world.app.gql(world.token(actor).as_deref(), cell.query, cell.variables.clone()).await;
            let actual = refusal(&response);
            let appended = last_position(&world.app).await != before;
            if !cell.expected.is(actual.as_deref()) || (actual.is_some() && appended) {
                let (field, label, expected) = (cell.field, &cell.label, cell.expected);
                mismatches.push(format!("{actor:?} {field} {label}: expected {expected:?}, got {actual:?} (appended: {appended}): {response}"));
            }
            fields.insert(cell.field);
            cells_run += 1;
        }
        let before = last_position(&world.app).await;
        let (expected, actual) = (event_feed(actor), subscribe(&world, actor).await);
        if !expected.is(actual.as_deref()) || last_position(&world.app).await != before {
            mismatches.push(format!("{actor:?} subscription events: expected {expected:?}, got {actual:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{} of {cells_run} cells disagree with the rules:\n{}", mismatches.len(), mismatches.join("\n"));

    // Every query and mutation of the schema has its cells: a new operation must join the table.
    let schema = world.app.ok(None, "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }", json!({})).await;
    let in_schema: BTreeSet<&str> = ["queryType", "mutationType"]
        .iter()
        .flat_map(|root| schema["__schema"][root]["fields"].as_array().unwrap())
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(in_schema, fields, "operations of the schema without cells here, or cells for operations it lacks");
}
