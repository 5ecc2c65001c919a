#!/usr/bin/env bash
# The auditor's full passes over N generated events on PostgreSQL, against `psql \copy` of
# every column (in global position order) to /dev/null in the same run:
#   - `feeledger export events > /dev/null`  (the whole log as JSON lines, commit order)
#   - `feeledger audit verify`               (every hash recomputed, every chain and seal checked)
#
#   scripts/bench-audit.sh [postgres://postgres@127.0.0.1:5432] [events]
#
# BENCH_BIN_DIR: a directory with release builds of `feeledger` and `feeledger-bench` (skips
# the build). BENCH_BASELINE_BIN: another build's `feeledger`, whose `audit verify` is timed in
# the same run too.
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
events=${2:-1000000}
db=feeledger_bench_audit
url="$server/$db"

. "$(dirname "$0")/bench-bin.sh"

psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
"$bin/feeledger-bench" generate --database-url "$url" --events "$events" --clients 16
psql "$url" -qc "VACUUM ANALYZE events"
count=$(psql "$url" -Atc "SELECT count(*) FROM events")

timed() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); echo "$start $end"; }
copy=$(timed psql "$url" -qc "\copy (SELECT global_position, transaction_id, stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash FROM events ORDER BY global_position) TO '/dev/null'")
export_=$(timed env FEELEDGER_DATABASE_URL="$url" "$bin/feeledger" export events)
verify=$(timed env FEELEDGER_DATABASE_URL="$url" "$bin/feeledger" audit verify)
baseline="0 0"
if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
  baseline=$(timed env FEELEDGER_DATABASE_URL="$url" "$BENCH_BASELINE_BIN" audit verify)
fi

python3 - "$count" $copy $export_ $verify $baseline <<'PY'
import sys
count = int(sys.argv[1])
c0, c1, e0, e1, v0, v1, b0, b1 = map(float, sys.argv[2:10])
copy = count / (c1 - c0)
print("| events | psql \\copy rows/s | export events/s | ratio | audit verify events/s | ratio |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
e, v = count / (e1 - e0), count / (v1 - v0)
print(f"| {count} | {copy:,.0f} | {e:,.0f} | {e / copy:.2f} | {v:,.0f} | {v / copy:.2f} |")
if b1 > b0:
    b = count / (b1 - b0)
    print(f"baseline build's audit verify: {b:,.0f} events/s, ratio {b / copy:.2f}")
PY
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
