# Shared by the test and benchmark scripts: installing what they need on a fresh machine, free ports,
# waiting for servers. Each script defines die() before sourcing this file.

# need COMMAND PACKAGE: installs PACKAGE with apt-get when COMMAND is missing (as root, or with sudo).
need() {
    local command=$1 package=$2
    command -v "$command" >/dev/null && return 0
    local sudo=()
    if [[ $EUID -ne 0 ]]; then
        command -v sudo >/dev/null ||
            die "$command is not installed and cannot be installed here (not root, no sudo); install the $package package"
        sudo=(sudo)
    fi
    echo "installing $package with apt-get..." >&2
    # A fresh machine may have no package lists yet: update once, then retry.
    "${sudo[@]}" apt-get install -y "$package" >/dev/null 2>&1 ||
        { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y "$package" >/dev/null; } ||
        die "apt-get install -y $package failed; install $package by hand"
    command -v "$command" >/dev/null || die "$command is still not on PATH after installing $package"
}

# free_port: a port the kernel says is free now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# within_10s WHAT COMMAND...: runs COMMAND every 0.1 s until it succeeds; dies after 10 s naming WHAT.
within_10s() {
    local what=$1
    shift
    for _ in $(seq 100); do
        "$@" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$what: not within 10 s"
}

# wait_http URL: waits up to 10 s for URL to answer.
wait_http() {
    within_10s "$1 answering" python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1).read()' "$1"
}

# wait_port PORT: waits up to 10 s for something to accept connections on 127.0.0.1:PORT.
wait_port() {
    within_10s "127.0.0.1:$1 accepting connections" python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)' "$1"
}

# scratch_and_children: WORK, a fresh temporary directory, and PIDS, an empty list the caller adds
# background processes to. On exit each of them gets SIGTERM and is waited for, then WORK is
# removed; Ctrl-C exits 130 and SIGTERM 143, through the same clean-up.
scratch_and_children() {
    WORK=$(mktemp -d)
    PIDS=()
    trap stop_children_and_scratch EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

stop_children_and_scratch() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}

# pts_provider BINARY DIR: the gateway benchmarks' provider, `payerr simulate --dialect pts` on a free
# port (SIM_PORT), logging to DIR/sim.log; its pid goes in SIM_PID and PIDS. Returns once it answers.
pts_provider() {
    SIM_PORT=$(free_port)
    "$1" simulate --dialect pts --listen "127.0.0.1:$SIM_PORT" --log-level warn >"$2/sim.log" 2>&1 &
    SIM_PID=$!
    PIDS+=("$SIM_PID")
    wait_http "http://127.0.0.1:$SIM_PORT/__simulator/stats"
}

# pts_gateway_config DIR: writes DIR/gateway.toml, a gateway on a free port (GW_PORT) in front of the
# pts_provider at SIM_PORT, with its events in DIR/data and log level warn.
pts_gateway_config() {
    GW_PORT=$(free_port)
    cat >"$1/gateway.toml" <<TOML
listen = "127.0.0.1:$GW_PORT"
data_dir = "$1/data"
log_level = "warn"
shutdown_grace_ms = 3000
[[providers]]
id = "pts"
dialect = "pts"
upstream = "http://127.0.0.1:$SIM_PORT"
TOML
}
