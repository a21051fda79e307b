# shellcheck shell=bash
# Sourced through BASH_ENV by every non-interactive bash that dpkg starts (package tests only, in
# the test container). In the package's postinst, and only there, a DEBUG trap counts the commands
# of the script's own shell (functions included: set -T; subshells are not counted) and:
# - with SDTE_KILL_LOG, appends "INDEX DEPTH LINE:N COMMAND" for each one to that file (DEPTH: how
#   many functions deep; LINE:N: the Nth command run from that line of the script);
# - with SDTE_KILL_AT=LINE:N, kills the script with SIGKILL just before that command, as a power
#   loss or the OOM killer would: no trap of the script runs. LINE:N rather than an index: a wait
#   loop that runs a varying number of times does not move the commands after it.
__sdte_debug() {
    [ "$BASHPID" = "$$" ] || return 0
    __sdte_n=$((__sdte_n + 1))
    __sdte_seen[$1]=$((${__sdte_seen[$1]:-0} + 1))
    if [ -n "${SDTE_KILL_LOG:-}" ]; then
        printf '%s %s %s:%s %s\n' "$__sdte_n" "$((${#FUNCNAME[@]} - 1))" "$1" "${__sdte_seen[$1]}" \
            "${BASH_COMMAND//$'\n'/ }" >>"$SDTE_KILL_LOG"
    fi
    if [ "$1:${__sdte_seen[$1]}" = "${SDTE_KILL_AT:-}" ]; then kill -9 "$$"; fi
}
if [[ "${0##*/}" == securedrop-tor-exporter.postinst ]] &&
    { [ -n "${SDTE_KILL_LOG:-}" ] || [ -n "${SDTE_KILL_AT:-}" ]; }; then
    set -T
    __sdte_n=0
    declare -A __sdte_seen=()
    trap '__sdte_debug "$LINENO"' DEBUG
fi
