#!/bin/bash
# The Debian package under an enforcing AppArmor, in Debian VMs (the container tests run on a host
# kernel without AppArmor). For each guest suite: boots a cached Debian image (tests/vm/image.sh)
# with qemu (TCG: KVM is not assumed), `apparmor=1 security=apparmor`, the disk as -snapshot, a
# `restrict=on` user network with only ssh forwarded from 127.0.0.1, tor offline (`DisableNetwork
# 1`); copies in the .deb of this tree (tests/package/cached-deb.sh) and a higher version of it,
# and runs tests/vm/life.sh there: the package's whole life (install, reinstall, upgrade, tor
# reload and restart, remove or unload, purge) under one of tor's AppArmor abstractions per guest:
# by default Debian 12 (AppArmor 3) with the rule as shipped (`/etc/tor/** r`) and Debian 13
# (AppArmor 4, the nearest to SecureDrop's Ubuntu 24.04) with the rule of tor's packaging before
# 0.4.9.8 (`/etc/tor/* r`), what a server on tor 0.4.8 has. The old rule is the shipped one with
# less allowed, so a life without denials under it on AppArmor 4 is one under the shipped rule
# too; each guest's control step shows its rule is the one in force. SDTE_VM_LIFE=all runs both
# rules on every guest (twice the time). Run as root. Ends with `N passed, M failed`; exit 1 on any
# failure, and on a missing qemu or mmdebstrap ("NOT run").
#
# Environment:
#   SDTE_VM_SUITES   the guests, default "bookworm trixie"
#   SDTE_VM_JOBS     guests booted at once, default 2 (a guest's dpkg runs mostly on one of its
#                    two emulated CPUs, so one host core: two guests fill a 2-core machine)
#   SDTE_VM_LIFE     the abstractions per guest, words SUITE=current|old, default
#                    "bookworm=current trixie=old"; "all": both, one after the other, on every guest
#   SDTE_VM_RESTART_BOUND  seconds tor_up may take to come back after tor's restart (default 60)
#   SDTE_CACHE       cache folder (images under vm/, .debs), default /var/cache/securedrop-tor-exporter-tests
#   SDTE_KEEP=1      keep the run folder (serial consoles, qemu logs); it is kept on failure too
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export SDTE_CACHE=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
SUITES=${SDTE_VM_SUITES:-bookworm trixie}
JOBS=${SDTE_VM_JOBS:-2}
LIFE=${SDTE_VM_LIFE:-bookworm=current trixie=old}
# abstractions SUITE: the abstractions life.sh runs on that guest (both when SDTE_VM_LIFE is "all"
# or names none for it)
abstractions() {
    local w found=
    [ "$LIFE" != all ] || { echo current old; return; }
    for w in $LIFE; do
        [ "${w%%=*}" != "$1" ] || found="${found:+$found }${w#*=}"
    done
    echo "${found:-current old}"
}
PKG=securedrop-tor-exporter
# the upgrade's version mark, as tests/package/run.sh's build U
UPGRADE_MARK=.pkgtest1
T0=$SECONDS
# shellcheck source=scripts/lib/tap.sh
. "$REPO/scripts/lib/tap.sh"
# shellcheck source=tests/container/lib.sh
. "$HERE/../container/lib.sh"

for s in $SUITES; do
    for a in $(abstractions "$s"); do
        case "$a" in current | old) ;; *)
            echo "run.sh: SDTE_VM_LIFE: '$a' for $s is not an abstraction (current or old)" >&2
            exit 2 ;;
        esac
    done
