#!/usr/bin/python3
"""Lint a Grafana dashboard JSON the way a Grafana server would not need to be installed for.

    lint_dashboard.py DASHBOARD.json                 check it; exit 1 and name every problem
    lint_dashboard.py DASHBOARD.json --rules FILE    also write its queries, Grafana variables
                                                     replaced, as recording rules for
                                                     `promtool check rules` (PromQL parser)
    lint_dashboard.py DASHBOARD.json --queries       print those queries, one JSON string a line

Rules (the usual dashboard-linter ones, and this project's):
  - dashboard uid and title set; every panel has a title and a unique id;
  - a `datasource` variable of type datasource for prometheus; every panel and every target use
    it as `${datasource}` (no hard-coded datasource uid);
  - every templating variable is used by a panel query or by another variable;
  - every non-row panel has at least one target with a non-empty expr;
  - the rows Overview, Onion services, Tor health, Exporter, Coarse traffic, in that order;
  - no query groups or filters by an onion address (no `onion` label), and none reads tor's
    MetricsPort families (`tor_hs_*`), which count visits.
"""

import json
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
    return problems


def queries(dash):
    names = [v.get("name") for v in dash.get("templating", {}).get("list", [])]
    out = []
    for p in panels_of(dash):
        for t in p.get("targets") or []:
            if (t.get("expr") or "").strip():
                out.append((p.get("title"), substitute(t["expr"], names)))
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        dash = json.load(f)
    problems = lint(dash)
    for p in problems:
        print(f"{argv[1]}: {p}", file=sys.stderr)
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
