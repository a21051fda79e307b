"""The tor_monitoring role's own task files, run by real `ansible-playbook` (connection local) on this
machine, against temporary folders:

1. preflight.yml / servers.yml: a run that finds no <server>-metrics.auth_private on the controller
   stops before it changes anything, with a message that says why and what to do; so does one
   without a server named in tor_monitoring_expected_servers, or with a variable out of range;
   tor_monitoring_allow_no_servers lets it go on. client_keys.yml (as root, with the debian-tor
   account): from an empty folder the installed keys stay; with tor_monitoring_allow_no_servers
   they go; tor_monitoring_expected_servers installs only the servers it names.
2. rules.yml: the installed rules' runbook_url is tor_monitoring_runbook_base_url#<alert>, every
   other byte as shipped, and the runbook is installed where the default points (promtool needed).
3. alertmanager.yml: the sample goes in with the servers' alerts muted at SecureDrop's daily reboot
   (amtool check-config; the same receivers and inhibitions as the sample; every route's first
   child mutes scope="server"), a second run changes nothing, another reboot hour changes the block
   only and keeps the admin's edits, a file without the block is left alone; on a real
   Alertmanager, a window that holds the current time (in its `location`) mutes a server's alert
   and not the monitoring host's, and the same window in a time zone 12 h away mutes nothing
   (amtool and prometheus-alertmanager needed, as root).
"""

import datetime
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLES = REPO / "ansible" / "roles"
ROLE = ROLES / "tor_monitoring"
PLAYBOOK_BIN = pathlib.Path(sys.executable).parent / "ansible-playbook"
SAMPLE = REPO / "monitoring" / "alertmanager" / "alertmanager.yml"
RULES = REPO / "monitoring" / "rules"
KEY = "{onion}:descriptor:x25519:" + "B" * 52 + "\n"
ONIONS = {"app": "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid",
          "mon": "3gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid"}

needs_ansible = pytest.mark.skipif(not PLAYBOOK_BIN.exists(), reason="ansible-playbook is not in this venv")


def _account(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _dpkg_knows(package):
    return subprocess.run(["dpkg-query", "-W", package], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          check=False).returncode == 0 if shutil.which("dpkg-query") else False


needs_root_and_tor = pytest.mark.skipif(
    os.geteuid() != 0 or _account("debian-tor") is None or shutil.which("runuser") is None,
    reason="needs root, runuser and the debian-tor account (tor installed)")
needs_alertmanager = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("amtool") is None or not _dpkg_knows("prometheus-alertmanager")
    or _account("prometheus") is None,
    reason="needs root and Debian's prometheus-alertmanager (amtool, the prometheus group)")
needs_promtool = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("promtool") is None,
                                    reason="needs root and promtool (Debian's prometheus)")


