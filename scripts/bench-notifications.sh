#!/usr/bin/env bash
# Signed bank notifications over HTTP (`feeledger-bench notifications`) from N concurrent
# senders, beside the raw insert rate of the same database measured in the same run:
#   PostgreSQL: `pgbench` single-row inserts (one row per transaction, the shape and indexes of
#     `events`, no triggers) at the same concurrency;
#   SQLite: the `sqlite3` CLI inserting the same rows one per transaction, with the server's
#     pragmas (WAL, synchronous=FULL): SQLite has one writer, so concurrency cannot help it.
# Then, on the same server, the counter's own commands over GraphQL (`feeledger-bench commands`:
# `assessFees`, then `recordPayment` in cash, from as many officers as senders) against the same
# baseline. Prints JSON lines (one per measurement) and Markdown tables for docs/BENCHMARKS.md.
#
#   scripts/bench-notifications.sh [postgres://postgres@127.0.0.1:5432] [seconds] [senders] [providers]
#
# BENCH_BASELINE_BIN=/path/to/an/older/feeledger also runs that server (its history written by the
# `feeledger-bench` beside it, if there is one), each build twice on a fresh database each time,
# in the order baseline, this, this, baseline (a before/after in the same run: the machine drifts
# within minutes, and the build run first came out ahead when each ran once).
#
# Each build runs on a database with a history and statistics, as a deployed one has
# (BENCH_HISTORY events, 100,000 by default; scripts/bench-baseline.sh, bench_history).
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
seconds=${2:-10}
senders=${3:-32}
providers=${4:-sepay}
ulimit -n 65536 2>/dev/null || true

# BENCH_BIN_DIR: a directory with release builds of `feeledger` and `feeledger-bench`
# to use instead of building them here.
. "$(dirname "$0")/bench-bin.sh"
. "$(dirname "$0")/bench-baseline.sh"
work=$(mktemp -d)
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT

export FEELEDGER_SEPAY_HMAC_SECRET=bench-sepay-hmac-secret-0123456789
export FEELEDGER_CASSO_CHECKSUM_KEY=bench-casso-checksum-key-0123456789
export FEELEDGER_PAYOS_CHECKSUM_KEY=bench-payos-checksum-key-0123456789
export FEELEDGER_VNPAY_HASH_SECRET=BENCHVNPAYHASHSECRET0123456789AB
# Enough cases that no sender runs out (senders wrap around, overpaying, if they do).
cases=${BENCH_CASES:-$((seconds * 3000))}

start_server() { # url port server-binary
  (cd "$work" && FEELEDGER_DATABASE_URL="$1" FEELEDGER_DATABASE_MAX_CONNECTIONS=$((senders + 4)) RUST_LOG=warn \
    exec "$3" serve --listen "127.0.0.1:$2" >"$work/server-$2.log" 2>&1) &
  server_pid=$!
  for _ in $(seq 1 100); do curl -fs "127.0.0.1:$2/readyz" >/dev/null && return; sleep 0.2; done
  echo "the server on port $2 did not start" >&2; cat "$work/server-$2.log" >&2; exit 1
}
# The build whose `feeledger-bench generate` writes a run's history: the baseline's own when it
# has one beside it (its migrations, not this tree's newer ones), else this tree's.
history_bin() { # [server-binary]
  if [ -n "${1:-}" ] && [ -x "$(dirname "$1")/feeledger-bench" ]; then dirname "$1"; else echo "$bin"; fi
}
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=; }

