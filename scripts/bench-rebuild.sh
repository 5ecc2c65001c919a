#!/usr/bin/env bash
# Full rebuild of projections from position zero on PostgreSQL, with N generated events, against
# `psql \copy` to /dev/null in the same run, measured two ways:
#   - all events:  events in the log / rebuild time, against `\copy` of every row (global order);
#   - applied:     events the projection applies (its event types) / rebuild time, against
#                  `\copy` of exactly those rows, in the order the rebuild reads them (commit
#                  order) — the honest ratio (issue 17).
#
#   scripts/bench-rebuild.sh [postgres://postgres@127.0.0.1:5432] [events] [projections]
#
# projections: space- or comma-separated (default: treasury). BENCH_KEEP_DB=1 reuses an
# existing database of that size instead of generating it again.
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
events=${2:-1000000}
projections=${3:-treasury}
db=feeledger_bench_rebuild
url="$server/$db"

. "$(dirname "$0")/bench-bin.sh"

# Each projection's event types: the `EVENT_TYPES` of its `Projection` impl (projections/src).
types_of() {
  case $1 in
    treasury) echo "AgencyConfigured,FeeSchedulePublished,PaymentReceived,RemittedToTreasury" ;;
    payments) echo "PaymentReceived,Reconciled" ;;
    cashless) echo "FullyPaid" ;;
    receipts) echo "ReceiptIssued,ReceiptCancelled" ;;
    *) echo "unknown projection $1" >&2; exit 1 ;;
  esac
}

if [ "${BENCH_KEEP_DB:-}" != 1 ] || ! psql "$url" -Atc "SELECT 1" >/dev/null 2>&1; then
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  "$bin/feeledger-bench" generate --database-url "$url" --events "$events" --clients 16
  psql "$url" -qc "VACUUM ANALYZE events"
fi
count=$(psql "$url" -Atc "SELECT count(*) FROM events")
columns="global_position, transaction_id, stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash"

now() { date +%s.%N; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
c0=$(now)
psql "$url" -qc "\copy (SELECT $columns FROM events ORDER BY global_position) TO '/dev/null'"
c1=$(now)

echo "| projection | events in the log | \`\\copy\` all rows/s | rebuild, log events/s | ratio | events applied | \`\\copy\` of those rows/s | rebuild, applied events/s | ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for projection in ${projections//,/ }; do
  types="{$(types_of "$projection")}"
  applied=$(psql "$url" -Atc "SELECT count(*) FROM events WHERE event_type = ANY('$types')")
  a0=$(now)
  psql "$url" -qc "\copy (SELECT $columns FROM events WHERE event_type = ANY('$types') ORDER BY events.transaction_id, events.global_position) TO '/dev/null'"
  a1=$(now)
  r0=$(now)
  "$bin/feeledger" projections rebuild "$projection" --database-url "$url" >/dev/null 2>"$log"
  r1=$(now)
  # The rebuild ends when the new generation answers; the CLI then drops the generation it
  # replaced (a previous run's documents) and says how long that took: not part of the rebuild.
  dropped=$(sed -n "s/^dropped the replaced generation's \([0-9]*\) documents in \([0-9.]*\) s$/\1 \2/p" "$log")
  python3 - "$projection" "$count" "$applied" "$c0" "$c1" "$a0" "$a1" "$r0" "$r1" ${dropped:-0 0} <<'PY'
import sys
name, count, applied = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c0, c1, a0, a1, r0, r1 = map(float, sys.argv[4:10])
drop_docs, drop_seconds = int(sys.argv[10]), float(sys.argv[11])
copy_all, copy_applied, rebuild = count / (c1 - c0), applied / (a1 - a0), r1 - r0 - drop_seconds
if drop_docs:
    print(f"({name}: then {drop_docs:,} documents of the replaced generation dropped in {drop_seconds:.1f} s, not counted)", file=sys.stderr)
applied_cells = (f"{copy_applied:,.0f} | {applied / rebuild:,.0f} | {applied / rebuild / copy_applied:.2f}"
                 if applied else "— | — | — (the generated log has none of its events)")
print(f"| {name} | {count:,} | {copy_all:,.0f} | {count / rebuild:,.0f} | {count / rebuild / copy_all:.2f} "
      f"| {applied:,} | {applied_cells} |")
PY
done
[ "${BENCH_KEEP_DB:-}" = 1 ] || psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
