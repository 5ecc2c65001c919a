-- The balances of each imported statement (issue 15): see the PostgreSQL migration.
CREATE TABLE statement_balances (
    account_number TEXT    NOT NULL,
    first_day      TEXT    NOT NULL,
    last_day       TEXT    NOT NULL,
    opening        INTEGER NOT NULL,
    closing        INTEGER NOT NULL,
    format         TEXT    NOT NULL,
    statement_id   TEXT,
    filename       TEXT,
    imported_at    TEXT    NOT NULL,
    PRIMARY KEY (account_number, first_day, last_day),
    CHECK (first_day <= last_day)
);
