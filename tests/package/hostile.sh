# shellcheck shell=bash
# shellcheck disable=SC2154,SC2086  # PKG, TORRC, HS, L, WORK …: run.sh sets them (fixed paths, no spaces)
# The maintainer scripts against a hostile or broken server, sourced by
# run.sh and run in its booted container with the package installed and configured:
# - hostile_race: a process of the tor account swaps the postinst's temp files in
#   authorized_clients/ for symlinks to a root-only file, over several configure runs;
# - hostile_onion_dirs: the onion folders as a symlink, or not owned by debian-tor;
# - hostile_auth: an empty or malformed standalone.auth;
# - hostile_full_disk: /etc/tor on a full tmpfs (no space at all; space for the drop-in only);
# - hostile_symlinked_torrc: /etc/tor/torrc a symlink;
# - kill_sweep: the first install's setup killed with SIGKILL before each of its renames and
#   hard links, then
#   `dpkg --configure -a`, plainly or with a configuration tor rejects.
# Each one leaves the package installed and configured as it found it (kill_sweep: purged).

# the package's mark and include line, as its postinst appends them (the binary owns both)
MARKED_INCLUDE=$("$BIN" torrc include-line --marked)
CLIENTS=$HS/authorized_clients

# reconf NAME: dpkg-reconfigure, its output in $WORK/NAME.log; returns its exit status.
reconf() { cx dpkg-reconfigure "$PKG" >"$WORK/$1.log" 2>&1; }
# The races below hold each of the setup's renames for RACE_DELAY_US (setup_under_strace.sh), so
# every temp file sits under its temp name for that long: the attacker, polling, is always in the
# race, however loaded the machine (without it, the window was microseconds, and under load the
# attacker could miss every one: "swapped 0 files").
RACE_DELAY_US=300000
race_setup_on() {
    cp "$HERE/setup_under_strace.sh" "$ROOT/root/pkgtest/"
    wrap_setup
}
race_setup_off() { cx mv -f /usr/bin/$PKG.real /usr/bin/$PKG; }
# reconf_raced NAME [TIMEOUT]: reconf with the setup's renames held (race_setup_on first).
reconf_raced() {
    cx timeout "${2:-280}" env SDTE_KILL_SET=renameat,renameat2 SDTE_DELAY_US=$RACE_DELAY_US \
        dpkg-reconfigure "$PKG" >"$WORK/$1.log" 2>&1
}
# say_log NAME: the log, indented, as comment lines of the suite's output.
say_log() { sed 's/^/#   /' "$WORK/$1.log"; }
# The root-only file's mode, owner, size and checksum.
file_id() { cx sh -c "stat -c '%a %U:%G %s' $1 && sha256sum <$1" 2>&1; }
# Files of ours that only a run under way has: temp files, hard links to replaced versions,
# and the work files of older versions. Prints them (nothing when there are none).
temp_files() {
    cx sh -c "find /etc/tor /etc/$PKG /var/lib/$PKG $HS /tmp -maxdepth 2 \
        \( -name '*.$PKG-tmp.*' -o -name '*.$PKG-orig' -o -name '*.dpkg-tmp.*' -o -name '*.dpkg-new' \
        -o -name '.label.key.*' -o -name 'standalone.auth.new' -o -name '$PKG-postinst.*' \) 2>/dev/null" || true
}
# the torrc without our marked include (as after a tor upgrade that brought its own torrc)
drop_include_py() {
    cat <<'EOF'
import sys
p, marked = sys.argv[1], sys.argv[2]
t = open(p).read()
block = "\n" + marked + "\n"
assert block in t, "no marked include in " + p
open(p, "w").write(t.replace(block, ""))
EOF
}

