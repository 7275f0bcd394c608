//! Renderings of an event shared by the subscriptions that select the same fields of it.
//!
//! Why: every live event goes to every subscriber, and async-graphql resolves a subscription's
//! selection once per subscriber (a future per field, each object an `IndexMap` built key by
//! key, the JSON payload converted into GraphQL values). With 50 subscriptions open and 16
//! writers on 2 cores, that was 45 % of the websocket lane's CPU (perf; docs/benchmarks.md).
//! An `Event`'s fields are functions of the stored event alone (none reads the viewer or takes
//! an argument; keep it so, or put the viewer in the key), so subscriptions that select the
//! same fields get the same value: the first to reach an event resolves it and serialises it
//! once, as JSON text; every subscriber's answer then carries a marker that its connection's
//! loop replaces with that text ([`super::splices`]: the clone, serialisation and drop of the
//! value per subscriber were half of what was left). Where no connection splices (no
//! websocket loop of ours), a subscription resolves its own.
//!
//! Which selections share: a flat list of fields, aliased or not, each field once, with no
//! directive and no fragment; the key is their aliases and names in order. Any other selection
//! is resolved per subscriber, as before. Variables cannot make two subscribers with one key
//! differ: `Event`'s fields take no argument, and async-graphql applies `@skip`/`@include`
//! before any resolver runs (`prepare_request` drops the fields they leave out and removes the
//! directives), so `payload @include(if: $p)` arrives here as `payload` or not at all.
//!
//! Memory: a rendering holds each of the event's fields at most once, so it is at most one
//! event's size (about a kilobyte), and at most [`MAX_SELECTIONS`] selections keep [`RECENT`]
//! each: a few tens of megabytes at worst, whatever subscribers select (a selection repeating
//! `payload` under 2,000 aliases would otherwise keep 2,000 payloads per event). Selections
//! beyond the cap, or past their opener's share ([`MAX_SELECTIONS_PER_USER`]), resolve per
//! subscriber.

use super::splices::Splices;
use super::types::Event;
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerError, ServerResult, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use roster_domain::UserId;
use std::sync::{Arc, Mutex, Weak};

/// How many events a selection keeps rendered, the latest ones: subscribers within this many
/// events of the newest one share (under load some lag hundreds of events behind others);
/// one further behind (catching up) resolves its own. At most this many rendered events, each
/// the size of its selected fields, per selection in use.
pub const RECENT: usize = 1024;

/// How many selections may keep renderings at once; further ones resolve per subscriber
/// until one of these has no subscription left.
pub const MAX_SELECTIONS: usize = 16;

/// How many of those one user may have opened (the first to subscribe with a selection opens
/// it; anyone may share it): with distinct selections, one user would otherwise hold every
/// place, and everyone else's subscriptions would resolve per subscriber.
pub const MAX_SELECTIONS_PER_USER: usize = 4;

/// The renderings of every selection that an open subscription uses (one per schema, in its
/// data), with the user who opened each (`None`: the operator). A selection's renderings are
/// dropped with its last subscription.
#[derive(Default)]
pub struct Renders(Mutex<HashMap<String, Kept>>);

/// A selection's renderings, and the user who opened it (`None`: the operator).
type Kept = (Weak<Recent>, Option<UserId>);

/// The latest renderings of one selection: up to [`RECENT`] events, by ascending position.
#[derive(Default, Debug)]
pub struct Recent(Mutex<VecDeque<(i64, Arc<str>)>>);

impl Renders {
    /// The renderings shared by subscriptions whose `field` (the subscription's root field)
    /// selects the same fields, for a subscription of `subscriber` (`None`: the operator);
    /// `None` when its selection may not be shared (see the module), or it would open a new
    /// one while [`MAX_SELECTIONS`] others keep renderings or the subscriber has opened
    /// [`MAX_SELECTIONS_PER_USER`] of them.
    pub fn for_field(&self, field: &Field, subscriber: Option<UserId>) -> Option<Arc<Recent>> {
        let key = selection_key(field)?;
        let mut selections = self.0.lock().expect("renders");
        if let Some(recent) = selections.get(&key).and_then(|(recent, _)| recent.upgrade()) {
            return Some(recent);
        }
        // Selections of ended subscriptions go here, so the map holds live ones only.
        selections.retain(|_, (recent, _)| recent.strong_count() > 0);
        let opened = selections.values().filter(|(_, opener)| *opener == subscriber).count();
        if selections.len() >= MAX_SELECTIONS || opened >= MAX_SELECTIONS_PER_USER {
            return None;
        }
        let recent = Arc::new(Recent::default());
        selections.insert(key, (Arc::downgrade(&recent), subscriber));
        Some(recent)
    }
}

impl Recent {
    /// The rendering (JSON text) of the event at `position`, if kept.
    fn get(&self, position: i64) -> Option<Arc<str>> {
        let recent = self.0.lock().expect("renders");
        let at = recent.binary_search_by_key(&position, |(p, _)| *p).ok()?;
        Some(recent[at].1.clone())
    }

