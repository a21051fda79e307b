"""State of the monitoring host after the tor_monitoring role (Molecule's verify step)."""

import glob
import json
import os
import re
import time
import warnings

import yaml

WORKDIR = os.environ.get("TOR_MONITORING_MOLECULE_WORKDIR", "/var/tmp/tor-monitoring-molecule")
ADMIN_DIR = os.path.join(WORKDIR, "admin")
AUTH_DIR = "/var/lib/tor/onion_auth"
RUNBOOK = "/usr/local/share/doc/securedrop-tor-monitoring/runbook.md"
HARDENED = ["prometheus-alertmanager", "prometheus-blackbox-exporter"]
# The local account whose mailbox gets the alerts (molecule.yml, prepare.yml).
MAIL_USER = "sdadmin"


def controller_keys():
    """server name -> the admin's *-metrics.auth_private line."""
    out = {}
    for path in sorted(glob.glob(os.path.join(ADMIN_DIR, "*-metrics.auth_private"))):
        with open(path, encoding="utf-8") as f:
            out[os.path.basename(path)[: -len("-metrics.auth_private")]] = f.read()
    assert set(out) == {"app", "mon"}, out
    return out


def api(host, url):
    """GET url inside the container (no curl there), parsed JSON."""
    cmd = ("python3 -c 'import sys, urllib.request; "
           "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' ")
    r = host.run(cmd + "'" + url + "'")
    assert r.rc == 0, r.stderr
    return json.loads(r.stdout)


def test_services_run(host):
    for unit in ["tor@default", "prometheus", "prometheus-alertmanager", "securedrop-tor-exporter",
                 "prometheus-blackbox-exporter"]:
        s = host.service(unit)
        assert s.is_running, unit
        assert s.is_enabled or unit == "tor@default", unit


def test_everything_listens_on_loopback_only(host):
    listening = host.run("ss -Hltn").stdout.split("\n")
    local = [line.split()[3] for line in listening if line.strip()]
    # (tor's SocksPort 9050 too: the test container's tor has its network on, prepare.yml.)
    for port in ["9090", "9093", "9747", "9115", "9050"]:
        addrs = [a for a in local if a.rsplit(":", 1)[1] == port]
        assert addrs, f"nothing listens on {port}: {local}"
        assert all(a.startswith("127.0.0.1:") for a in addrs), f"{port}: {addrs}"
    assert not [a for a in local if a.endswith(":9094")], "Alertmanager gossips on 9094"
    # Postfix, the alerts' relay: loopback only (inet_interfaces = loopback-only), IPv4 and IPv6.
    smtp = [a for a in local if a.rsplit(":", 1)[1] == "25"]
    assert smtp and all(a.startswith(("127.0.0.1:", "[::1]:")) for a in smtp), smtp
    assert host.run("postconf -h inet_interfaces").stdout.strip() == "loopback-only"


def test_client_keys_installed_for_tor(host):
    d = host.file(AUTH_DIR)
    assert d.is_directory and d.user == "debian-tor" and d.mode == 0o700
    for name, line in controller_keys().items():
        f = host.file(f"{AUTH_DIR}/{name}-metrics.auth_private")
        assert f.user == "debian-tor" and f.mode == 0o600
        assert f.content_string.strip() == line.strip()
    torrc = host.file("/etc/tor/torrc").content_string
    assert f"ClientOnionAuthDir {AUTH_DIR}" in torrc
    assert "SocksPort 127.0.0.1:9050" in torrc


def test_prometheus_config_one_target_per_server_by_name(host):
    conf = yaml.safe_load(host.file("/etc/prometheus/prometheus.yml").content_string)
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    servers = jobs["securedrop-tor"]
    assert servers["proxy_url"] == "socks5://127.0.0.1:9050"
    targets = {sc["labels"]["instance"]: sc["targets"] for sc in servers["static_configs"]}
    want = {name: [line.split(":")[0] + ".onion:80"] for name, line in controller_keys().items()}
    assert targets == want
    assert jobs["tor-exporter-monitor"]["static_configs"][0]["labels"]["instance"] == "monitoring"
    # The instance this host watches, on what it sends (tor_monitoring_site: the inventory name).
    assert conf["global"]["external_labels"] == {"site": "monitoring-staging"}
    assert host.run("promtool check config /etc/prometheus/prometheus.yml").rc == 0
    running = yaml.safe_load(api(host, "http://127.0.0.1:9090/api/v1/status/config")["data"]["yaml"])
    assert running["global"]["external_labels"] == {"site": "monitoring-staging"}


