"""State of the monitoring host after the tor_monitoring role (Molecule's verify step)."""

import glob
import json
import os
import time

import yaml

WORKDIR = os.environ.get("TOR_MONITORING_MOLECULE_WORKDIR", "/var/tmp/tor-monitoring-molecule")
ADMIN_DIR = os.path.join(WORKDIR, "admin")
AUTH_DIR = "/var/lib/tor/onion_auth"


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
    for unit in ["tor@default", "prometheus", "prometheus-alertmanager", "securedrop-tor-exporter"]:
        s = host.service(unit)
        assert s.is_running, unit
        assert s.is_enabled or unit == "tor@default", unit


def test_everything_listens_on_loopback_only(host):
    listening = host.run("ss -Hltn").stdout.split("\n")
    local = [line.split()[3] for line in listening if line.strip()]
    # (tor's SocksPort 9050 is not open here: the test container's tor has DisableNetwork 1.)
    for port in ["9090", "9093", "9747"]:
        addrs = [a for a in local if a.rsplit(":", 1)[1] == port]
        assert addrs, f"nothing listens on {port}: {local}"
        assert all(a.startswith("127.0.0.1:") for a in addrs), f"{port}: {addrs}"
    assert not [a for a in local if a.endswith(":9094")], "Alertmanager gossips on 9094"


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
    assert host.run("promtool check config /etc/prometheus/prometheus.yml").rc == 0


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
