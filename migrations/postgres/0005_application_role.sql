-- The role the service runs as in production (docs/OPERATIONS.md, "Run as the application
-- role"): it may read and append events but never change or remove one. The triggers of 0001
-- stop everyone, owner included; these grants stop the service's own role before that, so a
-- compromised node cannot even try.
--
-- Roles belong to the whole PostgreSQL cluster, so the role is created only if missing, and
-- a migration run by a user without CREATEROLE leaves a notice instead of failing: an
-- operator then creates the role once as a superuser and re-runs the grants below.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'feeledger_app') THEN
        CREATE ROLE feeledger_app NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL; -- created concurrently by a migration of another database of this cluster
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'role feeledger_app not created (%): create it as a superuser, see docs/OPERATIONS.md', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'feeledger_app') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO feeledger_app', current_schema());
        -- Read models, inbox, statements, settings: read and write.
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO feeledger_app', current_schema());
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO feeledger_app', current_schema());
        -- The event log: append and read only. Idempotency records are never changed either.
        REVOKE UPDATE, DELETE, TRUNCATE ON events FROM feeledger_app;
        REVOKE UPDATE, DELETE, TRUNCATE ON command_idempotency FROM feeledger_app;
        -- The migrations table: readable, so a node can check the schema is current.
        REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM feeledger_app;
    END IF;
END
$$;
