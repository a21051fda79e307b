# shellcheck shell=bash
# Sourced by the scripts that drive a booted test container (tests/package/run.sh and the files it
# sources, tests/securedrop/testinfra.sh): the two helpers they all need, in one place.

# container_exec LEADER CMD...: CMD inside the container whose leader PID is LEADER (from boot.sh),
# in all its namespaces, with a clean environment.
container_exec() {
    local leader=$1
    shift
    nsenter -t "$leader" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# wait_for DEADLINE-SECONDS CMD...: until CMD succeeds, at most that long (polled every 0.1 s).
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
