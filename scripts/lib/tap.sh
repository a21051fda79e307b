# shellcheck shell=bash
# The TAP-style lines of the shell test suites (tests/package/run.sh, tests/securedrop/run.sh),
# sourced by them: `ok - …` / `not ok - …` a check, `# …` a comment, and a closing count that
# scripts/test.sh reads. Set T0=$SECONDS before sourcing (section shows the time since).
#
#   ok DESCRIPTION / nok DESCRIPTION      count a passed / failed check and print its line
#   check DESCRIPTION COMMAND...          passes when COMMAND succeeds
#   eq DESCRIPTION EXPECTED ACTUAL        passes when the two strings are equal (says both if not)
#   section TITLE                         a comment line with the time since T0
#   summary                               the total time and "N passed, M failed", once
#   summary_at_exit STATUS                in an EXIT trap: a script stopping early (STATUS not 0) before
#                                         its summary is a failed check; then the summary, once
# shellcheck disable=SC2034  # PASS and FAIL are read by the scripts that source this file
PASS=0
FAIL=0
SUMMARY_DONE=
: "${T0:=$SECONDS}"

ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
nok() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else nok "$desc"; fi
}
eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (expected '$2', got '$3')"; fi
}
section() { echo "# $* ($((SECONDS - T0))s)"; }
summary() {
    [ -z "$SUMMARY_DONE" ] || return 0
    SUMMARY_DONE=1
    echo "# total time $((SECONDS - T0))s"
    echo "$PASS passed, $FAIL failed"
}
summary_at_exit() {
    [ -z "$SUMMARY_DONE" ] || return 0
    [ "$1" -eq 0 ] || nok "${0##*/} stopped early (exit $1)"
    summary
}
