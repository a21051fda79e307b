# shellcheck shell=bash
# Sourced by run.sh: the socket unit, with which systemd holds the exporter's loopback port so
# that no other local account can bind it while the exporter is down and serve forged metrics to
# local scrapers (the onion service has a socket of its own: onion_socket.sh). Uses run.sh's helpers (check, eq, cx, unit_state, ...)
# and variables (PKG, REPO, HERE, WORK, L).

SOCKET=$PKG.socket
# The drop-in the package's systemd generator writes for another address than the default, at
# boot and at each daemon-reload.
GENERATOR=/usr/lib/systemd/system-generators/$PKG-socket-generator
SOCKET_DROPIN_DIR=/run/systemd/generator/$SOCKET.d
SOCKET_DROPIN=$SOCKET_DROPIN_DIR/50-listen-address.conf
# What versions before the generator wrote instead, in /etc (postinst takes it out).
LEGACY_SOCKET_DROPIN_DIR=/etc/systemd/system/$SOCKET.d
LEGACY_SOCKET_DROPIN=$LEGACY_SOCKET_DROPIN_DIR/listen.conf
# Where postinst keeps the socket on its old address when the new one is held.
SOCKET_PIN_DIR=/run/systemd/system/$SOCKET.d
SOCKET_PIN=$SOCKET_PIN_DIR/50-listen-address.conf

# The unit files, before any build.
socket_static_checks() {
    local sock=$REPO/debian/$SOCKET unit=$REPO/debian/$PKG.service
    check "socket unit: every directive is one systemd 252 documents, in its section" \
        detail python3 "$HERE/unit_directives.py" "$sock"
    eq "socket unit: one ListenStream=, 127.0.0.1:9747" "ListenStream=127.0.0.1:9747" \
        "$(grep '^ListenStream=' "$sock" | paste -sd'|')"
    check "socket unit: no Accept=yes (one exporter takes the listening socket)" \
        bash -c "! grep -Eq '^Accept=(yes|true|1)' '$sock'"
    check "socket unit: wanted by sockets.target" grep -qx 'WantedBy=sockets.target' "$sock"
    check "unit: Requires= and After= its socket" \
        bash -c "grep -qx 'Requires=$SOCKET' '$unit' && grep -qx 'After=$SOCKET' '$unit'"
}

# The .deb, extracted to $X; $BIN is its binary, $WORK/control its maintainer scripts.
socket_deb_checks() {
    local listen default
    check ".deb ships /lib/systemd/system/$SOCKET" test -f "$X/lib/systemd/system/$SOCKET"
    listen=$(sed -n 's/^ListenStream=\(..*\)$/\1/p' "$X/lib/systemd/system/$SOCKET")
    : >"$WORK/socket-empty.toml"
    mkdir -p "$WORK/socket-empty.d"
    default=$(env -i "$BIN" check-config --config "$WORK/socket-empty.toml" \
        --config.dir "$WORK/socket-empty.d" --print listen-address 2>&1 || true)
    # (the setup compares with the binary's own default, in Rust)
    eq "one default address: the socket unit's and the binary's web.listen_address" \
        "$default" "$listen"
    eq ".deb ships the generator, 755, a #!/bin/sh exec of the binary's systemd-generator" \
        "755|#!/bin/sh|exec /usr/bin/$PKG systemd-generator \"\$@\"" \
        "$(stat -c %a "$X$GENERATOR" 2>&1)|$(paste -sd'|' "$X$GENERATOR" 2>&1)"
    check "postinst enables the socket (dh_installsystemd)" \
        grep -qF "deb-systemd-helper enable '$SOCKET'" "$WORK/control/postinst"
    check "postinst starts the socket" grep -qF "deb-systemd-invoke start '$SOCKET'" "$WORK/control/postinst"
    # a restart would close the port and open it again: for that moment anyone could bind it
    check "postinst never restarts the socket on upgrade" \
        bash -c "! grep -E 'deb-systemd-invoke .*(restart|\\\$_dh_action).*$SOCKET' '$WORK/control/postinst'"
}

