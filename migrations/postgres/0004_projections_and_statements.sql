-- Read models (projections). Each projection keeps its documents per *generation*: queries read
-- the active generation while a rebuild fills the next one from position zero; switching is one
-- UPDATE, then the old generation's rows are deleted. The documents and the checkpoint of a
-- generation are written in the same transaction, so a crash never applies a batch twice or
-- skips one.
CREATE TABLE projection_state (
    name                text        NOT NULL,
    active_generation   integer     NOT NULL,
    building_generation integer,
    updated_at          timestamptz NOT NULL,
    CONSTRAINT projection_state_pkey PRIMARY KEY (name)
);

CREATE TABLE projection_checkpoints (
    name           text        NOT NULL,
    generation     integer     NOT NULL,
    -- The code version of the projection that built this generation.
    code_version   integer     NOT NULL,
    transaction_id bigint      NOT NULL,
    position       bigint      NOT NULL,
    events_seen    bigint      NOT NULL,
    started_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT projection_checkpoints_pkey PRIMARY KEY (name, generation)
);

CREATE TABLE read_model_documents (
    projection text    NOT NULL,
    generation integer NOT NULL,
    key        text    NOT NULL,
    doc        jsonb   NOT NULL,
    CONSTRAINT read_model_documents_pkey PRIMARY KEY (projection, generation, key)
);

-- Bank statement lines, imported from CSV or ISO 20022 camt.053. A line is stored once per
-- account: importing the same file again changes nothing.
CREATE TABLE statement_lines (
    account_number       text        NOT NULL,
    line_id              text        NOT NULL,
    booked_on            date        NOT NULL,
    value_date           date,
    amount               bigint      NOT NULL,
    direction            text        NOT NULL,
    description          text        NOT NULL,
    bank_reference       text,
    counterparty_name    text,
    counterparty_account text,
    statement_id         text,
    imported_at          timestamptz NOT NULL,
    CONSTRAINT statement_lines_pkey PRIMARY KEY (account_number, line_id),
    CONSTRAINT statement_lines_amount_positive CHECK (amount > 0),
    CONSTRAINT statement_lines_direction_check CHECK (direction IN ('credit', 'debit'))
);

CREATE INDEX statement_lines_booked_idx ON statement_lines (account_number, booked_on);

-- GET /receipts/{receipt_id}: the receipt's case.
CREATE INDEX events_receipt_id_idx ON events ((payload->>'receipt_id'))
    WHERE event_type = 'ReceiptIssued';
