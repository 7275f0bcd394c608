//! Response fields in the order the query selected them (GraphQL spec, "Objects": "ordered by
//! the order in which they appear in the query"). async-graphql 7 resolves the fields of a
//! selection set concurrently and keeps them in the order they finish (async-graphql#612), so
//! `account { members invitations name }` could answer `name, members, invitations`;
//! `graphql::gate` puts each object's keys back in selection order after execution with the
//! operation's [`Plan`] (aliases, merged fields and fragments included; a field `@skip`ped or
//! never resolved stays absent).

use super::limits::MAX_NESTING;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{indexmap::IndexMap, Name, Value};

/// The response keys a selection answers, in selection order, each with the plan of what it
/// selects in turn (empty: a leaf or a scalar, such as a JSON payload, left as it is).
#[derive(Debug, Default)]
pub(super) struct Plan {
    keys: Vec<(Name, Plan)>,
}

/// Most selections a plan visits, fragments expanded; a document past it (or nesting deeper than
/// [`MAX_NESTING`], as a fragment cycle does) is answered as execution left it. The gate refuses
/// such documents before making a plan (`limits::check_document`, the same bounds); the plan
/// keeps them so it never depends on that order.
const MAX_PLAN_KEYS: usize = super::limits::MAX_EXPANDED_SELECTIONS;

impl Plan {
    /// The plan of the operation called `name` in `document` (without a name: its only one);
    /// `None` when there is no such operation or the document is past the plan's bounds.
    pub(super) fn for_operation(document: &ExecutableDocument, name: Option<&str>) -> Option<Plan> {
        let operation = super::operation(document, name)?;
        Plan::of(document, &[&operation.node.selection_set.node], &mut { MAX_PLAN_KEYS }, 0)
    }

    /// The plan of the answer to `sets` (merged), spending `budget` keys.
    fn of(document: &ExecutableDocument, sets: &[&SelectionSet], budget: &mut usize, nesting: usize) -> Option<Self> {
        if nesting > MAX_NESTING {
            return None;
        }
        let mut selected = IndexMap::new();
        for set in sets {
            keys(document, set, &mut selected, budget, nesting)?;
        }
        let keys = selected.into_iter().map(|(key, children)| Some((key, Plan::of(document, &children, budget, nesting + 1)?))).collect::<Option<_>>()?;
        Some(Self { keys })
    }
}

/// The selection sets each response key of `set` answers, in order of first appearance,
/// through fragments, spending `budget` selections; `None` past it or past [`MAX_NESTING`]
/// (a fragment that spreads itself).
fn keys<'a>(document: &'a ExecutableDocument, set: &'a SelectionSet, out: &mut IndexMap<Name, Vec<&'a SelectionSet>>, budget: &mut usize, nesting: usize) -> Option<()> {
    if nesting > MAX_NESTING {
        return None;
    }
    for selection in &set.items {
        *budget = budget.checked_sub(1)?;
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.alias.as_ref().unwrap_or(&field.node.name).node.clone();
                out.entry(key).or_default().push(&field.node.selection_set.node);
            }
            Selection::InlineFragment(fragment) => keys(document, &fragment.node.selection_set.node, out, budget, nesting + 1)?,
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    keys(document, &fragment.node.selection_set.node, out, budget, nesting + 1)?;
                }
            }
        }
    }
    Some(())
}

/// The plan of each of `map`'s keys, in the map's order, if they already follow `plan`'s order
/// (the usual case: most fields finish in the order they were started).
fn in_order<'p>(plan: &'p Plan, map: &IndexMap<Name, Value>) -> Option<Vec<&'p Plan>> {
    let mut planned = plan.keys.iter();
    map.keys().map(|key| planned.find(|(k, _)| k == key).map(|(_, child)| child)).collect()
}

/// Reorders `value` (the answer `plan` describes) in place.
pub(super) fn reorder(plan: &Plan, value: &mut Value) {
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
        let plan = Plan::for_operation(&document, None).unwrap();
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
    fn a_document_past_the_bounds_has_no_plan() {
        let cycle = async_graphql::parser::parse_query("query { ...F } fragment F on Q { a ...F }").unwrap();
        assert!(Plan::for_operation(&cycle, None).is_none());
        // 2^40 selections once expanded, from a few dozen in the text.
        let mut text = String::from("query { ...F0 } ");
        for i in 0..40 {
            text += &format!("fragment F{i} on Q {{ ...F{n} ...F{n} }} ", n = i + 1);
        }
        text += "fragment F40 on Q { a }";
        let wide = async_graphql::parser::parse_query(&text).unwrap();
        assert!(Plan::for_operation(&wide, None).is_none());
        let named = async_graphql::parser::parse_query("query A { a } query B { b }").unwrap();
        assert!(Plan::for_operation(&named, Some("B")).is_some());
        assert!(Plan::for_operation(&named, None).is_none());
    }

    #[test]
    fn a_scalar_object_keeps_its_own_order() {
        let document = async_graphql::parser::parse_query("subscription { events { type payload } }").unwrap();
        let plan = Plan::for_operation(&document, None).unwrap();
        let payload = object(vec![("z", Value::from(1)), ("a", object(vec![("y", Value::from(2)), ("b", Value::from(3))]))]);
        let mut data = object(vec![("events", object(vec![("payload", payload), ("type", Value::from("T"))]))]);
        reorder(&plan, &mut data);
        assert_eq!(serde_json::to_string(&data).unwrap(), r#"{"events":{"type":"T","payload":{"z":1,"a":{"y":2,"b":3}}}}"#);
    }
}
