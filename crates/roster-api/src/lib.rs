//! Roster's GraphQL API on axum.
//!
//! Requests flow one way: [`http`] extracts the caller and request metadata; the resolvers in
//! [`graphql`] make one call each to the application layer [`app`], which runs commands (load
//! aggregate → decide → append → wait for the projections) and reads the read models.
//! [`startup::Application`] is the one way to start a server: `src/main.rs` of the `roster`
//! binary, the tests and the benchmark all use it.

#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod error;
pub mod graphql;
pub mod http;
pub mod lane;
pub mod mail;
pub mod media;
pub mod pages;
pub mod rate_limit;
pub mod secret;
pub mod serve;
pub mod startup;
pub mod telemetry;
pub mod websocket;

pub use app::{App, RequestContext};
pub use config::Config;
pub use error::{ApiError, ApiResult};
pub use startup::{Application, DatabaseSettings, Settings};
