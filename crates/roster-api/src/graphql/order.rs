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
        Arc::new(Ordering { document: Mutex::default() })
    }
}

struct Ordering {
    /// The request's parsed document (a subscription's serves every event it delivers).
    document: Mutex<Option<Arc<ExecutableDocument>>>,
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

/// Reorders `value` (the answer to `sets`, merged) in place.
fn reorder(document: &ExecutableDocument, sets: &[&SelectionSet], value: &mut Value) {
    match value {
        Value::Object(map) => {
            let mut selected = IndexMap::new();
            for set in sets {
                keys(document, set, &mut selected);
            }
            let mut ordered = IndexMap::with_capacity(map.len());
            for (key, children) in selected {
                if let Some(mut child) = map.shift_remove(&key) {
                    reorder(document, &children, &mut child);
                    ordered.insert(key, child);
                }
            }
            // Nothing else should be there; whatever is stays, after the selected keys.
            ordered.extend(map.drain(..));
            *map = ordered;
        }
        Value::List(items) => items.iter_mut().for_each(|item| reorder(document, sets, item)),
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
        let document = self.document.lock().expect("not poisoned").clone();
        if let Some(document) = document {
            let operation = match operation_name {
                Some(name) => document.operations.iter().find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
                None => document.operations.iter().next(),
            };
            if let Some((_, operation)) = operation {
                reorder(&document, &[&operation.node.selection_set.node], &mut response.data);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_selection_through_aliases_fragments_and_lists() {
        let document = async_graphql::parser::parse_query(
            "query { b: beta { y x } ...F alpha { ... on T { z } w } } fragment F on Q { gamma beta: delta }",
        )
        .unwrap();
        let data = Value::from_json(serde_json::json!({
            "alpha": [{ "w": 1, "z": 2 }], "beta": 3, "gamma": 4, "b": { "x": 5, "y": 6 }
        }))
        .unwrap();
        let mut data = data;
        let (_, operation) = document.operations.iter().next().unwrap();
        reorder(&document, &[&operation.node.selection_set.node], &mut data);
        let text = serde_json::to_string(&data).unwrap();
        assert_eq!(text, r#"{"b":{"y":6,"x":5},"gamma":4,"beta":3,"alpha":[{"z":2,"w":1}]}"#);
    }
}