# squat HOST PORT: `nobody` tries to bind the port (tests/package/squat.py); its status. The tries
# go to $WORK/squat.log, shown when the caller's check fails.
squat() {
    cx runuser -u nobody -- python3 -c "$(cat "$HERE/squat.py")" "$1" "$2" >"$WORK/squat.log" 2>&1
}
squat_refused() {
    squat "$@" && return 0
    sed 's/^/#   /' "$WORK/squat.log"
    return 1
}
socket_listen() { cx systemctl show -p Listen --value "$SOCKET"; }
# the journal of the exporter's current run, with its fields (the addresses are fields)
exporter_run_log() {
    cx journalctl -q -o verbose -u "$PKG" --no-pager \
        "_SYSTEMD_INVOCATION_ID=$(cx systemctl show -p InvocationID --value "$PKG")" 2>&1
}
# real_metrics PORT: /metrics on PORT answers within 30 s, as the exporter does (tor_up and its
# build info)
real_metrics() {
    local deadline=$((SECONDS + 30)) body
    while :; do
        body=$(nsenter -t "$L" -n curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" 2>/dev/null || true)
        if grep -qE '^tor_up [01]$' <<<"$body" && grep -q '^tor_exporter_build_info{' <<<"$body"; then
            return 0
        fi
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
serves_on() {
    local log
    log=$(exporter_run_log)
    contains "using the socket systemd holds" "$log" && contains "=$1" "$log" &&
        lacks "systemd passed a socket on" "$log"
}
socket_verify() {
    local out
    out=$(cx systemd-analyze verify --man=no "/lib/systemd/system/$SOCKET" "/lib/systemd/system/$PKG.service" 2>&1) ||
        { printf '%s\n' "$out" | sed 's/^/#   /'; return 1; }
    [ -z "$out" ] || { printf '%s\n' "$out" | sed 's/^/#   /'; return 1; }
}

# Right after the first install.
socket_squat_checks() {
    local rc
    section "port squatting: systemd holds the exporter's port"
    eq "socket unit active" active "$(unit_state "$SOCKET" active)"
    eq "socket unit enabled" enabled "$(cx systemctl is-enabled "$SOCKET" 2>&1)"
    eq "socket listens on 127.0.0.1:9747" "127.0.0.1:9747 (Stream)" "$(socket_listen)"
    check "the exporter serves on the socket systemd passes" \
        contains "using the socket systemd holds (socket activation)" "$(exporter_run_log)"
    check "systemd-analyze verify: socket and service units clean" socket_verify
    cx systemctl stop "$PKG.service" 2>/dev/null
    eq "exporter stopped" inactive "$(unit_state "$PKG.service" inactive)"
    eq "the socket stays with the exporter stopped" active "$(unit_state "$SOCKET" active)"
    check "nobody cannot bind 127.0.0.1:9747 or 0.0.0.0:9747 (EADDRINUSE, also with SO_REUSEADDR/SO_REUSEPORT)" \
        squat_refused 127.0.0.1 9747
    check "a connection starts the exporter: /metrics answers as the exporter (tor_up, build info)" \
        real_metrics 9747
    eq "exporter active again (socket activation)" active "$(unit_state "$PKG.service" active)"
    check "  ... on the socket systemd passes" \
        contains "using the socket systemd holds (socket activation)" "$(exporter_run_log)"
    # control: with nothing holding the port, the same account takes it (what the socket prevents)
    cx systemctl stop "$SOCKET"
    eq "control: stopping the socket stops the exporter too (Requires=)" inactive "$(unit_state "$PKG.service" inactive)"
    rc=0
    squat 127.0.0.1 9747 || rc=$?
    eq "control: with the socket stopped, nobody binds 127.0.0.1:9747 (so the check above can fail)" 1 "$rc"
    cx systemctl start "$SOCKET" "$PKG.service"
    eq "socket and exporter started again" "active active" \
        "$(unit_state "$SOCKET" active) $(unit_state "$PKG.service" active)"
    check "/metrics shows tor_up 1 again" wait_tor_up
}

# After the move to 127.0.0.1:9748 (config.d and dpkg-reconfigure).
socket_moved_checks() {
    check "the generator's drop-in is in /run/systemd/generator/$SOCKET.d/" exists "$SOCKET_DROPIN"
    check "no drop-in folder in /etc/systemd/system (it would override the generator's)" \
        absent "$LEGACY_SOCKET_DROPIN_DIR"
    eq "socket drop-in: ListenStream= reset, then 127.0.0.1:9748" "[Socket]|ListenStream=|ListenStream=127.0.0.1:9748" \
        "$(cx grep -v '^#' "$SOCKET_DROPIN" 2>&1 | paste -sd'|')"
    eq "socket drop-in mode" "644 root:root" "$(cx stat -c '%a %U:%G' "$SOCKET_DROPIN" 2>&1)"
    eq "socket listens on 127.0.0.1:9748 only" "127.0.0.1:9748 (Stream)" "$(socket_listen)"
    check "the exporter serves on the moved socket, with no address mismatch" serves_on 127.0.0.1:9748
    cx systemctl stop "$PKG.service" 2>/dev/null
    check "exporter stopped: nobody cannot bind 127.0.0.1:9748" squat_refused 127.0.0.1 9748
    check "a connection to 9748 starts the exporter" real_metrics 9748
    local rc=0
    squat 127.0.0.1 9747 || rc=$?
    eq "9747 is no longer held (the socket moved, not added)" 1 "$rc"
}

# After going back to the default address.
socket_back_checks() {
    check "back on the default: the socket drop-in is gone" absent "$SOCKET_DROPIN"
    check "  ... and its folder" absent "$SOCKET_DROPIN_DIR"
    check "  ... and no drop-in folder in /etc/systemd/system" absent "$LEGACY_SOCKET_DROPIN_DIR"
    eq "socket listens on 127.0.0.1:9747 again" "127.0.0.1:9747 (Stream)" "$(socket_listen)"
    check "no unfinished socket move recorded" absent "/var/lib/$PKG/socket-moving"
}

# Another account already holds the new port: the run stops and everything stays as it was.
socket_held_port_checks() {
    local holder pid_before deadline
    section "the new port is held by another account: nothing moves"
    pid_before=$(tor_pid)
    cx touch /tmp/squat-hold
    # nobody binds 127.0.0.1:9749 until /tmp/squat-hold goes (at most 120 s)
    cx runuser -u nobody -- python3 -c '
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 9749))
s.listen(1)
open("/tmp/squat-held", "w").close()
end = time.monotonic() + 120
while os.path.exists("/tmp/squat-hold") and time.monotonic() < end:
    time.sleep(0.1)
' &
    holder=$!
    deadline=$((SECONDS + 30))
    until cx test -e /tmp/squat-held || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
    check "nobody holds 127.0.0.1:9749" exists /tmp/squat-held
    cx sh -c "printf '[web]\nlisten_address = \"127.0.0.1:9749\"\n' >/etc/$PKG/config.d/60-pkgtest-port.toml"
    if cx_admin dpkg-reconfigure "$PKG" >"$WORK/held-port.log" 2>&1; then
        nok "dpkg-reconfigure fails when the new port is held"
    else
        ok "dpkg-reconfigure fails when the new port is held"
    fi
    check "the failure names the address" grep -qF "systemd cannot listen on 127.0.0.1:9749" "$WORK/held-port.log"
    eq "the onion service still targets its socket" "HiddenServicePort 80 $ONION_TARGET" "$(cx grep '^HiddenServicePort' "$DROPIN" || true)"
    check "tor still runs the socket target" contains "HiddenServicePort=80 $ONION_TARGET" "$(tor_hs_conf)"
    eq "tor not reloaded or restarted (same MainPID)" "$pid_before" "$(tor_pid)"
    eq "the generator's drop-in says the configuration's 127.0.0.1:9749" "ListenStream=127.0.0.1:9749" \
        "$(cx grep '^ListenStream=.' "$SOCKET_DROPIN" 2>&1)"
    eq "  ... and postinst's runtime drop-in, of the same name, masks it with 127.0.0.1:9747" \
        "[Socket]|ListenStream=|ListenStream=127.0.0.1:9747" "$(cx grep -v '^#' "$SOCKET_PIN" 2>&1 | paste -sd'|')"
    check "no drop-in left in /etc/systemd/system" absent "$LEGACY_SOCKET_DROPIN_DIR"
    eq "the socket is back on 127.0.0.1:9747, listening" "127.0.0.1:9747 (Stream) active" \
        "$(socket_listen) $(unit_state "$SOCKET" active)"
    eq "exporter active" active "$(unit_state "$PKG.service" active)"
    check "/metrics on 9747 shows tor_up 1" wait_tor_up
    cx rm -f /tmp/squat-hold "/etc/$PKG/config.d/60-pkgtest-port.toml"
    wait "$holder" || true
    cx rm -f /tmp/squat-held
    if cx_admin dpkg-reconfigure "$PKG" >"$WORK/held-port2.log" 2>&1; then ok "dpkg-reconfigure after the port is free"; else nok "dpkg-reconfigure after the port is free"; sed 's/^/#   /' "$WORK/held-port2.log"; fi
    check "the runtime drop-in is gone" absent "$SOCKET_PIN_DIR"
    eq "the socket on 127.0.0.1:9747, listening" "127.0.0.1:9747 (Stream) active" \
        "$(socket_listen) $(unit_state "$SOCKET" active)"
    check "no unfinished socket move recorded" absent "/var/lib/$PKG/socket-moving"
}

