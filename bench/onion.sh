#!/bin/bash
# Usage: bench/onion.sh            (as root; see docs/benchmark.md, "Through the onion")
#
# Prometheus' scrape_duration_seconds through client-authorized onion services of the private Tor
# network (tests/privnet/, loopback only): the exporter on port 80 of the metrics onion, a bare axum
# server (bench/floor) serving the exporter's bytes on port 81 of the same onion (or behind a second
# onion of the same onion node), side by side in one run;
# and the TCP connections the exporter accepted over the run. Prints the figures with PASS/FAIL;
# exits non-zero if a target is missed or the benchmark could not run.
#
# Environment (all optional):
#   BENCH_ONION_SCRAPES   timed scrapes per job (default 20, at least 10)
#   BENCH_ONION_INTERVAL  Prometheus' scrape interval and timeout in seconds (default 3)
#   BENCH_ONION_LAYOUT    same (default): the floor is port 81 of the exporter's onion service;
#                         second: the floor has its own onion service on the same onion node
#
# A benchmark, not a test: scripts/test.sh and CI do not run it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
FLOOR_TARGET=$ROOT/target/bench-floor

die() {
    echo "onion.sh: $*" >&2
    exit 2
}

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces)"

need=()
command -v tor >/dev/null 2>&1 || need+=(tor)
command -v tor-gencert >/dev/null 2>&1 || need+=(tor)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    echo "onion.sh: installing ${need[*]}" >&2
    # Debian's tor and prometheus packages start their services on install; the system tor would
    # join the public Tor network. Forbid service starts during the install (policy-rc.d).
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    install_rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
        install_rc=$?
    if [ "$policy_added" -eq 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    [ "$install_rc" -eq 0 ] || die "apt-get install ${need[*]} failed"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (Rust >= 1.85, e.g. rustup)"

echo "onion.sh: building the exporter (cargo build --release --locked)" >&2
(cd "$ROOT" && cargo build --release --locked --quiet)
echo "onion.sh: building the floor (bench/floor, its own workspace)" >&2
(cd "$HERE/floor" && CARGO_TARGET_DIR=$FLOOR_TARGET cargo build --release --locked --quiet)

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores," \
    "kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "software: $("$ROOT/target/release/securedrop-tor-exporter" --version)," \
    "$(prometheus --version 2>&1 | head -1)"

# The benchmark itself is an ignored test on the private-network harness (it starts and stops
# every process it uses, by PID).
cd "$ROOT"
BENCH_EXPORTER_BIN=$ROOT/target/release/securedrop-tor-exporter \
    BENCH_FLOOR_BIN=$FLOOR_TARGET/release/bench-floor \
    cargo test --locked --test privnet_onion_bench -- --ignored --nocapture --test-threads 1
