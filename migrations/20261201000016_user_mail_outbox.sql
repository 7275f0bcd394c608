-- The outbox of a user's own emails (issue 12, "Email ownership"): the verification link a
-- sign-up owes and password-reset links. What is owed is recorded by the user's events
-- (`EmailVerificationRequested`, `PasswordResetRequested` with a `mail_nonce`), committed with
-- the command; the mailer (crates/roster-api/src/mail/user_mail.rs) follows the log from its
-- checkpoint row 'users' and keeps here one row per user and purpose: the latest request and
-- its delivery. No token is stored: the link is re-derived from the nonce and the server's key.
CREATE TABLE user_mail_outbox (
    user_id uuid NOT NULL,
    purpose text NOT NULL CHECK (purpose IN ('VERIFY', 'RESET')),
    -- The requesting event's global position: names the send (Message-ID); a newer request
    -- replaces the row.
    send_position bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    token_digest text NOT NULL,
    -- The request's nonce (32 hex characters); NULL once sent, failed or no longer owed.
    nonce text,
    -- QUEUED, SENT, FAILED or NOT_SENT (used, superseded or expired before delivery). Requests
    -- and their ends come from events; SENT and FAILED are the sender's (these emails record
    -- no delivery events).
    status text NOT NULL CHECK (status IN ('QUEUED', 'SENT', 'FAILED', 'NOT_SENT')),
    attempts int NOT NULL DEFAULT 0,
    last_error text,
    sent_at timestamptz,
    next_attempt_at timestamptz,
    claimed_until timestamptz,
    PRIMARY KEY (user_id, purpose)
);

CREATE INDEX user_mail_outbox_due ON user_mail_outbox (next_attempt_at NULLS FIRST) WHERE status = 'QUEUED' AND nonce IS NOT NULL;

INSERT INTO mail_checkpoint (name, position) VALUES ('users', 0);

-- Sessions are stateless tokens; a password reset sets this, and a session issued before it is
-- refused (crates/roster-api/src/app/ownership.rs): the owner who reclaims an address ends the
-- other person's sessions.
ALTER TABLE credentials ADD COLUMN sessions_valid_after timestamptz;