# --- 1. the tor account races the postinst --------------------------------------------------
# The same account swaps the postinst's temp files in authorized_clients/ for FIFOs: configure
# must end (failed and rolled back is fine) rather than hang dpkg for ever.
hostile_fifo() {
    section "hostile tor account: temp files in authorized_clients/ swapped for FIFOs"
    local stop=/run/pkgtest-race.stop job race_pid swaps rc=0 started took
    cx rm -f $stop
    cx install -m 0755 /root/pkgtest/race_symlinks.py /usr/local/bin/pkgtest-race-symlinks
    nsenter -t "$L" -a runuser -u debian-tor -- /usr/local/bin/pkgtest-race-symlinks \
        "$CLIENTS" fifo $stop 300 >"$WORK/race-fifo.out" 2>&1 &
    job=$!
    # its PID line says it polls; on a loaded machine (suites side by side) that can take a while
    wait_for 120 grep -q . "$WORK/race-fifo.out" || true
    race_pid=$(head -n 1 "$WORK/race-fifo.out")
    # the clients as they are, put back at the end; none left, so the postinst writes one
    cx sh -c "rm -rf /root/fifo-aside && mkdir -m 0700 /root/fifo-aside && cp -p $CLIENTS/*.auth /root/fifo-aside/"
    cx runuser -u debian-tor -- find "$CLIENTS" -maxdepth 1 -name '*.auth' -delete
    started=$SECONDS
    # the suite's own bound, far above the postinst's: a hang shows as exit 124 here
    race_setup_on
    reconf_raced race-fifo 280 || rc=$?
    race_setup_off
    took=$((SECONDS - started))
    cx touch $stop
    if ! wait_for 10 bash -c "! kill -0 $job 2>/dev/null"; then
        [ -z "$race_pid" ] || cx kill "$race_pid" 2>/dev/null || true
    fi
    wait "$job" 2>/dev/null || true
    swaps=$(tail -n 1 "$WORK/race-fifo.out")
    echo "# the attacker swapped ${swaps:-?} files for FIFOs; configure exited $rc after ${took} s"
    check "the attacker was in the race (made at least one FIFO)" test "${swaps:-0}" -ge 1
    check "configure ends within 240 s instead of hanging (exit $rc after ${took} s)" \
        test "$rc" -ne 124 -a "$took" -lt 240
    cx find "$CLIENTS" -maxdepth 1 -type p -delete
    cx rm -f $stop /usr/local/bin/pkgtest-race-symlinks
    if reconf fifo-after; then ok "configure passes once the attacker is gone"; else nok "configure after the FIFO race"; say_log fifo-after; fi
    cx sh -c "cp -p /root/fifo-aside/*.auth $CLIENTS/ && rm -rf /root/fifo-aside"
    if reconf fifo-restored; then ok "configure passes with the clients put back"; else nok "configure with the clients put back"; say_log fifo-restored; fi
    eq "no temp files left" "" "$(temp_files)"
    check "/metrics shows tor_up 1 after the FIFO race" wait_tor_up
}

hostile_race() {
    section "hostile tor account: symlink swaps in authorized_clients/ during configure"
    local secret=/root/pkgtest-secret stop=/run/pkgtest-race.stop before i rc runs=3 failed=0
    local job race_pid swaps
    cx sh -c "umask 077 && printf 'root only\n' >$secret"
    before=$(file_id $secret)
    cx rm -f $stop
    # where debian-tor can read it (/root is root's)
    cx install -m 0755 /root/pkgtest/race_symlinks.py /usr/local/bin/pkgtest-race-symlinks
    nsenter -t "$L" -a runuser -u debian-tor -- /usr/local/bin/pkgtest-race-symlinks \
        "$CLIENTS" $secret $stop 120 >"$WORK/race.out" 2>&1 &
    job=$!
    # its PID line says it polls; on a loaded machine (suites side by side) that can take a while
    wait_for 120 grep -q . "$WORK/race.out" || true
    race_pid=$(head -n 1 "$WORK/race.out")
    race_setup_on
    for i in $(seq 1 $runs); do
        # the attacker's way to force the window: no .auth left, so the postinst writes one
        cx runuser -u debian-tor -- find "$CLIENTS" -maxdepth 1 -name '*.auth' -delete
        rc=0
        reconf_raced race-$i || rc=$?
        [ "$rc" -eq 0 ] || failed=$((failed + 1))
        eq "race run $i (postinst exit $rc): the root-only file keeps its mode, owner and content" \
            "$before" "$(file_id $secret)"
    done
    race_setup_off
    cx touch $stop
    if ! wait_for 10 bash -c "! kill -0 $job 2>/dev/null"; then
        [ -z "$race_pid" ] || cx kill "$race_pid" 2>/dev/null || true
    fi
    wait "$job" 2>/dev/null || true
    swaps=$(tail -n 1 "$WORK/race.out")
    echo "# the attacker swapped ${swaps:-?} files for symlinks in $runs runs ($failed runs failed)"
    check "the attacker was in the race (swapped at least one file)" test "${swaps:-0}" -ge 1
    check "no symlink of the attacker's left in authorized_clients/" \
        test -z "$(cx find "$CLIENTS" -type l 2>&1)"
    cx rm -f $secret $stop /usr/local/bin/pkgtest-race-symlinks
    # back to normal: a clean run writes standalone.auth (no .auth left), then the second client
    if reconf race-after; then ok "configure passes once the attacker is gone"; else nok "configure after the race"; say_log race-after; fi
    eq "standalone.auth holds the client key again, 644 debian-tor" \
        "$(cx $PKG client-key public --private-key-file "$KEY" 2>&1)|644 debian-tor:debian-tor" \
        "$(cx cat "$CLIENTS/standalone.auth" 2>&1)|$(cx stat -c '%a %U:%G' "$CLIENTS/standalone.auth" 2>&1)"
    eq "no temp files left" "" "$(temp_files)"
    cx install -m 0644 -o debian-tor -g debian-tor /root/second.auth "$CLIENTS/second.auth"
}

