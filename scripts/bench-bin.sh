# Sourced by scripts/bench-*.sh: sets $bin to a directory with release builds of `feeledger`
# and `feeledger-bench` — $BENCH_BIN_DIR when given (no build), otherwise this tree's, built.
if [ -n "${BENCH_BIN_DIR:-}" ]; then
  bin=$BENCH_BIN_DIR
else
  cargo build --release -q -p feeledger-api --bin feeledger
  cargo build --release -q -p feeledger-tests --bin feeledger-bench
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
