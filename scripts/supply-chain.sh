#!/usr/bin/env bash
# Supply-chain checks of the crate graph, offline (the `supply` suite of scripts/test.sh):
#   1. deny: cargo-deny with deny.toml: RustSec advisories (vulnerable, unmaintained, unsound,
#      yanked), licenses, duplicate versions and wildcards, sources (crates.io only). The RustSec
#      database is the shared upstream snapshot, copied into a temporary git repository; nothing
#      is fetched (`cargo-deny --frozen`);
#   2. vet: `cargo vet --locked --frozen` with supply-chain/ (this project's audits and
#      exemptions; no imports, so none is fetched), and a copy of supply-chain/ short of one
#      exemption fails naming that crate;
#   3. fake-advisory: the advisory check fails when it must: a copy of the database with a
#      made-up vulnerability for a direct dependency at its locked version, then a made-up
#      "unsound" notice for a transitive one, each make cargo-deny fail naming the crate;
#   4. coverage-table: docs/supply-chain.md's table of what Google's and Mozilla's public audits
#      cover is the one scripts/supply_chain_coverage.py computes from today's Cargo.lock.
# It ends with "supply-chain: N passed, M failed".
#
#   scripts/supply-chain.sh            run the checks
#   scripts/supply-chain.sh --update   after Cargo.lock changed: `cargo vet regenerate
#                                      exemptions`, rewrite the coverage table, then the checks
#
# cargo-deny and cargo-vet are installed by this script, once, at pinned versions from crates.io
# (`cargo +stable install --locked`, the machine's stable toolchain whatever rust-toolchain.toml
# pins) into $SDTE_CACHE/cargo-tools/<tool>@<version>/ (SDTE_CACHE defaults to
# /var/cache/securedrop-tor-exporter-tests); a warm run builds nothing. `cargo fetch --locked`
# and `cargo update --dry-run` (crates.io, Cargo.lock untouched) come first: cargo-deny reads
# every crate's manifest, and its yank check reads cargo's index cache. The RustSec snapshot is ../shared/upstream/supply-chain/advisory-db beside
# the clone (CI), else /work/shared/upstream/supply-chain/advisory-db; ADVISORY_DB overrides.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

CARGO_DENY_VERSION=0.20.2
CARGO_VET_VERSION=0.10.3
# cargo-deny keeps each database in <db-path>/<last part of its URL>-<hash of the URL>; this is
# the folder for deny.toml's db-urls entry (https://github.com/rustsec/advisory-db).
DB_DIR_NAME=advisory-db-3157b0e258782691

update=0
case "${1:-}" in
    --update) update=1 ;;
    "") ;;
    *) echo "usage: scripts/supply-chain.sh [--update]" >&2; exit 2 ;;
esac

# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
need_packages cmd:git:git cmd:python3:python3 cmd:flock:util-linux

cache=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
tools=$cache/cargo-tools
mkdir -p "$tools"

# install_tool NAME VERSION: builds NAME into the cache unless it is there already, and puts it
# first on PATH, so that `cargo deny` and `cargo vet` are the pinned versions.
install_tool() {
    local name=$1 version=$2
    local dir=$tools/$name@$version
    (
        flock 9
        if [ ! -x "$dir/bin/$name" ]; then
            echo "supply-chain.sh: installing $name $version (cargo +stable install --locked)" >&2
            rm -rf "$dir.partial"
            # From the cache folder, so that no cargo configuration of this tree applies.
            cd "$tools"
            # The tools' own release profiles are for their releases (cargo-deny's: fat LTO, one
            # codegen unit, built on one core for minutes); here they read one small Cargo.lock,
            # so a quick optimised build does: this profile, set from the environment, takes
            # precedence over their manifests'.
            CARGO_TARGET_DIR=$tools/target-$name@$version CARGO_PROFILE_RELEASE_LTO=off \
                CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
                cargo +stable install --locked --quiet --version "$version" \
                --root "$dir.partial" "$name" >&2
            mv "$dir.partial" "$dir"
            rm -rf "$tools/target-$name@$version"
        fi
    ) 9>"$tools/.$name@$version.lock"
    PATH=$dir/bin:$PATH
}

if ! cargo +stable --version >/dev/null 2>&1; then
    echo "supply-chain.sh: no stable toolchain (rustup toolchain install stable)" >&2
    exit 1
fi
install_tool cargo-deny "$CARGO_DENY_VERSION"
install_tool cargo-vet "$CARGO_VET_VERSION"
export PATH
for tool in "deny $CARGO_DENY_VERSION" "vet $CARGO_VET_VERSION"; do
    read -r subcommand version <<<"$tool"
    if ! cargo "$subcommand" --version | grep -qF " $version"; then
        echo "supply-chain.sh: cargo $subcommand is not version $version" >&2
        exit 1
    fi
