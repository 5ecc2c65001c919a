#!/usr/bin/env bash
# QR rendering, and commit → screen latency with many subscribed screens, on SQLite and on
# PostgreSQL. The baseline of the latency is the same measurement with 2 screens (one counter)
# in the same run. Prints JSON lines for docs/BENCHMARKS.md, with the server's resident memory
# before the screens subscribe and with them all open.
#
#   scripts/bench-screens.sh [postgres://postgres@127.0.0.1:5432] [screens] [payments] [rate] [seconds]
#
# rate: payments per second on a fixed schedule (0: one after another, each once the last one's
# screens updated); seconds (with a rate): pay for that long instead (rate × seconds payments).
# The 2-screen baseline always pays one after another, at most 300 times (its one case cannot
# take 100 overlapping payments a second, no counter's case would, and each payment replays the
# case's stream, which grows by two events a payment).
#
# The screens open at most BENCH_CONNECT_CONCURRENCY (200) at a time, each until its first
# display arrived; the tool reports its progress on stderr and pays only once all show one.
# BENCH_SERVER_ENV: variables for the server only (e.g. "MALLOC_ARENA_MAX=2"). BENCH_BIN_DIR: a
# directory with release builds of `feeledger` and `feeledger-bench` (skips the build).
# BENCH_HOLD_OPEN_SECS: keep the screens of the large run open this long once all show a display,
# before paying (to look inside the server meanwhile, e.g. gdb -p on the pid it prints).
# BENCH_SELECTION: what each screen's counterDisplay selects ("version"; the real screens select
# ~25 fields, DISPLAY_FIELDS in api/web/screens.js; it must include version).
# BENCH_CITIZEN_FEED: how the citizens' screens are fed, "plain" (default: the display feed their
# page uses, /live/counter-display) or "graphql" (a counterDisplay subscription, as before).
# BENCH_DB_NAME (feeledger_bench_screens) and BENCH_PORT (18081 for SQLite, +1 for PostgreSQL):
# for runs beside another one on the same machine.
# BENCH_BACKENDS: "sqlite postgres" (default) or one. The load tool shares the machine's cores
# with the server.
set -euo pipefail
server=${1:-postgres://postgres@127.0.0.1:5432}
screens=${2:-1000}
payments=${3:-300}
rate=${4:-0}
seconds=${5:-}
backends=${BENCH_BACKENDS:-sqlite postgres}
db=${BENCH_DB_NAME:-feeledger_bench_screens}
port=${BENCH_PORT:-18081}
# One socket per screen in the load tool and one in the server: as many files as allowed.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((screens + 100)) ]; then
  echo "$screens screens need more open files than the hard limit allows ($(ulimit -Hn))" >&2
  exit 1
fi

. "$(dirname "$0")/bench-bin.sh"
work=$(mktemp -d)
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT

"$bin/feeledger-bench" qr-render --iterations 20000

run() {
  local name=$1 url=$2 port=$3
  (cd "$work" && FEELEDGER_DATABASE_URL="$url" RUST_LOG=warn exec env ${BENCH_SERVER_ENV:-} "$bin/feeledger" serve --listen "127.0.0.1:$port" \
    >"$work/server-$port.log" 2>&1) &
  server_pid=$!
  echo "server ($name) pid $server_pid" >&2
  for _ in $(seq 1 100); do curl -fs "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  admin=$(cd "$work" && "$bin/feeledger" tokens issue --role admin --database-url "$url")
  for count in 2 "$screens"; do
    agency="B0$count.1"
    pace=$rate pays=$payments duration=()
    [ -n "$seconds" ] && duration=(--seconds "$seconds")
    hold=${BENCH_HOLD_OPEN_SECS:-0}
    [ "$count" = 2 ] && pace=0 pays=$((payments < 300 ? payments : 300)) duration=() hold=0
    officer=$(cd "$work" && "$bin/feeledger" tokens issue --role officer --agency "$agency" --database-url "$url")
    result=$("$bin/feeledger-bench" screens --url "http://127.0.0.1:$port" --admin-token "$admin" \
      --officer-token "$officer" --agency "$agency" --screens "$count" --payments "$pays" --rate "$pace" \
      "${duration[@]}" --connect-concurrency "${BENCH_CONNECT_CONCURRENCY:-200}" --server-pid "$server_pid" \
      --hold-open-secs "$hold" --selection "${BENCH_SELECTION:-version}" --citizen-feed "${BENCH_CITIZEN_FEED:-plain}")
    echo "{\"backend\":\"$name\",\"result\":$result}"
  done
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

for backend in $backends; do
  case $backend in
    sqlite) run sqlite "sqlite://$work/bench.db" "$port" ;;
    postgres)
      psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
      run postgres "$server/$db" $((port + 1))
      psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
      ;;
  esac
done
