//! Rows in PostgreSQL's binary `COPY … FROM STDIN (FORMAT binary)` format, for bulk loads: no
//! escaping, and no text parsing on the server but for `jsonb`. Values are encoded as sqlx
//! binds them (timestamps truncated to microseconds), so a bulk load stores exactly what the
//! projections' multi-row statements store.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// The file header: signature, flags, header-extension length.
pub(crate) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The file trailer: a tuple field count of -1.
pub(crate) const TRAILER: &[u8] = &[0xff, 0xff];

/// One table's bulk load: `COPY {table} ({columns}) FROM STDIN (FORMAT binary)` of `rows`.
pub(crate) struct Load {
    pub table: &'static str,
    pub columns: &'static str,
    pub rows: Rows,
}

impl Load {
    /// The load of a per-account counter table (`member_counts`, `invitation_counts`):
    /// `(account_id, {key}, n)` for every non-zero count of the rows a rebuild loads, so the
    /// counters start equal to the rows, as the live projection keeps them (see `crate::counted`).
    pub(crate) fn counts<'a>(table: &'static str, columns: &'static str, keys: impl Iterator<Item = (Uuid, &'a str)>) -> Self {
        let mut counts: std::collections::BTreeMap<(Uuid, &str), i64> = std::collections::BTreeMap::new();
        for key in keys {
            *counts.entry(key).or_default() += 1;
        }
        Self::from_counts(table, columns, counts)
    }

    /// The load of a per-account counter table from counts already made (`audit_counts`,
    /// counted as the audit log's rows stream by).
    pub(crate) fn from_counts<'a>(table: &'static str, columns: &'static str, counts: impl IntoIterator<Item = ((Uuid, &'a str), i64)>) -> Self {
        let mut rows = Rows::with_capacity(4096);
        for ((account_id, key), n) in counts {
            rows.tuple(3).uuid(account_id).text(key).int8(n);
        }
        Load { table, columns, rows }
    }
}

/// A buffer of binary `COPY` tuples.
pub(crate) struct Rows(pub Vec<u8>);

impl Rows {
    /// An empty buffer with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        Self(Vec::with_capacity(bytes))
    }

    /// Starts a tuple of `fields` fields; the caller then writes exactly that many.
    pub fn tuple(&mut self, fields: i16) -> &mut Self {
        self.0.extend_from_slice(&fields.to_be_bytes());
        self
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// A SQL `NULL`.
    pub fn null(&mut self) -> &mut Self {
        self.0.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    /// An `int8`.
    pub fn int8(&mut self, v: i64) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    /// An `int4`.
    pub fn int4(&mut self, v: i32) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    /// A `uuid`.
    pub fn uuid(&mut self, v: Uuid) -> &mut Self {
        self.field(v.as_bytes())
    }

    /// A `uuid` or `NULL`.
    pub fn opt_uuid(&mut self, v: Option<Uuid>) -> &mut Self {
        match v {
            Some(v) => self.uuid(v),
            None => self.null(),
        }
    }

    /// A `timestamptz`: microseconds since 2000-01-01 UTC, truncated as sqlx truncates.
    pub fn timestamptz(&mut self, v: DateTime<Utc>) -> &mut Self {
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).expect("date").and_hms_opt(0, 0, 0).expect("time");
        let micros = (v.naive_utc() - epoch).num_microseconds().expect("timestamp within ±292,000 years");
        self.int8(micros)
    }

    /// A `timestamptz` or `NULL`.
    pub fn opt_timestamptz(&mut self, v: Option<DateTime<Utc>>) -> &mut Self {
        match v {
            Some(v) => self.timestamptz(v),
            None => self.null(),
        }
    }

    /// A `text`.
    pub fn text(&mut self, v: &str) -> &mut Self {
        self.field(v.as_bytes())
    }

    /// A `text` or `NULL`.
    pub fn opt_text(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    /// A `jsonb`: format version 1, then the JSON text.
    pub fn jsonb(&mut self, v: &serde_json::Value) -> &mut Self {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0, 0, 0, 1]);
        serde_json::to_writer(&mut self.0, v).expect("a Value serialises");
        let len = (self.0.len() - start - 4) as i32;
        self.0[start..start + 4].copy_from_slice(&len.to_be_bytes());
        self
    }
}
