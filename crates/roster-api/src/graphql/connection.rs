//! Relay connections: `edges { cursor node }`, `nodes`, `pageInfo`, `totalCount`.
//! `first` defaults to 50 and is capped at 500 (contract, "Connections"). Member and invitation
//! cursors are keyset cursors ([`ListCursor`]), audit-log cursors the position of an entry
//! ([`LogCursor`]); both still read the offsets earlier versions handed out. Event cursors are
//! global positions.
//!
//! Every connection resolver reads its paging arguments through [`PageArgs`] (or [`Cursor`] and
//! [`PageSize`] alone), so that no argument reaches the application or SQL unchecked: a cursor
//! beyond what a list can hold once answered `INTERNAL` after wrapping to a negative `OFFSET`
//! (issue 10). Whatever the read models' paging becomes, cursors are checked here first.

use crate::error::ApiError;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, SimpleObject};
use chrono::{Datelike, DateTime, Utc};
use roster_projections::queries::Window;
use uuid::Uuid;

/// Default page size.
pub const DEFAULT_FIRST: i64 = 50;
/// Largest page size; larger requests are capped.
pub const MAX_FIRST: i64 = 500;
/// Largest cursor: one less than `i64::MAX`, so that the offset or position after it still
/// fits the `BIGINT` it is compared with.
pub const MAX_CURSOR: i64 = i64::MAX - 1;

/// The extra field every connection has.
#[derive(SimpleObject)]
pub struct TotalCount {
    /// How many items match, over all pages.
    pub total_count: i64,
}

/// A Relay connection with `totalCount`.
pub type Page<T> = Connection<String, T, TotalCount>;

/// A checked page size (`first`): 0 to [`MAX_FIRST`]; [`DEFAULT_FIRST`] when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(i64);

impl PageSize {
    /// Reads `first`: absent is [`DEFAULT_FIRST`], above [`MAX_FIRST`] is capped (contract).
    /// GraphQL's `Int` already refuses values outside 32 bits (answered `VALIDATION` by `http`).
    ///
    /// Errors: `VALIDATION` on `first` for a negative value.
    pub fn parse(first: Option<i32>) -> Result<Self, ApiError> {
        match first {
            None => Ok(Self(DEFAULT_FIRST)),
            Some(n) if n < 0 => Err(ApiError::validation("first", "must not be negative")),
            Some(n) => Ok(Self(i64::from(n).min(MAX_FIRST))),
        }
    }

    /// The number of items to return.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A checked cursor: a decimal string of ASCII digits (no sign, no space) naming a number from
/// 0 to [`MAX_CURSOR`] — an offset in a list, or a global event position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(i64);

impl Cursor {
    /// Parses the cursor argument `field` (e.g. `after`).
    ///
    /// Errors: `VALIDATION` on `field` for anything but digits, a leading zero, or a number above
    /// [`MAX_CURSOR`].
    pub fn parse(raw: &str, field: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::validation(field, "is not a valid cursor: use a cursor from a previous page");
        // Digits only, without a leading zero: the one spelling of each number.
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) || (raw.len() > 1 && raw.starts_with('0')) {
            return Err(invalid());
        }
        match raw.parse::<i64>() {
            Ok(n) if n <= MAX_CURSOR => Ok(Self(n)),
            _ => Err(invalid()),
        }
    }

    /// Parses an optional cursor argument; absent is `None`.
    ///
    /// Errors: as [`Cursor::parse`].
    pub fn parse_optional(raw: Option<&str>, field: &str) -> Result<Option<Self>, ApiError> {
        raw.map(|raw| Self::parse(raw, field)).transpose()
    }

    /// The number the cursor names.
    pub fn get(self) -> i64 {
        self.0
    }

    /// The offset or position just after this cursor; cannot overflow (see [`MAX_CURSOR`]).
    pub fn next(self) -> i64 {
        self.0 + 1
    }
}

/// The checked paging arguments of a connection: `first` and `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageArgs {
    /// How many items to return.
    pub first: PageSize,
    /// The cursor of the last item already seen, if any.
    pub after: Option<Cursor>,
}

impl PageArgs {
    /// Checks `first` and `after`.
    ///
    /// Errors: `VALIDATION` on `first` or `after`, as [`PageSize::parse`] and [`Cursor::parse`].
    pub fn parse(first: Option<i32>, after: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self { first: PageSize::parse(first)?, after: Cursor::parse_optional(after, "after")? })
    }

    /// How many items to return.
    pub fn limit(&self) -> i64 {
        self.first.get()
    }
}

/// A checked `after` of a member or invitation list: the ordering key of the last item seen
/// (its time and id), so the next page is found by the list's index wherever it is — page 1,000
/// costs what page 1 costs, and items added meanwhile do not shift it (issue 9, item 3).
/// Offsets (a decimal cursor, what earlier versions handed out) are still read.
///
/// Format (opaque to clients): `k<microseconds since 1970>_<uuid>`, or decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListCursor {
    /// An offset cursor: the page starts after the item at this offset.
    Offset(Cursor),
    /// A keyset cursor: the page starts after the item with this time and id.
    Key(DateTime<Utc>, Uuid),
}

