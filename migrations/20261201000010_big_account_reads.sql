-- Reads of big accounts (issue 9, item 3): every list query walks an index in its own order
-- and stops after the page, `search` (a case-insensitive substring of email or display name)
-- is answered from trigram indexes, and totals come from per-account counters that the
-- projections keep in the same statements as the rows, instead of counting the account.

-- pg_trgm ships with Debian's postgresql package and is a trusted extension (PG 13+), so the
-- database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Members in join order, overall and per role (the list's ORDER BY joined_at, user_id).
CREATE INDEX members_account_joined ON members (account_id, joined_at, user_id);
CREATE INDEX members_account_role_joined ON members (account_id, role, joined_at, user_id);

-- Substring search (ILIKE '%…%'), prefixes included; users is shared by every account, the
-- search joins the matches to the account's members by primary key.
CREATE INDEX users_email_trgm ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_display_name_trgm ON users USING gin (display_name gin_trgm_ops);

-- Invitations newest first (ORDER BY created_at DESC, id), overall and per stored state; and
-- the pending ones by expiry, to count the expired (EXPIRED is derived when read).
DROP INDEX invitations_account;
CREATE INDEX invitations_account_created ON invitations (account_id, created_at DESC, id);
CREATE INDEX invitations_account_state_created ON invitations (account_id, state, created_at DESC, id);
CREATE INDEX invitations_pending_expiry ON invitations (account_id, expires_at) WHERE state = 'PENDING';

-- Counters, written by the projection that owns the counted rows (members / invitations) in
-- the same statement as those rows; rows whose count reaches 0 are deleted, so the same events
-- give the same rows however they are batched.
CREATE TABLE member_counts
(
    account_id uuid   NOT NULL,
    role       text   NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (account_id, role)
);
INSERT INTO member_counts (account_id, role, n)
SELECT account_id, role, count(*) FROM members GROUP BY account_id, role;

CREATE TABLE invitation_counts
(
    account_id uuid   NOT NULL,
    state      text   NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (account_id, state)
);
INSERT INTO invitation_counts (account_id, state, n)
SELECT account_id, state, count(*) FROM invitations GROUP BY account_id, state;
