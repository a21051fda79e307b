#!/bin/bash
# Usage: tests/container/rootfs.sh OUT_DIR
#
# Puts a fresh, never-booted Debian bookworm root file system (systemd, dbus, tor, python3 …) into
# OUT_DIR, ready for tests/container/boot.sh. The first call debootstraps it (~40 s) and caches a
# tar.gz under ${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}; later calls only extract the
# cache (~2 s). Each copy is never booted, so machine-id, tor keys and onion keys are never shared.
#
# Environment:
#   SDTE_CACHE   cache folder (default /var/cache/securedrop-tor-exporter-tests)
#   SDTE_MIRROR  Debian mirror for debootstrap (default: the one apt on this machine uses for bookworm)
#
# Installs debootstrap and systemd-container with apt-get when missing. Needs root.
set -euo pipefail

SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,tor,ca-certificates,procps,python3,python3-apt,sudo,iproute2,unattended-upgrades,apt-utils,gnupg,strace
CACHE_DIR=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}

die() { echo "rootfs.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUT_DIR"
OUT=$1
[ "$(id -u)" -eq 0 ] || die "must run as root"

# shellcheck source=scripts/lib/apt.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib/apt.sh"
need_packages --recommends cmd:debootstrap:debootstrap cmd:systemd-nspawn:systemd-container

# The mirror apt already uses for the main bookworm suite (deb822 and one-line formats alike).
mirror() {
    if [ -n "${SDTE_MIRROR:-}" ]; then
        printf '%s\n' "$SDTE_MIRROR"
        return
    fi
    local m
    # shellcheck disable=SC2016  # apt's own $(FIELD) syntax, not a shell expansion
    m=$(apt-get indextargets --format '$(RELEASE) $(IDENTIFIER) $(REPO_URI)' 2>/dev/null \
        | awk -v s="$SUITE" '$1 == s && $2 == "Packages" { print $3; exit }')
    printf '%s\n' "${m:-http://deb.debian.org/debian/}"
}

# The cache name changes whenever the package list or suite changes.
key=$(printf '%s %s' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)
TARBALL=$CACHE_DIR/rootfs-$SUITE-$key.tar.gz

mkdir -p "$CACHE_DIR"
# Several test suites may ask at once: one builds, the others wait for it.
exec 9>"$CACHE_DIR/.lock"
flock -w 600 9 || die "timed out waiting for the cache lock $CACHE_DIR/.lock"

if [ ! -s "$TARBALL" ]; then
    MIRROR=$(mirror)
    work=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
    # shellcheck disable=SC2064  # expand $work now
    trap "rm -rf '$work'" EXIT
    echo "rootfs.sh: debootstrap $SUITE from $MIRROR (cached afterwards in $TARBALL)" >&2
    if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/root" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    # Never booted, nothing unique: systemd makes a machine-id at first boot.
    : >"$work/root/etc/machine-id"
    rm -f "$work/root/var/lib/dbus/machine-id"
    rm -f "$work/root/var/cache/apt/archives/"*.deb
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$work/root" -czf "$work/rootfs.tar.gz" .
    mv "$work/rootfs.tar.gz" "$TARBALL"
    rm -rf "$work"
    trap - EXIT
fi
exec 9>&-

if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
    die "$OUT exists and is not empty"
fi
mkdir -p "$OUT"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$OUT" -xzpf "$TARBALL"
# Debian's apt-daily timers would start apt (and, with unattended-upgrades installed, an upgrade)
# in a booted test container at their hour, taking dpkg's lock under a test. The tests run apt and
# unattended-upgrade themselves when they mean to.
for t in apt-daily.timer apt-daily-upgrade.timer; do
    ln -sfn /dev/null "$OUT/etc/systemd/system/$t"
done
