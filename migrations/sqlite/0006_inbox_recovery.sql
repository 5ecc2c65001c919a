-- Allows the outcome 'superseded' (see migrations/postgres/0006_inbox_recovery.sql). SQLite
-- cannot change a CHECK constraint in place, so the table is rebuilt with the same rows.
CREATE TABLE bank_notifications_next (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    provider       TEXT    NOT NULL,
    received_at    TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    uri            TEXT    NOT NULL,
    headers        TEXT    NOT NULL CHECK (json_valid(headers)),
    body           BLOB    NOT NULL,
    body_truncated INTEGER NOT NULL DEFAULT 0,
    outcome        TEXT    NOT NULL DEFAULT 'received' CHECK (outcome IN
        ('received', 'recorded', 'unmatched', 'duplicate', 'ignored', 'rejected', 'failed', 'superseded')),
    outcome_detail TEXT,
    credit_id      TEXT,
    http_status    INTEGER,
    processed_at   TEXT
);

INSERT INTO bank_notifications_next
    (id, provider, received_at, method, uri, headers, body, body_truncated, outcome, outcome_detail, credit_id,
     http_status, processed_at)
SELECT id, provider, received_at, method, uri, headers, body, body_truncated, outcome, outcome_detail, credit_id,
       http_status, processed_at
FROM bank_notifications;

DROP TABLE bank_notifications;
ALTER TABLE bank_notifications_next RENAME TO bank_notifications;

CREATE INDEX bank_notifications_credit_idx ON bank_notifications (credit_id);
CREATE INDEX bank_notifications_received_idx ON bank_notifications (received_at);
CREATE INDEX bank_notifications_unfinished_idx ON bank_notifications (received_at) WHERE outcome = 'received';
