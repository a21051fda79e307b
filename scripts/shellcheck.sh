#!/usr/bin/env bash
# Runs ShellCheck on every shell script in the tree: *.sh, anything whose first line names sh or bash
# (.ci/run, debian's maintainer scripts …). Git-tracked and new (untracked, not ignored) files.
# Installs shellcheck if missing (as root). Exit 1 on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
need_packages --recommends cmd:shellcheck:shellcheck

scripts=()
while IFS= read -r f; do
    [ -f "$f" ] || continue
    case "$f" in
        *.sh) scripts+=("$f") ;;
        *) if head -n 1 "$f" 2>/dev/null | grep -qE '^#!.*[/ ](ba)?sh( |$)'; then scripts+=("$f"); fi ;;
    esac
done < <( (git ls-files; git ls-files --others --exclude-standard) | sort -u)

shellcheck "${scripts[@]}"
echo "shellcheck.sh: ${#scripts[@]} scripts clean" >&2
