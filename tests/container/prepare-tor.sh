#!/bin/bash
# Usage: tests/container/prepare-tor.sh ROOT
#
# Test-only tweaks to the tor in a rootfs from rootfs.sh, before it boots (idempotent):
# - `DisableNetwork 1` in /etc/tor/torrc: the container already has only loopback; this is the
#   second belt, tor never tries to reach the Tor network.
# - a tor@default drop-in (/etc/systemd/system/tor@default.service.d/50-sdte-test.conf):
#   * ExecStartPost=/bin/kill -HUP $MAINPID — with DisableNetwork 1, tor started as root with
#     `User debian-tor` defers its unix control socket and never opens it until a SIGHUP (see
#     /work/shared/nspawn.md). A production tor has its network on and needs nothing of the sort.
#   * StartLimitIntervalSec=0 — tests that restart tor often must not hit the start limit.
# Nothing here is part of the product; the package and the Ansible role must work without it on a
# real server.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 ROOT" >&2; exit 2; }
ROOT=$1
[ -f "$ROOT/etc/tor/torrc" ] || { echo "prepare-tor.sh: $ROOT/etc/tor/torrc missing" >&2; exit 1; }

if ! grep -q '^DisableNetwork 1' "$ROOT/etc/tor/torrc"; then
    printf '\n# securedrop-tor-exporter tests: never reach the Tor network\nDisableNetwork 1\n' \
        >>"$ROOT/etc/tor/torrc"
fi

dropin=$ROOT/etc/systemd/system/tor@default.service.d
mkdir -p "$dropin"
cat >"$dropin/50-sdte-test.conf" <<'EOF'
# securedrop-tor-exporter tests only (tests/container/prepare-tor.sh)
[Unit]
StartLimitIntervalSec=0

[Service]
# DisableNetwork 1 defers the unix control socket until a SIGHUP.
ExecStartPost=/bin/kill -HUP $MAINPID
EOF
