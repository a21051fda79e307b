#!/bin/bash
# Usage: molecule/monitoring/server-key.sh OUT
#
# Writes OUT (mode 0600): a line `<onion56>:descriptor:x25519:<PRIV52>` like the admin's
# <server>-metrics.auth_private, for a real but throw-away v3 onion address: a tor on this machine
# with DisableNetwork 1, in a network namespace with nothing but loopback, makes the service's
# keys and hostname and is stopped at once. The private key is 32 random bytes in base32.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
out=$1
tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -m 0700 "$tmp/data" "$tmp/hs"
: >"$tmp/torrc"
unshare -n tor --quiet -f "$tmp/torrc" --defaults-torrc "$tmp/torrc" --DisableNetwork 1 --SocksPort 0 --DataDirectory "$tmp/data" \
    --HiddenServiceDir "$tmp/hs" --HiddenServicePort "80 127.0.0.1:9" --Log "err stderr" &
pid=$!
for _ in $(seq 1 100); do
    [ -s "$tmp/hs/hostname" ] && break
    sleep 0.1 # poll interval of a condition with a deadline (10 s)
done
[ -s "$tmp/hs/hostname" ] || { echo "server-key.sh: tor wrote no hostname" >&2; exit 1; }
onion=$(cut -d. -f1 "$tmp/hs/hostname")
priv=$(head -c 32 /dev/urandom | base32 | tr -d '=\n')
umask 077
printf '%s:descriptor:x25519:%s\n' "$onion" "$priv" >"$out"