hostile_onion_dirs() {
    section "onion folders that are a symlink or not debian-tor's are refused"
    local elsewhere=/root/pkgtest-elsewhere before pid_before
    cx install -d -m 0700 $elsewhere
    before=$(cx sh -c "stat -c '%a %U:%G' $elsewhere; ls -A $elsewhere")
    pid_before=$(tor_pid)
    cx runuser -u debian-tor -- sh -c "mv $CLIENTS $HS/clients.real && ln -s $elsewhere $CLIENTS"
    if reconf dir-symlink; then nok "configure refuses a symlinked authorized_clients/"; else ok "configure refuses a symlinked authorized_clients/"; fi
    check "it says why" grep -qF "$CLIENTS is a symbolic link" "$WORK/dir-symlink.log"
    eq "the folder the link points to is untouched" "$before" "$(cx sh -c "stat -c '%a %U:%G' $elsewhere; ls -A $elsewhere")"
    cx runuser -u debian-tor -- sh -c "rm $CLIENTS && mv $HS/clients.real $CLIENTS"
    cx chown root:root "$CLIENTS"
    if reconf dir-owner; then nok "configure refuses an authorized_clients/ of root's"; else ok "configure refuses an authorized_clients/ of root's"; fi
    check "it says why" grep -qF "$CLIENTS is not owned by debian-tor" "$WORK/dir-owner.log"
    eq "authorized_clients/ left as it was (root's)" "root:root" "$(cx stat -c '%U:%G' "$CLIENTS")"
    cx chown debian-tor:debian-tor "$CLIENTS"
    eq "tor not reloaded or restarted (same MainPID)" "$pid_before" "$(tor_pid)"
    if reconf dir-after; then ok "configure passes with the folders back"; else nok "configure with the folders back"; say_log dir-after; fi
    cx rmdir $elsewhere
}

