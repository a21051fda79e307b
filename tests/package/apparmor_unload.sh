# shellcheck shell=bash
# shellcheck disable=SC2016  # ${Status} is dpkg-query's format, not the shell's
# postrm unloads the exporter's AppArmor profile from the kernel on remove and purge, where AppArmor
# is there and the profile loaded, and never fails the removal otherwise. Sourced by run.sh (its
# cx, eq, check, ok, nok, section, tor_pid, unit_state); the package must be purged when it starts,
# and is purged again when it ends.
#
# The container's kernel has no AppArmor, so the kernel's side is played by stand-ins, put in place
# for these checks only and taken away at the end:
# - a tmpfs over /sys/kernel/security in the container's mount namespace holding
#   apparmor/profiles (the kernel's list of loaded profiles, `NAME (MODE)` a line) and
#   apparmor/.remove (where a profile's name is written to unload it);
# - /usr/local/sbin/apparmor_parser (first on the maintainer scripts' PATH), which records each
#   call (arguments and standard input) and, for -R, takes the named profiles out of that list,
#   or fails when /root/aa-fail exists.
# The real check, against an enforcing AppArmor, is for a VM (docs/packaging.md, "AppArmor").

AA_FAKE_FS=/sys/kernel/security
AA_LIST=$AA_FAKE_FS/apparmor/profiles
AA_STANDIN=/usr/local/sbin/apparmor_parser
AA_CALLS=/root/aa-calls.log

aa_standin_on() {
    cx sh -c "cat >$AA_STANDIN" <<'EOF'
#!/bin/sh
# apparmor_parser stand-in of tests/package/apparmor_unload.sh: records the call; -R takes the
# profiles named on standard input out of the fake kernel list.
input=$(cat)
{ printf 'args: %s\n' "$*"; printf '%s\n' "$input" | sed 's/^/stdin: /'; } >>/root/aa-calls.log
[ ! -e /root/aa-fail ] || exit 1
if [ "$1" = -R ]; then
    for name in $(printf '%s\n' "$input" | sed -n 's/^profile \([^ ]*\) .*/\1/p'); do
        sed -i "/^$name (/d" /sys/kernel/security/apparmor/profiles
    done
fi
EOF
    cx chmod 0755 "$AA_STANDIN"
}
aa_standin_off() { cx rm -f "$AA_STANDIN" /root/aa-fail; }
# aa_fake_kernel LINES: the fake securityfs, listing LINES as the loaded profiles
aa_fake_kernel() {
    cx sh -c "mountpoint -q $AA_FAKE_FS || mount -t tmpfs -o mode=0755,size=64k sdte-fake-securityfs $AA_FAKE_FS"
    cx mkdir -p "$AA_FAKE_FS/apparmor"
    cx sh -c "printf '$1' >$AA_LIST && : >$AA_FAKE_FS/apparmor/.remove"
}
aa_fake_kernel_off() { cx sh -c "! mountpoint -q $AA_FAKE_FS || umount $AA_FAKE_FS"; }
aa_calls() { cx cat "$AA_CALLS" 2>/dev/null || true; }
aa_install() {
    if cx dpkg -i "/root/pkgtest/$(basename "$DEB")" >"$WORK/aa-install.log" 2>&1; then
        ok "dpkg -i $VERSION ($1)"
    else
        nok "dpkg -i $VERSION ($1)"
        sed 's/^/#   /' "$WORK/aa-install.log"
    fi
}

