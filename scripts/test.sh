#!/usr/bin/env bash
# Runs every test of the project, installing what the tests need (run as root on Debian 12):
#   1. cargo test: unit, property (devtests/), golden, policy, control faults (a fake peer), a real tor, and the
#      private Tor network (3 authorities, 3 relays, an onion service, a client; loopback only);
#      the real-tor tests again against tor 0.4.8 (scripts/cargo-tor-0.4.8.sh);
#   2. tests/package/run.sh: the .deb (lintian, shellcheck, reproducibility, systemd-analyze) and
#      its install/upgrade/remove/purge scenario in a booted systemd container;
#   3. tests/vm/run.sh: the package's life in Debian 12 and 13 VMs (qemu) with AppArmor enforcing,
#      under tor's shipped AppArmor rule (12) and the pre-0.4.9.8 one (13): no denial, both
#      confined, profile unloaded;
#   4. molecule/run.sh: the Ansible role on two booted staging containers;
#   5. tests/securedrop/run.sh: contrib/securedrop/patches on SecureDrop's data-only snapshot: the
#      data patches applied (git am), yamllint, playbook syntax checks, torrc rendering checked by
#      tor; the admin-code patch checked as text (SecureDrop's admin tests are run by hand);
#   6. monitoring/test.sh: the monitoring side (alerting rules with promtool, the Alertmanager
#      sample with amtool and a real Alertmanager on loopback, the Grafana dashboard, templates);
#   7. scripts/fuzz.sh: the cargo-fuzz targets of the control-protocol parser, 20 s each (skipped,
#      and said so, where no nightly toolchain can be had);
#   8. scripts/supply-chain.sh: cargo deny (RustSec snapshot, offline) and cargo vet --locked
#      --frozen on Cargo.lock, a made-up advisory that must fail, the audit coverage table.
# Pass suite names to run only some: scripts/test.sh cargo package vm molecule securedrop monitoring fuzz supply
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(cargo package vm molecule securedrop monitoring fuzz supply)

# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
need_packages --recommends --no-services cmd:tor:tor cmd:ip:iproute2 cmd:unshare:util-linux \
    cmd:openssl:openssl

# The suites in lanes: the suites of one lane run one after the other, the lanes side by side.
# Most of the suites' time is waiting (tor's consensus and descriptor periods, alerts' for:,
# containers and VMs booting), so the lanes overlap waits with the work of others; the heavy CPU
# users (cargo's builds, the VMs, the two Molecule runs) are in different lanes, the two longest
# suites (monitoring and molecule, each with a Molecule run) have a lane each, and the .deb the
# package, Molecule and VM suites install is built once (tests/package/cached-deb.sh, under a
# lock). SDTE_JOBS=1 runs every suite one after the other, its output streamed; with lanes, a
# suite's output is printed whole when it ends.
LANES=("cargo vm" "package fuzz supply securedrop" "monitoring" "molecule")

known=" ${LANES[*]} "
for s in "${suites[@]}"; do
    case "$known" in
        *" $s "*) ;;
        *) echo "unknown suite $s (${LANES[*]})" >&2; echo "suites: 0 passed, 1 failed"; exit 1 ;;
    esac
done
wanted() { case " ${suites[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

results=$(mktemp -d "${TMPDIR:-/tmp}/sdte-test.XXXXXX")
# shellcheck disable=SC2064  # expand $results now
trap "rm -rf '$results'" EXIT

# The crate's own tests, then devtests/ (property and screenshot tests, whose crates stay out of
# the exporter's Cargo.lock), in the same target folder. Beside them, each in the background with
# its output printed after: the real-tor tests against tor 0.4.8 (scripts/cargo-tor-0.4.8.sh), and
# the restarted-onion test, which waits on the private network's descriptor periods (4 min each:
# 40 s to 6.5 min, by where in its period the network is) while using almost no CPU. cargo builds
# one at a time (its build lock) and runs the tests after; the private networks share the
# machine's slots (tests/support/privnet/slot.rs).
RESTART_TEST=a_restarted_tor_that_uploads_nothing_is_not_published
cargo_suite() {
    local tor048_log restart_log rc=0 tor048_rc=0 restart_rc=0
    tor048_log=$(mktemp)
    restart_log=$(mktemp)
    bash scripts/cargo-tor-0.4.8.sh >"$tor048_log" 2>&1 &
    local tor048=$!
    cargo test --locked --no-fail-fast --test privnet_onion_restart -- --exact "$RESTART_TEST" \
        >"$restart_log" 2>&1 &
    local restart=$!
    cargo test --locked --all-targets --no-fail-fast -- --skip "$RESTART_TEST" --exact &&
        cargo test --locked --no-fail-fast --manifest-path devtests/Cargo.toml \
            --target-dir "${CARGO_TARGET_DIR:-target}" || rc=$?
    wait "$restart" || restart_rc=$?
    echo "=== tests/privnet_onion_restart.rs, run beside the others (exit $restart_rc):"
    cat "$restart_log"
    wait "$tor048" || tor048_rc=$?
    echo "=== the real-tor tests against tor 0.4.8 (scripts/cargo-tor-0.4.8.sh, exit $tor048_rc):"
    cat "$tor048_log"
    rm -f "$tor048_log" "$restart_log"
    [ "$rc" -eq 0 ] && [ "$restart_rc" -eq 0 ] && [ "$tor048_rc" -eq 0 ]
}
# The package suite's .deb of this very tree, from its cache (built now if missing); empty on
# failure, and then molecule/run.sh builds its own.
molecule_suite() {
    local deb
    deb=$(bash tests/package/cached-deb.sh 2>/dev/null || true)
    TOR_EXPORTER_DEB="$deb" bash molecule/run.sh
}
suite_command() {
    case "$1" in
        cargo) echo cargo_suite ;;
        package) echo bash tests/package/run.sh ;;
        vm) echo bash tests/vm/run.sh ;;
        molecule) echo molecule_suite ;;
        securedrop) echo bash tests/securedrop/run.sh ;;
        monitoring) echo bash monitoring/test.sh ;;
        supply) echo bash scripts/supply-chain.sh ;;
        fuzz) echo env FUZZ_SECONDS="${FUZZ_SECONDS:-20}" FUZZ_SKIP_OK=1 bash scripts/fuzz.sh ;;
    esac
}