impl ListCursor {
    /// Parses the cursor argument `field` (e.g. `after`).
    ///
    /// Errors: `VALIDATION` on `field` for anything [`ListCursor::encode`] or [`Cursor::parse`]
    /// did not make (including a time outside the years 1–9999, and another spelling of a
    /// cursor they make).
    pub fn parse(raw: &str, field: &str) -> Result<Self, ApiError> {
        let Some(key) = raw.strip_prefix('k') else { return Cursor::parse(raw, field).map(Self::Offset) };
        let invalid = || ApiError::validation(field, "is not a valid cursor: use a cursor from a previous page");
        let (micros, id) = key.split_once('_').ok_or_else(invalid)?;
        let well_formed = !micros.is_empty() && micros.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'));
        let micros: i64 = if well_formed { micros.parse().map_err(|_| invalid())? } else { return Err(invalid()) };
        // Years 1–9999: chrono reaches further back than PostgreSQL's timestamps (4713 BC), and
        // no item was made outside them.
        let at = DateTime::from_timestamp_micros(micros).filter(|at| (1..=9999).contains(&at.year())).ok_or_else(invalid)?;
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        // Only the form `encode` writes: one cursor per key (no braced, upper-case or unhyphenated
        // UUID, no leading zero or `-0`), so a cursor's text says which item it names.
        if Self::encode(at, id) != raw {
            return Err(invalid());
        }
        Ok(Self::Key(at, id))
    }

    /// The cursor of an item ordered by `(at, id)`.
    pub fn encode(at: DateTime<Utc>, id: Uuid) -> String {
        format!("k{}_{}", at.timestamp_micros(), id.as_hyphenated())
    }

    /// Where the page after this cursor starts, in the read model's terms.
    pub fn window<I: From<Uuid>>(cursor: Option<Self>) -> Window<(DateTime<Utc>, I)> {
        match cursor {
            None => Window::After(None),
            Some(Self::Offset(c)) => Window::Offset(c.next()),
            Some(Self::Key(at, id)) => Window::After(Some((at, I::from(id)))),
        }
    }
}

/// A cursor of a list paged by key: how it is read and written.
pub trait KeysetCursor: Sized {
    /// The ordering key of an item, which its cursor names.
    type Key;
    /// Parses the cursor argument `field` (e.g. `after`).
    ///
    /// Errors: `VALIDATION` on `field` for anything this cursor's `encode` did not make.
    fn parse(raw: &str, field: &str) -> Result<Self, ApiError>;
    /// The cursor of the item with ordering key `key`.
    fn encode(key: Self::Key) -> String;
}

impl KeysetCursor for ListCursor {
    type Key = (DateTime<Utc>, Uuid);
    fn parse(raw: &str, field: &str) -> Result<Self, ApiError> {
        ListCursor::parse(raw, field)
    }
    fn encode((at, id): (DateTime<Utc>, Uuid)) -> String {
        ListCursor::encode(at, id)
    }
}

/// A checked `after` of the audit log: the position of the last entry seen, so the next page
/// is found by the log's index however deep it is, and entries recorded meanwhile do not shift
/// it. Offsets (a decimal cursor, what earlier versions handed out) are still read.
///
/// Format (opaque to clients): `p<position>`, or decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogCursor {
    /// An offset cursor: the page starts after the entry at this offset.
    Offset(Cursor),
    /// A position cursor: the page starts after the entry at this global position.
    After(Cursor),
}

impl KeysetCursor for LogCursor {
    type Key = i64;
    fn parse(raw: &str, field: &str) -> Result<Self, ApiError> {
        match raw.strip_prefix('p') {
            Some(position) => Cursor::parse(position, field).map(Self::After),
            None => Cursor::parse(raw, field).map(Self::Offset),
        }
    }
    fn encode(position: i64) -> String {
        format!("p{position}")
    }
}

impl LogCursor {
    /// Where the page after this cursor starts, in the read model's terms.
    pub fn window(cursor: Option<Self>) -> Window<i64> {
        match cursor {
            None => Window::After(None),
            Some(Self::Offset(c)) => Window::Offset(c.next()),
            Some(Self::After(c)) => Window::After(Some(c.get())),
        }
    }
}

/// The checked paging arguments of a list paged by key (members, invitations: [`ListCursor`];
/// the audit log: [`LogCursor`]): `first` and `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListArgs<C = ListCursor> {
    /// How many items to return.
    pub first: PageSize,
    /// The cursor of the last item already seen, if any.
    pub after: Option<C>,
}