def test_prometheus_has_the_rules_and_its_own_exporter(host):
    rules = api(host, "http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert "SecureDropTorMonitoringHostTorBroken" in names and len(names) >= 13, names
    deadline = time.monotonic() + 90
    while True:
        r = api(host, "http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22tor-exporter-monitor%22%7D")
        values = [x["value"][1] for x in r["data"]["result"]]
        if values == ["1"] or time.monotonic() > deadline:
            break
        time.sleep(1)  # poll interval of a condition with a deadline
    assert values == ["1"], r
    # Every label value Prometheus holds for `instance` is a name, never an onion address.
    instances = api(host, "http://127.0.0.1:9090/api/v1/label/instance/values")["data"]
    assert "monitoring" in instances
    assert not [v for v in instances if ".onion" in v or len(v) >= 56], instances


def test_alertmanager_runs_the_sample(host):
    status = api(host, "http://127.0.0.1:9093/api/v2/status")
    original = status["config"]["original"]
    assert "SecureDropTorMonitoringHostTorBroken" in original
    assert "securedrop-admin-page" in original


def test_rules_link_to_the_installed_runbook(host):
    assert host.file(RUNBOOK).exists and host.file(RUNBOOK).mode == 0o644
    headings = {h.strip().lower() for h in re.findall(r"^## (.+)$", host.file(RUNBOOK).content_string, re.M)}
    urls = []
    for name in ["securedrop-tor.rules.yml", "securedrop-tor-blackbox.rules.yml"]:
        urls += re.findall(r"runbook_url: (\S+)", host.file(f"/etc/prometheus/rules/{name}").content_string)
    assert len(urls) >= 15, urls
    for url in urls:
        base, anchor = url.split("#", 1)
        assert base == "file://" + RUNBOOK and anchor in headings, url


def test_alertmanager_mutes_the_servers_at_the_daily_reboot(host):
    assert host.run("amtool check-config /etc/prometheus/alertmanager.yml").rc == 0
    conf = yaml.safe_load(host.file("/etc/prometheus/alertmanager.yml").content_string)
    assert conf["time_intervals"] == [{"name": "securedrop-daily-reboot", "time_intervals": [
        {"times": [{"start_time": "04:00", "end_time": "04:20"}], "location": "UTC"}]}]
    for route in conf["route"]["routes"]:
        assert route["routes"][0] == {"matchers": ['scope="server"'],
                                      "mute_time_intervals": ["securedrop-daily-reboot"]}, route
    running = api(host, "http://127.0.0.1:9093/api/v2/status")["config"]["original"]
    assert "securedrop-daily-reboot" in running and re.search(r'location: "?UTC"?', running), running


def exposure(host, unit):
    out = host.run(f"systemd-analyze security {unit}.service").stdout
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", out)
    assert m, out
    return float(m.group(1))


def test_alertmanager_and_blackbox_run_hardened(host):
    for unit in HARDENED:
        dropins = host.run(f"systemctl show -p DropInPaths --value {unit}.service").stdout
        assert f"/etc/systemd/system/{unit}.service.d/tor-monitoring-hardening.conf" in dropins, dropins
        assert host.service(unit).is_running
        score = exposure(host, unit)
        warnings.warn(f"systemd-analyze security {unit}: {score}")  # shown in the summary
        assert score <= 3.0, unit
        # Nothing it needs was refused since it started (its own lines, not systemd's about it).
        journal = host.run(f"journalctl -q -b _SYSTEMD_UNIT={unit}.service --no-pager -o cat").stdout.lower()
        for bad in ("read-only file system", "permission denied", "operation not permitted"):
            assert bad not in journal, (unit, bad, journal[-2000:])


# One script in the container (every testinfra command costs an Ansible run through nsenter). No
# single quote in it: it goes through a shell here-document that Ansible splits first.
IN_CONTAINER = r"""
import json, sys, time, urllib.request, datetime
AM = "http://127.0.0.1:9093/api/v2"
def call(method, url, data=None):
    req = urllib.request.Request(url, method=method, data=None if data is None else json.dumps(data).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
        return json.loads(body) if body else None
what = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
if what == "silence":
    s = call("POST", AM + "/silences", {"matchers": [{"name": "alertname", "value": "VerifyDataDir",
             "isRegex": False}], "startsAt": now.isoformat(),
             "endsAt": (now + datetime.timedelta(minutes=30)).isoformat(), "createdBy": "molecule",
             "comment": "verify"})
    print(s["silenceID"])
elif what == "silences":
    print(json.dumps([x["id"] for x in call("GET", AM + "/silences") if x["status"]["state"] == "active"]))
elif what == "expire":
    call("DELETE", AM + "/silence/" + sys.argv[2])
elif what == "post":
    # An alert about a server as Prometheus sends it (without scope="server": while the container tor
    # has no circuit, SecureDropTorMonitoringHostTorBroken holds every server alert back).
    # It ends after 2 minutes: verify runs twice, and the alert of the second run must be news again.
    call("POST", AM + "/alerts", [{"labels": json.loads(sys.argv[2]), "annotations": json.loads(sys.argv[3]),
         "startsAt": now.isoformat(), "endsAt": (now + datetime.timedelta(minutes=2)).isoformat()}])
elif what == "mailbox":
    # The mbox of the local account as local(8) of Postfix writes it: each message after a "From "
    # envelope line. Its subject (unfolded) and decoded text, and the raw message.
    import email, email.header, os, re
    path = "/var/mail/" + sys.argv[2]
    text = open(path, encoding="utf-8", errors="replace").read() if os.path.exists(path) else ""
    out = []
    for raw in re.split(r"(?m)^From [^\n]*\n", text)[1:]:
        msg = email.message_from_string(raw)
        subject = str(email.header.make_header(email.header.decode_header(msg["Subject"] or "")))
        parts = [p.get_payload(decode=True).decode() for p in msg.walk() if not p.is_multipart()]
        out.append({"subject": " ".join(subject.split()), "body": "\n".join(parts), "raw": raw})
    print(json.dumps(out))
elif what == "watchdog":
    print(json.dumps([[r["name"] for r in a["receivers"]] for a in call("GET", AM + "/alerts")
                      if a["labels"].get("alertname") == "Watchdog"]))
elif what == "probe":
    url = ("http://127.0.0.1:9115/probe?module=securedrop_source_interface&debug=true&target="
           + urllib.request.quote("http://" + "c" * 56 + ".onion/"))
    with urllib.request.urlopen(url, timeout=90) as r:
        print(r.read().decode())
"""


def run_in_container(host, *args):
    host.run("cat > /var/tmp/verify_monitoring.py <<'PY'\n" + IN_CONTAINER + "\nPY")
    return host.run("python3 /var/tmp/verify_monitoring.py " + " ".join(args))


def in_container(host, *args):
    r = run_in_container(host, *args)
    assert r.rc == 0, r.stderr
    return r.stdout.strip()


def test_alertmanager_keeps_its_data_over_a_restart(host):
    """Its silences are written to /var/lib/prometheus/alertmanager at shutdown: one made before a
    restart is there after it (the drop-in's ReadWritePaths)."""
    silence = in_container(host, "silence")
    assert host.run("systemctl restart prometheus-alertmanager").rc == 0
    deadline = time.monotonic() + 60
    while True:
        r = host.run("python3 -c 'import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:9093/-/ready\", timeout=2)'")
        if r.rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)  # poll interval of a condition with a deadline
    assert silence in json.loads(in_container(host, "silences"))
    assert host.file("/var/lib/prometheus/alertmanager/silences").exists
    in_container(host, "expire", silence)


