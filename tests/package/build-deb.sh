#!/bin/bash
# Usage: tests/package/build-deb.sh OUT_DIR [NEW_VERSION]
#
# Builds the .deb of this checkout with `dpkg-buildpackage -us -uc -b` in a fresh copy of the
# source tree, OUT_DIR/src/securedrop-tor-exporter (git's tracked and not-ignored files, so
# uncommitted work is included, never target/ or .git). The .deb, .changes and .buildinfo land in
# OUT_DIR (SDTE_SOURCE_DIR: copy that folder instead). With NEW_VERSION, the copy gets a new debian/changelog entry first (for upgrade tests).
#
# CARGO_TARGET_DIR defaults to OUT_DIR/cargo-target: reuse a directory to skip recompiling, use a
# fresh one to test reproducibility. Never the project's shared target/ (different RUSTFLAGS would
# make cargo rebuild the lead's artefacts).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "usage: $0 OUT_DIR [NEW_VERSION]" >&2; exit 2; fi
OUT=$1
NEW_VERSION=${2:-}
REPO=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"
need_packages debhelper dh-apparmor dpkg-dev
export PATH=$PATH:${CARGO_HOME:-$HOME/.cargo}/bin

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SRC=$OUT/src/securedrop-tor-exporter
rm -rf "$SRC"
mkdir -p "$SRC"
if [ -n "${SDTE_SOURCE_DIR:-}" ]; then
    # a snapshot taken earlier (run.sh builds several packages from one snapshot of a tree that
    # others may be editing meanwhile); cp -a keeps mtimes, so cargo's cache stays fresh
    cp -a "$SDTE_SOURCE_DIR/." "$SRC/"
else
    "$(dirname "$0")/snapshot-tree.sh" "$REPO" "$SRC"
fi

if [ -n "$NEW_VERSION" ]; then
    # A changelog entry written by hand (no dch: it needs a maintainer identity and a clock).
    {
        printf 'securedrop-tor-exporter (%s) %s; urgency=medium\n\n' "$NEW_VERSION" \
            "$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Distribution)"
        printf '  * Test rebuild for upgrade tests.\n\n'
        printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Maintainer)" \
            "$(date -R -u -d "@$(($(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Timestamp) + 1))")"
        cat "$SRC/debian/changelog"
    } >"$SRC/debian/changelog.new"
    mv "$SRC/debian/changelog.new" "$SRC/debian/changelog"
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$OUT/cargo-target}
# cargo judges the crate's own sources by mtime only, and every tree is built in the same folder:
# a tree whose files are older than the last build in this cargo target (another checkout, built
# after these files were last edited) would be taken as built, and the .deb would hold that other
# tree's binary. So when what cargo reads (Cargo.toml, Cargo.lock, src/, build.rs, .cargo/)
# differs from what was last built here, the tree's files get a fresh mtime (the .deb's file times
# come from SOURCE_DATE_EPOCH, so it stays reproducible).
mkdir -p "$CARGO_TARGET_DIR"
inputs=()
for p in Cargo.toml Cargo.lock src build.rs .cargo; do [ ! -e "$SRC/$p" ] || inputs+=("$p"); done
tree_key=$(cd "$SRC" && find "${inputs[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum |
    sha256sum | cut -c1-16)
if [ "$(cat "$CARGO_TARGET_DIR/.sdte-tree" 2>/dev/null)" != "$tree_key" ]; then
    rm -f "$CARGO_TARGET_DIR/.sdte-tree"
    find "$SRC" -type f -exec touch {} +
fi
cd "$SRC"
if ! dpkg-buildpackage -us -uc -b >"$OUT/build.log" 2>&1; then
    tail -n 40 "$OUT/build.log" >&2
    echo "build-deb.sh: dpkg-buildpackage failed (full log: $OUT/build.log)" >&2
    exit 1
fi
mv "$OUT"/src/*.deb "$OUT"/src/*.changes "$OUT"/src/*.buildinfo "$OUT"/
printf '%s\n' "$tree_key" >"$CARGO_TARGET_DIR/.sdte-tree"
ls "$OUT"/*.deb
