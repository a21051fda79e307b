#!/bin/bash
# Usage: tests/container/stop.sh STATE_DIR
#
# Stops the container that boot.sh started with this STATE_DIR: SIGTERM to systemd-nspawn (an
# orderly poweroff), a deadline, then SIGKILL to nspawn and the container's PID 1 if still there.
# Idempotent: nothing to stop is success. Removes nspawn.pid and leader.pid once stopped.
#
# Environment: SDTE_STOP_TIMEOUT (seconds, default 30).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
STATE=$1
TIMEOUT=${SDTE_STOP_TIMEOUT:-30}

# A PID from the file, only if that process is still the one we started (PIDs get reused).
pid_if() {
    local file=$1 comm=$2 pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$comm" ] || return 0
    printf '%s\n' "$pid"
}

nspawn=$(pid_if "$STATE/nspawn.pid" systemd-nspawn)
leader=$(pid_if "$STATE/leader.pid" systemd)

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

if alive "$nspawn"; then
    kill -TERM "$nspawn" 2>/dev/null || true
    deadline=$((SECONDS + TIMEOUT))
    while alive "$nspawn" && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    if alive "$nspawn"; then
        echo "stop.sh: nspawn $nspawn still running after ${TIMEOUT}s, killing it" >&2
        kill -KILL "$nspawn" 2>/dev/null || true
    fi
fi
# Killing the init of a PID namespace kills everything in it.
if alive "$leader"; then
    kill -KILL "$leader" 2>/dev/null || true
fi
deadline=$((SECONDS + 10))
while { alive "$nspawn" || alive "$leader"; } && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.1
done
if alive "$nspawn" || alive "$leader"; then
    echo "stop.sh: container processes still alive (nspawn ${nspawn:-?}, leader ${leader:-?})" >&2
    exit 1
fi
rm -f "$STATE/nspawn.pid" "$STATE/leader.pid"
