//! How the server delivers invitation emails (`roster serve`'s mail flags; docs/operations.md,
//! "Email"): settings only, so the configuration depends on nothing that uses it.

use std::path::PathBuf;
use std::time::Duration;

/// Where invitation emails go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MailDelivery {
    /// Not sent: invitations show `delivery.status` `NOT_SENT`; admins share the link by hand.
    #[default]
    Off,
    /// An SMTP server (`ROSTER_SMTP_URL`, lettre's URL form: `smtp://host:port`,
    /// `smtps://user:pass@host`, `smtp://host?tls=required` for STARTTLS).
    Smtp(String),
    /// `.eml` files in a directory (`ROSTER_MAIL_DIR`; `--dev` without SMTP uses `roster-mail`).
    Directory(PathBuf),
}

/// How the server delivers invitation emails.
#[derive(Clone)]
pub struct MailSettings {
    /// Where to.
    pub delivery: MailDelivery,
    /// The `From` mailbox (`ROSTER_MAIL_FROM`, e.g. `Roster <roster@example.com>`).
    pub from: String,
    /// A directory whose files replace the embedded templates of the same name
    /// (`ROSTER_MAIL_TEMPLATES`).
    pub templates: Option<PathBuf>,
    /// The first retry's delay; each further one doubles it (±25 % jitter), at most one hour.
    pub retry_base: Duration,
    /// Attempts per send before it is `FAILED` (default 8: about 21 minutes of retries at the
    /// default 5 s base).
    pub max_attempts: u32,
    /// How long a claimed send stays with the replica sending it (`ROSTER_MAIL_LEASE`, default
    /// 2 minutes: longer than an SMTP attempt's 30 s time-out, so no two replicas send one
    /// email at once; a replica killed while sending delays that email this long).
    pub lease: Duration,
    /// Least time between two emailed sends of one invitation (`ROSTER_RESEND_COOLDOWN`,
    /// default 60 s; zero: none). A `resendInvite` sooner answers `RATE_LIMITED` with
    /// `retryAfterSeconds` (rule in `roster_domain`'s `decide`, "Resend cooldown").
    pub resend_cooldown: Duration,
    /// Most invitation emails one account may have sent in any rolling 24 hours
    /// (`ROSTER_MAIL_DAILY_CAP_PER_ACCOUNT`, default 500); beyond it a send is `FAILED` with
    /// the reason and the admin shares the link (see [`quota`]).
    pub daily_cap_per_account: u32,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            delivery: MailDelivery::Off,
            from: "Roster <roster@localhost>".into(),
            templates: None,
            retry_base: Duration::from_secs(5),
            max_attempts: 8,
            lease: Duration::from_secs(120),
            resend_cooldown: Duration::from_secs(60),
            daily_cap_per_account: 500,
        }
    }
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An SMTP URL may carry a password.
        let delivery = match &self.delivery {
            MailDelivery::Off => "off".to_string(),
            MailDelivery::Smtp(_) => "smtp".to_string(),
            MailDelivery::Directory(dir) => format!("directory {}", dir.display()),
        };
        f.debug_struct("MailSettings").field("delivery", &delivery).field("from", &self.from).finish_non_exhaustive()
    }
}

impl MailSettings {
    /// Whether invitations are emailed at all.
    pub fn is_on(&self) -> bool {
        self.delivery != MailDelivery::Off
    }

    /// The delay before attempt `attempt + 1` after attempt `attempt` (from 1) failed:
    /// `retry_base × 2^(attempt-1)`, at most an hour, times a jitter factor in [0.75, 1.25).
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self.retry_base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        exp.min(Duration::from_secs(3600)).mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}
