//! How much work one operation may ask for, checked before anything runs.
//!
//! Cost is async-graphql's complexity: 1 per field, and a connection field costs its page size
//! (`first`, default 50, at most 500) times what each item selects ([`page_cost`]). Depth is
//! the nesting of selections. Root fields (aliases included) are counted apart, since each is
//! a separate use case: a login, a sign-up, an account's page. Before any of that, the document
//! itself is bounded ([`MAX_DOCUMENT_BYTES`], [`MAX_DOCUMENT_NODES`]): validation's work and its
//! error list grow with the document, and a few hundred kilobytes of unknown fields would
//! otherwise cost seconds of CPU and a many-megabyte answer. An operation over any limit is
//! refused whole with `extensions.code` [`TOO_COMPLEX`] and nothing runs.

use super::connection::{DEFAULT_FIRST, MAX_FIRST};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::Positioned;
use async_graphql::{ErrorExtensionValues, Response, ServerError, ServerResult};

/// The `extensions.code` of an operation refused for its size.
pub const TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
/// Largest cost: e.g. 2,000 rows of 10 fields each.
pub const MAX_COMPLEXITY: usize = 20_000;
/// Deepest nesting of selections.
pub const MAX_DEPTH: usize = 16;
/// Most root fields (aliases included) in one operation.
pub const MAX_ROOT_FIELDS: usize = 20;
/// Longest document, in bytes (GraphiQL's introspection query is about 2 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024;
/// Most fields, fragment spreads, inline fragments, directives and variable definitions in one
/// document, counted before validation.
pub const MAX_DOCUMENT_NODES: usize = 2_000;

/// The cost of a connection field: its page size times what each item costs, plus itself.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    // Negative or absurd `first` values are refused by the resolver; cost them as capped.
    let size = first.map_or(DEFAULT_FIRST, |n| i64::from(n).clamp(1, MAX_FIRST)) as usize;
    size.saturating_mul(child_complexity).saturating_add(1)
}

fn too_complex(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", TOO_COMPLEX);
    error.extensions = Some(extensions);
    error
}

/// Root fields of `set`, following fragments (every operation counts: only one runs, but
/// counting all is simpler and no honest document has many).
fn root_fields(document: &ExecutableDocument, set: &SelectionSet, budget: usize) -> usize {
    let mut count = 0;
    for selection in &set.items {
        if count > budget {
            break;
        }
        count += match &selection.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(fragment) => root_fields(document, &fragment.node.selection_set.node, budget - count),
            // Fragment cycles are refused later by validation; `budget` stops the walk first.
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| root_fields(document, &f.node.selection_set.node, budget - count)),
        };
    }
    count
}

/// The nodes of `set` (fields, spreads, inline fragments, their directives), without following
/// spreads: each fragment's own nodes are counted once, with its definition.
fn nodes(set: &Positioned<SelectionSet>) -> usize {
    set.node.items.iter().fold(0usize, |n, selection| {
        n.saturating_add(match &selection.node {
            Selection::Field(f) => 1 + f.node.directives.len() + f.node.arguments.len() + nodes(&f.node.selection_set),
            Selection::InlineFragment(f) => 1 + f.node.directives.len() + nodes(&f.node.selection_set),
            Selection::FragmentSpread(f) => 1 + f.node.directives.len(),
        })
    })
}

/// Every node of `document`, see [`MAX_DOCUMENT_NODES`].
fn document_nodes(document: &ExecutableDocument) -> usize {
    let operations = document.operations.iter().map(|(_, op)| {
        op.node.variable_definitions.len() + op.node.directives.len() + nodes(&op.node.selection_set)
    });
    let fragments = document.fragments.values().map(|f| f.node.directives.len() + nodes(&f.node.selection_set));
    operations.chain(fragments).fold(0usize, usize::saturating_add)
}

/// The limits on the document's text, checked before it is parsed: its length.
pub(super) fn check_text(query: &str) -> ServerResult<()> {
    if query.len() > MAX_DOCUMENT_BYTES {
        return Err(too_complex(format!("the document is {} bytes (at most {MAX_DOCUMENT_BYTES})", query.len())));
    }
    Ok(())
}

/// The limits on the parsed document, checked before validation: its nodes and each
/// operation's root fields.
pub(super) fn check_document(document: &ExecutableDocument) -> ServerResult<()> {
    let count = document_nodes(document);
    if count > MAX_DOCUMENT_NODES {
        return Err(too_complex(format!("the document has {count} fields, fragments, directives and variables (at most {MAX_DOCUMENT_NODES})")));
    }
    for (_, operation) in document.operations.iter() {
        let count = root_fields(document, &operation.node.selection_set.node, MAX_ROOT_FIELDS);
        if count > MAX_ROOT_FIELDS {
            return Err(too_complex(format!("an operation may select at most {MAX_ROOT_FIELDS} root fields (aliases included)")));
        }
    }
    Ok(())
}

/// Gives validation's refusals for cost and depth (async-graphql's own checks, set up with
/// [`MAX_COMPLEXITY`] and [`MAX_DEPTH`] in `graphql::schema`) this module's code and words.
pub(super) fn name_refusals(response: &mut Response) {
    for error in response.errors.iter_mut().filter(|e| e.path.is_empty()) {
        let message = match error.message.as_str() {
            "Query is too complex." => format!("the query costs more than {MAX_COMPLEXITY}: ask for smaller pages (`first`) or fewer fields"),
            "Query is nested too deep." => format!("the query nests more than {MAX_DEPTH} levels"),
            _ => continue,
        };
        *error = too_complex(message);
    }
}

#[cfg(test)]
mod tests {
    use super::page_cost;

    #[test]
    fn pages_cost_their_size_times_their_items() {
        assert_eq!(page_cost(Some(500), 3), 1_501);
        assert_eq!(page_cost(None, 3), 151);
        assert_eq!(page_cost(Some(1_000_000), 1), 501);
        assert_eq!(page_cost(Some(-5), 2), 3);
    }
}
