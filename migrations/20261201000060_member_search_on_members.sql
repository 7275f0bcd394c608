-- Member search (issue 9, item 3) on `members` itself: one trigram index per account's rows.
--
-- Before, a search matched `users` (every account's users) by two trigram indexes and joined
-- the hits to the account's members: a pattern's common trigrams ("mem", "exa", a shared
-- domain) meant decoding their posting lists for every user of the installation, twice (email,
-- then display name), and the statement was planned again at each call (0.8-0.9 ms in the
-- database at 10,000 members). Now `members` carries the member's display name (a user's email
-- and display name never change once registered, so the copy cannot go stale) and a `search`
-- column, `email || U+0001 || display_name`: search strings refuse control characters
-- (`Text`), so a pattern matches it exactly when it matches the email or the display name,
-- with one index scan. The index leads with `account_id` (btree_gin, trusted like pg_trgm), so
-- a search reads its own account's entries, whatever the other accounts hold (0.55-0.65 ms).
-- Member pages read the display name here too, without a look-up in `users` per row. It is
-- NULL only while the member's `UserRegistered` has not been projected (never in the logs the
-- service writes, where the user is registered first; the projection fills it in either order).
CREATE EXTENSION IF NOT EXISTS btree_gin;

ALTER TABLE members ADD COLUMN display_name text;
UPDATE members m SET display_name = u.display_name FROM users u WHERE u.id = m.user_id;
ALTER TABLE members ADD COLUMN search text NOT NULL GENERATED ALWAYS AS (email || E'\x01' || coalesce(display_name, '')) STORED;

-- Without GIN's pending list and without gathered statistics, for the reasons
-- …_search_without_pending_list.sql and …_search_estimates.sql give for the indexes this
-- replaces (a pattern is then estimated by its length, and from three characters on the
-- trigram index answers).
CREATE INDEX members_search ON members USING gin (account_id, search gin_trgm_ops) WITH (fastupdate = off);
ALTER TABLE members ALTER COLUMN search SET STATISTICS 0;

DROP INDEX users_email_trgm;
DROP INDEX users_display_name_trgm;
ALTER TABLE users ALTER COLUMN email SET STATISTICS -1, ALTER COLUMN display_name SET STATISTICS -1;
ANALYZE members;
