-- Why a password-reset email is owed (issue 10, "`signUp` reveals registered emails"): the
-- `reason` of `PasswordResetRequested` (`REQUESTED`, or `SIGN_UP_ATTEMPT` when someone tried to
-- sign up with the registered address), copied here by the mailer's ingest so the `reset.*`
-- templates can word the email by it. Verification rows keep the default.
ALTER TABLE user_mail_outbox
    ADD COLUMN reason text NOT NULL DEFAULT 'REQUESTED' CHECK (reason IN ('REQUESTED', 'SIGN_UP_ATTEMPT'));