done
[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (mmdebstrap, the package builds)" >&2; exit 1; }
RUN=$(mktemp -d /var/tmp/sdte-vm.XXXXXX)

# stop_qemu PIDFILE: stop the qemu whose PID the file holds, if it runs (idempotent). Only a
# process that is still that qemu: a PID of one that ended may belong to another process by now
# (pid_max is 32768 here, and the suites beside this one start processes by the thousand).
stop_qemu() {
    local pid
    [ -s "$1" ] || return 0
    pid=$(cat "$1")
    if [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = qemu-system-x86 ] &&
        kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        wait_for 20 bash -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$1"
}
# Stop every qemu this run started.
stop_guests() {
    local f
    for f in "$RUN"/*/qemu.pid; do stop_qemu "$f"; done
}
cleanup() {
    local rc=$?
    stop_guests
    summary_at_exit "$rc"
    if [ "${SDTE_KEEP:-0}" = 1 ] || [ "$FAIL" -ne 0 ]; then echo "# kept $RUN"; else rm -rf "$RUN"; fi
    [ "$FAIL" -eq 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "tools"
# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"
if ! need_packages cmd:qemu-system-x86_64:qemu-system-x86 cmd:mmdebstrap:mmdebstrap cmd:ssh:openssh-client \
    cmd:curl:curl ||
    ! command -v qemu-system-x86_64 >/dev/null || ! command -v mmdebstrap >/dev/null; then
    nok "NOT run: qemu-system-x86_64 or mmdebstrap could not be installed"
    exit 1
fi
echo "# $(qemu-system-x86_64 --version | head -n 1), mmdebstrap $(mmdebstrap --version | cut -d' ' -f2)"

section "packages"
if deb=$("$HERE/../package/cached-deb.sh"); then
    ok "the tree's .deb (cached by tree and toolchain: $(basename "$(dirname "$deb")"))"
else
    nok "the tree's .deb"
    exit 1
fi
VERSION=$(dpkg-deb -f "$deb" Version)
UVERSION=${VERSION%+*}$UPGRADE_MARK+${VERSION##*+}
# The upgrade: the same tree with a higher version, built as tests/package/run.sh's build U (in
# build A's folder and cargo target, under its lock) and cached beside A's .deb.
udeb=$(dirname "$deb")/vm-upgrade/${PKG}_${UVERSION}_amd64.deb
if [ ! -s "$udeb" ]; then
    (
        flock -w 1800 9 || exit 1
        out=$SDTE_CACHE/pkg-build
        rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
        CARGO_TARGET_DIR=$SDTE_CACHE/pkg-cargo-target "$HERE/../package/build-deb.sh" "$out" "$UVERSION" >/dev/null &&
            mkdir -p "$(dirname "$udeb")" && cp "$out/$(basename "$udeb")" "$udeb.new" && mv "$udeb.new" "$udeb"
    ) 9>"$SDTE_CACHE/.pkg-build.lock"
fi
check "the upgrade's .deb, $UVERSION" test -s "$udeb"

section "guest images"
images_t0=$SECONDS
for s in $SUITES; do
    mkdir -p "$RUN/$s"
    "$HERE/image.sh" "$s" >"$RUN/$s/image" 2>"$RUN/$s/image.log" &
done
wait
for s in $SUITES; do
    if [ -s "$(cat "$RUN/$s/image")/disk.raw" ]; then ok "$s image: $(cat "$RUN/$s/image")"; else
        nok "$s image"
        sed 's/^/#   /' "$RUN/$s/image.log"
    fi
    grep -h 'mmdebstrap .* s, image' "$RUN/$s/image.log" | sed 's/^/# /'
done
echo "# images ready in $((SECONDS - images_t0)) s"
[ "$FAIL" -eq 0 ] || exit 1

# --- one guest -----------------------------------------------------------------------------------
# guest SUITE: boot it, run life.sh there, stop it; TAP lines on stdout (counted by the caller)
guest() (
    local s=$1 img d port qpid t
    img=$(cat "$RUN/$1/image")
    d=$RUN/$s
    T0=$SECONDS
    trap 'stop_qemu "$d/qemu.pid"' EXIT
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ssh_guest() {
        ssh -q -i "$img/id_ed25519" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no \
            -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 root@127.0.0.1 "$@"
    }
    alive() { kill -0 "$qpid" 2>/dev/null; }
    console() { echo "# last lines of the serial console ($d/serial.log):"; tail -n 40 "$d/serial.log" | sed 's/^/#   /'; }
    section "$s: boot"
    # shellcheck disable=SC2054  # the commas belong to qemu's options
    qemu-system-x86_64 -name "sdte-vm-$s" -machine q35 -accel tcg,thread=multi -cpu max -m 1024 -smp 2 \
        -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 quiet apparmor=1 security=apparmor" \
        -drive "file=$img/disk.raw,if=virtio,format=raw,cache=unsafe" -snapshot \
        -nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
        -device virtio-rng-pci -display none -nodefaults -serial "file:$d/serial.log" \
        >"$d/qemu.log" 2>&1 </dev/null &
    qpid=$!
    echo "$qpid" >"$d/qemu.pid"
    t=$SECONDS
    if ! wait_for 600 bash -c "kill -0 $qpid 2>/dev/null || exit 0; ssh -q -i '$img/id_ed25519' -p $port \
        -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o ConnectTimeout=10 root@127.0.0.1 true" || ! alive; then
        nok "$s: ssh into the guest (qemu $(alive && echo running || echo exited))"
        sed 's/^/#   /' "$d/qemu.log"
        console
        return 1
    fi
    state=$(ssh_guest timeout 300 systemctl is-system-running --wait)
    if [ "$state" = running ]; then ok "$s: booted, systemd running ($((SECONDS - t)) s)"; else
        nok "$s: systemd is '$state' after $((SECONDS - t)) s"
        ssh_guest systemctl --failed --no-legend | sed 's/^/#   /'
    fi
    section "$s: the package's life, tor's AppArmor abstraction: $(abstractions "$s")"
    tar -C "$REPO" -cf - scripts/lib/tap.sh tests/container/lib.sh tests/vm/life.sh -C "$(dirname "$deb")" \
        "$(basename "$deb")" -C "$(dirname "$udeb")" "$(basename "$udeb")" |
        ssh_guest 'mkdir -p /root/vm && tar -C /root/vm -xf - --transform "s|.*/||"'
    t=$SECONDS
    # shellcheck disable=SC2046  # the abstractions are words (ssh joins its arguments anyway)
    ssh_guest SDTE_VM_RESTART_BOUND="${SDTE_VM_RESTART_BOUND:-60}" bash /root/vm/life.sh \
        "/root/vm/$(basename "$deb")" "/root/vm/$(basename "$udeb")" $(abstractions "$s") | tee "$d/life"
    rc=${PIPESTATUS[0]}
    echo "# $s: life.sh $((SECONDS - t)) s, guest $((SECONDS - T0)) s in all; qemu used $(ps -o times= -p "$qpid" | xargs) s of CPU"
    if [ "$rc" -ne 0 ]; then
        grep -q '^not ok - ' "$d/life" || nok "$s: life.sh ended with status $rc"
        console
    fi
    return "$rc"
)

guests_t0=$SECONDS
running=0
for s in $SUITES; do
    if [ "$JOBS" -le 1 ]; then
        guest "$s" 2>&1 | tee "$RUN/$s/tap"
    else
        guest "$s" >"$RUN/$s/tap" 2>&1 &
        running=$((running + 1))
        if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
    fi
done
wait
for s in $SUITES; do
    [ "$JOBS" -le 1 ] || cat "$RUN/$s/tap"
    PASS=$((PASS + $(grep -c '^ok - ' "$RUN/$s/tap")))
    FAIL=$((FAIL + $(grep -c '^not ok - ' "$RUN/$s/tap")))
done
echo "# guests ($SUITES, $JOBS at once): $((SECONDS - guests_t0)) s"
summary
