#!/bin/bash
# Usage: tests/container/rootfs.sh OUT_DIR
#
# Puts a fresh, never-booted Debian root file system (systemd, dbus, tor, python3 …) into OUT_DIR,
# ready for tests/container/boot.sh: Debian 12 (bookworm) by default, or Debian 13 (trixie), the
# Debian nearest SecureDrop's Ubuntu 24.04 (systemd 257, tor 0.4.9.15, apt 3). The first call for a
# suite debootstraps it (bookworm ~1 min; trixie, from deb.debian.org, 3-3.5 min here under load)
# and caches a tar.gz under
# ${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}, one per suite and package list; later
# calls only extract the cache (~2 s). Each copy is never booted, so machine-id, tor keys and onion
# keys are never shared.
#
# Environment:
#   SDTE_SUITE   bookworm (default) or trixie
#   SDTE_CACHE   cache folder (default /var/cache/securedrop-tor-exporter-tests)
#   SDTE_MIRROR  Debian mirror for debootstrap (default: the one apt on this machine uses for that
#                suite, else http://deb.debian.org/debian/)
#
# Installs debootstrap and systemd-container with apt-get when missing. Needs root.
set -euo pipefail

SUITE=${SDTE_SUITE:-bookworm}
CACHE_DIR=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}

die() { echo "rootfs.sh: $*" >&2; exit 1; }

# The same packages in both suites (each checked to exist in trixie's main on 2026-12-07). The list
# is part of the cache key, so bookworm's stays exactly as it was: changing it rebuilds the cache.
case $SUITE in
    bookworm | trixie)
        PACKAGES=systemd,systemd-sysv,dbus,tor,ca-certificates,procps,python3,python3-apt,sudo,iproute2,unattended-upgrades,apt-utils,gnupg,strace
        ;;
    *) die "SDTE_SUITE must be bookworm or trixie, not '$SUITE'" ;;
esac

[ $# -eq 1 ] || die "usage: $0 OUT_DIR"
OUT=$1
[ "$(id -u)" -eq 0 ] || die "must run as root"

# shellcheck source=scripts/lib/apt.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib/apt.sh"
need_packages --recommends cmd:debootstrap:debootstrap cmd:systemd-nspawn:systemd-container

# The mirror apt already uses for the suite (deb822 and one-line formats alike); a bookworm host's
# apt knows no trixie, whose packages then come from deb.debian.org (bookworm's
# debian-archive-keyring already holds trixie's archive keys, which debootstrap checks).
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

# The cache name changes whenever the package list or suite changes (both are in the key, and the
# suite in the name too).
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
    # tor's .deb, kept for the package suite's reinstall of tor (its real file trigger): the host's
    # apt can download bookworm's, but knows no other suite's.
    mkdir -p "$CACHE_DIR/tor-deb"
    cp -n "$work/root/var/cache/apt/archives/"tor_*_amd64.deb "$CACHE_DIR/tor-deb/" 2>/dev/null || true
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
