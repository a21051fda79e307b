#!/usr/bin/python3
"""Checks of monitoring/rules/ that promtool does not make (run by monitoring/test.sh).

    check_rules.py style      mixin conventions, runbook sections, the issue's alert list, docs
    check_rules.py coverage   every alert has a firing and a not-firing promtool test case
    check_rules.py mutants    break each alert (never fires; no `for:`; its `for:` one
                              evaluation interval shorter or longer) and require that its promtool
                              tests then fail: the tests can fail at all, and they pin each `for:`
                              to the evaluation interval (the end-to-end test runs the rules with
                              every `for:` scaled down, so these are what test the real ones)
    check_rules.py ordering [RULES...]
                              the monitoring host's tor-broken alert fires at least one evaluation
                              interval before any server alert that a broken monitoring-host tor
                              sets off, with the template's intervals (see ordering_problems())

Exit status 1 and one line per problem on failure.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = sorted(glob.glob(os.path.join(HERE, "rules", "*.rules.yml")))
TESTS = sorted(glob.glob(os.path.join(HERE, "tests", "*.test.yml")))
RUNBOOK = os.path.join(HERE, "runbook.md")
DOCS = os.path.join(HERE, "..", "docs", "monitoring.md")

SEVERITIES = {"critical", "warning", "info"}
SCOPES = {"server", "monitoring-host"}
# What issue 14 asks for, and the alert that answers each.
REQUIRED = {
    "exporter unreachable through the onion (up == 0)": "SecureDropTorExporterUnreachable",
    "tor down (tor_up == 0)": "SecureDropTorDown",
    "no circuits": "SecureDropTorNoCircuits",
    "bootstrap stuck": "SecureDropTorBootstrapStuck",
    "dir info insufficient": "SecureDropTorDirInfoInsufficient",
    "onion service not published": "SecureDropTorOnionServiceNotPublished",
    "version obsolete/unrecommended": "SecureDropTorVersionObsolete",
    "version not recommended for a long time": "SecureDropTorVersionNotRecommended",
    "exporter restarting repeatedly": "SecureDropTorExporterRestarting",
    "control-port errors rising": "SecureDropTorControlErrors",
    "the monitoring host's own tor broken": "SecureDropTorMonitoringHostTorBroken",
    "source interface probe (optional module)": "SecureDropTorSourceInterfaceUnreachable",
}


# Prometheus's duration units (model.ParseDuration), in milliseconds.
UNITS = {"y": 365 * 86400_000, "w": 7 * 86400_000, "d": 86400_000, "h": 3600_000, "m": 60_000,
         "s": 1000, "ms": 1}
DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?"
                      r"(?:(\d+)ms)?$")


def duration_ms(text):
    """A Prometheus duration ("5m", "1h30m", "90s", "0") in milliseconds."""
    text = str(text)
    if text == "0":
        return 0
    m = DURATION.match(text)
    if not m or not text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(v) * ms for v, ms in zip(m.groups(), UNITS.values()) if v)


def duration_text(ms):
    """Milliseconds as a Prometheus duration, in one unit: "90s", "1500ms", "0s"."""
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def alerts(paths=RULES):
    """(rule file, rule) for every alerting rule."""
    for path in paths:
        for group in load(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield path, rule


def anchor(heading):
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def style():
    problems = []
    with open(RUNBOOK, encoding="utf-8") as f:
        anchors = {anchor(m.group(1)) for m in re.finditer(r"^## (.+)$", f.read(), re.M)}
    docs = open(DOCS, encoding="utf-8").read() if os.path.exists(DOCS) else None
    if docs is None:
        problems.append("docs/monitoring.md is missing")
    names = set()
    for path, r in alerts():
        name = r["alert"]
        where = f"{os.path.basename(path)}: {name}"
        if name in names:
            problems.append(f"{where}: defined twice")
        names.add(name)
        if not re.fullmatch(r"SecureDropTor[A-Z][A-Za-z]+", name):
            problems.append(f"{where}: not CamelCase with the SecureDropTor prefix")
        labels = r.get("labels", {})
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{where}: severity {labels.get('severity')!r} not in {sorted(SEVERITIES)}")
        if labels.get("scope") not in SCOPES:
            problems.append(f"{where}: scope {labels.get('scope')!r} not in {sorted(SCOPES)}")
        if "for" not in r:
            problems.append(f"{where}: no explicit for:")
        ann = r.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                problems.append(f"{where}: no {key}")
        if "{{" in ann.get("summary", ""):
            problems.append(f"{where}: summary is templated (it must be static)")
        if "{{" not in ann.get("description", ""):
            problems.append(f"{where}: description is not templated")
        url = ann.get("runbook_url", "")
        want = f"monitoring/runbook.md#{name.lower()}"
        if url != want:
            problems.append(f"{where}: runbook_url {url!r}, want {want!r}")
        if name.lower() not in anchors:
            problems.append(f"{where}: no '## {name}' section in monitoring/runbook.md")
        if re.search(r"onion\s*[=!]~?", r["expr"]) or "tor_hs_" in r["expr"]:
            problems.append(f"{where}: uses an onion label or MetricsPort series")
        if docs is not None:
            # docs/monitoring.md gives each alert's for: in its table row.
            row = re.search(r"^\|\s*`%s`\s*\|([^\n]*)$" % name, docs, re.M)
            if not row:
                problems.append(f"{where}: no table row in docs/monitoring.md")
            elif f"`{r.get('for')}`" not in row.group(1):
                problems.append(f"{where}: docs/monitoring.md does not give for: {r.get('for')}")
    for what, name in REQUIRED.items():
        if name not in names:
            problems.append(f"no alert for {what} ({name})")
    return problems


def cases():
    """alert name -> (firing cases, not-firing cases), over every test file."""
    out = {}
    for path in TESTS:
        for t in load(path).get("tests", []):
            for c in t.get("alert_rule_test", []):
                fire, quiet = out.setdefault(c["alertname"], [0, 0])
                if c.get("exp_alerts"):
                    out[c["alertname"]][0] += 1
                else:
                    out[c["alertname"]][1] += 1
    return out


def coverage():
    problems = []
    c = cases()
    for _, r in alerts():
        fire, quiet = c.get(r["alert"], (0, 0))
        if not fire:
            problems.append(f"{r['alert']}: no promtool test case where it fires")
        if not quiet:
            problems.append(f"{r['alert']}: no promtool test case where it does not fire")
    return problems


def promtool_passes(test_files):
    res = subprocess.run(["promtool", "test", "rules", *test_files],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return res.returncode == 0


def mutants():
    """For each alert and each mutation, rewrite its rule file in a temporary folder, point copies
    of the test files that test that alert at it, and require promtool to fail."""
    problems = []
    count = 0
    for path, rule in list(alerts()):
        name = rule["alert"]
        tests = [t for t in TESTS
                 if any(c["alertname"] == name
                        for case in load(t).get("tests", [])
                        for c in case.get("alert_rule_test", []))]
        if not tests:
            continue  # coverage() reports it
        # The coarsest evaluation interval among those tests: a `for:` off by one of it must
        # change what some test case sees.
        step = max(duration_ms(load(t).get("evaluation_interval", "1m")) for t in tests)
        wait = duration_ms(rule.get("for", "0s"))
        mutations = {"never fires": {"expr": "vector(1) == 2"}}
        if wait:
            mutations["no for:"] = {"for": "0s"}
            mutations["for: one evaluation interval shorter"] = {
                "for": duration_text(max(wait - step, 0))}
        else:
            mutations["fires at once"] = {"expr": f"({rule['expr']}) or on() vector(1)"}
        mutations["for: one evaluation interval longer"] = {"for": duration_text(wait + step)}
        for label, change in mutations.items():
            count += 1
            with tempfile.TemporaryDirectory() as tmp:
                doc = load(path)
                for group in doc["groups"]:
                    for r in group["rules"]:
                        if r.get("alert") == name:
                            r.update(change)
                mutated = os.path.join(tmp, os.path.basename(path))
                with open(mutated, "w", encoding="utf-8") as f:
                    yaml.safe_dump(doc, f)
                copies = []
                for t in tests:
                    tdoc = load(t)
                    tdoc["rule_files"] = [
                        mutated if os.path.basename(rf) == os.path.basename(path)
                        else os.path.normpath(os.path.join(os.path.dirname(t), rf))
                        for rf in tdoc["rule_files"]
                    ]
                    copy = os.path.join(tmp, os.path.basename(t))
                    with open(copy, "w", encoding="utf-8") as f:
                        yaml.safe_dump(tdoc, f)
                    copies.append(copy)
                if promtool_passes(copies):
                    problems.append(f"{name}: its tests still pass when it {label}")
    print(f"{count} mutants, {count - len(problems)} caught", file=sys.stderr)
    return problems


MONITOR_BROKEN = "SecureDropTorMonitoringHostTorBroken"
MONITOR_JOB = "tor-exporter-monitor"
# The exporter's default tor.refresh_interval (README, configuration table): how long the
# monitoring host's exporter may take to see its tor gone.
EXPORTER_REFRESH_MS = 5000
TEMPLATE = os.path.join(HERE, "prometheus", "prometheus.yml.j2")


def through_our_tor(expr):
    """Whether an expression reads a series Prometheus writes itself about a scrape or probe that
    goes through the monitoring host's tor (up, scrape_*, probe_*): those are the server alerts a
    broken monitoring-host tor sets off; everything a server's exporter says just goes stale."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not metric names
    names = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)
    return any(n == "up" or n.startswith(("scrape_", "probe_")) for n in names)


