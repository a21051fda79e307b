#!/usr/bin/env bash
# Debian's tor of the 0.4.8 series (bookworm-backports' tor 0.4.8.14-1~bpo12+1), unpacked beside
# the machine's tor for the real-tor and private-network tests (scripts/cargo-tor-0.4.8.sh; run
# as root on Debian 12). SecureDrop servers may still run 0.4.8. Prints the path of the unpacked
# tor on stdout (with the argument `tor-gencert`, of its tor-gencert); what it does goes to stderr.
#
# The .deb comes by apt's own machinery, as monitoring/prometheus3.sh does it: a private sources
# file naming the machine's Debian mirror and the suite bookworm-backports, private lists and a
# private package cache (the machine's sources, lists, cache and their locks are neither used nor
# changed; backports is never added to the host). `apt-get update` checks the suite's InRelease
# against debian-archive-keyring and `apt-get download` refuses a .deb whose hash is not in the
# signed Packages index. It is unpacked with `dpkg-deb -x` (nothing is installed) into
# ${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}/tor-<version>/ and reused while it is
# there: no network at all then. The version is pinned (SDTE_TOR048_VERSION overrides it): the
# tests measure one known 0.4.8, and backports may move on or drop it. Everything runs under one
# flock, so two runs never share the private apt state at once.
#
# The backports build needs nothing bookworm lacks (ldd, checked 2026-12-07: the same libevent,
# OpenSSL 3, zstd, lzma, seccomp, cap, systemd libraries as bookworm's tor); running
# `tor --version` is the check, and it must say 0.4.8. tor-gencert comes in the same package.
# Exit status 1, and why on stderr, when there is no usable tor 0.4.8.
set -euo pipefail

what=${1:-tor}
case $what in
    tor | tor-gencert) ;;
    *) echo "usage: ${0##*/} [tor|tor-gencert]" >&2; exit 2 ;;
esac
say() { echo "${0##*/}: $*" >&2; }

version=${SDTE_TOR048_VERSION:-0.4.8.14-1~bpo12+1}
suite=${SDTE_TOR048_SUITE:-bookworm-backports}
cache=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
dir=$cache/tor-$version
bin=$dir/usr/bin/$what

# Runs the unpacked program, which must say it is tor 0.4.8; prints its path.
check() {
    local out
    if ! out=$("$dir/usr/bin/tor" --version 2>&1); then
        say "$dir/usr/bin/tor does not run on this machine:"
        echo "$out" | head -5 | sed 's/^/    /' >&2
        ldd "$dir/usr/bin/tor" 2>&1 | grep 'not found' | sed 's/^/    /' >&2 || true
        return 1
    fi
    case $out in
        "Tor version 0.4.8."*) ;;
        *) say "$dir/usr/bin/tor is not tor 0.4.8: $(echo "$out" | head -1)"; return 1 ;;
    esac
    [ -x "$bin" ] || { say "$bin is missing from the package"; return 1; }
    echo "$bin"
}

# Unpacked before: no lock, no network.
if [ -x "$dir/usr/bin/tor" ]; then
    check
    exit
fi

state=$cache/apt-tor048
mkdir -p "$state"
exec 9>"$cache/tor048.lock"
flock -w 1800 9 || { say "waited 30 minutes for $cache/tor048.lock"; exit 1; }
# Another run may have unpacked it while this one waited.
if [ -x "$dir/usr/bin/tor" ]; then
    check
    exit
fi

# shellcheck source=scripts/lib/private-apt.sh
. "$(dirname "$0")/lib/private-apt.sh"
private_apt_setup "$state" "$suite"

if ! timeout 900 apt-get "${apt_opts[@]}" -q --error-on=any update >"$state/update.log" 2>&1; then
    say "apt-get update of $mirror $suite failed:"
    tail -5 "$state/update.log" | sed 's/^/    /' >&2
    exit 1
fi
dl=$state/download
rm -rf "$dl" "$dir.tmp"
mkdir -p "$dl"
say "downloading tor $version from $mirror $suite"
if ! (cd "$dl" && timeout 900 apt-get "${apt_opts[@]}" -q download "tor=$version") \
    >"$state/download.log" 2>&1; then
    say "apt-get download tor=$version failed (is it still in $suite?):"
    sed 's/^/    /' "$state/download.log" >&2
    say "versions of tor in $suite: $(apt-cache "${apt_opts[@]}" madison tor 2>/dev/null | awk -F'|' '{print $2}' | xargs)"
    exit 1
fi
deb=$(echo "$dl"/tor_*.deb)
got=$(dpkg-deb -f "$deb" Package Version | tr '\n' ' ')
[ "$got" = "Package: tor Version: $version " ] || { say "$deb is not tor $version: $got"; exit 1; }
mkdir -p "$dir.tmp"
dpkg-deb -x "$deb" "$dir.tmp"
mv "$dir.tmp" "$dir"
rm -rf "$dl"
check
