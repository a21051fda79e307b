#!/usr/bin/python3
"""Lint a Grafana dashboard JSON the way a Grafana server would not need to be installed for.

    lint_dashboard.py DASHBOARD.json                 check it; exit 1 and name every problem
    lint_dashboard.py DASHBOARD.json --rules FILE    also write its queries, Grafana variables
                                                     replaced, as recording rules for
                                                     `promtool check rules` (PromQL parser)
    lint_dashboard.py DASHBOARD.json --queries       print those queries, one JSON string a line
    lint_dashboard.py --self-test DASHBOARD.json    the dashboard passes; each mutant of
                                                     dashboard_mutants.py fails with the problem it
                                                     names; the single-value panels' queries give
                                                     the expected tiles in a dead-server scenario
                                                     (promtool test rules), and the same queries
                                                     without their `up` join do not; exit 1 if not

Rules (the usual dashboard-linter ones, and this project's):
  - dashboard uid and title set; every panel has a title and a unique id;
  - a `datasource` variable of type datasource for prometheus; every panel and every target use
    it as `${datasource}` (no hard-coded datasource uid);
  - every templating variable is used by a panel query or by another variable;
  - every non-row panel has at least one target with a non-empty expr;
  - the rows Overview, Onion services, Tor health, Exporter, Coarse traffic, in that order;
  - no query groups or filters by an onion address (no `onion` label), and none reads tor's
    MetricsPort families (`tor_hs_*`), which count visits; legends name only role-name labels
    (instance, job, service, ...), never another label;
  - dashboard truth (a dead server must not look healthy):
    - the dashboard is not editable (`"editable": false`);
    - every panel has a known Grafana unit in fieldConfig.defaults.unit (`none` in tables only);
    - every single-value panel (stat, gauge, bargauge) reduces with exactly `last` (never
      `lastNotNull`, which keeps the last green value of a server that stopped answering) and
      every one of its queries is instant;
    - every single-value panel on a tor_* series is joined with `up`, as
      `(EXPR and on(job, instance) (up{..} == 1)) or on(job, instance) ((up{..} == 0) - 1)`,
      and maps -1 to a red text: a server Prometheus cannot scrape shows red, not its last value;
    - a single-value panel on tor_onion_service_published aggregates with `min` only (a sum of
      two services, one unpublished, reads 1 and green);
    - the `job` variable has no allValue, so its All is the jobs that export tor_up (`.+` would
      take in the Source Interface probe's `up` with the same instance names);
    - the Overview row has a stat each for up, tor_up, tor_circuit_established,
      tor_bootstrap_progress_percent, tor_onion_service_published; the Onion services row a
      per-service stat each for published, introduction points and PoW suggested effort; the
      Exporter row a clock-skew stat on timestamp(tor_exporter_last_refresh_success_timestamp_seconds)
      without time().

"""

import copy
import json
import os
import re
import sys

ROWS = ["Overview", "Onion services", "Tor health", "Exporter", "Coarse traffic"]
DS_REFS = {"${datasource}", "$datasource"}
# What Grafana puts in for its variables; the values only need to make valid PromQL.
SUBSTITUTIONS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}
SINGLE_VALUE = {"stat", "gauge", "bargauge", "singlestat"}
# Grafana unit ids this dashboard may use (a typo shows raw numbers without a word of warning).
UNITS = {
    "none", "short", "percent", "percentunit", "s", "ms", "dtdurations", "dtdhms",
    "dateTimeFromNow", "dateTimeAsIso", "bool", "bool_yes_no", "bool_on_off", "bytes", "decbytes",
    "Bps", "binBps", "ops", "reqps",
}
# Labels a legend may show: role names and the exporter's own enumerations, never an address.
LEGEND_LABELS = {"instance", "job", "service", "result", "reason", "kind", "version", "status"}
# What the Overview, Onion services and Exporter rows must show (see the docstring).
OVERVIEW_SERIES = ["up", "tor_up", "tor_circuit_established", "tor_bootstrap_progress_percent",
                   "tor_onion_service_published"]