# --- 2. broken files and a full disk ------------------------------------------------------------
hostile_auth() {
    section "an empty or malformed standalone.auth is repaired before tor reloads"
    local content want pid_before n=0
    want=$(cx $PKG client-key public --private-key-file "$KEY" 2>&1)
    cx mv "$CLIENTS/second.auth" /root/second.auth.aside
    pid_before=$(tor_pid)
    for content in "" "descriptor:x25519:TOOSHORT"; do
        n=$((n + 1))
        cx runuser -u debian-tor -- sh -c "printf '%s' '$content' >$CLIENTS/standalone.auth"
        if reconf auth-$n; then ok "configure with a broken standalone.auth ($n)"; else nok "configure with a broken standalone.auth ($n)"; say_log auth-$n; fi
        eq "standalone.auth ($n) holds the client key again, 644 debian-tor" "$want|644 debian-tor:debian-tor" \
            "$(cx cat "$CLIENTS/standalone.auth" 2>&1)|$(cx stat -c '%a %U:%G' "$CLIENTS/standalone.auth" 2>&1)"
    done
    eq "tor reloaded, not restarted (same MainPID)" "$pid_before" "$(tor_pid)"
    # key generation turned off (a configuration manager's clients) and no client tor accepts:
    # the service is taken out rather than published without client authorization
    cx touch /etc/$PKG/no-standalone-client-key
    cx runuser -u debian-tor -- truncate -s 0 "$CLIENTS/standalone.auth"
    if reconf auth-optout; then nok "configure fails with no client tor accepts (opt-out)"; else ok "configure fails with no client tor accepts (opt-out)"; fi
    check "it says why" grep -qF "has no .auth file tor accepts" "$WORK/auth-optout.log"
    eq "our include line is out of the torrc" 0 "$(cx grep -cxF "$INCLUDE" $TORRC || true)"
    check "our drop-in is out" absent "$DROPIN"
    check "tor --verify-config as debian-tor is clean" verify_as_tor
    cx rm /etc/$PKG/no-standalone-client-key
    cx mv /root/second.auth.aside "$CLIENTS/second.auth"
    if reconf auth-after; then ok "configure after the .auth repairs"; else nok "configure after the .auth repairs"; say_log auth-after; fi
    eq "include line and drop-in back" "1 HiddenServiceDir $HS/" "$(cx grep -cxF "$INCLUDE" $TORRC) $(cx grep '^HiddenServiceDir' "$DROPIN" 2>&1)"
    eq "standalone.auth repaired" "$want" "$(cx cat "$CLIENTS/standalone.auth" 2>&1)"
}

# fill_etc_tor FREE-PAGES: /etc/tor becomes a tmpfs holding a copy of its files and a filler that
# leaves that many 4 KiB pages free.
fill_etc_tor() {
    cx rm -rf /root/etc-tor.copy
    cx cp -a /etc/tor /root/etc-tor.copy
    cx mount -t tmpfs -o size=256k,mode=0755 pkgtest-full /etc/tor
    cx cp -a /root/etc-tor.copy/. /etc/tor/
    cx sh -c "dd if=/dev/zero of=/etc/tor/.pkgtest-filler bs=4096 2>/dev/null; true"
    [ "$1" -eq 0 ] || cx truncate -s "-$((4096 * $1))" /etc/tor/.pkgtest-filler
}

