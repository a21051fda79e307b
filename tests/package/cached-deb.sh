#!/bin/bash
# Usage: tests/package/cached-deb.sh
#
# Prints the path of the .deb built from this checkout (tracked and not-ignored files, uncommitted
# work included), building it only if the cache has none for exactly this tree and toolchain:
#   ${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}/debs/<key>/securedrop-tor-exporter_<version>_amd64.deb
# <key> hashes every file of the tree (names, modes, contents) and `rustc -V`/`cargo -V`.
# The build goes through build-deb.sh in a fixed folder with a cached cargo target, under a lock, so
# concurrent callers (the package tests, Molecule) build once. Build log on stderr only on failure.
#
# SDTE_SOURCE_DIR: use this snapshot of the tree instead of the checkout.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
export PATH=$PATH:${CARGO_HOME:-$HOME/.cargo}/bin

mkdir -p "$CACHE/debs"
tmp=$(mktemp -d "$CACHE/debs/.snap.XXXXXX")
# shellcheck disable=SC2064  # expand $tmp now
trap "rm -rf '$tmp'" EXIT

if [ -n "${SDTE_SOURCE_DIR:-}" ]; then
    src=$SDTE_SOURCE_DIR
else
    src=$tmp/tree
    "$HERE/snapshot-tree.sh" "$REPO" "$src"
fi

key=$({
    (cd "$src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    (cd "$src" && find . -type f -printf '%p %m\n' | LC_ALL=C sort)
    rustc -V
    cargo -V
} | sha256sum | cut -c1-16)
out=$CACHE/debs/$key
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
deb=$out/securedrop-tor-exporter_${version}_amd64.deb

exec 9>"$CACHE/.pkg-build.lock"
flock -w 1800 9 || { echo "cached-deb.sh: timed out waiting for $CACHE/.pkg-build.lock" >&2; exit 1; }
if [ ! -s "$deb" ]; then
    build=$CACHE/pkg-build
    rm -f "$build"/*.deb "$build"/*.changes "$build"/*.buildinfo
    CARGO_TARGET_DIR=$CACHE/pkg-cargo-target SDTE_SOURCE_DIR=$src "$HERE/build-deb.sh" "$build" >/dev/null
    mkdir -p "$out.new"
    cp "$build"/*.deb "$build"/*.changes "$build"/*.buildinfo "$out.new/"
    rm -rf "$out"
    mv "$out.new" "$out"
    # keep the five newest builds
    # shellcheck disable=SC2012  # names are hex keys
    ls -1dt "$CACHE"/debs/*/ | tail -n +6 | xargs -r rm -rf
fi
printf '%s\n' "$deb"
