# shellcheck shell=bash
# The opt-in recovery in the booted container, sourced by run.sh (uses its cx, eq, check, ok,
# nok, section, wait_tor_up, tor_pid, metrics): securedrop-tor-recover.timer off after install;
# then, time-scaled (the exporter's holds /600 by a config drop-in, the recovery's durations by a
# drop-in of its unit), the real unit under its real sandbox with the real systemctl and tor:
# a tor frozen with SIGSTOP is restarted and answers again (tor_up 1); a tor that no restart can
# cure (the container's tor has no network, DisableNetwork 1, so it never bootstraps) gets one
# reload, exactly the bounded number of restarts and one line saying it gave up, then nothing
# more; the counts reach /metrics. Everything is undone at the end.

RECOVER=securedrop-tor-recover
RECOVER_DROPIN_DIR=/etc/systemd/system/$RECOVER.service.d
SCALED_CONF=/etc/$PKG/config.d/70-pkgtest-scaled.toml

# recover_once: one run of the unit, as the timer starts it (oneshot: returns when it is done)
recover_once() { cx systemctl start "$RECOVER.service" >/dev/null 2>&1; }
# recover_until DEADLINE CMD...: run the unit every 0.5 s (the timer's minute, scaled) until CMD
recover_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        recover_once
        sleep 0.5
    done
}
recover_lines() { cx journalctl -u "$RECOVER.service" --no-pager -o cat 2>/dev/null | grep '^tor health: ' || true; }
count_lines() { recover_lines | grep -c -- "$1" || true; }
pid_is_not() { [ "$(tor_pid)" != "$1" ] && [ "$(tor_pid)" != 0 ]; }
gave_up() { [ "$(count_lines 'alert recovery_exhausted')" -ge 1 ]; }
recovery_counted() {
    local m
    m=$(metrics 2>/dev/null) || return 1
    grep -qx 'tor_exporter_recovery_actions_total{action="restart"} 2' <<<"$m" &&
        grep -qx 'tor_exporter_recovery_actions_total{action="reload"} 1' <<<"$m"
}

recovery_checks() {
    section "opt-in recovery (securedrop-tor-recover), time-scaled"
    eq "the recovery timer is installed and off" "disabled inactive" \
        "$(cx systemctl is-enabled $RECOVER.timer 2>&1) $(cx systemctl is-active $RECOVER.timer 2>&1)"
    cx sh -c "printf '[health]\nhold_divisor = 600\n[tor]\ntimeout = \"1s\"\n' >$SCALED_CONF"
    cx mkdir -p "$RECOVER_DROPIN_DIR"
    # The timer's minute scaled to 0.5 s: more starts than systemd's default limit (5 in 10 s)
    # allows, which refused a run on a quiet machine and ended the section; the scaled unit has
    # no start limit.
    cx sh -c "printf '[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=\nExecStart=/usr/bin/$PKG recover --reload-after 3s --restart-after 6s --restart-every 4s --max-restarts 2 --settle 3s\n' >$RECOVER_DROPIN_DIR/50-pkgtest.conf"
    cx systemctl daemon-reload
    cx rm -f "/var/lib/$PKG-recover/state"
    # The sections before restart the exporter many times within seconds (port moves, a held
    # port, socket activations); on a quiet machine that is more than systemd's start limit (5 in
    # 10 s), which systemd 257 (Debian 13) then enforces on this restart. No server restarts it
    # so fast: the limit's count is reset, as an admin would with reset-failed.
    cx systemctl reset-failed "$PKG.service" 2>/dev/null || true
    cx systemctl restart "$PKG.service"
    check "/metrics shows tor_up 1 with the scaled holds" wait_tor_up

    local frozen
    frozen=$(tor_pid)
    cx kill -STOP "$frozen"
    check "a frozen tor (SIGSTOP) is restarted by the recovery within 60 s" \
        recover_until 60 pid_is_not "$frozen"
    check "... and answers again: /metrics shows tor_up 1" wait_tor_up
    eq "... after one reload and one restart" "1 1" \
        "$(count_lines 'alert recovery_reload for ') $(count_lines 'alert recovery_restart for ')"

    # The container's tor can never bootstrap (no network): the bound, then one line, then nothing.
    check "a tor no restart can cure: the recovery gives up within 60 s" recover_until 60 gave_up
    local pid_after
    pid_after=$(tor_pid)

    # 10 more runs over 5 s (longer than --restart-every): the timer's cadence, not a wait
    # (a run refused by systemd must not end the section here: the counts below say what ran)
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        recover_once || true
        sleep 0.5
    done
    eq "... exactly 2 restarts and one line saying it gave up, then nothing more" "1 2 1" \
        "$(count_lines 'alert recovery_reload for ') $(count_lines 'alert recovery_restart for ') $(count_lines 'alert recovery_exhausted for ')"
    eq "... tor left alone after that (same MainPID over 10 more runs)" "$pid_after" "$(tor_pid)"
    check "... the give-up line names the state and the count" \
        contains "2 restarts did not help" "$(recover_lines | grep recovery_exhausted)"
    check "/metrics counts the recovery's actions (1 reload, 2 restarts)" wait_for 60 recovery_counted

    # undo: no drop-ins, no state, the exporter on its real holds, tor running
    cx rm -rf "$RECOVER_DROPIN_DIR" "$SCALED_CONF" "/var/lib/$PKG-recover"
    cx systemctl daemon-reload
    cx systemctl restart tor@default
    cx systemctl reset-failed "$PKG.service" 2>/dev/null || true
    cx systemctl restart "$PKG.service"
    check "after the recovery checks: /metrics shows tor_up 1" wait_tor_up
}