def wait_for(fetch, ok, seconds):
    """fetch() until ok(its result) or the deadline; the last result."""
    deadline = time.monotonic() + seconds
    while True:
        last = fetch()
        if ok(last) or time.monotonic() > deadline:
            return last
        time.sleep(2)  # poll interval of a condition with a deadline


def test_prometheus_and_alertmanager_scrape_themselves(host):
    def up():
        q = "http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D~%22prometheus%7Calertmanager%22%7D"
        return {r["metric"]["job"]: r["value"][1] for r in api(host, q)["data"]["result"]}
    got = wait_for(up, lambda v: v == {"prometheus": "1", "alertmanager": "1"}, 90)
    assert got == {"prometheus": "1", "alertmanager": "1"}, got


def test_watchdog_goes_to_its_own_receiver_only(host):
    """Prometheus' always-firing Watchdog reaches Alertmanager, which routes it to the watchdog
    receiver alone (no integration in the sample): never the admin's mail."""
    got = wait_for(lambda: json.loads(in_container(host, "watchdog")), bool, 120)
    assert got == [["watchdog"]], got


def mails(host):
    return json.loads(in_container(host, "mailbox", MAIL_USER))


def assert_no_address(mail):
    assert ".onion" not in mail["raw"], mail["raw"]
    assert not re.search(r"\b[a-z2-7]{56}\b", mail["raw"]), mail["raw"]


