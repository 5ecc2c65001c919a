#!/usr/bin/env bash
# Store appends (1 event per transaction) at 1 and 32 clients, against pgbench inserting rows of
# the same shape into a scratch table in the same run, on the same server. Prints a Markdown
# table for docs/BENCHMARKS.md.
#
#   scripts/bench-appends.sh [postgres://postgres@127.0.0.1:5432] [seconds]
#
# BENCH_BIN_DIR: release builds of `feeledger` and `feeledger-bench` (skips the build).
# BENCH_BASELINE_BENCH: another build's `feeledger-bench`, run after this one's at each step
# (its rows are marked "before"), for a before/after in one run.
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
seconds=${2:-15}
db=feeledger_bench
url="$server/$db"

psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
. "$(dirname "$0")/bench-bin.sh"
"$bin/feeledger" migrate --database-url "$url" 2>/dev/null

. "$(dirname "$0")/bench-baseline.sh"
bench_events_table "$url"
script=$(mktemp)
bench_insert_sql "$script"
tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
rate() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["events_per_sec"])'; }

echo "| clients | pgbench rows/s | feeledger appends/s | ratio | feeledger p50 / p99 |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for clients in 1 32; do
  base=$(pgbench -n -c "$clients" -j "$([ "$clients" -gt 2 ] && echo 2 || echo 1)" -T "$seconds" -f "$script" "$url" 2>/dev/null | tps)
  for build in this ${BENCH_BASELINE_BENCH:+before}; do
    tool="$bin/feeledger-bench"
    [ "$build" = before ] && tool=$BENCH_BASELINE_BENCH
    result=$("$tool" appends --database-url "$url" --clients "$clients" --seconds "$seconds")
    ours=$(echo "$result" | rate)
    lat=$(echo "$result" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("%.2f ms / %.2f ms" % (r["p50_us"]/1000, r["p99_us"]/1000))')
    ratio=$(python3 -c "print(f'{$ours/$base:.2f}')")
    label=$clients
    [ -n "${BENCH_BASELINE_BENCH:-}" ] && label="$clients ($build)"
    echo "| $label | ${base%.*} | ${ours%.*} | $ratio | $lat |"
  done
done
rm -f "$script"
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