# run_suite NAME STREAM: runs the suite, records "passed|FAILED SECONDS" in $results/NAME; with
# STREAM=0 its output goes to $results/NAME.log, printed whole (under a lock) when it ends.
run_suite() {
    local name=$1 stream=$2 start=$SECONDS rc=0 cmd
    read -r -a cmd <<<"$(suite_command "$name")"
    echo "=== suite $name: ${cmd[*]}" >&2
    # In a subshell, whose `times` then gives the CPU time of what the suite ran (user + system,
    # of the processes it waited for: qemu and the containers' own processes included, as they are
    # its children; the table's second figure tells waiting suites from working ones).
    if [ "$stream" = 1 ]; then
        ("${cmd[@]}" && rc=0 || rc=$?; times >"$results/$name.times"; exit "$rc") || rc=$?
    else
        ("${cmd[@]}" && rc=0 || rc=$?; times >"$results/$name.times"; exit "$rc") \
            >"$results/$name.log" 2>&1 </dev/null || rc=$?
    fi
    local took=$((SECONDS - start)) verdict=passed
    [ "$rc" -eq 0 ] || verdict=FAILED
    echo "$verdict $took $(cpu_seconds "$results/$name.times")" >"$results/$name"
    {
        flock 8
        if [ "$stream" = 0 ]; then
            echo "=== suite $name: output"
            cat "$results/$name.log"
        fi
        echo "=== suite $name $verdict in $took s"
    } 8>"$results/.print.lock" >&2
}

# cpu_seconds FILE: the children's user + system seconds from the second line of `times`'s output
# (`0m1.234s 0m0.567s`), rounded.
cpu_seconds() {
    awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%d\n", t + 0.5
    }' "$1" 2>/dev/null || echo 0
}

lane() {
    local stream=$1 s
    shift
    for s in "$@"; do
        run_suite "$s" "$stream"
    done
}

lanes=()
for l in "${LANES[@]}"; do
    mine=()
    for s in $l; do wanted "$s" && mine+=("$s"); done
    [ ${#mine[@]} -eq 0 ] || lanes+=("${mine[*]}")
done
if [ "${SDTE_JOBS:-}" = 1 ] || [ ${#lanes[@]} -le 1 ]; then
    # one after the other, in the order asked
    lane 1 "${suites[@]}"
else
    pids=()
    for l in "${lanes[@]}"; do
        # shellcheck disable=SC2086  # a lane is a list of suite names
        lane 0 $l &
        pids+=($!)
    done
    wait "${pids[@]}"
fi

# the time each suite took, and the whole run (README's figures come from this table)
passed=0
failed=0
failed_names=()
{
    echo "=== suite      result   time      cpu"
    cpu_total=0
    for s in "${suites[@]}"; do
        read -r verdict took cpu <"$results/$s" || { verdict=FAILED took=0 cpu=0; }
        cpu_total=$((cpu_total + ${cpu:-0}))
        printf '=== %-11s %-7s %5d s %6d s\n' "$s" "$verdict" "$took" "${cpu:-0}"
        if [ "$verdict" = passed ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            failed_names+=("$s")
        fi
    done
    printf '=== %-11s %-7s %5d s %6d s   (wall; lanes: %s)\n' total "" "$SECONDS" "$cpu_total" \
        "$(IFS='|'; echo "${lanes[*]}")"
} >&2
[ "$failed" -eq 0 ] || echo "failed suites: ${failed_names[*]}" >&2
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
