-- Every request a bank or intermediary sends to /webhooks/*, stored raw before it is parsed
-- (see migrations/postgres/0003_bank_notifications.sql).
CREATE TABLE bank_notifications (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    provider       TEXT    NOT NULL,
    received_at    TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    uri            TEXT    NOT NULL,
    headers        TEXT    NOT NULL CHECK (json_valid(headers)),
    body           BLOB    NOT NULL,
    body_truncated INTEGER NOT NULL DEFAULT 0,
    outcome        TEXT    NOT NULL DEFAULT 'received' CHECK (outcome IN
        ('received', 'recorded', 'unmatched', 'duplicate', 'ignored', 'rejected', 'failed')),
    outcome_detail TEXT,
    credit_id      TEXT,
    http_status    INTEGER,
    processed_at   TEXT
);

CREATE INDEX bank_notifications_credit_idx ON bank_notifications (credit_id);
CREATE INDEX bank_notifications_received_idx ON bank_notifications (received_at);

CREATE INDEX events_type_idx ON events (event_type, global_position);
