#!/bin/bash
# Usage: molecule/run.sh            (as root; CI runs it from .ci/run)
#
# The Ansible role's tests, from a fresh machine:
#   1. yamllint and `ansible-lint --offline` (production profile) on ansible/ and molecule/,
#      and the scripts through shellcheck;
#   2. pytest: defaults/main.yml == meta/argument_specs.yml, the controller-side key plugin, and
#      both roles refusing links and foreign owners in tor's folders (their task files run by
#      ansible-playbook on this machine, in a temporary folder);
#   3. `molecule test` of molecule/default: two SecureDrop-like staging servers (app-staging,
#      mon-staging), each a real systemd in systemd-nspawn --private-network (loopback only);
#   4. molecule/compat.sh: the role with ansible-core 2.15.9, the version SecureDrop's admin
#      workstation pins (on, idempotent, check mode, off, off idempotent), on two containers of its
#      own: it runs in the background from the start, beside 1-3 (its output follows theirs).
# Prints `N passed, M failed` last and exits non-zero on any failure. Every container is stopped
# at the end, pass or fail.
#
# Installs what it needs: pinned Python tools in a venv and the community.docker collection from
# the `ansible` wheel on PyPI (Ansible Galaxy is not reachable), both cached under
# $SDTE_CACHE (default /var/cache/securedrop-tor-exporter-tests).
#
# Environment:
#   TOR_EXPORTER_DEB   a built securedrop-tor-exporter .deb to test; default: build this checkout
#                      with tests/package/build-deb.sh (dpkg-buildpackage -us -uc -b)
#   SDTE_CACHE         cache folder
#   SDTE_MOLECULE_ONLY=1  skip the linters and pytest (while working on the scenario)
#   SDTE_SUITE         bookworm or trixie: both staging containers on that Debian release. Unset
#                      (the default, and what CI runs): mon-staging on Debian 13 (trixie) and
#                      app-staging on Debian 12 (bookworm), below
#   SDTE_SUITES        the same per container, words NAME=SUITE (molecule/default/container.sh)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}

# shellcheck source=molecule/tools.sh
. "$HERE/tools.sh"
HOSTS=(app-staging mon-staging)

# Both Debian releases in one scenario run, at no extra cost: the two staging containers run
# different releases (a second, trixie-only run would add the whole scenario's time again, ~7 min).
# mon-staging takes trixie, the release nearest SecureDrop's Ubuntu 24.04 (systemd 257, apt 3 with
# its sqv signature check of the role's signed-by key), and installs the way production servers do,
# from a signed apt repository; app-staging stays on bookworm, where the .deb is built, and installs
# it with dpkg as SecureDrop's staging does. The compat run (ansible-core 2.15.9) uses the same two.
if [ -n "${SDTE_SUITE:-}" ]; then
    SDTE_SUITES="app-staging=$SDTE_SUITE mon-staging=$SDTE_SUITE"
fi
export SDTE_SUITES=${SDTE_SUITES:-app-staging=bookworm mon-staging=trixie}

passed=0
failed=0
failures=()
child=
bg_pid=

log() { printf '== %s\n' "$*" >&2; }

step() {
    local name=$1 start=$SECONDS
    shift
    log "$name"
    # In the background, so that a signal reaches this script's trap at once (bash runs traps only
    # between foreground commands).
    "$@" &
    child=$!
    local rc=0
    wait "$child" || rc=$?
    tally "$name" "$rc" "$start"
}
# tally NAME STATUS START: counts a finished step and says how it ended
tally() {
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        log "$1: passed in $((SECONDS - $3)) s"
    else
        failed=$((failed + 1))
        failures+=("$1")
        log "$1: FAILED after $((SECONDS - $3)) s"
    fi
}

# bg_step NAME COMMAND...: a step in the background (one at a time), its output kept in a file;
# bg_collect waits for it, prints that output and counts it as step() does.
bg_step() {
    bg_name=$1 bg_t0=$SECONDS
    shift
    log "$bg_name: started in the background (its output follows when it ends)"
    "$@" >"$DEBDIR/background.log" 2>&1 </dev/null &
    bg_pid=$!
}
bg_collect() {
    [ -n "$bg_pid" ] || return 0
    local rc=0
    wait "$bg_pid" || rc=$?
    bg_pid=
    log "$bg_name: output"
    cat "$DEBDIR/background.log" >&2
    tally "$bg_name" "$rc" "$bg_t0"
}

[ "$(id -u)" -eq 0 ] || { echo "run.sh: must run as root (it boots containers)" >&2; exit 1; }

# Colour only for a person at a terminal, never into a CI log or a file.
if [ ! -t 1 ]; then
    export NO_COLOR=1 PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
fi

# The scenario's folder (containers, the admin's files; Molecule's destroy deletes it) and one for
# a .deb built here.
WORKDIR=$(mktemp -d /var/tmp/sdte-molecule.XXXXXX)
DEBDIR=$(mktemp -d /var/tmp/sdte-molecule-deb.XXXXXX)
COMPATDIR=$(mktemp -d /var/tmp/sdte-molecule-compat.XXXXXX)
export TOR_EXPORTER_MOLECULE_WORKDIR=$WORKDIR

# A process and all its descendants, by PID (children first found, then signalled).
kill_tree() {
    local pid=$1 c
    for c in $(pgrep -P "$pid" 2>/dev/null); do
        kill_tree "$c"
    done
    kill -TERM "$pid" 2>/dev/null || true
}

