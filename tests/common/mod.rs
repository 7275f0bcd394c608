//! Kept only for `benches/commands.rs`, which loads this file by `#[path]` (benches/ is
//! outside this change). The helpers live in `tests/api/helpers.rs`; delete this file once
//! the bench points there.
// The bench uses a few helpers; the rest serve the `api` test binary.
#![allow(dead_code)]

#[path = "../api/helpers.rs"]
mod helpers;

pub use helpers::*;
