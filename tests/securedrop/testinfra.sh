#!/bin/bash
# Usage: tests/securedrop/testinfra.sh [PATCHED_SECUREDROP_TREE]
#
# Runs the SecureDrop series' testinfra module for the exporter
# (molecule/testinfra/common/test_tor_exporter.py) for real, with pytest-testinfra, against this
# project's .deb installed in a booted Debian 12 container (tests/container/), set up the way the
# tor_exporter role sets up a SecureDrop server: the admin's client key pair is made outside the
# server (here, on the host, with the packaged binary) and only its public half is authorized in
# the onion service's folder before the package is installed, so the package makes no key of its
# own. Then a negative control: the admin's private key planted on the server as an
# .auth_private file must make the module's private-key test fail.
#
# PATCHED_SECUREDROP_TREE: SecureDrop's snapshot with the series' data patches applied (run.sh
# passes its own); without it, one is made here from the snapshot and contrib/securedrop/patches.
# The module's test vars are that tree's molecule/testinfra/vars/staging.yml. SecureDrop's
# conftest.py and testutils.py are Python, not in the data-only snapshot: small stand-ins of ours
# (tests/securedrop/testinfra/) load the vars file the same way. SDTE_SECUREDROP_TESTINFRA names a
# folder with SecureDrop's own two files (from a checkout of its molecule/testinfra/) to use
# instead, for a run by hand.
#
# This kernel has no AppArmor: the module's enforce check skips itself there (and says why); this
# script accepts exactly that one skip and counts any other skip as a failure.
#
# pytest-testinfra and pytest come from PyPI, pinned, in a venv cached under SDTE_CACHE (default
# /var/cache/securedrop-tor-exporter-tests) made with Debian's /usr/bin/python3, and copied into
# the container at the same path (the container is Debian 12 too; the Python versions are
# compared first). Needs root. Ends with `N passed, M failed`; exit 1 on failure.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CONTAINER=$REPO/tests/container
SNAPSHOT=${SDTE_SECUREDROP_SNAPSHOT:-$(cd "$REPO/.." && pwd)/shared/upstream/securedrop}
[ -d "$SNAPSHOT/install_files/ansible-base" ] || SNAPSHOT=/work/shared/upstream/securedrop
export SDTE_CACHE=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
PKG=securedrop-tor-exporter
PY_PINS=(pytest-testinfra==10.2.2 pytest==9.2.0 PyYAML==6.0.3)
MODULE=molecule/testinfra/common/test_tor_exporter.py
ENFORCE_TEST=test_tor_exporter_apparmor_enforced
KEY_TEST=test_tor_exporter_no_client_private_key_on_server
T0=$SECONDS

WORK=
STATE=
# shellcheck source=scripts/lib/tap.sh
. "$REPO/scripts/lib/tap.sh"
# shellcheck source=tests/container/lib.sh
. "$CONTAINER/lib.sh"
cleanup() {
    local rc=$?
    if [ -n "$STATE" ]; then
        "$CONTAINER/stop.sh" "$STATE" || echo "testinfra.sh: could not stop the container" >&2
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${SDTE_KEEP:-0}" = 1 ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
    fi
    summary_at_exit "$rc"
    [ "$FAIL" -eq 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || { nok "needs root (nspawn, dpkg in the container)"; exit 1; }

section "testinfra: tools, venv, package"
# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"
need_packages --recommends cmd:systemd-nspawn:systemd-container cmd:git:git py:venv:python3-venv \
    py:ensurepip:python3-venv cmd:flock:util-linux

# The venv is built with Debian's Python, under a lock, at its final path (venvs are not
# relocatable: the container gets it at the same path), and used once marked complete.
key=$( { /usr/bin/python3 --version; printf '%s\n' "${PY_PINS[@]}"; } | sha256sum | cut -c1-12)
VENV=$SDTE_CACHE/venv-testinfra-$key
mkdir -p "$SDTE_CACHE"
(
    flock 9
    [ -e "$VENV/.complete" ] && exit 0
    echo "# creating $VENV (${PY_PINS[*]})"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PINS[@]}"
    : >"$VENV/.complete"
) 9>"$SDTE_CACHE/.venv-testinfra.lock"
check "pytest-testinfra venv ($("$VENV/bin/pip" list --disable-pip-version-check 2>/dev/null |
    awk '$1 == "pytest-testinfra" || $1 == "pytest" { printf "%s %s ", $1, $2 }'))" \
    test -x "$VENV/bin/pytest"

