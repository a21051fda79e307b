#!/usr/bin/python3
"""Static AppArmor check: can tor, confined by system_tor, read and write every path this product
makes it use, under the old (`/etc/tor/* r`, tor packaging up to 0.4.9.7) and the new
(`/etc/tor/** r`, 0.4.9.8 and later) tor abstraction?

AppArmor cannot run on the test machine's kernel, so this matches paths against the profile's
rules with AppArmor's glob semantics (apparmor.d(5), "Globbing"): `*` is any run of characters but
`/`, `**` any run including `/`, `?` one character but `/`, `{a,b}` alternatives, `[...]` a class;
a `*` or `**` right after a `/` matches at least one character (so `/etc/tor/*` does not match the
directory `/etc/tor/` itself), and a directory is looked up with a trailing `/`.

The paths come from the files that set them: the binary's src/setup/include.rs and paths.rs (the
drop-in, the onion folder, the include line), postrm's copies, the role's vars and defaults, and the SecureDrop patch series (the include line and
the file its role creates). The rules come from the tor package's profile on this machine
(/etc/apparmor.d/system_tor and abstractions/tor), once as installed and once with the abstraction's
`/etc/tor/** r` rule put back to the old `/etc/tor/* r` (or the other way round). Negative controls
(a file below /etc/tor/torrc.d/ under the old rules, the /etc/tor/ listing) show the matcher can
say no.

Usage: apparmor_paths.py REPO   prints ok / not ok lines; exit status 1 on any failure.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apparmor_paths_lib import glob_to_regex  # noqa: E402

REPO = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
PROFILE = os.environ.get("SDTE_AA_PROFILE", "/etc/apparmor.d/system_tor")
ABSTRACTION = os.environ.get("SDTE_AA_ABSTRACTION", "/etc/apparmor.d/abstractions/tor")

failures = 0


def result(good, desc):
    global failures
    print(("ok - " if good else "not ok - ") + desc)
    if not good:
        failures += 1


RULE = re.compile(r"^\s*(?:owner\s+)?(/\S+)\s+([a-zA-Z]+),")


def rules_of(text):
    rules = []
    for line in text.splitlines():
        m = RULE.match(line)
        if m:
            rules.append((m.group(1), m.group(2)))
    return rules


def allowed(rules, path, perm):
    return any(perm in perms and glob_to_regex(glob).match(path) for glob, perms in rules)


def var(path, name):
    """NAME=value of a shell file, $NAME and $VAR expanded from earlier assignments."""
    env = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^([A-Z_]+)=(.*)$", line.rstrip("\n"))
        if m and not m.group(2).startswith("$("):
            value = m.group(2).strip('"')
            value = re.sub(r"\$\{?([A-Z_]+)\}?", lambda v: env.get(v.group(1), v.group(0)), value)
            env[m.group(1)] = value
    return env[name]


def yaml_scalar(path, key):
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^" + re.escape(key) + r":\s*(.+)$", line)
        if m:
            return m.group(1).strip().strip("\"'")
    raise KeyError(key + " in " + path)


# --- the rule sets
profile = open(PROFILE, encoding="utf-8").read()
abstraction = open(ABSTRACTION, encoding="utf-8").read()
installed = rules_of(profile) + rules_of(abstraction)
has_new = "/etc/tor/** r," in abstraction
has_old = re.search(r"^\s*/etc/tor/\* r,", abstraction, re.M) is not None
result(has_new or has_old, "the installed tor abstraction has /etc/tor/** r or /etc/tor/* r")
if has_new:
    old_abs = abstraction.replace("/etc/tor/** r,", "/etc/tor/* r,")
    new_abs = abstraction
else:
    old_abs = abstraction
    new_abs = re.sub(r"^(\s*)/etc/tor/\* r,", r"\1/etc/tor/** r,", abstraction, flags=re.M)
RULESETS = {
    "old (/etc/tor/* r)": rules_of(profile) + rules_of(old_abs),
    "new (/etc/tor/** r)": rules_of(profile) + rules_of(new_abs),
}

# --- the paths, from the files that set them
deb = os.path.join(REPO, "debian")
role = os.path.join(REPO, "ansible", "roles", "tor_exporter")
# the drop-in, the onion folder and the include line: the binary owns them (its setup writes them)
include_rs = open(os.path.join(REPO, "src", "setup", "include.rs"), encoding="utf-8").read()
paths_rs = open(os.path.join(REPO, "src", "setup", "paths.rs"), encoding="utf-8").read()
dropin = re.search(r'^pub const DROPIN: &str = "([^"]+)";$', include_rs, re.M).group(1)
hs_dir = re.search(r'^pub const HS_DIR: &str = "([^"]+)";$', paths_rs, re.M).group(1)
include_line = re.search(r'^pub const INCLUDE_LINE: &str = "([^"]+)";$', include_rs, re.M).group(1)
result(var(os.path.join(deb, "postrm"), "DROPIN") == dropin, f"postrm names the binary's drop-in ({dropin})")
result(var(os.path.join(deb, "postrm"), "HS_DIR") == hs_dir, f"postrm names the binary's onion folder ({hs_dir})")
role_dropin = yaml_scalar(os.path.join(role, "vars", "main.yml"), "_tor_exporter_dropin")
role_include = yaml_scalar(os.path.join(role, "defaults", "main.yml"), "tor_exporter_torrc_include")
role_onion = yaml_scalar(os.path.join(role, "defaults", "main.yml"), "tor_exporter_onion_dir")
result(role_dropin == dropin, f"the role's _tor_exporter_dropin is the package's ({role_dropin})")
result(role_onion.rstrip("/") == hs_dir.rstrip("/"), f"the role's onion folder is the package's ({role_onion})")

includes = {"package": include_line, "role": role_include}
patches = os.path.join(REPO, "contrib", "securedrop", "patches")
sd_touch = None
for name in sorted(os.listdir(patches)) if os.path.isdir(patches) else []:
    for line in open(os.path.join(patches, name), encoding="utf-8"):
        if line.startswith("+%include"):
            includes["SecureDrop template"] = line[1:].strip()
        m = re.match(r"^\+\s+dest: (/etc/tor/\S+)$", line)
        if m:
            sd_touch = m.group(1)
result("SecureDrop template" in includes, "the SecureDrop patch series has an %include line")
result(sd_touch == dropin, f"the patched tor-hidden-services role creates the package's drop-in ({sd_touch})")

read_paths = {"/etc/tor/torrc": "tor's torrc", dropin: "the drop-in"}
for who, line in includes.items():
    m = re.match(r"^%include\s+(\S+)$", line)
    result(m is not None, f"{who} include is one %include of one path ({line})")
    if not m:
        continue
    target = m.group(1)
    result(not re.search(r"[*?\[{]", target) and not target.endswith("/"),
           f"{who} include names one file, no glob or folder (tor would list a folder: {target})")
    result(target == dropin, f"{who} include names the drop-in")
    read_paths[target] = f"{who} include"
hs = hs_dir.rstrip("/")
write_paths = {
    hs + "/": "the onion folder",
    hs + "/hostname": "its hostname",
    hs + "/hs_ed25519_secret_key": "its secret key",
    hs + "/authorized_clients/": "its clients folder",
}
read_paths[hs + "/authorized_clients/securedrop-admin.auth"] = "an authorized client"
# the onion service's target: tor connects to it (AppArmor checks `w` on connect); the binary owns
# the path, the socket unit listens there
setup_rs = open(os.path.join(REPO, "src", "setup", "mod.rs"), encoding="utf-8").read()
onion_socket = re.search(r'^pub const ONION_SOCKET: &str = "([^"]+)";$', setup_rs, re.M).group(1)
unit = open(os.path.join(deb, "securedrop-tor-exporter.securedrop-tor-exporter-onion.socket"), encoding="utf-8").read()
result(f"\nListenStream={onion_socket}\n" in unit, f"the onion socket unit listens on the binary's path ({onion_socket})")
write_paths[onion_socket] = "the onion socket (connect)"

for rs_name, rules in RULESETS.items():
    for path, what in sorted(read_paths.items()):
        result(allowed(rules, path, "r"), f"{rs_name}: tor may read {what} {path}")
    for path, what in sorted(write_paths.items()):
        result(allowed(rules, path, "w"), f"{rs_name}: tor may write {what} {path}")
        result(allowed(rules, path, "r"), f"{rs_name}: tor may read {what} {path}")

# negative controls: the matcher says no where AppArmor does
old, new = RULESETS["old (/etc/tor/* r)"], RULESETS["new (/etc/tor/** r)"]
legacy = "/etc/tor/torrc.d/securedrop-tor-exporter.conf"
result(not allowed(old, legacy, "r"), f"control: the old rules deny {legacy} (why it moved)")
result(allowed(new, legacy, "r"), f"control: the new rules allow {legacy}")
result(not allowed(old, "/etc/tor/torrc.d/", "r") and not allowed(new, "/etc/tor/", "r"),
       "control: listing /etc/tor/torrc.d/ (old) or /etc/tor/ (either) is denied: no glob includes")
result(not allowed(new, "/etc/securedrop-tor-exporter/config.toml", "r"),
       "control: tor may not read the exporter's own config")
result(not allowed(new, "/run/securedrop-tor-exporter/metrics.sock", "w"),
       "control: tor may not connect to a socket of ours below /run (why the socket is in tor's folder)")

sys.exit(1 if failures else 0)
