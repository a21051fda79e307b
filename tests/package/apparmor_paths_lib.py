"""AppArmor's glob semantics as a regular expression (apparmor.d(5), "Globbing"): `*` is any run
of characters but `/`, `**` any run including `/`, `?` one character but `/`, `{a,b}`
alternatives, `[...]` a class; a `*` or `**` right after a `/` matches at least one character,
and a directory is looked up with a trailing `/`. Shared by apparmor_paths.py and
profile_covers.py."""

import re


def _split_top(text):
    """Split {a,b{c,d}} content at its top-level commas."""
    parts, depth, cur = [], 0, ""
    for c in text:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        cur += c
    return parts + [cur]


def _closing(glob, i):
    depth = 0
    for j in range(i, len(glob)):
        depth += {"{": 1, "}": -1}.get(glob[j], 0)
        if depth == 0:
            return j
    raise ValueError("unbalanced { in " + glob)


def _pattern(glob, prev=""):
    out = []
    i = 0
    while i < len(glob):
        c = glob[i]
        before = glob[i - 1] if i > 0 else prev
        if glob.startswith("**", i):
            out.append("[^/].*" if before == "/" else ".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]+" if before == "/" else "[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "{":
            j = _closing(glob, i)
            out.append("(?:" + "|".join(_pattern(a, before) for a in _split_top(glob[i + 1 : j])) + ")")
            i = j
        elif c == "[":
            j = glob.index("]", i)
            cls = glob[i + 1 : j]
            out.append("[" + ("^" + cls[1:] if cls.startswith("^") else cls) + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def glob_to_regex(glob):
    return re.compile(_pattern(glob) + r"\Z")
