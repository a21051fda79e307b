#!/usr/bin/python3
"""render.py TEMPLATE.j2 VARS.yml [KEY=VALUE ...]: render a template of this folder the way
Ansible's template module does (trim_blocks on, undefined variables are errors), for tests and
for admins without Ansible. Prints the result."""

import sys

import jinja2
import yaml


def render(template, variables):
    """The text of TEMPLATE (a path) rendered with VARIABLES (a dict)."""
    with open(template, encoding="utf-8") as f:
        source = f.read()
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.from_string(source).render(**variables)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[2], encoding="utf-8") as f:
        variables = yaml.safe_load(f) or {}
    for kv in argv[3:]:
        k, _, v = kv.partition("=")
        variables[k] = yaml.safe_load(v)
    sys.stdout.write(render(argv[1], variables))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
