-- Wakes every server's projector loop (LISTEN roster_checkpoints) when a projection's
-- checkpoint moves, in the moving transaction: a server waiting for read-your-writes learns
-- that another server advanced the projection.
CREATE FUNCTION projection_checkpoints_notify() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('roster_checkpoints', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER projection_checkpoints_notify
    AFTER UPDATE OF position ON projection_checkpoints
    FOR EACH ROW WHEN (OLD.position IS DISTINCT FROM NEW.position)
    EXECUTE FUNCTION projection_checkpoints_notify();
