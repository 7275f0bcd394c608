//! `roster`: the team-membership service and its operator tools.
//!
//! Subcommands (contract section "Process"): `serve`, `migrate`, `events`, `projections status`,
//! `projections rebuild`, `schema`, and `healthcheck` (for container probes). Flags override
//! environment variables; every setting's error names its variable.

mod cluster;
mod events;
mod healthcheck;
mod logging;
mod limit_args;
mod mail_args;
mod tables;
mod try_it;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use roster_api::clock::SystemClock;
use roster_api::config::parse_duration;
use roster_api::secret::check_secret;
use roster_api::{Application, Config, DatabaseSettings, Settings};
use roster_projections::{rebuild, Projection, Projector};
use roster_store::db;
use serde_json::json;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "Team membership: invitations, members and roles, event-sourced on PostgreSQL.",
    after_help = "Without a command, `roster` (`cargo run`) is the service to try out: `serve --dev` (emails written to \
                  roster-mail/), on a throwaway PostgreSQL of its own (Debian's `postgresql` binaries) when DATABASE_URL \
                  is unset, deleted when it stops."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args)]
pub(crate) struct Database {
    /// PostgreSQL URL, e.g. postgres://user@localhost/roster. `scripts/with-postgres` sets one.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

impl Database {
    /// The URL.
    ///
    /// Errors: neither `DATABASE_URL` nor `--database-url` given (clap's own message would
    /// name only the flag).
    fn url(&self) -> Result<&str> {
        match self.database_url.as_deref() {
            Some(url) if !url.is_empty() => Ok(url),
            _ => bail!("no database: set DATABASE_URL or pass --database-url (e.g. postgres://roster@localhost:5432/roster)"),
        }
    }
}

/// `--json` for commands that print a table.
#[derive(Args)]
struct Output {
    /// Print a JSON array instead of the table.
    #[arg(long)]
    json: bool,
}

/// Parses the command line. A refused value names its environment variable besides the flag
/// clap names (settings mostly come from the environment, where the flag means nothing to the
/// reader), for every setting at once; any other error is clap's own.
fn parse_cli() -> Cli {
    use clap::error::{ContextKind, ErrorKind};
    use clap::CommandFactory;
    let error = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(error) => error,
    };
    let refused = matches!(error.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue);
    let shown = error.get(ContextKind::InvalidArg).map(ToString::to_string).filter(|_| refused);
    let Some((shown, var)) = shown.and_then(|shown| env_of(&Cli::command(), &shown).map(|var| (shown, var))) else { error.exit() };
    let message = error.render().to_string().replacen(&format!("'{shown}'"), &format!("'{shown}' (from {var} or its flag)"), 1);
    eprint!("{message}");
    std::process::exit(error.exit_code());
}

/// The environment variable of the argument clap shows as `shown` (`--flag <VALUE>`), in
/// `command` or its subcommands.
fn env_of(command: &clap::Command, shown: &str) -> Option<String> {
    let long = shown.split_whitespace().next()?.strip_prefix("--")?;
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|var| var.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| env_of(sub, shown)))
}

#[derive(Subcommand)]
enum Command {
    /// Runs the HTTP server; applies pending migrations first.
    Serve(Box<ServeArgs>),
    /// Applies pending migrations and exits.
    Migrate(Database),
    /// Writes events as JSON Lines to stdout, in global order.
    Events(EventsArgs),
    /// Projection status and rebuilds.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Prints the GraphQL SDL (equal to schema/roster.graphql).
    Schema,
    /// Exits 0 when the server at ROSTER_BIND answers `/readyz` with 200 (container probes).
    Healthcheck {
        /// The server's address, as given to `serve`.
        #[arg(long, env = "ROSTER_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
    },
}

#[derive(Args)]
pub(crate) struct ServeArgs {
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
    /// Bearer token that may read `GET /metrics` only (for a Prometheus scraper): at least 32
    /// random bytes, as ROSTER_JWT_SECRET. The operator token may read it too.
    #[arg(long, env = "ROSTER_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Development mode: without ROSTER_JWT_SECRET, sign sessions with a random secret
    /// (sessions then end when the server stops).
    /// (`ROSTER_DEV`: `1`/`true`/`yes`/`on` turn it on, `0`/`false`/`no`/`off` or empty off).
    #[arg(long, env = "ROSTER_DEV", value_parser = clap::builder::FalseyValueParser::new())]
    dev: bool,
    #[command(flatten)]
    limits: limit_args::LimitArgs,
    #[command(flatten)]
    mail: mail_args::MailArgs,
    /// Whether a new sign-up must open the emailed verification link before logging in or
    /// accepting an invitation with a session (default: on, off with --dev). Needs email
    /// (ROSTER_SMTP_URL or ROSTER_MAIL_DIR); without it sign-ups owe no link.
    #[arg(long, env = "ROSTER_REQUIRE_VERIFIED_EMAIL", value_parser = clap::builder::BoolishValueParser::new())]
    require_verified_email: Option<bool>,
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
    /// One line per projection: name, checkpoint, lag in events (and the failure, if stopped);
    /// a header on a terminal only.
    Status {
        #[command(flatten)]
        db: Database,
        #[command(flatten)]
        output: Output,
    },
    /// Rebuilds read models from the event log (all projections when none is named) while the
    /// server keeps serving the old ones, then swaps the new tables in.
    Rebuild {
        #[command(flatten)]
        db: Database,
        /// Projections to rebuild: members, invitations, audit_log.
        names: Vec<String>,
        #[command(flatten)]
        output: Output,
    },
}

