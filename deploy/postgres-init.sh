#!/bin/sh
# Runs once, when the PostgreSQL container initialises an empty data directory: the login the
# feeledger nodes use, a member of the application role that migration 0005 grants
# SELECT/INSERT-only access to the event log (docs/OPERATIONS.md), and the login the streaming
# replica (postgres-replica in docker-compose.yml) copies and follows the primary with.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE feeledger_app NOLOGIN;
CREATE ROLE feeledger_node LOGIN PASSWORD '${FEELEDGER_NODE_PASSWORD}' IN ROLE feeledger_app;
CREATE ROLE replicator REPLICATION LOGIN PASSWORD '${REPLICATION_PASSWORD}';
-- From the next start on (not during this initialisation, which has no standby to wait for), a
-- commit returns once the replica has it on disk: an acknowledged payment survives the loss of
-- this server. While the replica is down, commits wait (docs/OPERATIONS.md).
ALTER SYSTEM SET synchronous_standby_names = '*';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
