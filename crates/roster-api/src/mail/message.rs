//! The emails: invitation, email verification and password reset (issue 12). Each has a
//! subject, a text and an HTML part from templates (minijinja), built into a MIME message by
//! lettre.
//!
//! The templates are embedded (`crates/roster-api/templates/mail`); an operator may override
//! any of them with a file of the same name in `ROSTER_MAIL_TEMPLATES`. HTML templates escape
//! every value (minijinja's auto-escaping by the `.html` extension); the subject is rendered as
//! text and lettre encodes headers, and names and emails are parsed values without control
//! characters, so no value can add a header. A name may still look like an RFC 2047 encoded
//! word (`=?utf-8?q?…?=`, plain ASCII), which mail clients would decode into whatever it hides
//! (a CR LF, a bidi override): [`subject_text`] breaks every `=?` so it shows as typed.

use chrono::{DateTime, Utc};
use lettre::message::{header, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use minijinja::Environment;
use roster_domain::ResetReason;
use serde::Serialize;
use std::path::Path;

const TEMPLATES: [(&str, &str); 9] = [
    ("invitation.subject.txt", include_str!("../../templates/mail/invitation.subject.txt")),
    ("invitation.txt", include_str!("../../templates/mail/invitation.txt")),
    ("invitation.html", include_str!("../../templates/mail/invitation.html")),
    ("verify.subject.txt", include_str!("../../templates/mail/verify.subject.txt")),
    ("verify.txt", include_str!("../../templates/mail/verify.txt")),
    ("verify.html", include_str!("../../templates/mail/verify.html")),
    ("reset.subject.txt", include_str!("../../templates/mail/reset.subject.txt")),
    ("reset.txt", include_str!("../../templates/mail/reset.txt")),
    ("reset.html", include_str!("../../templates/mail/reset.html")),
];

/// What a verification or password-reset email says (templates `verify.*`, `reset.*`; each
/// field is a template variable of the same name).
#[derive(Debug, Clone, Serialize)]
pub struct UserLink {
    /// The user's address.
    pub to: String,
    /// The user's display name.
    pub display_name: String,
    /// The one-time link.
    pub link: String,
    /// When the link stops working, as words (UTC).
    pub expires_at: String,
    /// Why a reset email is sent ([`roster_domain::ResetReason`]): `REQUESTED` (someone asked
    /// for it) or `SIGN_UP_ATTEMPT` (someone tried to sign up with this address); always
    /// `REQUESTED` for `verify.*`.
    pub reason: String,
}

/// What an invitation email says.
#[derive(Debug, Clone, Serialize)]
pub struct Invitation {
    /// The invitee's address.
    pub to: String,
    /// The inviting account's name.
    pub account_name: String,
    /// Who sent this send (the inviter, or who resent it).
    pub inviter_name: String,
    /// The role's display name, e.g. "Security Engineer".
    pub role: String,
    /// The one-time link.
    pub link: String,
    /// When the link stops working, as words (UTC).
    pub expires_at: String,
}

impl Invitation {
    /// `at` as the email shows it: `1 December 2026, 10:00 UTC`.
    pub fn expiry_words(at: DateTime<Utc>) -> String {
        at.format("%-d %B %Y, %H:%M UTC").to_string()
    }
}

/// The loaded templates.
pub struct Templates(Environment<'static>);

impl Templates {
    /// The embedded templates, each replaced by the file of the same name in `dir` if there
    /// is one; every template is rendered once with sample values, so a broken override fails
    /// at start-up rather than at the first send.
    ///
    /// Errors: an override cannot be read, does not parse or does not render, in words
    /// naming the file.
    pub fn load(dir: Option<&Path>) -> Result<Self, String> {
        let mut env = Environment::new();
        for (name, embedded) in TEMPLATES {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.exists()) {
                Some(path) => std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                None => embedded.to_string(),
            };
            env.add_template_owned(name, source).map_err(|e| format!("mail template {name}: {e}"))?;
        }
        let templates = Self(env);
        let sample = Invitation {
            to: "ada@example.com".into(),
            account_name: "Acme".into(),
            inviter_name: "Grace".into(),
            role: "Developer".into(),
            link: "https://roster.example/invite/x".into(),
            expires_at: Invitation::expiry_words(Utc::now()),
        };
        templates.render("invitation", &sample)?;
        let mut user = UserLink { to: sample.to, display_name: "Ada".into(), link: sample.link, expires_at: sample.expires_at, reason: "REQUESTED".into() };
        templates.render("verify", &user)?;
        templates.render("reset", &user)?;
        user.reason = ResetReason::SignUpAttempt.as_str().into();
        templates.render("reset", &user)?;
        Ok(templates)
    }

    /// The subject, text and HTML of email `kind` (`invitation`, `verify`, `reset`).
    fn render(&self, kind: &str, context: &impl Serialize) -> Result<[String; 3], String> {
        let render = |part: &str| {
            let name = format!("{kind}.{part}");
            self.0.get_template(&name).and_then(|t| t.render(context)).map_err(|e| format!("mail template {name}: {e}"))
        };
        Ok([render("subject.txt")?, render("txt")?, render("html")?])
    }

    /// The message for `invitation` from `from`, with `Message-ID: <message_id>`.
    ///
    /// Errors: an address does not parse, or a template fails to render.
    pub fn message(&self, from: &Mailbox, message_id: &str, invitation: &Invitation) -> Result<Message, String> {
        Self::build(from, message_id, &invitation.to, self.render("invitation", invitation)?)
    }

    /// The `kind` email (`verify` or `reset`) for `link` from `from`, with
    /// `Message-ID: <message_id>`.
    ///
    /// Errors: an address does not parse, or a template fails to render.
    pub fn user_message(&self, kind: &str, from: &Mailbox, message_id: &str, link: &UserLink) -> Result<Message, String> {
        Self::build(from, message_id, &link.to, self.render(kind, link)?)
    }

    fn build(from: &Mailbox, message_id: &str, to: &str, [subject, text, html]: [String; 3]) -> Result<Message, String> {
        let to: Mailbox = to.parse().map_err(|e| format!("recipient {to}: {e}"))?;
        Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject_text(subject.trim()))
            .message_id(Some(format!("<{message_id}>")))
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(header::ContentType::TEXT_PLAIN).body(text))
                    .singlepart(SinglePart::builder().header(header::ContentType::TEXT_HTML).body(html)),
            )
            .map_err(|e| e.to_string())
    }
}

