#!/usr/bin/env bash
# Runs every test of the project, installing what the tests need (run as root on Debian 12):
#   1. cargo test: unit, property (devtests/), golden, policy, control faults (a fake peer), a real tor, and the
#      private Tor network (3 authorities, 3 relays, an onion service, a client; loopback only);
#   2. tests/package/run.sh: the .deb (lintian, shellcheck, reproducibility, systemd-analyze) and
#      its install/upgrade/remove/purge scenario in a booted systemd container;
#   3. molecule/run.sh: the Ansible role on two booted staging containers;
#   4. tests/securedrop/run.sh: contrib/securedrop/patches on SecureDrop's data-only snapshot: the
#      data patches applied (git am), yamllint, playbook syntax checks, torrc rendering checked by
#      tor; the admin-code patch checked as text (SecureDrop's admin tests are run by hand);
#   5. monitoring/test.sh: the monitoring side (alerting rules with promtool, the Alertmanager
#      sample with amtool and a real Alertmanager on loopback, the Grafana dashboard, templates);
#   6. scripts/fuzz.sh: the cargo-fuzz targets of the control-protocol parser, 20 s each (skipped,
#      and said so, where no nightly toolchain can be had);
#   7. scripts/supply-chain.sh: cargo deny (RustSec snapshot, offline) and cargo vet --locked
#      --frozen on Cargo.lock, a made-up advisory that must fail, the audit coverage table.
# Pass suite names to run only some: scripts/test.sh cargo package molecule securedrop monitoring fuzz supply
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(cargo package molecule securedrop monitoring fuzz supply)

# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
need_packages --recommends --no-services cmd:tor:tor cmd:ip:iproute2 cmd:unshare:util-linux \
    cmd:openssl:openssl

passed=0
failed=0
failed_names=()
table=()
run_suite() {
    local name=$1
    shift
    echo "=== suite $name: $*" >&2
    local start=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "=== suite $name passed in $((SECONDS - start)) s" >&2
        table+=("$(printf '%-11s %-7s %5d s' "$name" passed $((SECONDS - start)))")
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        echo "=== suite $name FAILED after $((SECONDS - start)) s" >&2
        table+=("$(printf '%-11s %-7s %5d s' "$name" FAILED $((SECONDS - start)))")
    fi
}

# The crate's own tests, then devtests/ (property and screenshot tests, whose crates stay out of
# the exporter's Cargo.lock), in the same target folder.
cargo_suite() {
    cargo test --locked --all-targets --no-fail-fast &&
        cargo test --locked --no-fail-fast --manifest-path devtests/Cargo.toml \
            --target-dir "${CARGO_TARGET_DIR:-target}"
}

for s in "${suites[@]}"; do
    case "$s" in
        cargo) run_suite cargo cargo_suite ;;
        package) run_suite package bash tests/package/run.sh ;;
        molecule)
            # The package suite's .deb of this very tree, from its cache (built now if missing);
            # empty on failure, and then molecule/run.sh builds its own.
            deb=$(bash tests/package/cached-deb.sh 2>/dev/null || true)
            run_suite molecule env TOR_EXPORTER_DEB="$deb" bash molecule/run.sh
            ;;
        securedrop) run_suite securedrop bash tests/securedrop/run.sh ;;
        monitoring) run_suite monitoring bash monitoring/test.sh ;;
        supply) run_suite supply bash scripts/supply-chain.sh ;;
        fuzz) run_suite fuzz env FUZZ_SECONDS="${FUZZ_SECONDS:-20}" FUZZ_SKIP_OK=1 bash scripts/fuzz.sh ;;
        *) echo "unknown suite $s (cargo, package, molecule, securedrop, monitoring, fuzz, supply)" >&2; failed=$((failed + 1)) ;;
    esac
done

# the time each suite took, and the whole run (README's figures come from this table)
{
    echo "=== suite      result   time"
    printf '=== %s\n' "${table[@]}"
    printf '=== %-11s %-7s %5d s\n' total "" "$SECONDS"
} >&2
[ "$failed" -eq 0 ] || echo "failed suites: ${failed_names[*]}" >&2
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
