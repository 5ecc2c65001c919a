-- Every request a bank or intermediary sends to /webhooks/*, stored raw *before* it is parsed,
-- so nothing a bank sent is ever lost: malformed, forged, unmatched or duplicate requests are
-- kept with their outcome. Secrets in headers are redacted before storage. Money that arrives
-- is recorded in the event log (bank-credit-* streams); this table is the evidence of what
-- was received and how it was answered.
CREATE TABLE bank_notifications (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    provider       text        NOT NULL,
    received_at    timestamptz NOT NULL,
    method         text        NOT NULL,
    uri            text        NOT NULL,
    headers        jsonb       NOT NULL,
    body           bytea       NOT NULL,
    -- The body was larger than the limit; `body` holds its first bytes.
    body_truncated boolean     NOT NULL DEFAULT false,
    outcome        text        NOT NULL DEFAULT 'received',
    outcome_detail text,
    credit_id      text,
    http_status    integer,
    processed_at   timestamptz,
    CONSTRAINT bank_notifications_pkey PRIMARY KEY (id),
    CONSTRAINT bank_notifications_outcome_check CHECK (outcome IN
        ('received', 'recorded', 'unmatched', 'duplicate', 'ignored', 'rejected', 'failed'))
);

CREATE INDEX bank_notifications_credit_idx ON bank_notifications (credit_id);
CREATE INDEX bank_notifications_received_idx ON bank_notifications (received_at);

-- Reading all events of some types (agencies, unmatched credits, projection rebuilds).
CREATE INDEX events_type_idx ON events (event_type, global_position);
