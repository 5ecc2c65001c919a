#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside bytes, with libFuzzer on stable Rust
# (libfuzzer-sys builds libFuzzer from source; rustc's sancov-module pass instruments the code).
# See docs/SECURITY.md, "Fuzzing".
#
#   scripts/fuzz.sh build                 build the harness (fuzz/harness), all targets
#   scripts/fuzz.sh TARGET SECONDS [RUNS] fuzz TARGET for SECONDS (or until RUNS executions),
#                                         then minimise its corpus into fuzz/corpus/TARGET
#   scripts/fuzz.sh all SECONDS [RUNS]    every target in turn, one at a time
#   scripts/fuzz.sh list                  the target names
#   scripts/fuzz.sh seed                  add seeds from the repository's fixtures to fuzz/corpus
#   scripts/fuzz.sh trim                  cap every committed corpus at CORPUS_BYTES_MAX
#
# A crashing input is written to fuzz/regressions/TARGET/ (crash-*, timeout-*, oom-*); commit it
# with the fix: `cargo test -p feeledger-fuzz-targets` replays fuzz/corpus and fuzz/regressions.
# Fuzzing runs niced, on one core; set FUZZ_TARGET_DIR to move the build (default
# ~/.cache/feeledger/target-fuzz-instrumented), FUZZ_WORK for the scratch corpora, and
# FUZZ_SKIP_BUILD=1 to run the binaries already built.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="$ROOT/fuzz/harness"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/feeledger/target-fuzz-instrumented}"
WORK="${FUZZ_WORK:-$CARGO_TARGET_DIR/fuzz-work}"
BIN_DIR="$CARGO_TARGET_DIR/$TRIPLE/release"
TARGETS=(sepay casso payos vnpay statement_csv statement_camt053 statement_mt940 statement_bank vietqr codes vnd vnd_scalar)
# A single input slower than this is reported as a hang.
TIMEOUT_SECONDS=10
# The committed corpus of one target is kept below this many bytes (its largest inputs go first),
# so that the repository stays small; the fuzzer's scratch corpus keeps everything.
CORPUS_BYTES_MAX=204800

# What cargo-fuzz passes on nightly, less -Zsanitizer: libFuzzer's inline 8-bit counters, the PC
# table and comparison tracing. `--target` keeps these flags off build scripts and proc macros.
RUSTFLAGS_FUZZ="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0"

