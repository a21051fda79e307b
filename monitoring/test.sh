#!/usr/bin/env bash
# The monitoring side (suite `monitoring` of scripts/test.sh; run as root on Debian 12):
# alerting rules (promtool check/test rules, conventions, every alert firing and not firing, and
# mutants that the tests must catch), the sample Alertmanager configuration (amtool check-config,
# routes tests, and its inhibitions on a real Alertmanager on 127.0.0.1), the Grafana dashboard
# (lint, every query through promtool's PromQL parser), the Prometheus configuration template
# (promtool check config), the optional blackbox module (blackbox_exporter --config.check), the
# tor_monitoring Ansible role under Molecule, and the end-to-end test on the private Tor network
# (on copies of the rules and configurations with every duration divided by 10; the promtool tests
# above pin the real durations).
# Every check that runs promtool, and the end-to-end test, run again with Prometheus 3 (Debian's 3.5
# from the testing suite, forky, unpacked by monitoring/prometheus3.sh; Debian 13 ships 2.53),
# those lines marked "(Prometheus 3.5)". Without it (no archive and no copy unpacked before) they
# say "NOT run: why" and that counts as one failure; SDTE_SKIP_PROM3=1 skips them without failing.
# Installs Debian's prometheus, prometheus-alertmanager, prometheus-blackbox-exporter without
# letting their services start (their defaults listen on every address); every server it starts
# listens on 127.0.0.1 and is stopped by PID. Ends with "N passed, M failed".
#
# Usage: monitoring/test.sh [STEP...]   (default: every step, in this order)
#   lint rules alertmanager dashboard config molecule e2e
# Each check's line ends with its time ("ok: NAME (2.1 s)"), and a closing table gives each
# step's. The Molecule step starts first, in the background (systemd-nspawn --private-network: no
# port on the host's loopback; its own lock), and is collected at the end, so it overlaps the
# other steps.
# The step_* functions are called by name ("step_$s"), and the helpers defined in them from there.
# shellcheck disable=SC2317
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here" || exit 1
py=/usr/bin/python3

# shellcheck source=scripts/lib/apt.sh
. ../scripts/lib/apt.sh
tools=(cmd:promtool:prometheus cmd:amtool:prometheus-alertmanager
    cmd:prometheus-blackbox-exporter:prometheus-blackbox-exporter cmd:yamllint:yamllint
    cmd:shellcheck:shellcheck
    # The end-to-end test's private Tor network.
    cmd:tor:tor cmd:ip:iproute2 cmd:openssl:openssl
    py:yaml:python3-yaml py:jinja2:python3-jinja2)
if [ -n "$(missing_packages "${tools[@]}")" ]; then
    # No service may start on install.
    need_packages --no-services "${tools[@]}" ||
        { echo "apt-get install failed" >&2; echo "0 passed, 1 failed"; exit 1; }
    # And none starts at the next boot either.
    if [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus prometheus-alertmanager prometheus-blackbox-exporter \
            >/dev/null 2>&1 || true
    fi
fi

steps_all=(lint rules alertmanager dashboard config molecule e2e)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${steps_all[@]}")
for s in "${steps[@]}"; do
    case " ${steps_all[*]} " in
        *" $s "*) ;;
        *) echo "unknown step $s (${steps_all[*]})" >&2; echo "0 passed, 1 failed"; exit 1 ;;
    esac
