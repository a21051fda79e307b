#!/bin/bash
# shellcheck disable=SC2317  # stop_pid, cleanup, own_netns … run from traps and wait_for
# Usage: bench/scrape.sh            (as root; see docs/benchmark.md)
#
# Scrape benchmark: tor's own MetricsPort, the exporter and a bare hyper server (the floor), side by
# side against ONE real tor, in a network namespace that has only loopback. tor runs with its
# network on (its MetricsPort stays closed under DisableNetwork 1) but can reach nothing.
# Prints latency, the exporter's RSS and the control commands that reached tor, each next to its
# target with PASS/FAIL, and exits 1 if a target is missed (2 on a setup error).
#
# Environment (all optional):
#   BENCH_SCRAPES      measured keep-alive scrapes per target (default 2000, at least 1000)
#   BENCH_CONCURRENCY  concurrent scrapers in the control-command phase (default 8)
#   BENCH_WINDOW       length of that phase in seconds (default 10)
#   BENCH_REFRESH      the exporter's --tor.refresh-interval in seconds (default 5, the default)
#   BENCH_PIN          where the servers (tor, exporter, floor) and the client run:
#                      same  (default) all on one CPU: no target depends on the scheduler's luck
#                      split servers on one CPU, the client on another (needs 2 CPUs)
#                      off   wherever the scheduler puts them
#   BENCH_NICE         niceness for everything the benchmark runs (default -10, so that other work
#                      on a shared machine disturbs it less; 0: leave as is)
#   BENCH_KEEP         1: keep the temp dir (logs, JSON figures) and print its path
#
# A benchmark, not a test: it is not part of the test suite and CI does not run it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SCRAPES=${BENCH_SCRAPES:-2000}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
WINDOW=${BENCH_WINDOW:-10}
REFRESH=${BENCH_REFRESH:-5}
METRICSPORT=127.0.0.1:9035
EXPORTER_ADDR=127.0.0.1:9747
FLOOR_ADDR=127.0.0.1:9748
FLOOR_TARGET=$ROOT/target/bench-floor

die() {
    echo "scrape.sh: $*" >&2
    exit 2
}

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces)"

# --- dependencies --------------------------------------------------------------------------------
# shellcheck source=scripts/lib/apt.sh
. "$ROOT/scripts/lib/apt.sh"
tools=(cmd:tor:tor cmd:python3:python3 cmd:ip:iproute2 cmd:unshare:util-linux cmd:nsenter:util-linux)
# Installing Debian's tor starts the system tor.service, which would join the public Tor network.
need_packages --recommends --no-services "${tools[@]}" ||
    die "apt-get install $(missing_packages "${tools[@]}") failed"
command -v cargo >/dev/null 2>&1 || die "cargo not found (Rust 1.81, pinned by rust-toolchain.toml; e.g. rustup)"

# --- build ---------------------------------------------------------------------------------------
echo "scrape.sh: building the exporter (cargo build --release --locked)" >&2
(cd "$ROOT" && cargo build --release --locked --quiet)
EXPORTER=$ROOT/target/release/securedrop-tor-exporter
echo "scrape.sh: building the floor (bench/floor, its own workspace)" >&2
(cd "$HERE/floor" && CARGO_TARGET_DIR=$FLOOR_TARGET cargo build --release --locked --quiet)
FLOOR_BIN=$FLOOR_TARGET/release/bench-floor
# The floor is only a fair floor if it runs the exporter's hyper/hyper-util/tokio: every crate in its
# lock must be in the exporter's lock at the same version.
python3 - "$HERE/floor/Cargo.lock" "$ROOT/Cargo.lock" <<'EOF' || die "bench/floor/Cargo.lock drifted from Cargo.lock; re-copy it and rebuild"
import sys, tomllib
floor, main = (tomllib.load(open(p, "rb"))["package"] for p in sys.argv[1:])
have = {(p["name"], p["version"]) for p in main}
drift = [f"{p['name']} {p['version']}" for p in floor
         if p["name"] != "bench-floor" and (p["name"], p["version"]) not in have]
if drift:
    print("scrape.sh: not in Cargo.lock: " + ", ".join(drift), file=sys.stderr)
    sys.exit(1)
EOF

NICE=${BENCH_NICE:--10}
if [ "$NICE" != 0 ]; then
    renice -n "$NICE" -p $$ >/dev/null
fi

# --- processes, and their cleanup ----------------------------------------------------------------
TMP=$(mktemp -d /tmp/sdte-bench.XXXXXX)
PIDS=()

alive() { # PID: running, and not a zombie waiting to be reaped
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? i pid
    trap - EXIT INT TERM
    # The floor is the driver's child; the driver stops it, this is the fallback.
    if [ -s "$TMP/floor.pid" ]; then
        pid=$(cat "$TMP/floor.pid")
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = bench-floor ]; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "scrape.sh: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # DESCRIPTION DEADLINE_S PID COMMAND...: poll COMMAND; fail if PID dies or time runs out
    local what=$1 deadline=$2 pid=$3 i
    shift 3
    for ((i = 0; i < deadline * 20; i++)); do
        "$@" && return 0
        alive "$pid" || die "$what: the process exited (logs in $TMP; BENCH_KEEP=1 keeps them)"
        sleep 0.05
    done
    die "timed out after ${deadline}s waiting for $what"
}