    /// Keeps `rendering` as the one at `position` unless [`RECENT`] newer ones are kept (a
    /// subscriber far behind does not push out the others' renderings), dropping the oldest
    /// beyond [`RECENT`].
    fn put(&self, position: i64, rendering: Arc<str>) {
        let mut recent = self.0.lock().expect("renders");
        let Err(at) = recent.binary_search_by_key(&position, |(p, _)| *p) else { return };
        if at == 0 && recent.len() == RECENT {
            return;
        }
        recent.insert(at, (position, rendering));
        if recent.len() > RECENT {
            recent.pop_front();
        }
    }
}

/// The key of `field`'s selection: `alias:name` of each selected field, in order; `None` for
/// a fragment, a directive, an argument, a nested selection or a field selected twice.
fn selection_key(field: &Field) -> Option<String> {
    let mut key = String::new();
    let mut names = HashSet::new();
    for selection in &field.selection_set.node.items {
        let Selection::Field(selected) = &selection.node else { return None };
        let selected = &selected.node;
        if !selected.directives.is_empty() || !selected.arguments.is_empty() || !selected.selection_set.node.items.is_empty() {
            return None;
        }
        if !names.insert(selected.name.node.as_str()) {
            return None;
        }
        if let Some(alias) = &selected.alias {
            key.push_str(alias.node.as_str());
            key.push(':');
        }
        key.push_str(selected.name.node.as_str());
        key.push(' ');
    }
    Some(key)
}

/// An event as `Subscription.events` delivers it: the schema's `Event`, resolved and
/// serialised once per selection through `recent` when there is one and the connection
/// splices ([`Splices`] in its data); a marker for that rendering in the answer then.
pub struct SharedEvent {
    /// The event.
    pub event: Event,
    /// Its selection's renderings, if it may share them.
    pub recent: Option<Arc<Recent>>,
}

impl OutputType for SharedEvent {
    fn type_name() -> Cow<'static, str> {
        <Event as OutputType>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Event as OutputType>::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        let (Some(recent), Some(splices)) = (&self.recent, ctx.data_opt::<Arc<Splices>>()) else {
            return OutputType::resolve(&self.event, ctx, field).await;
        };
        let position = self.event.0.position;
        let rendering = match recent.get(position) {
            Some(rendering) => rendering,
            None => {
                let value = in_selection_order(&field.node, OutputType::resolve(&self.event, ctx, field).await?);
                let rendering: Arc<str> = serde_json::to_string(&value).map_err(|e| ServerError::new(e.to_string(), Some(field.pos)))?.into();
                recent.put(position, rendering.clone());
                rendering
            }
        };
        Ok(splices.marker(rendering))
    }
}