PER_SERVICE_SERIES = ["tor_onion_service_published",
                      "tor_onion_service_descriptor_introduction_points",
                      "tor_onion_service_pow_suggested_effort"]
UP_SEL = r'up\s*\{\s*job\s*=~\s*"\$job"\s*,\s*instance\s*=~\s*"\$instance"\s*\}'
ON = r'on\s*\(\s*job\s*,\s*instance\s*\)'
JOIN_UP = re.compile(r'\band\s+' + ON + r'\s*\(\s*' + UP_SEL + r'\s*==\s*1\s*\)')
JOIN_DOWN = re.compile(r'\bor\s+' + ON + r'\s*\(\s*\(\s*' + UP_SEL
                       + r'\s*==\s*0\s*\)\s*(-\s*1|\*\s*0)\s*\)\s*$')
AGGREGATION = re.compile(r'\b(sum|count|avg|max|group|stddev|stdvar|topk|bottomk|quantile|'
                         r'count_values)\s*(by|without|\()')


def series_read(expr):
    """The tor_* series and `up` an expression reads."""
    names = set(re.findall(r"\b(tor_[a-z_]+)\b", expr))
    if re.search(r"(?<![\w:])up\b(?![\w(])", expr):
        names.add("up")
    return names


def rows_of(dash):
    """(row title, panel) for every non-row panel."""
    row = None
    for p in dash.get("panels", []):
        if p.get("type") == "row":
            row = p.get("title")
            for q in p.get("panels", []) or []:
                yield row, q
        else:
            yield row, p


def panels_of(dash):
    """Every panel, rows' nested panels included."""
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:
            yield q


def substitute(expr, variables):
    for k, v in SUBSTITUTIONS.items():
        expr = expr.replace(k, v)
    for name in variables:
        expr = expr.replace("${%s}" % name, ".+").replace("$" + name, ".+")
    return expr


def uses(text, name):
    return re.search(r"\$(\{%s(:[a-z]+)?\}|%s\b)" % (re.escape(name), re.escape(name)), text) is not None


def lint(dash):
    problems = []
    if not dash.get("uid"):
        problems.append("dashboard has no uid")
    if not dash.get("title"):
        problems.append("dashboard has no title")
    variables = dash.get("templating", {}).get("list", [])
    names = [v.get("name") for v in variables]
    ds = [v for v in variables if v.get("name") == "datasource"]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        problems.append("no `datasource` variable of type datasource for prometheus")
    for want in ("job", "instance"):
        if want not in names:
            problems.append(f"no `{want}` variable")

    texts = []  # everything a variable can be used in
    for v in variables:
        if v.get("type") == "query":
            q = v.get("query")
            texts.append(q.get("query", "") if isinstance(q, dict) else str(q))
            if v.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
                problems.append(f"variable {v.get('name')}: datasource is not ${{datasource}}")

    ids = set()
    rows = []
    for p in panels_of(dash):
        title = p.get("title", "")
        where = f"panel {p.get('id')} {title!r}"
        if not title:
            problems.append(f"{where}: no title")
        if p.get("id") in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            rows.append(title)
            continue
        pds = p.get("datasource")
        if not isinstance(pds, dict) or pds.get("uid") not in DS_REFS:
            problems.append(f"{where}: datasource is not ${{datasource}} ({pds!r})")
        targets = p.get("targets") or []
        if not any((t.get("expr") or "").strip() for t in targets):
            problems.append(f"{where}: no query")
        for t in targets:
            tds = t.get("datasource")
            if tds is not None and (not isinstance(tds, dict) or tds.get("uid") not in DS_REFS):
                problems.append(f"{where}: target {t.get('refId')} datasource is hard-coded ({tds!r})")
            expr = t.get("expr") or ""
            texts.append(expr)
            if re.search(r"\bonion\b\s*(=|!=|=~|!~)", expr) or re.search(r"by\s*\([^)]*\bonion\b", expr):
                problems.append(f"{where}: query uses an onion label")
            if "tor_hs_" in expr:
                problems.append(f"{where}: query reads tor's MetricsPort tor_hs_* series")
    if rows != ROWS:
        problems.append(f"rows are {rows}, want {ROWS}")

    for name in names:
        if name == "datasource":
            continue
        if not any(uses(t, name) for t in texts):
            problems.append(f"variable {name} is never used")
    ds_used = all(
        isinstance(p.get("datasource"), dict) and p["datasource"].get("uid") in DS_REFS
        for p in panels_of(dash)
        if p.get("type") != "row"
    )
    if not ds_used:
        problems.append("variable datasource is not used by every panel")
    # A hard-coded uid anywhere in a datasource reference (other than the dashboard's own uid).
    for m in re.finditer(r'"datasource":\s*\{[^}]*"uid":\s*"([^"]*)"', json.dumps(dash)):
        if m.group(1) not in DS_REFS:
            problems.append(f"hard-coded datasource uid {m.group(1)!r}")
    return problems + truth(dash)


