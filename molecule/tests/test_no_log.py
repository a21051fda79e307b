"""Onion addresses never reach Ansible's output: every task of the roles that reads a file from a
server (slurp: the onion services' hostnames) or prints an address (the package's
`check-onion-address --print`) and every task that keeps or shows what such a task read runs with
no_log, so `ansible-playbook -v` prints none of it."""

import pathlib

import pytest
import yaml

ROLES = pathlib.Path(__file__).resolve().parents[2] / "ansible" / "roles"
TASK_FILES = sorted(ROLES.glob("*/tasks/*.yml")) + sorted(ROLES.glob("*/handlers/*.yml"))


def tasks(path):
    """Every task of a task file, blocks flattened."""
    stack = list(yaml.safe_load(path.read_text(encoding="utf-8")) or [])
    while stack:
        task = stack.pop(0)
        for key in ("block", "rescue", "always"):
            stack.extend(task.get(key) or [])
        yield task


def reads_addresses(task):
    return "ansible.builtin.slurp" in task or "check-onion-address" in yaml.safe_dump(task)


def slurped(path):
    return {t["register"] for t in tasks(path) if reads_addresses(t) and "register" in t}


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: str(p.relative_to(ROLES)))
def test_what_slurp_reads_is_never_logged(path):
    names = slurped(path)
    for task in tasks(path):
        text = yaml.safe_dump(task)
        reads = reads_addresses(task)
        uses = any(name in text for name in names) and any(
            m in task for m in ("ansible.builtin.set_fact", "ansible.builtin.debug")
        )
        if reads or uses:
            assert task.get("no_log") is True, f"{path.name}: task {task.get('name')!r} needs no_log: true"


def test_there_is_something_to_check():
    # SecureDrop's hostnames (slurp) and the metrics hostname (check-onion-address --print)
    assert sum(len(slurped(p)) for p in TASK_FILES) >= 2
