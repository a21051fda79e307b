# shellcheck shell=bash
# shellcheck disable=SC2154  # PKG, HERE, WORK, L, BIN, X, DEB, DROPIN …: run.sh sets them
# Sourced by run.sh: the onion service's own door. The metrics onion points at a unix socket that
# systemd holds (securedrop-tor-exporter-onion.socket), owned by debian-tor with mode 0600 in tor's
# data folder, so that no other local account can connect to it, bind it first, or crowd it: what
# any account can still do to the loopback port (squat it before a first install, flood it) no
# longer reaches a scrape through the onion. Uses run.sh's helpers (check, eq, cx, unit_state …).

ONION_SOCKET_UNIT=$PKG-onion.socket

# The unit file, before any build; then the .deb's binary (it owns the path).
onion_socket_static_checks() {
    local unit=$REPO/debian/$PKG.$ONION_SOCKET_UNIT
    check "onion socket unit: every directive is one systemd 252 documents, in its section" \
        detail python3 "$HERE/unit_directives.py" "$unit"
    eq "onion socket unit: owned by debian-tor, 0600, removed when stopped, for the exporter" \
        "SocketUser=debian-tor|SocketGroup=debian-tor|SocketMode=0600|RemoveOnStop=yes|Service=$PKG.service" \
        "$(grep -E '^(SocketUser|SocketGroup|SocketMode|RemoveOnStop|Service)=' "$unit" | paste -sd'|')"
}

onion_socket_deb_checks() {
    ONION_SOCKET=$("$BIN" torrc onion-target --path)
    ONION_TARGET=$("$BIN" torrc onion-target)
    eq "the onion socket unit listens where the binary says tor connects" \
        "ListenStream=$ONION_SOCKET|unix:$ONION_SOCKET" \
        "$(grep '^ListenStream=' "$X/lib/systemd/system/$ONION_SOCKET_UNIT" 2>&1)|$ONION_TARGET"
    check "postinst enables the onion socket (dh_installsystemd)" \
        grep -qF "deb-systemd-helper enable '$ONION_SOCKET_UNIT'" "$WORK/control/postinst"
    check "postinst never restarts the onion socket on upgrade" \
        bash -c "! grep -E 'deb-systemd-invoke .*(restart|\\\$_dh_action).*$ONION_SOCKET_UNIT' '$WORK/control/postinst'"
}

# onion_get ACCOUNT [SECONDS]: GET /metrics through the onion socket as ACCOUNT (tor connects as
# debian-tor), within SECONDS (default 5); the response on success, the errno's name otherwise.
# Python, since the container has no curl.
onion_get() {
    cx runuser -u "$1" -- python3 -c '
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[2]))
try:
    s.connect(sys.argv[1])
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: metrics.onion\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError as e:
    print(errno.errorcode.get(e.errno, "timeout" if isinstance(e, socket.timeout) else e))
    sys.exit(1)
head, _, body = data.partition(b"\r\n\r\n")
if not head.startswith(b"HTTP/1.1 200"):
    print(head[:80].decode(errors="replace"))
    sys.exit(1)
sys.stdout.write(body.decode())
' "$ONION_SOCKET" "${2:-5}" 2>&1
}
# kernel_socket_kib: the kernel memory of the exporter's loopback connections, in KiB: the sum of
# each socket's receive and send queues, forward allocation and options (`ss -m`'s r, w, f, o),
# read in the container's network namespace.
kernel_socket_kib() {
    nsenter -t "$L" -n ss -tmnH state established '( sport = :9747 )' 2>/dev/null |
        grep -o 'skmem:([^)]*)' |
        awk -F'[(),]' '{ for (i = 2; i <= NF; i++) { k = $i; sub(/[0-9]+$/, "", k); v = substr($i, length(k) + 1);
            if (k == "r" || k == "w" || k == "f" || k == "o") sum += v } }
            END { printf "%d\n", sum / 1024 }'
}
onion_tor_up() {
    local deadline=$((SECONDS + 30)) out
    until out=$(onion_get debian-tor) && grep -qx 'tor_up 1' <<<"$out"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "#   last answer: $(head -c 300 <<<"$out")"
            cx journalctl -u "$PKG" -u "$ONION_SOCKET_UNIT" -n 15 --no-pager -o cat 2>&1 | sed 's/^/#   /'
            return 1
        fi
        sleep 0.2
    done
}
# as_account ACCOUNT PYTHON: a short Python program run as ACCOUNT; its output.
as_account() { cx runuser -u "$1" -- python3 -c "$2" 2>&1; }

