#!/usr/bin/env bash
# What one request costs the gateway in CPU instructions, counted by valgrind's callgrind: a figure
# that, unlike a rate, does not move with what else a shared machine runs. Use it to compare two
# builds (a change's effect shows even when bench/gateway.sh's ratio is lost in the noise).
#
# Usage: bench/gateway-cost.sh [BINARY...]   (default: this tree's release build, built first)
#   DURATION=10s   how long the measured load runs (wrk, 1 thread, 8 connections)
#   KEEP=DIR       keep each binary's dumps in DIR (DIR/N.cg.out.1-TT, N the binary's place in the
#                  list) for callgrind_annotate, to see where the instructions went
#
# For each binary: a `payerr simulate` (pts) runs natively, the gateway runs under callgrind in
# front of it, a warm-up load passes, the counters are zeroed, then the same POST as bench/gateway.sh
# is sent for DURATION. Output, one line per binary:
#   BINARY: workers N instructions/request, event writer N, total N (R requests)
# "workers" is the request path (hyper, the verdict, the headers, queueing the event); "event writer"
# is the thread that sanitizes and commits events. Under callgrind the gateway serves a few hundred
# requests a second, so the writer's batches are smaller than under real load (tens of events instead
# of up to 1000) and its figure is somewhat higher than in production. Kernel time (the socket calls,
# about half of the gateway's CPU under bench/gateway.sh) is not counted.
set -euo pipefail

DURATION=${DURATION:-10s}

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")

die() {
    echo "bench/gateway-cost.sh: $*" >&2
    exit 1
}

# shellcheck source=scripts/lib.sh
. "$BENCH/../scripts/lib.sh"
command -v python3 >/dev/null || die "python3 is needed"
need wrk wrk
need curl curl
need valgrind valgrind
need callgrind_control valgrind

BINARIES=("$@")
if ((${#BINARIES[@]} == 0)); then
    (cd "$ROOT" && cargo build --release --locked -p payerr-cli >&2)
    BINARIES=("${CARGO_TARGET_DIR:-$ROOT/target}/release/payerr")
fi
for bin in "${BINARIES[@]}"; do [[ -x $bin ]] || die "no binary at $bin"; done

scratch_and_children


# Instructions in a callgrind output file (its "summary:" or "totals:" line).
instructions() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

measure() {
    local bin=$1 run=$WORK/run-$2
    mkdir -p "$run"
    pts_provider "$bin" "$run"
    pts_gateway_config "$run"
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$run/cg.out" \
        "$bin" gateway --config "$run/gateway.toml" >"$run/gateway.log" 2>&1 &
    local gw=$!
    PIDS+=("$gw")
    # Under callgrind the start takes seconds, not milliseconds.
    local up=0
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$GW_PORT/healthz" >/dev/null 2>&1 && up=1 && break
        kill -0 "$gw" 2>/dev/null || die "the gateway under callgrind stopped: $(tail -5 "$run/gateway.log")"
        sleep 0.1
    done
    ((up)) || die "the gateway under callgrind did not answer within 60 s: $(tail -5 "$run/gateway.log")"
    local url="http://127.0.0.1:$GW_PORT/pts/v1/payments"
    wrk -t1 -c4 -d2s -s "$BENCH/payment.lua" "$url" >/dev/null # warm-up: pools, caches, lazy statics
    callgrind_control --zero "$gw" >/dev/null 2>&1
    local requests
    requests=$(wrk -t1 -c8 -d"$DURATION" -s "$BENCH/payment.lua" "$url" | awk '/requests in/ { print $1 }')
    # The writer commits within its flush interval (100 ms); then the counts are written out.
    sleep 0.5
    callgrind_control --dump "$gw" >/dev/null 2>&1
    sleep 1
    kill -INT "$gw"
    wait "$gw" 2>/dev/null || true
    kill -TERM "$SIM_PID"
    local workers=0 writer=0 file count dumps
    # The dump's files are cg.out.1-TT, one per thread; the writer is the one that runs SQLite.
    dumps=$(compgen -G "$run/cg.out.1-*") || die "callgrind wrote no dump for $bin: $(tail -5 "$run/gateway.log")"
    for file in $dumps; do
        count=$(instructions "$file")
        if grep -q 'sqlite3_step' "$file"; then
            writer=$((writer + count))
        else
            workers=$((workers + count))
        fi
    done
    ((requests > 0)) || die "no request went through $bin"
    if [[ -n ${KEEP:-} ]]; then
        mkdir -p "$KEEP"
        for file in $dumps; do cp "$file" "$KEEP/$2.$(basename "$file")"; done
    fi
    awk -v b="$bin" -v w="$workers" -v e="$writer" -v n="$requests" 'BEGIN {
        printf "%s: workers %.0f instructions/request, event writer %.0f, total %.0f (%d requests)\n",
            b, w / n, e / n, (w + e) / n, n }'
}

for i in "${!BINARIES[@]}"; do measure "${BINARIES[$i]}" "$((i + 1))"; done
