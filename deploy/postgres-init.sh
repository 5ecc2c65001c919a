#!/bin/sh
# Runs once, when the PostgreSQL container initialises an empty data directory: the login the
# feeledger nodes use, a member of the application role that migration 0005 grants
# SELECT/INSERT-only access to the event log (docs/OPERATIONS.md).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE feeledger_app NOLOGIN;
CREATE ROLE feeledger_node LOGIN PASSWORD '${FEELEDGER_NODE_PASSWORD}' IN ROLE feeledger_app;
SQL