hostile_full_disk() {
    section "a full /etc/tor: configure fails loudly, torrc and drop-in stay, tor keeps every onion service"
    local free hs_before pid_before torrc_before dropin_before listing rc sd=/var/lib/tor/pkgtest-sourcev3
    # a SecureDrop-like onion service of tor's own, next to ours
    cx cp -p $TORRC /root/torrc.before-disk
    cx sh -c "printf '\nHiddenServiceDir $sd/\nHiddenServicePort 80 127.0.0.1:8080\n' >>$TORRC"
    cx systemctl reload tor@default
    check "tor runs a second onion service (as SecureDrop's)" wait_for 20 cx test -s $sd/hostname
    # the exporter on another port too (the socket moves; nothing of tor's changes for it)
    cx sh -c "printf '[web]\nlisten_address = \"127.0.0.1:9748\"\n' >/etc/$PKG/config.d/60-pkgtest-port.toml"
    for free in 0 1; do
        # something to write in /etc/tor: with no page free, the drop-in (edited, so the setup
        # rewrites it); with one page free the drop-in fits and the torrc (our include taken
        # out) does not
        if [ "$free" -eq 0 ]; then
            cx sh -c "printf '# edited by hand\n' >>$DROPIN"
        else
            drop_include_py >"$ROOT/root/pkgtest/drop-include.py"
            cx python3 /root/pkgtest/drop-include.py $TORRC "$MARKED_INCLUDE"
        fi
        hs_before=$(tor_hs_conf)
        pid_before=$(tor_pid)
        fill_etc_tor "$free"
        torrc_before=$(cx sha256sum $TORRC)
        dropin_before=$(cx sha256sum "$DROPIN")
        listing=$(cx ls -A /etc/tor)
        rc=0
        reconf full-$free || rc=$?
        check "full /etc/tor ($free pages free): configure fails (exit $rc)" test "$rc" -ne 0
        check "full /etc/tor ($free): it says what it could not write" grep -qE 'cannot (write|replace|create).*disk full' "$WORK/full-$free.log"
        check "full /etc/tor ($free): it says the previous configuration is back" grep -qF 'previous tor configuration is back in place' "$WORK/full-$free.log"
        eq "full /etc/tor ($free): torrc byte for byte as before" "$torrc_before" "$(cx sha256sum $TORRC)"
        eq "full /etc/tor ($free): drop-in byte for byte as before" "$dropin_before" "$(cx sha256sum "$DROPIN")"
        eq "full /etc/tor ($free): no file left behind in /etc/tor" "$listing" "$(cx ls -A /etc/tor)"
        eq "full /etc/tor ($free): tor not reloaded or restarted (same MainPID)" "$pid_before" "$(tor_pid)"
        eq "full /etc/tor ($free): tor runs all its onion services, as before" "$hs_before" "$(tor_hs_conf)"
        cx umount /etc/tor
        if [ "$free" -eq 1 ]; then cx cp -p /root/torrc.before-disk $TORRC; cx sh -c "printf '\nHiddenServiceDir $sd/\nHiddenServicePort 80 127.0.0.1:8080\n' >>$TORRC"; fi
    done
    [ -z "$(cx findmnt -n /etc/tor)" ] || nok "/etc/tor still mounted"
    # "valid" is not enough: a new configuration that would drop an onion service of tor's is
    # refused. Here the second service sits in our drop-in (someone edited the package's file),
    # which the postinst rewrites (the exporter's port changed).
    cx sh -c "cp -p $DROPIN /root/dropin.before-edit && printf 'HiddenServiceDir $sd/\nHiddenServicePort 80 127.0.0.1:8080\n' >>$DROPIN"
    cx cp -p /root/torrc.before-disk $TORRC
    cx systemctl reload tor@default
    wait_for 20 bash -c "nsenter -t $L -a python3 /root/pkgtest/torctl.py 'GETCONF HiddenServiceOptions' | grep -qF 'HiddenServiceDir=$sd'" ||
        nok "tor runs the second service from our drop-in"
    hs_before=$(tor_hs_conf)
    pid_before=$(tor_pid)
    dropin_before=$(cx sha256sum "$DROPIN")
    if reconf lose-service; then nok "configure refuses a configuration that drops an onion service"; else ok "configure refuses a configuration that drops an onion service"; fi
    check "it names the service it would drop" grep -qF "HiddenServiceDir $sd" "$WORK/lose-service.log"
    eq "drop-in byte for byte as before" "$dropin_before" "$(cx sha256sum "$DROPIN")"
    eq "tor not reloaded (same MainPID), runs all its onion services" "$pid_before|$hs_before" "$(tor_pid)|$(tor_hs_conf)"
    cx cp -p /root/dropin.before-edit "$DROPIN"
    cx rm -f /root/dropin.before-edit
    # the torrc as it was, tor without the second service, the exporter on its port
    cx cp -p /root/torrc.before-disk $TORRC
    cx rm -f /etc/$PKG/config.d/60-pkgtest-port.toml
    cx systemctl reload tor@default
    if reconf full-after; then ok "configure passes with space again"; else nok "configure with space again"; say_log full-after; fi
    check "tor runs our onion service again" contains "HiddenServiceDir=$HS" "$(tor_hs_conf)"
    check "tor no longer runs the second service" lacks "HiddenServiceDir=$sd" "$(tor_hs_conf)"
    cx rm -rf $sd /root/etc-tor.copy /root/torrc.before-disk
}

