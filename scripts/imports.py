#!/usr/bin/env python3
"""Draws the crate's import graph and checks that it only points down.

Reads every `crate::…` and `super::…` path in src/ (use lines and inline paths, not comments),
maps each file to its module (src/source/onion/tracker.rs is source::onion::tracker) and prints
one line per edge between top-level modules, with the layers they sit in. With --check it exits
1 when a module imports one in a higher layer, or when any two modules (at any depth) import each
other through a circle. The layer list below is the design: a new module must be given a layer.

    scripts/imports.py           # the drawing
    scripts/imports.py --check   # the drawing, and exit 1 on a violation (run by cargo test)
    scripts/imports.py --dot     # Graphviz input
    scripts/imports.py --check --src DIR   # another tree (the test's own bad examples)
"""

import pathlib
import re
import sys

# Lowest first. A module may import its own layer's siblings only where listed in SAME_LAYER,
# and any lower layer.
LAYERS = [
    ["small_file", "clock", "duration_text", "systemd_protocol", "shutdown", "log_limit"],
    ["control"],
    ["config", "keys", "label_key", "logging", "setup"],
    ["source"],
    ["snapshot"],
    ["policy", "health"],
    ["metrics", "page", "recovery"],
    ["http", "tasks"],
    ["crate"],  # lib.rs: run()
    ["cli"],  # the commands, `serve` among them, over everything (src/main.rs only wires them)
]
# setup's socket unit follows web.listen_address, whose default the configuration owns; its
# setup writes the client keys in their file formats.
SAME_LAYER = {("logging", "config"), ("setup", "config"), ("setup", "keys")}

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
if "--src" in sys.argv:
    SRC = pathlib.Path(sys.argv[sys.argv.index("--src") + 1]).resolve()
PATH = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")
COMMENT = re.compile(r"//.*$")


def module_of(path: pathlib.Path) -> list[str]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return parts


def edges() -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    known = {tuple(module_of(p)) for p in SRC.rglob("*.rs") if p.name != "main.rs"}
    out = set()
    for path in sorted(SRC.rglob("*.rs")):
        if path.name == "main.rs":
            continue  # the binary uses the library from outside
        me = module_of(path)
        is_mod_file = path.name in ("mod.rs", "lib.rs")
        text = path.read_text()
        # Unit tests may reach anywhere in the crate; the layering is about shipped code.
        text = text.split("#[cfg(test)]\nmod tests")[0]
        for line in text.splitlines():
            line = COMMENT.sub("", line)
            for root, rest in PATH.findall(line):
                segs = rest.strip(":").split("::")
                if root == "crate":
                    base: list[str] = []
                else:
                    # `super` from a mod.rs is the parent of its folder's module.
                    base = me[:-1] if not is_mod_file or me else []
                    while segs and segs[0] == "super":
                        base = base[:-1]
                        segs = segs[1:]
                target = base + segs
                # Longest prefix that is a module (the rest names an item); the crate root
                # (lib.rs, `()`) when none is.
                while target and tuple(target) not in known:
                    target = target[:-1]
                if tuple(target) != tuple(me):
                    out.add((tuple(me), tuple(target)))
    return out


def layer_of(top: str) -> int:
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise SystemExit(f"imports.py: module {top} has no layer; add it to LAYERS")


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def main() -> int:
    check = "--check" in sys.argv
    dot = "--dot" in sys.argv
    es = edges()
    top = sorted({(a[0] if a else "crate", b[0] if b else "crate") for a, b in es})
    top = [(a, b) for a, b in top if a != b]
    problems = []
    if dot:
        print("digraph imports {")
    for a, b in top:
        la, lb = layer_of(a), layer_of(b)
        ok = lb < la or (a, b) in SAME_LAYER
        if not ok:
            problems.append(f"{a} (layer {la}) imports {b} (layer {lb}): not downward")
        if dot:
            print(f'  "{a}" -> "{b}";')
        else:
            print(f"{a:>10} [{la}] -> {b} [{lb}]{'' if ok else '   <-- UPWARD'}")
    if dot:
        print("}")
    full: dict[str, set[str]] = {}
    for a, b in es:
        full.setdefault("::".join(a) or "crate", set()).add("::".join(b) or "crate")
    for c in circles(full):
        problems.append("circle: " + " -> ".join(c))
    for p in problems:
        print("imports.py: " + p, file=sys.stderr)
    if not problems:
        print(f"imports.py: {len(es)} module imports, {len(top)} between top-level modules, "
              "all downward, no circle", file=sys.stderr)
    return 1 if check and problems else 0


if __name__ == "__main__":
    sys.exit(main())
