#!/usr/bin/python3
"""Test helper, run inside a Molecule container: prints the tor / exporter state as one JSON object.

One call gathers everything the tests assert on (testinfra's ansible backend costs ~0.75 s per
command). Prints no secret: no cookie, no private key; public keys and the test containers' onion
addresses only.
"""

import glob
import grp
import json
import os
import pwd
import re
import socket
import stat
import subprocess
import urllib.request

METRICS_DIR = "/var/lib/tor/securedrop-tor-exporter"
SERVICES_DIR = "/var/lib/tor/services"
DROPIN = "/etc/tor/securedrop-tor-exporter.torrc"
TORRC = "/etc/tor/torrc"
CONFIG_DIR = "/etc/securedrop-tor-exporter"
ONIONS_CONFIG = CONFIG_DIR + "/config.d/40-securedrop-onions.toml"
TRAFFIC_CONFIG = CONFIG_DIR + "/config.d/90-securedrop-traffic.toml"
METRICS_URL = "http://127.0.0.1:9747/metrics"
# The package's command, as prepare.yml copied it from the .deb under test: what counts as the
# include, a valid configuration and a v3 address is the package's to say, also while it is not
# installed.
SDTE = "/usr/local/sbin/sdte-securedrop-tor-exporter"
AUTH_LINE = re.compile(r"^descriptor:x25519:([A-Z2-7]{52})$")


