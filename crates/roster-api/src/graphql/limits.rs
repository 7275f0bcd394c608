//! How much work one operation may ask for, checked before anything runs.
//!
//! Cost is async-graphql's complexity: 1 per field, and a connection field costs its page size
//! (`first`, default 50, at most 500) times what each item selects ([`page_cost`]). Depth is
//! the nesting of selections. Root fields (aliases included) are counted apart, since each is
//! a separate use case: a login, a sign-up, an account's page. Before any of that, the document
//! itself is bounded ([`MAX_DOCUMENT_BYTES`], [`MAX_DOCUMENT_NODES`]): validation's work and its
//! error list grow with the document, and a few hundred kilobytes of unknown fields would
//! otherwise cost seconds of CPU and a many-megabyte answer. So is what its fragments expand to
//! ([`MAX_EXPANDED_SELECTIONS`], [`MAX_NESTING`], no fragment within itself): these checks run
//! on the parsed document before any of async-graphql's, which follow fragments unbounded. An
//! operation over any limit is refused whole with `extensions.code` [`TOO_COMPLEX`] and nothing
//! runs.

use super::connection::{DEFAULT_FIRST, MAX_FIRST};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned};
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
/// Most selections (fields, fragment spreads, inline fragments) a document's operations come
/// to with their fragments followed, counted before validation: async-graphql follows them
/// without a bound (its recursion check, the cost and depth visitors, execution), so a few
/// fragments that each spread the next several times would cost exponential time before any
/// limit refused them. Far above any document within [`MAX_COMPLEXITY`] (each of its fields
/// costs at least 1).
pub const MAX_EXPANDED_SELECTIONS: usize = 50_000;
/// Deepest nesting of selections and fragments, counted like [`MAX_EXPANDED_SELECTIONS`]
/// (fields alone may nest [`MAX_DEPTH`] deep; async-graphql refuses past 32 anyway).
pub const MAX_NESTING: usize = 64;

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
            // Acyclic: `check_document` refuses fragment cycles before counting.
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

/// Walks `set` with its fragments followed, spending one of `budget` per selection; `active`:
/// the fragments being followed. Refuses a fragment spread within itself (`VALIDATION`, as
/// validation would, before async-graphql's walks follow the cycle), and a walk past `budget`
/// or [`MAX_NESTING`] ([`TOO_COMPLEX`]).
fn expand<'a>(document: &'a ExecutableDocument, set: &'a SelectionSet, budget: &mut usize, active: &mut Vec<&'a Name>, nesting: usize) -> ServerResult<()> {
    if nesting > MAX_NESTING {
        return Err(too_complex(format!("the query nests selections and fragments more than {MAX_NESTING} deep")));
    }
    for selection in &set.items {
        *budget = budget.checked_sub(1).ok_or_else(|| too_complex(format!("the document's fragments expand to more than {MAX_EXPANDED_SELECTIONS} selections")))?;
        match &selection.node {
            Selection::Field(field) => expand(document, &field.node.selection_set.node, budget, active, nesting + 1)?,
            Selection::InlineFragment(fragment) => expand(document, &fragment.node.selection_set.node, budget, active, nesting + 1)?,
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if active.contains(&name) {
                    let mut error = ServerError::new(format!("Cannot spread fragment \"{name}\" within itself"), Some(spread.pos));
                    error.extensions.get_or_insert_with(Default::default).set("code", "VALIDATION");
                    return Err(error);
                }
                if let Some(fragment) = document.fragments.get(name) {
                    active.push(name);
                    expand(document, &fragment.node.selection_set.node, budget, active, nesting + 1)?;
                    active.pop();
                }
            }
        }
    }
    Ok(())
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

/// The limits on the parsed document, checked before validation: its nodes, what its
/// operations expand to through fragments (and fragment cycles), and each operation's root
/// fields.
pub(super) fn check_document(document: &ExecutableDocument) -> ServerResult<()> {
    let count = document_nodes(document);
    if count > MAX_DOCUMENT_NODES {
        return Err(too_complex(format!("the document has {count} fields, fragments, directives and variables (at most {MAX_DOCUMENT_NODES})")));
    }
    let mut budget = MAX_EXPANDED_SELECTIONS;
    for (_, operation) in document.operations.iter() {
        expand(document, &operation.node.selection_set.node, &mut budget, &mut Vec::new(), 0)?;
    }
    // `root_fields` may follow fragments now: they are acyclic.
    for (_, operation) in document.operations.iter() {
        let count = root_fields(document, &operation.node.selection_set.node, MAX_ROOT_FIELDS);
        if count > MAX_ROOT_FIELDS {
            return Err(too_complex(format!("an operation may select at most {MAX_ROOT_FIELDS} root fields (aliases included)")));
        }
    }
    Ok(())
}

/// The longest message a syntax error keeps, in characters (what the parser expected; the
/// place is in `locations`).
const MAX_SYNTAX_MESSAGE: usize = 200;

/// A parse error in a few words: `syntax error at line L, column C: expected …`. The parser's
/// own message quotes the whole line and draws a caret under it, so a one-line document of
/// 30,000 characters was answered with 60,000 (the line, then as many spaces).
pub(super) fn concise_syntax_error(mut error: ServerError) -> ServerError {
    if let Some((_, expected)) = error.message.strip_prefix(" --> ").and_then(|m| m.rsplit_once("\n  = ")) {
        let place = error.locations.first().map(|at| format!(" at line {}, column {}", at.line, at.column)).unwrap_or_default();
        let expected: String = expected.chars().take(MAX_SYNTAX_MESSAGE).collect();
        error.message = format!("syntax error{place}: {expected}");
    } else if error.message.chars().count() > MAX_SYNTAX_MESSAGE {
        error.message = error.message.chars().take(MAX_SYNTAX_MESSAGE).chain(['…']).collect();
    }
    error
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
