//! Response fields in the order the query selected them (GraphQL spec, "Objects": "ordered by
//! the order in which they appear in the query"). async-graphql 7 resolves the fields of a
//! selection set concurrently and keeps them in the order they finish (async-graphql#612), so
//! `account { members invitations name }` could answer `name, members, invitations`; this
//! extension puts each object's keys back in selection order after execution (aliases, merged
//! fields and fragments included; a field `@skip`ped or never resolved stays absent).

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{indexmap::IndexMap, Name, Response, ServerResult, Value, Variables};
use std::sync::{Arc, Mutex};

/// The extension factory.
pub struct ResponseOrder;

impl ExtensionFactory for ResponseOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Ordering { document: Mutex::default(), plan: Mutex::default() })
    }
}

struct Ordering {
    /// The request's parsed document (a subscription's serves every event it delivers).
    document: Mutex<Option<Arc<ExecutableDocument>>>,
    /// The operation's [`Plan`], made at its first execution (after validation, which rules
    /// out fragment cycles) and kept for a subscription's later events.
    plan: Mutex<Option<Arc<Plan>>>,
}

/// The response keys a selection answers, in selection order, each with the plan of what it
/// selects in turn (empty: a leaf or a scalar, such as a JSON payload, left as it is).
#[derive(Debug, Default)]
struct Plan {
    keys: Vec<(Name, Plan)>,
}

impl Plan {
    /// The plan of the answer to `sets` (merged).
    fn of(document: &ExecutableDocument, sets: &[&SelectionSet]) -> Self {
        let mut selected = IndexMap::new();
        for set in sets {
            keys(document, set, &mut selected);
        }
        Self { keys: selected.into_iter().map(|(key, children)| { let plan = Plan::of(document, &children); (key, plan) }).collect() }
    }
}

/// The selection sets each response key of `set` answers, in order of first appearance,
/// through fragments (which validation has checked to be acyclic).
fn keys<'a>(document: &'a ExecutableDocument, set: &'a SelectionSet, out: &mut IndexMap<Name, Vec<&'a SelectionSet>>) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.alias.as_ref().unwrap_or(&field.node.name).node.clone();
                out.entry(key).or_default().push(&field.node.selection_set.node);
            }
            Selection::InlineFragment(fragment) => keys(document, &fragment.node.selection_set.node, out),
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    keys(document, &fragment.node.selection_set.node, out);
                }
            }
        }
    }
}

/// The plan of each of `map`'s keys, in the map's order, if they already follow `plan`'s order
/// (the usual case: most fields finish in the order they were started).
fn in_order<'p>(plan: &'p Plan, map: &IndexMap<Name, Value>) -> Option<Vec<&'p Plan>> {
    let mut planned = plan.keys.iter();
    map.keys().map(|key| planned.find(|(k, _)| k == key).map(|(_, child)| child)).collect()
}

/// Reorders `value` (the answer `plan` describes) in place.
fn reorder(plan: &Plan, value: &mut Value) {
    if plan.keys.is_empty() {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(children) = in_order(plan, map) {
                map.values_mut().zip(children).for_each(|(child, plan)| reorder(plan, child));
                return;
            }
            let mut ordered = IndexMap::with_capacity(map.len());
            for (key, plan) in &plan.keys {
                if let Some(mut child) = map.swap_remove(key) {
                    reorder(plan, &mut child);
                    ordered.insert(key.clone(), child);
                }
            }
            // Nothing else should be there; whatever is stays, after the selected keys.
            ordered.extend(map.drain(..));
            *map = ordered;
        }
        Value::List(items) => items.iter_mut().for_each(|item| reorder(plan, item)),
        _ => {}
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Ordering {
    async fn parse_query(&self, ctx: &ExtensionContext<'_>, query: &str, variables: &Variables, next: NextParseQuery<'_>) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        *self.document.lock().expect("not poisoned") = Some(Arc::new(document.clone()));
        Ok(document)
    }

    async fn execute(&self, ctx: &ExtensionContext<'_>, operation_name: Option<&str>, next: NextExecute<'_>) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        let plan = self.plan.lock().expect("not poisoned").clone();
        let plan = match plan {
            Some(plan) => Some(plan),
            None => {
                let document = self.document.lock().expect("not poisoned").clone();
                let plan = document.and_then(|document| {
                    let (_, operation) = match operation_name {
                        Some(name) => document.operations.iter().find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
                        None => document.operations.iter().next(),
                    }?;
                    Some(Arc::new(Plan::of(&document, &[&operation.node.selection_set.node])))
                });
                self.plan.lock().expect("not poisoned").clone_from(&plan);
                plan
            }
        };
        if let Some(plan) = plan {
            reorder(&plan, &mut response.data);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object with its keys in the order given (`json!` would sort them).
    fn object(pairs: Vec<(&str, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (Name::new(k), v)).collect())
    }

    #[test]
    fn keys_follow_the_selection_through_aliases_fragments_and_lists() {
        let document = async_graphql::parser::parse_query(
            "query { b: beta { y x } ...F alpha { ... on T { z } w } } fragment F on Q { gamma beta: delta }",
        )
        .unwrap();
        let (_, operation) = document.operations.iter().next().unwrap();
        let plan = Plan::of(&document, &[&operation.node.selection_set.node]);
        let mut data = Value::from_json(serde_json::json!({
            "alpha": [{ "w": 1, "z": 2 }], "beta": 3, "gamma": 4, "b": { "x": 5, "y": 6 }
        }))
        .unwrap();
        reorder(&plan, &mut data);
        assert_eq!(serde_json::to_string(&data).unwrap(), r#"{"b":{"y":6,"x":5},"gamma":4,"beta":3,"alpha":[{"z":2,"w":1}]}"#);
        // Already in order at the top, not below it.
        let alpha = Value::List(vec![object(vec![("w", Value::from(1)), ("z", Value::from(2))])]);
        let b = object(vec![("x", Value::from(5)), ("y", Value::from(6))]);
        let mut data = object(vec![("b", b), ("gamma", Value::from(4)), ("beta", Value::from(3)), ("alpha", alpha)]);
        reorder(&plan, &mut data);
        assert_eq!(serde_json::to_string(&data).unwrap(), r#"{"b":{"y":6,"x":5},"gamma":4,"beta":3,"alpha":[{"z":2,"w":1}]}"#);
    }

    #[test]
    fn a_scalar_object_keeps_its_own_order() {
        let document = async_graphql::parser::parse_query("subscription { events { type payload } }").unwrap();
        let (_, operation) = document.operations.iter().next().unwrap();
        let plan = Plan::of(&document, &[&operation.node.selection_set.node]);
        let payload = object(vec![("z", Value::from(1)), ("a", object(vec![("y", Value::from(2)), ("b", Value::from(3))]))]);
        let mut data = object(vec![("events", object(vec![("payload", payload), ("type", Value::from("T"))]))]);
        reorder(&plan, &mut data);
        assert_eq!(serde_json::to_string(&data).unwrap(), r#"{"events":{"type":"T","payload":{"z":1,"a":{"y":2,"b":3}}}}"#);
    }
}
