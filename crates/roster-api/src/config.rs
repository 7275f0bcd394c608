//! Server configuration (contract section "Process": flags override environment).

use crate::mail::settings::MailSettings;
use crate::rate_limit::Rate;
use hmac::{Hmac, Mac};
use roster_domain::TokenKey;
use sha2::Sha256;
use ipnet::IpNet;
use std::time::Duration;

/// Default largest request body: 1 MiB (`ROSTER_MAX_BODY_BYTES`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Everything the API needs to know about its deployment.
#[derive(Clone)]
pub struct Config {
    /// Base of invite links: `<public_url>/invite/<token>`. Never taken from a request (case F6).
    pub public_url: String,
    /// HMAC secret that signs session tokens (HS256).
    pub jwt_secret: String,
    /// How long a sent invitation stays acceptable (`ROSTER_INVITE_TTL`, default 7 days).
    pub invite_ttl: Duration,
    /// How long a session token is valid.
    pub session_ttl: Duration,
    /// A bearer token that may read every account's events (`ROSTER_OPERATOR_TOKEN`); it may
    /// also read `GET /metrics`.
    pub operator_token: Option<String>,
    /// A bearer token that may read `GET /metrics` only (`ROSTER_METRICS_TOKEN`), so a
    /// scraper need not hold the operator token.
    pub metrics_token: Option<String>,
    /// How long a mutation waits for the read models to show its events before answering.
    pub read_your_writes_timeout: Duration,
    /// Largest request body in bytes (`ROSTER_MAX_BODY_BYTES`); larger ones answer 413.
    pub max_body_bytes: usize,
    /// How long one HTTP request may take (`ROSTER_REQUEST_TIMEOUT`); websockets are exempt
    /// once upgraded.
    pub request_timeout: Duration,
    /// Peers whose `X-Forwarded-For` is believed (`ROSTER_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpNet>,
    /// How long a client may take to send a request's head (request line and headers)
    /// (`ROSTER_HEADER_READ_TIMEOUT`, default 10 s); the connection is closed beyond it, so
    /// connections that trickle their headers (slowloris) cannot pile up. An idle keep-alive
    /// connection is closed after as long.
    pub header_read_timeout: Duration,
    /// Open connections one client IP may hold (`ROSTER_MAX_CONNECTIONS_PER_IP`, default 100;
    /// websockets included); more are closed at once. Trusted proxies are exempt: they carry
    /// many clients.
    pub max_connections_per_ip: usize,
    /// How many password hashes may run at once (`ROSTER_HASH_CONCURRENCY`, default the CPUs).
    pub hash_concurrency: usize,
    /// Password attempts (`signUp`, `logIn`, `acceptInvite` as a new user) per client IP:
    /// 20 at once, then one per 3 s.
    pub password_rate_per_ip: Rate,
    /// Failed log-ins per email from one client IP (an IPv6 client by its /64): 10 at once,
    /// then one per minute; a success from that IP clears them. Per source, so a guesser
    /// elsewhere cannot lock the owner out (issue 10, "the per-email limiter lets anyone lock a
    /// victim out"), and slower than [`Config::login_failures_per_email`] refills, so one
    /// source alone never exhausts that.
    pub login_failures_per_source: Rate,
    /// Failed log-ins per email from anywhere: 100 at once, then one per 9 s (100 per 15
    /// minutes); a success does not clear them. The ceiling on distributed guessing: many IPs
    /// together get no more guesses at one password than this. Past it, even the right
    /// password answers `RATE_LIMITED` (the same for every answer, or the ceiling would tell
    /// guessers when they are right); holding an email there takes at least 7 sources guessing
    /// without pause (each gets at most 60 failures an hour, the ceiling regains 400).
    pub login_failures_per_email: Rate,
    /// Subscriptions one websocket connection may hold open
    /// (`ROSTER_MAX_SUBSCRIPTIONS_PER_CONNECTION`, default 10); more answer `RATE_LIMITED`.
    pub max_subscriptions_per_connection: usize,
    /// Subscriptions one user may hold open across connections
    /// (`ROSTER_MAX_SUBSCRIPTIONS_PER_USER`, default 20); more answer `RATE_LIMITED`.
    pub max_subscriptions_per_user: usize,
    /// How long a websocket may leave a message unread before it is closed (1013, "slow
    /// consumer") rather than hold its subscriptions (`ROSTER_SLOW_CONSUMER_TIMEOUT`, default
    /// 30 s).
    pub slow_consumer_timeout: Duration,
    /// How long a websocket may stay open without `connection_init` before it is closed (4408)
    /// (`ROSTER_CONNECTION_INIT_TIMEOUT`, default 10 s).
    pub connection_init_timeout: Duration,
    /// The nice value (0..=19) of the threads that run websockets ([`crate::lane`]):
    /// subscriptions yield the CPU to requests (`ROSTER_WEBSOCKET_NICE`, default 10; 0 keeps
    /// them at the requests' priority).
    pub websocket_nice: u8,
    /// Invitation emails: off, SMTP or a directory (`ROSTER_SMTP_URL`, `ROSTER_MAIL_DIR`, …).
    pub mail: MailSettings,
    /// Email verification and password reset (`ROSTER_REQUIRE_VERIFIED_EMAIL`, link lifetimes,
    /// reset-request limits).
    pub ownership: OwnershipSettings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("public_url", &self.public_url)
            .field("invite_ttl", &self.invite_ttl)
            .field("session_ttl", &self.session_ttl)
            .field("operator_token", &self.operator_token.as_ref().map(|_| "<set>"))
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "<set>"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("hash_concurrency", &self.hash_concurrency)
            .field("max_subscriptions_per_connection", &self.max_subscriptions_per_connection)
            .field("max_subscriptions_per_user", &self.max_subscriptions_per_user)
            .field("slow_consumer_timeout", &self.slow_consumer_timeout)
            .field("connection_init_timeout", &self.connection_init_timeout)
            .field("websocket_nice", &self.websocket_nice)
            .field("mail", &self.mail)
            .field("ownership", &self.ownership)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration with the contract's defaults for everything but the URL and secret.
    pub fn new(public_url: impl Into<String>, jwt_secret: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_string(),
            jwt_secret: jwt_secret.into(),
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            session_ttl: Duration::from_secs(12 * 3600),
            operator_token: None,
            metrics_token: None,
            read_your_writes_timeout: Duration::from_secs(5),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            max_connections_per_ip: 100,
            hash_concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            password_rate_per_ip: Rate::new(20, Duration::from_secs(3)),
            login_failures_per_source: Rate::new(10, Duration::from_secs(60)),
            login_failures_per_email: Rate::new(100, Duration::from_secs(9)),
            max_subscriptions_per_connection: 10,
            max_subscriptions_per_user: 20,
            slow_consumer_timeout: Duration::from_secs(30),
            connection_init_timeout: Duration::from_secs(10),
            websocket_nice: crate::lane::DEFAULT_NICE,
            mail: MailSettings::default(),
            ownership: OwnershipSettings::default(),
        }
    }

    /// The key invite tokens are derived under (`roster_domain::token`): HMAC-SHA256 of a fixed
    /// label under the session secret, so it needs no setting of its own and is never stored.
    /// Changing `ROSTER_JWT_SECRET` changes it: emails still queued then fail with a reason
    /// (their links can no longer be rebuilt) and must be resent.
    pub fn token_key(&self) -> TokenKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.jwt_secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(b"roster invite-token key v1");
        TokenKey::new(mac.finalize().into_bytes().into())
    }

    /// The email-verification link for `token`.
    pub fn verify_link(&self, token: &str) -> String {
        format!("{}/verify/{token}", self.public_url)
    }

    /// The password-reset link for `token`.
    pub fn reset_link(&self, token: &str) -> String {
        format!("{}/reset/{token}", self.public_url)
    }

    /// The invite link for `token`.
    pub fn invite_link(&self, token: &str) -> String {
        format!("{}/invite/{token}", self.public_url)
    }
}