# Right after the first install (socket_squat_checks ran just before).
onion_socket_checks() {
    local u out pid_restarts flag flooder times worst mem_max mem_now t0 t1 ms
    section "the onion's own socket: only tor reaches it"
    eq "onion socket unit active and enabled" "active enabled" \
        "$(unit_state "$ONION_SOCKET_UNIT" active) $(cx systemctl is-enabled "$ONION_SOCKET_UNIT" 2>&1)"
    eq "the socket: debian-tor's, 0600" "socket debian-tor:debian-tor 600" \
        "$(cx stat -c '%F %U:%G %a' "$ONION_SOCKET" 2>&1)"
    eq "its folder (tor's data folder): no access for other accounts" "debian-tor 0" \
        "$(cx stat -c '%U %a' "$(dirname "$ONION_SOCKET")" 2>&1 | sed -E 's/^(.*) [0-9]*([0-7])$/\1 \2/')"
    eq "the drop-in points the onion service at the socket" "HiddenServicePort 80 $ONION_TARGET" \
        "$(cx grep '^HiddenServicePort' "$DROPIN" 2>&1)"
    check "tor runs that target (GETCONF)" contains "HiddenServicePort=80 $ONION_TARGET" "$(tor_hs_conf)"
    check "as debian-tor (as tor connects), /metrics through the socket shows tor_up 1" onion_tor_up
    for u in nobody www-data; do
        out=$(onion_get "$u" 2 || true)
        eq "$u cannot connect to the onion's socket" EACCES "$out"
        out=$(as_account "$u" "
import errno, socket
for what, path in (('connect', '$ONION_SOCKET'), ('bind', '$ONION_SOCKET'),
                   ('bind', '$(dirname "$ONION_SOCKET")/$PKG-squat.sock')):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path) if what == 'connect' else s.bind(path)
        print(what, 'allowed')
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, e.errno))
")
        eq "$u: connect and bind on tor's side refused (EACCES)" "connect EACCES|bind EACCES|bind EACCES" \
            "$(paste -sd'|' <<<"$out")"
    done
    out=$(cx runuser -u nobody -- sh -c "touch '$(dirname "$ONION_SOCKET")/x' 2>&1 || echo refused" || true)
    check "nobody cannot create anything in tor's data folder" contains refused "$out"

    # A flood on the loopback port, as nobody: 600 connections that pipeline 200 requests each and
    # never read, and 600 idle ones, held until the flag goes (at most 120 s). Scrapes through the
    # onion socket meanwhile, as tor makes them; the service's memory (its cgroup, which counts the
    # kernel's socket buffers) and its restarts are watched.
    section "a flood on the loopback port does not reach the onion"
    flag=/tmp/flood-hold
    cx touch "$flag"
    pid_restarts=$(cx systemctl show -p NRestarts --value "$PKG")
    cx runuser -u nobody -- python3 -c '
import os, resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 200
held = []
for i in range(1200):
    try:
        s = socket.create_connection(("127.0.0.1", 9747), timeout=2)
        s.setblocking(False)
        if i % 2 == 0:
            try:
                s.send(req)
            except OSError:
                pass
        held.append(s)
    except OSError:
        pass
open("/tmp/flood-ready", "w").write(str(len(held)))
end = time.monotonic() + 120
while os.path.exists(sys.argv[1]) and time.monotonic() < end:
    time.sleep(0.1)