# Whatever happens, no container survives this script.
cleanup() {
    local host pid
    for pid in "$child" "$bg_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill_tree "$pid"
            wait "$pid" 2>/dev/null || true
        fi
    done
    for host in "${HOSTS[@]}"; do
        "$HERE/default/container.sh" down "$host" "$WORKDIR" 2>/dev/null || true
        "$HERE/default/container.sh" down "$host" "$COMPATDIR" 2>/dev/null || true
    done
    rm -rf --one-file-system "$WORKDIR" "$DEBDIR" "$COMPATDIR"
}
trap cleanup EXIT
# A signal must end the script through its EXIT trap too.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- tools -----------------------------------------------------------------------------------
# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"
host_packages() {
    need_packages --recommends debootstrap systemd-container shellcheck python3-venv dpkg-dev \
        debhelper dh-apparmor gpg
}

deb() {
    if [ -z "${TOR_EXPORTER_DEB:-}" ]; then
        log "building the .deb of this checkout (tests/package/build-deb.sh)"
        # A cargo target folder kept in the cache: later runs only recompile what changed.
        if ! TOR_EXPORTER_DEB=$(CARGO_TARGET_DIR=$CACHE/cargo-target-molecule \
            "$REPO/tests/package/build-deb.sh" "$DEBDIR" | tail -n 1); then
            echo "run.sh: building the .deb failed" >&2
            return 1
        fi
    fi
    if [ ! -f "${TOR_EXPORTER_DEB:-}" ]; then
        echo "run.sh: no .deb to test ('${TOR_EXPORTER_DEB:-}' does not exist)" >&2
        return 1
    fi
    TOR_EXPORTER_DEB=$(cd "$(dirname "$TOR_EXPORTER_DEB")" && pwd)/$(basename "$TOR_EXPORTER_DEB")
    export TOR_EXPORTER_DEB
    log "testing $TOR_EXPORTER_DEB on $SDTE_SUITES"
}

# --- the checks ------------------------------------------------------------------------------
lint_yaml() { (cd "$REPO" && yamllint -s ansible molecule contrib/securedrop .yamllint .ansible-lint); }
# ansible-lint announces how many files it found in the two folders it is handed, as a WARNING;
# that is expected here, and said so beside it.
lint_ansible() {
    (cd "$REPO" && ansible-lint --offline --profile production ansible molecule 2>&1 |
        sed -E 's/^(WARNING +Directory expansion discovered .*)$/\1\n(expected: run.sh hands ansible-lint the ansible\/ and molecule\/ folders whole)/')
}
# From the repository's top, as scripts/shellcheck.sh runs it: the scripts' `source=` directives
# name their libraries relative to it.
lint_shell() { (cd "$REPO" && shellcheck -x molecule/run.sh molecule/compat.sh molecule/default/container.sh); }
unit_tests() { (cd "$REPO" && python -m pytest -q -p no:cacheprovider molecule/tests); }
# Molecule's own SCENARIO RECAP can show fewer "successful" actions than ran (15 actions, all
# "Executed: Successful", recap "successful=13"): count them from its per-action lines instead,
# and say plainly that all passed.
molecule_test() {
    local out=$DEBDIR/molecule.log planned succeeded
    # One run at a time on this machine: the containers have fixed names (app-staging,
    # mon-staging), and a second run would destroy them under the first.
    mkdir -p /run/lock
    (cd "$REPO" && flock -w 3600 /run/lock/sdte-molecule-default.lock \
        molecule test --scenario-name default) 2>&1 | tee "$out"
    planned=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -m1 -oE 'scenario test matrix: .*' |
        sed 's/^scenario test matrix: //' | tr ',' '\n' | grep -c . || true)
    succeeded=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -cE '^INFO +(\[default > [a-z_]+\]|default .*) Executed: Successful' || true)
    if [ "$planned" -gt 0 ] && [ "$succeeded" -eq "$planned" ]; then
        log "molecule: all $succeeded of $planned actions executed successfully (ignore the recap's 'successful=' count)"
    else
        log "molecule: $succeeded of $planned actions executed successfully"
        return 1
    fi
}
compat_test() {
    local key
    key=$(python3 --version 2>&1 | sha256sum | cut -c1-12)
    "$HERE/compat.sh" "$CACHE/venv-ansible-core-2.15.9-$key" "$COMPATDIR" "$TOR_EXPORTER_DEB"
}

mkdir -p "$CACHE"
host_packages
molecule_venv
molecule_collections

# The compat run has containers of its own (container.sh names them by work folder), so it runs
# beside the rest: most of this suite's time is Ansible's own CPU and the containers' waits, and
# one after the other the steps took 1,556 s of a 1,720-s run (the test command's longest lane).
have_deb=0
if deb; then
    have_deb=1
    bg_step "the role on ansible-core 2.15.9 (SecureDrop's pin)" compat_test
else
    failed=$((failed + 1))
    failures+=("building the .deb")
fi
if [ "${SDTE_MOLECULE_ONLY:-}" != 1 ]; then
    step "yamllint" lint_yaml
    step "ansible-lint (production profile)" lint_ansible
    step "shellcheck" lint_shell
    step "pytest: argument_specs == defaults, key plugin, no_log, refused links" unit_tests
fi
if [ "$have_deb" = 1 ]; then
    step "molecule test (app-staging, mon-staging)" molecule_test
fi
bg_collect

for f in "${failures[@]}"; do
    log "failed: $f"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
