//! `roster serve`'s resource limits: request size and time, connections, password hashing,
//! subscriptions (docs/operations.md).

use anyhow::Result;
use clap::Args;
use roster_api::config::{parse_duration, parse_trusted_proxies};
use roster_api::Config;

fn max_body_bytes(text: &str) -> Result<usize, String> {
    text.trim().parse::<usize>().map_err(|_| format!("{text:?} is not a number of bytes"))
}

fn hash_concurrency(text: &str) -> Result<usize, String> {
    text.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| format!("{text:?} is not a positive number"))
}

/// How much one client, request or connection may take of the server.
#[derive(Args)]
pub struct LimitArgs {
    /// Largest request body in bytes; larger ones answer 413.
    #[arg(long, env = "ROSTER_MAX_BODY_BYTES", default_value_t = roster_api::config::DEFAULT_MAX_BODY_BYTES, value_parser = max_body_bytes)]
    max_body_bytes: usize,
    /// How long one HTTP request may take before it answers 408 (websockets are exempt).
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    request_timeout: std::time::Duration,
    /// Reverse proxies whose X-Forwarded-For is believed: comma-separated IPs or CIDRs.
    #[arg(long, env = "ROSTER_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
    /// How long a client may take to send a request's head (slower ones are closed).
    #[arg(long, env = "ROSTER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: std::time::Duration,
    /// Open connections per client IP (trusted proxies exempt); more are closed at once.
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS_PER_IP", default_value_t = 100)]
    max_connections_per_ip: usize,
    /// How many password hashes may run at once (default: the number of CPUs).
    #[arg(long, env = "ROSTER_HASH_CONCURRENCY", value_parser = hash_concurrency)]
    hash_concurrency: Option<usize>,
    /// Subscriptions one websocket connection may hold open; more answer RATE_LIMITED.
    #[arg(long, env = "ROSTER_MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 10)]
    max_subscriptions_per_connection: usize,
    /// Subscriptions one user may hold open across connections; more answer RATE_LIMITED.
    #[arg(long, env = "ROSTER_MAX_SUBSCRIPTIONS_PER_USER", default_value_t = 20)]
    max_subscriptions_per_user: usize,
    /// How long a websocket client may leave a message unread before it is closed
    /// (code 1013, "slow consumer").
    #[arg(long, env = "ROSTER_SLOW_CONSUMER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    slow_consumer_timeout: std::time::Duration,
    /// How long a websocket may stay open without graphql-ws's connection_init (closed 4408).
    #[arg(long, env = "ROSTER_CONNECTION_INIT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    connection_init_timeout: std::time::Duration,
    /// The nice value (0-19) of the threads that run websockets, so that subscription delivery
    /// yields the CPU to requests; 0 keeps them at the requests' priority.
    #[arg(long, env = "ROSTER_WEBSOCKET_NICE", default_value_t = roster_api::lane::DEFAULT_NICE, value_parser = clap::value_parser!(u8).range(0..=19))]
    websocket_nice: u8,
}

impl LimitArgs {
    /// Writes these limits into `config`.
    ///
    /// Errors: a malformed ROSTER_TRUSTED_PROXIES (named in the message).
    pub fn apply(self, config: &mut Config) -> Result<()> {
        config.max_body_bytes = self.max_body_bytes;
        config.request_timeout = self.request_timeout;
        config.trusted_proxies = parse_trusted_proxies(&self.trusted_proxies).map_err(|e| anyhow::anyhow!("ROSTER_TRUSTED_PROXIES: {e}"))?;
        config.header_read_timeout = self.header_read_timeout;
        config.max_connections_per_ip = self.max_connections_per_ip;
        if let Some(n) = self.hash_concurrency {
            config.hash_concurrency = n;
        }
        config.max_subscriptions_per_connection = self.max_subscriptions_per_connection;
        config.max_subscriptions_per_user = self.max_subscriptions_per_user;
        config.slow_consumer_timeout = self.slow_consumer_timeout;
        config.connection_init_timeout = self.connection_init_timeout;
        config.websocket_nice = self.websocket_nice;
        Ok(())
    }
}