# CPU placement: on a shared 2-core machine, where the scheduler happens to put each server
# otherwise decides more of its median than the server itself does.
read -r CPU_A CPU_B < <(python3 -c 'import os; c = sorted(os.sched_getaffinity(0)); print(c[0], c[-1])')
case ${BENCH_PIN:-same} in
    same) SERVER_CPU=$CPU_A CLIENT_CPU=$CPU_A ;;
    split)
        [ "$CPU_A" != "$CPU_B" ] || die "BENCH_PIN=split needs two CPUs"
        SERVER_CPU=$CPU_B CLIENT_CPU=$CPU_A
        ;;
    off) SERVER_CPU='' CLIENT_CPU='' ;;
    *) die "BENCH_PIN must be same, split or off" ;;
esac
if [ -n "$SERVER_CPU" ]; then
    ON_SERVER=(taskset -c "$SERVER_CPU")
    ON_CLIENT=(taskset -c "$CLIENT_CPU")
    PLACEMENT="servers on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
else
    ON_SERVER=()
    ON_CLIENT=()
    PLACEMENT="not pinned"
fi

# A namespace holder with only loopback; everything else joins its network namespace.
unshare -n sleep infinity &
HOLDER=$!
PIDS+=("$HOLDER")
own_netns() { [ "$(readlink "/proc/$HOLDER/ns/net")" != "$(readlink /proc/self/ns/net)" ]; }
wait_for "the network namespace" 10 "$HOLDER" own_netns
# Background processes are started with nsenter itself (it execs, so $! is their PID), never
# through a shell function (that would make $! a subshell's PID and orphan the process).
in_ns() { nsenter -t "$HOLDER" -n -- "$@"; }
in_ns ip link set lo up
links=$(in_ns ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
[ "$links" = "lo " ] || die "the namespace has more than loopback: $links"

# tor: network on (it can reach nothing), MetricsPort for 127.0.0.1, cookie-authenticated socket.
mkdir -m 0700 "$TMP/tor"
cat >"$TMP/torrc" <<EOF
DataDirectory $TMP/tor
ControlSocket $TMP/tor/control
CookieAuthentication 1
CookieAuthFile $TMP/tor/control.authcookie
DisableNetwork 0
SocksPort 0
MetricsPort $METRICSPORT
MetricsPortPolicy accept 127.0.0.1
Log notice file $TMP/tor.log
EOF
nsenter -t "$HOLDER" -n -- "${ON_SERVER[@]}" tor --defaults-torrc /dev/null -f "$TMP/torrc" >"$TMP/tor.out" 2>&1 &
TOR=$!
PIDS+=("$TOR")
wait_for "tor's control socket" 30 "$TOR" test -S "$TMP/tor/control"

# The counting proxy between the exporter and tor's control socket.
nsenter -t "$HOLDER" -n -- python3 "$HERE/ctlproxy.py" "$TMP/control.proxy" "$TMP/tor/control" "$TMP/control.log" \
    >"$TMP/proxy.out" 2>&1 &
PROXY=$!
PIDS+=("$PROXY")
wait_for "the control proxy" 10 "$PROXY" test -S "$TMP/control.proxy"

# The exporter, configured by flags only (an empty config file, an empty drop-in folder; the
# exporter refuses anything but a regular file, /dev/null included).
mkdir -p "$TMP/empty-config.d"
: >"$TMP/empty-config.toml"
nsenter -t "$HOLDER" -n -- "${ON_SERVER[@]}" "$EXPORTER" --config "$TMP/empty-config.toml" --config.dir "$TMP/empty-config.d" \
    --tor.control-address "unix:$TMP/control.proxy" --tor.cookie-file "$TMP/tor/control.authcookie" \
    --web.listen-address "$EXPORTER_ADDR" \
    --tor.refresh-interval "${REFRESH}s" --log.target stderr >"$TMP/exporter.out" 2>&1 &
EXPORTER_PID=$!
PIDS+=("$EXPORTER_PID")

# --- the machine ---------------------------------------------------------------------------------
echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores," \
    "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg), niceness $NICE"
echo "software: $("$EXPORTER" --version), $(tor --version | head -1 | sed 's/\.$//'), $(python3 --version)"
echo "exporter: --tor.refresh-interval ${REFRESH}s, through the counting proxy; floor: bench/floor; $PLACEMENT"

set +e
in_ns "${ON_CLIENT[@]}" python3 "$HERE/driver.py" --server-cpu "$SERVER_CPU" \
    --metricsport "$METRICSPORT" --exporter "$EXPORTER_ADDR" --exporter-pid "$EXPORTER_PID" \
    --floor-bin "$FLOOR_BIN" --floor "$FLOOR_ADDR" --floor-pidfile "$TMP/floor.pid" \
    --body-file "$TMP/body" --proxy-log "$TMP/control.log" --refresh-interval "$REFRESH" \
    --scrapes "$SCRAPES" --concurrency "$CONCURRENCY" --window "$WINDOW" --json "$TMP/figures.json"
rc=$?
set -e
alive "$EXPORTER_PID" || { echo "scrape.sh: the exporter died:" >&2; tail -5 "$TMP/exporter.out" >&2; rc=2; }
case $rc in
    0) echo "scrape.sh: all targets met" ;;
    1) echo "scrape.sh: a target was missed" ;;
    *) echo "scrape.sh: the benchmark did not complete (rc $rc)" >&2 ;;
esac
exit "$rc"
