#!/bin/bash
# How the maintainer scripts verify tor's configuration, tested without AppArmor in the kernel:
# tor_confinement() and verify_tor() are taken from debian/postinst and debian/prerm (they must be
# the same in both), then run with stand-in sysfs files and a stand-in runuser that prints the
# command it was given. Where AppArmor is enabled and system_tor is loaded, tor must be verified
# inside that profile (aa-exec -p system_tor), as debian-tor, with the unit's own files; elsewhere
# as debian-tor without it. Prints ok / not ok lines; exit 1 on any failure.
# Usage: verify_decision.sh REPO
# shellcheck disable=SC2317,SC2034  # stand-ins and variables used by the functions under test
set -uo pipefail

REPO=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; fails=$((fails + 1)); }

fn() { sed -n "/^$2() {/,/^}/p" "$REPO/debian/$1"; }
for f in tor_confinement verify_tor; do
    a=$(fn postinst "$f")
    b=$(fn prerm "$f")
    if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "$f is the same in postinst and prerm"; else nok "$f differs between postinst and prerm (or is missing)"; fi
done

# a PATH with and one without aa-exec (stand-ins; only `command -v` looks at them)
mkdir -p "$T/with" "$T/without"
printf '#!/bin/sh\nexit 0\n' >"$T/with/aa-exec"
chmod +x "$T/with/aa-exec"

decide() { # ENABLED-CONTENT|- PROFILES-CONTENT|- PATHDIR -> the decision
    (
        AA_ENABLED=$T/enabled AA_PROFILES=$T/profiles
        rm -f "$AA_ENABLED" "$AA_PROFILES"
        [ "$1" = - ] || printf '%s\n' "$1" >"$AA_ENABLED"
        [ "$2" = - ] || printf '%b' "$2" >"$AA_PROFILES"
        PATH=$3:/usr/bin:/bin
        eval "$(fn postinst tor_confinement)"
        # the real aa-exec of the machine must not count for "without"
        if [ "$3" = "$T/without" ]; then command() { [ "$2" != aa-exec ] && builtin command "$@"; }; fi
        tor_confinement
    )
}
expect() { # WANT DESCRIPTION ARGS...
    local want=$1 desc=$2 got
    shift 2
    got=$(decide "$@")
    if [ "$got" = "$want" ]; then ok "$desc: $got"; else nok "$desc: want $want, got $got"; fi
}
LOADED='unconfined_thing (enforce)\nsystem_tor (enforce)\n/usr/sbin/tor (enforce)\n'
expect apparmor "AppArmor enabled, system_tor loaded" Y "$LOADED" "$T/with"
expect apparmor "AppArmor enabled, system_tor loaded in complain mode" Y 'system_tor (complain)\n' "$T/with"
expect apparmor-without-aa-exec "AppArmor enabled, system_tor loaded, no aa-exec" Y "$LOADED" "$T/without"
expect none "AppArmor enabled, only SecureDrop's /usr/sbin/tor profile" Y '/usr/sbin/tor (enforce)\n' "$T/with"
expect none "AppArmor enabled, a profile merely named like it" Y 'system_tor_other (enforce)\n' "$T/with"
expect none "AppArmor disabled (N)" N "$LOADED" "$T/with"
expect none "no AppArmor in the kernel (no sysfs files)" - - "$T/with"
expect none "enabled file present, profiles unreadable" Y - "$T/with"

# what verify_tor runs for each decision (runuser stand-in prints its arguments)
runs() { # DECISION -> the command line verify_tor ran
    (
        NAME=securedrop-tor-exporter TORRC=/etc/tor/torrc TOR_DEFAULTS=/usr/share/tor/tor-service-defaults-torrc
        say() { echo "say: $*" >&2; }
        tor_confinement() { echo "$DECISION"; }
        runuser() { echo "$*" >"$T/ran"; }
        DECISION=$1
        rm -f "$T/ran"
        eval "$(fn postinst verify_tor)"
        verify_tor 2>"$T/say"
        echo "$(cat "$T/ran" 2>/dev/null)|$(cat "$T/say")"
    )
}
base='tor --verify-config --defaults-torrc /usr/share/tor/tor-service-defaults-torrc -f /etc/tor/torrc --RunAsDaemon 0 --User '
got=$(runs apparmor)
if [ "$got" = "-u debian-tor -- aa-exec -p system_tor -- $base|" ]; then ok "apparmor: as debian-tor inside system_tor, the unit's files"; else nok "apparmor: ran '$got'"; fi
got=$(runs none)
if [ "$got" = "-u debian-tor -- $base|" ]; then ok "none: as debian-tor, the unit's files"; else nok "none: ran '$got'"; fi
got=$(runs apparmor-without-aa-exec)
case "$got" in
    "-u debian-tor -- $base|say: WARNING:"*) ok "no aa-exec: as debian-tor outside the profile, with a warning" ;;
    *) nok "no aa-exec: ran '$got'" ;;
esac

[ "$fails" -eq 0 ]
