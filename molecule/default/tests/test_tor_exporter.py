"""State after converging with enable_tor_metrics on (run by Molecule's verify step, twice)."""

import base64
import os
import re

import yaml
from conftest import ADMIN_DIR
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

METRICS_DIR = "/var/lib/tor/securedrop-tor-exporter"
EXPECTED_SERVICES = {
    "app": {"source": "sourcev3", "journalist": "journalistv3", "ssh": "sshv3"},
    "mon": {"ssh": "sshv3"},
}


def onion(state):
    return state["hostnames"]["securedrop-tor-exporter"].removesuffix(".onion")


def test_package_and_units(state):
    assert state["package"] == "installed"
    assert state["exporter"]["active"] == "active"
    # systemd holds the exporter's port (the package's socket unit), so no other account can take it
    assert state["exporter_socket"]["active"] == "active"
    assert state["tor"]["active"] == "active"
    # the opt-in recovery stays off unless tor_exporter_recovery is set
    assert (state["recover_timer"]["enabled"], state["recover_timer"]["active"]) == (
        "disabled",
        "inactive",
    )


def test_metrics_on_loopback_shows_tor_up(state):
    assert state["metrics"]["status"] == 200
    assert state["metrics"]["tor_up"] == "1"


def test_onion_service_folder(state):
    assert state["metrics_dir"] == {"mode": "0o700", "owner": "debian-tor", "group": "debian-tor", "dir": True}
    assert state["authorized_clients_dir"]["mode"] == "0o700"
    assert state["authorized_clients_dir"]["owner"] == "debian-tor"
    assert state["metrics_onion_valid"], "the hostname file does not hold a v3 onion address"


def test_only_the_admins_client_is_authorized(state):
    clients = state["authorized_clients"]
    assert [c["name"] for c in clients] == ["securedrop-admin.auth"]
    assert clients[0]["public_key"] is not None, "not a descriptor:x25519:<52 base32> line"
    assert (clients[0]["mode"], clients[0]["owner"]) == ("0o600", "debian-tor")


def test_no_client_private_key_on_the_server(state):
    assert state["private_key_files"] == []


def test_tor_config_valid_and_serving_the_metrics_service(state):
    assert state["verify_config_rc"] == 0, "tor --verify-config as debian-tor failed"
    assert state["torrc_include_count"] == 1
    assert state["dropin"] is not None
    assert METRICS_DIR in state["tor_hidden_service_dirs"]


def test_exporter_knows_securedrops_onion_services(state, prefix):
    assert state["exporter_check_config_rc"] == 0, "securedrop-tor-exporter check-config failed"
    assert (state["onions_config"]["mode"], state["onions_config"]["owner"],
            state["onions_config"]["group"]) == ("0o640", "root", "debian-tor")
    expected = {role: state["hostnames"][folder].removesuffix(".onion")
                for role, folder in EXPECTED_SERVICES[prefix].items()}
    assert state["onions_config_entries"] == expected


def test_traffic_counters_off(state):
    # The role's file says off (on app-staging whatever the admin sets; on mon-staging off unless
    # opted in, which converge does not), the exporter reads it so, and exports no counters.
    assert state["traffic_config"] is not None, "no config.d/90-securedrop-traffic.toml"
    assert (state["traffic_config"]["mode"], state["traffic_config"]["owner"]) == ("0o644", "root")
    assert state["traffic_config"]["enabled"] == "false"
    assert state["exporter_traffic_enabled"] == "false"
    assert state["metrics"]["tor_up"] == "1", "tor not read yet: the absence below would prove nothing"
    assert state["metrics"]["traffic"] == {}


def test_auth_private_on_the_controller_matches_the_server(state, prefix):
    path = os.path.join(ADMIN_DIR, f"{prefix}-metrics.auth_private")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with open(path, encoding="ascii") as handle:
        line = handle.read()
    address, _, rest = line.partition(":")
    match = re.fullmatch(r"descriptor:x25519:([A-Z2-7]{52})\n", rest)
    assert match, "not <onion>:descriptor:x25519:<52 upper-case base32>"
    # the server's hostname, which the package's command found to be a v3 address
    assert address == onion(state)
    private = x25519.X25519PrivateKey.from_private_bytes(base64.b32decode(match.group(1) + "===="))
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.b32encode(public).decode().rstrip("=") == state["authorized_clients"][0]["public_key"]


def test_prometheus_snippet_on_the_controller(state, prefix):
    with open(os.path.join(ADMIN_DIR, "tor-metrics-prometheus.yml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"securedrop-tor-app", "securedrop-tor-mon"}
    job = jobs[f"securedrop-tor-{prefix}"]
    assert job["proxy_url"].startswith("socks5://")
    assert job["static_configs"] == [{"targets": [f"{onion(state)}.onion:80"], "labels": {"instance": prefix}}]
