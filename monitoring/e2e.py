#!/usr/bin/python3
"""Helper of tests/privnet_monitoring.rs (the end-to-end test on the private Tor network).

Run inside the test's network namespace, where Prometheus, Alertmanager and the webhook listen on
127.0.0.1. The onion addresses of the network are read from the file named by $E2E_ONIONS (one
a line), never from the command line.

    e2e.py am-config WEBHOOK_URL OUT        the sample Alertmanager configuration, every receiver
                                            a webhook to WEBHOOK_URL/<receiver>
    e2e.py webhook PORT OUT                 receive webhooks on 127.0.0.1:PORT, one JSON a line
                                            to OUT (runs until killed)
    e2e.py healthy PROM DASHBOARD RULES...  the checks of a healthy network (see healthy())
    e2e.py alert OUT ALERT INSTANCE STATUS SECONDS [SINCE AT_LEAST]
                                            wait for a notification of ALERT{instance=INSTANCE}
                                            with status firing/resolved; no onion address in it;
                                            received AT_LEAST seconds after SINCE (Unix time)
    e2e.py scrapes PROM JOB SINCE N         PROM has N samples of up{job=JOB} since SINCE (waits
                                            up to 120 s for them)
    e2e.py scaled FACTOR REFRESH OUT PROMETHEUS ALERTMANAGER RULES...
                                            OUT/prometheus.yml, OUT/alertmanager.yml and
                                            OUT/rules/<each rule file>: copies with every duration
                                            divided by FACTOR (see scaled()); prints "= ..." lines
    e2e.py same-but-durations FACTOR KIND ORIGINAL COPY
                                            COPY is ORIGINAL with its durations divided by FACTOR
                                            and nothing else changed (KIND: rules, prometheus,
                                            alertmanager)
    e2e.py order PROM SINCE FIRST INSTANCE SECOND INSTANCE SECONDS
                                            wait for SECOND to fire in Prometheus; FIRST fired
                                            since the Unix time SINCE at least one evaluation
                                            interval before it
    e2e.py inhibited AM ALERT INSTANCE BY SECONDS
                                            wait for Alertmanager to hold ALERT{instance=INSTANCE}
                                            back, inhibited by the alert BY
    e2e.py notifications OUT ALERT:INSTANCE:STATUS...
                                            the webhook got exactly these, in this order (the
                                            Watchdog's own receiver left out: it always fires)
    e2e.py recovery PROM AM OUT SINCE MONITOR_ALERT MONITOR_INSTANCE QUIET SECONDS
                                            the monitoring host's tor works again since SINCE:
                                            no server alert (scope="server") reaches any receiver
                                            until MONITOR_ALERT has resolved and QUIET more
                                            seconds have passed (see recovery())

Prints "ok: ..." / "FAIL: ..." lines and exits 1 if any check failed.
"""

import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import check_rules  # noqa: E402

failures = []
# Where a duration sits in each kind of file the test scales (paths as differences() spells
# them). Everything else must come through unchanged: a label or annotation that happens to be
# called `for` is not a duration.
DURATIONS = {
    "rules": re.compile(r"^\$\.groups\[\d+\]\.(interval|rules\[\d+\]\.(for|keep_firing_for))$"),
    "prometheus": re.compile(r"^\$\.(global|scrape_configs\[\d+\])\."
                             r"(scrape_interval|scrape_timeout|evaluation_interval)$"),
    "alertmanager": re.compile(r"^\$\.(global\.resolve_timeout|route(\.routes\[\d+\])*\."
                               r"(group_wait|group_interval|repeat_interval))$"),
}
# Set by hand only, to show that the recovery leg fails without it: the scaled copy of the rules
# drops the monitoring-host alert's keep_firing_for (and the checks that would refuse that copy
# say so instead of failing). docs/monitoring.md, "End-to-end test".
DROP_KEEP_FIRING_FOR = os.environ.get("E2E_DROP_KEEP_FIRING_FOR") == "1"
# Rule expressions: their range and subquery windows and offsets are durations too
# (check_rules.expr_durations); the rest of the text must come through unchanged.
EXPRESSIONS = {"rules": re.compile(r"^\$\.groups\[\d+\]\.rules\[\d+\]\.expr$")}


