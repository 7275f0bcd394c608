-- Audit log of big accounts (issue 9, item 3, for audit-log consumers): totals without counting
-- the account's entries, and pages found by position instead of skipped over.
--
-- `auditLog` counted every entry of the account (or of one action) for each page's
-- `totalCount`, and paged by `OFFSET`: page k read k pages first. Now the projection keeps
-- per-account, per-action counters in the same statement as the entries (as `member_counts`
-- and `invitation_counts`; entries are only ever inserted), and a page starts after the
-- position of the last entry seen, by `audit_log_account` or the index below.
CREATE TABLE audit_counts
(
    account_id uuid   NOT NULL,
    action     text   NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (account_id, action)
);
INSERT INTO audit_counts (account_id, action, n)
SELECT account_id, action, count(*) FROM audit_log GROUP BY account_id, action;

CREATE INDEX audit_log_account_action ON audit_log (account_id, action, position);