def run_tasks(base, tasks_from, extra_vars):
    """Run one of the role's task files with ansible-playbook (connection local); (rc, output),
    stopping before the handlers (they would reload this machine's services)."""
    playbook = base / f"play-{tasks_from}.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": f"tor_monitoring: {tasks_from}",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [
            {"name": "The role's task file",
             "ansible.builtin.include_role": {"name": "tor_monitoring", "tasks_from": tasks_from}},
            {"name": "Stop before the handlers", "ansible.builtin.meta": "end_play"},
        ],
    }]), encoding="utf-8")
    varfile = base / f"vars-{tasks_from}.json"
    # the admin's mail address, which preflight requires (a reserved .test domain, not a
    # placeholder), and mail through a smarthost: no local Postfix is installed or started on the
    # machine that runs these tests (the Molecule scenario tests Postfix in its container)
    base_vars = {"ansible_python_interpreter": sys.executable,
                 "tor_monitoring_alert_email_to": ["securedrop-admins@site.test"],
                 "tor_monitoring_mail_transport": "smarthost",
                 "tor_monitoring_smtp_smarthost": "smtp.site.test:587"}
    varfile.write_text(json.dumps({**base_vars, **extra_vars}), encoding="utf-8")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROLES), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    result = subprocess.run([str(PLAYBOOK_BIN), "-i", "localhost,", "-e", f"@{varfile}", str(playbook)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=300, check=False)
    return result.returncode, result.stdout


def recap(output):
    m = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert m, output
    return {k: int(v) for k, v in zip(("ok", "changed", "unreachable", "failed"), m.groups())}


def said(output, text):
    return re.sub(r"\s+", " ", text) in re.sub(r"\s+", " ", output.replace("\\n", " "))


def write_keys(folder, *names):
    for name in names:
        (folder / f"{name}-metrics.auth_private").write_text(KEY.format(onion=ONIONS[name]), encoding="utf-8")


# --- 1. no servers: refused ----------------------------------------------------------------------

@needs_ansible
def test_preflight_refuses_an_empty_folder(tmp_path):
    admin = tmp_path / "admin"
    admin.mkdir()
    rc, out = run_tasks(tmp_path, "preflight", {"tor_monitoring_client_auth_dir": str(admin)})
    assert rc != 0 and recap(out)["failed"] == 1, out
    assert said(out, f"No <server>-metrics.auth_private in {admin} on the controller: refusing to run,"
                     " nothing was changed"), out
    assert said(out, "tor_monitoring_allow_no_servers=true"), out


@needs_ansible
def test_preflight_refuses_a_missing_folder(tmp_path):
    rc, out = run_tasks(tmp_path, "preflight", {"tor_monitoring_client_auth_dir": str(tmp_path / "nowhere")})
    assert rc != 0, out
    assert said(out, "refusing to run, nothing was changed"), out


@needs_ansible
def test_preflight_goes_on_with_keys_or_when_told(tmp_path):
    admin = tmp_path / "admin"
    admin.mkdir()
    rc, out = run_tasks(tmp_path, "preflight", {"tor_monitoring_client_auth_dir": str(admin),
                                                "tor_monitoring_allow_no_servers": True})
    assert rc == 0, out
    write_keys(admin, "app")
    rc, out = run_tasks(tmp_path, "preflight", {"tor_monitoring_client_auth_dir": str(admin)})
    assert rc == 0 and recap(out)["changed"] == 0, out


@needs_ansible
def test_preflight_refuses_without_an_expected_server(tmp_path):
    admin = tmp_path / "admin"
    admin.mkdir()
    write_keys(admin, "app")
    rc, out = run_tasks(tmp_path, "preflight", {"tor_monitoring_client_auth_dir": str(admin),
                                                "tor_monitoring_expected_servers": ["app", "mon"]})
    assert rc != 0, out
    assert said(out, f"No mon-metrics.auth_private in {admin} on the controller"), out
    assert said(out, "found: app"), out
    rc, out = run_tasks(tmp_path, "preflight", {"tor_monitoring_client_auth_dir": str(admin),
                                                "tor_monitoring_expected_servers": ["app"]})
    assert rc == 0, out


@pytest.mark.parametrize("bad", [
    {"daily_reboot_time": 24},
    {"tor_monitoring_daily_reboot_time": "4am"},
    {"tor_monitoring_daily_reboot_mute_minutes": 0},
    {"tor_monitoring_daily_reboot_mute_minutes": 61},
    {"tor_monitoring_daily_reboot_time_zone": "UTC; rm"},
    {"tor_monitoring_runbook_base_url": "https://wiki.example.org/run book"},
    {"tor_monitoring_runbook_base_url": "https://wiki.example.org/runbook#top"},
    {"tor_monitoring_expected_servers": ["../app"]},
])
@needs_ansible
def test_preflight_refuses_variables_out_of_range(tmp_path, bad):
    admin = tmp_path / "admin"
    admin.mkdir()
    write_keys(admin, "app")
    rc, out = run_tasks(tmp_path, "preflight", {"tor_monitoring_client_auth_dir": str(admin), **bad})
    assert rc != 0, out
    assert said(out, "tor_monitoring_daily_reboot_time must be an hour"), out


class TorWorld:
    """/var/tmp/…/lib-tor (debian-tor, 2700, like /var/lib/tor) and admin/ (the controller's folder)."""

    def __init__(self):
        self.base = pathlib.Path(tempfile.mkdtemp(prefix="sdte-monitoring-keys-", dir="/var/tmp"))
        self.base.chmod(0o755)
        tor = pwd.getpwnam("debian-tor")
        self.lib_tor = self.base / "lib-tor"
        self.lib_tor.mkdir()
        os.chown(self.lib_tor, tor.pw_uid, tor.pw_gid)
        self.lib_tor.chmod(0o2700)
        self.keys = self.lib_tor / "onion_auth"
        self.admin = self.base / "admin"
        self.admin.mkdir()

    def run(self, **extra):
        return run_tasks(self.base, "client_keys", {
            "tor_monitoring_onion_auth_dir": str(self.keys),
            "tor_monitoring_client_auth_dir": str(self.admin), **extra})

    def installed(self):
        return sorted(p.name for p in self.keys.iterdir())


@pytest.fixture
def tor_world():
    w = TorWorld()
    yield w
    shutil.rmtree(w.base)


@needs_ansible
@needs_root_and_tor
def test_client_keys_stay_when_the_folder_is_empty_and_go_only_when_told(tor_world):
    write_keys(tor_world.admin, "app", "mon")
    rc, out = tor_world.run()
    assert rc == 0, out
    assert tor_world.installed() == ["app-metrics.auth_private", "mon-metrics.auth_private"]
    for p in tor_world.admin.iterdir():
        p.unlink()
    # The wrong folder: refused, the keys stay.
    rc, out = tor_world.run()
    assert rc != 0 and recap(out)["changed"] == 0, out
    assert said(out, "refusing to run, nothing was changed"), out
    assert tor_world.installed() == ["app-metrics.auth_private", "mon-metrics.auth_private"]
    # On purpose: they go.
    rc, out = tor_world.run(tor_monitoring_allow_no_servers=True)
    assert rc == 0 and recap(out)["changed"] == 1, out  # one task, two keys
    assert tor_world.installed() == []


@needs_ansible
@needs_root_and_tor
def test_client_keys_of_the_expected_servers_only(tor_world):
    write_keys(tor_world.admin, "app", "mon")
    rc, out = tor_world.run(tor_monitoring_expected_servers=["mon"])
    assert rc == 0, out
    assert tor_world.installed() == ["mon-metrics.auth_private"]
    assert "B" * 52 not in out, "the private key reached the output"


# --- 2. runbook_url -------------------------------------------------------------------------------

@needs_ansible
@needs_promtool
@pytest.mark.parametrize("base", ["", "https://wiki.example.org/SecureDrop/runbook.md"])
def test_rules_get_the_runbook_base_url(tmp_path, base):
    extra = {"_tor_monitoring_rules_dir": str(tmp_path / "rules"),
             "_tor_monitoring_runbook_path": str(tmp_path / "doc" / "runbook.md")}
    if base:
        extra["tor_monitoring_runbook_base_url"] = base
    want = base or "file:///usr/local/share/doc/securedrop-tor-monitoring/runbook.md"
    rc, out = run_tasks(tmp_path, "rules", extra)
    assert rc == 0, out
    assert (tmp_path / "doc" / "runbook.md").read_bytes() == (REPO / "monitoring" / "runbook.md").read_bytes()
    anchors = set()
    for shipped in sorted(RULES.glob("*.rules.yml")):
        installed = (tmp_path / "rules" / shipped.name).read_text(encoding="utf-8")
        original = shipped.read_text(encoding="utf-8")
        urls = re.findall(r"runbook_url: (\S+)", installed)
        assert urls and all(u.startswith(want + "#") for u in urls), urls
        anchors |= {u.split("#", 1)[1] for u in urls}
        assert installed.replace(want + "#", "monitoring/runbook.md#") == original
        for group in yaml.safe_load(installed)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["annotations"]["runbook_url"] == f"{want}#{rule['alert'].lower()}"
    runbook = (REPO / "monitoring" / "runbook.md").read_text(encoding="utf-8")
    headings = {h.strip().lower() for h in re.findall(r"^## (.+)$", runbook, re.M)}
    assert anchors <= headings, anchors - headings
    rc, out = run_tasks(tmp_path, "rules", extra)
    assert rc == 0 and recap(out)["changed"] == 0, out


# --- 3. Alertmanager: the daily reboot's mute -----------------------------------------------------

def am_vars(tmp_path, **extra):
    return {"_tor_monitoring_am_config": str(tmp_path / "alertmanager.yml"), **extra}


def block_of(text):
    m = re.search(r"^# BEGIN tor_monitoring role.*?^# END tor_monitoring role[^\n]*\n", text, re.M | re.S)
    return m.group(0) if m else None


@needs_ansible
@needs_alertmanager
def without_mail(receivers):
    """The receivers without their recipients, which the role takes from the admin's variables."""
    return [{**r, "email_configs": [{k: v for k, v in c.items() if k != "to"} for c in r["email_configs"]]}
            if "email_configs" in r else r for r in receivers]


def without_smtp(settings):
    """Alertmanager's global settings without the smtp_* ones, which follow the mail transport."""
    return {k: v for k, v in settings.items() if not k.startswith("smtp_")}


def test_alertmanager_sample_goes_in_muted_at_the_daily_reboot(tmp_path):
    conf_path = tmp_path / "alertmanager.yml"
    rc, out = run_tasks(tmp_path, "alertmanager", am_vars(tmp_path))
    assert rc == 0 and recap(out)["changed"] == 1, out
    text = conf_path.read_text(encoding="utf-8")
    assert subprocess.run(["amtool", "check-config", str(conf_path)], check=False,
                          stdout=subprocess.DEVNULL).returncode == 0
    conf, sample = yaml.safe_load(text), yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    assert conf["time_intervals"] == [{"name": "securedrop-daily-reboot", "time_intervals": [
        {"times": [{"start_time": "04:00", "end_time": "04:20"}], "location": "UTC"}]}]
    # Everything of the sample is there; each route under the root gets the mute as its first child.
    # ... but the mail settings, which are the admin's (the recipients; the smarthost here)
    assert without_mail(conf["receivers"]) == without_mail(sample["receivers"])
    assert conf["inhibit_rules"] == sample["inhibit_rules"]
    tos = [c["to"] for r in conf["receivers"] for c in r.get("email_configs", [])]
    assert tos and set(tos) == {"securedrop-admins@site.test"}, tos
    assert without_smtp(conf["global"]) == without_smtp(sample["global"])
    assert conf["global"]["smtp_smarthost"] == "smtp.site.test:587", conf["global"]
    assert len(conf["route"]["routes"]) == len(sample["route"]["routes"])
    for got, shipped in zip(conf["route"]["routes"], sample["route"]["routes"]):
        assert got["routes"][0] == {"matchers": ['scope="server"'],
                                    "mute_time_intervals": ["securedrop-daily-reboot"]}
        assert {k: v for k, v in got.items() if k != "routes"} == shipped
        assert got["routes"][1:] == shipped.get("routes", [])
    # The receivers do not change: a server's alert goes where the sample sends it.
    for labels, receiver in [
            (["severity=critical", "scope=server", "alertname=SecureDropTorExporterUnreachable"],
             "securedrop-admin-page"),
            (["severity=warning", "scope=server", "alertname=SecureDropTorBootstrapStuck"], "securedrop-admin-mail"),
            (["severity=critical", "scope=monitoring-host", "alertname=SecureDropTorMonitoringHostTorBroken"],
             "securedrop-admin-page")]:
        r = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={conf_path}",
                            f"--verify.receivers={receiver}", *labels], capture_output=True, text=True, check=False)
        assert r.returncode == 0, (labels, r.stdout, r.stderr)
    # A second run changes nothing.
    rc, out = run_tasks(tmp_path, "alertmanager", am_vars(tmp_path))
    assert rc == 0 and recap(out)["changed"] == 0, out
    # The admin edits the receivers; another reboot hour changes the block only.
    edited = text.replace("securedrop-admin@example.org", "admin@newsroom.example")
    conf_path.write_text(edited, encoding="utf-8")
    rc, out = run_tasks(tmp_path, "alertmanager", am_vars(
        tmp_path, daily_reboot_time=23, tor_monitoring_daily_reboot_mute_minutes=60,
        tor_monitoring_daily_reboot_time_zone="America/New_York"))
    assert rc == 0 and recap(out)["changed"] == 1, out
    after = conf_path.read_text(encoding="utf-8")
    assert after.replace(block_of(after), "") == edited.replace(block_of(edited), "")
    assert yaml.safe_load(after)["time_intervals"][0]["time_intervals"] == [
        {"times": [{"start_time": "23:00", "end_time": "24:00"}], "location": "America/New_York"}]
    # A time zone Alertmanager does not know: refused by amtool, the file stays as it was.
    rc, out = run_tasks(tmp_path, "alertmanager", am_vars(tmp_path, tor_monitoring_daily_reboot_time_zone="Mars/Olympus"))
    assert rc != 0, out
    assert conf_path.read_text(encoding="utf-8") == after


