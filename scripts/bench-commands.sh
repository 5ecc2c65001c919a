#!/usr/bin/env bash
# The counter's commands over GraphQL on PostgreSQL (`feeledger-bench commands`: `assessFees`
# on new cases, then `recordPayment` in cash, from N officers at once), for one or more builds
# in turn, each on a fresh database, with `pgbench` single-row inserts at the same concurrency
# first as the baseline. Besides rates and p99, prints the server's CPU per command (from
# /proc) and PostgreSQL transactions per command (`pg_stat_database.xact_commit`, which counts
# every statement run outside a transaction as one).
#
#   scripts/bench-commands.sh [postgres://postgres@127.0.0.1:5432] [officers] [cases] BUILD_DIR...
#
# Each BUILD_DIR holds release builds of `feeledger` and `feeledger-bench`. Give two (before,
# after) several times to alternate them: runs minutes apart differ more than builds do.
# Each build runs on a database with a history and statistics, as a deployed one has
# (BENCH_HISTORY events, 100,000 by default; scripts/bench-baseline.sh, bench_history).
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
officers=${2:-32}
cases=${3:-5000}
shift 3 || { echo "usage: $0 URL OFFICERS CASES BUILD_DIR..." >&2; exit 2; }
[ $# -gt 0 ] || { echo "give at least one build directory" >&2; exit 2; }
. "$(dirname "$0")/bench-baseline.sh"
db=feeledger_bench_commands
url="$server/$db"
port=18097
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

fresh_database() {
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" 2>/dev/null
  "$1/feeledger" migrate --database-url "$url" >/dev/null 2>&1
}
commits() { psql "$server/postgres" -Atc "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'"; }

fresh_database "$1"
bench_events_table "$url"
bench_insert_sql "$work/insert.sql"
base=$(pgbench -n -c "$officers" -j 2 -T 10 -f "$work/insert.sql" "$url" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1)
echo "pgbench, $officers clients: $base rows/s ($(date -u +%H:%M) UTC)"
echo "| build | assessFees/s (× pgbench), p99 | recordPayment/s (× pgbench), p99 | server CPU per command | transactions per command |"
echo "| --- | ---: | ---: | ---: | ---: |"
for build in "$@"; do
  fresh_database "$build"
  bench_history "$url" "$build"
  (cd "$work" && FEELEDGER_DATABASE_URL="$url" FEELEDGER_DATABASE_MAX_CONNECTIONS=$((officers + 4)) RUST_LOG=warn \
    exec "$build/feeledger" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1) &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  bench_caught_up "$url" "$build/feeledger"
  admin=$(cd "$work" && "$build/feeledger" tokens issue --role admin --database-url "$url")
  officer=$(cd "$work" && "$build/feeledger" tokens issue --role officer --agency C11.1 --database-url "$url")
  # The subshell execs the server: $pid is the server's own process.
  ticks0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  commits0=$(commits)
  result=$("$build/feeledger-bench" commands --url "http://127.0.0.1:$port" --officers "$officers" --cases "$cases" \
    --admin-token "$admin" --officer-token "$officer" --agency C11.1)
  ticks1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  commits1=$(commits)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  python3 - "$build" "$base" "$result" $((ticks1 - ticks0)) $((commits1 - commits0)) "$(getconf CLK_TCK)" <<'PY'
import json, sys
build, base, r = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
ticks, commits, hz = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
a, p = r["assess_fees"], r["record_payment"]
n = a["count"] + p["count"]
cell = lambda m: f"{m['per_sec']:,.0f} ({m['per_sec'] / base:.2f}), {m['p99_us'] / 1000:.1f} ms"
print(f"| {build} | {cell(a)} | {cell(p)} | {ticks / hz / n * 1000:.2f} ms | {commits / n:.2f} |")
PY
done
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
