#!/usr/bin/env bash
# The whole test suite (the README's test command): a private Redis for the gateway's shared-state
# tests, then `cargo test --workspace` with any extra arguments (e.g. --locked, or a test name).
#
# The Redis runs on a free port, keeps nothing on disk and stops with the script, so the tests never
# touch a Redis of yours. Set PAYERR_TEST_REDIS=redis://host:port to use another one instead.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
    echo "scripts/test.sh: $*" >&2
    exit 1
}
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# The client guide's examples (docs/client-guide.md) run under these in the gateway tests.
need curl curl
need openssl openssl
need node nodejs

if [[ -z ${PAYERR_TEST_REDIS:-} ]]; then
    need redis-server redis-server
    port=$(free_port)
    redis_dir=$(mktemp -d)
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$redis_dir" \
        >"$redis_dir/redis.log" 2>&1 &
    redis=$!
    trap 'kill "$redis" 2>/dev/null || true; wait "$redis" 2>/dev/null || true; rm -rf "$redis_dir"' EXIT
    wait_port "$port"
    export PAYERR_TEST_REDIS="redis://127.0.0.1:$port"
fi

cargo test --workspace "$@"
