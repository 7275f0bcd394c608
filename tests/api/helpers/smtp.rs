//! A real SMTP server process for the mail tests: `tests/mail/smtp_server.py` (aiosmtpd, from
//! the venv `tests/conformance/install` makes). Messages land as files the test reads back.
//!
//! Without the venv the mail tests print `SKIPPED` and pass, except under CI (`CI` set), where
//! they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) SMTP server on a fixed loopback port, and the messages it accepted.
pub struct SmtpServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The message as sent (headers and MIME body).
    pub raw: Vec<u8>,
}

impl Received {
    /// A header's value, e.g. `Message-ID`.
    pub fn header(&self, name: &str) -> Option<String> {
        let parsed = mailparse::parse_mail(&self.raw).expect("a parsable message");
        parsed.headers.iter().find(|h| h.get_key().eq_ignore_ascii_case(name)).map(|h| h.get_value())
    }

    /// The decoded body of the first part of type `mime` (e.g. `text/plain`).
    pub fn part(&self, mime: &str) -> String {
        let parsed = mailparse::parse_mail(&self.raw).expect("a parsable message");
        let mut parts = vec![parsed];
        while let Some(part) = parts.pop() {
            if part.ctype.mimetype == mime {
                return part.get_body().expect("decodable body");
            }
            parts.extend(part.subparts);
        }
        panic!("no {mime} part in:\n{}", String::from_utf8_lossy(&self.raw))
    }

    /// The invite token in the text part's link.
    pub fn invite_token(&self) -> String {
        let text = self.part("text/plain");
        let at = text.find("/invite/").unwrap_or_else(|| panic!("no invite link in:\n{text}"));
        text[at + "/invite/".len()..].split_whitespace().next().unwrap().to_string()
    }
}

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/.venv/bin/python")
}

/// Whether aiosmtpd is installed; if not, says `SKIPPED` (or fails under CI).
pub fn available() -> bool {
    let ok = Command::new(python()).args(["-c", "import aiosmtpd"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        let message = "aiosmtpd is not installed: run tests/conformance/install";
        assert!(std::env::var_os("CI").is_none(), "{message}; CI must run the mail tests");
        eprintln!("\n********** SKIPPED: {message} **********\n");
    }
    ok
}

/// A free loopback port (bound and released: nothing listens on it afterwards).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl SmtpServer {
    /// A server on a free port, not started yet (connections are refused until [`Self::start`]).
    pub fn stopped() -> Self {
        let dir = std::env::temp_dir().join(format!("roster-smtp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { port: free_port(), dir, child: None }
    }

    /// A started server on a free port.
    pub fn start_new() -> Self {
        let mut server = Self::stopped();
        server.start();
        server
    }

    /// Starts the process on this server's port; returns once it listens.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail/smtp_server.py"))
            .arg(self.port.to_string())
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP server");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "SMTP server did not start");
        self.child = Some(child);
    }

    /// `lettre`'s URL of this server (plain SMTP, no TLS: loopback only).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        let mut found: Vec<(u64, Received)> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n: u64 = name.strip_suffix(".eml")?.parse().ok()?;
                let raw = std::fs::read(e.path()).ok()?;
                let to = std::fs::read_to_string(self.dir.join(format!("{n}.rcpt"))).unwrap_or_default();
                Some((n, Received { to: to.lines().map(str::to_string).collect(), raw }))
            })
            .collect();
        found.sort_by_key(|(n, _)| *n);
        found.into_iter().map(|(_, r)| r).collect()
    }

    /// Waits (up to 30 s) until at least `n` messages arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(Instant::now() < deadline, "{} of {n} messages arrived in 30 s", received.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
