-- The per-account daily cap on invitation emails (issue 12, abuse limits). The mailer
-- (crates/roster-api/src/mail/quota.rs) writes one row per send it is about to hand over, in
-- the database rather than in memory, so every replica counts every replica's sends. A send
-- retried after a temporary failure keeps its one row; rows older than 24 hours are dropped
-- as the account sends again.
CREATE TABLE mail_sends (
    invitation_id uuid NOT NULL,
    -- Which send of the invitation (1 for the invitation, 2 after its first resend, ...).
    send_count int NOT NULL,
    account_id uuid NOT NULL,
    -- When the mailer first tried to deliver it.
    counted_at timestamptz NOT NULL,
    PRIMARY KEY (invitation_id, send_count)
);

CREATE INDEX mail_sends_by_account ON mail_sends (account_id, counted_at);
