#!/usr/bin/python3
"""Checks of monitoring/rules/ that promtool does not make (run by monitoring/test.sh).

    check_rules.py style      mixin conventions, runbook sections, the issue's alert list, docs
    check_rules.py coverage   every alert has a firing and a not-firing promtool test case
    check_rules.py mutants    break each alert (never fires; no `for:`) and require that its
                              promtool tests then fail, so the tests can fail at all

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


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def alerts():
    """(rule file, rule) for every alerting rule."""
    for path in RULES:
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
        mutations = {"never fires": {"expr": "vector(1) == 2"}}
        if str(rule.get("for")) not in ("0m", "0s", "0"):
            mutations["no for:"] = {"for": "0s"}
        else:
            mutations["fires at once"] = {"expr": f"({rule['expr']}) or on() vector(1)"}
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


def main(argv):
    checks = {"style": style, "coverage": coverage, "mutants": mutants}
    if len(argv) != 2 or argv[1] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    problems = checks[argv[1]]()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
