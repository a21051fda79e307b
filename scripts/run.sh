#!/usr/bin/env bash
# Runs the exporter on this machine with sane defaults.
#
# - If the system tor's control socket (/run/tor/control) answers, the exporter reads that tor.
# - Otherwise it installs Debian's tor if missing, starts a throwaway tor of its own
#   (DisableNetwork 1: it never touches the Tor network; temp DataDirectory and control socket,
#   cookie auth), points the exporter at it, and stops that tor when you press Ctrl-C.
#
# Extra arguments go to the exporter, e.g. scripts/run.sh --log.level debug
set -euo pipefail

cd "$(dirname "$0")/.."
listen="${SDTE_LISTEN:-127.0.0.1:9747}"

echo "building the exporter (cargo build --release --locked) ..." >&2
cargo build --release --locked --quiet
bin="$PWD/target/release/securedrop-tor-exporter"

socket_answers() {
    # A socket file can outlive its tor: ask it for PROTOCOLINFO and expect "250".
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
try:
    s.connect(sys.argv[1])
    s.sendall(b"PROTOCOLINFO 1\r\n")
    sys.exit(0 if s.recv(3) == b"250" else 1)
except OSError:
    sys.exit(1)
PY
}

if [ -S /run/tor/control ] && socket_answers /run/tor/control; then
    echo "using the system tor at /run/tor/control" >&2
    echo "metrics: http://$listen/metrics" >&2
    exec "$bin" --web.listen-address "$listen" --tor.control-address unix:/run/tor/control "$@"
fi

if ! command -v tor >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "tor is not installed; run as root, or: sudo apt-get install -y tor" >&2
        exit 1
    fi
    # shellcheck source=scripts/lib/apt.sh
    . scripts/lib/apt.sh
    need_packages --recommends cmd:tor:tor
fi

work="$(mktemp -d /tmp/sdte-run.XXXXXX)"
chmod 700 "$work"
mkdir -m 700 "$work/data"
: >"$work/torrc"
tor_pid=""
exporter_pid=""
cleanup() {
    trap - EXIT INT TERM
    [ -n "$exporter_pid" ] && kill "$exporter_pid" 2>/dev/null && wait "$exporter_pid" 2>/dev/null
    if [ -n "$tor_pid" ]; then
        kill "$tor_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$tor_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$tor_pid" 2>/dev/null || true
        wait "$tor_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    echo "stopped the throwaway tor and the exporter" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tor --defaults-torrc /dev/null -f "$work/torrc" \
    --DisableNetwork 1 --SocksPort 0 --RunAsDaemon 0 \
    --DataDirectory "$work/data" --ControlSocket "$work/control" --CookieAuthentication 1 \
    --CookieAuthFile "$work/control.authcookie" \
    --Log "notice file $work/tor.log" >/dev/null 2>&1 &
tor_pid=$!

for _ in $(seq 200); do
    [ -S "$work/control" ] && break
    kill -0 "$tor_pid" 2>/dev/null || { echo "tor exited; its log:" >&2; cat "$work/tor.log" >&2; exit 1; }
    sleep 0.1
done
[ -S "$work/control" ] || { echo "tor did not open its control socket within 20 s" >&2; exit 1; }

echo "started a throwaway tor (pid $tor_pid, DisableNetwork 1) with control socket $work/control" >&2
echo "metrics: http://$listen/metrics   (Ctrl-C stops both)" >&2
cat >&2 <<'EXPECT'
What to expect from this tor: tor_up 1 and its version, but tor_bootstrap_progress_percent 0,
tor_circuit_established 0, tor_network_liveness 0 and version status "unknown". That is right
for DisableNetwork 1: this tor never contacts the Tor network, so it never bootstraps, builds no
circuits and has no consensus to say whether its version is recommended. A SecureDrop server's
tor shows 100, 1, 1 and "recommended". See METRICS.md for every series.
EXPECT
"$bin" --web.listen-address "$listen" --tor.control-address "unix:$work/control" \
    --log.target stderr "$@" &
exporter_pid=$!
wait "$exporter_pid"
