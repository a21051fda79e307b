"""Broken copies of the Grafana dashboard that lint_dashboard.py must reject, and a dead-server
scenario its single-value panels must get right. Used by `lint_dashboard.py --self-test`.

MUTANTS: (name, words of the problem the lint must report, a function that breaks a copy).
scenario(): runs every single-value panel's query through `promtool test rules` at a moment when
one server's exporter has been unreachable for 5 minutes (its tor_* series gone stale), one
server has one of two onion services unpublished, the monitoring host's tor is down and a
Source Interface probe with a server's instance name fails; then again with the `up` join
stripped from every query, which must fail (the dead server gets no tile, or a green one).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

SEL = '{job=~"$job", instance=~"$instance"}'
UP = "up" + SEL


def panel(d, title):
    for p in d["panels"]:
        if p.get("title") == title:
            return p
    raise KeyError(title)


def expr(d, title, new=None, ref=0):
    t = panel(d, title)["targets"][ref]
    if new is not None:
        t["expr"] = new
    return t["expr"]


def sub(d, title, old, new):
    e = expr(d, title)
    assert old in e, (title, old)
    expr(d, title, e.replace(old, new))


def drop(d, *titles):
    d["panels"] = [p for p in d["panels"] if p.get("title") not in titles]


def set_(obj, key, value):
    obj[key] = value


def unjoin(e):
    """The expression a joined query wraps."""
    m = re.fullmatch(r"\((.*) and on\(job, instance\) \(up\{[^}]*\} == 1\)\) "
                     r"or on\(job, instance\) \(\(up\{[^}]*\} == 0\) - 1\)", e)
    return m.group(1) if m else e


def non_row(d):
    return [p for p in d["panels"] if p["type"] != "row"]


MUTANTS = [
    # The lint's older rules (monitoring/test.sh breaks the same ways with its own copies).
    ("uid", "no uid", lambda d: set_(d, "uid", "")),
    ("datasource", "datasource is not ${datasource}",
     lambda d: set_(non_row(d)[0], "datasource", {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"})),
    ("target-datasource", "datasource is hard-coded",
     lambda d: set_(non_row(d)[1]["targets"][0], "datasource", {"type": "prometheus", "uid": "abc"})),
    ("no-query", "no query", lambda d: set_(non_row(d)[2], "targets", [])),
    ("title", "no title", lambda d: set_(non_row(d)[3], "title", "")),
    ("unused-variable", "variable instance is never used", lambda d: (
        [t.update(expr=t["expr"].replace('instance=~"$instance"', 'instance=~".+"'))
         for p in non_row(d) for t in p["targets"]],
        d["templating"]["list"][2]["query"].update(query="label_values(tor_up, instance)"))),
    ("no-datasource-variable", "no `datasource` variable",
     lambda d: set_(d["templating"], "list", d["templating"]["list"][1:])),
    ("onion-label", "onion label", lambda d: expr(d, "tor up", "sum by (onion) (tor_up)")),
    ("metricsport", "tor_hs_", lambda d: expr(d, "Descriptor published", "tor_hs_rdv_count" + SEL)),
    ("row", "rows are", lambda d: drop(d, "Coarse traffic")),
    # Dashboard truth.
    ("editable", "editable", lambda d: set_(d, "editable", True)),
    ("editable-unset", "editable", lambda d: d.pop("editable")),
    ("job-all-everything", "variable job has allValue",
     lambda d: set_(d["templating"]["list"][1], "allValue", ".+")),
    ("lastNotNull", "lastNotNull",
     lambda d: set_(panel(d, "tor up")["options"]["reduceOptions"], "calcs", ["lastNotNull"])),
    ("mean", "want [\"last\"]",
     lambda d: set_(panel(d, "Bootstrap")["options"]["reduceOptions"], "calcs", ["mean"])),
    ("range-query", "not an instant query",
     lambda d: panel(d, "Circuit established")["targets"][0].update(instant=False, range=True)),
    ("instant-unset", "not an instant query",
     lambda d: panel(d, "Exporter reachable")["targets"][0].pop("instant")),
    ("range-query-skew", "not an instant query",
     lambda d: panel(d, "Clock skew (server vs Prometheus)")["targets"][0].update(instant=False)),
    ("no-up-join", "not joined with up", lambda d: expr(d, "tor up", "tor_up" + SEL)),
    ("no-up-join-per-service", "not joined with up",
     lambda d: expr(d, "Published now, per service", unjoin(expr(d, "Published now, per service")))),
    ("join-without-down", "not joined with up",
     lambda d: expr(d, "Bootstrap", f"tor_bootstrap_progress_percent{SEL} and on(job, instance) ({UP} == 1)")),
    ("join-down-unfiltered", "not joined with up",
     lambda d: sub(d, "Circuit established", f"(({UP} == 0) - 1)", "((up == 0) - 1)")),
    ("unreachable-unmapped", "not mapped to a red text",
     lambda d: panel(d, "tor up")["fieldConfig"]["defaults"]["mappings"][0]["options"].pop("-1")),
    ("unreachable-green", "not mapped to a red text",
     lambda d: set_(panel(d, "Bootstrap")["fieldConfig"]["defaults"]["mappings"][0]["options"]["-1"],
                    "color", "green")),
    ("published-sum", "aggregates tor_onion_service_published with sum",
     lambda d: sub(d, "Onion services published", "min by", "sum by")),
    ("published-max", "aggregates tor_onion_service_published with max",
     lambda d: sub(d, "Onion services published", "min by", "max by")),
    ("published-count", "aggregates tor_onion_service_published with count",
     lambda d: sub(d, "Published now, per service", "(tor_onion_service_published" + SEL,
                   "(count by (job, instance) (tor_onion_service_published" + SEL + " == 1)")),
    ("no-unit", "no unit", lambda d: panel(d, "tor uptime")["fieldConfig"]["defaults"].pop("unit")),
    ("no-unit-stat", "no unit",
     lambda d: panel(d, "Firing alerts")["fieldConfig"]["defaults"].pop("unit")),
    ("unit-typo", "unknown unit",
     lambda d: set_(panel(d, "Bootstrap")["fieldConfig"]["defaults"], "unit", "percentage")),
    ("unit-none-stat", "unit none",
     lambda d: set_(panel(d, "Onion services configured")["fieldConfig"]["defaults"], "unit", "none")),
    ("legend-label", "legend shows label",
     lambda d: set_(panel(d, "Descriptor published")["targets"][0], "legendFormat",
                    "{{instance}} {{address}}")),
    ("overview-no-circuit", "row Overview: no stat on tor_circuit_established",
     lambda d: drop(d, "Circuit established")),
    ("overview-no-exporter-reachable", "row Overview: no stat on up",
     lambda d: drop(d, "Exporter reachable")),
    ("no-per-service-published", "no per-service stat on tor_onion_service_published",
     lambda d: drop(d, "Published now, per service")),
    ("no-introduction-points", "no per-service stat on tor_onion_service_descriptor_introduction",
     lambda d: drop(d, "Introduction points, per service")),
    ("no-pow", "no per-service stat on tor_onion_service_pow_suggested_effort",
     lambda d: drop(d, "Proof-of-work suggested effort, per service")),
    ("pow-per-server", "no per-service stat on tor_onion_service_pow_suggested_effort",
     lambda d: set_(panel(d, "Proof-of-work suggested effort, per service")["targets"][0],
                    "legendFormat", "{{instance}}")),
    ("no-clock-skew", "no clock-skew stat", lambda d: drop(d, "Clock skew (server vs Prometheus)")),
    ("clock-skew-time", "no clock-skew stat",
     lambda d: sub(d, "Clock skew (server vs Prometheus)",
                   "timestamp(tor_exporter_last_refresh_success_timestamp_seconds" + SEL + ")",
                   "time()")),
]

# --- The dead-server scenario -------------------------------------------------------------------
# One sample a minute from 0 to 20 min; evaluated at 10 min. staging-app's exporter stops answering
# after 5 min: up 0 from 6 min on, and its series are marked stale then (what Prometheus writes
# when a scrape fails). mon has one of two services unpublished. The monitoring host's tor is down
# (its exporter answers, tor_up 0, tor's own series absent). A failing Source Interface probe
# carries the instance name app.
J = 'job="securedrop-tor"'
DEAD = "x5 stale"
SERIES = [
    (f'up{{{J}, instance="app"}}', "1x20"),
    (f'up{{{J}, instance="mon"}}', "1x20"),
    (f'up{{{J}, instance="staging-app"}}', "1x5 0x14"),
    ('up{job="tor-exporter-monitor", instance="monitor"}', "1x20"),
    ('up{job="securedrop-source-interface", instance="app"}', "0x20"),
    ('tor_up{job="tor-exporter-monitor", instance="monitor"}', "0x20"),
]
for inst, alive in [("app", "x20"), ("mon", "x20"), ("staging-app", DEAD)]:
    SERIES += [
        (f'tor_up{{{J}, instance="{inst}"}}', "1" + alive),
        (f'tor_circuit_established{{{J}, instance="{inst}"}}', "1" + alive),
        (f'tor_bootstrap_progress_percent{{{J}, instance="{inst}"}}', "100" + alive),
        (f'tor_onion_services_configured{{{J}, instance="{inst}"}}', "2" + alive),
    ]
SERIES += [
    # The server's clock, as the exporter's last refresh says: app 2 s behind, mon 300 s behind.
    (f'tor_exporter_last_refresh_success_timestamp_seconds{{{J}, instance="app"}}', "-2+60x20"),
    (f'tor_exporter_last_refresh_success_timestamp_seconds{{{J}, instance="mon"}}', "-300+60x20"),
    (f'tor_exporter_last_refresh_success_timestamp_seconds{{{J}, instance="staging-app"}}', "0+60x5 stale"),
    ('tor_exporter_last_refresh_success_timestamp_seconds{job="tor-exporter-monitor", instance="monitor"}',
     "-100+0x20"),
]
for inst, service, published, readable, intro, pow_on, effort, alive in [
    ("app", "source", 1, 1, 3, 1, 25, "x20"),
    ("app", "journalist", 1, 0, None, 1, None, "x20"),
    ("mon", "ssh", 0, 0, None, 0, None, "x20"),
    ("mon", "metrics", 1, 0, None, 0, None, "x20"),
    ("staging-app", "source", 1, 1, 3, 1, 0, DEAD),
]:
    labels = f'{J}, instance="{inst}", service="{service}"'
    SERIES += [
        (f"tor_onion_service_published{{{labels}}}", f"{published}{alive}"),
        (f"tor_onion_service_descriptor_inner_layer_readable{{{labels}}}", f"{readable}{alive}"),
        (f"tor_onion_service_pow_enabled{{{labels}}}", f"{pow_on}{alive}"),
    ]
    if intro is not None:
        SERIES.append((f"tor_onion_service_descriptor_introduction_points{{{labels}}}", f"{intro}{alive}"))
    if effort is not None:
        SERIES.append((f"tor_onion_service_pow_suggested_effort{{{labels}}}", f"{effort}{alive}"))

U = -1  # the exporter unreachable (up 0)
SERVERS = ("app", "mon", "staging-app")
# Per single-value panel: {(instance, service): value}; (None, None) for a panel without labels.
EXPECTED = {
    "Exporter reachable": {("app", None): 1, ("mon", None): 1, ("staging-app", None): 0,
                           ("monitor", None): 1},
    "tor up": {("app", None): 1, ("mon", None): 1, ("staging-app", None): U, ("monitor", None): 0},
    "Circuit established": {("app", None): 1, ("mon", None): 1, ("staging-app", None): U},
    "Onion services published": {("app", None): 1, ("mon", None): 0, ("staging-app", None): U},
    "Bootstrap": {("app", None): 100, ("mon", None): 100, ("staging-app", None): U},
    "Firing alerts": {(None, None): 0},
    "Published now, per service": {("app", "source"): 1, ("app", "journalist"): 1,
                                   ("mon", "ssh"): 0, ("mon", "metrics"): 1,
                                   ("staging-app", None): U},
    "Introduction points, per service": {("app", "source"): 3, ("app", "journalist"): -2,
                                         ("mon", "ssh"): -2, ("mon", "metrics"): -2,
                                         ("staging-app", None): U},
    "Proof-of-work suggested effort, per service": {("app", "source"): 25, ("app", "journalist"): -3,
                                                    ("mon", "ssh"): -2, ("mon", "metrics"): -2,
                                                    ("staging-app", None): U},
    "Onion services configured": {("app", None): 2, ("mon", None): 2, ("staging-app", None): U},
    "Clock skew (server vs Prometheus)": {("app", None): 2, ("mon", None): 300,
                                          ("staging-app", None): U},
}


def _labels(inst, service):
    parts = [f'{k}="{v}"' for k, v in (("instance", inst), ("service", service)) if v is not None]
    return "{" + ", ".join(parts) + "}"


def _test_file(queries):
    cases = []
    for title, q in queries:
        want = sorted(EXPECTED.get(title, {}).items(), key=lambda kv: str(kv[0]))
        # Exactly one tile per server (and service), never a stale one beside a red one ...
        cases.append({"expr": f"count by (instance, service) ({q})", "eval_time": "10m",
                      "exp_samples": [{"labels": _labels(i, s), "value": 1} for (i, s), _ in want]})
        # ... and its value (labels aside: the metric name, job).
        cases.append({"expr": f"sum by (instance, service) ({q})", "eval_time": "10m",
                      "exp_samples": [{"labels": _labels(i, s), "value": v} for (i, s), v in want]})
    return {"rule_files": [], "evaluation_interval": "1m",
            "tests": [{"interval": "1m",
                       "input_series": [{"series": s, "values": v} for s, v in SERIES],
                       "promql_expr_test": cases}]}


def _promtool(test, tmp, name):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(test, f, indent=1)  # JSON is YAML
    r = subprocess.run(["promtool", "test", "rules", path], capture_output=True, text=True,
                       check=False)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def scenario(dash, queries_of):
    """Yield (ok, what) for the dead-server scenario."""
    if not shutil.which("promtool"):
        yield False, "dead-server scenario: promtool not found (apt-get install prometheus)"
        return
    queries = queries_of(dash)
    titles = {t for t, _ in queries}
    missing = sorted(titles - set(EXPECTED))
    extra = sorted(set(EXPECTED) - titles)
    if missing or extra:
        yield False, (f"dead-server scenario: single-value panels without an expectation {missing}, "
                      f"expectations without a panel {extra} (dashboard_mutants.EXPECTED)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        ok, out = _promtool(_test_file(queries), tmp, "truth.test.json")
        yield ok, (f"dead-server scenario: {len(queries)} single-value queries give UNREACHABLE for "
                   "the server that stopped answering, NOT ALL for one of two services unpublished"
                   + ("" if ok else "\n" + out[-3000:]))
        stripped = [(t, unjoin(q)) for t, q in queries]
        changed = sum(q != s for (_, q), (_, s) in zip(queries, stripped))
        bad, out = _promtool(_test_file(stripped), tmp, "unjoined.test.json")
        yield (not bad and changed > 0), (
            f"dead-server scenario fails for the same queries without their up join ({changed} "
            "changed): the dead server gets no tile" + ("" if not bad else " -- but it PASSED"))
