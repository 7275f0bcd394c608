-- The event store. Columns up to `metadata` are postgres-es 0.5's layout (so its
-- PostgresEventRepository reads this table); the rest serve global, gap-free reading.
CREATE TABLE events
(
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL CHECK (sequence >= 1),
    event_type     text   NOT NULL,
    event_version  text   NOT NULL,
    payload        jsonb  NOT NULL,
    metadata       jsonb  NOT NULL,
    -- Global position: assigned at insert; appends are serialised (see below) so positions
    -- become visible in increasing order and a reader of "position > P" never skips one.
    position       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    -- The writing transaction, kept for diagnosis of in-flight writers.
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The tenant an event belongs to, for account-scoped reads.
    account_id     uuid GENERATED ALWAYS AS (
        CASE WHEN aggregate_type = 'Account' THEN aggregate_id::uuid END) STORED,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE INDEX events_account_position ON events (account_id, position) WHERE account_id IS NOT NULL;

-- Every insert takes one transaction-scoped advisory lock before its rows get positions, so a
-- transaction's positions are assigned and committed before the next appender can take any
-- (Message DB's method). Readers therefore need no gap detection.
CREATE FUNCTION events_serialise_appends() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_advisory_xact_lock(7262351400137791001);
    RETURN NULL;
END
$$;
CREATE TRIGGER events_serialise_appends
    BEFORE INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION events_serialise_appends();

-- Wakes followers (LISTEN roster_events) when the appending transaction commits.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('roster_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify
    AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- Events are facts: never changed, never deleted.
CREATE FUNCTION events_immutable() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END
$$;
CREATE TRIGGER events_immutable
    BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION events_immutable();

-- Aggregate snapshots: one row per aggregate, the state after `last_sequence`.
CREATE TABLE snapshots
(
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint NOT NULL CHECK (last_sequence >= 1),
    -- The snapshot format version; a snapshot of another format is ignored.
    current_snapshot bigint NOT NULL,
    payload          jsonb  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Credentials live outside the event log: events hold no secret.
CREATE TABLE credentials
(
    user_id       uuid PRIMARY KEY,
    email         text        NOT NULL UNIQUE,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
