"""Compiles every whole function or method a patch adds, for patches whose target code is absent.

SecureDrop's Python code is not in the data-only snapshot, so a patch to it cannot be applied and
run here. What the patch text alone allows checking: each run of added lines that starts a `def`
(or a decorator) is a complete definition; dedented, it must parse as Python. Exits 1 when one
does not, or when the patch adds no function at all (then there is nothing this check covers,
and saying "passed" would be a lie).

Usage: added_functions.py PATCH
"""

import ast
import sys
import textwrap


def added_runs(lines):
    """Yields (file, first line number in the patch, text) for each run of added lines."""
    path, run, start = None, [], 0
    for number, line in enumerate(lines, 1):
        if line.startswith("+++ "):
            path = line[4:].removeprefix("b/")
            continue
        if line.startswith("+") and path is not None:
            if not run:
                start = number
            run.append(line[1:])
            continue
        if run:
            yield path, start, "\n".join(run)
            run = []
    if run:
        yield path, start, "\n".join(run)


def main(patch):
    with open(patch, encoding="utf-8") as f:
        lines = f.read().splitlines()
    found = 0
    bad = []
    for path, start, text in added_runs(lines):
        if not path.endswith(".py"):
            continue
        body = textwrap.dedent(text).strip("\n")
        head = body.lstrip().split("\n", 1)[0]
        if not (head.startswith("def ") or head.startswith("@")):
            continue
        found += 1
        try:
            ast.parse(body, filename=f"{patch}:{start}")
        except SyntaxError as e:
            bad.append(f"{path} (patch line {start}): {e.msg} at line {e.lineno}")
    for b in bad:
        print(f"does not compile: {b}", file=sys.stderr)
    if found == 0:
        print(f"{patch}: adds no whole function", file=sys.stderr)
        return 1
    if bad:
        return 1
    print(f"# {found} added functions compile")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