def truth(dash):
    """The rules that keep a dead server from looking healthy (see the docstring)."""
    problems = []
    if dash.get("editable") is not False:
        problems.append('dashboard is editable (want "editable": false; change the file instead)')
    for v in dash.get("templating", {}).get("list", []):
        if v.get("name") == "job" and "allValue" in v:
            problems.append(f"variable job has allValue {v['allValue']!r}: its All would take in "
                            "jobs without tor_up (the Source Interface probe's up); leave it unset")
    found = {}  # (row, series) -> titles of single-value panels reading it, per service or not
    for row, p in rows_of(dash):
        where = f"panel {p.get('id')} {p.get('title', '')!r}"
        fd = (p.get("fieldConfig") or {}).get("defaults") or {}
        unit = fd.get("unit")
        if not unit:
            problems.append(f"{where}: no unit (fieldConfig.defaults.unit)")
        elif unit not in UNITS:
            problems.append(f"{where}: unknown unit {unit!r}")
        elif unit == "none" and p.get("type") != "table":
            problems.append(f"{where}: unit none (only tables of info series may have none)")
        targets = [t for t in p.get("targets") or [] if (t.get("expr") or "").strip()]
        for t in targets:
            for label in re.findall(r"\{\{\s*([^}\s]+)\s*\}\}", t.get("legendFormat") or ""):
                if label not in LEGEND_LABELS:
                    problems.append(f"{where}: legend shows label {label!r}")
        if p.get("type") not in SINGLE_VALUE:
            continue
        calcs = ((p.get("options") or {}).get("reduceOptions") or {}).get("calcs")
        if calcs != ["last"]:
            what = "lastNotNull, the last green value of a dead server" if "lastNotNull" in (
                calcs or []) else "not last"
            problems.append(f"{where}: reduces with {calcs} ({what}); want [\"last\"]")
        mapped = {}
        for m in fd.get("mappings") or []:
            if m.get("type") == "value":
                mapped.update(m.get("options") or {})
        for t in targets:
            expr = t["expr"]
            ref = f"{where} target {t.get('refId')}"
            if t.get("instant") is not True or t.get("range") is True:
                problems.append(f"{ref}: not an instant query (a range query's last point is "
                                "the last value seen, not the value now)")
            names = series_read(expr)
            if any(n.startswith("tor_") for n in names):
                if not (JOIN_UP.search(expr) and JOIN_DOWN.search(expr)):
                    problems.append(
                        f"{ref}: not joined with up: want (EXPR and on(job, instance) (UP == 1)) or "
                        "on(job, instance) ((UP == 0) - 1), UP being up{job=~\"$job\", "
                        "instance=~\"$instance\"}, so a server Prometheus cannot scrape shows red")
                elif re.search(r"==\s*0\s*\)\s*-\s*1\s*\)\s*$", expr) and (
                        (mapped.get("-1") or {}).get("color") != "red"):
                    problems.append(f"{ref}: -1 (exporter unreachable) is not mapped to a red text")
            if "tor_onion_service_published" in names and AGGREGATION.search(expr):
                problems.append(f"{ref}: aggregates tor_onion_service_published with "
                                f"{AGGREGATION.search(expr).group(1)} (one unpublished service of "
                                "two reads 1 and green); use min")
            primary = {n for n in names if n.startswith("tor_")} or names
            per_service = "{{service}}" in (t.get("legendFormat") or "").replace(" ", "")
            for n in primary:
                found.setdefault((row, n, per_service), []).append(p.get("title"))
            if row == "Exporter" and re.search(
                    r"timestamp\s*\(\s*tor_exporter_last_refresh_success_timestamp_seconds\b", expr
            ) and "time()" not in expr.replace(" ", ""):
                found.setdefault((row, "clock skew", False), []).append(p.get("title"))
    for n in OVERVIEW_SERIES:
        if not found.get(("Overview", n, False)):
            problems.append(f"row Overview: no stat on {n}")
    for n in PER_SERVICE_SERIES:
        if not found.get(("Onion services", n, True)):
            problems.append(f"row Onion services: no per-service stat on {n}")
    if not found.get(("Exporter", "clock skew", False)):
        problems.append("row Exporter: no clock-skew stat (timestamp(tor_exporter_last_refresh_"
                        "success_timestamp_seconds) minus its value, without time())")
    return problems