impl<C: KeysetCursor> ListArgs<C> {
    /// Checks `first` and `after`.
    ///
    /// Errors: `VALIDATION` on `first` or `after`, as [`PageSize::parse`] and the cursor's parse.
    pub fn parse(first: Option<i32>, after: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self { first: PageSize::parse(first)?, after: after.map(|a| C::parse(a, "after")).transpose()? })
    }

    /// Rows to ask the read model for: one more than the page, to learn whether a next page exists.
    pub fn fetch(&self) -> i64 {
        self.first.get() + 1
    }

    /// The page from `rows` (fetched with [`ListArgs::fetch`]) of a list of `total` items: each
    /// row becomes a node by `node`, with the cursor of the ordering key `key` gives it.
    pub fn connection<R, T: OutputType>(&self, mut rows: Vec<R>, total: i64, key: impl Fn(&R) -> C::Key, node: impl Fn(R) -> T) -> Page<T> {
        let has_next = rows.len() as i64 > self.first.get();
        rows.truncate(self.first.get() as usize);
        let mut page = Connection::with_additional_fields(self.after.is_some(), has_next, TotalCount { total_count: total });
        page.edges.extend(rows.into_iter().map(|row| Edge::new(C::encode(key(&row)), node(row))));
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(err: ApiError) -> String {
        match err {
            ApiError::Domain(roster_domain::DomainError::Validation { field, .. }) => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn cursors_are_digits_within_range() {
        assert_eq!(Cursor::parse("0", "after").unwrap().get(), 0);
        assert_eq!(Cursor::parse("9223372036854775806", "after").unwrap().next(), i64::MAX);
        for bad in ["", "-1", "+1", " 1", "1 ", "1e3", "0x10", "00", "007", "9223372036854775807", "99999999999999999999", "١"] {
            assert_eq!(field(Cursor::parse(bad, "after").unwrap_err()), "after", "{bad:?}");
        }
    }

    #[test]
    fn page_size_defaults_caps_and_refuses_negatives() {
        assert_eq!(PageSize::parse(None).unwrap().get(), DEFAULT_FIRST);
        assert_eq!(PageSize::parse(Some(0)).unwrap().get(), 0);
        assert_eq!(PageSize::parse(Some(i32::MAX)).unwrap().get(), MAX_FIRST);
        assert_eq!(field(PageSize::parse(Some(i32::MIN)).unwrap_err()), "first");
    }

    #[test]
    fn page_args_read_the_position_after_which_a_page_starts() {
        let args = PageArgs::parse(Some(10), Some("4")).unwrap();
        assert_eq!((args.after.map(Cursor::get), args.limit()), (Some(4), 10));
        assert_eq!(PageArgs::parse(None, None).unwrap().after, None);
    }

    #[test]
    fn log_cursors_round_trip_positions_and_still_read_offsets() {
        let parse = |raw: &str| <LogCursor as KeysetCursor>::parse(raw, "after");
        let encoded = <LogCursor as KeysetCursor>::encode(42);
        assert_eq!(LogCursor::window(Some(parse(&encoded).unwrap())), Window::After(Some(42)));
        assert_eq!(LogCursor::window(Some(parse("9").unwrap())), Window::Offset(10), "an offset cursor of an earlier version");
        assert_eq!(LogCursor::window(None), Window::After(None));
        for bad in ["p", "p-1", "p9223372036854775807", "q1", "p1x", ""] {
            assert_eq!(field(parse(bad).unwrap_err()), "after", "{bad:?}");
        }
    }

    #[test]
    fn list_cursors_round_trip_keys_and_still_read_offsets() {
        let at = DateTime::from_timestamp_micros(1_764_560_000_123_456).unwrap();
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let encoded = ListCursor::encode(at, id);
        assert_eq!(ListCursor::parse(&encoded, "after").unwrap(), ListCursor::Key(at, id));
        let before_1970 = DateTime::from_timestamp_micros(-5).unwrap();
        assert_eq!(ListCursor::parse(&ListCursor::encode(before_1970, id), "after").unwrap(), ListCursor::Key(before_1970, id));
        assert_eq!(ListCursor::parse("7", "after").unwrap(), ListCursor::Offset(Cursor::parse("7", "after").unwrap()));
        let window: Window<(DateTime<Utc>, Uuid)> = ListCursor::window(Some(ListCursor::parse("7", "after").unwrap()));
        assert_eq!(window, Window::Offset(8));
        assert_eq!(ListCursor::window::<Uuid>(None), Window::After(None));
        for bad in ["k", "k_", "k1", "k1_", "k-_x", "k+1_0123", "k99999999999999999999_00000000-0000-0000-0000-000000000000", "k-300000000000000000_00000000-0000-0000-0000-000000000000", "kk1_x", "-1", "07"] {
            assert_eq!(field(ListCursor::parse(bad, "after").unwrap_err()), "after", "{bad:?}");
        }
        // Other spellings of the encoded key name the same item but are not what encode makes.
        let micros = at.timestamp_micros();
        for other in [
            format!("k{micros}_{{{}}}", id.as_hyphenated()),
            format!("k{micros}_{}", id.as_hyphenated().to_string().to_uppercase()),
            format!("k{micros}_{}", id.as_simple()),
            format!("k0{micros}_{}", id.as_hyphenated()),
            format!("k-0_{}", id.as_hyphenated()),
        ] {
            assert_eq!(field(ListCursor::parse(&other, "after").unwrap_err()), "after", "{other:?}");
        }
    }
}