usage() {
    sed -n '6,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

build() {
    [[ "${FUZZ_SKIP_BUILD:-0}" == 1 ]] && return 0
    RUSTFLAGS="$RUSTFLAGS_FUZZ" nice -n 10 cargo build --release --locked \
        --manifest-path "$HARNESS/Cargo.toml" --target "$TRIPLE" --bins
}

known() {
    local name
    for name in "${TARGETS[@]}"; do [[ "$name" == "$1" ]] && return 0; done
    echo "unknown target $1; one of: ${TARGETS[*]}" >&2
    exit 2
}

# fuzz TARGET SECONDS [RUNS]: new inputs go to a scratch corpus; the committed corpus is read,
# then everything is merged back into a minimal fuzz/corpus/TARGET.
fuzz() {
    local target="$1" seconds="$2" runs="${3:--1}"
    local corpus="$ROOT/fuzz/corpus/$target" regressions="$ROOT/fuzz/regressions/$target"
    local scratch="$WORK/$target" log="$WORK/$target.log"
    mkdir -p "$corpus" "$regressions" "$scratch"
    local crashes_before
    crashes_before=$(find "$regressions" -type f | wc -l)
    local started=$SECONDS status=0
    nice -n 10 "$BIN_DIR/$target" "$scratch" "$corpus" \
        -max_total_time="$seconds" -runs="$runs" -timeout="$TIMEOUT_SECONDS" -rss_limit_mb=2048 \
        -artifact_prefix="$regressions/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    local wall=$((SECONDS - started))
    minimize "$target"
    local execs rate crashes files bytes
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    crashes=$(($(find "$regressions" -type f | wc -l) - crashes_before))
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{ sum += $1 } END { print sum + 0 }')
    printf '%-18s executions %12s  exec/s %7s  wall %5ss  crashes %s  corpus %s files, %s bytes  (exit %s, log %s)\n' \
        "$target" "${execs:-?}" "${rate:-?}" "$wall" "$crashes" "$files" "$bytes" "$status" "$log"
    if [[ $status -ne 0 ]]; then
        grep -E '^(==[0-9]+== ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -20 || true
        return 1
    fi
}

# Keeps only the inputs that add coverage, so the committed corpus stays small.
minimize() {
    local target="$1"
    local corpus="$ROOT/fuzz/corpus/$target" merged="$WORK/$target.merged"
    rm -rf "$merged" && mkdir -p "$merged"
    nice -n 10 "$BIN_DIR/$target" -merge=1 -timeout="$TIMEOUT_SECONDS" "$merged" "$corpus" "$WORK/$target" \
        >"$WORK/$target.merge.log" 2>&1
    rm -rf "$corpus" && mv "$merged" "$corpus"
    trim "$target"
}

# Drops the largest inputs of fuzz/corpus/TARGET until it is below CORPUS_BYTES_MAX.
trim() {
    local corpus="$ROOT/fuzz/corpus/$1" total size file
    total=$(find "$corpus" -type f -printf '%s\n' | awk '{ sum += $1 } END { print sum + 0 }')
    while ((total > CORPUS_BYTES_MAX)) && read -r size file; do
        rm -- "$file"
        total=$((total - size))
    done < <(find "$corpus" -type f -printf '%s %p\n' | sort -rn)
}

# Seeds from the repository's own fixtures and the providers' published samples. The first
# byte of a provider input is its mode (see fuzz/targets/src/lib.rs).
seed() {
    local out="$ROOT/fuzz/corpus" docs="$ROOT/infrastructure/tests/data"
    mkdir -p "${TARGETS[@]/#/$out/}"
    local sepay casso payos
    sepay='{"id":92704,"gateway":"Vietcombank","transactionDate":"2023-03-25 14:02:37","accountNumber":"0123499999","code":"H34.22.6-240426-0002","content":"chuyen tien H34 22 6 240426 0002","transferType":"in","transferAmount":2277000,"accumulated":19077000,"subAccount":null,"referenceCode":"MBVCB.3278907687"}'
    casso='{"error":0,"data":{"id":0,"reference":"MA_GIAO_DICH_THU_NGHIEM","description":"giao dich thu nghiem","amount":599000,
 "runningBalance":25000000,"transactionDateTime":"2024-10-03 15:06:37","accountNumber":"88888888","bankName":"VPBank",
 "bankAbbreviation":"VPB","virtualAccountNumber":"","virtualAccountName":"","counterAccountName":"NGUYEN VAN A",
 "counterAccountNumber":"8888888888","counterAccountBankId":"970415","counterAccountBankName":"VietinBank"}}'
    payos='{"code":"00","desc":"success","success":true,
 "data":{"orderCode":123,"amount":3000,"description":"VQRIO123","accountNumber":"12345678",
         "reference":"TF230204212323","transactionDateTime":"2023-02-04 18:25:00","currency":"VND",
         "paymentLinkId":"124c33293c43417ab7879e14c8d9eb18","code":"00","desc":"Thành công",
         "counterAccountBankId":"","counterAccountBankName":"","counterAccountName":"",
         "counterAccountNumber":"","virtualAccountName":"","virtualAccountNumber":""},
 "signature":"412e915d2871504ed31be63c8f62a149a4410d34c4c42affc9006ef9917eaa03"}'
    local casso_header='t=1727948258788,v1=ed0a4bd2e826d5cb69988cdb141e6c1a080e21f3b57eb72cd78192220042b9e7dde0868fc667faea8e224900fa7904e7c88dfa098032fb2d6b6996856e8b7ff3'
    local sepay_signature
    sepay_signature=$(printf '%s' "1748746800.$sepay" | openssl dgst -sha256 -hmac sepay-fuzz-secret | sed 's/^.* //')
    printf '\x00%s' "$sepay" >"$out/sepay/seed-parse"
    printf '\x01%s' "$sepay" >"$out/sepay/seed-signed"
    printf '\x02%s\n1748746800\n%s' "$sepay_signature" "$sepay" >"$out/sepay/seed-hmac"
    printf '\x03Apikey sepay-fuzz-secret\n%s' "$sepay" >"$out/sepay/seed-api-key"
    printf '\x00%s' "$casso" >"$out/casso/seed-parse"
    printf '\x01%s' "$casso" >"$out/casso/seed-signed"
    printf '\x02%s\n%s' "$casso_header" "$casso" >"$out/casso/seed-published"
    printf '\x00%s' "$payos" >"$out/payos/seed-parse"
    printf '\x01%s' "$payos" >"$out/payos/seed-signed"
    printf '\x02%s' "$payos" >"$out/payos/seed-published"
    local vnpay_data vnpay_hash
    vnpay_data='vnp_Amount=300000&vnp_BankCode=NCB&vnp_BankTranNo=VNP14226112&vnp_CardType=ATM&vnp_OrderInfo=Thanh+toan+le+phi+ho+so+H34.22.6-240426-0002&vnp_PayDate=20240425193000&vnp_ResponseCode=00&vnp_TmnCode=FEELEDG1&vnp_TransactionNo=14226112&vnp_TransactionStatus=00&vnp_TxnRef=H34.22.6-240426-0002'
    vnpay_hash=$(printf '%s' "$vnpay_data" | openssl dgst -sha512 -hmac VNPAYTESTSECRETFEELEDGER0123456789 | sed 's/^.* //')
    printf '\x00%s' "$vnpay_data" >"$out/vnpay/seed-parse"
    printf '\x01%s' "$vnpay_data" >"$out/vnpay/seed-signed"
    printf '\x02?%s&vnp_SecureHash=%s' "$vnpay_data" "$vnpay_hash" >"$out/vnpay/seed-hashed"
    local file
    for file in "$docs"/*.csv; do cp "$file" "$out/statement_csv/seed-$(basename "$file")"; done
    for file in "$docs"/*.xml; do cp "$file" "$out/statement_camt053/seed-$(basename "$file")"; done
    local label payload
    grep -v '^#' "$ROOT/domain/tests/data/vietqr.txt" | while IFS=$'\t' read -r label payload; do
        [[ -n "$payload" ]] && printf '%s' "$payload" >"$out/vietqr/seed-$label"
    done
    local i=0 text
    for text in H34.22.6-240426-0002 000.00.00.H34-240426-0002 G01.999.2 LP-HOTICH quay-1 970415 113366668888; do
        printf '%s' "$text" >"$out/codes/seed-$((i += 1))"
    done
    for text in 3000 0 000150000 999999999999999 1000000000000000 -5 2000.5 12.50 100; do
        printf '%s' "$text" >"$out/vnd/seed-$((i += 1))"
    done
    for text in '"3000"' 2000 2000.5 '"-5"' '"999999999999999"' 1e3 true null; do
        printf '%s' "$text" >"$out/vnd_scalar/seed-$((i += 1))"
    done
}

case "${1:-}" in
    build) build ;;
    list) printf '%s\n' "${TARGETS[@]}" ;;
    seed) seed ;;
    trim) for target in "${TARGETS[@]}"; do trim "$target"; done ;;
    all)
        [[ $# -ge 2 ]] || usage
        build
        failed=0
        for target in "${TARGETS[@]}"; do fuzz "$target" "$2" "${3:-}" || failed=1; done
        exit $failed
        ;;
    "" | -h | --help) usage ;;
    *)
        [[ $# -ge 2 ]] || usage
        known "$1"
        build
        fuzz "$1" "$2" "${3:-}"
        ;;
esac
