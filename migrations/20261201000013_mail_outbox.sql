-- The invitation-email outbox (issue 12). What is owed is recorded by the events themselves:
-- `MemberInvited` / `InvitationResent` with a `mail_nonce`, committed with the command. The
-- mailer (crates/roster-api/src/mail) follows the log from `mail_checkpoint` and keeps here one
-- row per invitation: its current send and that send's delivery. No token is stored: the link
-- is re-derived from the nonce and a key that only the server's configuration holds.
CREATE TABLE mail_outbox (
    invitation_id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    email text NOT NULL,
    role text NOT NULL,
    -- The current send: 1 for the invitation, 2 after its first resend, ...
    send_count int NOT NULL,
    -- Who sent the current send (inviter or resender), when it expires, its token's digest.
    sent_by uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    token_digest text NOT NULL,
    -- The send's nonce (32 hex characters); NULL when the email was not owed (mail off).
    nonce text,
    -- QUEUED, SENT, FAILED or NOT_SENT (mail off, or the invitation was cancelled, accepted or
    -- expired before delivery). Set from events only.
    status text NOT NULL CHECK (status IN ('QUEUED', 'SENT', 'FAILED', 'NOT_SENT')),
    attempts int NOT NULL DEFAULT 0,
    last_error text,
    sent_at timestamptz,
    message_id text,
    -- The sender's schedule (not from events): the next attempt's earliest time, and the lease
    -- of the replica sending it now.
    next_attempt_at timestamptz,
    claimed_until timestamptz
);

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at NULLS FIRST) WHERE status = 'QUEUED' AND nonce IS NOT NULL;

-- How far the mailer has read the log; the row lock elects the one replica that reads it.
CREATE TABLE mail_checkpoint (
    name text PRIMARY KEY,
    position bigint NOT NULL
);
INSERT INTO mail_checkpoint (name, position) VALUES ('invitations', 0);