@needs_ansible
@needs_alertmanager
def test_alertmanager_leaves_an_admins_file_without_the_block_alone(tmp_path):
    conf_path = tmp_path / "alertmanager.yml"
    own = "route:\n  receiver: mine\nreceivers:\n  - name: mine\n"
    conf_path.write_text(own, encoding="utf-8")
    rc, out = run_tasks(tmp_path, "alertmanager", am_vars(tmp_path))
    assert rc == 0 and recap(out)["changed"] == 0, out
    assert conf_path.read_text(encoding="utf-8") == own
    # tor_monitoring_alertmanager_config_src: installed as it is, no block added.
    src = tmp_path / "admin-alertmanager.yml"
    src.write_text(own.replace("mine", "theirs"), encoding="utf-8")
    rc, out = run_tasks(tmp_path, "alertmanager", am_vars(tmp_path, tor_monitoring_alertmanager_config_src=str(src)))
    assert rc == 0 and recap(out)["changed"] == 1, out
    assert conf_path.read_text(encoding="utf-8") == src.read_text(encoding="utf-8")


class Hook(BaseHTTPRequestHandler):
    received = []  # (alertmanager, alertname)
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with Hook.lock:
            Hook.received += [(self.path.strip("/").split("/")[0], a["labels"]["alertname"])
                              for a in body["alerts"] if a["status"] == "firing"]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_ansible
