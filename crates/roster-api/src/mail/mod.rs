//! Emails: the outbox, its mailer loop, templates and transports (issue 12). Invitations are
//! described here; a user's own emails (email verification, password reset) go through the same
//! loop and transport from their own table, see [`user_mail`].
//!
//! **What is owed** is recorded with the command, in the same commit: `MemberInvited` and
//! `InvitationResent` carry a `mail_nonce` when the server delivers email. The event log is the
//! outbox; the table `mail_outbox` is the mailer's view of it (one row per invitation: its
//! current send and that send's delivery), kept by [`outbox::ingest`] from the log, on one
//! replica at a time (the checkpoint row's lock).
//!
//! **Delivery** happens after commit, never in the request: [`Mailer::run`] claims due rows
//! (a lease, so two replicas never send one row at once), rebuilds each link from the nonce and
//! the server's token key (the database never holds a token), hands the message to the
//! transport, and records the outcome as an event (`InvitationEmailSent`, or
//! `InvitationEmailFailed` with the reply). Temporary failures are retried with exponential
//! back-off and jitter up to [`MailSettings::max_attempts`]; 5xx replies fail at once. A crash
//! between commit and delivery delivers after restart; a crash after the server accepted the
//! message but before its event was recorded delivers it again, with the same `Message-ID`
//! (`<invitation id>.<send>@<public host>`) for receivers to drop the duplicate.
//!
//! **Abuse limits**: a resend within [`MailSettings::resend_cooldown`] of the last send is
//! refused by the domain (`RATE_LIMITED`); each account has at most
//! [`MailSettings::daily_cap_per_account`] emails in any 24 hours, counted in the database by
//! [`quota`], beyond which a send is `FAILED` with the reason and nothing goes out.

pub mod message;
pub mod outbox;
pub mod quota;
pub mod settings;
pub mod transport;
pub mod user_mail;

use crate::app::App;
use crate::error::ApiError;
use lettre::message::Mailbox;
use message::{Invitation, Templates};
use outbox::Due;
use roster_domain::account::EmailOutcome;
use roster_domain::{InviteToken, Role, SendNonce};
use std::time::Duration;
use transport::Transport;

pub use settings::{MailDelivery, MailSettings};

/// A mailer that could not start.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A setting is wrong, in words naming it.
    #[error("{0}")]
    Config(String),
}

/// The mailer of one server: opened transport, loaded templates.
pub struct Mailer {
    app: App,
    transport: Transport,
    templates: Templates,
    from: Mailbox,
    host: String,
}

impl Mailer {
    /// The mailer of `app`'s settings, or `None` when mail is off.
    ///
    /// Errors: [`MailError::Config`] naming the bad setting (`ROSTER_SMTP_URL`,
    /// `ROSTER_MAIL_DIR`, `ROSTER_MAIL_FROM`, `ROSTER_MAIL_TEMPLATES`).
    pub fn new(app: &App) -> Result<Option<Self>, MailError> {
        let settings = &app.config().mail;
        let transport = match &settings.delivery {
            MailDelivery::Off => return Ok(None),
            MailDelivery::Smtp(url) => Transport::smtp(url).map_err(|e| MailError::Config(format!("ROSTER_SMTP_URL: {e}")))?,
            MailDelivery::Directory(dir) => Transport::directory(dir.clone()).map_err(|e| MailError::Config(format!("ROSTER_MAIL_DIR {}: {e}", dir.display())))?,
        };
        let templates = Templates::load(settings.templates.as_deref()).map_err(|e| MailError::Config(format!("ROSTER_MAIL_TEMPLATES: {e}")))?;
        let from = settings.from.parse().map_err(|e| MailError::Config(format!("ROSTER_MAIL_FROM {:?}: {e}", settings.from)))?;
        let public = &app.config().public_url;
        let host = public.split("://").nth(1).unwrap_or(public).split(['/', ':']).next().unwrap_or("localhost").to_string();
        Ok(Some(Self { app: app.clone(), transport, templates, from, host }))
    }

