#!/usr/bin/env bash
# QR rendering, and commit → screen latency with many subscribed screens, on SQLite and on
# PostgreSQL. The baseline of the latency is the same measurement with 2 screens (one counter)
# in the same run. Prints JSON lines for docs/BENCHMARKS.md.
#
#   scripts/bench-screens.sh [postgres://postgres@127.0.0.1:5432] [screens] [payments]
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
screens=${2:-1000}
payments=${3:-300}
ulimit -n 65536 2>/dev/null || true

cargo build --release -q -p feeledger-api --bin feeledger
cargo build --release -q -p feeledger-tests --bin feeledger-bench
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin/feeledger-bench" qr-render --iterations 20000

run() {
  local name=$1 url=$2 port=$3
  (cd "$work" && FEELEDGER_DATABASE_URL="$url" RUST_LOG=warn "$bin/feeledger" serve --listen "127.0.0.1:$port" >/dev/null 2>&1 &)
  for _ in $(seq 1 50); do curl -fs "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  admin=$(cd "$work" && "$bin/feeledger" tokens issue --role admin --database-url "$url")
  for count in 2 "$screens"; do
    agency="B0$count.1"
    officer=$(cd "$work" && "$bin/feeledger" tokens issue --role officer --agency "$agency" --database-url "$url")
    result=$("$bin/feeledger-bench" screens --url "http://127.0.0.1:$port" --admin-token "$admin" \
      --officer-token "$officer" --agency "$agency" --screens "$count" --payments "$payments")
    echo "{\"backend\":\"$name\",\"result\":$result}"
  done
  pkill -f "listen 127.0.0.1:$port" || true
}

run sqlite "sqlite://$work/bench.db" 18081
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS feeledger_bench_screens WITH (FORCE)" -c "CREATE DATABASE feeledger_bench_screens"
run postgres "$server/feeledger_bench_screens" 18082
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS feeledger_bench_screens WITH (FORCE)"