done
selected() { case " ${steps[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

tmp=$(mktemp -d)
molecule_pid=''
# The background Molecule run is stopped (by its PID; molecule.sh's own trap removes its
# container) if this script ends early.
trap '[ -z "$molecule_pid" ] || kill "$molecule_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0
failed=0
# now: seconds since the epoch, to the millisecond; since T: the seconds since T, one decimal.
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# t NAME COMMAND...: one check; its output is shown only when it fails.
t() {
    local name=$1 s0
    shift
    s0=$(now)
    if "$@" >"$tmp/out" 2>&1; then
        passed=$((passed + 1))
        echo "ok: $name ($(since "$s0") s)"
    else
        failed=$((failed + 1))
        echo "FAIL: $name ($(since "$s0") s)"
        sed 's/^/    /' "$tmp/out" | tail -40
    fi
}
# n NAME COMMAND...: a check that must fail (a broken input is caught).
n() {
    local name=$1 s0
    shift
    s0=$(now)
    if "$@" >"$tmp/out" 2>&1; then
        failed=$((failed + 1))
        echo "FAIL: $name (was accepted; $(since "$s0") s)"
    else
        passed=$((passed + 1))
        echo "ok: $name ($(since "$s0") s)"
    fi
}

# --- Prometheus 3 -------------------------------------------------------------------------------
# Monitoring hosts run Prometheus 3 today, whose range selectors leave out their start (and whose
# lookback does too): docs/monitoring.md, "Prometheus 3". promtool 2.42 stays on PATH; the 3.x one
# is named explicitly (check_rules.py takes it from $PROMTOOL, lint_dashboard.py from PATH).
# Fetched once, by the first step that needs it.
p3='' p3_why='' p3_label=3.5 p3_secs=0 p3_done=''
need_p3() {
    [ -z "$p3_done" ] || return 0
    p3_done=1
    if [ "${SDTE_SKIP_PROM3:-0}" = 1 ]; then
        p3_why="SDTE_SKIP_PROM3=1"
        echo "skipped: Prometheus 3 (SDTE_SKIP_PROM3=1)"
        return 0
    fi
    local s0=$SECONDS
    if p3=$(bash prometheus3.sh 2>"$tmp/p3.err"); then
        p3_label=$("$p3" --version 2>&1 | sed -n '1s/.*version \([0-9]*\.[0-9]*\).*/\1/p')
        passed=$((passed + 1))
        echo "ok: Prometheus $p3_label for the checks marked so: $("$p3" --version 2>&1 | head -1), $p3"
        grep 'using the copy unpacked before' "$tmp/p3.err" | sed 's/^/    /' || true
    else
        p3=''
        p3_why=$(tail -1 "$tmp/p3.err")
        p3_why=${p3_why#prometheus3.sh: }
        failed=$((failed + 1))
        echo "FAIL: Prometheus 3 (monitoring/prometheus3.sh; SDTE_SKIP_PROM3=1 skips its checks)"
        sed 's/^/    /' "$tmp/p3.err" | tail -20
    fi
    p3_secs=$((p3_secs + SECONDS - s0))
}
# t3 / n3 NAME COMMAND...: t / n with Prometheus 3 ("$p3" in COMMAND), or a "NOT run" line.
t3() {
    local name="$1 (Prometheus $p3_label)" s0=$SECONDS
    shift
    if [ -n "$p3" ]; then t "$name" "$@"; else echo "NOT run: $name: $p3_why"; fi
    p3_secs=$((p3_secs + SECONDS - s0))
}
n3() {
    local name="$1 (Prometheus $p3_label)" s0=$SECONDS
    shift
    if [ -n "$p3" ]; then n "$name" "$@"; else echo "NOT run: $name: $p3_why"; fi
    p3_secs=$((p3_secs + SECONDS - s0))
}

step_lint() {
    # --- lint -------------------------------------------------------------------------------------
    t "yamllint monitoring/" yamllint -s -c ../.yamllint .
    # From the top, as scripts/shellcheck.sh runs it: the sourced scripts/lib/apt.sh is followed.
    t "shellcheck monitoring/test.sh" sh -c 'cd .. && shellcheck -x monitoring/test.sh'
    t "python scripts parse" $py -c 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]' \
        check_rules.py lint_dashboard.py dashboard_mutants.py alertmanager_live.py render.py
}

step_rules() {
    # --- alerting rules ---------------------------------------------------------------------------
    t "promtool check rules" promtool check rules rules/*.rules.yml
    t "promtool test rules (every alert firing and not firing)" promtool test rules tests/*.test.yml
    t "rules follow the mixin conventions, cover every required alert, have runbook sections and docs" \
        $py check_rules.py style
    t "every alert has a firing and a not-firing test case" $py check_rules.py coverage
    t "the rule tests catch every mutant (alert never firing, for: dropped, for: one evaluation off)" \
        $py check_rules.py mutants
    t "the monitoring host's tor-broken alert fires an evaluation before the server alerts it holds back" \
        $py check_rules.py ordering
    $py - rules/securedrop-tor.rules.yml "$tmp/slow-monitor.rules.yml" <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for g in doc["groups"]:
    for r in g["rules"]:
        if r.get("alert") == "SecureDropTorMonitoringHostTorBroken":
            r["for"] = "4m"
yaml.safe_dump(doc, open(sys.argv[2], "w"))
EOF
    n "... and that check fails when its for: is 4m" $py check_rules.py ordering "$tmp/slow-monitor.rules.yml"
    t "... and it keeps firing until the server alerts it held back have resolved" $py check_rules.py recovery
    n "... and that check fails when its keep_firing_for is 4m" sh -c \
        "sed 's/keep_firing_for: .*/keep_firing_for: 4m/' rules/securedrop-tor.rules.yml >'$tmp/short-keep.rules.yml' &&
        $py check_rules.py recovery '$tmp/short-keep.rules.yml' rules/securedrop-tor-blackbox.rules.yml"
    sed 's/\[3m\]) == 0$/[3m]) == = 0/' rules/securedrop-tor.rules.yml >"$tmp/bad.rules.yml"
    t "... the broken copy differs from the rules (so the next check tests something)" \
        sh -c "! cmp -s rules/securedrop-tor.rules.yml '$tmp/bad.rules.yml'"
    n "promtool check rules rejects a broken expression" promtool check rules "$tmp/bad.rules.yml"
    # The same with Prometheus 3.
    t3 "promtool check rules" "$p3" check rules rules/*.rules.yml
    t3 "promtool test rules (every alert firing and not firing)" "$p3" test rules tests/*.test.yml
    t3 "the rule tests catch every mutant" env PROMTOOL="$p3" $py check_rules.py mutants
    n3 "promtool check rules rejects a broken expression" "$p3" check rules "$tmp/bad.rules.yml"
}

step_alertmanager() {
    # --- Alertmanager -----------------------------------------------------------------------------
    am=alertmanager/alertmanager.yml
    t "amtool check-config" amtool check-config "$am"
    # route LABELS... -> RECEIVER
    route() {
        local want=$1
        shift
        amtool config routes test --config.file="$am" --verify.receivers="$want" "$@"
    }
    t "route: critical -> securedrop-admin-page" \
        route securedrop-admin-page alertname=SecureDropTorExporterUnreachable severity=critical scope=server instance=app
    t "route: the monitoring host's tor -> securedrop-admin-page" \
        route securedrop-admin-page alertname=SecureDropTorMonitoringHostTorBroken severity=critical scope=monitoring-host
    t "route: warning -> securedrop-admin-mail" \
        route securedrop-admin-mail alertname=SecureDropTorBootstrapStuck severity=warning scope=server instance=mon
    t "route: info -> null" \
        route null alertname=SecureDropTorVersionNotRecommended severity=info scope=server
    t "route: no severity -> securedrop-admin-mail (the default)" route securedrop-admin-mail alertname=Other
    n "route test fails for a wrong receiver" \
        route securedrop-admin-mail alertname=SecureDropTorNoCircuits severity=critical
    t "route: Watchdog -> watchdog only (its own receiver, never the admin's mail)" \
        route watchdog alertname=Watchdog severity=info scope=monitoring-host
    $py - "$am" "$tmp/no-watchdog-route.yml" <<'EOF'
import sys, yaml
conf = yaml.safe_load(open(sys.argv[1]))
conf["route"]["routes"] = [r for r in conf["route"]["routes"] if r["receiver"] != "watchdog"]
yaml.safe_dump(conf, open(sys.argv[2], "w"))
EOF
    n "... and that route test fails without the Watchdog's route" \
        amtool config routes test --config.file="$tmp/no-watchdog-route.yml" --verify.receivers=watchdog \
        alertname=Watchdog severity=info scope=monitoring-host
    t "route: the alerting pipeline's own alerts -> securedrop-admin-page" \
        route securedrop-admin-page alertname=SecureDropTorAlertmanagerNotificationsFailing \
        severity=critical scope=monitoring-host integration=email
    # The mail itself goes through a real Postfix into a mailbox in the Molecule scenario below.
    t "the sample mails a local relay on loopback without TLS; subject and text name alert and server" \
        $py -c 'import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
g = c["global"]
assert g["smtp_smarthost"] == "127.0.0.1:25" and g["smtp_require_tls"] is False, g
for r in c["receivers"]:
    for e in r.get("email_configs", []):
        assert ".CommonLabels.alertname" in e["headers"]["Subject"], r
        assert ".Labels.instance" in e["headers"]["Subject"], r
        assert ".Labels.alertname" in e["text"] and ".Labels.instance" in e["text"], r
        assert "GeneratorURL" not in e["text"] and e["html"] == "", r
assert [r for r in c["receivers"] if r["name"] == "watchdog"] == [{"name": "watchdog"}]' "$am"
    t "inhibitions and routes (the Watchdog's too) on a real Alertmanager (webhook receivers on 127.0.0.1)" \
        $py alertmanager_live.py
    $py - "$am" "$tmp/no-inhibit.yml" <<'EOF'
import sys, yaml
conf = yaml.safe_load(open(sys.argv[1]))
conf["inhibit_rules"] = [r for r in conf["inhibit_rules"]
                         if "SecureDropTorMonitoringHostTorBroken" not in str(r["source_matchers"])]
yaml.safe_dump(conf, open(sys.argv[2], "w"))
EOF
    n "... and that check fails without the monitoring-host inhibition" \
        env ALERTMANAGER_CONFIG="$tmp/no-inhibit.yml" $py alertmanager_live.py monitoring_host_broken
    n "... and the Watchdog reaches the admin's receivers without its own route" \
        env ALERTMANAGER_CONFIG="$tmp/no-watchdog-route.yml" $py alertmanager_live.py watchdog
}

step_dashboard() {
    # --- Grafana dashboard ------------------------------------------------------------------------
    dash=grafana/securedrop-tor.json
    t "dashboard lint (datasource variable, variables used, queries, uid, titles, rows)" \
        $py lint_dashboard.py "$dash" --rules "$tmp/dashboard.rules.json"
    t "every dashboard query parses (promtool check rules)" promtool check rules "$tmp/dashboard.rules.json"
    t3 "every dashboard query parses (promtool check rules)" "$p3" check rules "$tmp/dashboard.rules.json"
    # Each lint rule can fail: break the dashboard one way at a time.
    mutate() {
        $py - "$dash" "$tmp/bad.json" "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
what = sys.argv[3]
panels = [p for p in d["panels"] if p["type"] != "row"]
if what == "uid":
    d["uid"] = ""
elif what == "datasource":
    panels[0]["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
elif what == "target-datasource":
    panels[1]["targets"][0]["datasource"] = {"type": "prometheus", "uid": "abc"}
elif what == "no-query":
    panels[2]["targets"] = []
elif what == "title":
    panels[3]["title"] = ""
elif what == "unused-variable":
    for p in panels:
        for t in p["targets"]:
            t["expr"] = t["expr"].replace('instance=~"$instance"', 'instance=~".+"')
    d["templating"]["list"][2]["query"]["query"] = "label_values(tor_up, instance)"
elif what == "no-datasource-variable":
    d["templating"]["list"] = d["templating"]["list"][1:]
elif what == "onion-label":
    panels[0]["targets"][0]["expr"] = 'sum by (onion) (tor_up)'
elif what == "row":
    d["panels"] = [p for p in d["panels"] if p.get("title") != "Coarse traffic"]
json.dump(d, open(sys.argv[2], "w"))
EOF
    }
    for m in uid datasource target-datasource no-query title unused-variable no-datasource-variable onion-label row; do
        mutate "$m"
        n "dashboard lint catches: $m" $py lint_dashboard.py "$tmp/bad.json"
    done
    t "the dashboard lint catches each mutant of dashboard_mutants.py; stats right for a dead server (promtool)" \
        $py lint_dashboard.py --self-test "$dash"
    t3 "... the same, the dead-server scenario under promtool test rules" \
        env PATH="${p3%/*}:$PATH" $py lint_dashboard.py --self-test "$dash"
    $py lint_dashboard.py "$dash" --queries >/dev/null
    echo 'up{job=~"x"' | $py -c 'import json,sys; print(json.dumps({"groups":[{"name":"q","rules":[{"record":"q:bad","expr":sys.stdin.read()}]}]}))' \
        >"$tmp/bad-query.json"
    n "promtool rejects an unparsable query" promtool check rules "$tmp/bad-query.json"
    n3 "promtool rejects an unparsable query" "$p3" check rules "$tmp/bad-query.json"
}

step_config() {
    # --- Prometheus configuration and blackbox ----------------------------------------------------
    $py render.py prometheus/prometheus.yml.j2 prometheus/example-vars.yml \
        tor_monitoring_rules_dir="$here/rules" >"$tmp/prometheus.yml"
    t "prometheus.yml.j2 renders and passes promtool check config (with the rules)" \
        promtool check config "$tmp/prometheus.yml"
    t "... and with only the defaults (no servers yet)" \
        sh -c "$py render.py prometheus/prometheus.yml.j2 /dev/null >'$tmp/p0.yml' && promtool check config '$tmp/p0.yml'"
    t3 "prometheus.yml.j2 rendered passes promtool check config (with the rules)" \
        "$p3" check config "$tmp/prometheus.yml"
    t3 "... and with only the defaults" "$p3" check config "$tmp/p0.yml"
    no_onion_label() {
        $py - "$1" <<'EOF'
import re, sys, yaml
conf = yaml.safe_load(open(sys.argv[1]))
bad = []
for job in conf["scrape_configs"]:
    for sc in job.get("static_configs", []):
        for target in sc["targets"]:
            if ".onion" in target and not sc.get("labels", {}).get("instance"):
                bad.append(f"{job['job_name']}: {target} has no instance label")
        for k, v in sc.get("labels", {}).items():
            if re.search(r"[a-z2-7]{56}", str(v)):
                bad.append(f"{job['job_name']}: label {k} holds an onion address")
if not any(j["job_name"] == "tor-exporter-monitor" for j in conf["scrape_configs"]):
    bad.append("no tor-exporter-monitor job")
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
    }
    t "every onion target has its instance set (no onion address becomes a label)" \
        no_onion_label "$tmp/prometheus.yml"
    # The end-to-end test's copies with every duration divided by 10 (e2e.py scaled): the same files
    # in all else, and the order kept. The check is shown to catch a copy that changed more.
    t "the end-to-end test's scaled copies differ from the shipped files in their durations only" \
        $py e2e.py scaled 10 1s "$tmp/scaled" "$tmp/prometheus.yml" "$am" rules/*.rules.yml
    scaled_rules=$tmp/scaled/rules/securedrop-tor.rules.yml
    mutate_scaled() {
        $py - "$scaled_rules" "$tmp/scaled-bad.yml" "$1" <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
rule = doc["groups"][0]["rules"][0]
if sys.argv[3] == "expr":
    rule["expr"] = rule["expr"].replace("== 0", "< 1")
else:
    rule["for"] = "5m"
yaml.safe_dump(doc, open(sys.argv[2], "w"))
EOF
    }
    mutate_scaled expr
    n "... and that check catches a changed expression" \
        $py e2e.py same-but-durations 10 rules rules/securedrop-tor.rules.yml "$tmp/scaled-bad.yml"
    mutate_scaled for
    n "... and a for: left unscaled" \
        $py e2e.py same-but-durations 10 rules rules/securedrop-tor.rules.yml "$tmp/scaled-bad.yml"
    n "... and an expression's window left unscaled" sh -c \
        "sed 's/\[\([0-9]*\)s\]/[\10s]/' '$scaled_rules' >'$tmp/scaled-window.yml' &&
        $py e2e.py same-but-durations 10 rules rules/securedrop-tor.rules.yml '$tmp/scaled-window.yml'"
    t "blackbox module passes blackbox_exporter --config.check" \
        prometheus-blackbox-exporter --config.check --config.file=blackbox/blackbox.yml
    t "the blackbox module goes through tor with skip_resolve_phase_with_proxy" \
        sh -c "grep -q 'skip_resolve_phase_with_proxy: true' blackbox/blackbox.yml && grep -q 'proxy_url: socks5://' blackbox/blackbox.yml"
    sed 's/skip_resolve_phase_with_proxy/skip_resolve_phase_with_prox/' blackbox/blackbox.yml >"$tmp/bb.yml"
    n "blackbox_exporter --config.check rejects a misspelt key" \
        prometheus-blackbox-exporter --config.check --config.file="$tmp/bb.yml"
}

step_e2e() {
    # --- End to end on the private Tor network ----------------------------------------------------
    # tests/privnet_monitoring.rs: Prometheus through the client-authorized metrics onion, the rules,
    # the dashboard's queries, Alertmanager and a webhook, with every duration of the rules and both
    # configurations divided by 10 (about 4 minutes), with Debian 12's Prometheus 2.42 and
    # Prometheus 3's server side by side on one private network (PROMETHEUS=2.42's,3's; each with
    # its own Alertmanager, webhook, folder and ports, each checked on its own through the same
    # outages). MONITORING_E2E=0 skips it.
    local name="end to end: Prometheus through the metrics onion, alert to the webhook, resolved"
    local servers=prometheus e0 p3_server
    if [ "${MONITORING_E2E:-1}" = 0 ]; then
        echo "skipped: end-to-end test on the private Tor network (MONITORING_E2E=0)"
        return 0
    fi
    if [ -z "$p3" ]; then
        echo "NOT run: $name (Prometheus $p3_label): $p3_why"
    elif p3_server=$(bash prometheus3.sh prometheus 2>"$tmp/p3.err"); then
        servers=prometheus,$p3_server
        name="$name (Prometheus 2.42 and $p3_label side by side)"
    else
        failed=$((failed + 1))
        echo "FAIL: $name (Prometheus $p3_label): no Prometheus 3 server (monitoring/prometheus3.sh prometheus)"
        sed 's/^/    /' "$tmp/p3.err" | tail -20
    fi
    e0=$(now)
    # Its figures (timings, connections) are shown whether it passes or not.
    if (cd .. && PROMETHEUS=$servers cargo test --locked --test privnet_monitoring -- --ignored --nocapture) \
        >"$tmp/e2e.log" 2>&1; then
        passed=$((passed + 1))
        echo "ok: $name ($(since "$e0") s)"
        grep -E '^(prometheus: |connections|(firing|resolved) after)|^  \(|^ok: .*(fire|reached|holds|got|scraped)' \
            "$tmp/e2e.log" | sed 's/^/    /'
        grep -o -E 'finished in [0-9.]+s' "$tmp/e2e.log" | sed 's/^/    the test /'
    else
        failed=$((failed + 1))
        echo "FAIL: $name ($(since "$e0") s)"
        grep -v -E '^ok: ' "$tmp/e2e.log" | tail -80 | sed 's/^/    /'
    fi
}

# --- The monitoring host's Ansible role ---------------------------------------------------------
# monitoring/molecule.sh: yamllint, ansible-lint and `molecule test` of molecule/monitoring (the
# tor_monitoring role on a booted systemd container; about 4 minutes). Started first, in the
# background: it shares nothing with the other steps (its container has its own network and a
# fixed name under molecule.sh's lock; the end-to-end test's tors run in a namespace of their
# own), so it overlaps them. MONITORING_MOLECULE=0 skips it.
molecule_name="the tor_monitoring role: lint, converge, idempotence, verify (Molecule, one container)"
molecule_start() {
    if [ "${MONITORING_MOLECULE:-1}" = 0 ]; then
        echo "skipped: the tor_monitoring role under Molecule (MONITORING_MOLECULE=0)"
        return 0
    fi
    molecule_t0=$(now)
    bash molecule.sh >"$tmp/molecule.log" 2>&1 &
    molecule_pid=$!
    echo "started: $molecule_name (in the background, collected at the end)"
}
molecule_collect() {
    [ -n "$molecule_pid" ] || return 0
    local rc=0
    wait "$molecule_pid" || rc=$?
    molecule_pid=''
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok: $molecule_name ($(since "$molecule_t0") s since its start)"
    else
        failed=$((failed + 1))
        echo "FAIL: $molecule_name (exit $rc, $(since "$molecule_t0") s since its start)"
        sed 's/^/    /' "$tmp/molecule.log" | tail -60
    fi
}

# --- The steps, timed -----------------------------------------------------------------------------
table=()
! selected molecule || molecule_start
for s in "${steps[@]}"; do
    [ "$s" != molecule ] || continue
    case $s in rules | dashboard | config | e2e) need_p3 ;; esac
    step_t0=$(now)
    "step_$s"
    table+=("$s $(since "$step_t0")")
done
if selected molecule; then
    step_t0=$(now)
    molecule_collect
    table+=("molecule $(since "${molecule_t0:-$step_t0}") (waited $(since "$step_t0") s at the end)")
fi

echo "time per step (s; $(uptime | sed 's/.*load/load/')):"
printf '    %s\n' "${table[@]}"
[ -z "$p3" ] || echo "the Prometheus $p3_label checks took ${p3_secs} s (fetch included; its" \
    "end-to-end run is the 2.42 one's)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
