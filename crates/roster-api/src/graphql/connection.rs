//! Relay connections: `edges { cursor node }`, `nodes`, `pageInfo`, `totalCount`.
//! `first` defaults to 50 and is capped at 500 (contract, "Connections"). List cursors are the
//! item's offset in the list; event and audit cursors are global positions.

use crate::error::ApiError;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, SimpleObject};

/// Default page size.
pub const DEFAULT_FIRST: i64 = 50;
/// Largest page size; larger requests are capped.
pub const MAX_FIRST: i64 = 500;

/// The extra field every connection has.
#[derive(SimpleObject)]
pub struct TotalCount {
    /// How many items match, over all pages.
    pub total_count: i64,
}

/// A Relay connection with `totalCount`.
pub type Page<T> = Connection<String, T, TotalCount>;

/// Checks `first` (default 50, capped at 500).
///
/// Errors: `VALIDATION` on `first` for a negative value.
pub fn page_size(first: Option<i32>) -> Result<i64, ApiError> {
    match first {
        None => Ok(DEFAULT_FIRST),
        Some(n) if n < 0 => Err(ApiError::validation("first", "must not be negative")),
        Some(n) => Ok(i64::from(n).min(MAX_FIRST)),
    }
}

/// Reads an `after` cursor as a non-negative number (offset or position); none is `None`.
///
/// Errors: `VALIDATION` on `after` for anything else.
pub fn cursor(after: Option<&str>) -> Result<Option<i64>, ApiError> {
    after
        .map(|a| a.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| ApiError::validation("after", "is not a valid cursor")))
        .transpose()
}

/// Offset and limit for a list paged by offset cursors.
pub fn offset_page(first: Option<i32>, after: Option<String>) -> Result<(i64, i64), ApiError> {
    let limit = page_size(first)?;
    let offset = cursor(after.as_deref())?.map_or(0, |last| last + 1);
    Ok((offset, limit))
}

/// A page of `items` that start at `offset` in a list of `total`.
pub fn offset_connection<T: OutputType>(items: Vec<T>, offset: i64, total: i64) -> Page<T> {
    let end = offset + items.len() as i64;
    let mut page = Connection::with_additional_fields(offset > 0, end < total, TotalCount { total_count: total });
    page.edges.extend(items.into_iter().enumerate().map(|(i, item)| Edge::new((offset + i as i64).to_string(), item)));
    page
}
