//! Where and how `roster` logs: to stderr, as text (coloured on a terminal) or, with
//! `ROSTER_LOG_FORMAT=json`, one JSON object per line for log collectors.

use anyhow::{bail, Result};
use tracing_subscriber::EnvFilter;

/// The environment variable that picks the log format: `text` (default) or `json`.
pub const FORMAT_VAR: &str = "ROSTER_LOG_FORMAT";

/// Installs the global subscriber: filter from `RUST_LOG` (default `info,sqlx=warn`), format
/// from [`FORMAT_VAR`]; whether the format is JSON.
///
/// Errors: a [`FORMAT_VAR`] other than `text`, `json` or empty, naming the variable.
pub fn init() -> Result<bool> {
    let json = match std::env::var(FORMAT_VAR).unwrap_or_default().to_ascii_lowercase().as_str() {
        "" | "text" => false,
        "json" => true,
        other => bail!("{FORMAT_VAR}={other:?} is not a log format: set {FORMAT_VAR} to text or json"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()))
        .with_writer(std::io::stderr);
    if json {
        // Fields at the top level (`{"timestamp":…,"level":…,"message":…}`): what collectors
        // such as Loki or Elasticsearch index without a mapping.
        builder.json().flatten_event(true).with_current_span(false).init();
    } else {
        // Colour only for a terminal (and not with NO_COLOR): log files get plain text.
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none()).init();
    }
    Ok(json)
}
