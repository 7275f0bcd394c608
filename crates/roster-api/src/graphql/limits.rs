//! How much work one operation may ask for, checked before anything runs.
//!
//! Cost is async-graphql's complexity: 1 per field, and a connection field costs its page size
//! (`first`, default 50, at most 500) times what each item selects ([`page_cost`]). Depth is
//! the nesting of selections. Root fields (aliases included) are counted apart, since each is
//! a separate use case: a login, a sign-up, an account's page. An operation over any limit is
//! refused whole with `extensions.code` [`TOO_COMPLEX`] and nothing runs.

use super::connection::{DEFAULT_FIRST, MAX_FIRST};
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, ServerError, ServerResult, ValidationResult, Variables};
use std::sync::Arc;

/// The `extensions.code` of an operation refused for its size.
pub const TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
/// Largest cost: e.g. 2,000 rows of 10 fields each.
pub const MAX_COMPLEXITY: usize = 20_000;
/// Deepest nesting of selections.
pub const MAX_DEPTH: usize = 16;
/// Most root fields (aliases included) in one operation.
pub const MAX_ROOT_FIELDS: usize = 20;

/// The cost of a connection field: its page size times what each item costs, plus itself.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    // Negative or absurd `first` values are refused by the resolver; cost them as capped.
    let size = first.map_or(DEFAULT_FIRST, |n| i64::from(n).clamp(1, MAX_FIRST)) as usize;
    size.saturating_mul(child_complexity).saturating_add(1)
}

/// The extension that enforces this module's limits on every operation.
pub struct Limits;

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension)
    }
}

struct LimitsExtension;

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

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(&self, ctx: &ExtensionContext<'_>, query: &str, variables: &Variables, next: NextParseQuery<'_>) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        for (_, operation) in document.operations.iter() {
            let count = root_fields(&document, &operation.node.selection_set.node, MAX_ROOT_FIELDS);
            if count > MAX_ROOT_FIELDS {
                return Err(too_complex(format!("an operation may select at most {MAX_ROOT_FIELDS} root fields (aliases included)")));
            }
        }
        Ok(document)
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.complexity > MAX_COMPLEXITY {
            let message = format!("the query costs {} (at most {MAX_COMPLEXITY}): ask for smaller pages (`first`) or fewer fields", result.complexity);
            return Err(vec![too_complex(message)]);
        }
        if result.depth > MAX_DEPTH {
            return Err(vec![too_complex(format!("the query nests {} levels (at most {MAX_DEPTH})", result.depth))]);
        }
        Ok(result)
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
