#!/bin/bash
# Usage (IN a guest of tests/vm/run.sh, as root, from /root/vm):
#   life.sh DEB UPGRADE_DEB ABSTRACTION...
#
# The package's life under an enforcing AppArmor, once for each ABSTRACTION of tor's profile, in
# the order given:
#   current  abstractions/tor as the guest's tor package ships it (`/etc/tor/** r` since 0.4.9.8)
#   old      that rule put back to the `/etc/tor/* r` of tor's packaging before 0.4.9.8, and
#            system_tor reloaded (not restored: the guest's disk is a throw-away -snapshot)
# Each time: a control (tor under system_tor verifies a torrc that includes a folder of /etc/tor/:
# valid under current, denied under old, so the switch is real), then install, reinstall and
# upgrade to UPGRADE_DEB, tor reload, tor restart (the time until the exporter says tor_up 1 again
# is printed), then remove and purge (current) or the profile unloaded by hand and purge from
# installed (old: what an admin's by-hand clean-up meets). After
# every step: no apparmor="DENIED" line for tor or the exporter in the kernel log since the step
# began, tor running as `system_tor (enforce)`; with the package installed: `tor_up 1` on
# loopback, the exporter running as `securedrop-tor-exporter (enforce)`, its profile loaded, the
# onion's hostname there and the same as at install. Prints TAP lines (scripts/lib/tap.sh); the
# caller counts them. Exit 1 on any failure.
#
# SDTE_VM_RESTART_BOUND: seconds tor_up may take to come back after tor's restart (default 60).
set -uo pipefail
cd "$(dirname "$0")" || exit 2
T0=$SECONDS
# shellcheck source=scripts/lib/tap.sh
. ./tap.sh
# shellcheck source=tests/container/lib.sh
. ./lib.sh