done

advisory_db=${ADVISORY_DB:-}
if [ -z "$advisory_db" ]; then
    for candidate in "$repo/../shared/upstream/supply-chain/advisory-db" \
        /work/shared/upstream/supply-chain/advisory-db; do
        if [ -d "$candidate/crates" ]; then
            advisory_db=$candidate
            break
        fi
    done
fi
if [ ! -d "${advisory_db:-/nonexistent}/crates" ]; then
    echo "supply-chain.sh: no RustSec database (set ADVISORY_DB to a folder holding crates/)" >&2
    exit 1
fi
echo "supply-chain.sh: RustSec database $advisory_db:" \
    "$(find "$advisory_db/crates" -name 'RUSTSEC-*.md' | wc -l) advisories," \
    "newest dated $(grep -rhoE '^date = "[0-9-]+"' "$advisory_db/crates" | sort | tail -n 1 | cut -d'"' -f2)" >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# make_db ROOT: a git copy of the database where cargo-deny looks for it under db-path ROOT.
# cargo-deny wants a git repository (it dates the database by its HEAD); it is never fetched.
make_db() {
    local db=$1/$DB_DIR_NAME
    mkdir -p "$1" &&
        cp -R "$advisory_db" "$db" &&
        chmod -R u+w "$db" && # the shared copy has no write bits in CI
        git -C "$db" init -q &&
        git -C "$db" add -A &&
        git -C "$db" -c user.name=supply-chain.sh -c user.email=supply-chain@localhost \
            commit -q -m "RustSec snapshot from $advisory_db"
}

echo "supply-chain.sh: cargo fetch --locked" >&2
cargo fetch --locked
# cargo fetch leaves the index cache as it is once the lock is satisfied; a dry-run update
# reads every locked crate's index entry afresh (Cargo.lock stays untouched), so the yank check
# sees today's yanks.
if ! cargo update --dry-run --quiet 2>/dev/null; then
    echo "supply-chain.sh: WARNING: crates.io's index could not be read; the yank check uses" \
        "cargo's cached index entries, which may be old" >&2
fi

if [ "$update" = 1 ]; then
    echo "supply-chain.sh: cargo vet regenerate exemptions; coverage table" >&2
    cargo vet regenerate exemptions
    python3 scripts/supply_chain_coverage.py --write docs/supply-chain.md
fi

passed=0
failed=0
failed_names=()
check() {
    local name=$1
    shift
    echo "=== supply-chain: $name" >&2
    if "$@"; then
        passed=$((passed + 1))
        echo "=== supply-chain: $name passed" >&2
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        echo "=== supply-chain: $name FAILED" >&2
    fi
}

run_deny() {
    make_db "$work/clean" || return 1
    SDTE_ADVISORY_DBS=$work/clean cargo deny --frozen --color never check --show-stats
}

run_vet() {
    cargo vet --locked --frozen || return 1
    # ... and it is not vacuous: a copy of supply-chain/ without the first crate's exemption
    # fails, naming that crate.
    local store=$work/vet-store out=$work/vet.out crate version
    cp -R supply-chain "$store" || return 1
    read -r crate version < <(python3 - "$store/config.toml" <<'EOF'
import sys
import tomllib

path = sys.argv[1]
with open(path, "rb") as f:
    exemptions = tomllib.load(f)["exemptions"]
crate = sorted(exemptions)[0]
with open(path) as f:
    text = f.read()
start = text.index(f"[[exemptions.{crate}]]")
end = text.find("[[exemptions.", start + 1)
with open(path, "w") as f:
    f.write(text[:start] + (text[end:] if end != -1 else ""))
print(crate, exemptions[crate][0]["version"])
EOF
    )
    if [ -z "${version:-}" ]; then
        echo "could not take an exemption out of the copy of supply-chain/" >&2
        return 1
    fi
    if cargo vet --locked --frozen --store-path "$store" >"$out" 2>&1; then
        echo "cargo vet passed without the exemption of $crate $version" >&2
        return 1
    fi
    if ! grep -qF "$crate:$version" "$out"; then
        echo "cargo vet failed without naming $crate:$version:" >&2
        cat "$out" >&2
        return 1
    fi
    echo "without the exemption of $crate $version, cargo vet fails naming it, as it must" >&2
}

