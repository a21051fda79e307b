"""The tor_monitoring role's drop-ins for Debian's prometheus-alertmanager and
prometheus-blackbox-exporter units (files/hardening/) bring `systemd-analyze security` to 3.0 or
less, from 9.2: each unit as Debian 12 ships it, with and without the drop-in, in a temporary root
(`--offline=yes --root=`), so the score is the role's files' own. Molecule's verify checks the real
units on the monitoring container (and that they still work)."""

import pathlib
import re
import shutil
import subprocess

import pytest

ROLE = pathlib.Path(__file__).resolve().parents[2] / "ansible" / "roles" / "tor_monitoring"
DROPIN = "tor-monitoring-hardening.conf"
LIMIT = 3.0

# The units of Debian 12's prometheus-alertmanager 0.25.0-1 and prometheus-blackbox-exporter
# 0.23.0-4, as /lib/systemd/system holds them.
DEBIAN_UNITS = {
    "prometheus-alertmanager": """[Unit]
Description=Alertmanager for prometheus
Documentation=https://prometheus.io/docs/alerting/alertmanager/

[Service]
Restart=on-failure
User=prometheus
EnvironmentFile=/etc/default/prometheus-alertmanager
ExecStart=/usr/bin/prometheus-alertmanager $ARGS
ExecReload=/bin/kill -HUP $MAINPID
TimeoutStopSec=20s
SendSIGKILL=no

[Install]
WantedBy=multi-user.target
""",
    "prometheus-blackbox-exporter": """[Unit]
Description=Blackbox exporter for Prometheus
Documentation=https://prometheus.io/docs/introduction/overview/ man:prometheus-blackbox-exporter(1)

[Service]
Restart=on-failure
User=prometheus
EnvironmentFile=/etc/default/prometheus-blackbox-exporter
ExecStart=/usr/bin/prometheus-blackbox-exporter $ARGS
ExecReload=/bin/kill -HUP $MAINPID

[Install]
WantedBy=multi-user.target
""",
}


def offline_supported():
    if shutil.which("systemd-analyze") is None:
        return False
    r = subprocess.run(["systemd-analyze", "security", "--help"], capture_output=True, text=True, check=False)
    return "--offline" in r.stdout and "--root" in r.stdout


needs_offline = pytest.mark.skipif(not offline_supported(),
                                   reason="needs systemd-analyze security --offline and --root (systemd 250+)")


def exposure(root, unit):
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={root}", f"{unit}.service"],
                       capture_output=True, text=True, check=False)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    return float(m.group(1)), r.stdout


@needs_offline
@pytest.mark.parametrize("unit", sorted(DEBIAN_UNITS))
def test_the_dropin_brings_the_exposure_to_3_or_less(tmp_path, unit):
    units = tmp_path / "usr" / "lib" / "systemd" / "system"
    units.mkdir(parents=True)
    (units / f"{unit}.service").write_text(DEBIAN_UNITS[unit], encoding="utf-8")
    before, _ = exposure(tmp_path, unit)
    dropins = tmp_path / "etc" / "systemd" / "system" / f"{unit}.service.d"
    dropins.mkdir(parents=True)
    shutil.copy(ROLE / "files" / "hardening" / f"{unit}.conf", dropins / DROPIN)
    after, report = exposure(tmp_path, unit)
    print(f"{unit}: {before} -> {after}")
    assert before > LIMIT, "the package's unit was expected to score worse (has it changed?)"
    assert after <= LIMIT, report
    # What each must keep: no capability, no new privileges, a read-only system.
    for setting in ("NoNewPrivileges=", "PrivateDevices=", "ProtectSystem=", "ProtectKernelTunables="):
        assert re.search(rf"^✓ {setting}", report, re.M), (setting, report)


def settings(unit):
    text = (ROLE / "files" / "hardening" / f"{unit}.conf").read_text(encoding="utf-8")
    return [line.split("=", 1) for line in text.splitlines() if line and not line.startswith(("#", "["))]


def test_alertmanager_keeps_its_data_folder_and_the_network():
    s = settings("prometheus-alertmanager")
    assert ["ReadWritePaths", "/var/lib/prometheus/alertmanager"] in s  # Debian's --storage.path
    assert ["ProtectSystem", "strict"] in s
    families = dict(s)["RestrictAddressFamilies"].split()
    assert {"AF_INET", "AF_INET6"} <= set(families)  # SMTP relay, webhooks
    assert "IPAddressDeny" not in dict(s), "the relay may be anywhere: no allow list in the role's drop-in"


def test_blackbox_reaches_loopback_only():
    s = settings("prometheus-blackbox-exporter")
    assert ["IPAddressDeny", "any"] in s and ["IPAddressAllow", "localhost"] in s
    assert not [k for k, _ in s if k in ("ReadWritePaths", "StateDirectory")]
    # cap_net_raw=ep on the binary (debconf want_cap_net_raw) must not make exec fail with EPERM.
    assert ["CapabilityBoundingSet", "CAP_NET_RAW"] in s and ["NoNewPrivileges", "yes"] in s
    assert ["AmbientCapabilities", ""] in s


def test_the_role_installs_each_dropin():
    tasks = (ROLE / "tasks" / "main.yml").read_text(encoding="utf-8")
    for unit in DEBIAN_UNITS:
        assert f"src: hardening/{unit}.conf" in tasks
        assert f"dest: /etc/systemd/system/{unit}.service.d/{{{{ _tor_monitoring_dropin_name }}}}" in tasks
    assert f"_tor_monitoring_dropin_name: {DROPIN}" in (ROLE / "vars" / "main.yml").read_text(encoding="utf-8")
