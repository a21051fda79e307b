#!/bin/bash
# Usage: tests/package/snapshot-tree.sh REPO OUT_DIR
# Copies the files git tracks or would track (not ignored: so uncommitted work is included, never
# target/ or .git) from the checkout REPO into OUT_DIR, keeping their modification times.
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 REPO OUT_DIR" >&2; exit 2; fi
mkdir -p "$2"
(cd "$1" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do if [ -f "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done |
    tar --null -T - -cf -) | tar -C "$2" -xf -
