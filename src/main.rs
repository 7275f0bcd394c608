//! `roster`: the team-membership service and its operator tools.
//!
//! Subcommands (contract section "Process"): `serve`, `migrate`, `events`, `projections status`,
//! `projections rebuild`, `schema`. Flags override environment variables.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use roster_api::clock::SystemClock;
use roster_api::config::{parse_duration, parse_trusted_proxies};
use roster_api::secret::check_secret;
use roster_api::{Application, Config, DatabaseSettings, Settings};
use roster_projections::{rebuild, Projection, Projector};
use roster_store::{db, reader, EventFilter};
use std::io::Write;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "roster", version, about = "Team membership: invitations, members and roles, event-sourced on PostgreSQL.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Database {
    /// PostgreSQL URL, e.g. postgres://user@localhost/roster. `scripts/with-postgres` sets one.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the HTTP server; applies pending migrations first.
    Serve(ServeArgs),
    /// Applies pending migrations and exits.
    Migrate(Database),
    /// Writes events as JSON Lines to stdout, in global order.
    Events(EventsArgs),
    /// Projection status and rebuilds.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Prints the GraphQL SDL (equal to schema/roster.graphql).
    Schema,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    db: Database,
    /// Address to listen on.
    #[arg(long, env = "ROSTER_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// Base URL of invite links (`<public url>/invite/<token>`); default `http://<bind>`.
    #[arg(long, env = "ROSTER_PUBLIC_URL")]
    public_url: Option<String>,
    /// Secret that signs session tokens: at least 32 random bytes (e.g. `openssl rand -base64
    /// 32`; weak values are refused). Required unless --dev.
    #[arg(long, env = "ROSTER_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// How long invitations stay acceptable, e.g. 7d, 12h, 30m.
    #[arg(long, env = "ROSTER_INVITE_TTL", default_value = "7d", value_parser = parse_duration)]
    invite_ttl: std::time::Duration,
    /// Bearer token that may read every account's events: at least 32 random bytes, as
    /// ROSTER_JWT_SECRET.
    #[arg(long, env = "ROSTER_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
    /// Development mode: without ROSTER_JWT_SECRET, sign sessions with a random secret
    /// (sessions then end when the server stops).
    /// (`ROSTER_DEV`: `1`/`true`/`yes`/`on` turn it on, `0`/`false`/`no`/`off` or empty off).
    #[arg(long, env = "ROSTER_DEV", value_parser = clap::builder::FalseyValueParser::new())]
    dev: bool,
    /// Largest request body in bytes; larger ones answer 413.
    #[arg(long, env = "ROSTER_MAX_BODY_BYTES", default_value_t = roster_api::config::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// How long one HTTP request may take before it answers 408 (websockets are exempt).
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    request_timeout: std::time::Duration,
    /// Reverse proxies whose X-Forwarded-For is believed: comma-separated IPs or CIDRs.
    #[arg(long, env = "ROSTER_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
    /// How many password hashes may run at once (default: the number of CPUs).
    #[arg(long, env = "ROSTER_HASH_CONCURRENCY")]
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
}

#[derive(Args)]
struct EventsArgs {
    #[command(flatten)]
    db: Database,
    /// Only events after this global position.
    #[arg(long, default_value_t = 0)]
    after: i64,
    /// Only this account's events.
    #[arg(long)]
    account: Option<roster_domain::AccountId>,
    /// Keep streaming new events as they commit.
    #[arg(long)]
    follow: bool,
    /// Stop after this many events.
    #[arg(long)]
    limit: Option<u64>,
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// One line per projection: name, checkpoint, lag in events (and the failure, if stopped).
    Status(Database),
    /// Rebuilds read models from the event log (all projections when none is named) while the
    /// server keeps serving the old ones, then swaps the new tables in.
    Rebuild {
        #[command(flatten)]
        db: Database,
        /// Projections to rebuild: members, invitations, audit_log.
        names: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()))
        .with_writer(std::io::stderr)
        // Colour only for a terminal (and not with NO_COLOR): log files and collectors get
        // plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(db) => {
            let pool = db::connect(&db.database_url, 2).await.context("connecting to the database")?;
            db::migrate(&pool).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Events(args) => events(args).await,
        Command::Projections(ProjectionsCommand::Status(db)) => {
            let pool = db::connect(&db.database_url, 2).await.context("connecting to the database")?;
            for s in Projector::new(pool).status().await? {
                let mut line = format!("{}\t{}\t{}", s.name, s.checkpoint, s.lag);
                if let (Some(at), Some(err)) = (s.failed_position, s.last_error) {
                    line.push_str(&format!("\tfailed at {at}: {err}"));
                }
                println!("{line}");
            }
            Ok(())
        }
        Command::Projections(ProjectionsCommand::Rebuild { db, names }) => {
            let projections = names
                .iter()
                .map(|n| Projection::from_name(n).with_context(|| format!("unknown projection {n:?} (known: members, invitations, audit_log)")))
                .collect::<Result<Vec<_>>>()?;
            let pool = db::connect(&db.database_url, 5).await.context("connecting to the database")?;
            db::migrate(&pool).await?;
            for report in rebuild::rebuild(&pool, &projections).await? {
                println!("{}\trebuilt\t{}", report.name, report.position);
            }
            Ok(())
        }
        Command::Schema => {
            print!("{}", roster_api::graphql::sdl());
            Ok(())
        }
    }
}

