#!/usr/bin/env bash
# What one bank notification costs the machine, build against build: PostgreSQL commits
# (`pg_stat_database.xact_commit`, with the projections' and the live feed's), the server's CPU,
# the load tool's own CPU and the whole machine's CPU (both cores: the server, PostgreSQL and the
# load tool), per notification acknowledged, read over the sending window only (the setup's
# assessments are not counted). On a machine whose speed drifts within minutes, CPU per
# notification compares two builds where acknowledged/s alone does not: throughput follows it
# while the cores are busy.
#
# Each round runs every build once, in the order given, each on a fresh database: 32 SePay
# senders for `seconds` (`feeledger-bench notifications`, the first build's load tool for all).
#
#   scripts/bench-notification-cost.sh [postgres://postgres@127.0.0.1:5432] [seconds] [rounds] BIN_DIR...
#
# BIN_DIR: a directory with release builds of `feeledger` and `feeledger-bench`. Prints one
# Markdown row per run. Each run's database has a history and statistics, as a deployed one has
# (BENCH_HISTORY events, 100,000 by default; scripts/bench-baseline.sh, bench_history).
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
seconds=${2:-10}
rounds=${3:-3}
shift 3 || { echo "usage: $0 URL SECONDS ROUNDS BIN_DIR..." >&2; exit 2; }
[ $# -ge 1 ] || { echo "usage: $0 URL SECONDS ROUNDS BIN_DIR..." >&2; exit 2; }
bench=$1/feeledger-bench
senders=32
port=18112
db=feeledger_bench_cost
work=$(mktemp -d)
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
export FEELEDGER_SEPAY_HMAC_SECRET=bench-sepay-hmac-secret-0123456789
ulimit -n 65536 2>/dev/null || true
hz=$(getconf CLK_TCK)
. "$(dirname "$0")/bench-baseline.sh"

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }  # all cores, in ticks
server_cpu() { awk '{print $14+$15}' "/proc/$server_pid/stat"; }  # the server, in ticks
commits() { psql -tA "$server/$db" -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'"; }

run() { # build-dir
  local node=$1/feeledger
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" 2>/dev/null
  "$node" migrate --database-url "$server/$db" >/dev/null 2>&1
  bench_history "$server/$db" "$1"
  (cd "$work" && FEELEDGER_DATABASE_URL="$server/$db" FEELEDGER_DATABASE_MAX_CONNECTIONS=$((senders + 4)) \
    RUST_LOG=warn exec "$node" serve --listen "127.0.0.1:$port" >"$work/server.log" 2>&1) &
  server_pid=$!
  for _ in $(seq 1 100); do curl -fs "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  bench_caught_up "$server/$db" "$node"
  local admin officer agency=N55.1
  admin=$(cd "$work" && "$node" tokens issue --role admin --database-url "$server/$db")
  officer=$(cd "$work" && "$node" tokens issue --role officer --agency "$agency" --database-url "$server/$db")
  "$bench" notifications --url "http://127.0.0.1:$port" --provider sepay --senders "$senders" --seconds "$seconds" \
    --cases $((seconds * 3000)) --admin-token "$admin" --officer-token "$officer" --agency "$agency" \
    >"$work/result" 2>"$work/progress" &
  local load=$!
  # The setup (assessing the cases) is over when the tool says it is sending.
  until grep -q sending "$work/progress" 2>/dev/null; do
    kill -0 "$load" 2>/dev/null || { cat "$work/progress" >&2; exit 1; }
    sleep 0.05
  done
  local x0 c0 s0 x1 c1 s1 n
  x0=$(commits); c0=$(busy); s0=$(server_cpu)
  wait "$load"
  x1=$(commits); c1=$(busy); s1=$(server_cpu)
  n=$(psql -tA "$server/$db" -c "SELECT count(*) FROM bank_notifications")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  python3 - "$1" "$(cat "$work/result")" "$x0" "$x1" "$c0" "$c1" "$s0" "$s1" "$n" "$hz" <<'PY'
import json, sys
build, r = sys.argv[1], json.loads(sys.argv[2])
x0, x1, c0, c1, s0, s1, n, hz = map(int, sys.argv[3:])
us = lambda ticks: ticks / hz * 1e6 / n
# An older load tool does not report its own CPU.
client = "—" if r.get("client_cpu_ticks") is None else f"{us(r['client_cpu_ticks']):.0f} µs"
print(f"| {build} | {r['acked_per_sec']:.0f} | {r['p99_us'] / 1000:.1f} ms | {r['errors']} | {n} | "
      f"{(x1 - x0) / n:.2f} | {us(c1 - c0):.0f} µs | {us(s1 - s0):.0f} µs | {client} |")
PY
}

echo "| build | acknowledged/s | p99 | errors | notifications | commits per notification | all CPU per notification | server CPU per notification | load tool CPU per notification |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for _ in $(seq 1 "$rounds"); do
  for dir in "$@"; do run "$dir"; done
done