def run(*argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout.strip()


def file_info(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return {
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "owner": pwd.getpwuid(st.st_uid).pw_name,
        "group": grp.getgrgid(st.st_gid).gr_name,
        "dir": stat.S_ISDIR(st.st_mode),
    }


def read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def unit(name):
    _, active = run("systemctl", "is-active", name)
    _, props = run("systemctl", "show", "--property=MainPID,NRestarts", "--value", name)
    values = props.split("\n") + ["", ""]
    return {"active": active, "pid": values[0], "nrestarts": values[1]}


def control(commands):
    """Replies to commands on tor's control socket (cookie authentication), or an error string."""
    try:
        with open("/run/tor/control.authcookie", "rb") as handle:
            cookie = handle.read().hex()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect("/run/tor/control")
    except OSError as exc:
        return "error: " + type(exc).__name__
    replies = []
    with sock, sock.makefile("rb") as stream:
        for command in ["AUTHENTICATE " + cookie] + commands:
            sock.sendall(command.encode() + b"\r\n")
            lines = []
            while True:
                line = stream.readline().decode().rstrip("\r\n")
                if not line:
                    return "error: connection closed"
                lines.append(line)
                if len(line) >= 4 and line[3] == " ":
                    break
            replies.append(lines)
    if not replies[0][-1].startswith("250"):
        return "error: authentication refused"
    return replies[1:]


def verify_config_as_debian_tor():
    """`torrc verify`: tor --verify-config as tor@default reads the torrc on reload."""
    return run(SDTE, "torrc", "verify", TORRC)[0]


def torrc_include_count():
    """Lines of the torrc that make tor read the drop-in, whoever wrote them."""
    rc, out = run(SDTE, "torrc", "has-include", "--count", TORRC)
    return int(out) if rc in (0, 1) else f"error {rc}"


def v3_address(text):
    """`text` without .onion if it is a v3 onion address (the package's check), else None."""
    proc = subprocess.run([SDTE, "check-onion-address", "--print"], input=text, capture_output=True,
                          text=True, timeout=60, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def metrics():
    try:
        with urllib.request.urlopen(METRICS_URL, timeout=5) as response:
            body = response.read().decode()
            status = response.status
    except OSError as exc:
        return {"status": 0, "error": type(exc).__name__}
    values = {}
    traffic = {}
    for line in body.splitlines():
        if line.startswith(("tor_up ", "tor_up{")):
            values["tor_up"] = line.rsplit(" ", 1)[1]
        # tor's traffic counters: their samples, if the exporter exports them at all
        if line.startswith("tor_traffic_"):
            name, _, value = line.rpartition(" ")
            traffic[name] = value
    return {"status": status, "tor_up": values.get("tor_up"), "traffic": traffic}


def traffic_enabled(toml_text):
    """The `enabled` value of the [traffic] section of a TOML text, or None."""
    match = re.search(r"^\[traffic\]\s*\n(?:[^\[].*\n|\n)*?enabled\s*=\s*(\w+)", toml_text or "", re.M)
    return match.group(1) if match else None


def exporter_traffic_enabled():
    """traffic.enabled as the exporter reads its configuration files (check-config), or None."""
    if not os.path.exists("/usr/bin/securedrop-tor-exporter"):
        return None
    rc, out = run("securedrop-tor-exporter", "check-config")
    return traffic_enabled(out + "\n") if rc == 0 else f"error {rc}"


def private_key_files():
    """Files on the server, outside authorized_clients/, that hold an x25519 client key line."""
    rc, out = run("grep", "-rlsIE", "--exclude-dir=authorized_clients",
                  "descriptor:x25519:[A-Z2-7]{52}", "/etc", "/var/lib", "/root", "/var/cache")
    return out.splitlines() if rc == 0 else []


def main():
    hostnames = {}
    for path in glob.glob(SERVICES_DIR + "/*/hostname") + [METRICS_DIR + "/hostname"]:
        content = read(path)
        if content is not None:
            hostnames[os.path.basename(os.path.dirname(path))] = content.strip()
    clients = []
    for path in sorted(glob.glob(METRICS_DIR + "/authorized_clients/*")):
        match = AUTH_LINE.match((read(path) or "").strip())
        clients.append({"name": os.path.basename(path), "public_key": match.group(1) if match else None,
                        **file_info(path)})
    torrc = read(TORRC) or ""
    hs_conf = control(["GETCONF HiddenServiceOptions"])
    hs_dirs = ([line[4:].split("=", 1)[1].rstrip("/") for line in hs_conf[0] if "HiddenServiceDir=" in line]
               if isinstance(hs_conf, list) else hs_conf)
    pkg_rc, pkg = run("dpkg-query", "--show", "--showformat=${db:Status-Status}", "securedrop-tor-exporter")
    onions_config = read(ONIONS_CONFIG)
    state = {
        "tor": unit("tor@default.service"),
        "exporter": unit("securedrop-tor-exporter.service"),
        "exporter_socket": unit("securedrop-tor-exporter.socket"),
        "recover_timer": dict(unit("securedrop-tor-recover.timer"),
                              enabled=run("systemctl", "is-enabled", "securedrop-tor-recover.timer")[1]),
        "package": pkg if pkg_rc == 0 else "not-installed",
        "hostnames": hostnames,
        "metrics_dir": file_info(METRICS_DIR),
        "authorized_clients_dir": file_info(METRICS_DIR + "/authorized_clients"),
        "authorized_clients": clients,
        "torrc_include_count": torrc_include_count(),
        "torrc_role_marker": "tor_exporter Ansible role" in torrc,
        "torrc_package_marker": run(SDTE, "torrc", "has-include", "--ours", TORRC)[0] == 0,
        "dropin": file_info(DROPIN),
        "config_dir": file_info(CONFIG_DIR),
        "onions_config": file_info(ONIONS_CONFIG),
        "onions_config_entries": {role: v3_address(value) for role, value in
                                  re.findall(r'^(\w+)\s*=\s*"([^"]*)"\s*$', onions_config or "", re.M)},
        "metrics_onion_valid": v3_address(hostnames.get("securedrop-tor-exporter") or "") is not None,
        "verify_config_rc": verify_config_as_debian_tor(),
        # the exporter's own view of its configuration, config.d included (output discarded)
        "exporter_check_config_rc": (run("securedrop-tor-exporter", "check-config")[0]
                                     if os.path.exists("/usr/bin/securedrop-tor-exporter") else None),
        "tor_hidden_service_dirs": hs_dirs,
        # the role's traffic file: its [traffic] enabled value, and the exporter's effective one
        "traffic_config": dict(file_info(TRAFFIC_CONFIG), enabled=traffic_enabled(read(TRAFFIC_CONFIG)))
        if os.path.lexists(TRAFFIC_CONFIG) else None,
        "exporter_traffic_enabled": exporter_traffic_enabled(),
        "metrics": metrics(),
        "private_key_files": private_key_files(),
    }
    print(json.dumps(state, sort_keys=True))


if __name__ == "__main__":
    main()
