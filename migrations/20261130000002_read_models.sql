-- Read models, written only by projections (crates/roster-projections).

-- One row per projection: the last global position applied, advanced in the same transaction
-- as the projection's writes. A projection that failed keeps its checkpoint and records why.
CREATE TABLE projection_checkpoints
(
    name            text PRIMARY KEY,
    position        bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    failed_position bigint,
    last_error      text
);

-- Projection "members".
CREATE TABLE users
(
    id            uuid PRIMARY KEY,
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    registered_at timestamptz NOT NULL
);
CREATE INDEX users_email ON users (email);

CREATE TABLE accounts
(
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    created_by uuid        NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE members
(
    account_id uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    email      text        NOT NULL,
    role       text        NOT NULL,
    joined_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

-- Projection "invitations". `state` is PENDING/ACCEPTED/CANCELLED; EXPIRED is derived from
-- `expires_at` when read.
CREATE TABLE invitations
(
    id            uuid PRIMARY KEY,
    account_id    uuid        NOT NULL,
    email         text        NOT NULL,
    role          text        NOT NULL,
    state         text        NOT NULL,
    invited_by    uuid        NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    last_sent_at  timestamptz NOT NULL,
    send_count    integer     NOT NULL,
    cancelled_by  uuid,
    cancelled_at  timestamptz,
    cancel_reason text,
    accepted_by   uuid,
    accepted_at   timestamptz
);
CREATE INDEX invitations_account ON invitations (account_id, created_at);

-- Projection "audit_log": one entry per account event.
CREATE TABLE audit_log
(
    position    bigint PRIMARY KEY,
    account_id  uuid        NOT NULL,
    occurred_at timestamptz NOT NULL,
    action      text        NOT NULL,
    actor_id    uuid,
    target      text,
    details     jsonb       NOT NULL,
    request_id  text
);
CREATE INDEX audit_log_account ON audit_log (account_id, position);