/// Longest duration [`parse_duration`] accepts: ten years, far beyond any sensible invitation
/// lifetime, and well inside what dates can be added to without overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// Parses a duration such as `7d`, `12h`, `30m`, `45s` or a bare number of seconds, at most
/// [`MAX_DURATION`] (`3650d`).
///
/// Errors: a message naming the accepted forms, for an empty, zero, negative, unknown or too
/// large value (never an overflow).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("invalid duration {text:?}: use e.g. 7d, 12h, 30m, 45s"))?;
    let unit_seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("invalid duration unit in {text:?}: use d, h, m or s")),
    };
    let seconds = n.checked_mul(unit_seconds).filter(|s| *s <= MAX_DURATION.as_secs());
    match seconds {
        Some(0) => Err("duration must be positive".to_string()),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
        None => Err(format!("duration {text:?} is too long: at most 3650d")),
    }
}

/// Parses a duration as [`parse_duration`] does, and also zero (`0`, `0s`, `0m`, …), for
/// settings where zero turns a limit off (`ROSTER_RESEND_COOLDOWN`).
///
/// Errors: as [`parse_duration`], less the zero case.
pub fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    let digits = text.trim().trim_end_matches(['s', 'm', 'h', 'd']);
    if !digits.is_empty() && digits.bytes().all(|b| b == b'0') {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

/// Parses `ROSTER_TRUSTED_PROXIES`: comma-separated IP addresses or CIDRs (`10.0.0.0/8`,
/// `127.0.0.1`, `::1`); blanks are ignored.
///
/// Errors: a message naming the entry that is neither.
pub fn parse_trusted_proxies(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("invalid trusted proxy {entry:?}: use an IP address or a CIDR such as 10.0.0.0/8"))
        })
        .collect()
}