# --- 3. a symlinked torrc ---------------------------------------------------------------------
hostile_symlinked_torrc() {
    section "a symlinked /etc/tor/torrc is not edited (nor made world-writable)"
    local real=/etc/tor/torrc.pkgtest-real before pid_before
    cx sh -c "mv $TORRC $real && ln -s ${real##*/} $TORRC"
    drop_include_py >"$ROOT/root/pkgtest/drop-include.py"
    cx python3 /root/pkgtest/drop-include.py $real "$MARKED_INCLUDE"
    before=$(file_id $real)
    pid_before=$(tor_pid)
    if reconf torrc-link; then nok "configure refuses to edit a symlinked torrc"; else ok "configure refuses to edit a symlinked torrc"; fi
    check "it says so, and how to go on" grep -qF "$TORRC is a symbolic link: not editing it" "$WORK/torrc-link.log"
    check "the torrc is still the symlink" cx test -L $TORRC
    eq "the file it points to keeps its mode, owner and content" "$before" "$(file_id $real)"
    eq "no world-writable file in /etc/tor" "" "$(cx find /etc/tor -type f -perm -0002 2>&1)"
    eq "tor not reloaded or restarted (same MainPID)" "$pid_before" "$(tor_pid)"
    # the admin adds the include line to the file itself: nothing to edit, the link is fine
    cx sh -c "printf '\n%s\n' '$MARKED_INCLUDE' >>$real"
    before=$(cx stat -c '%a %U:%G' $real)
    if reconf torrc-link2; then ok "configure passes with the include in the link's file"; else nok "configure with the include in the link's file"; say_log torrc-link2; fi
    check "the torrc is still the symlink" cx test -L $TORRC
    eq "the file's mode and owner unchanged" "$before" "$(cx stat -c '%a %U:%G' $real)"
    eq "one include line" 1 "$(cx grep -cxF "$INCLUDE" $real || true)"
    cx sh -c "rm $TORRC && mv $real $TORRC"
    reconf torrc-link-after || { nok "configure after the symlinked torrc"; say_log torrc-link-after; }
}

# --- 4. kill -9 in the middle of the postinst ---------------------------------------------------
# Which files each of our folders holds (names only).
sweep_listing() {
    cx sh -c "for d in /etc/tor /etc/$PKG /etc/$PKG/config.d /var/lib/$PKG $HS $CLIENTS; do
        printf '%s: ' \$d; ls -A \$d 2>&1 | tr '\n' ' '; echo; done"
}

# wrap_setup: the unpacked binary moves to .real and setup_under_strace.sh takes its place, so
# that the setup the postinst runs can be cut off at its Kth call of SDTE_KILL_SET (renames, then
# hard links: each change the setup makes is one of those, journaled before it).
wrap_setup() {
    cx mv -f /usr/bin/$PKG /usr/bin/$PKG.real
    cx install -m 0755 /root/pkgtest/setup_under_strace.sh /usr/bin/$PKG
}

