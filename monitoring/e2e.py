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
    e2e.py alert OUT ALERT INSTANCE STATUS SECONDS
                                            wait for a notification of ALERT{instance=INSTANCE}
                                            with status firing/resolved; no onion address in it
    e2e.py not-firing PROM ALERT INSTANCE   ALERT{instance=INSTANCE} is not firing in Prometheus

Prints "ok: ..." / "FAIL: ..." lines and exits 1 if any check failed.
"""

import json
import os
import sys
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    print(("ok: " if ok else "FAIL: ") + what, flush=True)


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
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True
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


def alert(out, name, instance, status, seconds):
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
        check(not has_onion(line), f"the {status} notification names no onion address")
        check(payload["_receiver"] == "securedrop-admin-page",
              f"it went to {payload['_receiver']} (critical -> securedrop-admin-page)")


def not_firing(prom, name, instance):
    """ALERT{instance=INSTANCE} is not firing in Prometheus (inactive or still pending)."""
    status, res = query(prom, f'ALERTS{{alertname="{name}", instance="{instance}"}}')
    states = sorted(r["metric"].get("alertstate") for r in res)
    check(status == "success" and "firing" not in states,
          f"{name}{{instance={instance}}} is not firing in Prometheus (states: {states})")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "am-config":
        am_config(argv[2], argv[3])
    elif cmd == "webhook":
        webhook(int(argv[2]), argv[3])
    elif cmd == "healthy":
        healthy(argv[2], argv[3], argv[4:])
    elif cmd == "not-firing":
        not_firing(argv[2], argv[3], argv[4])
    elif cmd == "alert":
        alert(argv[2], argv[3], argv[4], argv[5], int(argv[6]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"{'FAILED: ' + str(len(failures)) if failures else 'all ok'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
