"""The monitoring host's tor SOCKS port and Prometheus' configuration after the tor_monitoring role
(Molecule's verify step): both carry what lets an account reach the servers' metrics onions (every
server's client key is behind the SOCKS port; the onion addresses are in prometheus.yml), so only
Prometheus' account may use the one and read the other.

The container's tor has its network on (prepare.yml) in a namespace with only loopback: its SOCKS
port is open, and a CONNECT to an onion waits for a Tor network that never comes. "Goes through" here
means tor took the connection and the request; the end-to-end scrape of a real onion service is the
private Tor network's test (docs/monitoring.md)."""

import json
import os
import time

WORKDIR = os.environ.get("TOR_MONITORING_MOLECULE_WORKDIR", "/var/tmp/tor-monitoring-molecule")
UNIT = "tor-monitoring-socks-firewall.service"
TABLE = "securedrop_tor_socks"
CONFIG = "/etc/prometheus/prometheus.yml"

# Run inside the container as some account: connect to tor's SOCKS port, greet, ask for the onion
# read from stdin (never on a command line). Prints one word: refused, no-socks, pending (tor took
# the request and is still trying) or reply-<code>.
SOCKS_CLIENT = r"""
import socket, struct, sys
onion = sys.stdin.read().strip() + ".onion"
try:
    s = socket.create_connection(("127.0.0.1", 9050), timeout=5)
except ConnectionRefusedError:
    print("refused"); sys.exit(0)
s.sendall(b"\x05\x01\x00")
if s.recv(2) != b"\x05\x00":
    print("no-socks"); sys.exit(0)
s.sendall(b"\x05\x01\x00\x03" + bytes([len(onion)]) + onion.encode() + struct.pack(">H", 80))
s.settimeout(3)
try:
    r = s.recv(10)
    print("reply-%02x" % r[1] if len(r) > 1 else "closed")
except socket.timeout:
    print("pending")
"""


def server_onion():
    """The onion address of one server (app), from the admin's key file on the controller."""
    with open(os.path.join(WORKDIR, "admin", "app-metrics.auth_private"), encoding="utf-8") as f:
        return f.read().split(":")[0]


def socks_as(host, account):
    host.run("cat > /var/tmp/verify_socks.py <<'PY'\n" + SOCKS_CLIENT + "\nPY")
    prefix = "" if account == "root" else f"runuser -u {account} -- "
    r = host.run(f"printf '%s' {server_onion()} | {prefix}python3 /var/tmp/verify_socks.py")
    assert r.rc == 0, (account, r.stderr[-500:])
    return r.stdout.strip()


def wait_for(host, cmd, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        r = host.run(cmd)
        if r.rc == 0 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)  # poll interval of a condition with a deadline


def tor_listens(host):
    return wait_for(host, "ss -Hltn 'sport = :9050' | grep -q '127.0.0.1:9050'")


def test_only_prometheus_can_use_the_socks_port(host):
    # tor listens: a refusal below is the rule's, not a closed port.
    assert tor_listens(host).rc == 0, host.run("ss -Hltn").stdout
    assert socks_as(host, "nobody") == "refused"
    # Root too: root can always become prometheus, or remove the table (docs/monitoring.md).
    assert socks_as(host, "root") == "refused"
    # Prometheus' account (blackbox_exporter's too on Debian): tor takes the request for the
    # server's onion and tries to reach it.
    assert socks_as(host, "prometheus") == "pending"


def test_prometheus_scrapes_through_tor(host):
    """Prometheus itself (its own unit, PrivateUsers=true) gets through the rule: its scrape of the
    servers' onions reaches tor and times out waiting for the Tor network, never refused."""
    cmd = ("python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
           "\"http://127.0.0.1:9090/api/v1/targets?state=active\", timeout=5).read().decode())'")
    deadline = time.monotonic() + 120  # a 1 min interval and a 30 s timeout
    while True:
        targets = [t for t in json.loads(host.run(cmd).stdout)["data"]["activeTargets"]
                   if t["labels"]["job"] == "securedrop-tor"]
        done = [t for t in targets if t["lastError"]]
        if len(done) == len(targets) == 2 or time.monotonic() > deadline:
            break
        time.sleep(2)  # poll interval of a condition with a deadline
    # (only the instance names and errors shown: the errors name the proxy, not the onion)
    errors = {t["labels"]["instance"]: t["lastError"].rsplit(": ", 1)[-1] for t in done}
    assert sorted(errors) == ["app", "mon"], errors
    for error in errors.values():
        assert "refused" not in error and "reset" not in error, errors


def test_tor_never_serves_socks_without_the_rule(host):
    """tor@default requires the firewall unit and starts after it: stopping the unit stops tor,
    starting tor loads the table first."""
    show = host.run("systemctl show -p Requires -p After tor@default.service").stdout
    assert show.count(UNIT) == 2, show
    assert host.run(f"systemctl stop {UNIT}").rc == 0
    try:
        assert host.run("systemctl is-active tor@default.service").stdout.strip() != "active"
        assert TABLE not in host.run("nft list tables").stdout
    finally:
        assert host.run("systemctl start tor@default.service").rc == 0
    assert host.run(f"systemctl is-active {UNIT}").stdout.strip() == "active"
    assert TABLE in host.run("nft list tables").stdout
    assert tor_listens(host).rc == 0
    assert socks_as(host, "nobody") == "refused"


def test_the_rule_is_the_roles_own_table(host):
    rules = host.run(f"nft list table inet {TABLE}").stdout
    assert 'oifname "lo" tcp dport 9050 meta skuid !=' in rules and "reject with tcp reset" in rules, rules
    uid = host.run("id -u prometheus").stdout.strip()
    assert uid in rules, rules
    assert host.file("/etc/securedrop-tor-monitoring/socks-firewall.nft").mode == 0o644
    assert host.service(UNIT).is_enabled


def test_only_prometheus_can_read_the_onion_addresses(host):
    f = host.file(CONFIG)
    assert (f.user, f.group, f.mode) == ("root", "prometheus", 0o640)
    assert server_onion() in f.content_string
    r = host.run(f"runuser -u nobody -- cat {CONFIG}")
    assert r.rc != 0 and "Permission denied" in r.stderr, r.rc
    assert host.run(f"runuser -u prometheus -- head -c 1 {CONFIG}").rc == 0


def test_a_prometheus_upgrade_keeps_the_mode(host):
    """Debian's prometheus.yml is a conffile: dpkg keeps the role's copy as it is, mode included
    (the package from the local repository installed again, as an upgrade would)."""
    before = host.file(CONFIG).content_string
    r = host.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall "
                 "-o Dpkg::Options::=--force-confold prometheus")
    assert r.rc == 0, r.stderr[-1000:]
    f = host.file(CONFIG)
    assert (f.user, f.group, f.mode) == ("root", "prometheus", 0o640)
    assert f.content_string == before
    ready = wait_for(host, "python3 -c 'import urllib.request; urllib.request.urlopen("
                     "\"http://127.0.0.1:9090/-/ready\", timeout=2)'", 60)
    assert ready.rc == 0, ready.stderr[-300:]