[ $# -ge 3 ] || { echo "usage: $0 DEB UPGRADE_DEB ABSTRACTION..." >&2; exit 2; }
DEB=$1
UDEB=$2
shift 2
PKG=securedrop-tor-exporter
HS=/var/lib/tor/$PKG
ABS=/etc/apparmor.d/abstractions/tor
LOADED=/sys/kernel/security/apparmor/profiles
BOUND=${SDTE_VM_RESTART_BOUND:-60}
UVERSION=$(dpkg-deb -f "$UDEB" Version)
LOGS=/root/vm/logs
mkdir -p "$LOGS"

tor_pid() { systemctl show -p MainPID --value tor@default; }
label() { cat "/proc/$1/attr/current" 2>/dev/null || echo "no process $1"; }
tor_up() { curl -fsS --max-time 10 http://127.0.0.1:9747/metrics 2>/dev/null | grep -qx 'tor_up 1'; }
loaded() { grep -q "^$1 (" "$LOADED"; }
# /etc/tor as names, types, modes, owners, sizes and file checksums
etc_tor() { (cd /etc/tor && find . -printf '%p %y %m %u:%g %s\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
hostname_sum() { sha256sum "$HS/hostname" 2>/dev/null | cut -c1-16; }
# run NAME CMD...: CMD with its output in $LOGS/NAME.log, shown only when it fails
run() {
    local name=$1
    shift
    if "$@" >"$LOGS/$name.log" 2>&1; then return 0; fi
    sed 's/^/#   /' "$LOGS/$name.log" | tail -n 30
    return 1
}

# step NAME: a new step; its start is marked in the kernel log, which every check of denials reads
# from that mark on, and its journal cursor kept.
N=0
step() {
    N=$((N + 1))
    section "$1"
    echo "sdte-vm: step $N: $1" >/dev/kmsg
    CURSOR=$(journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p')
}
# denials [PATTERN]: the kernel's apparmor="DENIED" lines since the step's mark (matching PATTERN)
denials() {
    dmesg | awk -v m="sdte-vm: step $N: " 'index($0, m) { on = 1; next } on' |
        grep 'apparmor="DENIED"' | grep -E -- "${1:-.}" | sed 's/^[^a]*audit: //'
}
# no_denials: none for tor or the exporter since the step began (others are shown, not counted)
no_denials() {
    local ours others
    ours=$(denials 'profile="(system_tor|securedrop-tor-exporter)"')
    others=$(denials | grep -Ev 'profile="(system_tor|securedrop-tor-exporter)"')
    [ -z "$others" ] || printf '%s\n' "$others" | sed 's/^/#   other denial: /'
    if [ -z "$ours" ]; then ok "no AppArmor denial for tor or the exporter"; else
        nok "AppArmor denials for tor or the exporter:"
        printf '%s\n' "$ours" | sed 's/ pid=[0-9]*//' | sort | uniq -c | sed 's/^/#   /'
    fi
}
# tor_confined [PID]: tor active (as PID, when given), confined by system_tor in enforce mode
tor_confined() {
    check "tor active" wait_for 30 systemctl is-active -q tor@default
    [ -z "${1:-}" ] || eq "tor kept its MainPID" "$1" "$(tor_pid)"
    eq "tor confined" "system_tor (enforce)" "$(label "$(tor_pid)")"
}
# exporter_ok: the package installed, running confined, tor_up 1, the same onion as at install
exporter_ok() {
    check "tor_up 1 from curl 127.0.0.1:9747/metrics" wait_for 60 tor_up
    eq "exporter confined" "$PKG (enforce)" "$(label "$(systemctl show -p MainPID --value $PKG.service)")"
    check "exporter's profile loaded in the kernel, enforce" grep -qx "$PKG (enforce)" "$LOADED"
    check "onion hostname published ($HS/hostname, a v3 address)" grep -Eqx '[a-z2-7]{56}\.onion' "$HS/hostname"
    [ -z "${HOSTNAME_SUM:-}" ] || eq "onion hostname the same as at install" "$HOSTNAME_SUM" "$(hostname_sum)"
}
# tor_verify TORRC: tor checks TORRC as the package's own check does, inside system_tor
tor_verify() {
    runuser -u debian-tor -- aa-exec -p system_tor -- tor --verify-config \
        --defaults-torrc /usr/share/tor/tor-service-defaults-torrc -f "$1" --RunAsDaemon 0 --User ""
}
refused() { ! tor_verify "$1" >"$LOGS/refused.log" 2>&1; }
# ms: milliseconds since the epoch; secs MS: MS as seconds with one decimal
ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

cycle() {
    local abstraction=$1 pid t s hs before line
    step "[$abstraction] tor's AppArmor abstraction"
    if [ "$abstraction" = old ]; then
        sed -i 's|^\([[:space:]]*\)/etc/tor/\*\* r,|\1/etc/tor/* r,|' "$ABS"
        check "abstraction switched to the old rule" grep -Eq '^[[:space:]]*/etc/tor/\* r,' "$ABS"
        check "no /etc/tor/** rule left" bash -c "! grep -qF '/etc/tor/**' $ABS"
        check "system_tor reloaded" run aa-reload apparmor_parser -r /etc/apparmor.d/system_tor
    fi
    echo "# tor's rules for /etc/tor: $(grep -E '^[[:space:]]*/etc/tor/' "$ABS" | xargs)"
    tor_confined
    # the control: a torrc including a folder of /etc/tor/ (tor lists the folder)
    local ctl=/etc/tor/sdte-vm-control.torrc ctld=/etc/tor/sdte-vm-control.d
    mkdir "$ctld"
    echo 'DisableNetwork 1' >"$ctld/a.conf"
    printf 'DisableNetwork 1\n%%include %s/\n' "$ctld" >"$ctl"
    if [ "$abstraction" = old ]; then
        check "control: a folder include is refused under system_tor" refused "$ctl"
        line=$(denials "profile=\"system_tor\".* name=\"$ctld/\"" | head -n 1)
        check "control: ... with a DENIED line for the folder" test -n "$line"
        echo "#   ${line% pid=*}"
    else
        check "control: a folder include is valid under system_tor" run control tor_verify "$ctl"
    fi
    rm -rf "$ctl" "$ctld"
    [ "$abstraction" = old ] || no_denials

    step "[$abstraction] install"
    before=$(etc_tor)
    pid=$(tor_pid)
    HOSTNAME_SUM=
    check "dpkg -i $(dpkg-deb -f "$DEB" Version)" run install dpkg -i "$DEB"
    tor_confined "$pid"
    exporter_ok
    HOSTNAME_SUM=$(hostname_sum)
    no_denials

    step "[$abstraction] reinstall"
    check "dpkg -i again" run reinstall dpkg -i "$DEB"
    tor_confined "$pid"
    exporter_ok
    no_denials
    step "[$abstraction] upgrade to $UVERSION"
    check "dpkg -i $UVERSION" run upgrade dpkg -i "$UDEB"
    eq "installed version" "$UVERSION" "$(dpkg-query -W -f '${Version}' $PKG)"
    tor_confined "$pid"
    exporter_ok
    no_denials

    step "[$abstraction] tor reload"
    check "systemctl reload tor@default" systemctl reload tor@default
    check "tor read its configuration again (journal: reload signal)" wait_for 30 \
        bash -c "journalctl -q -u tor@default --after-cursor='$CURSOR' -o cat | grep -q 'Received reload signal'"
    exporter_ok
    tor_confined "$pid"
    no_denials

    step "[$abstraction] tor restart"
    s=$(ms)
    check "systemctl restart tor@default" systemctl restart tor@default
    t=$(ms)
    if wait_for "$BOUND" tor_up; then
        ok "tor_up 1 again within $BOUND s of the restart"
    else
        nok "tor_up 1 not back within $BOUND s of the restart"
    fi
    hs=$(ms)
    echo "# tor_up back $(secs $((hs - s))) s after the restart began (systemctl restart took $(secs $((t - s))) s)"
    check "tor has a new MainPID" test "$(tor_pid)" != "$pid"
    pid=$(tor_pid)
    tor_confined "$pid"
    exporter_ok
    no_denials

    if [ "$abstraction" = old ]; then
        step "[$abstraction] profile unloaded by hand, then purge"
        check "apparmor_parser -R of a stub naming the profile" \
            run unload sh -c "printf 'profile %s {}\n' $PKG | apparmor_parser -R"
        check "the profile is gone from the kernel (removal by name)" bash -c "! grep -q '^$PKG (' $LOADED"
    else
        step "[$abstraction] remove"
        check "dpkg -r" run remove dpkg -r $PKG
        check "remove quiet (no warning)" bash -c "! grep -q WARNING $LOGS/remove.log"
        check "exporter stopped" bash -c "! systemctl is-active -q $PKG.service"
        check "postrm unloaded the exporter's profile from the kernel" bash -c "! grep -q '^$PKG (' $LOADED"
        check "nothing answers on 127.0.0.1:9747" bash -c '! curl -fsS --max-time 5 -o /dev/null http://127.0.0.1:9747/metrics 2>/dev/null'
        tor_confined "$pid"
        no_denials
        step "[$abstraction] purge"
    fi
    check "dpkg -P" run purge dpkg -P $PKG
    check "purge quiet (no warning)" bash -c "! grep -q WARNING $LOGS/purge.log"
    check "exporter's profile not loaded" bash -c "! grep -q '^$PKG (' $LOADED"
    check "onion folder gone" test ! -e "$HS"
    eq "/etc/tor as before the install (names, modes, owners, sizes, sha256)" "$before" "$(etc_tor)"
    tor_confined "$pid"
    no_denials
}

section "guest: $(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release), kernel $(uname -r)"
echo "# tor $(dpkg-query -W -f '${Version}' tor), apparmor $(dpkg-query -W -f '${Version}' apparmor)"
eq "AppArmor enabled" Y "$(cat /sys/module/apparmor/parameters/enabled)"
check "system_tor loaded in enforce mode" grep -qx 'system_tor (enforce)' "$LOADED"
for a in "$@"; do cycle "$a"; done
echo "# guest: $PASS passed, $FAIL failed in $((SECONDS - T0)) s"
[ "$FAIL" -eq 0 ]
