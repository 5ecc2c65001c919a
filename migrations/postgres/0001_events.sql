-- The event log: the one source of truth. Every fee fact of every case, agency and fee
-- schedule is a row here; everything else is derived and can be rebuilt from it.

CREATE TABLE events (
    -- Commit-independent insertion order. Not gap-free and not commit order: readers must
    -- order by (transaction_id, global_position) behind the snapshot barrier (see below).
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    -- The writing transaction. A reader only reads rows whose transaction is older than the
    -- oldest transaction still running (pg_snapshot_xmin(pg_current_snapshot())), so an event
    -- committed late can never be skipped by a reader that already moved past its position.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- SHA-256(previous hash in the stream || canonical bytes of this event): tamper evidence.
    hash            bytea       NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (global_position),
    -- Optimistic concurrency: two writers cannot both append version N of a stream.
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_positive CHECK (stream_version >= 1),
    CONSTRAINT events_hash_is_sha256 CHECK (octet_length(hash) = 32)
);

-- The commit-safe read order and its checkpoint.
CREATE INDEX events_commit_order_idx ON events (transaction_id, global_position);
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

-- Append-only, enforced by the database for every role, owner included.
CREATE FUNCTION events_reject_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_mutation();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_mutation();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_mutation();

-- Readers on other nodes are woken by NOTIFY feeledger_events, sent by the writing process
-- after commit and coalesced (see event_store/postgres.rs): a NOTIFY inside the append
-- transaction would serialise every commit on PostgreSQL's global notify lock.

-- Client idempotency keys of commands: a retry returns the first result; the same key with a
-- different request is an error. Written in the same transaction as the events it produced.
CREATE TABLE command_idempotency (
    idempotency_key text        NOT NULL,
    request_hash    bytea       NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    recorded_at     timestamptz NOT NULL,
    CONSTRAINT command_idempotency_pkey PRIMARY KEY (idempotency_key)
);

-- Installation-wide settings, e.g. the token signing key generated on first start.
CREATE TABLE settings (
    name  text NOT NULL,
    value text NOT NULL,
    CONSTRAINT settings_pkey PRIMARY KEY (name)
);
