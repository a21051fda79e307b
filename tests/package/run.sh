#!/bin/bash
# shellcheck disable=SC2016  # single-quoted ${Field}s are dpkg-query formats, not shell
# The Debian package's tests: build (twice, for reproducibility), lintian, shellcheck, the unit's
# sandbox score and directives, AppArmor statically (tor's paths under old and new system_tor
# rules, the exporter's profile compiled, the verify decision), the binary's glibc, the man page
# against --help, and the install / reinstall / upgrade / old-layout migration / broken / remove /
# purge scenario with real dpkg, systemd and tor in a booted container (tests/container/). Needs root and the Rust toolchain (cargo on PATH or in ~/.cargo/bin);
# installs the Debian tools it needs. Ends with `N passed, M failed`; exit 1 on any failure.
#
# Both Debian releases, for little more than the time of one: the full scenario in a Debian 12
# (bookworm) container, and beside it, at the same time, a focused one in a Debian 13 (trixie)
# container (the release nearest SecureDrop's Ubuntu 24.04: systemd 257, tor 0.4.9.15, apt 3,
# unattended-upgrades 2.12). Focused leaves out what tests the maintainer scripts' own file handling
# against dpkg and the kernel, which both containers share with this machine: the hostile tor
# account, the kill -9 sweep, the AppArmor stand-ins, the first install under a squatted port, the
# migrations from old layouts. It keeps everything that meets the release's own systemd, tor, dpkg
# and apt: install, reinstall, upgrades, tor's trigger and reinstall, the sockets and the generator,
# recovery, a conflicting drop-in, remove, purge, the chroot install, the opt-out and the upgrade
# by unattended-upgrades. docs/packaging.md, "Tests", has the measured cost.
#
# Environment:
#   SDTE_CACHE   cache folder (rootfs tarball, .debs by tree, cargo targets of builds A and B,
#                tor's .deb), default /var/cache/securedrop-tor-exporter-tests
#   SDTE_REPRO   1 (default): build B in its own folder with its own cached cargo target, unless
#                an earlier run proved this very packaging reproducible (see "build B" below);
#                always: B even so; scratch: B with an empty cargo target (slow, the strictest);
#                0: no B
#   SDTE_KEEP=1  keep the work folder (container root, builds, logs) for debugging
#   SDTE_SUITE   bookworm or trixie: the full scenario on that release alone (no focused one);
#                unset (the default): full on bookworm and focused on trixie, side by side
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CONTAINER=$REPO/tests/container
export SDTE_CACHE=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
# The Debian releases of the containers (tests/container/rootfs.sh). The .deb is always the one
# built on this (bookworm) machine, installed in both, as SecureDrop builds once per codename. The
# suite is in the containers' names, so scenarios and runs side by side never share one.
case ${SDTE_SUITE:-} in
    '') SUITE=bookworm OTHER_SUITE=trixie ;;
    bookworm | trixie) SUITE=$SDTE_SUITE OTHER_SUITE= ;;
    *) echo "run.sh: SDTE_SUITE must be bookworm or trixie, not '$SDTE_SUITE'" >&2; exit 1 ;;
esac
OTHER_PID=
PKG=securedrop-tor-exporter
# The upgrade test's version: the tree's, with .pkgtest1 between the upstream version and the
# distro suffix (0.1.0+bookworm -> 0.1.0.pkgtest1+bookworm), as SecureDrop's nightly builds put
# .devDATE there; it stays a <version>+<distro> that SecureDrop's unattended-upgrades would take.
UPGRADE_MARK=.pkgtest1
T0=$SECONDS
# shellcheck source=tests/container/lib.sh
. "$HERE/../container/lib.sh"
# shellcheck source=tests/package/socket.sh
. "$HERE/socket.sh"
# shellcheck source=tests/package/onion_socket.sh
. "$HERE/onion_socket.sh"

