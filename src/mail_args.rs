//! `roster serve`'s invitation-email settings (docs/operations.md, "Email").

use clap::Args;
use roster_api::config::{parse_duration, parse_duration_or_zero};
use roster_api::mail::{MailDelivery, MailSettings};

/// Where invitation emails go and how they are retried.
#[derive(Args)]
pub struct MailArgs {
    /// SMTP server for invitation emails, lettre's URL form: smtp://host:25,
    /// smtps://user:pass@host:465, smtp://host:587?tls=required (STARTTLS).
    #[arg(long, env = "ROSTER_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Without SMTP: write invitation emails as .eml files into this directory (--dev: roster-mail).
    #[arg(long, env = "ROSTER_MAIL_DIR")]
    pub mail_dir: Option<std::path::PathBuf>,
    /// The From of invitation emails.
    #[arg(long, env = "ROSTER_MAIL_FROM", default_value = "Roster <roster@localhost>")]
    pub mail_from: String,
    /// A directory whose invitation.subject.txt, invitation.txt, invitation.html replace the built-in templates.
    #[arg(long, env = "ROSTER_MAIL_TEMPLATES")]
    pub mail_templates: Option<std::path::PathBuf>,
    /// The first retry's delay after a temporary delivery failure (doubling after each).
    #[arg(long, env = "ROSTER_MAIL_RETRY_BASE", default_value = "5s", value_parser = parse_duration)]
    pub mail_retry_base: std::time::Duration,
    /// Delivery attempts per email before it is FAILED.
    #[arg(long, env = "ROSTER_MAIL_MAX_ATTEMPTS", default_value_t = 8)]
    pub mail_max_attempts: u32,
    /// How long a replica holds a send it is delivering; a replica that dies holding one delays
    /// it this long. Must exceed an SMTP attempt (30 s time-out).
    #[arg(long, env = "ROSTER_MAIL_LEASE", default_value = "2m", value_parser = parse_duration)]
    pub mail_lease: std::time::Duration,
    /// Least time between two emailed sends of one invitation: a resendInvite sooner answers
    /// RATE_LIMITED with retryAfterSeconds. 0 turns it off.
    #[arg(long, env = "ROSTER_RESEND_COOLDOWN", default_value = "60s", value_parser = parse_duration_or_zero)]
    pub resend_cooldown: std::time::Duration,
    /// Most invitation emails one account may send in any 24 hours; beyond it invitations
    /// still work (the link is shown) but their email is FAILED with the reason.
    #[arg(long, env = "ROSTER_MAIL_DAILY_CAP_PER_ACCOUNT", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub mail_daily_cap_per_account: u32,
}

impl MailArgs {
    /// The settings: SMTP when `ROSTER_SMTP_URL` is set, else files in `ROSTER_MAIL_DIR`, else
    /// (with `--dev`) files in `roster-mail`, else off. Logs which.
    pub fn settings(self, dev: bool) -> MailSettings {
        let delivery = match (self.smtp_url.filter(|u| !u.is_empty()), self.mail_dir, dev) {
            (Some(url), _, _) => MailDelivery::Smtp(url),
            (None, Some(dir), _) => MailDelivery::Directory(dir),
            (None, None, true) => MailDelivery::Directory("roster-mail".into()),
            (None, None, false) => MailDelivery::Off,
        };
        match &delivery {
            MailDelivery::Off => tracing::info!("emails are off (set ROSTER_SMTP_URL or ROSTER_MAIL_DIR): share invite links by hand"),
            MailDelivery::Smtp(_) => tracing::info!("emails (invitations, verification, password resets) go out by SMTP"),
            MailDelivery::Directory(dir) => tracing::info!("emails (invitations, verification, password resets) are written as .eml files to {}", dir.display()),
        }
        MailSettings {
            delivery,
            from: self.mail_from,
            templates: self.mail_templates,
            retry_base: self.mail_retry_base,
            max_attempts: self.mail_max_attempts.max(1),
            lease: self.mail_lease,
            resend_cooldown: self.resend_cooldown,
            daily_cap_per_account: self.mail_daily_cap_per_account,
        }
    }
}
