#!/usr/bin/python3
"""The sample Alertmanager configuration's routes and inhibitions, on a real Alertmanager.

amtool can test routes but not inhibitions, so this runs Debian's prometheus-alertmanager on
127.0.0.1 (clustering off) with monitoring/alertmanager/alertmanager.yml, its receivers turned
into webhooks to a receiver on 127.0.0.1 that this script runs, posts alerts through the API and
checks what each receiver got and what Alertmanager reports as inhibited:

  1. per server: SecureDropTorDown holds back that server's SecureDropTorControlErrors but not
     another server's; SecureDropTorNoCircuits holds back that server's
     SecureDropTorOnionServiceNotPublished; critical goes to the page receiver, warning to the mail
     receiver, info to "null" only;
  2. the monitoring host's tor broken: one page (SecureDropTorMonitoringHostTorBroken), and every
     scope=server alert of every server inhibited and sent nowhere.
  3. the always-firing Watchdog: to its own receiver (watchdog) only, never to the admin's page
     or mail receivers (or "null"), which the end-to-end test watches.

Prints one "ok: ..." or "FAIL: ..." line per check; exit status 1 if any failed. Arguments name
the scenarios to run (per_server, monitoring_host_broken, watchdog; default all); ALERTMANAGER_CONFIG
names another configuration (monitoring/test.sh checks that one without the inhibitions fails).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.environ.get("ALERTMANAGER_CONFIG") or os.path.join(HERE, "alertmanager", "alertmanager.yml")
BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
DEADLINE = 90  # seconds to wait for a notification (the warning route's group_wait is 30 s)

results = []


def check(ok, what):
    results.append(ok)
    print(("ok: " if ok else "FAIL: ") + prefix() + what, flush=True)


def prefix():
    """The scenario's name, in a scenario's thread (they run at the same time)."""
    name = threading.current_thread().name
    return "" if name == "MainThread" else f"[{name}] "


class Hook(BaseHTTPRequestHandler):
    received = []  # (scenario, receiver, payload), from the path /<scenario>/<receiver>
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        scenario, _, receiver = self.path.strip("/").partition("/")
        with Hook.lock:
            Hook.received.append((scenario, receiver, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def scenario_name():
    return threading.current_thread().name


def got(receiver):
    """alertname/instance pairs of firing alerts the receiver has been sent (in this thread's
    scenario: each runs its own Alertmanager, whose webhooks are /<scenario>/<receiver>)."""
    with Hook.lock:
        return {
            (a["labels"].get("alertname"), a["labels"].get("instance"))
            for s, r, payload in Hook.received if s == scenario_name() and r == receiver
            for a in payload["alerts"] if a["status"] == "firing"
        }


def notifications(receiver):
    with Hook.lock:
        return sum(1 for s, r, _ in Hook.received if s == scenario_name() and r == receiver)


PORTS = set()  # given out already: the scenarios start their Alertmanagers at the same time


def free_port():
    import socket
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with Hook.lock:
            if port not in PORTS:
                PORTS.add(port)
                return port


def http(method, url, data=None):
    req = urllib.request.Request(url, method=method,
                                 data=None if data is None else json.dumps(data).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = resp.read()
        return json.loads(body) if body else None


def wait_for(what, cond, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    print(f"{prefix()}timed out after {deadline} s waiting for {what}", flush=True)
    return False


class Alertmanager:
    def __init__(self, hook_port, scenario):
        self.tmp = tempfile.mkdtemp(prefix="am-live-")
        with open(SAMPLE, encoding="utf-8") as f:
            conf = yaml.safe_load(f)
        # Same routes and inhibitions; every receiver (null too) becomes a loopback webhook.
        for r in conf["receivers"]:
            name = r["name"]
            for k in [k for k in r if k != "name"]:
                del r[k]
            r["webhook_configs"] = [{"url": f"http://127.0.0.1:{hook_port}/{scenario}/{name}",
                                     "send_resolved": True}]
        path = os.path.join(self.tmp, "alertmanager.yml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(conf, f)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.tmp, "log"), "wb")
        self.proc = subprocess.Popen(
            [BINARY, f"--config.file={path}", f"--storage.path={self.tmp}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self):
        try:
            urllib.request.urlopen(self.url + "/-/ready", timeout=1).read()
            return True
        except OSError:
            return False

    def post(self, alerts):
        now = datetime.now(timezone.utc)
        http("POST", self.url + "/api/v2/alerts", [
            {"labels": labels, "annotations": {"summary": "test"},
             "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
            for labels in alerts])

    def states(self):
        """(alertname, instance, kind) -> (state, inhibitedBy count)."""
        return {
            (a["labels"]["alertname"], a["labels"].get("instance"), a["labels"].get("kind")):
                (a["status"]["state"], len(a["status"]["inhibitedBy"]))
            for a in http("GET", self.url + "/api/v2/alerts")
        }

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if not all(results):
            with open(os.path.join(self.tmp, "log"), encoding="utf-8", errors="replace") as f:
                sys.stdout.write(f.read()[-3000:])
        shutil.rmtree(self.tmp, ignore_errors=True)


def alert(name, severity, scope, instance, **extra):
    job = "tor-exporter-monitor" if scope == "monitoring-host" else "securedrop-tor"
    return dict(alertname=name, severity=severity, scope=scope, instance=instance, job=job, **extra)


def per_server(am):
    am.post([
        alert("SecureDropTorDown", "warning", "server", "app"),
        alert("SecureDropTorControlErrors", "warning", "server", "app", kind="timeout"),
        alert("SecureDropTorControlErrors", "warning", "server", "mon", kind="auth"),
        alert("SecureDropTorNoCircuits", "critical", "server", "mon"),
        alert("SecureDropTorOnionServiceNotPublished", "critical", "server", "mon", service="source"),
        alert("SecureDropTorBootstrapStuck", "warning", "server", "app"),
        alert("SecureDropTorVersionNotRecommended", "info", "server", "app", status="recommended"),
    ])
    want_mail = {("SecureDropTorDown", "app"), ("SecureDropTorControlErrors", "mon"),
                 ("SecureDropTorBootstrapStuck", "app")}
    wait_for("the mail receiver's notifications", lambda: want_mail <= got("securedrop-admin-mail"))
    wait_for("the page receiver's notification",
             lambda: ("SecureDropTorNoCircuits", "mon") in got("securedrop-admin-page"))
    wait_for("the null receiver's notification",
             lambda: ("SecureDropTorVersionNotRecommended", "app") in got("null"))
    s = am.states()
    check(s[("SecureDropTorControlErrors", "app", "timeout")] == ("suppressed", 1),
          "SecureDropTorDown{instance=app} inhibits SecureDropTorControlErrors{instance=app}")
    check(s[("SecureDropTorControlErrors", "mon", "auth")] == ("active", 0),
          "... but not SecureDropTorControlErrors{instance=mon}")
    check(s[("SecureDropTorOnionServiceNotPublished", "mon", None)] == ("suppressed", 1),
          "SecureDropTorNoCircuits{instance=mon} inhibits SecureDropTorOnionServiceNotPublished{instance=mon}")
    check(s[("SecureDropTorBootstrapStuck", "app", None)] == ("active", 0),
          "SecureDropTorBootstrapStuck{instance=app} is not inhibited (no NoCircuits on app)")
    check(got("securedrop-admin-mail") == want_mail,
          f"warning alerts reach the mail receiver, inhibited ones do not: {sorted(got('securedrop-admin-mail'))}")
    check(got("securedrop-admin-page") == {("SecureDropTorNoCircuits", "mon")},
          f"critical alerts reach the page receiver, inhibited ones do not: {sorted(got('securedrop-admin-page'))}")
    check(got("null") == {("SecureDropTorVersionNotRecommended", "app")},
          f"info alerts go to the null receiver only: {sorted(got('null'))}")


def monitoring_host_broken(am):
    posted = time.monotonic()
    am.post([
        alert("SecureDropTorMonitoringHostTorBroken", "critical", "monitoring-host", "monitor"),
        alert("SecureDropTorExporterUnreachable", "critical", "server", "app"),
        alert("SecureDropTorExporterUnreachable", "critical", "server", "mon"),
        alert("SecureDropTorSourceInterfaceUnreachable", "critical", "server", "app"),
        alert("SecureDropTorBootstrapStuck", "warning", "server", "app"),
    ])
    wait_for("the page for the monitoring host's tor",
             lambda: ("SecureDropTorMonitoringHostTorBroken", "monitor") in got("securedrop-admin-page"))
    # The held-back groups would have been sent with it (same group_wait, 10 s) or with the
    # warning route (30 s): watch for 35 s after posting before saying nothing else came.
    window = 35 - (time.monotonic() - posted)
    if window > 0:
        time.sleep(window)
    s = am.states()
    check(all(s[(n, i, None)] == ("suppressed", 1) for n, i in [
        ("SecureDropTorExporterUnreachable", "app"), ("SecureDropTorExporterUnreachable", "mon"),
        ("SecureDropTorSourceInterfaceUnreachable", "app"), ("SecureDropTorBootstrapStuck", "app")]),
        "SecureDropTorMonitoringHostTorBroken inhibits every scope=server alert of every server")
    check(s[("SecureDropTorMonitoringHostTorBroken", "monitor", None)] == ("active", 0),
          "SecureDropTorMonitoringHostTorBroken itself is active")
    check(got("securedrop-admin-page") == {("SecureDropTorMonitoringHostTorBroken", "monitor")}
          and notifications("securedrop-admin-page") == 1,
          f"one page, for the monitoring host's tor: {notifications('securedrop-admin-page')} "
          f"notification(s), {sorted(got('securedrop-admin-page'))}")
    check(not got("securedrop-admin-mail") and not got("null"),
          "nothing reaches the other receivers")


def watchdog(am):
    am.post([dict(alertname="Watchdog", severity="info", scope="monitoring-host")])
    # group_wait 0s on its route. An alert is routed once, when it arrives, to the first route it
    # matches (no `continue`): once a receiver has it, no other receiver will. So this waits for
    # the first receiver that gets it (the watchdog's at once; without its route, the mail
    # receiver's after that route's 30 s group_wait) rather than for the watchdog's only.
    receivers = ("watchdog", "securedrop-admin-page", "securedrop-admin-mail", "null")
    wait_for("a receiver's notification", lambda: any(got(r) for r in receivers), DEADLINE)
    check(got("watchdog") == {("Watchdog", None)}, f"the Watchdog reaches its receiver: {got('watchdog')}")
    others = {r: got(r) for r in ("securedrop-admin-page", "securedrop-admin-mail", "null")}
    check(not any(others.values()), f"and no other receiver: {others}")


def run(scenario, port):
    """One scenario on an Alertmanager of its own (this thread's, named after the scenario)."""
    am = Alertmanager(port, scenario.__name__)
    try:
        if not wait_for("Alertmanager ready", am.ready, 30):
            check(False, f"{scenario.__name__}: Alertmanager started")
            return
        scenario(am)
    except Exception as e:  # noqa: BLE001 (reported as a failed check, the others go on)
        check(False, f"{scenario.__name__}: {e!r}")
    finally:
        am.stop()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        scenarios = [per_server, monitoring_host_broken, watchdog]
        if sys.argv[1:]:
            scenarios = [f for f in scenarios if f.__name__ in sys.argv[1:]]
        # At the same time: each has its own Alertmanager (own port, folder, no cluster) and its
        # own webhook paths, and most of each is waiting out a group_wait.
        threads = [threading.Thread(target=run, args=(f, server.server_address[1]),
                                    name=f.__name__) for f in scenarios]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        server.shutdown()
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
