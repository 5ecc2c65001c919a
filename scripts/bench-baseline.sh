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
