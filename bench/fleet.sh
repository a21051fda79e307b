#!/bin/bash
# Usage: bench/fleet.sh            (as root; see docs/benchmark.md, "A fleet through one monitoring host")
#        bench/fleet.sh --check    (no root, no network: the self-check below)
#
# One monitoring host's tor and Prometheus scraping BENCH_FLEET_TARGETS (default 200)
# client-authorized v3 onion services on the private Tor network (tests/support/privnet/: every tor
# on 127.0.0.1 in a network namespace that has only loopback), with the scrape settings the
# tor_monitoring role ships (its defaults, rendered into monitoring/prometheus/prometheus.yml.j2).
# Prints the time until every target is up, the scrape durations (p50/p90/p99), the failed scrapes,
# and the monitoring tor's RSS and CPU per target over a fixed window, with the load average;
# the last line is BENCH_FLEET_JSON {...}. Exits non-zero if not every target came up.
#
# Environment (all optional):
#   BENCH_FLEET_TARGETS        onion services, i.e. scrape targets (default 200)
#   BENCH_FLEET_PER_EXPORTER   targets served by one exporter (default 100; an exporter has 256
#                              connection slots, and every target keeps one connection open)
#   BENCH_FLEET_WINDOW         the measuring window in seconds, after all are up (default 5 intervals)
#   BENCH_FLEET_INTERVAL       scrape interval (default: the role's tor_monitoring_scrape_interval)
#   BENCH_FLEET_TIMEOUT        scrape timeout (default: the role's tor_monitoring_scrape_timeout)
#   BENCH_FLEET_UP_DEADLINE    seconds to wait for every target (default 10 intervals + 300 s)
#
# --check renders the template for BENCH_FLEET_TARGETS made-up servers with the role's defaults,
# runs promtool check config on it and checks the count of targets, so a change to the template or
# the role's defaults that breaks the benchmark shows without a private network (~1 s).
#
# A benchmark, not a test: scripts/test.sh and CI do not run it. About 12 minutes at 200 targets.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
FLEET_TARGET=$ROOT/target/bench-fleet
DEFAULTS=$ROOT/ansible/roles/tor_monitoring/defaults/main.yml

die() {
    echo "fleet.sh: $*" >&2
    exit 2
}

# The role's default for a variable of defaults/main.yml (a plain scalar such as 1m).
role_default() {
    python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))[sys.argv[2]])' "$DEFAULTS" "$1"
}

targets=${BENCH_FLEET_TARGETS:-200}
case $targets in
    '' | *[!0-9]*) die "BENCH_FLEET_TARGETS must be a number, not '$targets'" ;;
esac

# shellcheck source=scripts/lib/apt.sh
. "$ROOT/scripts/lib/apt.sh"

if [ "${1:-}" = --check ]; then
    command -v promtool >/dev/null 2>&1 || die "promtool not found (apt-get install prometheus)"
    interval=${BENCH_FLEET_INTERVAL:-$(role_default tor_monitoring_scrape_interval)}
    timeout=${BENCH_FLEET_TIMEOUT:-$(role_default tor_monitoring_scrape_timeout)}
    tmp=$(mktemp -d)
    trap 'rm -rf -- "$tmp"' EXIT
    python3 - "$targets" "$interval" "$timeout" "$ROOT/monitoring/rules" >"$tmp/vars.json" <<'EOF'
import json, sys
n, interval, timeout, rules = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
# Made-up addresses of the right shape (56 base32 characters); nothing resolves them.
servers = [{"name": f"srv{i:04}", "onion": f"{i:056d}".translate(str.maketrans("0123456789", "abcdefghij"))}
           for i in range(n)]
json.dump({"tor_monitoring_servers": servers, "tor_monitoring_job": "securedrop-tor",
           "tor_monitoring_proxy_url": "socks5://127.0.0.1:9050",
           "tor_monitoring_scrape_interval": interval, "tor_monitoring_scrape_timeout": timeout,
           "tor_monitoring_rules_dir": rules, "tor_monitoring_site": "bench"}, sys.stdout)
EOF
    python3 "$ROOT/monitoring/render.py" "$ROOT/monitoring/prometheus/prometheus.yml.j2" "$tmp/vars.json" \
        >"$tmp/prometheus.yml"
    promtool check config "$tmp/prometheus.yml" >/dev/null || die "promtool check config failed"
    got=$(grep -c '\.onion:80' "$tmp/prometheus.yml" || true)
    [ "$got" -eq "$targets" ] || die "the rendered configuration has $got targets, not $targets"
    grep -q "scrape_interval: $interval\$" "$tmp/prometheus.yml" ||
        die "the rendered configuration does not scrape the servers every $interval"
    echo "fleet.sh --check: $targets targets, scrape_interval $interval, scrape_timeout $timeout: OK"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces)"
tools=(cmd:tor:tor cmd:tor-gencert:tor cmd:prometheus:prometheus cmd:promtool:prometheus
    cmd:python3:python3 py:yaml:python3-yaml py:jinja2:python3-jinja2 cmd:openssl:openssl
    cmd:ip:iproute2 cmd:unshare:util-linux cmd:getconf:libc-bin)
# Debian's tor and prometheus start their services on install; the system tor would join the
# public Tor network.
need_packages --no-services "${tools[@]}" || die "apt-get install $(missing_packages "${tools[@]}") failed"
command -v cargo >/dev/null 2>&1 || die "cargo not found (Rust 1.81, pinned by rust-toolchain.toml; e.g. rustup)"

BENCH_FLEET_INTERVAL=${BENCH_FLEET_INTERVAL:-$(role_default tor_monitoring_scrape_interval)}
BENCH_FLEET_TIMEOUT=${BENCH_FLEET_TIMEOUT:-$(role_default tor_monitoring_scrape_timeout)}
export BENCH_FLEET_INTERVAL BENCH_FLEET_TIMEOUT BENCH_FLEET_TARGETS=$targets

echo "fleet.sh: building the exporter (cargo build --release --locked)" >&2
(cd "$ROOT" && cargo build --release --locked --quiet)
echo "fleet.sh: building the benchmark (bench/fleet, its own workspace)" >&2
(cd "$HERE/fleet" && CARGO_TARGET_DIR=$FLEET_TARGET cargo build --release --locked --quiet)

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores," \
    "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r)"
echo "uptime: $(uptime)"
echo "software: $("$ROOT/target/release/securedrop-tor-exporter" --version)," \
    "$(prometheus --version 2>&1 | head -1), $(tor --version | head -1)"

# The benchmark starts the private network, the exporters and Prometheus, and stops every
# process it started, by PID, also when it fails.
BENCH_FLEET_REPO=$ROOT BENCH_EXPORTER_BIN=$ROOT/target/release/securedrop-tor-exporter \
    "$FLEET_TARGET/release/bench-fleet"
echo "uptime: $(uptime)"