@needs_alertmanager
@pytest.mark.skipif(shutil.which("prometheus-alertmanager") is None, reason="needs prometheus-alertmanager")
def test_alertmanager_mutes_a_servers_alert_in_the_window_only(tmp_path):
    """Two Alertmanagers with the configuration as the role installs it, receivers turned into
    webhooks: 'inside' with the window [this UTC hour, +60 min) in UTC, 'outside' with the same
    hours in Etc/GMT+12 (12 h behind UTC, so the window is 12 h away). Each gets a server's alert and
    the monitoring host's, both critical: inside sends the monitoring host's only, outside both."""
    hour = datetime.datetime.now(datetime.timezone.utc).hour
    if datetime.datetime.now(datetime.timezone.utc).minute >= 58:
        time.sleep(150)  # the window must still hold the current time when the alerts are sent
        hour = datetime.datetime.now(datetime.timezone.utc).hour
    hook = ThreadingHTTPServer(("127.0.0.1", free_port()), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    procs = []
    try:
        for name, zone in [("inside", "UTC"), ("outside", "Etc/GMT+12")]:
            folder = tmp_path / name
            folder.mkdir()
            rc, out = run_tasks(folder, "alertmanager", {
                "_tor_monitoring_am_config": str(folder / "alertmanager.yml"), "daily_reboot_time": hour,
                "tor_monitoring_daily_reboot_mute_minutes": 60, "tor_monitoring_daily_reboot_time_zone": zone})
            assert rc == 0, out
            conf = yaml.safe_load((folder / "alertmanager.yml").read_text(encoding="utf-8"))
            for r in conf["receivers"]:
                for k in [k for k in r if k != "name"]:
                    del r[k]
                r["webhook_configs"] = [{"url": f"http://127.0.0.1:{hook.server_port}/{name}/{r['name']}"}]
            (folder / "live.yml").write_text(yaml.safe_dump(conf), encoding="utf-8")
            port = free_port()
            log = open(folder / "log", "wb")  # noqa: SIM115 (closed with the process)
            procs.append((name, port, log, subprocess.Popen(
                ["prometheus-alertmanager", f"--config.file={folder / 'live.yml'}",
                 f"--storage.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                 "--cluster.listen-address=", "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)))
        now = datetime.datetime.now(datetime.timezone.utc)
        for name, port, _, _ in procs:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1).read()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{name} Alertmanager never got ready"
                    time.sleep(0.2)  # poll interval of a condition with a deadline
            alerts = [{"labels": {"alertname": alertname, "severity": "critical", "scope": scope, "instance": "app"},
                       "startsAt": now.isoformat(), "endsAt": (now + datetime.timedelta(hours=1)).isoformat()}
                      for alertname, scope in [("ServerAlert", "server"), ("MonitoringHostAlert", "monitoring-host")]]
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/alerts", method="POST",
                                         data=json.dumps(alerts).encode(), headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=5).read()
        want = {("inside", "MonitoringHostAlert"), ("outside", "MonitoringHostAlert"), ("outside", "ServerAlert")}
        deadline = time.monotonic() + 60
        while not want <= set(Hook.received) and time.monotonic() < deadline:
            time.sleep(0.2)  # poll interval of a condition with a deadline
        time.sleep(15)  # the page route's group_wait is 10 s: anything muted would be in by now
        with Hook.lock:
            assert set(Hook.received) == want, Hook.received
    finally:
        hook.shutdown()
        for _, _, log, proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
