#!/bin/sh
# Package tests only (kill_sweep and the races in hostile.sh): put in place of
# /usr/bin/securedrop-tor-exporter in the test container, the real binary beside it as .real.
# `setup` runs under strace, which with SDTE_KILL_AT=K kills it with SIGKILL as it enters its Kth
# call of SDTE_KILL_SET (a power loss or the OOM killer: nothing of the process runs after); with
# SDTE_DELAY_US=N holds each call of SDTE_KILL_SET for N microseconds before it runs (a slow disk
# or a loaded machine: every temp file stays under its temp name that long, so a racing process
# always gets its chance); and with SDTE_STRACE_LOG writes those calls to that file (the counted
# run). Everything else runs the real binary as it is.
REAL=/usr/bin/securedrop-tor-exporter.real
SET=${SDTE_KILL_SET:-renameat,renameat2}
case "$1" in
    setup)
        if [ -n "${SDTE_DELAY_US:-}" ]; then
            exec strace -f -qq -o /dev/null -e trace="$SET" -e inject="$SET:delay_enter=$SDTE_DELAY_US" -- "$REAL" "$@"
        fi
        if [ -n "${SDTE_KILL_AT:-}" ]; then
            exec strace -f -qq -o /dev/null -e trace="$SET" -e inject="$SET:signal=KILL:when=$SDTE_KILL_AT" -- "$REAL" "$@"
        fi
        exec strace -f -qq -o "${SDTE_STRACE_LOG:-/dev/null}" -e trace="$SET" -- "$REAL" "$@"
        ;;
esac
exec "$REAL" "$@"