/// `subject` with each `=?` broken by a zero-width space: shown the same, never decoded as an
/// encoded word (the space also makes lettre encode the whole subject itself).
fn subject_text(subject: &str) -> String {
    subject.replace("=?", "=\u{200B}?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_html_and_cannot_add_headers() {
        let t = Templates::load(None).unwrap();
        let inv = Invitation {
            to: "grace@example.com".into(),
            account_name: "<script>alert(1)</script>".into(),
            inviter_name: "Ada\r\nBcc: victim@example.com".into(),
            role: "Security Engineer".into(),
            link: "http://127.0.0.1/invite/abc".into(),
            expires_at: "8 December 2026, 10:00 UTC".into(),
        };
        let from: Mailbox = "Roster <roster@example.com>".parse().unwrap();
        let raw = String::from_utf8(t.message(&from, "i.1@example.com", &inv).unwrap().formatted()).unwrap();
        // Plain text may say `<script>`; the HTML part must not.
        let html = raw.split("Content-Type: text/html").nth(1).expect("an HTML part");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        let headers = raw.split("\r\n\r\n").next().unwrap();
        assert!(!headers.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{headers}");
        assert!(headers.contains("Message-ID: <i.1@example.com>"), "{headers}");
    }

    #[test]
    fn an_encoded_word_in_a_name_is_not_decoded_into_the_subject() {
        let t = Templates::load(None).unwrap();
        let inv = Invitation {
            to: "grace@example.com".into(),
            account_name: "=?utf-8?q?Acme=0D=0ABcc:_x@evil.test?=".into(),
            inviter_name: "=?utf-8?b?4oCuZXZpbA==?=".into(),
            role: "Guest".into(),
            link: "http://127.0.0.1/invite/abc".into(),
            expires_at: "8 December 2026, 10:00 UTC".into(),
        };
        let from: Mailbox = "Roster <roster@example.com>".parse().unwrap();
        let raw = t.message(&from, "i.1@example.com", &inv).unwrap().formatted();
        let parsed = mailparse::parse_mail(&raw).unwrap();
        let subject = parsed.headers.iter().find(|h| h.get_key() == "Subject").unwrap().get_value();
        assert!(!subject.contains('\u{202e}') && !subject.contains('\r') && !subject.contains('\n'), "{subject:?}");
        assert!(subject.replace('\u{200B}', "").contains("=?utf-8?b?4oCuZXZpbA==?= invited you"), "{subject:?}");
    }

    #[test]
    fn a_reset_email_is_worded_by_its_reason() {
        let t = Templates::load(None).unwrap();
        let mut link = UserLink {
            to: "ada@example.com".into(),
            display_name: "Ada".into(),
            link: "https://roster.example/reset/abc".into(),
            expires_at: "1 December 2026, 11:00 UTC".into(),
            reason: ResetReason::Requested.as_str().into(),
        };
        let [subject, text, _] = t.render("reset", &link).unwrap();
        assert_eq!(subject.trim(), "Reset your Roster password");
        assert!(text.contains("asked to reset") && !text.contains("tried to create"), "{text}");
        link.reason = ResetReason::SignUpAttempt.as_str().into();
        let [subject, text, html] = t.render("reset", &link).unwrap();
        assert_eq!(subject.trim(), "Someone tried to create a Roster account with your email");
        assert!(text.contains("tried to create a Roster account with ada@example.com") && text.contains(&link.link), "{text}");
        assert!(html.contains("tried to create a Roster account") && !html.contains("asked to reset"), "{html}");
    }

    #[test]
    fn a_broken_override_is_refused_at_load() {
        let dir = std::env::temp_dir().join(format!("roster-tpl-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("invitation.txt"), "{{ link ").unwrap();
        let err = Templates::load(Some(&dir)).err().unwrap();
        assert!(err.contains("invitation.txt"), "{err}");
        std::fs::write(dir.join("invitation.txt"), "Join: {{ link }}").unwrap();
        assert!(Templates::load(Some(&dir)).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
