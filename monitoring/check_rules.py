#!/usr/bin/python3
"""Checks of monitoring/rules/ that promtool does not make (run by monitoring/test.sh).

    check_rules.py style      mixin conventions, runbook sections, the issue's alert list, docs,
                              each last_over_time window shorter than the alert's `for:`
    check_rules.py coverage   every alert has a firing and a not-firing promtool test case, and
                              one on an exporter series a firing case with a stale sample
    check_rules.py mutants    break each alert (never fires; no `for:`; its `for:` one
                              evaluation interval shorter or longer; its *_over_time window
                              dropped, or as long as its `for:`; its keep_firing_for dropped or
                              one evaluation interval off) and require that its promtool tests
                              then fail: the tests can fail at all, and they pin each `for:` to
                              the evaluation interval (the end-to-end test runs the rules with
                              every duration scaled down, so these are what test the real ones);
                              with the promtool named by $PROMTOOL if set
    check_rules.py ordering [RULES...]
                              the monitoring host's tor-broken alert fires at least one evaluation
                              interval before any server alert that a broken monitoring-host tor
                              sets off, with the template's intervals (see ordering_problems())
    check_rules.py recovery [RULES...]
                              the monitoring host's tor-broken alert keeps firing
                              (keep_firing_for) until the server alerts it held back have
                              resolved once our tor works again, with the template's jobs (see
                              recovery_problems())

Exit status 1 and one line per problem on failure.
"""

import glob
import os
import re
import concurrent.futures
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
# The conditions the monitoring kit must alert on, and the alert that answers each.
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
    "proof-of-work suggested effort above 0 for a while (a flood)":
        "SecureDropTorOnionServiceFlooded",
    "too few introduction points (readable inner layer only)": "SecureDropTorIntroductionPointsLow",
    "self-probe failing (when it is on)": "SecureDropTorSelfProbeFailing",
    "clock skew between the server and Prometheus": "SecureDropTorClockSkew",
    "the Source Interface probe's blackbox_exporter down": "SecureDropTorBlackboxExporterDown",
    "an always-firing dead man's switch": "Watchdog",
    "Alertmanager failing to send notifications": "SecureDropTorAlertmanagerNotificationsFailing",
    "Prometheus failing to send alerts to Alertmanager (errors or dropped)":
        "SecureDropTorPrometheusNotificationsFailing",
    "rule evaluation failures": "SecureDropTorRuleEvaluationFailing",
    "the servers' job without any target": "SecureDropTorServerTargetsAbsent",
    "fewer server targets than in the past day": "SecureDropTorServerTargetsFewer",
}
# Alerts that always fire (a dead man's switch for an outside service): the usual name that such
# services and other mixins know, not the SecureDropTor prefix; no not-firing test case can exist,
# and the "fires at once" mutant is what they are. style() holds them to `vector(1)`, for: 0m and
# severity info (the sample Alertmanager configuration routes them to their own receiver).
ALWAYS_FIRING = {"Watchdog"}


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


# The durations inside a PromQL expression: range and subquery windows, offsets. String
# literals (label values) are skipped.
DUR = r"(?:\d+(?:ms|[smhdwy]))+"
STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")
RANGE = re.compile(r"\[\s*(%s)\s*(?::\s*(%s)?\s*)?\]" % (DUR, DUR))
OFFSET = re.compile(r"\boffset\s+-?(%s)" % DUR)
OVER_TIME = re.compile(r"\b([a-z_]+_over_time)\s*\(")


def code_spans(expr):
    """(start, end) of the parts of EXPR outside string literals."""
    spans, pos = [], 0
    for m in STRING.finditer(expr):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(expr)))
    return spans


def expr_durations(expr):
    """(start, end) of every duration in EXPR's range and subquery windows and offsets."""
    out = []
    for a, b in code_spans(expr):
        part = expr[a:b]
        for m in RANGE.finditer(part):
            out += [(a + m.start(g), a + m.end(g)) for g in (1, 2) if m.group(g)]
        out += [(a + m.start(1), a + m.end(1)) for m in OFFSET.finditer(part)]
    return sorted(out)