if deb=$(bash "$REPO/tests/package/cached-deb.sh"); then
    ok "the package of this tree ($(basename "$deb"))"
else
    nok "the package of this tree could not be built (tests/package/cached-deb.sh)"
    exit 1
fi

WORK=$(mktemp -d /var/tmp/sdte-testinfra.XXXXXX)
SD=${1:-}
if [ -z "$SD" ]; then
    # the snapshot with the series' data patches (those that touch no admin/ code)
    SD=$WORK/securedrop
    cp -a "$SNAPSHOT" "$SD"
    git -C "$SD" init -q -b main
    git -C "$SD" add -A
    git -C "$SD" -c user.name=snapshot -c user.email=snapshot@example.invalid commit -q -m snapshot
    for p in "$REPO"/contrib/securedrop/patches/*.patch; do
        git apply --numstat "$p" | cut -f3 | grep -q '^admin/' && continue
        git -C "$SD" -c user.name=snapshot -c user.email=snapshot@example.invalid am -q "$p"
    done
fi
check "the patched tree has the module ($MODULE)" test -f "$SD/$MODULE"
check "the patched tree's staging vars list the exporter's profile for enforcement" \
    grep -qx '    - "securedrop-tor-exporter"' "$SD/molecule/testinfra/vars/staging.yml"

section "testinfra: the container, set up as the tor_exporter role leaves a SecureDrop server"
ROOT=$WORK/root
"$CONTAINER/rootfs.sh" "$ROOT"
"$CONTAINER/prepare-tor.sh" "$ROOT"
py_host=$(/usr/bin/python3 --version)
py_box=$(chroot "$ROOT" /usr/bin/python3 --version)
eq "the container's Python is the venv's ($py_host)" "$py_host" "$py_box"
mkdir -p "$ROOT$(dirname "$VENV")"
cp -a "$VENV" "$ROOT$VENV"
T=$ROOT/root/testinfra
mkdir -p "$T/common" "$T/vars"
harness=${SDTE_SECUREDROP_TESTINFRA:-$HERE/testinfra}
cp "$harness/conftest.py" "$harness/testutils.py" "$T/"
echo "# conftest.py and testutils.py from $harness"
cp "$SD/$MODULE" "$T/common/"
cp "$SD/molecule/testinfra/vars/staging.yml" "$T/vars/"
cp "$deb" "$ROOT/root/"

# The admin's key pair, made outside the server like the role does on the Admin Workstation; the
# private half stays in $WORK (never printed) until the negative control plants it.
X=$WORK/extract
dpkg-deb -x "$deb" "$X"
"$X/usr/bin/$PKG" client-key generate --auth-file "$WORK/admin.auth" \
    --private-key-file "$WORK/admin.key" >/dev/null 2>&1
check "admin key pair made off the server (public half: descriptor:x25519:<key>)" \
    grep -Eqx 'descriptor:x25519:[A-Z2-7]{52}' "$WORK/admin.auth"
cp "$WORK/admin.auth" "$ROOT/root/admin.auth"

STATE=$WORK/state
L=$("$CONTAINER/boot.sh" "$ROOT" "sdte-testinfra-$$" "$STATE")
ok "container booted (leader $L)"
cx() { container_exec "$L" "$@"; }
# until_active UNIT: active within 30 s (right after boot or dpkg a unit can still be activating)
until_active() { wait_for 30 cx systemctl is-active --quiet "$1"; }
check "tor@default active" until_active tor@default
HS=/var/lib/tor/$PKG
# The mode is set with chmod(2), as Ansible's file module does in the role: coreutils' install and
# chmod would keep the setgid bit that folders made in Debian's /var/lib/tor (02700) inherit.
check "the onion folder made and the admin's public key authorized before the install (as the role)" \
    cx sh -ec "install -d -o debian-tor -g debian-tor $HS $HS/authorized_clients
        python3 -c 'import os, sys; [os.chmod(d, 0o700) for d in sys.argv[1:]]' $HS $HS/authorized_clients
        install -o debian-tor -g debian-tor -m 0644 /root/admin.auth $HS/authorized_clients/securedrop-admin.auth
        rm /root/admin.auth"
if cx dpkg -i "/root/$(basename "$deb")" >"$WORK/install.log" 2>&1; then
    ok "dpkg -i $(basename "$deb")"
else
    nok "dpkg -i $(basename "$deb")"
    sed 's/^/#   /' "$WORK/install.log"
fi
check "$PKG active" until_active "$PKG"

# run_module OUT [PYTEST ARGS...]: the module in the container, JUnit XML to $T/OUT.xml
run_module() {
    local out=$1
    shift
    cx env PYTHONDONTWRITEBYTECODE=1 SDTE_TESTINFRA_VARS=/root/testinfra/vars/staging.yml \
        "$VENV/bin/python" -m pytest -p no:cacheprovider --hosts=local:// -rs \
        --junitxml="/root/testinfra/$out.xml" --rootdir=/root/testinfra /root/testinfra "$@" >"$WORK/$out.log" 2>&1
}
# results OUT: one line per test of OUT.xml: <name> <passed|failed|skipped> [reason]
results() {
    python3 - "$T/$1.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET

for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    outcome, reason = "passed", ""
    for child in case:
        if child.tag in ("failure", "error"):
            # the message and the assertion's details, on one line
            text = (child.get("message") or "") + " " + (child.text or "")
            outcome, reason = "failed", " ".join(text.split())[:400]
        elif child.tag == "skipped":
            outcome, reason = "skipped", child.get("message") or ""
    print(case.get("name"), outcome, reason)
EOF
}

section "testinfra: $MODULE over the container (pytest-testinfra, local backend inside it)"
run_module run || true
if [ ! -s "$T/run.xml" ]; then
    nok "pytest ran the module"
    sed 's/^/#   /' "$WORK/run.log" | tail -30
    exit 1
fi
skips=0
while read -r name outcome reason; do
    case $outcome in
    passed) ok "testinfra: $name" ;;
    skipped)
        if [[ $name == "$ENFORCE_TEST"* ]]; then
            skips=$((skips + 1))
            echo "# SKIPPED testinfra: $name: $reason"
            echo "# (this container's kernel has no AppArmor: the exporter's profile is not enforced here)"
        else
            nok "testinfra: $name skipped: $reason"
        fi
        ;;
    *) nok "testinfra: $name: $reason" ;;
    esac
done < <(results run | tee "$WORK/run.results")
eq "exactly one skip, the AppArmor enforce check (no AppArmor in this kernel)" 1 "$skips"
if grep -q ' failed' "$WORK/run.results"; then
    sed 's/^/#   /' "$WORK/run.log" | grep -vE '^#   *$' | tail -40
fi

section "testinfra: negative control (the admin's private key planted on the server)"
# In .auth_private format, under the name the role uses on the Admin Workstation.
onion=$(cx cat "$HS/hostname")
printf '%s:%s\n' "${onion%.onion}" "$(cat "$WORK/admin.key")" >"$WORK/planted"
cx install -m 0600 /dev/stdin /root/app-metrics.auth_private <"$WORK/planted"
rm -f "$WORK/planted"
run_module control -k "$KEY_TEST" || true
results control >"$WORK/control.results"
eq "with the key planted, $KEY_TEST fails" "$KEY_TEST failed" \
    "$(awk '{ sub(/\[.*/, "", $1); print $1, $2 }' "$WORK/control.results")"
check "... because it finds the planted file" grep -qF "/root/app-metrics.auth_private" "$WORK/control.results"
cx rm -f /root/app-metrics.auth_private
run_module after -k "$KEY_TEST" || true
eq "with the key removed again, $KEY_TEST passes" "$KEY_TEST passed" \
    "$(results after | awk '{ sub(/\[.*/, "", $1); print $1, $2 }')"

summary