/// How the server treats email ownership (`roster serve`: `ROSTER_REQUIRE_VERIFIED_EMAIL`;
/// docs/operations.md, "Email").
#[derive(Debug, Clone)]
pub struct OwnershipSettings {
    /// Whether a sign-up owes a verification link and may not log in (nor accept an invitation
    /// with a session) before opening it. Has effect only on a server that sends email; `false`
    /// (the default here; `roster serve` turns it on unless `--dev`): sign-ups owe no link.
    pub require_verified_email: bool,
    /// How long a verification link works (24 h).
    pub verify_ttl: Duration,
    /// How long a password-reset link works (1 h).
    pub reset_ttl: Duration,
    /// `requestPasswordReset` per client IP (10 at once, then one per 30 s).
    pub reset_rate_per_ip: Rate,
    /// `requestPasswordReset` per email, known or not (3 at once, then one per 5 minutes), so
    /// nobody floods an inbox.
    pub reset_rate_per_email: Rate,
}

impl Default for OwnershipSettings {
    fn default() -> Self {
        Self {
            require_verified_email: false,
            verify_ttl: Duration::from_secs(24 * 3600),
            reset_ttl: Duration::from_secs(3600),
            reset_rate_per_ip: Rate::new(10, Duration::from_secs(30)),
            reset_rate_per_email: Rate::new(3, Duration::from_secs(300)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("3650d").unwrap(), MAX_DURATION);
        for bad in ["", "0", "-1d", "7w", "d", "3651d", "213503982334602d", "99999999999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_durations_parse_where_zero_turns_a_limit_off() {
        for zero in ["0", "0s", "00m", " 0d "] {
            assert_eq!(parse_duration_or_zero(zero).unwrap(), Duration::ZERO, "{zero}");
        }
        assert_eq!(parse_duration_or_zero("60s").unwrap(), Duration::from_secs(60));
        for bad in ["", "s", "-1", "0w", "1w"] {
            assert!(parse_duration_or_zero(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_cidrs() {
        let nets = parse_trusted_proxies(" 10.0.0.0/8, 127.0.0.1,::1 ,").unwrap();
        let shown: Vec<String> = nets.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        assert!(parse_trusted_proxies("10.0.0.0/8,proxy.local").is_err());
    }
}