[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (dpkg-buildpackage, debootstrap, nspawn)" >&2; exit 1; }

STATES=()
WORK=
# shellcheck source=scripts/lib/tap.sh
. "$REPO/scripts/lib/tap.sh"

# Stop every container of this scenario (idempotent).
stop_states() {
    local s
    for s in "${STATES[@]}"; do
        "$CONTAINER/stop.sh" "$s" || echo "run.sh: could not stop the container of $s" >&2
    done
    STATES=()
}

# The focused scenario beside this one: ended (TERM; it stops its containers in its EXIT trap).
stop_other() {
    [ -n "$OTHER_PID" ] || return 0
    kill -TERM "$OTHER_PID" 2>/dev/null || true
    wait "$OTHER_PID" 2>/dev/null || true
    OTHER_PID=
}

# Stop every container and remove the work folder (idempotent).
release() {
    stop_other
    stop_states
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${SDTE_KEEP:-0}" = 1 ]; then
            echo "# kept $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    WORK=
}

cleanup() {
    local rc=$?
    release
    if [ -z "$SUMMARY_DONE" ]; then
        summary_at_exit "$rc"
        [ "$FAIL" -eq 0 ] || exit 1
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------------------------
section "installing what the tests need"
# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"
need_packages debhelper dh-apparmor apparmor binutils strace devscripts dpkg-dev lintian shellcheck \
    debootstrap systemd-container man-db curl python3 fakeroot
export PATH=$PATH:${CARGO_HOME:-$HOME/.cargo}/bin
command -v cargo >/dev/null || { echo "run.sh: cargo not found (install the Rust toolchain, see README)" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/sdte-pkgtest.XXXXXX)
mkdir -p "$SDTE_CACHE"

# --- static checks -----------------------------------------------------------------------------
section "static checks"
check "shellcheck: maintainer scripts" shellcheck -s bash "$REPO/debian/postinst" "$REPO/debian/prerm" "$REPO/debian/postrm"
# -x from the top: the sourced scripts/lib/apt.sh and tests/package/hostile.sh are followed
check "shellcheck: test scripts" bash -c 'cd "$1" && shellcheck -x tests/container/*.sh tests/package/*.sh' _ "$REPO"
check "maintainer scripts never set -x" bash -c "! grep -En '^[^#]*set[[:space:]]+-[a-zA-Z]*x' '$REPO/debian/postinst' '$REPO/debian/prerm' '$REPO/debian/postrm'"

# AppArmor cannot run on this kernel: the paths tor must use are held against both rule sets of its
# profile with AppArmor's glob rules and the exporter's profile is compiled. How the maintainer
# scripts verify tor's configuration (inside system_tor where it is loaded) is the binary's
# `torrc verify`, whose decision and command line src/setup/confinement.rs tests with stand-in
# sysfs contents; tests/maintainer_script_facts.rs checks that postinst and prerm use it.
# detail CMD...: CMD's output only when it fails (its own ok lines are not this suite's checks)
detail() {
    local out
    out=$("$@" 2>&1) && return 0
    printf '%s\n' "$out" | grep -v '^ok - ' | sed 's/^/#   /'
    return 1
}
check "AppArmor: every path tor reads or writes for us is allowed by old and new system_tor rules" \
    detail python3 "$HERE/apparmor_paths.py" "$REPO"
check "AppArmor: apparmor_parser compiles the exporter's profile" \
    detail apparmor_parser -QT -K -o /dev/null "$REPO/debian/apparmor/$PKG"

UNIT=$REPO/debian/$PKG.service
quiet() { "$@" >/dev/null 2>&1; }
check "systemd-analyze security --offline: exposure <= 1.5" \
    quiet systemd-analyze security --offline=yes --threshold=15 "$UNIT" --no-pager
score=$(systemd-analyze security --offline=yes "$UNIT" --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
echo "# exposure score: ${score:-?}"
unit_has() { grep -qx "$1" "$UNIT"; }
check "unit: Type=notify" unit_has 'Type=notify'
check "unit: WatchdogSec=30" unit_has 'WatchdogSec=30'
check "unit: DynamicUser=yes" unit_has 'DynamicUser=yes'
check "unit: SupplementaryGroups=debian-tor" unit_has 'SupplementaryGroups=debian-tor'
check "unit: After=tor@default.service" grep -Eq '^After=.*tor@default\.service' "$UNIT"
check "unit: no Requires=/BindsTo=/Requisite= but its own socket" \
    bash -c "! grep -E '^(Requires|BindsTo|Requisite)=' '$UNIT' | grep -vqx 'Requires=$PKG.socket'"
check "unit: no PrivateUsers=yes" bash -c "! grep -Eq '^PrivateUsers=(yes|true|1|self|identity)' '$UNIT'"
check "unit: ExecStart runs serve" unit_has "ExecStart=/usr/bin/$PKG serve"
check "unit: confined by its AppArmor profile where there is one" unit_has "AppArmorProfile=-$PKG"
check "unit: every directive is one systemd 252 (bookworm) documents, for noble's 255 too" \
    detail python3 "$HERE/unit_directives.py" "$UNIT"
socket_static_checks
onion_socket_static_checks
check "man page: groff has no warnings" bash -c "out=\$(LC_ALL=C.UTF-8 man --warnings -E UTF-8 -l -Tutf8 -Z '$REPO/debian/$PKG.1' 2>&1 >/dev/null); [ -z \"\$out\" ] || { echo \"\$out\"; false; }"

# --- builds ------------------------------------------------------------------------------------
# One snapshot of the tree (others may be editing it), used by every build below.
SNAP=$WORK/snapshot
"$HERE/snapshot-tree.sh" "$REPO" "$SNAP"
export SDTE_SOURCE_DIR=$SNAP
# A: in a fixed folder with a cached cargo target, and cached by tree (cached-deb.sh, shared with
# the Molecule scenario). B: in another folder with an empty target. Same tree, so the .debs must be
# byte for byte the same. U: A's tree with a higher version, built in A's folder (cargo is fresh).
section "build A"
DEBS=$WORK/debs
mkdir -p "$DEBS"
VERSION=$(dpkg-parsechangelog -l "$SNAP/debian/changelog" -S Version)
if deb_a=$("$HERE/cached-deb.sh"); then
    ok "dpkg-buildpackage -us -uc -b (A, cached by tree and toolchain: $(basename "$(dirname "$deb_a")"))"
else
    nok "dpkg-buildpackage -us -uc -b (A)"
    exit 1
fi
DEB=$DEBS/${PKG}_${VERSION}_amd64.deb
cp "$deb_a" "$(dirname "$deb_a")/${PKG}_${VERSION}_amd64.changes" \
    "$(dirname "$deb_a")/${PKG}_${VERSION}_amd64.buildinfo" "$DEBS/"
sha_a=$(sha256sum "$DEB" | cut -d' ' -f1)
echo "# A: $(basename "$DEB") sha256 $sha_a"

# build_locked LOCK CARGO_TARGET OUT DEST [VERSION]: build-deb.sh OUT [VERSION] under LOCK, and
# the .deb copied to DEST while still holding it: other runs of this suite (and the Molecule
# scenario) build in the same OUT.
build_locked() {
    local lock=$1 target=$2 out=$3 dest=$4 version=${5:-}
    (
        flock -w 1800 9 || exit 1
        rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
        CARGO_TARGET_DIR=$target "$HERE/build-deb.sh" "$out" ${version:+"$version"} >/dev/null &&
            cp "$out/${PKG}_${version:-$VERSION}_amd64.deb" "$dest"
    ) 9>"$lock"
}
# What can make two builds of one tree differ lives in the packaging, not in the exporter's code:
# the toolchain, the dependencies, the build flags and paths (debian/rules' remaps), debhelper's
# steps and this builder. B runs when any of these changed since a run last saw A and B agree
# (keyed like the other caches, a marker under SDTE_CACHE/repro-verified/), so a change of src/
# alone does not pay for a second release build. A change of src/ that brings in something
# non-deterministic (a build script, a timestamp macro) changes build.rs or Cargo.toml/.lock too.
repro_key=$({
    (cd "$SNAP" && find debian Cargo.toml Cargo.lock rust-toolchain.toml .cargo build.rs \
        -type f -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 sha256sum)
    sha256sum <"$HERE/build-deb.sh"
    rustc -V
    cargo -V
    dpkg-query -W -f='${Package} ${Version}\n' debhelper dh-apparmor dpkg-dev
} | sha256sum | cut -c1-16)
REPRO_MARK=$SDTE_CACHE/repro-verified/$repro_key
if [ "${SDTE_REPRO:-1}" = 1 ] && [ -e "$REPRO_MARK" ]; then
    section "build B: not needed"
    ok "reproducible: this packaging (key $repro_key) gave the same .deb twice on $(cat "$REPRO_MARK") (SDTE_REPRO=always builds B anyway)"
elif [ "${SDTE_REPRO:-1}" != 0 ]; then
    # B's folder differs from A's; its cargo target is cached too (its own, never shared with A)
    # unless SDTE_REPRO=scratch asks for an empty one.
    if [ "${SDTE_REPRO:-1}" = scratch ]; then
        OUT_B=$WORK/b TARGET_B=$WORK/b/cargo-target
    else
        OUT_B=$SDTE_CACHE/pkg-build-b TARGET_B=$SDTE_CACHE/pkg-cargo-target-b
    fi
    section "build B (other folder, other cargo target)"
    if build_locked "$SDTE_CACHE/.pkg-build-b.lock" "$TARGET_B" "$OUT_B" "$WORK/b.deb"; then
        ok "dpkg-buildpackage -us -uc -b (B)"
        sha_b=$(sha256sum "$WORK/b.deb" | cut -d' ' -f1)
        echo "# B: sha256 $sha_b"
        eq "reproducible: two builds give the same .deb sha256" "$sha_a" "$sha_b"
        if [ "$sha_a" = "$sha_b" ]; then
            mkdir -p "${REPRO_MARK%/*}"
            date -u +%Y-%m-%d >"$REPRO_MARK"
        fi
    else
        nok "dpkg-buildpackage -us -uc -b (B)"
    fi
fi

section "build U (higher version, for the upgrade)"
UVERSION=${VERSION%+*}$UPGRADE_MARK+${VERSION##*+}
BUILD_A=$SDTE_CACHE/pkg-build
UDEB=$DEBS/${PKG}_${UVERSION}_amd64.deb
if build_locked "$SDTE_CACHE/.pkg-build.lock" "$SDTE_CACHE/pkg-cargo-target" "$BUILD_A" "$UDEB" "$UVERSION"; then
    ok "build the upgrade package $UVERSION"
else
    nok "build the upgrade package $UVERSION"
    exit 1
fi
check "upgrade version sorts higher" dpkg --compare-versions "$UVERSION" gt "$VERSION"

# --- the version scheme (docs/packaging.md, "Version and maintainer") ---------------------------
section "version scheme: <upstream>+<distro codename>, as SecureDrop's packages"
# shellcheck source=tests/package/version_scheme.sh
. "$HERE/version_scheme.sh"
version_scheme_checks "$SNAP" "$VERSION"

# --- lintian -----------------------------------------------------------------------------------
section "lintian"
lint() {
    local out
    local rc=0
    out=$(lintian --fail-on error,warning "$@" 2>&1) || rc=$?
    out=$(grep -v 'running with root privileges' <<<"$out" || true)
    if [ "$rc" -ne 0 ] || printf '%s\n' "$out" | grep -Eq '^[EW]: '; then
        printf '%s\n' "$out" | sed 's/^/#   /'
        return 1
    fi
    [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'
}
check "lintian: .deb has no errors or warnings" lint "$DEB"
check "lintian: .changes has no errors or warnings" lint "$DEBS/${PKG}_${VERSION}_amd64.changes"
# the source package too (dpkg-source -b of the snapshot; debian/source/options leaves out builds)
mkdir -p "$WORK/source"
cp -a "$SNAP" "$WORK/source/$PKG-$VERSION"
if (cd "$WORK/source" && dpkg-source -b "$PKG-$VERSION" >/dev/null 2>&1); then
    ok "dpkg-source -b (3.0 native)"
    check "lintian: .dsc has no errors or warnings" lint "$WORK/source/${PKG}_${VERSION}.dsc"
else
    nok "dpkg-source -b (3.0 native)"
fi

# --- the binary and the profile in the .deb -----------------------------------------------------
section "the binary's glibc and the AppArmor profile in the .deb"
X=$WORK/extract
dpkg-deb -x "$DEB" "$X"
BIN=$X/usr/bin/$PKG
glibc_max=$(objdump -T "$BIN" | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sed 's/GLIBC_//' | sort -uV | tail -1)
echo "# newest glibc symbol version the binary needs: ${glibc_max:-?}"
check "binary needs glibc <= 2.36 (bookworm) and so <= 2.39 (noble)" \
    bash -c "[ -n '$glibc_max' ] && [ \"\$(printf '%s\n' '$glibc_max' 2.36 | sort -V | tail -1)\" = 2.36 ]"
# libm comes with Rust 1.81's std (newer ones no longer name it); it is part of libc6 like libc.
check "binary links only glibc's libc and libm, and libgcc_s" \
    bash -c "! objdump -p '$BIN' | awk '/NEEDED/ { print \$2 }' | grep -vxE 'libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2'"
check ".deb ships the profile as /etc/apparmor.d/$PKG" test -f "$X/etc/apparmor.d/$PKG"
check "the shipped profile compiles" detail apparmor_parser -QT -K -o /dev/null "$X/etc/apparmor.d/$PKG"
check "the profile allows every path the exporter opens (strace against a throw-away tor)" \
    detail bash "$HERE/profile_covers.sh" "$BIN" "$X/etc/apparmor.d/$PKG" "$WORK/profile-covers"
dpkg-deb -e "$DEB" "$WORK/control"
# As SecureDrop's packages: no AppArmor profile is a conffile, so an upgrade under --force-confold
# (SecureDrop's unattended-upgrades) still brings the profile's fixes (the upgrade through
# unattended-upgrades below edits it first). config.toml, all comments, is the one conffile.
check "conffiles lists no AppArmor profile" bash -c "! grep -q '^/etc/apparmor.d/' '$WORK/control/conffiles'"
eq "conffiles: only /etc/$PKG/config.toml" "/etc/$PKG/config.toml" "$(cat "$WORK/control/conffiles" 2>&1)"
check "postinst loads the profile where AppArmor is enabled (dh_apparmor)" \
    grep -q "apparmor_parser -r -T -W \"\$APP_PROFILE\"" "$WORK/control/postinst"
socket_deb_checks
onion_socket_deb_checks

# --- man page against --help --------------------------------------------------------------------
section "man page covers every flag"
man_src=$(zcat "$X/usr/share/man/man1/$PKG.1.gz" | sed 's/\\-/-/g')
flags=$(for sub in "" serve check-config client-key "client-key generate" "client-key show" "client-key public" recover systemd-generator; do
    # shellcheck disable=SC2086  # $sub is words
    "$BIN" $sub --help
done | grep -oE '(^|[[:space:],])--[a-z][a-z0-9.-]*' | sed 's/^[[:space:],]*//' | sort -u)
missing=
for f in $flags; do
    grep -qF -- "$f" <<<"$man_src" || missing="$missing $f"
done
n=$(wc -w <<<"$flags")
if [ "$n" -ge 15 ] && [ -z "$missing" ]; then
    ok "man page names all $n flags of --help"
else
    nok "man page misses:${missing:- (only $n flags found in --help)}"
fi
for sub in serve check-config "client-key generate" "client-key show" "client-key public" recover systemd-generator; do
    check "man page documents '$sub'" grep -qF "$sub" <<<"$man_src"
done

# --- the container scenario --------------------------------------------------------------------
# container_scenario full|focused: everything from here to its end, in containers of $SUITE (the
# body is not indented: it was the script's top level, and its here-documents stay as they were).
# focused leaves out the sections named in the header.
container_scenario() {
SCOPE=$1
section "container ($SUITE, $SCOPE scenario): build/extract rootfs and boot"
ROOT=$WORK/root
STATE=$WORK/state
SDTE_SUITE=$SUITE "$CONTAINER/rootfs.sh" "$ROOT"
"$CONTAINER/prepare-tor.sh" "$ROOT"
mkdir -p "$ROOT/root/pkgtest"
# and the package's binary, to verify tor's configuration the way the maintainer scripts do, even
# once the package is purged
cp "$DEB" "$UDEB" "$HERE/torctl.py" "$HERE/race_symlinks.py" "$BIN" "$ROOT/root/pkgtest/"
STATES+=("$STATE")
L=$("$CONTAINER/boot.sh" "$ROOT" "pkgtest-$SUITE-$$" "$STATE")
ok "container booted (leader $L)"

# Run a command in the container with a clean environment.
cx() { container_exec "$L" "$@"; }
# cx_admin CMD...: an admin's package step (dpkg -i, dpkg-reconfigure), after the exporter's units'
# start-limit counts are reset (`systemctl reset-failed`). The scenario runs such steps seconds
# apart, each restarting the exporter and its socket, which on a fast machine is more starts than
# systemd allows by default (5 in 10 s): Debian 13's systemd then left the exporter failed after
# the upgrade. An admin's steps are minutes apart; the count is what time would have reset.
cx_admin() {
    cx systemctl reset-failed "$PKG.service" "$PKG.socket" >/dev/null 2>&1 || true
    cx "$@"
}
TORRC=/etc/tor/torrc
DROPIN=/etc/tor/$PKG.torrc
# the package's include line (its binary owns it)
INCLUDE=$("$BIN" torrc include-line)
OLD_DROPIN=/etc/tor/torrc.d/$PKG.conf
HS=/var/lib/tor/$PKG
KEY=/var/lib/$PKG/client.key
ONIONCONF=/etc/$PKG/config.d/50-metrics-onion.toml
LABELKEY=/etc/$PKG/label.key
# unit_state UNIT WANT: the unit's state as soon as it is WANT, else its last state after 30 s.
# Every state check waits this way: right after dpkg returns a unit can still be `activating` or
# `reloading` (tor's own postinst restarts it), and a single look then is a flake, not a finding.
unit_state() {
    local unit=$1 want=$2 deadline=$((SECONDS + 30)) state
    while :; do
        state=$(cx systemctl is-active "$unit" 2>/dev/null || true)
        [ "$state" = "$want" ] && break
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.2
    done
    echo "$state"
}
tor_pid() { cx systemctl show -p MainPID --value tor@default; }
tor_restarts() { cx systemctl show -p NRestarts --value tor@default; }
exists() { cx test -e "$1"; }
absent() { ! cx test -e "$1"; }
contains() { grep -qF -- "$1" <<<"$2"; }
lacks() { ! grep -qF -- "$1" <<<"$2"; }
verify_as_tor() { cx /root/pkgtest/$PKG torrc verify $TORRC >/dev/null; }
# answers_no CMD...: CMD answered a yes/no question with no (exit 1; 2 is an error)
answers_no() {
    local rc=0
    "$@" || rc=$?
    [ "$rc" -eq 1 ]
}
# tor's live onion-service configuration (what it runs, not what is on disk)
tor_hs_conf() { cx python3 /root/pkgtest/torctl.py 'GETCONF HiddenServiceOptions'; }
metrics() { nsenter -t "$L" -n curl -fsS --max-time 5 http://127.0.0.1:9747/metrics; }
wait_tor_up() {
    local deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
        metrics 2>/dev/null | grep -qx 'tor_up 1' && return 0
        sleep 0.2
    done
    return 1
}
# Everything that must survive reinstall and upgrade, as checksums (never printed as content).
snapshot() {
    cx sh -c "cd / && sha256sum $TORRC $DROPIN $HS/hostname $HS/hs_ed25519_secret_key \
        $HS/hs_ed25519_public_key $HS/authorized_clients/*.auth $KEY $ONIONCONF $LABELKEY 2>&1;
        stat -c '%n %a %U:%G' $DROPIN $HS $HS/authorized_clients $HS/authorized_clients/*.auth $KEY $ONIONCONF $LABELKEY 2>&1"
}

eq "tor@default active before install" active "$(unit_state tor@default active)"
check "tor control socket present before install" exists /run/tor/control
TOR_PID=$(tor_pid)
TORRC_ORIG=$(cx sha256sum $TORRC)
cx cp -p $TORRC /root/torrc.orig
check "no onion service configured in tor before install" lacks HiddenServiceDir "$(tor_hs_conf)"

section "install"
if cx_admin dpkg -i "/root/pkgtest/$(basename "$DEB")" >"$WORK/install.log" 2>&1; then ok "dpkg -i $VERSION"; else nok "dpkg -i $VERSION"; sed 's/^/#   /' "$WORK/install.log"; fi
eq "exporter unit active" active "$(unit_state $PKG active)"
eq "tor@default still active" active "$(unit_state tor@default active)"
eq "tor not restarted by the install (same MainPID)" "$TOR_PID" "$(tor_pid)"
eq "tor NRestarts still 0" 0 "$(tor_restarts)"
check "/metrics shows tor_up 1" wait_tor_up
eq "label key: 32 bytes, 600 root:root" "32 600 root:root" "$(cx stat -c '%s %a %U:%G' $LABELKEY 2>&1)"
check "the exporter reads the label key as its systemd credential (its journal says from where)" \
    contains "label key for unnamed onion services from /run/credentials/$PKG.service/label-key" \
    "$(cx journalctl -u $PKG --no-pager -o cat 2>&1)"
eq "debian-tor cannot read the label key (root can)" "denied read" \
    "$(cx runuser -u debian-tor -- sh -c "head -c1 $LABELKEY >/dev/null 2>&1 && echo read || echo denied") $(cx sh -c "head -c1 $LABELKEY >/dev/null 2>&1 && echo read || echo denied")"
eq "unit: MemoryMax and TasksMax set" "67108864 16" \
    "$(cx systemctl show -p MemoryMax --value $PKG) $(cx systemctl show -p TasksMax --value $PKG)"
onion=$(cx cat $HS/hostname 2>/dev/null || true)
check "onion hostname exists and is a v3 address" grep -Eqx '[a-z2-7]{56}\.onion' <<<"$onion"
check "tor --verify-config as debian-tor is clean" verify_as_tor
check "tor runs the onion service (GETCONF)" contains "HiddenServiceDir=$HS" "$(tor_hs_conf)"
eq "include line added to torrc once" 1 "$(cx grep -cxF "$INCLUDE" $TORRC || true)"
check "nothing below a subfolder of /etc/tor/ (AppArmor before tor 0.4.9.8)" absent /etc/tor/torrc.d
eq "drop-in content" "HiddenServiceDir $HS/|HiddenServicePort 80 $ONION_TARGET" \
    "$(cx grep -v '^#' $DROPIN | paste -sd'|')"
eq "drop-in mode" "644 root:root" "$(cx stat -c '%a %U:%G' $DROPIN)"
auth=$(cx cat $HS/authorized_clients/standalone.auth 2>/dev/null || true)
check "a client is authorized (standalone.auth)" grep -Eqx 'descriptor:x25519:[A-Z2-7]{52}' <<<"$auth"
eq "standalone.auth mode" "644 debian-tor:debian-tor" "$(cx stat -c '%a %U:%G' $HS/authorized_clients/standalone.auth)"
eq "private client key root-only" "600 root:root|700 root:root" \
    "$(cx stat -c '%a %U:%G' $KEY /var/lib/$PKG | paste -sd'|')"
eq "client-key public matches the authorized key" "$auth" \
    "$(cx $PKG client-key public --private-key-file $KEY 2>/dev/null || true)"
priv=$(cx cat $KEY 2>/dev/null | sed 's/^descriptor:x25519://' || true)
show=$(cx $PKG client-key show --private-key-file $KEY --hostname-file $HS/hostname 2>/dev/null || true)
check "client-key show prints the .auth_private line" \
    test "$show" = "${onion%.onion}:descriptor:x25519:$priv" -a -n "$priv"
check "the private key is not in dpkg's output" lacks "${priv:-no key read}" "$(cat "$WORK/install.log")"
check "dpkg's output tells how to print the key" grep -qF "client-key show" "$WORK/install.log"
eq "config.d onion file" "metrics = \"${onion%.onion}\"" "$(cx grep '^metrics' $ONIONCONF || true)"
eq "config.d onion file mode" "640 root:debian-tor" "$(cx stat -c '%a %U:%G' $ONIONCONF)"
ex_pid=$(cx systemctl show -p MainPID --value $PKG)
ex_status=$(cx cat "/proc/$ex_pid/status" 2>/dev/null || true)
ex_uid=$(awk '/^Uid:/ { print $2 }' <<<"$ex_status")
tor_gid=$(cx getent group debian-tor | cut -d: -f3)
check "exporter runs as a transient non-root user (uid ${ex_uid:-?})" test -n "$ex_uid" -a "${ex_uid:-0}" -ge 61184
check "exporter has the debian-tor group" grep -Eq "^Groups:.*\b$tor_gid\b" <<<"$ex_status"
eq "exporter watchdog 30s" 30s "$(cx systemctl show -p WatchdogUSec --value $PKG)"
check "check-config accepts the installed configuration" cx $PKG check-config
check "check-config does not print the onion address" lacks "${onion%.onion}" "$(cx $PKG check-config 2>&1)"
check "the exporter's journal has no onion address" lacks "${onion%.onion}" "$(cx journalctl -q -u $PKG --no-pager 2>&1)"
check "systemd-analyze security (live) <= 1.5" quiet cx systemd-analyze security --threshold=15 $PKG.service --no-pager
dpkg_files=$(cx dpkg -L $PKG)
socket_squat_checks
onion_socket_checks

section "reinstall the same version"
before=$(snapshot)
pid_before=$(tor_pid)
if cx_admin dpkg -i "/root/pkgtest/$(basename "$DEB")" >"$WORK/reinstall.log" 2>&1; then ok "dpkg -i $VERSION again"; else nok "dpkg -i $VERSION again"; sed 's/^/#   /' "$WORK/reinstall.log"; fi
eq "reinstall changes nothing (keys, hostname, drop-in, torrc, clients, modes)" "$before" "$(snapshot)"
eq "tor MainPID unchanged by reinstall" "$pid_before" "$(tor_pid)"
check "reinstall is quiet (no messages from the package)" lacks "$PKG:" "$(cat "$WORK/reinstall.log")"
eq "exporter active after reinstall" active "$(unit_state $PKG active)"

section "upgrade to $UVERSION"
# a second client, as an admin would add: must survive the upgrade
cx $PKG client-key generate --auth-file /root/second.auth --private-key-file /root/second.key >/dev/null
cx install -m 0644 -o debian-tor -g debian-tor /root/second.auth $HS/authorized_clients/second.auth
before=$(snapshot)
pid_before=$(tor_pid)
if cx_admin dpkg -i "/root/pkgtest/$(basename "$UDEB")" >"$WORK/upgrade.log" 2>&1; then ok "dpkg -i $UVERSION (upgrade)"; else nok "dpkg -i $UVERSION (upgrade)"; sed 's/^/#   /' "$WORK/upgrade.log"; fi
eq "installed version" "$UVERSION" "$(cx dpkg-query -W -f='${Version}' $PKG)"
eq "upgrade keeps onion address, keys, clients, drop-in, torrc" "$before" "$(snapshot)"
eq "tor not restarted by the upgrade (same MainPID)" "$pid_before" "$(tor_pid)"
eq "tor NRestarts still 0 after upgrade" 0 "$(tor_restarts)"
eq "exporter active after upgrade" active "$(unit_state $PKG active)"
check "/metrics shows tor_up 1 after upgrade" wait_tor_up

keys() { cx sh -c "cd / && sha256sum $HS/hostname $HS/hs_ed25519_secret_key $HS/hs_ed25519_public_key $HS/authorized_clients/*.auth $KEY $ONIONCONF 2>&1"; }
if [ "$SCOPE" = full ]; then
section "upgrade from the old layout (/etc/tor/torrc.d/, up to 0.1.0)"
# What 0.1.0's postinst left: the drop-in in /etc/tor/torrc.d/ (a folder it made), its marked
# include of that folder, tor running the service from there. The next postinst run (an upgrade)
# must move to the top-level drop-in without restarting tor and keep key, address and clients.
cat >"$ROOT/root/pkgtest/old-layout.py" <<'EOF'
# Turns this package's files into what 0.1.0's postinst made (the include block as it wrote it).
# Arguments: the marked include of now and of 0.1.0 (`torrc include-line --marked [--old-layout]`).
import os
import sys
new = "\n" + sys.argv[1] + "\n"
old = "\n" + sys.argv[2] + "\n"
torrc = open("/etc/tor/torrc").read()
assert torrc.count(new) == 1
open("/etc/tor/torrc", "w").write(torrc.replace(new, "") + old)
os.makedirs("/etc/tor/torrc.d", mode=0o755)
os.rename("/etc/tor/securedrop-tor-exporter.torrc", "/etc/tor/torrc.d/securedrop-tor-exporter.conf")
open("/var/lib/securedrop-tor-exporter/created-torrc.d", "w").close()
EOF
check "old layout made" cx python3 /root/pkgtest/old-layout.py "$("$BIN" torrc include-line --marked)" \
    "$("$BIN" torrc include-line --marked --old-layout)"
check "old layout: no top-level drop-in" absent $DROPIN
cx systemctl reload tor@default
check "old layout: tor runs the service from /etc/tor/torrc.d/" bash -c "deadline=\$((SECONDS + 30)); until nsenter -t $L -a python3 /root/pkgtest/torctl.py 'GETCONF HiddenServiceOptions' 2>/dev/null | grep -qF 'HiddenServiceDir=$HS'; do [ \$SECONDS -lt \$deadline ] || exit 1; sleep 0.2; done"
keys_before=$(keys)
dropin_before=$(cx cat $OLD_DROPIN)
pid_before=$(tor_pid)
restarts_before=$(tor_restarts)
if cx_admin dpkg -i "/root/pkgtest/$(basename "$UDEB")" >"$WORK/migrate.log" 2>&1; then ok "dpkg -i $UVERSION over the old layout"; else nok "dpkg -i over the old layout"; sed 's/^/#   /' "$WORK/migrate.log"; fi
eq "migrated: the drop-in is /etc/tor/$PKG.torrc, same content" "$dropin_before" "$(cx cat $DROPIN 2>&1)"
check "migrated: the old drop-in is gone" absent $OLD_DROPIN
check "migrated: /etc/tor/torrc.d/ (made by the package, now empty) is gone" absent /etc/tor/torrc.d
check "migrated: the old include is gone" answers_no cx /root/pkgtest/$PKG torrc has-include --old-layout $TORRC
eq "migrated: one include of the new drop-in" 1 "$(cx grep -cxF "$INCLUDE" $TORRC || true)"
eq "migrated: onion key, address, clients, client key, config.d file kept" "$keys_before" "$(keys)"
eq "migrated: tor not restarted (same MainPID)" "$pid_before" "$(tor_pid)"
eq "migrated: tor NRestarts unchanged" "$restarts_before" "$(tor_restarts)"
check "migrated: tor runs the service from the new drop-in" contains "HiddenServiceDir=$HS" "$(tor_hs_conf)"
check "migrated: tor --verify-config as debian-tor is clean" verify_as_tor
check "/metrics shows tor_up 1 after the migration" wait_tor_up
before=$(snapshot)
if cx_admin dpkg -i "/root/pkgtest/$(basename "$UDEB")" >"$WORK/migrate2.log" 2>&1; then ok "dpkg -i again after the migration"; else nok "dpkg -i again after the migration"; fi
eq "a second run changes nothing" "$before" "$(snapshot)"
check "a second run is quiet" lacks "$PKG:" "$(cat "$WORK/migrate2.log")"
fi

section "tor's torrc replaced (file trigger)"
# as when a tor upgrade installs the maintainer's torrc: the include line is gone.
cx cp -p /root/torrc.orig $TORRC
pid_before=$(tor_pid)
cx dpkg-trigger --no-await $TORRC
if cx dpkg --triggers-only --pending >"$WORK/trigger.log" 2>&1; then ok "trigger processed"; else nok "trigger processed"; sed 's/^/#   /' "$WORK/trigger.log"; fi
eq "include line back in torrc" 1 "$(cx grep -cxF "$INCLUDE" $TORRC || true)"
eq "tor MainPID unchanged by the trigger" "$pid_before" "$(tor_pid)"
check "tor still runs the onion service" contains "HiddenServiceDir=$HS" "$(tor_hs_conf)"

section "tor's package reinstalled (real file trigger)"
# dpkg activates the file trigger on /etc/tor/torrc whenever tor's package is unpacked. The tor
# .deb comes from the cache (rootfs.sh keeps the one it installed) or the host's apt (bookworm's
# only); without it this step is skipped, the simulated one above stays.
TOR_DEBS=$SDTE_CACHE/tor-deb
mkdir -p "$TOR_DEBS"
tor_version=$(cx dpkg-query -W -f='${Version}' tor)
tor_deb=$TOR_DEBS/tor_${tor_version/:/%3a}_amd64.deb
if [ ! -s "$tor_deb" ]; then
    (cd "$TOR_DEBS" && apt-get download -q "tor=$tor_version" >/dev/null 2>&1) || true
fi
if [ -s "$tor_deb" ]; then
    cp "$tor_deb" "$ROOT/root/pkgtest/tor.deb"
    before=$(snapshot)
    if cx_admin dpkg -i /root/pkgtest/tor.deb >"$WORK/tor-reinstall.log" 2>&1; then ok "dpkg -i tor (same version)"; else nok "dpkg -i tor"; sed 's/^/#   /' "$WORK/tor-reinstall.log"; fi
    check "tor's unpack triggered our postinst" grep -q "Processing triggers for $PKG" "$WORK/tor-reinstall.log"
    eq "onion service, keys and include kept through tor's reinstall" "$before" "$(snapshot)"
    eq "tor active after its reinstall (restarted by tor's own postinst)" active "$(unit_state tor@default active)"
    check "/metrics shows tor_up 1 after tor's reinstall" wait_tor_up
    check "tor runs the onion service after its reinstall" contains "HiddenServiceDir=$HS" "$(tor_hs_conf)"
else
    echo "# skipped: no tor .deb for $tor_version from apt"
fi

section "the exporter moves to another port"
pid_before=$(tor_pid)
cx sh -c "printf '[web]\nlisten_address = \"127.0.0.1:9748\"\n' >/etc/$PKG/config.d/60-pkgtest-port.toml"
if cx_admin dpkg-reconfigure $PKG >"$WORK/port.log" 2>&1; then ok "dpkg-reconfigure with listen_address 127.0.0.1:9748"; else nok "dpkg-reconfigure with another port"; sed 's/^/#   /' "$WORK/port.log"; fi
eq "the onion service stays on its socket when the port moves" "HiddenServicePort 80 $ONION_TARGET" "$(cx grep '^HiddenServicePort' $DROPIN || true)"
check "tor still runs the socket target" contains "HiddenServicePort=80 $ONION_TARGET" "$(tor_hs_conf)"
eq "tor neither reloaded nor restarted for the new port" "$pid_before" "$(tor_pid)"
check "/metrics on 9748 shows tor_up 1" bash -c "deadline=\$((SECONDS + 30)); until nsenter -t $L -n curl -fsS --max-time 5 http://127.0.0.1:9748/metrics 2>/dev/null | grep -qx 'tor_up 1'; do [ \$SECONDS -lt \$deadline ] || exit 1; sleep 0.2; done"
socket_moved_checks
[ "$SCOPE" != full ] || socket_legacy_upgrade_checks
cx rm -f /etc/$PKG/config.d/60-pkgtest-port.toml
cx_admin dpkg-reconfigure $PKG >"$WORK/port2.log" 2>&1 || nok "dpkg-reconfigure back to the default port"
eq "drop-in still on the onion socket" "HiddenServicePort 80 $ONION_TARGET" "$(cx grep '^HiddenServicePort' $DROPIN || true)"
check "/metrics back on 9747" wait_tor_up
socket_back_checks
socket_held_port_checks

# The maintainer scripts against a hostile tor account, a full disk, a symlinked torrc;
# each section leaves the package configured as it found it.
# shellcheck source=tests/package/hostile.sh
. "$HERE/hostile.sh"
if [ "$SCOPE" = full ]; then
    hostile_race
    hostile_fifo
    hostile_onion_dirs
    hostile_auth
    hostile_full_disk
    hostile_symlinked_torrc
fi
# shellcheck source=tests/package/recovery.sh
. "$HERE/recovery.sh"
recovery_checks
RESTARTS0=$(tor_restarts)

section "broken situation: a conflicting drop-in"
cx cp -p $TORRC /root/torrc.good
cx sh -c "printf 'HiddenServiceDir $HS/\nHiddenServicePort 80 127.0.0.1:9999\n' >>$TORRC"
keys_before=$(keys)
pid_before=$(tor_pid)
hs_before=$(tor_hs_conf)
if cx_admin dpkg -i "/root/pkgtest/$(basename "$UDEB")" >"$WORK/broken.log" 2>&1; then
    nok "postinst fails with a conflicting drop-in"
else
    ok "postinst fails with a conflicting drop-in"
fi
check "the failure names tor's complaint" grep -q 'Another hidden service is already configured' "$WORK/broken.log"
check "the failure says tor was left alone" grep -q 'tor was not reloaded or restarted' "$WORK/broken.log"
eq "package half-configured" "install ok half-configured" "$(cx dpkg-query -W -f='${Status}' $PKG)"
# tor would exit at its next reload with our service next to the conflicting one: it goes
eq "our include line taken out of the torrc" 0 "$(cx grep -cxF "$INCLUDE" $TORRC || true)"
check "our drop-in taken out" absent $DROPIN
check "the failure says so, and that tor accepts its configuration now" \
    grep -qF "the metrics onion service is out of tor's configuration (the %include line in $TORRC, $DROPIN); tor accepts its configuration as it is now" "$WORK/broken.log"
check "tor --verify-config as debian-tor is clean (tor survives its next reload)" verify_as_tor
eq "onion key, address, clients, client key, config.d file kept" "$keys_before" "$(keys)"
eq "tor keeps running (same MainPID)" "$pid_before" "$(tor_pid)"
eq "tor NRestarts unchanged" "$RESTARTS0" "$(tor_restarts)"
eq "tor still runs its old onion-service configuration" "$hs_before" "$(tor_hs_conf)"
check "/metrics still shows tor_up 1" wait_tor_up
cx cp -p /root/torrc.good $TORRC
if cx dpkg --configure -a >"$WORK/fixed.log" 2>&1; then ok "dpkg --configure -a after the fix"; else nok "dpkg --configure -a after the fix"; sed 's/^/#   /' "$WORK/fixed.log"; fi
eq "package installed again" "install ok installed" "$(cx dpkg-query -W -f='${Status}' $PKG)"
eq "include line and drop-in back" "1 HiddenServiceDir $HS/" "$(cx grep -cxF "$INCLUDE" $TORRC) $(cx grep '^HiddenServiceDir' $DROPIN 2>&1)"
eq "tor MainPID still the same" "$pid_before" "$(tor_pid)"

section "remove"
before_keys=$(cx sh -c "sha256sum $HS/hostname $HS/hs_ed25519_secret_key $HS/authorized_clients/*.auth $KEY")
pid_before=$(tor_pid)
if cx dpkg -r $PKG >"$WORK/remove.log" 2>&1; then ok "dpkg -r"; else nok "dpkg -r"; sed 's/^/#   /' "$WORK/remove.log"; fi
check "drop-in holds no onion service (a comment: the torrc still includes it)" \
    test -z "$(cx grep -v '^#' $DROPIN 2>&1)"
eq "tor active after remove" active "$(unit_state tor@default active)"
eq "tor not restarted by remove (same MainPID)" "$pid_before" "$(tor_pid)"
eq "tor NRestarts unchanged by remove" "$RESTARTS0" "$(tor_restarts)"
check "tor no longer runs the onion service" lacks "HiddenServiceDir=$HS" "$(tor_hs_conf)"
check "tor --verify-config as debian-tor clean after remove" verify_as_tor
eq "keys and clients kept on remove" "$before_keys" "$(cx sh -c "sha256sum $HS/hostname $HS/hs_ed25519_secret_key $HS/authorized_clients/*.auth $KEY" 2>&1)"
check "exporter stopped" test "$(unit_state $PKG inactive)" != active
check "socket stopped (the port is given back)" test "$(unit_state "$SOCKET" inactive)" != active
check "onion socket stopped, its file gone" \
    bash -c "[ \"\$(nsenter -t $L -a systemctl is-active $ONION_SOCKET_UNIT)\" != active ] && ! nsenter -t $L -a test -e $ONION_SOCKET"
check "remove is quiet (no messages from the package)" lacks "$PKG:" "$(cat "$WORK/remove.log")"

section "purge"
# as versions before the generator left it for a listen address other than the default, and as
# postinst leaves the socket when a new address was held
cx install -D -m 0644 /dev/stdin "$LEGACY_SOCKET_DROPIN" <<<"[Socket]"
cx install -D -m 0644 /dev/stdin "$SOCKET_PIN" <<<"[Socket]"
if cx dpkg -P $PKG >"$WORK/purge.log" 2>&1; then ok "dpkg -P"; else nok "dpkg -P"; sed 's/^/#   /' "$WORK/purge.log"; fi
left=
while IFS= read -r p; do
    [ -n "$p" ] || continue
    if cx test -e "$p" && ! cx test -d "$p"; then left="$left $p"; fi
done <<<"$dpkg_files"
for p in /etc/$PKG /usr/share/doc/$PKG $HS /var/lib/$PKG /etc/tor/torrc.d $DROPIN \
    /etc/systemd/system/multi-user.target.wants/$PKG.service \
    /etc/systemd/system/sockets.target.wants/$SOCKET "$LEGACY_SOCKET_DROPIN_DIR" "$SOCKET_PIN_DIR" "$SOCKET_DROPIN_DIR" \
    /etc/systemd/system/sockets.target.wants/$ONION_SOCKET_UNIT "$ONION_SOCKET"; do
    if cx test -e "$p"; then left="$left $p"; fi
done
eq "nothing of ours left (dpkg -L files, dirs, onion dir, keys, enablement)" "" "$left"
eq "torrc exactly as before the install (include line gone)" "$TORRC_ORIG" "$(cx sha256sum $TORRC)"
eq "tor active after purge" active "$(unit_state tor@default active)"
eq "tor MainPID unchanged through purge" "$pid_before" "$(tor_pid)"
check "tor --verify-config as debian-tor clean after purge" verify_as_tor
eq "package unknown to dpkg" "" "$(cx dpkg-query -W -f='${Status}' $PKG 2>/dev/null || true)"

if [ "$SCOPE" = full ]; then
    # shellcheck source=tests/package/apparmor_unload.sh
    . "$HERE/apparmor_unload.sh"
    apparmor_unload_checks
    onion_first_install_squat_checks
fi

section "broken first install rolls everything back"
# tor itself already runs a service in our onion folder (from its torrc): our drop-in conflicts.
cx sh -c "printf 'HiddenServiceDir $HS/\nHiddenServicePort 80 127.0.0.1:9999\n' >>$TORRC"
cx systemctl reload tor@default
deadline=$((SECONDS + 20))
until cx test -s $HS/hostname || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
check "tor runs the pre-existing service" exists $HS/hostname
torrc_before=$(cx sha256sum $TORRC)
pid_before=$(tor_pid)
restarts_before=$(tor_restarts)
hs_before=$(tor_hs_conf)
if cx_admin dpkg -i "/root/pkgtest/$(basename "$DEB")" >"$WORK/broken-first.log" 2>&1; then
    nok "first install fails on the conflict"
else
    ok "first install fails on the conflict"
fi
eq "torrc back as it was (no include line)" "$torrc_before" "$(cx sha256sum $TORRC)"
for p in $DROPIN /etc/tor/torrc.d $KEY $HS/authorized_clients/standalone.auth $ONIONCONF; do
    check "rolled back: $p absent" absent "$p"
done
eq "tor keeps running (same MainPID)" "$pid_before" "$(tor_pid)"
eq "tor NRestarts unchanged" "$restarts_before" "$(tor_restarts)"
eq "tor's onion configuration unchanged" "$hs_before" "$(tor_hs_conf)"
cx dpkg -P $PKG >/dev/null 2>&1 || true

[ "$SCOPE" != full ] || kill_sweep

section "stop the container"
if "$CONTAINER/stop.sh" "$STATE"; then ok "container stopped"; else nok "container stopped"; fi

# --- image build: installed where systemd does not run, then booted --------------------------------
section "install in a chroot (no systemd), then boot"
ROOT2=$WORK/root2
STATE2=$WORK/state2
SDTE_SUITE=$SUITE "$CONTAINER/rootfs.sh" "$ROOT2"
"$CONTAINER/prepare-tor.sh" "$ROOT2"
mkdir -p "$ROOT2/root/pkgtest"
cp "$DEB" "$HERE/torctl.py" "$ROOT2/root/pkgtest/"
if chroot "$ROOT2" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    dpkg -i "/root/pkgtest/$(basename "$DEB")" >"$WORK/chroot.log" 2>&1; then
    ok "dpkg -i in a chroot"
else
    nok "dpkg -i in a chroot"
    sed 's/^/#   /' "$WORK/chroot.log"
fi
check "chroot: says systemd is not running" grep -q 'systemd is not running' "$WORK/chroot.log"
check "chroot: drop-in written" test -f "$ROOT2$DROPIN"
check "chroot: include line added" grep -qxF "$INCLUDE" "$ROOT2$TORRC"
check "chroot: a client is authorized" test -f "$ROOT2$HS/authorized_clients/standalone.auth"
check "chroot: exporter enabled" test -L "$ROOT2/etc/systemd/system/multi-user.target.wants/$PKG.service"
check "chroot: no onion address yet, so no config.d file" test ! -e "$ROOT2$ONIONCONF"
STATES+=("$STATE2")
L=$("$CONTAINER/boot.sh" "$ROOT2" "pkgtest2-$SUITE-$$" "$STATE2")
ok "booted the image (leader $L)"
eq "image: tor active" active "$(unit_state tor@default active)"
eq "image: exporter active" active "$(unit_state $PKG active)"
check "image: tor wrote the hostname at start" exists $HS/hostname
check "image: /metrics shows tor_up 1" wait_tor_up
pid_before=$(tor_pid)
if cx_admin dpkg-reconfigure $PKG >"$WORK/reconfigure.log" 2>&1; then ok "dpkg-reconfigure"; else nok "dpkg-reconfigure"; sed 's/^/#   /' "$WORK/reconfigure.log"; fi
onion=$(cx cat $HS/hostname 2>/dev/null || true)
eq "image: config.d onion file written by dpkg-reconfigure" "metrics = \"${onion%.onion}\"" "$(cx grep '^metrics' $ONIONCONF || true)"
eq "image: tor not reloaded or restarted (nothing changed for it)" "$pid_before" "$(tor_pid)"
if cx dpkg -P $PKG >"$WORK/purge2.log" 2>&1; then ok "dpkg -P"; else nok "dpkg -P"; sed 's/^/#   /' "$WORK/purge2.log"; fi

# --- opt-out: a configuration manager authorizes its own client ----------------------------------
section "opt-out of the standalone client key"
cx install -d -m 0755 /etc/$PKG
cx touch /etc/$PKG/no-standalone-client-key
pid_before=$(tor_pid)
if cx_admin dpkg -i "/root/pkgtest/$(basename "$DEB")" >"$WORK/optout.log" 2>&1; then ok "dpkg -i with the opt-out"; else nok "dpkg -i with the opt-out"; sed 's/^/#   /' "$WORK/optout.log"; fi
check "opt-out: no client key generated" absent $KEY
check "opt-out: no onion service without an authorized client" absent $DROPIN
check "opt-out: says how to finish" grep -q 'dpkg-reconfigure' "$WORK/optout.log"
eq "opt-out: tor untouched" "$pid_before" "$(tor_pid)"
eq "opt-out: exporter active" active "$(unit_state $PKG active)"
# as the role does: the public half of a key made elsewhere, then reconfigure
"$BIN" client-key generate --auth-file "$WORK/role.auth" --private-key-file "$WORK/role.key" >/dev/null 2>&1
cx install -d -m 0700 -o debian-tor -g debian-tor $HS $HS/authorized_clients
cx install -m 0644 -o debian-tor -g debian-tor /dev/stdin $HS/authorized_clients/admin.auth <"$WORK/role.auth"
if cx_admin dpkg-reconfigure $PKG >"$WORK/optout2.log" 2>&1; then ok "dpkg-reconfigure after the role's client"; else nok "dpkg-reconfigure after the role's client"; sed 's/^/#   /' "$WORK/optout2.log"; fi
check "opt-out: onion service set up" exists $HS/hostname
check "opt-out: still no key generated" absent $KEY
check "opt-out: no standalone.auth" absent $HS/authorized_clients/standalone.auth
eq "opt-out: the role's client kept" "$(cat "$WORK/role.auth")" "$(cx cat $HS/authorized_clients/admin.auth)"
eq "opt-out: tor reloaded, not restarted" "$pid_before" "$(tor_pid)"
check "opt-out: config.d onion file" exists $ONIONCONF
cx dpkg -P $PKG >/dev/null 2>&1 || nok "purge after opt-out"
check "purge leaves the admin's opt-out file" exists /etc/$PKG/no-standalone-client-key

# shellcheck source=tests/package/unattended_upgrade.sh
. "$HERE/unattended_upgrade.sh"
unattended_upgrade_checks "$ROOT2" "$X"

section "stop the container"
if "$CONTAINER/stop.sh" "$STATE2"; then ok "container stopped"; else nok "container stopped"; fi
}

# other_scenario: the focused scenario on $OTHER_SUITE, run in the background; its own work folder,
# counts and containers (stopped by its EXIT trap, also when run.sh ends it with TERM). Its last
# line is its count, which collect_other reads.
other_scenario() {
    SUITE=$OTHER_SUITE
    WORK=$WORK/$SUITE
    STATES=()
    PASS=0 FAIL=0
    trap stop_states EXIT
    trap 'exit 143' TERM
    mkdir -p "$WORK"
    container_scenario focused
    stop_states
    echo "$PASS passed, $FAIL failed"
}

# collect_other: wait for the focused scenario, print its lines (each check named with its
# release) and add its counts to this run's.
collect_other() {
    local log=$WORK/$OTHER_SUITE.tap p f
    wait "$OTHER_PID" 2>/dev/null || true
    OTHER_PID=
    section "the focused scenario on $OTHER_SUITE (ran beside the full one; its sections' times are since the start)"
    sed -e '/^[0-9]* passed, [0-9]* failed$/d' -e "s/^ok - /ok - [$OTHER_SUITE] /" \
        -e "s/^not ok - /not ok - [$OTHER_SUITE] /" "$log"
    p=$(grep -c '^ok - ' "$log" || true)
    f=$(grep -c '^not ok - ' "$log" || true)
    PASS=$((PASS + p))
    FAIL=$((FAIL + f))
    grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$log" || nok "[$OTHER_SUITE] the focused scenario ended early"
}

if [ -n "$OTHER_SUITE" ]; then
    other_scenario >"$WORK/$OTHER_SUITE.tap" 2>&1 &
    OTHER_PID=$!
fi
container_scenario full
[ -z "$OTHER_SUITE" ] || collect_other

section "clean up"
release
summary
[ "$FAIL" -eq 0 ]
