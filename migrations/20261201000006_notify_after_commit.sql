-- Notifications leave the committing transactions of the hot paths (see roster-store's
-- notifier.rs: a notifying transaction holds a cluster-wide lock through its WAL flush, which
-- serialised every append batch with every projector round).
--
-- Appends: the group-commit writer (roster_append) notifies after commit itself; the trigger
-- stays for every other way events get in (tools, COPY), which keep today's behaviour.
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    IF current_setting('roster.notify_after_commit', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('roster_events', '');
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION roster_append SET roster.notify_after_commit = 'on';

-- Checkpoints: only the projector moves them, and it notifies after its commits.
DROP TRIGGER projection_checkpoints_notify ON projection_checkpoints;
DROP FUNCTION projection_checkpoints_notify();
