-- The audit log projection names people by email. Events that carry only an id (role changes,
-- removals, resends, cancellations, acceptances) find the email in the log's own earlier
-- `member.joined` / `member.invited` entry. Without these indexes that look-up read every entry
-- of the account (and, planned generically, of the whole table): ~15 ms per batch on an account
-- of 10,000 members, growing with the log (issue 9, "cost that does not grow").
CREATE INDEX audit_log_member_joined ON audit_log (account_id, (details ->> 'userId'), position)
    WHERE action = 'member.joined';
CREATE INDEX audit_log_member_invited ON audit_log (account_id, (details ->> 'invitationId'), position)
    WHERE action = 'member.invited';