def replace_spans(text, spans, new):
    """TEXT with each (start, end) of SPANS replaced by NEW(old text)."""
    out, pos = [], 0
    for a, b in sorted(spans):
        out += [text[pos:a], new(text[a:b])]
        pos = b
    return "".join(out + [text[pos:]])


def scale_expr(expr, factor):
    """EXPR with every window and offset divided by FACTOR, exactly (e2e.py's scaled copies)."""
    def divided(d):
        ms = duration_ms(d)
        if ms % factor:
            raise ValueError(f"{d} in {expr!r} is not a whole number of ms over {factor}")
        return duration_text(ms // factor)
    return replace_spans(expr, expr_durations(expr), divided)


def closing(expr, i):
    """The index of the parenthesis that closes the one at EXPR[i]."""
    depth = 0
    while i < len(expr):
        m = STRING.match(expr, i)
        if m:
            i = m.end()
            continue
        depth += {"(": 1, ")": -1}.get(expr[i], 0)
        if depth == 0:
            return i
        i += 1
    raise ValueError(f"unbalanced parentheses in {expr!r}")


def over_time_calls(expr):
    """(function, call span, argument span, window span) of every *_over_time(...[W]) in EXPR
    whose argument ends in a range or subquery window."""
    calls = []
    for a, b in code_spans(expr):
        for m in OVER_TIME.finditer(expr, a, b):
            close = closing(expr, m.end() - 1)
            arg = (m.end(), close)
            windows = [w for w in RANGE.finditer(expr, *arg)
                       if not expr[w.end():close].strip()]
            if windows:
                w = windows[-1]
                calls.append((m.group(1), (m.start(), close + 1), arg, (w.start(1), w.end(1))))
    return calls


def drop_windows(expr):
    """EXPR with each *_over_time(X[W]) replaced by X: the instant value, which a failed scrape
    leaves stale."""
    for _, (a, b), (arg_a, _), (w_a, _) in sorted(over_time_calls(expr), reverse=True):
        bracket = expr.rindex("[", arg_a, w_a)
        expr = expr[:a] + expr[arg_a:bracket].rstrip() + expr[b:]
    return expr


def set_windows(expr, window):
    """EXPR with the window of each *_over_time(X[W]) set to WINDOW."""
    return replace_spans(expr, [w for *_, w in over_time_calls(expr)], lambda _: window)


def selectors(expr):
    """The metric names EXPR selects with label matchers (name{...})."""
    code = "".join(expr[a:b] for a, b in code_spans(expr))
    return set(re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{", code))


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
        labels = r.get("labels", {})
        if name in ALWAYS_FIRING:
            if (str(r["expr"]).strip() != "vector(1)" or duration_ms(r.get("for", "1s")) != 0
                    or labels.get("severity") != "info"):
                problems.append(f"{where}: an always-firing alert must be vector(1), for: 0m,"
                                f" severity info")
        elif not re.fullmatch(r"SecureDropTor[A-Z][A-Za-z]+", name):
            problems.append(f"{where}: not CamelCase with the SecureDropTor prefix")
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
        wait = duration_ms(r.get("for", "0s"))
        for fn, *_, (a, b) in over_time_calls(r["expr"]):
            if fn == "last_over_time" and wait and duration_ms(r["expr"][a:b]) >= wait:
                problems.append(f"{where}: last_over_time window {r['expr'][a:b]} is not shorter"
                                f" than its for: {r.get('for')} (one bad sample before a gap that"
                                f" long would fire it)")
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
    """alert name -> [firing cases, not-firing cases, firing cases among input series with a
    stale sample], over every test file."""
    out = {}
    for path in TESTS:
        for t in load(path).get("tests", []):
            stale = any(re.search(r"\bstale\b", str(s.get("values", "")))
                        for s in t.get("input_series", []))
            for c in t.get("alert_rule_test", []):
                counts = out.setdefault(c["alertname"], [0, 0, 0])
                if c.get("exp_alerts"):
                    counts[0] += 1
                    counts[2] += stale
                else:
                    counts[1] += 1
    return out


def coverage():
    problems = []
    c = cases()
    for _, r in alerts():
        fire, quiet, stale = c.get(r["alert"], (0, 0, 0))
        if not fire:
            problems.append(f"{r['alert']}: no promtool test case where it fires")
        if not quiet and r["alert"] not in ALWAYS_FIRING:
            problems.append(f"{r['alert']}: no promtool test case where it does not fire")
        # A failed scrape leaves an exporter's series stale (`up` itself is written as 0).
        if selectors(r["expr"]) - {"up"} and not stale:
            problems.append(f"{r['alert']}: no promtool test case where it fires through a stale"
                            f" sample (a failed scrape)")
    return problems


# The promtool that runs the tests: $PROMTOOL if set (monitoring/test.sh runs the mutants again
# with Prometheus 3's), else the one on PATH (Debian 12's 2.42).
PROMTOOL = os.environ.get("PROMTOOL") or "promtool"


def promtool_passes(test_files):
    res = subprocess.run([PROMTOOL, "test", "rules", *test_files],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return res.returncode == 0


def groups_seeing(groups, name, reads_alerts):
    """The test groups of a test file whose outcome a mutation of the alert NAME can change.
    promtool runs each group on storage of its own, and an alert_rule_test looks at its
    alertname only: a group that tests other alerts alone, with no promql_expr_test, gives the
    same result on the mutated rules as on the shipped ones, unless a rule reads ALERTS
    (READS_ALERTS: an alert firing differently could change another's): then every group is
    kept (and every rule of the mutant's rule file, which mutants() otherwise leaves out but for
    the mutated alert and the recording rules)."""
    if reads_alerts:
        return groups
    return [g for g in groups
            if g.get("promql_expr_test")
            or any(c["alertname"] == name for c in g.get("alert_rule_test", []))]


def mutants():
    """For each alert and each mutation, rewrite its rule file in a temporary folder, point copies
    of the test files that test that alert at it, and require promtool to fail."""
    problems = []
    count = 0
    jobs = []  # (what the wrong outcome means, its test files, whether promtool must pass)
    work = tempfile.TemporaryDirectory()
    reads_alerts = any(re.search(r"\bALERTS(_FOR_STATE)?\b", r["expr"]) for _, r in alerts())
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
        elif name not in ALWAYS_FIRING:
            mutations["fires at once"] = {"expr": f"({rule['expr']}) or on() vector(1)"}
        mutations["for: one evaluation interval longer"] = {"for": duration_text(wait + step)}
        if over_time_calls(rule["expr"]):
            # Held through a failed scrape only by the window; held too long, one bad sample
            # before a gap fires it.
            mutations["drops its _over_time window"] = {"expr": drop_windows(rule["expr"])}
            if wait:
                mutations["has an _over_time window as long as its for:"] = {
                    "expr": set_windows(rule["expr"], rule["for"])}
        keep = duration_ms(rule.get("keep_firing_for", "0s"))
        if keep:
            mutations["has no keep_firing_for"] = {"keep_firing_for": "0s"}
            mutations["keep_firing_for one evaluation interval shorter"] = {
                "keep_firing_for": duration_text(max(keep - step, 0))}
            mutations["keep_firing_for one evaluation interval longer"] = {
                "keep_firing_for": duration_text(keep + step)}
        # Only the test groups that can see a mutation of this alert (groups_seeing()), and in
        # its rule file only the alerts those groups test and the recording rules: the rest pass
        # on the shipped rules (checked before) and so on the mutant too. An unmutated copy made
        # the same way must pass (the control), so no mutant is caught by the trimming itself.
        seeing = {t: groups_seeing(load(t)["tests"], name, reads_alerts) for t in tests}
        tested = {c["alertname"] for groups in seeing.values() for g in groups
                  for c in g.get("alert_rule_test", [])} | {name}
        for label, change in [(None, {})] + list(mutations.items()):
            count += label is not None
            tmp = os.path.join(work.name, str(len(jobs)))
            os.mkdir(tmp)
            doc = load(path)
            for group in doc["groups"]:
                for r in group["rules"]:
                    if r.get("alert") == name:
                        r.update(change)
                if not reads_alerts:
                    group["rules"] = [r for r in group["rules"]
                                      if "record" in r or r.get("alert") in tested]
            doc["groups"] = [g for g in doc["groups"] if g["rules"]]
            mutated = os.path.join(tmp, os.path.basename(path))
            with open(mutated, "w", encoding="utf-8") as f:
                yaml.safe_dump(doc, f)
            copies = []
            for t in tests:
                tdoc = load(t)
                tdoc["tests"] = seeing[t]
                if not tdoc["tests"]:
                    continue
                tdoc["rule_files"] = [
                    mutated if os.path.basename(rf) == os.path.basename(path)
                    else os.path.normpath(os.path.join(os.path.dirname(t), rf))
                    for rf in tdoc["rule_files"]
                ]
                copy = os.path.join(tmp, os.path.basename(t))
                with open(copy, "w", encoding="utf-8") as f:
                    yaml.safe_dump(tdoc, f)
                copies.append(copy)
            if label is None:
                jobs.append((f"{name}: its tests, trimmed as for its mutants, fail unmutated",
                             copies, True))
            else:
                jobs.append((f"{name}: its tests still pass when it {label}", copies, False))
    # One promtool per core at a time: each mutant is its own process and folder.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        passed = pool.map(lambda job: promtool_passes(job[1]), jobs)
        problems += [problem for (problem, _, want), passes in zip(jobs, passed)
                     if passes != want]
    work.cleanup()
    caught = sum(1 for (_, _, want) in jobs if not want) - sum(
        1 for p in problems if "still pass" in p)
    print(f"{count} mutants, {caught} caught; {len(jobs) - count} trimmed controls",
          file=sys.stderr)
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


SERIES_THROUGH_OUR_TOR = r"(?:up|scrape_[A-Za-z0-9_:]*|probe_[A-Za-z0-9_:]*)"
MATCHERS = r"(?:\{(?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*\})?"


def scraped_jobs(expr, jobs):
    """The jobs of JOBS (names) whose scrapes the up/scrape_*/probe_* selectors of EXPR read, by
    their `job` matchers (a selector without one reads every job but the monitoring host's)."""
    found = set()
    code = code_spans(expr)
    for m in re.finditer(r"\b%s\s*(%s)" % (SERIES_THROUGH_OUR_TOR, MATCHERS), expr):
        if not any(a <= m.start() < b for a, b in code):
            continue  # in a label value
        matchers = re.findall(r'\bjob\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m.group(1))
        for name in jobs:
            if name == MONITOR_JOB and not matchers:
                continue
            ok = all({"=": name == v, "!=": name != v,
                      "=~": re.fullmatch(v, name) is not None,
                      "!~": re.fullmatch(v, name) is None}[op] for op, v in matchers)
            if ok:
                found.add(name)
    return found


def resolve_window_ms(expr):
    """How much longer than its next good scrape a server alert may take to resolve because of
    its windows: those over up/scrape_*/probe_* series, except last_over_time's (the last value,
    which the good scrape replaces) count in full."""
    longest = 0
    code = "".join(expr[a:b] for a, b in code_spans(expr))
    for m in re.finditer(r"\b([a-z_]+)\s*\(\s*%s\s*%s\s*\[\s*(%s)" %
                         (SERIES_THROUGH_OUR_TOR, MATCHERS, DUR), code):
        if m.group(1) != "last_over_time":
            longest = max(longest, duration_ms(m.group(2)))
    return longest


def recovery_problems(rules, evaluation_ms, jobs, require_jobs=True):
    """RULES (alerting rules, dicts) with Prometheus evaluating every EVALUATION_MS and JOBS
    ({job name: (scrape interval, scrape timeout)} in ms). When our tor works again, a server
    alert through it (see through_our_tor()) resolves at the latest after its job's next scrape
    (an interval, and the timeout for it to come back), any window that outlasts that scrape
    (resolve_window_ms()) and an evaluation. The monitoring host's tor-broken alert may stop
    seeing its condition at once, and resolves keep_firing_for later; that must be at least one
    evaluation after the last of those, so that Alertmanager has each server alert resolved
    (never notified, since it was held back) before the inhibition ends. Else the held-back
    alert goes out as the outage ends. Returns the problems (none: the bound holds)."""
    by_name = {r["alert"]: r for r in rules}
    if MONITOR_BROKEN not in by_name:
        return [f"no {MONITOR_BROKEN} rule"]
    keep = duration_ms(by_name[MONITOR_BROKEN].get("keep_firing_for", "0s"))
    problems = []
    need, why = 0, None
    for r in rules:
        if r.get("labels", {}).get("scope") != "server" or not through_our_tor(r["expr"]):
            continue
        matched = scraped_jobs(r["expr"], jobs)
        if not matched:
            if require_jobs:
                problems.append(f"{r['alert']}: none of the configuration's jobs matches its"
                                f" selectors (jobs: {', '.join(sorted(jobs))})")
            continue
        for job in sorted(matched):
            interval, timeout = jobs[job]
            window = resolve_window_ms(r["expr"])
            delay = interval + timeout + window + evaluation_ms
            if delay + evaluation_ms > need:
                need = delay + evaluation_ms
                why = (f"{r['alert']} on job {job} resolves up to {delay / 1000:g} s after our"
                       f" tor works again (scrape interval {interval / 1000:g} s + timeout"
                       f" {timeout / 1000:g} s + window {window / 1000:g} s + evaluation"
                       f" {evaluation_ms / 1000:g} s)")
    if why is None and not problems:
        problems.append("no server alert reads up, scrape_* or probe_* (nothing to outlast)")
    if keep < need:
        problems.append(f"{MONITOR_BROKEN} keep_firing_for {keep / 1000:g} s is shorter than"
                        f" {need / 1000:g} s: {why}, and it must resolve one evaluation later")
    return problems


def prometheus_jobs(conf):
    """{job name: (scrape interval, scrape timeout)} of a Prometheus configuration (a dict), in
    milliseconds, with Prometheus's defaults."""
    glob_ = conf.get("global", {})
    interval = duration_ms(glob_.get("scrape_interval", "1m"))
    timeout = duration_ms(glob_.get("scrape_timeout", "0s")) or min(10_000, interval)
    jobs = {}
    for j in conf.get("scrape_configs", []):
        i = duration_ms(j["scrape_interval"]) if "scrape_interval" in j else interval
        # An unset timeout is the global one, but never more than the job's interval.
        t = duration_ms(j["scrape_timeout"]) if "scrape_timeout" in j else min(timeout, i)
        jobs[j["job_name"]] = (i, t)
    return jobs


EXAMPLE_VARS = os.path.join(HERE, "prometheus", "example-vars.yml")


def recovery(*paths):
    """The bound for the shipped rules (or the rule files PATHS) with the template rendered with
    example-vars.yml: every job, the optional Source Interface probe's too."""
    sys.path.insert(0, HERE)
    import render  # noqa: E402 (needs jinja2, which monitoring/test.sh installs)

    conf = yaml.safe_load(render.render(TEMPLATE, load(EXAMPLE_VARS)))
    evaluation, _ = prometheus_intervals(conf)
    rules = [r for _, r in alerts(paths or RULES)]
    return recovery_problems(rules, evaluation, prometheus_jobs(conf))


def main(argv):
    checks = {"style": style, "coverage": coverage, "mutants": mutants, "ordering": ordering,
              "recovery": recovery}
    if len(argv) < 2 or argv[1] not in checks or (
            len(argv) > 2 and argv[1] not in ("ordering", "recovery")):
        print(__doc__, file=sys.stderr)
        return 2
    problems = checks[argv[1]](*argv[2:])
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
