#!/bin/bash
# Usage: tests/container/boot.sh ROOT NAME STATE_DIR
#
# Boots the root file system ROOT (from rootfs.sh) as a systemd container named NAME with only a
# loopback interface (--private-network), in the background. Writes NAME to ROOT/etc/hostname and
# records in STATE_DIR:
#   nspawn.pid   the systemd-nspawn process (stop.sh STATE_DIR stops it)
#   leader.pid   the container's PID 1 (drive it with `nsenter -t $(cat leader.pid) -a CMD`)
#   boot.log     nspawn's console output
# Waits until `systemctl is-system-running` inside says running or degraded, then prints the leader
# PID on stdout (nothing else goes to stdout). On timeout or early exit it prints why on stderr,
# stops what it started and exits 1.
#
# Environment: SDTE_BOOT_TIMEOUT (seconds, default 60).
set -euo pipefail

die() { echo "boot.sh: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: $0 ROOT NAME STATE_DIR"
ROOT=$1 NAME=$2 STATE=$3
TIMEOUT=${SDTE_BOOT_TIMEOUT:-60}
HERE=$(cd "$(dirname "$0")" && pwd)

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -x "$ROOT/lib/systemd/systemd" ] || die "$ROOT has no systemd (make it with rootfs.sh)"
[[ "$NAME" =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,62}$ ]] || die "bad container name '$NAME'"
command -v systemd-nspawn >/dev/null 2>&1 || die "systemd-nspawn missing (apt-get install systemd-container)"

mkdir -p "$STATE"
if [ -s "$STATE/nspawn.pid" ] && kill -0 "$(cat "$STATE/nspawn.pid")" 2>/dev/null; then
    die "$STATE already has a running container (pid $(cat "$STATE/nspawn.pid")); stop.sh it first"
fi
rm -f "$STATE/nspawn.pid" "$STATE/leader.pid"

printf '%s\n' "$NAME" >"$ROOT/etc/hostname"

# --register=no and --keep-unit: this host's PID 1 is not systemd and there is no system bus.
# setsid: the container keeps running after this script exits, in its own session.
setsid systemd-nspawn -D "$ROOT" --boot --private-network --register=no --keep-unit \
    --console=passive -M "$NAME" </dev/null >"$STATE/boot.log" 2>&1 &
nspawn=$!
printf '%s\n' "$nspawn" >"$STATE/nspawn.pid"

fail() {
    echo "boot.sh: $*" >&2
    if [ -s "$STATE/boot.log" ]; then
        echo "boot.sh: last lines of $STATE/boot.log:" >&2
        tail -n 20 "$STATE/boot.log" >&2
    fi
    "$HERE/stop.sh" "$STATE" >&2 || true
    exit 1
}

deadline=$((SECONDS + TIMEOUT))

# The container's PID 1 is the only child of the nspawn process; wait until it is systemd.
leader=
while :; do
    kill -0 "$nspawn" 2>/dev/null || fail "systemd-nspawn exited before the container booted"
    child=$(cat "/proc/$nspawn/task/$nspawn/children" 2>/dev/null || true)
    child=${child%% *}
    if [ -n "$child" ] && [ "$(cat "/proc/$child/comm" 2>/dev/null || true)" = systemd ]; then
        leader=$child
        break
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "no systemd in the container after ${TIMEOUT}s"
    sleep 0.05
done
printf '%s\n' "$leader" >"$STATE/leader.pid"

# Then until the boot has finished (too early: "not booted with systemd" / "Failed to connect to bus").
state=
while :; do
    kill -0 "$nspawn" 2>/dev/null || fail "systemd-nspawn exited during boot"
    left=$((deadline - SECONDS))
    if [ "$left" -le 0 ]; then
        state=$(timeout 5 nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null || true)
        fail "container '$NAME' not running after ${TIMEOUT}s (state: ${state:-unknown})"
    fi
    state=$(timeout "$left" nsenter -t "$leader" -a systemctl is-system-running --wait 2>/dev/null || true)
    case "$state" in
        running | degraded) break ;;
    esac
    sleep 0.1
done

printf '%s\n' "$leader"
