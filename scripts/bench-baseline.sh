# Sourced by scripts/bench-*.sh: the raw-insert baseline `pgbench` runs beside feeledger, in the
# same database and the same run.

# bench_events_table URL: a scratch table with the columns, defaults, constraints and indexes of
# `events`, no triggers.
bench_events_table() {
  psql "$1" -q <<'SQL'
CREATE TABLE bench_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
ALTER TABLE bench_events ALTER COLUMN global_position ADD GENERATED ALWAYS AS IDENTITY;
SQL
}

# bench_insert_sql FILE: the `pgbench` script, one `PaymentReceived`-shaped row per transaction.
bench_insert_sql() {
  cat >"$1" <<'SQL'
INSERT INTO bench_events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash)
VALUES ('bench-' || gen_random_uuid(), 1, gen_random_uuid(), 'PaymentReceived', 1,
  '{"payment_id":"0190f3a4-0000-7000-8000-000000000000","idempotency_key":"bench-1","amount":"3000","channel":"VIETQR","reference":"H34.22.6-240426-0002","provider":"sepay","bank_reference":"MBVCB.3278907687","qr_id":null,"payer_account":null,"received_at":"2024-04-26T02:18:00Z"}',
  '{"actor":"bench"}', now(), sha256('x'::bytea));
SQL
}

# bench_history URL BIN_DIR: gives a new database what a deployed one has: a history
# ($BENCH_HISTORY events, 100,000 by default, from `feeledger-bench generate`) and statistics
# (`ANALYZE`, which autovacuum runs on a deployed PostgreSQL). Without statistics, plans cached
# while the log is small can scan the whole log for ever (docs/BENCHMARKS.md, the p99 modes).
# BENCH_HISTORY=0 measures the bare new database instead.
bench_history() {
  local events=${BENCH_HISTORY:-100000}
  if [ "$events" -gt 0 ]; then
    "$2/feeledger-bench" generate --database-url "$1" --events "$events" --clients 8 >/dev/null
  fi
  case $1 in
    postgres*) psql -qc "ANALYZE" "$1" ;;
    sqlite://*) "$2/feeledger" migrate --database-url "$1" >/dev/null 2>&1; sqlite3 "${1#sqlite://}" "ANALYZE" ;;
  esac
}

# bench_caught_up URL FEELEDGER: waits until every projection has applied the whole log (the
# history), so that a measurement starts with the server idle.
bench_caught_up() {
  for _ in $(seq 1 1200); do
    "$2" projections status --database-url "$1" 2>/dev/null \
      | awk 'NR > 1 && $5 != 0 { behind = 1 } END { exit (NR < 2 || behind) }' && return 0
    sleep 0.5
  done
  echo "the projections of $1 never caught up" >&2
  return 1
}
