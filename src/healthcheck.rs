//! `roster healthcheck`: asks a running server's `/readyz` and exits 0 when it answers 200.
//! The container image has no curl; Docker's `HEALTHCHECK` runs this instead.

use anyhow::{bail, Context, Result};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Sends `GET /readyz` over plain HTTP/1.0 to `bind` (a `host:port` as given to `serve`; an
/// unspecified address such as `0.0.0.0` is asked on loopback).
///
/// Errors: no connection, a time-out, or a status other than 200 (with the body's first line,
/// e.g. `migrations pending`).
pub async fn check(bind: &str) -> Result<()> {
    let mut address: std::net::SocketAddr = match bind.parse() {
        Ok(address) => address,
        Err(_) => tokio::net::lookup_host(bind).await?.next().with_context(|| format!("{bind} does not resolve"))?,
    };
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let answer = tokio::time::timeout(TIMEOUT, async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(format!("GET /readyz HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes()).await?;
        let mut answer = Vec::new();
        stream.take(4096).read_to_end(&mut answer).await?;
        std::io::Result::Ok(answer)
    })
    .await
    .with_context(|| format!("no answer from {address} within {} s", TIMEOUT.as_secs()))?
    .with_context(|| format!("GET http://{address}/readyz"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().lines().next().unwrap_or_default();
    if status != "200" {
        bail!("http://{address}/readyz answered {status}: {body}");
    }
    println!("{body}");
    Ok(())
}