kill_sweep() {
    section "kill -9 before each rename and hard link of the first install's setup, then dpkg --configure -a"
    local deb log=/root/pkgtest/killpoints.log points p i=0 rc clean bad what t t0
    deb=/root/pkgtest/$(basename "$DEB")
    # start from tor's own torrc, with nothing of the sections before, the package purged
    cx dpkg -P $PKG >/dev/null 2>&1 || true
    cx cp -p /root/torrc.orig $TORRC
    cx systemctl reload tor@default
    check "tor runs no onion service of ours before the sweep" wait_for 20 \
        bash -c "! nsenter -t $L -a python3 /root/pkgtest/torctl.py 'GETCONF HiddenServiceOptions' | grep -qF 'HiddenServiceDir=$HS'"
    cx rm -rf $HS
    cp "$HERE/setup_under_strace.sh" "$ROOT/root/pkgtest/"
    cx rm -f $log
    cx dpkg --unpack "$deb" >/dev/null 2>&1 || nok "dpkg --unpack for the counted run"
    wrap_setup
    if cx env SDTE_STRACE_LOG=$log SDTE_KILL_SET=renameat,renameat2,linkat,unlinkat dpkg --configure $PKG \
        >"$WORK/sweep-count.log" 2>&1; then
        ok "first install with the setup's renames and links counted (no kill)"
    else
        nok "first install with the setup under strace"
        say_log sweep-count
    fi
    clean=$(sweep_listing)
    cp "$ROOT$log" "$WORK/killpoints.log"
    local renames links unlinks
    renames=$(grep -cE '^[0-9]+ +renameat2?\(' "$WORK/killpoints.log" || true)
    links=$(grep -cE '^[0-9]+ +linkat\(' "$WORK/killpoints.log" || true)
    unlinks=$(grep -cE '^[0-9]+ +unlinkat\(' "$WORK/killpoints.log" || true)
    # every rename (each puts one file in place), every hard link (each keeps a replaced
    # version) and every removal (the backups and the journal at the commit): the points between
    # changes of state
    points=${SDTE_SWEEP_POINTS:-$(seq -f 'renameat,renameat2:%g' 1 "$renames"; seq -f 'linkat:%g' 1 "$links"; seq -f 'unlinkat:%g' 1 "$unlinks")}
    echo "# the setup renamed $renames files, linked $links and removed $unlinks; killing it before each:" $points
    cx dpkg -P $PKG >/dev/null 2>&1 || nok "purge after the counted run"
    cx rm -f /usr/bin/$PKG.real
    for p in $points; do
        i=$((i + 1))
        t0=$SECONDS
        bad=
        what="call ${p#*:} of ${p%:*}"
        cx dpkg --unpack "$deb" >/dev/null 2>&1 || bad+=" unpack failed;"
        wrap_setup
        rc=0
        cx env SDTE_KILL_SET="${p%:*}" SDTE_KILL_AT="${p#*:}" dpkg --configure $PKG \
            >"$WORK/kill-$p.log" 2>&1 || rc=$?
        # the setup killed: the postinst (set -e) exits 137
        { [ "$rc" -ne 0 ] && grep -qE 'killed by signal|exit status 137' "$WORK/kill-$p.log"; } || bad+=" not killed (exit $rc);"
        if [ $((i % 2)) -eq 1 ]; then
            if ! cx dpkg --configure -a >"$WORK/kill-$p-again.log" 2>&1; then bad+=" dpkg --configure -a failed;"; fi
            [ "$(unit_state tor@default active)" = active ] || bad+=" tor not active;"
            contains "HiddenServiceDir=$HS" "$(tor_hs_conf)" || bad+=" tor does not run our service;"
            [ "$(cx grep -cxF "$INCLUDE" $TORRC || true)" = 1 ] || bad+=" not one include line;"
            cx grep -q "^HiddenServiceDir $HS/\$" "$DROPIN" || bad+=" drop-in without our service;"
            [ "$(sweep_listing)" = "$clean" ] || bad+=" files differ from a clean install: $(sweep_listing | tr '\n' ' ');"
            what="$what, then dpkg --configure -a: configured, as a clean install"
        else
            # tor would reject the configuration with our drop-in: its torrc has a service in our folder
            cx sh -c "printf 'HiddenServiceDir $HS/\nHiddenServicePort 80 127.0.0.1:9999\n' >>$TORRC"
            if cx dpkg --configure -a >"$WORK/kill-$p-again.log" 2>&1; then bad+=" dpkg --configure -a passed;"; fi
            [ "$(cx grep -cxF "$INCLUDE" $TORRC || true)" = 0 ] || bad+=" our include line stayed;"
            ! cx grep -qs '^HiddenService' "$DROPIN" || bad+=" our drop-in stayed;"
            grep -qE "the metrics onion service is out of tor's configuration|the previous tor configuration is back in place" \
                "$WORK/kill-$p-again.log" || bad+=" no message that says what is in place;"
            cx systemctl restart tor@default >>"$WORK/kill-$p-again.log" 2>&1 || bad+=" tor does not start;"
            [ "$(unit_state tor@default active)" = active ] || bad+=" tor not active;"
            cx cp -p /root/torrc.orig $TORRC
            cx systemctl reload tor@default >>"$WORK/kill-$p-again.log" 2>&1 || bad+=" tor reload failed;"
            what="$what, then a configuration tor rejects: everything of ours out, tor starts"
        fi
        t=$(temp_files)
        [ -z "$t" ] || bad+=" temp files left: $t;"
        cx dpkg -P $PKG >"$WORK/kill-$p-purge.log" 2>&1 || bad+=" purge failed;"
        cx rm -f /usr/bin/$PKG.real
        if [ -z "$bad" ]; then
            ok "kill -9 before $what, $((SECONDS - t0))s"
        else
            nok "kill -9 before $what:$bad"
            sed 's/^/#   /' "$WORK/kill-$p.log" "$WORK/kill-$p-again.log"
        fi
    done
}