apparmor_unload_checks() {
    local loaded="system_tor (enforce)\n$PKG (enforce)\n" pid_before host_before
    section "postrm unloads the AppArmor profile (remove, purge; stand-ins for the kernel's side)"
    host_before=$(find "$AA_FAKE_FS" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)

    # 1. AppArmor there, the profile loaded: remove unloads it; purge then finds nothing to do.
    aa_install "AppArmor there, profile loaded"
    aa_standin_on
    aa_fake_kernel "$loaded"
    eq "the fake securityfs stays in the container (the host's $AA_FAKE_FS unchanged)" \
        "$host_before" "$(find "$AA_FAKE_FS" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
    pid_before=$(tor_pid)
    if cx dpkg -r "$PKG" >"$WORK/aa-remove.log" 2>&1; then ok "dpkg -r"; else nok "dpkg -r"; sed 's/^/#   /' "$WORK/aa-remove.log"; fi
    eq "remove: apparmor_parser -R called once, given the profile's name" \
        "args: -R|stdin: profile $PKG {}" "$(aa_calls | paste -sd'|')"
    eq "remove: the profile is no longer loaded, the others are" "system_tor (enforce)" "$(cx cat $AA_LIST)"
    check "remove: quiet (no messages from the package)" lacks "$PKG:" "$(cat "$WORK/aa-remove.log")"
    eq "remove: tor not restarted" "$pid_before" "$(tor_pid)"
    cx rm -f "$AA_CALLS"
    if cx dpkg -P "$PKG" >"$WORK/aa-purge.log" 2>&1; then ok "dpkg -P"; else nok "dpkg -P"; sed 's/^/#   /' "$WORK/aa-purge.log"; fi
    eq "purge with the profile not loaded: apparmor_parser not called" "" "$(aa_calls)"
    check "purge: quiet" lacks "$PKG:" "$(cat "$WORK/aa-purge.log")"

    # 2. Unloading fails: the removal still succeeds and says how to do it by hand; without
    # apparmor_parser (the apparmor package gone), purge writes the name to the kernel's .remove.
    aa_install "apparmor_parser fails"
    aa_fake_kernel "$loaded"
    cx touch /root/aa-fail
    if cx dpkg -r "$PKG" >"$WORK/aa-remove2.log" 2>&1; then
        ok "dpkg -r succeeds when apparmor_parser -R fails"
    else
        nok "dpkg -r succeeds when apparmor_parser -R fails"
        sed 's/^/#   /' "$WORK/aa-remove2.log"
    fi
    eq "... after one call of apparmor_parser -R" "1" "$(aa_calls | grep -c '^args: -R$' || true)"
    check "... and a warning saying how to unload it" \
        grep -qF "could not unload the AppArmor profile $PKG" "$WORK/aa-remove2.log"
    eq "package removed (config-files)" "deinstall ok config-files" "$(cx dpkg-query -W -f='${Status}' "$PKG" 2>&1)"
    aa_standin_off
    if cx dpkg -P "$PKG" >"$WORK/aa-purge2.log" 2>&1; then ok "dpkg -P without apparmor_parser"; else nok "dpkg -P without apparmor_parser"; sed 's/^/#   /' "$WORK/aa-purge2.log"; fi
    eq "purge without apparmor_parser: the name written to the kernel's .remove" "$PKG" \
        "$(cx cat "$AA_FAKE_FS/apparmor/.remove" 2>&1)"
    check "purge: quiet" lacks "$PKG:" "$(cat "$WORK/aa-purge2.log")"

    # 3. No AppArmor at all (no securityfs): apparmor_parser, though there, is never called.
    aa_fake_kernel_off
    check "the fake securityfs is gone" bash -c "! nsenter -t $L -a mountpoint -q $AA_FAKE_FS"
    aa_standin_on
    cx rm -f "$AA_CALLS"
    aa_install "no AppArmor"
    if cx sh -c "dpkg -r $PKG && dpkg -P $PKG" >"$WORK/aa-purge3.log" 2>&1; then
        ok "dpkg -r, dpkg -P without AppArmor"
    else
        nok "dpkg -r, dpkg -P without AppArmor"
        sed 's/^/#   /' "$WORK/aa-purge3.log"
    fi
    eq "without AppArmor: apparmor_parser never called" "" "$(aa_calls)"
    check "without AppArmor: quiet" lacks "$PKG:" "$(cat "$WORK/aa-purge3.log")"
    aa_standin_off
    cx rm -f "$AA_CALLS"
    eq "package purged" "" "$(cx dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null || true)"
}
