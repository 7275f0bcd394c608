//! `roster` without a command (`cargo run`): the service to try out.

use crate::{cluster, serve, ServeArgs};
use anyhow::{Context, Result};
use clap::Parser;

/// `serve`'s flags alone, for `roster` without a command.
#[derive(Parser)]
#[command(name = "roster")]
struct TryIt {
    #[command(flatten)]
    serve: ServeArgs,
}

/// `roster` without a command: `serve --dev` (the environment's settings still apply), on a
/// throwaway PostgreSQL cluster of this process when `DATABASE_URL` is unset. The cluster is
/// stopped and deleted when the server stops (Ctrl-C).
///
/// Errors: the cluster cannot start (no PostgreSQL binaries: the message says what to
/// install); what `serve` reports.
pub async fn try_it() -> Result<()> {
    let mut args = TryIt::parse_from(["roster", "--dev"]).serve;
    let mut throwaway = None;
    if args.db.database_url.as_deref().is_none_or(str::is_empty) {
        // A busy address fails before a database is made for nothing.
        std::net::TcpListener::bind(&args.bind).with_context(|| format!("binding {} (choose another address with ROSTER_BIND or --bind)", args.bind))?;
        let cluster = tokio::task::spawn_blocking(cluster::Cluster::start)
            .await?
            .map_err(anyhow::Error::msg)
            .context("starting a throwaway PostgreSQL (install Debian's `postgresql` package, or set DATABASE_URL to a database of yours)")?;
        tracing::info!(url = cluster.url(), "throwaway PostgreSQL at {}: deleted when roster stops", cluster.url());
        args.db.database_url = Some(cluster.url().to_string());
        throwaway = Some(cluster);
    }
    let served = serve(args).await;
    drop(throwaway);
    served
}