impl ServeArgs {
    /// The typed settings these flags and variables describe.
    fn settings(self) -> Result<Settings> {
        // Refused before anything starts: a weak secret lets anyone sign an Admin session.
        let jwt_secret = match (self.jwt_secret, self.dev) {
            (Some(secret), _) if !secret.is_empty() => {
                check_secret("ROSTER_JWT_SECRET", &secret).map_err(anyhow::Error::msg)?;
                secret
            }
            (_, true) => {
                tracing::warn!("--dev: signing sessions with a random secret; set ROSTER_JWT_SECRET to keep them across restarts");
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
                bytes.iter().map(|b| format!("{b:02x}")).collect()
            }
            _ => bail!("ROSTER_JWT_SECRET is required (or pass --dev for a throwaway secret)"),
        };
        let public_url = self.public_url.unwrap_or_else(|| format!("http://{}", self.bind));
        let mut config = Config::new(public_url, jwt_secret);
        config.invite_ttl = self.invite_ttl;
        config.operator_token = self.operator_token.filter(|t| !t.is_empty());
        if let Some(token) = &config.operator_token {
            check_secret("ROSTER_OPERATOR_TOKEN", token).map_err(anyhow::Error::msg)?;
        }
        config.max_body_bytes = self.max_body_bytes;
        config.request_timeout = self.request_timeout;
        config.trusted_proxies = parse_trusted_proxies(&self.trusted_proxies).map_err(|e| anyhow::anyhow!("ROSTER_TRUSTED_PROXIES: {e}"))?;
        if let Some(n) = self.hash_concurrency {
            config.hash_concurrency = n;
        }
        config.max_subscriptions_per_connection = self.max_subscriptions_per_connection;
        config.max_subscriptions_per_user = self.max_subscriptions_per_user;
        config.slow_consumer_timeout = self.slow_consumer_timeout;
        Ok(Settings { database: DatabaseSettings::new(self.db.database_url), bind: self.bind, config })
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let settings = args.settings()?;
    if let Ok(o) = settings.database.url.parse::<sqlx::postgres::PgConnectOptions>() {
        // The URL without its password, so operators can point `roster events` at it.
        let database = o.get_database().unwrap_or_default();
        tracing::info!("database postgres://{}@{}:{}/{database}", o.get_username(), o.get_host(), o.get_port());
    }
    let application = Application::build(settings, Arc::new(SystemClock)).await?;
    tracing::info!("roster listening on http://{} (GraphiQL at /graphql)", application.address());
    // On SIGTERM (Docker, Kubernetes) or SIGINT: stop accepting, let in-flight requests finish
    // (an answer may carry a one-time invite link), and close what is still open (websockets)
    // after the grace period.
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        let name = shutdown_signal().await;
        tracing::info!("{name}: stopping; in-flight requests get up to {} s", SHUTDOWN_GRACE.as_secs());
        let _ = stopping.send(());
    };
    let served = application.run_until_stopped(signal);
    tokio::pin!(served);
    tokio::select! {
        result = &mut served => result?,
        () = async {
            if stopped.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => tracing::warn!("grace period over: closing the connections still open"),
    }
    tracing::info!("roster stopped");
    Ok(())
}

/// How long in-flight requests (and open websockets) may run after a shutdown signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C) and names it.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// Events read per query of `roster events` (keyset-paged; each page is streamed as
/// PostgreSQL produces it, so formatting overlaps the server's work).
const EVENTS_PAGE: i64 = 50_000;

async fn events(args: EventsArgs) -> Result<()> {
    let pool = db::connect(&args.db.database_url, 2).await.context("connecting to the database")?;
    let filter = EventFilter { account_id: args.account };
    let limit = args.limit.unwrap_or(u64::MAX);
    if limit == 0 {
        return Ok(());
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut line = Vec::with_capacity(4096);
    let mut written = 0u64;
    let follow = args.follow;
    // Writes one feed line; false when the feed should end (limit reached or pipe closed).
    let mut write = |event: &reader::RawEvent| -> Result<bool> {
        line.clear();
        event.write_feed_line(&mut line)?;
        line.push(b'\n');
        let written_line = out.write_all(&line).and_then(|()| if follow { out.flush() } else { Ok(()) });
        if let Err(e) = written_line {
            // A closed pipe (e.g. `| head`) ends the feed quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(false);
            }
            return Err(e.into());
        }
        written += 1;
        Ok(written < limit)
    };
    let mut after = args.after;
    loop {
        let mut page = reader::stream_raw_after(&pool, after, EVENTS_PAGE, filter);
        let mut read = 0;
        while let Some(event) = page.next().await {
            let event = event?;
            after = event.position;
            read += 1;
            if !write(&event)? {
                return flushed(out);
            }
        }
        if read < EVENTS_PAGE {
            break;
        }
    }
    if !follow {
        return flushed(out);
    }
    // Database outages are retried inside (logged), resuming after the last line written.
    let tail = reader::Tail::spawn(pool.clone());
    let mut stream = Box::pin(reader::follow(&tail, pool.clone(), after, filter));
    while let Some(event) = stream.next().await {
        let raw = reader::RawEvent {
            position: event.position,
            recorded_at: event.recorded_at,
            account_id: event.account_id,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            payload: event.payload.to_string(),
            metadata: event.metadata.to_string(),
        };
        if !write(&raw)? {
            break;
        }
    }
    flushed(out)
}

/// Flushes the feed; a closed pipe is a normal end.
fn flushed(mut out: impl Write) -> Result<()> {
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