def test_a_real_alert_arrives_in_the_admins_mailbox(host):
    """Prometheus' rules fire SecureDropTorMonitoringHostTorBroken in the container (its tor has no
    circuit: the container has only loopback); Alertmanager mails it through the role's Postfix on
    127.0.0.1:25 (no TLS) into the local account's mbox. Subject and text name the alert and the
    host; no onion address anywhere in the mail."""
    name = "SecureDropTorMonitoringHostTorBroken"
    got = wait_for(lambda: [m for m in mails(host) if name in m["subject"]], bool, 300)
    journal = host.run("journalctl -q -b -u prometheus-alertmanager -u postfix@- --no-pager -o cat | tail -n 20")
    assert got, journal.stdout
    mail = got[0]
    assert mail["subject"] == f"{name} FIRING: monitoring (SecureDrop monitoring-staging)", mail["subject"]
    assert f"{name} FIRING on monitoring" in mail["body"], mail["body"]
    assert "(severity critical, scope monitoring-host, SecureDrop monitoring-staging)" in mail["body"], mail["body"]
    assert "The monitoring host's own tor is broken" in mail["body"], mail["body"]
    assert "Runbook: file:///usr/local/share/doc/securedrop-tor-monitoring/runbook.md#" in mail["body"]
    assert_no_address(mail)


def test_a_server_alert_names_the_server_in_the_mail(host):
    """A server's alert (instance app), posted to Alertmanager as Prometheus sends it, arrives with
    the server's role name in the subject and the text."""
    stamp = str(int(time.time()))
    labels = {"alertname": "SecureDropTorOnionServiceNotPublished", "severity": "critical",
              "instance": "app", "job": "securedrop-tor", "service": "source",
              "site": "monitoring-staging", "verify": stamp}
    annotations = {"summary": "The descriptor of an onion service is not published.",
                   "description": f"The source onion service on app has no descriptor on the network ({stamp}).",
                   "runbook_url": "monitoring/runbook.md#securedroptoronionservicenotpublished"}
    in_container(host, "post", "'" + json.dumps(labels) + "'", "'" + json.dumps(annotations) + "'")
    # A new alert (its own `verify` label) in the critical route: mailed within group_interval (1m).
    got = wait_for(lambda: [m for m in mails(host) if stamp in m["body"]], bool, 150)
    envelopes = host.run(f"grep -n '^From ' /var/mail/{MAIL_USER}").stdout
    assert got, (envelopes, [m["subject"] for m in mails(host)])
    mail = got[-1]
    assert mail["subject"] == ("SecureDropTorOnionServiceNotPublished FIRING: app"
                               " (SecureDrop monitoring-staging)"), mail["subject"]
    assert "SecureDropTorOnionServiceNotPublished FIRING on app" in mail["body"], mail["body"]
    assert "(severity critical, scope , SecureDrop monitoring-staging)" in mail["body"], mail["body"]
    assert_no_address(mail)


def test_blackbox_reaches_tor_on_loopback(host):
    """The probe's module goes through 127.0.0.1:9050, and tor answers it: the placeholder address
    has no valid checksum, so tor refuses the SOCKS request at once (reply 1, "general SOCKS
    server failure" in Go's words: the SocksPort has no ExtendedErrors). Neither the unit's
    drop-in (IPAddressAllow=localhost; refused: "operation not permitted") nor the SOCKS firewall
    (refused: "connection refused") stopped it."""
    debug = in_container(host, "probe")
    assert "socks connect tcp 127.0.0.1:9050" in debug and "general SOCKS server failure" in debug, debug[-3000:]
    assert "operation not permitted" not in debug.lower() and "connection refused" not in debug, debug[-3000:]