/// mimalloc instead of glibc's allocator: under 16 concurrent clients `malloc`/`free` were a
/// third of the server's user-space CPU (many small, short-lived allocations across threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let json = match logging::init() {
        Ok(json) => json,
        Err(e) => {
            eprintln!("Error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = match parse_cli().command {
        Some(command) => run(command).await,
        None => try_it::try_it().await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // With JSON logs every stderr line stays JSON, failures included.
            if json {
                tracing::error!(error = format!("{e:#}"), "{e:#}");
            } else {
                eprintln!("Error: {e:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand.
async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(db) => {
            let pool = db::connect(db.url()?, 2).await?;
            db::migrate(&pool).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Events(args) => events::events(args).await,
        Command::Projections(ProjectionsCommand::Status { db, output }) => {
            let pool = db::connect(db.url()?, 2).await?;
            let statuses = Projector::new(pool).status().await?;
            let rows = statuses
                .iter()
                .map(|s| {
                    let failure = match (s.failed_position, &s.last_error) {
                        (Some(at), Some(err)) => format!("failed at {at}: {err}"),
                        _ => String::new(),
                    };
                    vec![s.name.to_string(), s.checkpoint.to_string(), s.lag.to_string(), failure]
                })
                .collect();
            let json = statuses
                .iter()
                .map(|s| {
                    json!({"name": s.name, "checkpoint": s.checkpoint, "lag": s.lag, "updated_at": s.updated_at,
                           "failed_position": s.failed_position, "last_error": s.last_error})
                })
                .collect();
            tables::Table { headers: &["NAME", "CHECKPOINT", "LAG", "FAILURE"], rows, json }.print(output.json)
        }
        Command::Projections(ProjectionsCommand::Rebuild { db, names, output }) => {
            let projections = names
                .iter()
                .map(|n| Projection::from_name(n).with_context(|| format!("unknown projection {n:?} (known: members, invitations, audit_log)")))
                .collect::<Result<Vec<_>>>()?;
            let pool = db::connect(db.url()?, 5).await?;
            db::migrate(&pool).await?;
            let reports = rebuild::rebuild(&pool, &projections).await?;
            let rows = reports.iter().map(|r| vec![r.name.to_string(), "rebuilt".to_string(), r.position.to_string()]).collect();
            let json = reports.iter().map(|r| json!({"name": r.name, "rebuilt_at": r.position})).collect();
            tables::Table { headers: &["NAME", "STATE", "CHECKPOINT"], rows, json }.print(output.json)
        }
        Command::Schema => {
            print!("{}", roster_api::graphql::sdl());
            Ok(())
        }
        Command::Healthcheck { bind } => healthcheck::check(&bind).await,
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
            _ => bail!("no session secret: set ROSTER_JWT_SECRET (or pass --jwt-secret) to at least 32 random bytes, e.g. `openssl rand -base64 32`, or pass --dev (ROSTER_DEV=1) for a throwaway one"),
        };
        let public_url = self.public_url.unwrap_or_else(|| format!("http://{}", self.bind));
        let mut config = Config::new(public_url, jwt_secret);
        config.invite_ttl = self.invite_ttl;
        config.operator_token = self.operator_token.filter(|t| !t.is_empty());
        if let Some(token) = &config.operator_token {
            check_secret("ROSTER_OPERATOR_TOKEN", token).map_err(anyhow::Error::msg)?;
        }
        config.metrics_token = self.metrics_token.filter(|t| !t.is_empty());
        if let Some(token) = &config.metrics_token {
            check_secret("ROSTER_METRICS_TOKEN", token).map_err(anyhow::Error::msg)?;
        }
        self.limits.apply(&mut config)?;
        config.mail = self.mail.settings(self.dev);
        if self.require_verified_email == Some(true) && !config.mail.is_on() {
            bail!("ROSTER_REQUIRE_VERIFIED_EMAIL is on but email is off: set ROSTER_SMTP_URL or ROSTER_MAIL_DIR so sign-ups get their link");
        }
        config.ownership.require_verified_email = self.require_verified_email.unwrap_or(!self.dev);
        Ok(Settings { database: DatabaseSettings::new(self.db.url()?), bind: self.bind, config })
    }
}

pub(crate) async fn serve(args: ServeArgs) -> Result<()> {
    let settings = args.settings()?;
    // The URL without its password, so operators can point `roster events` at it.
    let database = db::Target::of(&db::options(&settings.database.url)?);
    let version = env!("CARGO_PKG_VERSION");
    tracing::info!(version, %database, "roster {version} starting: connecting to {database}");
    let application = Application::build(settings, Arc::new(SystemClock)).await?;
    let address = application.address();
    tracing::info!(version, %address, %database, "roster listening on http://{address} (open it to sign up, invite and accept; GraphiQL at /graphql); version {version}, database {database}");
    // On SIGTERM (Docker, Kubernetes) or SIGINT: stop accepting, let in-flight requests finish
    // (an answer may carry a one-time invite link), and close what is still open (websockets)
    // after the grace period.
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        let signal = shutdown_signal().await;
        tracing::info!(signal, grace_seconds = SHUTDOWN_GRACE.as_secs(), "{signal}: stopping; in-flight requests get up to {} s", SHUTDOWN_GRACE.as_secs());
        let _ = stopping.send(());
    };
    let served = application.run_until_stopped(signal);
    tokio::pin!(served);
    let drained = tokio::select! {
        result = &mut served => {
            result?;
            true
        }
        () = async {
            if stopped.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => false,
    };
    if drained {
        tracing::info!(drained, "drained: every in-flight request finished");
    } else {
        tracing::warn!(drained, "grace period over: closing the connections still open");
    }
    tracing::info!(exit_code = 0, "roster stopped");
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
