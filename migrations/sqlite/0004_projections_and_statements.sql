-- Read models per generation, statement lines, receipt lookup (see
-- migrations/postgres/0004_projections_and_statements.sql).
CREATE TABLE projection_state (
    name                TEXT    NOT NULL PRIMARY KEY,
    active_generation   INTEGER NOT NULL,
    building_generation INTEGER,
    updated_at          TEXT    NOT NULL
);

CREATE TABLE projection_checkpoints (
    name           TEXT    NOT NULL,
    generation     INTEGER NOT NULL,
    code_version   INTEGER NOT NULL,
    transaction_id INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    events_seen    INTEGER NOT NULL,
    started_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    PRIMARY KEY (name, generation)
);

CREATE TABLE read_model_documents (
    projection TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    key        TEXT    NOT NULL,
    doc        TEXT    NOT NULL CHECK (json_valid(doc)),
    PRIMARY KEY (projection, generation, key)
);

CREATE TABLE statement_lines (
    account_number       TEXT    NOT NULL,
    line_id              TEXT    NOT NULL,
    booked_on            TEXT    NOT NULL,
    value_date           TEXT,
    amount               INTEGER NOT NULL CHECK (amount > 0),
    direction            TEXT    NOT NULL CHECK (direction IN ('credit', 'debit')),
    description          TEXT    NOT NULL,
    bank_reference       TEXT,
    counterparty_name    TEXT,
    counterparty_account TEXT,
    statement_id         TEXT,
    imported_at          TEXT    NOT NULL,
    PRIMARY KEY (account_number, line_id)
);

CREATE INDEX statement_lines_booked_idx ON statement_lines (account_number, booked_on);

CREATE INDEX events_receipt_id_idx ON events (json_extract(payload, '$.receipt_id'))
    WHERE event_type = 'ReceiptIssued';
