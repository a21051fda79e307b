#!/bin/bash
# Usage: molecule/default/container.sh up|down NAME WORKDIR
#
# up:   a fresh never-booted Debian rootfs in WORKDIR/NAME/root (tests/container/rootfs.sh), the
#       test-only tor tweaks (tests/container/prepare-tor.sh), booted as NAME with only loopback
#       (tests/container/boot.sh, state in WORKDIR/NAME/state). Prints the container's PID 1.
#       The nspawn machine name gets a suffix unique to WORKDIR (two runs at once must not share
#       /run/systemd/nspawn/propagate/NAME); the container's hostname is NAME.
# down: stops it (tests/container/stop.sh) and deletes WORKDIR/NAME. Nothing to stop is success.
#
# Which Debian: SDTE_SUITES, words NAME=SUITE (molecule/run.sh sets it, "app-staging=bookworm
# mon-staging=trixie" by default: one scenario run covers both releases), else SDTE_SUITE, else
# bookworm. Written to WORKDIR/NAME/suite.
set -euo pipefail

die() { echo "container.sh: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: $0 up|down NAME WORKDIR"
action=$1 name=$2 workdir=$3
[[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "bad name '$name'"
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$workdir/$name

case "$action" in
    up)
        [ ! -e "$dir" ] || "$0" down "$name" "$workdir"
        mkdir -p "$dir/state"
        suite=${SDTE_SUITE:-bookworm}
        for w in ${SDTE_SUITES:-}; do
            [ "${w%%=*}" != "$name" ] || suite=${w#*=}
        done
        printf '%s\n' "$suite" >"$dir/suite"
        SDTE_SUITE=$suite "$repo/tests/container/rootfs.sh" "$dir/root" >&2
        "$repo/tests/container/prepare-tor.sh" "$dir/root" >&2
        suffix=$(basename "$workdir" | tr -cd 'A-Za-z0-9' | tail -c 12)
        leader=$("$repo/tests/container/boot.sh" "$dir/root" "$name-$suffix" "$dir/state")
        printf '%s\n' "$name" >"$dir/root/etc/hostname"
        nsenter -t "$leader" -u hostname "$name"
        printf '%s\n' "$leader"
        ;;
    down)
        if [ -d "$dir/state" ]; then
            "$repo/tests/container/stop.sh" "$dir/state" >&2
        fi
        rm -rf --one-file-system "$dir"
        ;;
    *) die "unknown action '$action'" ;;
esac