notify() { # backend url port baseline_rows_per_sec server-binary
  local backend=$1 url=$2 port=$3 base=$4 node=${5:-$bin/feeledger} n=0
  start_server "$url" "$port" "$node"
  bench_caught_up "$url" "$node"
  [ "$node" = "$bin/feeledger" ] || backend="$backend (baseline build)"
  admin=$(cd "$work" && "$node" tokens issue --role admin --database-url "$url")
  for provider in ${providers//,/ }; do
    n=$((n + 1))
    agency="N$((RANDOM % 90 + 10)).$n"
    officer=$(cd "$work" && "$node" tokens issue --role officer --agency "$agency" --database-url "$url")
    result=$("$bin/feeledger-bench" notifications --url "http://127.0.0.1:$port" --provider "$provider" \
      --senders "$senders" --seconds "$seconds" --cases "$cases" --admin-token "$admin" --officer-token "$officer" --agency "$agency")
    echo "{\"backend\":\"$backend\",\"baseline_rows_per_sec\":$base,\"result\":$result}"
    python3 - "$backend" "$base" "$result" >>"$work/table" <<'PY'
import json, sys
backend, base, r = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
print(f"| {backend} | {r['provider']} | {r['senders']} | {base:.0f} | {r['acked_per_sec']:.0f} | {r['acked_per_sec']/base:.2f} | "
      f"{r['p50_us']/1000:.1f} / {r['p99_us']/1000:.1f} / {r['max_us']/1000:.1f} ms | {r['errors']} | {r['assess_fees']['per_sec']:.0f} |")
PY
  done
  # The counter's own commands over GraphQL, on the same server: assessFees then recordPayment.
  officer=$(cd "$work" && "$node" tokens issue --role officer --agency "C${agency#N}" --database-url "$url")
  result=$("$bin/feeledger-bench" commands --url "http://127.0.0.1:$port" --officers "$senders" \
    --cases "${BENCH_COMMAND_CASES:-$((seconds * 500))}" --admin-token "$admin" --officer-token "$officer" --agency "C${agency#N}")
  echo "{\"backend\":\"$backend\",\"baseline_rows_per_sec\":$base,\"result\":$result}"
  python3 - "$backend" "$base" "$result" >>"$work/commands" <<'PY'
import json, sys
backend, base, r = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
for name, m in (("assessFees", r["assess_fees"]), ("recordPayment", r["record_payment"])):
    print(f"| {backend} | {name} | {r['officers']} | {base:.0f} | {m['per_sec']:.0f} | {m['per_sec']/base:.2f} | "
          f"{m['p50_us']/1000:.1f} / {m['p99_us']/1000:.1f} / {m['max_us']/1000:.1f} ms |")
PY
  stop_server
}

# --- PostgreSQL ---------------------------------------------------------------------------
db=feeledger_bench_notifications
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
"$bin/feeledger" migrate --database-url "$server/$db" >/dev/null 2>&1
bench_events_table "$server/$db"
bench_insert_sql "$work/insert.sql"
pg_base=$(pgbench -n -c "$senders" -j 2 -T "$seconds" -f "$work/insert.sql" "$server/$db" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1)
pg_run() { # database port [server-binary]: one build on a fresh database
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
  bench_history "$server/$1" "$(history_bin "${3:-}")"
  notify postgres "$server/$1" "$2" "$pg_base" "${3:-}"
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
}
if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
  pg_run "${db}_base" 18093 "$BENCH_BASELINE_BIN"
  pg_run "$db" 18091
  pg_run "$db" 18091
  pg_run "${db}_base" 18093 "$BENCH_BASELINE_BIN"
else
  pg_run "$db" 18091
fi

# --- SQLite -------------------------------------------------------------------------------
lite="$work/bench.db"
"$bin/feeledger" migrate --database-url "sqlite://$lite" >/dev/null 2>&1
rows=$((seconds * 200))
{
  echo "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
  sqlite3 "$lite" "SELECT replace(replace(sql, 'CREATE TABLE events', 'CREATE TABLE bench_events'), 'CREATE TABLE \"events\"', 'CREATE TABLE bench_events') FROM sqlite_master WHERE name = 'events'"
  echo ";"
  sqlite3 "$lite" "SELECT replace(sql, ' ON events', ' ON bench_events') || ';' FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL" \
    | sed -E 's/INDEX (IF NOT EXISTS )?([A-Za-z_]+)/INDEX \1bench_\2/'
} >"$work/lite-schema.sql"
sqlite3 "$lite" <"$work/lite-schema.sql" >/dev/null
for i in $(seq 1 "$rows"); do
  echo "INSERT INTO bench_events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, transaction_id, hash) VALUES ('bench-$i', 1, 'e$i', 'PaymentReceived', 1, '{\"amount\":\"3000\",\"reference\":\"H34.22.6-240426-0002\",\"provider\":\"sepay\"}', '{\"actor\":\"bench\"}', '2026-11-29T00:00:00.000000Z', $i, zeroblob(32));"
done >"$work/lite-inserts.sql"
lite_start=$(date +%s.%N)
sqlite3 "$lite" "PRAGMA synchronous=FULL;" ".read $work/lite-inserts.sql" >/dev/null
lite_end=$(date +%s.%N)
lite_base=$(python3 -c "print(round($rows / ($lite_end - $lite_start)))")
lite_run() { # file port [server-binary]: one build on a fresh file
  bench_history "sqlite://$work/$1" "$(history_bin "${3:-}")"
  notify sqlite "sqlite://$work/$1" "$2" "$lite_base" "${3:-}"
}
if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
  lite_run base-1.db 18094 "$BENCH_BASELINE_BIN"
  lite_run this-1.db 18092
  lite_run this-2.db 18092
  lite_run base-2.db 18094 "$BENCH_BASELINE_BIN"
else
  lite_run this-1.db 18092
fi

echo
echo "| backend | provider | senders | raw inserts/s (same run) | notifications acked/s | ratio | p50 / p99 / max | errors | assessFees/s (setup) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
cat "$work/table"
echo
echo "| backend | mutation | officers | raw inserts/s (same run) | mutations/s | ratio | p50 / p99 / max |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
cat "$work/commands"
