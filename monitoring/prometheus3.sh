#!/usr/bin/env bash
# Debian's Prometheus 3.5 (packages `promtool` and `prometheus` 3.5.x), unpacked beside Debian
# 12's 2.42 for monitoring/test.sh (run as root on Debian 12). Prints the path of the unpacked
# promtool (or, with the argument `prometheus`, of the unpacked server binary) on stdout; what it
# does goes to stderr.
#
# Which suite: Debian 13 (trixie) ships Prometheus 2.53.3 (packages prometheus and promtool
# 2.53.3+ds1-2), not 3.x, and trixie-backports has none; 3.5.3 is in Debian testing (forky) and
# unstable. So the default suite is forky; SDTE_PROM3_SUITE=sid (or another suite of the same
# mirror) chooses another. Whatever comes must say `version 3.`.
#
# The .deb comes by apt's own machinery from the mirror this machine's /etc/apt/sources.list*
# already uses, with a private sources file, private lists and a private cache (the machine's
# sources, lists, package cache and their locks are neither used for it nor changed): `apt-get
# update` checks the suite's InRelease against debian-archive-keyring (Debian 12's holds the keys
# that sign trixie and forky), and `apt-get download` refuses a .deb whose hash is not in the
# signed Packages index. It is unpacked with `dpkg-deb -x` (nothing is installed) into
# ${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}/prometheus3-<version>/ and reused while
# the suite's version is the same. Everything here runs under one flock, so two runs never share
# the private apt state at once. With no archive reachable it falls back to the newest copy
# unpacked before, if there is one, and says so. Exit status 1, and why on stderr, when there is
# no usable Prometheus 3.
set -euo pipefail

what=${1:-promtool}
case $what in
    promtool | prometheus) ;;
    *) echo "usage: ${0##*/} [promtool|prometheus]" >&2; exit 2 ;;
esac
say() { echo "${0##*/}: $*" >&2; }

suite=${SDTE_PROM3_SUITE:-forky}
cache=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
state=$cache/apt-prometheus3
mkdir -p "$state"
exec 9>"$cache/prometheus3.lock"
flock -w 1800 9 || { say "waited 30 minutes for $cache/prometheus3.lock"; exit 1; }

# shellcheck source=scripts/lib/private-apt.sh
. "$(dirname "$0")/../scripts/lib/private-apt.sh"
private_apt_setup "$state" "$suite"

# The newest copy unpacked before that holds the wanted binary.
cached_newest() {
    local d
    d=$(find "$cache" -maxdepth 1 -type d -name 'prometheus3-*' ! -name '*.tmp' 2>/dev/null |
        while read -r d; do [ -x "$d/usr/bin/$what" ] && echo "$d"; done | sort -V | tail -1)
    [ -n "$d" ] && echo "$d"
}

dir=''
if timeout 900 apt-get "${apt_opts[@]}" -q --error-on=any update >"$state/update.log" 2>&1; then
    version=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$what" 2>/dev/null |
        sed -n 's/^Version: //p' | head -1)
    if [ -z "$version" ]; then
        say "$suite's index ($mirror) has no package $what"
    else
        dir=$cache/prometheus3-${version//[^A-Za-z0-9.+~-]/_}
        if [ ! -x "$dir/usr/bin/$what" ]; then
            dl=$state/download
            rm -rf "$dl" "$dir.tmp"
            mkdir -p "$dl"
            say "downloading $what $version from $mirror $suite"
            if ! (cd "$dl" && timeout 900 apt-get "${apt_opts[@]}" -q download "$what=$version") \
                >"$state/download.log" 2>&1; then
                say "apt-get download $what=$version failed:"
                sed 's/^/    /' "$state/download.log" >&2
                dir=''
            else
                # Into a copy of what is there (the other package's files), then swapped in.
                mkdir -p "$dir.tmp"
                [ ! -d "$dir" ] || cp -a "$dir/." "$dir.tmp/"
                dpkg-deb -x "$dl/${what}_"*.deb "$dir.tmp"
                rm -rf "$dir"
                mv "$dir.tmp" "$dir"
                rm -rf "$dl"
            fi
        fi
    fi
else
    say "apt-get update of $mirror $suite failed:"
    tail -5 "$state/update.log" | sed 's/^/    /' >&2
fi
if [ -z "$dir" ]; then
    dir=$(cached_newest) || { say "no Prometheus 3 (no archive, and no $what unpacked in $cache before)"; exit 1; }
    say "using the copy unpacked before: $dir"
fi

# It must run here: the suite's binaries are built against its newer glibc. Debian's builds of
# Prometheus 3.5 need libc6 >= 2.34 (Debian 12 has 2.36); running it is the check.
bin=$dir/usr/bin/$what
if ! out=$("$bin" --version 2>&1); then
    say "$bin does not run on this machine:"
    echo "$out" | head -5 | sed 's/^/    /' >&2
    exit 1
fi
case $out in
    *"version 3."*) ;;
    *) say "$bin is not Prometheus 3: $(echo "$out" | head -1)"; exit 1 ;;
esac
echo "$bin"
