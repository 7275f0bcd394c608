//! Where messages go: an SMTP server (`ROSTER_SMTP_URL`, lettre's URL form) or `.eml` files in
//! a directory (`ROSTER_MAIL_DIR`; the development default), both through lettre.

use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

/// An opened transport.
#[derive(Clone)]
pub enum Transport {
    /// SMTP (`smtp://`, `smtps://`, `smtp://…?tls=required` for STARTTLS).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `<id>.eml` file per message in the directory.
    Directory(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The server's reply or the connection error, as text.
    pub reply: String,
    /// A permanent failure (an SMTP 5xx reply): retrying would fail the same way.
    pub permanent: bool,
}

impl Transport {
    /// The SMTP transport of `url`.
    ///
    /// Errors: the URL does not parse (scheme, host, `tls` parameter), in lettre's words.
    pub fn smtp(url: &str) -> Result<Self, String> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| e.to_string())?;
        Ok(Self::Smtp(builder.timeout(Some(std::time::Duration::from_secs(30))).build()))
    }

    /// The directory transport; creates `dir` if needed, readable by its owner only (its files
    /// hold working invite links).
    ///
    /// Errors: the directory cannot be created.
    pub fn directory(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        Ok(Self::Directory(AsyncFileTransport::new(&dir), dir))
    }

    /// Hands `message` over. Returns where it went: the SMTP server's reply, or the file's path.
    ///
    /// Errors: [`Failure`]; 5xx replies are permanent, everything else (4xx, connection,
    /// time-out, a full disk) temporary.
    pub async fn send(&self, message: Message) -> Result<String, Failure> {
        match self {
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(response) => Ok(format!("{} {}", response.code(), response.message().collect::<Vec<_>>().join(" "))),
                Err(err) => Err(Failure { reply: smtp_reply(&err), permanent: err.is_permanent() }),
            },
            Transport::Directory(files, dir) => match files.send(message).await {
                Ok(id) => Ok(dir.join(format!("{id}.eml")).display().to_string()),
                Err(err) => Err(Failure { reply: err.to_string(), permanent: false }),
            },
        }
    }
}

/// An SMTP error as the server put it: `550 5.1.1 no such user` rather than lettre's prose
/// around it, when there was a reply.
fn smtp_reply(err: &lettre::transport::smtp::Error) -> String {
    let text = err.to_string();
    match err.status() {
        Some(code) if !text.contains(&code.to_string()) => format!("{code} {text}"),
        _ => text,
    }
}