# fake_advisory ID CRATE VERSION KIND: writes a made-up advisory into the fake database that
# affects exactly CRATE VERSION. KIND is "vulnerability" or an informational kind ("unsound").
fake_advisory() {
    local id=$1 crate=$2 version=$3 kind=$4 info=""
    local dir=$work/fake/$DB_DIR_NAME/crates/$crate
    [ "$kind" = vulnerability ] || info="informational = \"$kind\""
    mkdir -p "$dir"
    cat >"$dir/$id.md" <<EOF
\`\`\`toml
[advisory]
id = "$id"
package = "$crate"
date = "2026-01-01"
url = "https://example.invalid/$id"
$info

[versions]
patched = ["> $version"]
unaffected = ["< $version"]
\`\`\`

# Made-up $kind advisory, written by scripts/supply-chain.sh

It exists only in a temporary copy of the database, to show that cargo-deny fails on it.
EOF
}

# deny_must_fail_on ID CRATE VERSION KIND: cargo-deny's advisories check on the fake database
# fails with an error of that kind, the advisory's id, and the crate at that version.
deny_must_fail_on() {
    local id=$1 crate=$2 version=$3 kind=$4 out=$work/fake-$1.out
    if SDTE_ADVISORY_DBS=$work/fake cargo deny --frozen --color never check advisories \
        >"$out" 2>&1; then
        echo "cargo-deny passed although $id affects $crate $version" >&2
        cat "$out" >&2
        return 1
    fi
    if ! grep -qF "error[$kind]" "$out" || ! grep -qF "ID: $id" "$out" ||
        ! grep -qF "$crate v$version" "$out"; then
        echo "cargo-deny failed, but not with error[$kind] naming $id and $crate v$version:" >&2
        cat "$out" >&2
        return 1
    fi
    echo "cargo-deny failed on $id ($kind, $crate $version), as it must" >&2
}

run_fake_advisory() {
    # Which crates: from what cargo builds from Cargo.lock (cargo tree: every target, normal
    # dependencies; a crate the lock holds only for a feature nothing enables is not built, and
    # cargo-deny rightly leaves it out), so the test follows the lock. The first direct
    # dependency, and the first crate deeper down that is not itself a direct dependency, each at
    # a plain release version.
    local picks direct direct_version transitive transitive_version tree=$work/tree.txt
    cargo tree --locked --offline --target all -e normal --prefix depth -f '{p}' >"$tree" ||
        return 1
    picks=$(
        python3 - "$tree" <<'EOF'
import re
import sys

plain = re.compile(r"^v\d+\.\d+\.\d+$")
crates = []
with open(sys.argv[1]) as f:
    for line in f:
        depth, name, version = re.match(r"(\d+)(\S+) (\S+)", line).groups()
        crates.append((int(depth), name, version))
direct = [(name, version) for depth, name, version in crates if depth == 1]
direct_names = {name for name, _ in direct}
chosen = next(c for c in direct if plain.match(c[1]))
transitive = next(
    (name, version)
    for depth, name, version in crates
    if depth >= 2 and name not in direct_names and plain.match(version)
)
print(chosen[0], chosen[1][1:], transitive[0], transitive[1][1:])
EOF
    ) || return 1
    read -r direct direct_version transitive transitive_version <<<"$picks"
    make_db "$work/fake" || return 1
    local db=$work/fake/$DB_DIR_NAME/crates
    for id in RUSTSEC-2026-9901 RUSTSEC-2026-9902; do
        if [ -n "$(find "$db" -name "$id.md")" ]; then
            echo "$id exists in the real database: pick another made-up id" >&2
            return 1
        fi
    done
    fake_advisory RUSTSEC-2026-9901 "$direct" "$direct_version" vulnerability || return 1
    deny_must_fail_on RUSTSEC-2026-9901 "$direct" "$direct_version" vulnerability || return 1
    rm "$db/$direct/RUSTSEC-2026-9901.md" || return 1
    fake_advisory RUSTSEC-2026-9902 "$transitive" "$transitive_version" unsound || return 1
    deny_must_fail_on RUSTSEC-2026-9902 "$transitive" "$transitive_version" unsound
}

run_coverage_table() {
    python3 scripts/supply_chain_coverage.py --check docs/supply-chain.md
}

check deny run_deny
check vet run_vet
check fake-advisory run_fake_advisory
check coverage-table run_coverage_table

if [ "$failed" -ne 0 ]; then
    echo "supply-chain.sh: failed: ${failed_names[*]}" >&2
    echo "supply-chain.sh: after a Cargo.lock change, scripts/supply-chain.sh --update" \
        "regenerates cargo vet's exemptions and the coverage table" >&2
fi
echo "supply-chain: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