# What versions before the generator left for another address: their drop-in in /etc, with its
# header (and what a run of theirs cut off left beside it). An upgrade takes it out, the
# generator's takes over, and the socket stays where it was. Run while the configuration says
# 127.0.0.1:9748.
socket_legacy_upgrade_checks() {
    section "upgrade from the drop-in in /etc/systemd/system (versions before the generator)"
    cx install -d -m 0755 "$LEGACY_SOCKET_DROPIN_DIR"
    cx sh -c "cat >$LEGACY_SOCKET_DROPIN" <<'EOF'
# Managed by the securedrop-tor-exporter package from web.listen_address (rewritten by
# dpkg-reconfigure, removed on purge): systemd holds the exporter's port here.
[Socket]
ListenStream=
ListenStream=127.0.0.1:9748
EOF
    cx sh -c "ln $LEGACY_SOCKET_DROPIN $LEGACY_SOCKET_DROPIN_DIR/.listen.conf.$PKG-orig && : >$LEGACY_SOCKET_DROPIN_DIR/.listen.conf.$PKG-tmp.Ab12Cd"
    cx systemctl daemon-reload
    eq "legacy: the socket on 127.0.0.1:9748" "127.0.0.1:9748 (Stream)" "$(socket_listen)"
    if cx_admin dpkg -i "/root/pkgtest/$(basename "$UDEB")" >"$WORK/legacy-socket.log" 2>&1; then
        ok "dpkg -i $UVERSION over the legacy drop-in"
    else
        nok "dpkg -i $UVERSION over the legacy drop-in"
        sed 's/^/#   /' "$WORK/legacy-socket.log"
    fi
    check "the legacy drop-in is gone" absent "$LEGACY_SOCKET_DROPIN"
    check "  ... and its folder (with what a cut-off run left beside it)" absent "$LEGACY_SOCKET_DROPIN_DIR"
    eq "the generator's drop-in says 127.0.0.1:9748" "[Socket]|ListenStream=|ListenStream=127.0.0.1:9748" \
        "$(cx grep -v '^#' "$SOCKET_DROPIN" 2>&1 | paste -sd'|')"
    eq "the socket still on 127.0.0.1:9748, listening" "127.0.0.1:9748 (Stream) active" \
        "$(socket_listen) $(unit_state "$SOCKET" active)"
    check "/metrics on 9748 answers" real_metrics 9748
    # An admin's own file there is not the package's: it stays.
    cx install -d -m 0755 "$LEGACY_SOCKET_DROPIN_DIR"
    cx sh -c "printf '[Socket]\nBacklog=64\n' >$LEGACY_SOCKET_DROPIN"
    if cx_admin dpkg-reconfigure "$PKG" >"$WORK/legacy-admin.log" 2>&1; then
        ok "dpkg-reconfigure with an admin's listen.conf"
    else
        nok "dpkg-reconfigure with an admin's listen.conf"
        sed 's/^/#   /' "$WORK/legacy-admin.log"
    fi
    eq "an admin's listen.conf (no package header) stays" "[Socket]|Backlog=64" \
        "$(cx paste -sd'|' "$LEGACY_SOCKET_DROPIN" 2>&1)"
    cx rm -rf "$LEGACY_SOCKET_DROPIN_DIR"
    cx systemctl daemon-reload
}
