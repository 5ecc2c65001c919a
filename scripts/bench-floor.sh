#!/usr/bin/env bash
# The floor under a bank notification: what PostgreSQL alone, with no feeledger process at all,
# does with exactly the rows one notification writes, in the shapes the intake could take —
# beside `pgbench` single-row inserts (the issue-17 baseline) in the same run.
#
# Rows per notification, counted on a real run of `feeledger-bench notifications` (docs/
# BENCHMARKS.md "The floor under a notification"): one inbox row (inserted, then its outcome
# written), four events (BankCreditObserved, PaymentReceived, FullyPaid or PartiallyPaid,
# CreditMatched) with the indexes of `events`, and two read-model documents (the payment's and
# the case's treasury line). Left out, so every figure here is an upper bound: the case's read,
# the projection checkpoints, the live feed's reads, and every CPU cycle of feeledger and of
# the load client.
#
# Shapes (each a `pgbench` script, 32 clients by default):
#   base      one `events`-shaped row per transaction (bench-notifications.sh's baseline)
#   inbox     the inbox row alone, one per transaction (with the agency count read beside it)
#   today     the inbox row in its own commit, then outcome + events + documents in one statement
#   one       inbox row, events and documents in one statement: one commit per notification
#   batchK    K notifications' rows in one statement (group commit across requests)
#
#   scripts/bench-floor.sh [postgres://postgres@127.0.0.1:5432] [seconds] [clients] [K]
#
# Prints a Markdown table: transactions/s, notifications/s and the ratio to `base`.
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
seconds=${2:-10}
clients=${3:-32}
batch=${4:-16}

. "$(dirname "$0")/bench-bin.sh"
. "$(dirname "$0")/bench-baseline.sh"
work=$(mktemp -d)
db=feeledger_bench_floor
trap 'rm -rf "$work"; psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
"$bin/feeledger" migrate --database-url "$server/$db" >/dev/null 2>&1
bench_events_table "$server/$db"
bench_insert_sql "$work/base.sql"
psql "$server/$db" -q <<'SQL'
CREATE INDEX ON bench_events (global_position) WHERE event_type = 'AgencyConfigured';
CREATE TABLE bench_inbox (LIKE bank_notifications INCLUDING ALL);
CREATE TABLE bench_documents (LIKE read_model_documents INCLUDING ALL);
SQL

# A notification's rows, with payloads of the sizes a real run stores (SePay, matched by case code).
headers=$(cat <<'JSON'
'{"content-type": "application/json", "x-request-id": "b1d1813a-e61d-445c-af1c-d4080dc5e5e0", "content-length": "313", "x-sepay-signature": "d1b33e8e22d356b1a9445f83ce113360d5d02adb2a1277cb6a299b4ffae8da4d", "x-sepay-timestamp": "1796043019"}'
JSON
)
body="convert_to('{\"accountNumber\":\"970000000111\",\"accumulated\":19077000,\"code\":null,\"content\":\"MBVCB.1796043008410004.N11.1-560927-0005.CT tu 0123\",\"gateway\":\"VietinBank\",\"id\":1796043008410004,\"referenceCode\":\"FT1796043008410004\",\"subAccount\":null,\"transactionDate\":\"2026-11-22 09:15:00\",\"transferAmount\":3000,\"transferType\":\"in\"}', 'UTF8')"
events=$(cat <<'SQL'
(VALUES
 (1, 'BankCreditObserved', '{"credit": {"amount": "3000", "content": "MBVCB.1796043223685007.N11.1-540902-0008.CT tu 0123", "provider": "sepay", "match_hint": null, "payer_name": null, "credited_at": "2026-11-22T02:15:00Z", "payer_account": null, "account_number": "970000000111", "bank_reference": "FT1796043223685007", "virtual_account": null, "provider_transaction_id": "1796043223685007"}, "agency_code": "N11.1", "observed_at": "2026-11-30T12:53:53.917374Z"}'::jsonb),
 (2, 'PaymentReceived', '{"qr_id": null, "amount": "3000", "excess": "0", "channel": "VIETQR", "provider": "sepay", "reference": "N11.1-560927-0005", "allocation": [{"kind": "LE_PHI", "line": 0, "amount": "3000", "fee_code": "LP-1"}], "payment_id": "01a22c81-94dd-7529-a988-6fc5b6c55026", "received_at": "2026-11-22T02:15:00Z", "payer_account": null, "bank_reference": "FT1796043008410004", "idempotency_key": "sepay:1796043008410004"}'),
 (3, 'FullyPaid', '{"paid_at": "2026-11-22T02:15:00Z", "channels": ["VIETQR"], "paid_total": "3000"}'),
 (4, 'CreditMatched', '{"method": "CASE_CODE_IN_CONTENT", "case_code": "N11.1-540902-0008", "matched_at": "2026-11-30T12:53:53.917374Z", "payment_id": "01a22c84-da89-751a-af97-988e87189215"}')
) AS e(k, event_type, payload)
SQL
)
document="'{\"amount\": \"3000\", \"channel\": \"VIETQR\", \"case_code\": \"N11.1-560927-0005\", \"reference\": \"N11.1-560927-0005\", \"payment_id\": \"01a22c81-94dd-7529-a988-6fc5b6c55026\", \"received_on\": \"2026-11-22\", \"bank_reference\": \"FT1796043008410004\", \"reconciled_line_id\": null}'"

