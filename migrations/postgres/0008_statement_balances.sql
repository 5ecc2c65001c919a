-- The balances of each imported statement (issue 15): the opening and closing balance the bank
-- printed, and the period of its lines. An import checks that successive statements of an
-- account chain (one's closing balance is the next one's opening) and refuses a break, naming
-- both amounts. A re-import of the same statement (same period and balances) is one row.
CREATE TABLE statement_balances (
    account_number text        NOT NULL,
    first_day      date        NOT NULL,
    last_day       date        NOT NULL,
    opening        bigint      NOT NULL,
    closing        bigint      NOT NULL,
    format         text        NOT NULL,
    statement_id   text,
    filename       text,
    imported_at    timestamptz NOT NULL,
    CONSTRAINT statement_balances_pkey PRIMARY KEY (account_number, first_day, last_day),
    CONSTRAINT statement_balances_days_check CHECK (first_day <= last_day)
);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'feeledger_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON statement_balances TO feeledger_app;
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'grant on statement_balances to feeledger_app not given (%): see docs/OPERATIONS.md', SQLERRM;
END
$$;
