#!/bin/bash
# Runs the packaged exporter under strace against a throw-away tor (DisableNetwork 1, in a network
# namespace with only loopback), scrapes /metrics until tor_up 1, stops both by PID, then checks
# with profile_covers.py that the AppArmor profile allows every path the exporter opened or
# connected to (the test paths mapped to the production ones). Needs root, tor, strace, curl.
# Usage: profile_covers.sh BINARY PROFILE WORKDIR
set -euo pipefail

BIN=$1 PROFILE=$2 W=$3
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$W/tor" "$W/notify"
chmod 0700 "$W/tor"
cat >"$W/torrc" <<EOF
DataDirectory $W/tor
DisableNetwork 1
SocksPort 0
ControlSocket $W/tor/control
CookieAuthentication 1
CookieAuthFile $W/tor/control.authcookie
Log notice file $W/tor.log
EOF
# shellcheck disable=SC2016  # the inner script's variables
unshare -n bash -c '
    set -u
    W=$1 BIN=$2
    ip link set lo up
    tor -f "$W/torrc" --defaults-torrc /dev/null --RunAsDaemon 0 >/dev/null 2>&1 &
    tor_pid=$!
    stop() { kill "$tor_pid" 2>/dev/null; wait "$tor_pid" 2>/dev/null; }
    deadline=$((SECONDS + 30))
    # under DisableNetwork tor opens its control socket only after a SIGHUP, once it can take one
    until grep -q "Bootstrapped 0\|Delaying directory fetches" "$W/tor.log" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "tor did not start" >&2; stop; exit 1; }
        sleep 0.1
    done
    until [ -S "$W/tor/control" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "no control socket" >&2; stop; exit 1; }
        kill -HUP "$tor_pid"
        sleep 0.3
    done
    NOTIFY_SOCKET=$W/notify/notify strace -f -qq -e trace=%file,%network -o "$W/strace.log" \
        "$BIN" serve --tor.control-address "unix:$W/tor/control" --web.listen-address 127.0.0.1:9747 \
        >"$W/exporter.log" 2>&1 &
    strace_pid=$!
    up=
    until [ -n "$up" ] || [ "$SECONDS" -ge "$deadline" ]; do
        curl -fsS --max-time 2 http://127.0.0.1:9747/metrics 2>/dev/null | grep -qx "tor_up 1" && up=yes
        sleep 0.2
    done
    exporter_pid=$(pgrep -P "$strace_pid" | head -n 1)
    [ -z "$exporter_pid" ] || kill "$exporter_pid"
    wait "$strace_pid" 2>/dev/null
    stop
    [ -n "$up" ] || { echo "the exporter never reported tor_up 1" >&2; tail -5 "$W/exporter.log" >&2; exit 1; }
' bash "$W" "$BIN"
python3 "$HERE/profile_covers.py" "$PROFILE" "$W/strace.log" \
    "$BIN=/usr/bin/securedrop-tor-exporter" "$W/tor=/run/tor" "$W/notify/notify=/run/systemd/notify" ||
    exit 1
# negative control: without the control-socket rule the same trace must be refused
grep -v '/run/tor/control rw,' "$PROFILE" >"$W/profile-without-control"
if python3 "$HERE/profile_covers.py" "$W/profile-without-control" "$W/strace.log" \
    "$W/tor=/run/tor" >/dev/null; then
    echo "not ok - a profile without the control-socket rule was not refused (the check cannot fail)"
    exit 1
fi
echo "ok - control: a profile without the control-socket rule is refused"