# The stack this run checks ("prometheus 2.42.0"): the test runs one per Prometheus server, at
# the same time, and their lines are told apart by it.
LABEL = os.environ.get("E2E_LABEL", "")


def check(ok, what):
    if not ok:
        failures.append(what)
    print(("ok: " if ok else "FAIL: ") + (f"[{LABEL}] " if LABEL else "") + what, flush=True)


def onions():
    with open(os.environ["E2E_ONIONS"], encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def has_onion(text):
    return any(o in text for o in onions())


def api(prom, path, **params):
    url = f"{prom}{path}?{urllib.parse.urlencode(params)}" if params else prom + path
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def query(prom, q):
    """(status, result list) of an instant query."""
    try:
        r = api(prom, "/api/v1/query", query=q)
        return r["status"], r["data"]["result"]
    except urllib.error.HTTPError as e:  # 400: the query does not parse
        return f"http {e.code}: {e.read()[:200]!r}", []
    except OSError as e:
        return f"error {e}", []


def wait(what, cond, seconds):
    end = time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        ok, last = cond()
        if ok:
            return True, last
        time.sleep(1)
    return False, last


def value_is(prom, q, want):
    def cond():
        status, res = query(prom, q)
        vals = [float(r["value"][1]) for r in res]
        return status == "success" and vals == [want], (status, vals)
    return cond


def healthy(prom, dashboard, rule_files):
    """The healthy network as Prometheus sees it: the server's exporter through the onion, the
    monitoring host's own exporter, every dashboard query with data, every alert expression
    valid and evaluated, no onion address in any label."""
    start = time.monotonic()
    for q, want in [
        ('up{job="securedrop-tor", instance="app"}', 1.0),
        ('tor_up{job="securedrop-tor", instance="app"}', 1.0),
        ('tor_circuit_established{job="securedrop-tor", instance="app"}', 1.0),
        ('tor_onion_service_published{job="securedrop-tor", instance="app", service="metrics"}', 1.0),
        ('tor_onion_service_published{job="securedrop-tor", instance="app", service="source"}', 1.0),
        ('up{job="tor-exporter-monitor", instance="monitor"}', 1.0),
        ('tor_up{job="tor-exporter-monitor", instance="monitor"}', 1.0),
        ('tor_circuit_established{job="tor-exporter-monitor", instance="monitor"}', 1.0),
    ]:
        ok, last = wait(q, value_is(prom, q, want), 120)
        check(ok, f"{q} == {want:g} (last: {last})")
    print(f"  ({time.monotonic() - start:.0f} s)", flush=True)

    # Every panel query, Grafana's variables replaced as lint_dashboard.py does, returns data.
    import lint_dashboard  # noqa: E402

    with open(dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    for title, q in lint_dashboard.queries(dash):
        def cond(q=q):
            status, res = query(prom, q)
            return status == "success" and len(res) > 0, (status, len(res))
        ok, last = wait(q, cond, 90)
        check(ok, f"dashboard panel {title!r} returns data: {q} (last: {last})")

    # Every alerting rule loaded, evaluated without error, and its expression a valid query.
    names = []
    for path in rule_files:
        with open(path, encoding="utf-8") as f:
            for g in yaml.safe_load(f)["groups"]:
                names += [r["alert"] for r in g["rules"] if "alert" in r]

    def evaluated():
        rules = [r for g in api(prom, "/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        done = [r for r in rules if not r.get("lastEvaluation", "").startswith("0001")]
        return len(done) == len(rules) and len(rules) > 0, rules
    ok, rules = wait("every rule evaluated", evaluated, 90)
    check(ok, "Prometheus evaluated every rule at least once")
    loaded = {r["name"] for r in rules or []}
    check(set(names) <= loaded, f"every alert of the rule files is loaded ({len(names)})")
    for r in rules or []:
        status, _ = query(prom, r["query"])
        check(r.get("health") == "ok" and status == "success",
              f"alert {r['name']}: health {r.get('health')} {r.get('lastError', '')}, query {status}")

    # No label name or value anywhere in the TSDB carries an onion address.
    labels = api(prom, "/api/v1/labels")["data"]
    bad = [n for n in labels if has_onion(n)]
    for n in labels:
        values = api(prom, f"/api/v1/label/{urllib.parse.quote(n)}/values")["data"]
        bad += [f"{n}=<onion>" for v in values if has_onion(v)]
    check(not bad and len(labels) > 5,
          f"no label in Prometheus carries an onion address ({len(labels)} label names; bad: {bad})")
    # And the firing alerts while healthy: none of ours.
    status, res = query(prom, 'ALERTS{alertname=~"SecureDropTor.*", alertstate="firing"}')
    check(status == "success" and not res,
          f"no SecureDropTor alert fires while healthy: {[r['metric'] for r in res]}")


def am_config(url, out):
    with open(os.path.join(HERE, "alertmanager", "alertmanager.yml"), encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    for r in conf["receivers"]:
        for k in [k for k in r if k != "name"]:
            del r[k]
        r["webhook_configs"] = [{"url": f"{url}/{r['name']}", "send_resolved": True}]
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump(conf, f)


def webhook(port, out):
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            payload = json.loads(body)
            payload["_receiver"] = self.path.strip("/")
            payload["_received"] = time.time()
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps(payload) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", port), Hook).serve_forever()


def alert(out, name, instance, status, seconds, since=None, at_least=0.0):
    """Waits up to SECONDS for the notification; with SINCE (Unix time: when the outage or the
    recovery began), it must have been received at least AT_LEAST seconds after it (not before
    the alert's for:)."""
    start = time.monotonic()

    def cond():
        if not os.path.exists(out):
            return False, None
        with open(out, encoding="utf-8") as f:
            for line in f:
                p = json.loads(line)
                for a in p["alerts"]:
                    if (a["labels"].get("alertname") == name
                            and a["labels"].get("instance") == instance
                            and a["status"] == status):
                        return True, (p, line)
        return False, None
    ok, found = wait(f"{name} {status}", cond, seconds)
    took = time.monotonic() - start
    check(ok, f"{name}{{instance={instance}}} {status} reached the webhook after {took:.0f} s (bound {seconds} s)")
    if ok:
        payload, line = found
        if since is not None:
            after = payload["_received"] - since
            print(f"{status} after {after:.1f} s (at least {at_least:g} s, bound {seconds} s)"
                  + (f" [{LABEL}]" if LABEL else ""), flush=True)
            check(after >= at_least, f"{name} {status} not before {at_least:g} s ({after:.1f} s)")
        check(not has_onion(line), f"the {status} notification names no onion address")
        check(payload["_receiver"] == "securedrop-admin-page",
              f"it went to {payload['_receiver']} (critical -> securedrop-admin-page)")


def scale(node, kind, factor, where="$"):
    """A copy of a parsed YAML document with every duration (DURATIONS[kind]) divided by FACTOR,
    exactly, to the millisecond."""
    if DURATIONS[kind].match(where):
        ms = check_rules.duration_ms(node)
        if ms % factor:
            raise ValueError(f"{where}: {node} is not a whole number of ms over {factor}")
        return check_rules.duration_text(ms // factor)
    if kind in EXPRESSIONS and EXPRESSIONS[kind].match(where):
        return check_rules.scale_expr(node, factor)
    if isinstance(node, dict):
        return {k: scale(v, kind, factor, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [scale(v, kind, factor, f"{where}[{i}]") for i, v in enumerate(node)]
    return node


def differences(orig, copy, kind, factor, where="$"):
    """Where COPY is not ORIG with its durations divided by FACTOR; and how many durations there
    were."""
    if DURATIONS[kind].match(where):
        try:
            ok = check_rules.duration_ms(orig) == check_rules.duration_ms(copy) * factor
        except ValueError as e:
            return [f"{where}: {e}"], 1
        return ([] if ok else [f"{where}: {orig} became {copy}, not 1/{factor} of it"]), 1
    if kind in EXPRESSIONS and EXPRESSIONS[kind].match(where) and isinstance(orig, str) \
            and isinstance(copy, str):
        spans = [check_rules.expr_durations(e) for e in (orig, copy)]
        texts = [check_rules.replace_spans(e, sp, lambda _: "<duration>")
                 for e, sp in zip((orig, copy), spans)]
        if texts[0] != texts[1] or len(spans[0]) != len(spans[1]):
            return [f"{where}: {orig!r} became {copy!r}"], 0
        diffs = []
        for (a, b), (c, d) in zip(*spans):
            o, n = orig[a:b], copy[c:d]
            if check_rules.duration_ms(o) != check_rules.duration_ms(n) * factor:
                diffs.append(f"{where}: window {o} became {n}, not 1/{factor} of it")
        return diffs, len(spans[0])
    if isinstance(orig, dict) and isinstance(copy, dict):
        diffs, count = [], 0
        if set(orig) != set(copy):
            diffs.append(f"{where}: keys {sorted(set(orig) ^ set(copy))} differ")
        for k in set(orig) & set(copy):
            d, c = differences(orig[k], copy[k], kind, factor, f"{where}.{k}")
            diffs += d
            count += c
        return diffs, count
    if isinstance(orig, list) and isinstance(copy, list):
        if len(orig) != len(copy):
            return [f"{where}: {len(orig)} items became {len(copy)}"], 0
        diffs, count = [], 0
        for i, (a, b) in enumerate(zip(orig, copy)):
            d, c = differences(a, b, kind, factor, f"{where}[{i}]")
            diffs += d
            count += c
        return diffs, count
    return ([] if orig == copy else [f"{where}: {orig!r} became {copy!r}"]), 0


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def same_but_durations(factor, kind, orig_path, copy_path):
    """Both files as Prometheus or Alertmanager parse them: the copy differs from the original in
    its durations only, each exactly divided by FACTOR."""
    diffs, count = differences(load(orig_path), load(copy_path), kind, factor)
    name = os.path.basename(orig_path)
    check(not diffs and count > 0,
          f"{name}: the copy differs only in its {count} durations, each divided by {factor}"
          + "".join(f"\n    {d}" for d in diffs[:20]))


def scaled(factor, refresh, out, prometheus, alertmanager, rule_files):
    """The test's copies of the configuration and the shipped rules, every duration divided by
    FACTOR: the rules' `for:`, `keep_firing_for:` and expression windows, Prometheus's scrape and
    evaluation intervals, Alertmanager's group waits and intervals. Each copy is checked against
    its original (the expressions, labels, routes and inhibitions are the shipped ones), and the
    scaled copy against the order the inhibition needs (check_rules.ordering_problems, with the
    test exporter's REFRESH) and against the time the inhibition must outlast
    (check_rules.recovery_problems). Prints
    "= for ALERT MS", "= evaluation_interval MS", "= scrape_interval JOB MS" and
    "= group_wait RECEIVER MS" for the test's bounds."""
    os.makedirs(os.path.join(out, "rules"), exist_ok=True)
    copies = [(prometheus, os.path.join(out, "prometheus.yml"), "prometheus"),
              (alertmanager, os.path.join(out, "alertmanager.yml"), "alertmanager")]
    copies += [(r, os.path.join(out, "rules", os.path.basename(r)), "rules") for r in rule_files]
    for src, dst, kind in copies:
        copy = scale(load(src), kind, factor)
        if kind == "rules" and DROP_KEEP_FIRING_FOR:
            for g in copy["groups"]:
                for r in g["rules"]:
                    if r.get("alert") == check_rules.MONITOR_BROKEN and r.pop("keep_firing_for", None):
                        print(f"NOTE: E2E_DROP_KEEP_FIRING_FOR=1: {r['alert']} has no"
                              " keep_firing_for in this run (a demonstration that must fail)",
                              flush=True)
        with open(dst, "w", encoding="utf-8") as f:
            yaml.safe_dump(copy, f, sort_keys=False)
        if not (kind == "rules" and DROP_KEEP_FIRING_FOR):
            same_but_durations(factor, kind, src, dst)

    prom = load(os.path.join(out, "prometheus.yml"))
    rules = [r for _, dst, kind in copies if kind == "rules"
             for g in load(dst)["groups"] for r in g["rules"] if "alert" in r]
    evaluation, monitor_scrape = check_rules.prometheus_intervals(prom)
    refresh_ms = check_rules.duration_ms(refresh)
    problems = check_rules.ordering_problems(rules, evaluation, monitor_scrape, refresh_ms)
    check(not problems, "the scaled rules keep the order the inhibition needs"
          + "".join(f"\n    {p}" for p in problems))
    # Alerts on jobs this configuration lacks (the optional probe) are not counted here.
    problems = check_rules.recovery_problems(rules, evaluation, check_rules.prometheus_jobs(prom),
                                             require_jobs=False)
    if DROP_KEEP_FIRING_FOR:
        print("NOTE: not checked: the scaled monitoring-host alert outlasts the server alerts"
              + "".join(f"\n    {p}" for p in problems), flush=True)
    else:
        check(not problems,
              "the scaled monitoring-host alert outlasts the server alerts it holds back"
              + "".join(f"\n    {p}" for p in problems))

    print(f"= evaluation_interval {evaluation}")
    for job in prom["scrape_configs"]:
        glob_ = prom.get("global", {}).get("scrape_interval", "1m")
        ms = check_rules.duration_ms(job.get("scrape_interval", glob_))
        print(f"= scrape_interval {job['job_name']} {ms}")
    for r in rules:
        print(f"= for {r['alert']} {check_rules.duration_ms(r.get('for', '0s'))}")
    am = load(os.path.join(out, "alertmanager.yml"))
    for route in [am["route"]] + am["route"].get("routes", []):
        wait = route.get("group_wait", am["route"].get("group_wait", "30s"))
        print(f"= group_wait {route['receiver']} {check_rules.duration_ms(wait)}")
        interval = route.get("group_interval", am["route"].get("group_interval", "5m"))
        print(f"= group_interval {route['receiver']} {check_rules.duration_ms(interval)}")


def firing_times(prom, name, instance, since):
    """The evaluation times (Unix seconds) since SINCE at which ALERT{instance} was firing."""
    window = max(int(time.time() - since) + 5, 5)
    status, res = query(prom, f'ALERTS{{alertname="{name}", instance="{instance}", '
                              f'alertstate="firing"}}[{window}s]')
    if status != "success":
        return status, []
    times = [float(t) for r in res for t, _ in r.get("values", [])]
    return status, sorted(t for t in times if t >= since)


def order(prom, since, first, first_instance, second, second_instance, seconds):
    """SECOND{second_instance} fires in Prometheus within SECONDS, and FIRST{first_instance} had
    been firing since SINCE at least one evaluation interval before: the order seen at the
    source, whatever the delivery does after."""
    evaluation = api(prom, "/api/v1/status/config")["data"]["yaml"]
    evaluation = check_rules.duration_ms(
        yaml.safe_load(evaluation).get("global", {}).get("evaluation_interval", "1m")) / 1000

    def cond():
        status, times = firing_times(prom, second, second_instance, since)
        return bool(times), (status, times)
    ok, (status, later) = wait(f"{second} firing", cond, seconds)
    at = f"at +{later[0] - since:.1f} s" if later else status
    check(ok, f"{second}{{instance={second_instance}}} fires in Prometheus within {seconds} s"
              f" of the stop ({at})")
    _, earlier = firing_times(prom, first, first_instance, since)
    at = f"at +{earlier[0] - since:.1f} s" if earlier else "never"
    check(bool(earlier) and bool(later) and earlier[0] + evaluation <= later[0] + 0.001,
          f"{first}{{instance={first_instance}}} fired at least one evaluation ({evaluation:g} s)"
          f" before it ({at})")


def scrapes(prom, job, since, least, seconds=120):
    """PROM has at least LEAST samples of up{job=JOB} since SINCE (Unix time): its own scrapes,
    counted in its own database; waits up to SECONDS for them."""
    def cond():
        window = max(int(time.time() - since), 1)
        status, res = query(prom, f'count_over_time(up{{job="{job}"}}[{window}s])')
        count = sum(float(r["value"][1]) for r in res)
        return status == "success" and count >= least, (count, window)
    ok, (count, window) = wait(f"{least} scrapes", cond, seconds)
    check(ok, f"Prometheus scraped job {job} {count:g} times in the last {window} s (at least {least})")


def inhibited(am, name, instance, by, seconds):
    """Alertmanager holds ALERT{instance} back, inhibited by a firing BY alert."""
    def cond():
        try:
            with urllib.request.urlopen(f"{am}/api/v2/alerts", timeout=10) as resp:
                alerts = json.loads(resp.read())
        except OSError as e:
            return False, f"error {e}"
        source = {a["fingerprint"] for a in alerts if a["labels"].get("alertname") == by
                  and a["status"]["state"] == "active"}
        target = [a for a in alerts if a["labels"].get("alertname") == name
                  and a["labels"].get("instance") == instance]
        states = [(a["status"]["state"], a["status"].get("inhibitedBy") or []) for a in target]
        held = bool(target) and all(st == "suppressed" and set(by_fp) & source
                                    for st, by_fp in states)
        return held, states
    ok, last = wait(f"{name} inhibited", cond, seconds)
    check(ok, f"Alertmanager holds {name}{{instance={instance}}} back, inhibited by {by}"
              f" (last: {last})")


def notifications(out, expected):
    """The webhook got exactly EXPECTED (alert:instance:status), in this order, leaving out the
    Watchdog's receiver (it is sent the always-firing Watchdog, by design)."""
    got = []
    with open(out, encoding="utf-8") as f:
        for line in f:
            payload = json.loads(line)
            if payload["_receiver"] == "watchdog":
                continue
            for a in payload["alerts"]:
                got.append(f"{a['labels'].get('alertname')}:{a['labels'].get('instance')}:"
                           f"{a['status']}")
    check(got == expected, f"the webhook got exactly {expected} (got {got})")


def recovery(prom, am, out, since, monitor, monitor_instance, quiet, seconds):
    """The monitoring host's tor works again since SINCE (Unix time), after an outage in which
    MONITOR{monitor_instance} fired and held every server alert back. Passes once MONITOR's
    resolved notification has reached the webhook and QUIET more seconds (the page route's
    group_interval and a margin: Alertmanager flushes a group at most that long after an
    inhibition ends) have gone by, with:
    - no notification of a server alert (label scope="server") to any receiver since SINCE
      (failing at once when one comes: that is the false page after the outage);
    - in Prometheus, MONITOR firing at least one evaluation after every server alert's last
      firing evaluation: keep_firing_for really held the inhibition past the servers' recovery.
    Also prints when the servers' `up` came back, and when Alertmanager last showed a server
    alert active (not held back), which must never happen."""
    start = time.monotonic()
    marks = {}

    def server_notes():
        if not os.path.exists(out):
            return []
        found = []
        with open(out, encoding="utf-8") as f:
            for line in f:
                p = json.loads(line)
                if p["_received"] < since:
                    continue
                for a in p["alerts"]:
                    if a["labels"].get("scope") == "server":
                        found.append(f"{a['labels'].get('alertname')}:"
                                     f"{a['labels'].get('instance')}:{a['status']}"
                                     f" -> {p['_receiver']}")
                    if (a["labels"].get("alertname") == monitor and a["status"] == "resolved"
                            and "monitor resolved" not in marks):
                        marks["monitor resolved"] = p["_received"]
        return found

    unheld = []

    def cond():
        notes = server_notes()
        if notes:
            return None, notes
        status, res = query(prom, 'min(up{job=~"securedrop-tor.*"})')
        if status == "success" and res and float(res[0]["value"][1]) == 1 \
                and "servers up" not in marks:
            marks["servers up"] = time.time()
        try:
            with urllib.request.urlopen(f"{am}/api/v2/alerts", timeout=10) as resp:
                alerts = json.loads(resp.read())
            unheld.extend(a["labels"].get("alertname") for a in alerts
                          if a["labels"].get("scope") == "server"
                          and a["status"]["state"] == "active")
        except OSError:
            pass
        resolved = marks.get("monitor resolved")
        return resolved is not None and time.time() >= resolved + quiet, marks

    end = time.monotonic() + seconds
    ok, last = False, None
    while time.monotonic() < end:
        ok, last = cond()
        if ok is None:
            break
        if ok:
            break
        time.sleep(0.5)
    took = time.monotonic() - start
    rel = {k: f"{v - since:+.1f} s" for k, v in marks.items()}
    check(ok is not None, "no server alert reached a receiver during or after the recovery"
                          + (f": {last}" if ok is None else f" ({took:.0f} s watched; {rel})"))
    check(ok is not None and ok is not False,
          f"{monitor} resolved at the webhook and {quiet} s more went by within {seconds} s"
          f" ({rel})")
    check(not unheld, f"Alertmanager never showed a server alert active, i.e. not held back"
                      f" ({sorted(set(unheld))})")

    evaluation = api(prom, "/api/v1/status/config")["data"]["yaml"]
    evaluation = check_rules.duration_ms(
        yaml.safe_load(evaluation).get("global", {}).get("evaluation_interval", "1m")) / 1000
    _, held = firing_times(prom, monitor, monitor_instance, since - 1)
    status, res = query(prom, f'ALERTS{{scope="server", alertstate="firing"}}'
                              f'[{max(int(time.time() - since) + 5, 5)}s]')
    server_last = max((float(t) for r in res for t, _ in r.get("values", [])
                       if float(t) >= since - 1), default=None)
    def at(t):
        return "never" if t is None else f"{t - since:+.1f} s"
    check(status == "success" and bool(held)
          and (server_last is None or held[-1] >= server_last + evaluation - 0.001),
          f"{monitor} kept firing at least one evaluation ({evaluation:g} s) past the last server"
          f" alert's firing evaluation (last firing: {monitor} {at(held[-1] if held else None)},"
          f" server alerts {at(server_last)}, since the recovery began)")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "am-config":
        am_config(argv[2], argv[3])
    elif cmd == "webhook":
        webhook(int(argv[2]), argv[3])
    elif cmd == "healthy":
        healthy(argv[2], argv[3], argv[4:])
    elif cmd == "scaled":
        scaled(int(argv[2]), argv[3], argv[4], argv[5], argv[6], argv[7:])
    elif cmd == "same-but-durations":
        same_but_durations(int(argv[2]), argv[3], argv[4], argv[5])
    elif cmd == "order":
        order(argv[2], float(argv[3]), argv[4], argv[5], argv[6], argv[7], int(argv[8]))
    elif cmd == "inhibited":
        inhibited(argv[2], argv[3], argv[4], argv[5], int(argv[6]))
    elif cmd == "notifications":
        notifications(argv[2], argv[3:])
    elif cmd == "recovery":
        recovery(argv[2], argv[3], argv[4], float(argv[5]), argv[6], argv[7], float(argv[8]),
                 int(argv[9]))
    elif cmd == "alert":
        extra = (float(argv[7]), float(argv[8])) if len(argv) > 8 else ()
        alert(argv[2], argv[3], argv[4], argv[5], int(argv[6]), *extra)
    elif cmd == "scrapes":
        scrapes(argv[2], argv[3], float(argv[4]), int(argv[5]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"{'FAILED: ' + str(len(failures)) if failures else 'all ok'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
