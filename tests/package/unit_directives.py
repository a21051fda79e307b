#!/usr/bin/python3
"""Every directive of the unit is one this machine's systemd documents (systemd.directives(7)).

Debian 12 has systemd 252; Ubuntu 24.04 (SecureDrop's platform) has 255, which could not be run
here (docs/securedrop.md). A directive documented by 252 and used by a long-lived unit is not
among those systemd dropped up to 255; a directive that only newer systemd knows would show up
here as missing (and 252 would ignore it with a warning). Also: no directive appears in a section
it does not belong to (systemd ignores those too).

Usage: unit_directives.py UNIT   exit 1 when a directive is unknown or misplaced. A UNIT named
*.socket has its own directives in [Socket], any other in [Service].
"""

import re
import subprocess
import sys

UNIT_KEYS = {"Description", "Documentation", "After", "Before", "Wants", "Requires", "BindsTo",
             "Requisite", "PartOf", "Conflicts", "ConditionPathExists", "StartLimitIntervalSec",
             "StartLimitBurst"}
INSTALL_KEYS = {"WantedBy", "RequiredBy", "Alias", "Also"}

text = subprocess.run(["man", "-P", "cat", "systemd.directives"], capture_output=True, text=True,
                      env={"MANWIDTH": "200", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                      check=True).stdout
known = set(re.findall(r"^\s+([A-Z][A-Za-z0-9]+)=\s*$", text, re.M))
if len(known) < 500:
    sys.exit(f"systemd.directives(7) lists only {len(known)} directives: cannot check")

own = "Socket" if sys.argv[1].endswith(".socket") else "Service"
bad = 0
section = None
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    line = line.strip()
    if not line or line.startswith(("#", ";")):
        continue
    m = re.match(r"^\[(\w+)\]$", line)
    if m:
        section = m.group(1)
        continue
    key = line.split("=", 1)[0]
    where = "Unit" if key in UNIT_KEYS else "Install" if key in INSTALL_KEYS else own
    if key not in known:
        print(f"line {n}: {key}= is not a directive systemd documents here")
        bad += 1
    elif where != section:
        print(f"line {n}: {key}= belongs in [{where}], not [{section}]")
        bad += 1
print(f"{len(known)} directives known; unit checked")
sys.exit(1 if bad else 0)
