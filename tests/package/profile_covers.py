#!/usr/bin/python3
"""Does the exporter's AppArmor profile allow what the exporter really does?

AppArmor cannot run on the test kernel. Instead the packaged binary runs under strace (see
profile_covers.sh), and every path it opens or connects to is held against the profile's file
rules, with the profile's includes and variables expanded from /etc/apparmor.d/ and AppArmor's
glob semantics (apparmor_paths.py). Test paths are mapped to the production ones first
(TEST=PROD arguments), e.g. the throw-away tor's control socket to /run/tor/control.

Usage: profile_covers.py PROFILE STRACE_LOG [TEST=PROD ...]   exit 1 when something is denied.
"""

import itertools
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apparmor_paths_lib import glob_to_regex  # noqa: E402

AA = "/etc/apparmor.d"
profile_path, strace_log = sys.argv[1], sys.argv[2]
mapping = [a.split("=", 1) for a in sys.argv[3:]]

variables = {}
rules = []  # (deny, glob, perms)
seen = set()


def load(path):
    if path in seen or not os.path.isfile(path):
        return
    seen.add(path)
    for raw in open(path, encoding="utf-8"):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#include") else raw.strip()
        m = re.match(r"^#?include(?:\s+if\s+exists)?\s+<([^>]+)>", line)
        if m:
            target = os.path.join(AA, m.group(1))
            if os.path.isdir(target):
                for f in sorted(os.listdir(target)):
                    load(os.path.join(target, f))
            else:
                load(target)
            continue
        m = re.match(r"^(@\{\w+\})\s*(\+?=)\s*(.+)$", line)
        if m:
            values = m.group(3).split()
            variables.setdefault(m.group(1), [])
            if m.group(2) == "=":
                variables[m.group(1)] = values
            else:
                variables[m.group(1)] += values
            continue
        m = re.match(r"^(audit\s+)?(deny\s+)?(owner\s+)?(/\S+|@\{\w+\}\S*)\s+([a-zA-Z]+),", line)
        if m:
            rules.append((bool(m.group(2)), m.group(4), m.group(5)))


def expand(glob, depth=0):
    m = re.search(r"@\{\w+\}", glob)
    if not m or depth > 8:
        return [glob]
    out = []
    for value in variables.get(m.group(0), []):
        out += expand(glob[: m.start()] + value + glob[m.end():], depth + 1)
    return out


load(profile_path)
compiled = []
for deny, glob, perms in rules:
    for g in expand(glob):
        # a variable value like /run/ followed by a rule's own / gives //
        compiled.append((deny, glob_to_regex(re.sub(r"/+", "/", g)), perms))


def allowed(path, perm):
    ok = any(not d and perm in p and r.match(path) for d, r, p in compiled)
    denied = any(d and perm in p and r.match(path) for d, r, p in compiled)
    return ok and not denied


def production(path):
    for test, prod in mapping:
        if path == test or path.startswith(test.rstrip("/") + "/"):
            return prod + path[len(test):]
    return path


needs = {}
for line in open(strace_log, encoding="utf-8", errors="replace"):
    m = re.search(r'\b(?:open|openat|openat2)\((?:AT_FDCWD|\d+), "([^"]+)", ([A-Z_|]+)', line)
    if m:
        flags = m.group(2)
        perm = "w" if ("O_WRONLY" in flags or "O_RDWR" in flags or "O_CREAT" in flags) else "r"
        path = m.group(1) + ("/" if "O_DIRECTORY" in flags else "")
        needs.setdefault((production(path), perm), line.strip())
        continue
    m = re.search(r'\b(?:connect|sendto|sendmsg)\(.*sun_path="([^"]+)"', line)
    if m and not m.group(1).startswith("@"):
        needs.setdefault((production(m.group(1)), "w"), line.strip())

bad = 0
for (path, perm), line in sorted(needs.items()):
    if path.startswith("/proc/self/"):
        path = "/proc/4242/" + path[len("/proc/self/"):]
    if path.startswith("/proc/thread-self/"):
        path = "/proc/4242/task/4243/" + path[len("/proc/thread-self/"):]
    good = allowed(path, perm)
    print(("ok - " if good else "not ok - ") + f"{perm} {path}")
    if not good:
        print("#   " + line[:200])
        bad += 1
print(f"# {len(needs)} accesses, {len(compiled)} rules after expansion")
if len(needs) < 5:
    print("not ok - too few accesses seen: strace did not trace the exporter")
    bad += 1
sys.exit(1 if bad else 0)