def ordering_problems(rules, evaluation_ms, monitor_scrape_ms, refresh_ms):
    """RULES (alerting rules, dicts) with Prometheus evaluating every EVALUATION_MS and scraping
    the monitoring host's exporter every MONITOR_SCRAPE_MS, that exporter refreshing every
    REFRESH_MS. From the moment the monitoring host's tor stops, its tor-broken alert fires at the
    latest after the exporter's refresh, a scrape, an evaluation to go pending and its `for:`
    rounded up to whole evaluations; a server alert through our tor fires at the earliest after
    its `for:` (a scrape failing at once, evaluated at once). The first must come at least one
    evaluation before the second, so that Alertmanager already holds the inhibiting alert when
    the server alerts arrive. Returns the problems (none: the order holds)."""
    problems = []
    by_name = {r["alert"]: r for r in rules}
    if MONITOR_BROKEN not in by_name:
        return [f"no {MONITOR_BROKEN} rule"]
    wait = duration_ms(by_name[MONITOR_BROKEN].get("for", "0s"))
    rounded = -(-wait // evaluation_ms) * evaluation_ms
    latest = refresh_ms + monitor_scrape_ms + evaluation_ms + rounded
    servers = [r for r in rules
               if r.get("labels", {}).get("scope") == "server" and through_our_tor(r["expr"])]
    if not servers:
        problems.append("no server alert reads up, scrape_* or probe_* (nothing to order)")
    for r in servers:
        short = latest + evaluation_ms - duration_ms(r.get("for", "0s"))
        if short > 0:
            problems.append(
                f"{r['alert']} (for: {r.get('for')}) may fire {short / 1000:g} s too early:"
                f" {MONITOR_BROKEN} fires up to {latest / 1000:g} s after our tor stops"
                f" (refresh {refresh_ms / 1000:g} s + scrape {monitor_scrape_ms / 1000:g} s +"
                f" evaluation {evaluation_ms / 1000:g} s + for: {rounded / 1000:g} s) and must"
                f" fire one evaluation before it")
    return problems


def prometheus_intervals(conf):
    """(evaluation interval, the monitoring host's exporter's scrape interval) of a Prometheus
    configuration (a dict), in milliseconds."""
    glob_ = conf.get("global", {})
    evaluation = duration_ms(glob_.get("evaluation_interval", "1m"))
    monitor = [j for j in conf["scrape_configs"] if j["job_name"] == MONITOR_JOB]
    if not monitor:
        raise ValueError(f"no {MONITOR_JOB} job")
    scrape = duration_ms(monitor[0].get("scrape_interval", glob_.get("scrape_interval", "1m")))
    return evaluation, scrape


def ordering(*paths):
    """The order of the shipped rules (or of the rule files PATHS) with the template's default
    intervals and the exporter's default refresh interval."""
    sys.path.insert(0, HERE)
    import render  # noqa: E402 (needs jinja2, which monitoring/test.sh installs)

    conf = yaml.safe_load(render.render(TEMPLATE, {}))
    evaluation, scrape = prometheus_intervals(conf)
    rules = [r for _, r in alerts(paths or RULES)]
    return ordering_problems(rules, evaluation, scrape, EXPORTER_REFRESH_MS)


def main(argv):
    checks = {"style": style, "coverage": coverage, "mutants": mutants, "ordering": ordering}
    if len(argv) < 2 or argv[1] not in checks or (len(argv) > 2 and argv[1] != "ordering"):
        print(__doc__, file=sys.stderr)
        return 2
    problems = checks[argv[1]](*argv[2:])
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
