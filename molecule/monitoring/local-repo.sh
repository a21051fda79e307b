#!/bin/bash
# Usage: molecule/monitoring/local-repo.sh ROOTFS PACKAGE...
#
# A flat apt repository in ROOTFS/var/tmp/tor-monitoring-repo with PACKAGE... and every package
# they depend on (recommends excluded) that ROOTFS does not have yet, downloaded with this
# machine's apt (cached in ${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}/monitoring-debs).
# The container itself has no network.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 ROOTFS PACKAGE..." >&2; exit 2; }
root=$1
shift
cache=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}/monitoring-debs
repo=$root/var/tmp/tor-monitoring-repo
# shellcheck source=scripts/lib/apt.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib/apt.sh"
need_packages --recommends cmd:dpkg-scanpackages:dpkg-dev
mkdir -p "$cache" "$repo"
have=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package}\n' | sort -u)
want=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$@" | grep -v -e '^ ' -e '^<' | sort -u)
missing=$(comm -13 <(printf '%s\n' "$have") <(printf '%s\n' "$want"))
for pkg in $missing; do
    ls "$cache/${pkg}"_*.deb >/dev/null 2>&1 || (cd "$cache" && apt-get download -qq "$pkg")
    cp "$cache/${pkg}"_*.deb "$repo/"
done
(cd "$repo" && dpkg-scanpackages --multiversion . 2>/dev/null >Packages)
echo "local-repo.sh: $(echo "$missing" | wc -w) packages in $repo" >&2