' "$flag" &
    flooder=$!
    local deadline=$((SECONDS + 60))
    until cx test -e /tmp/flood-ready || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
    echo "# flood: $(cx cat /tmp/flood-ready 2>&1) connections held on 127.0.0.1:9747"
    times=()
    worst=0
    mem_max=0
    for _ in $(seq 20); do
        t0=$(date +%s%N)
        out=$(onion_get debian-tor 2 || true)
        t1=$(date +%s%N)
        ms=$(((t1 - t0) / 1000000))
        grep -q '^tor_exporter_build_info{' <<<"$out" || ms=failed
        times+=("$ms")
        [ "$ms" = failed ] || [ "$ms" -le "$worst" ] || worst=$ms
        # a reading that fails (no connection established at that instant, ss cut off) counts as
        # none seen, rather than ending the suite here (set -e)
        mem_now=$(kernel_socket_kib || true)
        [[ "$mem_now" =~ ^[0-9]+$ ]] && [ "$mem_now" -gt "$mem_max" ] && mem_max=$mem_now
    done
    echo "# scrapes through the onion socket during the flood (ms): ${times[*]}"
    echo "# kernel memory of the exporter's loopback connections (ss -m: r+w+f+o), highest seen: $mem_max KiB"
    echo "# the exporter's RSS: $(cx ps -o rss= -C "$PKG" 2>&1 | head -1) KiB"
    check "20 of 20 scrapes through the onion socket answered within 2 s during the flood" \
        bash -c "! grep -qw failed <<<'${times[*]}'"
    eq "the exporter was not restarted (no OOM kill)" "$pid_restarts" "$(cx systemctl show -p NRestarts --value "$PKG")"
    check "kernel memory of its connections seen (the measurement works)" test "$mem_max" -gt 0
    check "  ... and under 32 MiB (MemoryMax is 64 MiB)" test "$mem_max" -lt $((32 * 1024))
    cx rm -f "$flag" /tmp/flood-ready
    wait "$flooder" || true

    # With the exporter stopped, a scrape through the onion starts it (systemd holds the socket).
    cx systemctl stop "$PKG.service"
    eq "exporter stopped" inactive "$(unit_state "$PKG.service" inactive)"
    eq "the onion socket stays while the exporter is down" active "$(unit_state "$ONION_SOCKET_UNIT" active)"
    check "a connection through the onion socket starts the exporter, which answers" onion_tor_up
    check "  ... and it serves the socket systemd passed" \
        contains "serving the onion service on the unix socket systemd holds" "$(exporter_run_log)"
}

# real_not_forged TEXT: /metrics as the exporter writes it (its build info), nothing of the squatter's
real_not_forged() { grep -q '^tor_exporter_build_info{' <<<"$1" && ! grep -q '^forged' <<<"$1"; }

# A first install while another account holds the loopback port and serves forged metrics there:
# the install fails and says why, tor keeps its configuration, and nothing points the onion at the
# squatter; once the port is free, `dpkg --configure -a` finishes and the onion serves the real
# exporter. Starts and ends with the package purged.
onion_first_install_squat_checks() {
    local holder pid_before deadline hs_before out
    section "first install while nobody holds the loopback port"
    cx touch /tmp/squat-hold
    cx runuser -u nobody -- python3 -c '
import os, socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 9747))
s.listen(16)
s.settimeout(0.2)
open("/tmp/squat-held", "w").close()
end = time.monotonic() + 300
while os.path.exists("/tmp/squat-hold") and time.monotonic() < end:
    try:
        c, _ = s.accept()
    except OSError:
        continue
    c.settimeout(2)
    try:
        c.recv(4096)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\ntor_up 1\nforged 1\n")
    except OSError:
        pass
    c.close()
' &
    holder=$!
    deadline=$((SECONDS + 30))
    until cx test -e /tmp/squat-held || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
    check "nobody serves forged metrics on 127.0.0.1:9747" \
        bash -c "nsenter -t $L -n curl -fsS --max-time 5 http://127.0.0.1:9747/metrics | grep -qx 'forged 1'"
    pid_before=$(tor_pid)
    hs_before=$(tor_hs_conf)
    if cx dpkg -i "/root/pkgtest/$(basename "$DEB")" >"$WORK/squat-first.log" 2>&1; then
        nok "the first install fails while the port is held"
    else
        ok "the first install fails while the port is held"
    fi
    check "  ... and says why" grep -qF "systemd cannot listen on 127.0.0.1:9747 for the exporter" "$WORK/squat-first.log"
    eq "tor keeps running (same MainPID)" "$pid_before" "$(tor_pid)"
    eq "tor's onion configuration unchanged" "$hs_before" "$(tor_hs_conf)"
    check "no drop-in points anywhere" bash -c "! nsenter -t $L -a grep -qs '^HiddenServicePort' $DROPIN"
    cx rm -f /tmp/squat-hold
    wait "$holder" || true
    cx rm -f /tmp/squat-held
    if cx dpkg --configure -a >"$WORK/squat-first2.log" 2>&1; then
        ok "dpkg --configure -a once the port is free"
    else
        nok "dpkg --configure -a once the port is free"
        sed 's/^/#   /' "$WORK/squat-first2.log"
    fi
    check "the onion serves the real exporter (tor_up 1 through its socket)" onion_tor_up
    out=$(onion_get debian-tor || true)
    check "  ... with its build info, nothing forged" real_not_forged "$out"
    cx dpkg -P "$PKG" >"$WORK/squat-purge.log" 2>&1 || nok "purge after the squat section"
    check "purge removes the onion socket" absent "$ONION_SOCKET"
}
