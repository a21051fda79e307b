#!/bin/bash
# Usage: bench/onion.sh            (as root; see docs/benchmark.md, "Through the onion")
#
# Prometheus' scrape_duration_seconds through client-authorized onion services of the private Tor
# network (tests/support/privnet/, loopback only): the exporter on port 80 of the metrics onion, a bare hyper
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

# shellcheck source=scripts/lib/apt.sh
. "$ROOT/scripts/lib/apt.sh"
tools=(cmd:tor:tor cmd:tor-gencert:tor cmd:prometheus:prometheus cmd:python3:python3 cmd:ip:iproute2
    cmd:unshare:util-linux)
# Debian's tor and prometheus start their services on install; the system tor would join the
# public Tor network.
need_packages --no-services "${tools[@]}" || die "apt-get install $(missing_packages "${tools[@]}") failed"
command -v cargo >/dev/null 2>&1 || die "cargo not found (Rust 1.81, pinned by rust-toolchain.toml; e.g. rustup)"

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