/// `value` (an object answering `field`'s flat selection) with its keys in selection order:
/// a rendering is sent as it is, after the gate puts every other answer in order
/// (`graphql::order`).
fn in_selection_order(field: &Field, value: Value) -> Value {
    let Value::Object(mut map) = value else { return value };
    let mut ordered = IndexMap::with_capacity(map.len());
    for selection in &field.selection_set.node.items {
        if let Selection::Field(selected) = &selection.node {
            if let Some((key, child)) = map.swap_remove_entry(selected.node.response_key().node.as_str()) {
                ordered.insert(key, child);
            }
        }
    }
    ordered.extend(map);
    Value::Object(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    /// The first field of `query`'s operation (the subscription's root field).
    fn root_field(query: &str) -> Field {
        let document = parse_query(query).unwrap();
        let (_, operation) = document.operations.iter().next().unwrap();
        let Selection::Field(field) = &operation.node.selection_set.node.items[0].node else { panic!("a field") };
        field.node.clone()
    }

    /// The key of the first field of `query`'s operation.
    fn key_of(query: &str) -> Option<String> {
        selection_key(&root_field(query))
    }

    #[test]
    fn flat_selections_share_by_alias_and_name_and_the_rest_do_not() {
        let plain = key_of("subscription { events { position type payload } }");
        assert_eq!(plain.as_deref(), Some("position type payload "));
        assert_eq!(key_of("subscription S($a: String) {\n  events(after: $a) {\n    position\n    type\n    payload\n  }\n}"), plain, "arguments of the root field and layout do not matter");
        assert_eq!(key_of("subscription { events { p: position type payload } }").as_deref(), Some("p:position type payload "));
        assert_ne!(key_of("subscription { events { type position payload } }"), plain, "order is the answer's order");
        for unshared in [
            "subscription($p: Boolean!) { events { position payload @include(if: $p) } }",
            "subscription { events { ...F } } fragment F on Event { position }",
            "subscription { events { ... on Event { position } } }",
            "subscription { events { position a: payload b: payload } }",
        ] {
            assert_eq!(key_of(unshared), None, "{unshared}");
        }
    }

    /// The module's claim that variables cannot split a key: async-graphql hands a subscription
    /// field its selection with the subscriber's `@skip`/`@include` already applied.
    #[tokio::test]
    async fn skip_and_include_are_applied_before_the_key_is_made() {
        use async_graphql::{EmptyMutation, Object, Schema, SimpleObject, Subscription, Variables};
        use futures::{Stream, StreamExt};
        struct Query;
        #[Object]
        impl Query {
            async fn unused(&self) -> bool {
                true
            }
        }
        #[derive(SimpleObject)]
        struct Keyed {
            key: Option<String>,
            payload: bool,
        }
        struct Keys;
        #[Subscription]
        impl Keys {
            async fn events(&self, ctx: &async_graphql::Context<'_>) -> impl Stream<Item = Keyed> {
                futures::stream::iter([Keyed { key: selection_key(&ctx.item.node), payload: true }])
            }
        }
        let schema = Schema::new(Query, EmptyMutation, Keys);
        let query = "subscription($p: Boolean!) { events { key payload @include(if: $p) skipped: payload @skip(if: true) } }";
        for (p, key) in [(true, "key payload "), (false, "key ")] {
            let request = async_graphql::Request::new(query).variables(Variables::from_json(serde_json::json!({ "p": p })));
            let response = schema.execute_stream(request).next().await.unwrap();
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            assert_eq!(response.data.into_json().unwrap()["events"]["key"], key, "$p = {p}");
        }
    }

    #[test]
    fn recent_keeps_the_newest_renderings_in_order_whatever_order_they_come_in() {
        let recent = Recent::default();
        let last = RECENT as i64 + 10;
        // Newest first, then the rest: as subscribers at different distances behind put them.
        recent.put(last, last.to_string().into());
        for position in 1..last {
            recent.put(position, position.to_string().into());
        }
        let kept: Vec<i64> = recent.0.lock().unwrap().iter().map(|(p, _)| *p).collect();
        assert_eq!(kept, (11..=last).collect::<Vec<_>>(), "the newest RECENT, in order");
        assert!(recent.get(10).is_none(), "the oldest were dropped");
        assert_eq!(recent.get(11).as_deref(), Some("11"));
        assert_eq!(recent.get(last).as_deref(), Some(last.to_string().as_str()));
        recent.put(5, "old".into());
        assert!(recent.get(5).is_none(), "one older than every kept one is not kept");
        recent.put(11, "again".into());
        assert_eq!(recent.get(11).as_deref(), Some("11"), "the first rendering stays");
    }

    #[test]
    fn a_selection_is_shared_while_a_subscription_holds_it_and_then_forgotten() {
        let renders = Renders::default();
        let field = root_field("subscription { events { position } }");
        let first = renders.for_field(&field, None).unwrap();
        let second = renders.for_field(&field, None).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        drop((first, second));
        let third = renders.for_field(&field, None).unwrap();
        assert_eq!(Arc::strong_count(&third), 1, "a new one once the others ended");
        assert_eq!(renders.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn at_most_max_selections_keep_renderings_and_an_ended_one_frees_its_place() {
        let renders = Renders::default();
        let fields: Vec<_> = (0..=MAX_SELECTIONS).map(|n| root_field(&format!("subscription {{ events {{ f{n}: position }} }}"))).collect();
        // Each opened by another user (none past their own share).
        let users: Vec<_> = (0..=MAX_SELECTIONS).map(|n| Some(UserId::from(uuid::Uuid::from_u128(n as u128 + 1)))).collect();
        let mut held: Vec<_> = fields[..MAX_SELECTIONS].iter().zip(&users).map(|(f, u)| renders.for_field(f, *u).expect("under the cap")).collect();
        assert!(renders.for_field(&fields[MAX_SELECTIONS], users[MAX_SELECTIONS]).is_none(), "beyond the cap: resolved per subscriber");
        assert!(renders.for_field(&fields[0], users[MAX_SELECTIONS]).is_some(), "a selection in use is still shared");
        held.pop();
        assert!(renders.for_field(&fields[MAX_SELECTIONS], users[MAX_SELECTIONS]).is_some(), "an ended selection's place is free");
    }

    #[test]
    fn one_user_opens_at_most_their_share_of_the_selections_and_may_still_share_others() {
        let renders = Renders::default();
        let (mallory, alice) = (Some(UserId::from(uuid::Uuid::from_u128(1))), Some(UserId::from(uuid::Uuid::from_u128(2))));
        let fields: Vec<_> = (0..MAX_SELECTIONS).map(|n| root_field(&format!("subscription {{ events {{ f{n}: position }} }}"))).collect();
        let held: Vec<_> = fields[..MAX_SELECTIONS_PER_USER].iter().map(|f| renders.for_field(f, mallory).expect("within the share")).collect();
        assert!(renders.for_field(&fields[MAX_SELECTIONS_PER_USER], mallory).is_none(), "past the share: resolved per subscriber");
        assert!(renders.for_field(&fields[MAX_SELECTIONS_PER_USER], None).is_some(), "the operator's share is its own");
        let alices = renders.for_field(&fields[MAX_SELECTIONS_PER_USER + 1], alice).expect("another user still opens selections");
        assert!(renders.for_field(&fields[MAX_SELECTIONS_PER_USER + 1], mallory).is_some_and(|r| Arc::ptr_eq(&r, &alices)), "sharing one opened by someone else is free");
        drop(held);
        assert!(renders.for_field(&fields[MAX_SELECTIONS_PER_USER + 2], mallory).is_some(), "a share comes back as selections end");
    }
}
