#!/usr/bin/env bash
# Full rebuild of a projection from position zero on PostgreSQL, with N generated events,
# against `psql \copy` of the same rows (in global position order) to /dev/null in the same run.
#
#   scripts/bench-rebuild.sh [postgres://postgres@127.0.0.1:5432] [events] [projection]
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
events=${2:-1000000}
projection=${3:-treasury}
db=feeledger_bench_rebuild
url="$server/$db"

cargo build --release -q -p feeledger-api --bin feeledger
cargo build --release -q -p feeledger-tests --bin feeledger-bench
bin=${CARGO_TARGET_DIR:-$PWD/target}/release

psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
"$bin/feeledger-bench" generate --database-url "$url" --events "$events" --clients 16
psql "$url" -qc "VACUUM ANALYZE events"
count=$(psql "$url" -Atc "SELECT count(*) FROM events")

copy_start=$(date +%s.%N)
psql "$url" -qc "\copy (SELECT global_position, transaction_id, stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash FROM events ORDER BY global_position) TO '/dev/null'"
copy_end=$(date +%s.%N)

rebuild_start=$(date +%s.%N)
"$bin/feeledger" projections rebuild "$projection" --database-url "$url" 2>&1 | tail -1
rebuild_end=$(date +%s.%N)

python3 - "$count" "$copy_start" "$copy_end" "$rebuild_start" "$rebuild_end" "$projection" <<'PY'
import sys
count, c0, c1, r0, r1, name = int(sys.argv[1]), *map(float, sys.argv[2:6]), sys.argv[6]
copy_rate, rebuild_rate = count / (c1 - c0), count / (r1 - r0)
print(f"| events | psql \\copy rows/s | rebuild {name} events/s | ratio |")
print("| ---: | ---: | ---: | ---: |")
print(f"| {count} | {copy_rate:,.0f} | {rebuild_rate:,.0f} | {rebuild_rate / copy_rate:.2f} |")
PY
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