    /// Runs until the task is aborted: reads the log into the outbox, sends what is due, then
    /// waits for a commit of this process or a second (other replicas' commits, due retries).
    pub async fn run(self) {
        let mut committed = self.app.committed();
        loop {
            if let Err(err) = self.round().await {
                tracing::warn!(%err, "mailer round failed; retrying");
            }
            tokio::select! {
                _ = committed.changed() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// One round: ingest, then send each due row.
    async fn round(&self) -> Result<(), ApiError> {
        while outbox::ingest(self.app.pool()).await? {}
        let settings = &self.app.config().mail;
        let now = self.app.now();
        for due in outbox::claim(self.app.pool(), now, now + settings.lease, 16).await? {
            self.deliver(due).await;
        }
        // Verification and password-reset emails (see [`user_mail`]).
        self.user_round().await?;
        Ok(())
    }

    /// Sends one due row and records the outcome.
    async fn deliver(&self, due: Due) {
        let settings = &self.app.config().mail;
        let now = self.app.now();
        let pool = self.app.pool();
        if due.expires_at <= now {
            // The link would not work: nothing is owed any more.
            if let Err(err) = outbox::not_sent(pool, &due).await {
                tracing::warn!(%err, "mailer: marking an expired send");
            }
            return;
        }
        let attempt = u32::try_from(due.attempts).unwrap_or(0) + 1;
        let outcome = match quota::take_place(pool, &due, now, settings.daily_cap_per_account).await {
            Err(err) => {
                // Its lease runs out and it is tried again.
                tracing::warn!(%err, invitation = %due.invitation_id, "mailer: counting the account's daily emails failed");
                return;
            }
            Ok(false) => {
                tracing::warn!(invitation = %due.invitation_id, account = %due.account_id, cap = settings.daily_cap_per_account, "invitation email not sent: the account's daily cap is reached");
                EmailOutcome::Failed { attempt, reply: quota::cap_reply(settings.daily_cap_per_account), gave_up: true }
            }
            Ok(true) => self.send(&due, attempt).await,
        };
        let retry_at = match &outcome {
            EmailOutcome::Failed { gave_up: false, .. } => Some(now + chrono::Duration::from_std(settings.backoff(attempt, jitter())).unwrap_or_default()),
            _ => None,
        };
        if let Err(err) = self.app.record_email(due.account_id, due.invitation_id, due.send_count, outcome).await {
            // Its lease runs out and it is tried again (a sent message then goes twice, with
            // one Message-ID).
            tracing::warn!(%err, invitation = %due.invitation_id, "mailer: recording the outcome failed");
            return;
        }
        if let Some(at) = retry_at {
            if let Err(err) = outbox::retry_at(pool, &due, at).await {
                tracing::warn!(%err, "mailer: scheduling a retry");
            }
        }
    }

    /// Builds and hands over `due`'s message: attempt `attempt`'s outcome.
    async fn send(&self, due: &Due, attempt: u32) -> EmailOutcome {
        let message = match self.message(due) {
            Ok(message) => message,
            Err(reply) => return EmailOutcome::Failed { attempt, reply, gave_up: true },
        };
        match self.transport.send(message).await {
            Ok(went) => {
                tracing::info!(invitation = %due.invitation_id, send = due.send_count, handed_to = %went, "invitation email sent");
                EmailOutcome::Sent { message_id: self.message_id(due) }
            }
            Err(failure) => {
                let gave_up = failure.permanent || attempt >= self.app.config().mail.max_attempts;
                tracing::warn!(invitation = %due.invitation_id, attempt, gave_up, reply = %failure.reply, "invitation email failed");
                EmailOutcome::Failed { attempt, reply: failure.reply, gave_up }
            }
        }
    }

    fn message_id(&self, due: &Due) -> String {
        format!("{}.{}@{}", due.invitation_id, due.send_count, self.host)
    }

    /// The message of `due`, its link rebuilt from the nonce. A link whose digest is not the
    /// recorded one means the token key changed (`ROSTER_JWT_SECRET`) since the send.
    fn message(&self, due: &Due) -> Result<lettre::Message, String> {
        let nonce: SendNonce = due.nonce.clone().try_into()?;
        let token = InviteToken::derive(&self.app.config().token_key(), due.account_id, due.invitation_id, &nonce);
        if token.digest().as_str() != due.token_digest {
            return Err("the server's token key changed since this invitation was sent (ROSTER_JWT_SECRET): resend it for a new link".into());
        }
        let role = due.role.parse::<Role>().map(Role::display_name).unwrap_or("a member");
        let invitation = Invitation {
            to: due.email.clone(),
            account_name: due.account_name.clone().unwrap_or_default(),
            inviter_name: due.inviter_name.clone().unwrap_or_else(|| "A colleague".into()),
            role: role.to_string(),
            link: self.app.config().invite_link(&token.encode()),
            expires_at: Invitation::expiry_words(due.expires_at),
        };
        self.templates.message(&self.from, &self.message_id(due), &invitation)
    }
}

/// A uniform number in [0, 1) from the OS, for back-off jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    f64::from(u16::from_le_bytes(b)) / 65536.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let s = MailSettings { retry_base: Duration::from_secs(5), ..MailSettings::default() };
        assert_eq!(s.backoff(1, 0.5), Duration::from_secs(5));
        assert_eq!(s.backoff(3, 0.5), Duration::from_secs(20));
        assert_eq!(s.backoff(2, 0.0), Duration::from_millis(7500));
        assert!(s.backoff(2, 0.999) < Duration::from_secs(13));
        assert_eq!(s.backoff(40, 0.5), Duration::from_secs(3600));
    }
}