# The end of a notification's statement, for each row of the CTE `credit`: its four events and
# its two documents.
appended_and_documents=$(cat <<SQL
 appended AS (INSERT INTO bench_events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash)
   SELECT 'stream-' || credit.id || '-' || e.k, 1, gen_random_uuid(), e.event_type, 1, e.payload, '{"actor": "bank:sepay"}',
          now(), sha256(credit.id::bytea) FROM credit, $events RETURNING 1)
INSERT INTO bench_documents (projection, generation, key, doc)
SELECT p, 1, credit.id, $document FROM credit, (VALUES ('payments'), ('treasury')) AS d(p);
SQL
)

cat >"$work/inbox.sql" <<SQL
INSERT INTO bench_inbox (provider, received_at, method, uri, headers, body)
VALUES ('sepay', now(), 'POST', '/webhooks/sepay', $headers, $body)
RETURNING id, (SELECT count(*) FROM bench_events WHERE event_type = 'AgencyConfigured');
SQL

# The writes after the inbox row: its outcome, the events, the documents (one statement).
cat >"$work/today.sql" <<SQL
INSERT INTO bench_inbox (provider, received_at, method, uri, headers, body)
VALUES ('sepay', now(), 'POST', '/webhooks/sepay', $headers, $body)
RETURNING id AS inbox_id, (SELECT count(*) FROM bench_events WHERE event_type = 'AgencyConfigured') AS agencies \gset
WITH credit AS (SELECT gen_random_uuid()::text AS id),
 outcome AS (UPDATE bench_inbox SET outcome = 'recorded', credit_id = (SELECT id FROM credit), http_status = 200,
             processed_at = now() WHERE id = :inbox_id RETURNING 1),
$appended_and_documents
SQL

# n notifications' rows in one statement, the inbox rows stored with their outcome.
together() { # n
  cat <<SQL
WITH credit AS (SELECT gen_random_uuid()::text AS id FROM generate_series(1, $1)),
 stored AS (INSERT INTO bench_inbox (provider, received_at, method, uri, headers, body, outcome, credit_id, http_status, processed_at)
   SELECT 'sepay', now(), 'POST', '/webhooks/sepay', $headers, $body, 'recorded', credit.id, 200, now() FROM credit RETURNING 1),
$appended_and_documents
SQL
}
together 1 >"$work/one.sql"
together "$batch" >"$work/batch.sql"

run() { # script
  pgbench -n -c "$clients" -j 2 -T "$seconds" -f "$1" "$server/$db" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1
}
base=$(run "$work/base.sql")
echo "| shape | transactions/s | notifications/s | × pgbench single-row |"
echo "| --- | ---: | ---: | ---: |"
python3 -c "import sys; print(f'| base: one \`events\` row per transaction | {float(sys.argv[1]):,.0f} | — | 1.00 |')" "$base"
for shape in inbox today one batch; do
  tps=$(run "$work/$shape.sql")
  per=1
  [ "$shape" = batch ] && per=$batch
  label=$shape
  case $shape in
    inbox) label='the inbox row alone (not a notification)' ;;
    today) label="today's shape: inbox row, then outcome + events + documents (2 commits)" ;;
    one) label='inbox row, events, documents in one statement (1 commit)' ;;
    batch) label="$batch notifications in one statement (group commit)" ;;
  esac
  python3 - "$label" "$tps" "$per" "$base" <<'PY'
import sys
label, tps, per, base = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print(f"| {label} | {tps:,.0f} | {tps * per:,.0f} | {tps * per / base:.2f} |")
PY
done