def queries(dash):
    names = [v.get("name") for v in dash.get("templating", {}).get("list", [])]
    out = []
    for p in panels_of(dash):
        for t in p.get("targets") or []:
            if (t.get("expr") or "").strip():
                out.append((p.get("title"), substitute(t["expr"], names)))
    return out


def self_test(path):
    """The dashboard passes; every mutant fails with its problem; the dead-server scenario."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dashboard_mutants  # noqa: E402

    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    failed = 0
    problems = lint(dash)
    for p in problems:
        print(f"FAIL: {path}: {p}")
    failed += bool(problems)
    if not problems:
        print(f"ok: {path} passes the lint")
    for name, want, mutate in dashboard_mutants.MUTANTS:
        d = copy.deepcopy(dash)
        mutate(d)
        hits = [p for p in lint(d) if want in p]
        if hits:
            print(f"ok: mutant {name} caught: {hits[0]}")
        else:
            failed += 1
            print(f"FAIL: mutant {name} not caught (want a problem with {want!r}; got {lint(d)})")
    for ok, line in dashboard_mutants.scenario(dash, queries_of=single_value_queries):
        print(("ok: " if ok else "FAIL: ") + line)
        failed += not ok
    print(f"self-test: {len(dashboard_mutants.MUTANTS)} mutants, {failed} failed")
    return 1 if failed else 0


def single_value_queries(dash):
    """(title, expr with Grafana's variables replaced) of every single-value panel's targets;
    `$job` becomes what Grafana's All makes of label_values(tor_up, job)."""
    out = []
    for _, p in rows_of(dash):
        if p.get("type") in SINGLE_VALUE:
            for t in p.get("targets") or []:
                expr = (t.get("expr") or "").replace("$job", "securedrop-tor|tor-exporter-monitor")
                if expr.strip():
                    out.append((p.get("title"), substitute(expr, ["instance"])))
    return out


def main(argv):
    args = [a for i, a in enumerate(argv[1:], 1)
            if not a.startswith("--") and argv[i - 1] != "--rules"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = args[0]
    if "--self-test" in argv:
        return self_test(path)
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    problems = lint(dash)
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    qs = queries(dash)
    if "--queries" in argv:
        for _, q in qs:
            print(json.dumps(q))
    if "--rules" in argv:
        path = argv[argv.index("--rules") + 1]
        with open(path, "w", encoding="utf-8") as f:
            # JSON is YAML: one recording rule per query, for promtool's PromQL parser.
            rules = [{"record": f"dashboard:query_{i}", "expr": q, "labels": {"panel": title}}
                     for i, (title, q) in enumerate(qs)]
            json.dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
