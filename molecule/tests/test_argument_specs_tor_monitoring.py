"""tor_monitoring: defaults/main.yml and meta/argument_specs.yml declare the same variables, with the
same defaults and types, every default is documented, the role's variable naming holds, and every
public variable the role uses is declared (as test_argument_specs.py checks for tor_exporter)."""

import pathlib
import re

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLE = REPO / "ansible" / "roles" / "tor_monitoring"
TYPES = {"bool": bool, "str": str, "int": int, "dict": dict, "list": list}
# Set by the role's own tasks for monitoring/prometheus/prometheus.yml.j2 (task vars of its
# template task), not by the admin.
TEMPLATE_INPUTS = {"tor_monitoring_servers", "tor_monitoring_proxy_url", "tor_monitoring_self_exporter",
                   "tor_monitoring_alertmanager", "tor_monitoring_rules_dir", "tor_monitoring_blackbox"}


def load(relative):
    with open(ROLE / relative, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


DEFAULTS = load("defaults/main.yml")
SPECS = load("meta/argument_specs.yml")["argument_specs"]
OPTIONS = SPECS["main"]["options"]


def test_same_names():
    assert list(DEFAULTS) == list(OPTIONS), "same variables, in the same order"


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_same_default_and_type(name):
    spec = OPTIONS[name]
    assert "default" in spec, f"{name}: argument_specs has no default"
    assert spec["default"] == DEFAULTS[name]
    value = DEFAULTS[name]
    templated = isinstance(value, str) and "{{" in value
    if not templated:
        assert isinstance(value, TYPES[spec["type"]]), f"{name}: default is not a {spec['type']}"
        if spec["type"] == "int":
            assert not isinstance(value, bool), name
    if spec["type"] == "list":
        assert "elements" in spec, f"{name}: a list without `elements`"
    if "choices" in spec:
        assert value in spec["choices"], name
    assert spec.get("description"), f"{name}: argument_specs has no description"


def test_every_default_is_documented():
    """Each variable has a comment above it, or follows a variable of a commented group."""
    lines = (ROLE / "defaults" / "main.yml").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+:", line):
            above = number - 1
            while above > 0 and re.match(r"^([a-z_]+:|\s)", lines[above]) and lines[above].strip():
                above -= 1  # the variables of the same group (and their continuation lines)
            assert above > 0 and lines[above].startswith("#"), f"no comment above: {line}"


def test_variable_prefixes():
    assert all(name.startswith("tor_monitoring_") for name in DEFAULTS)
    internals = load("vars/main.yml")
    assert all(name.startswith("_tor_monitoring_") for name in internals)


def used_names():
    used = set()
    paths = (list(ROLE.glob("tasks/*.yml")) + list(ROLE.glob("handlers/*.yml"))
             + list(ROLE.glob("templates/*.j2")) + [ROLE / "vars" / "main.yml",
                                                    REPO / "monitoring" / "prometheus" / "prometheus.yml.j2"])
    for path in paths:
        used |= set(re.findall(r"(?<![_\w])tor_monitoring_\w*[a-z0-9](?!\w)", path.read_text(encoding="utf-8")))
    return used


def test_every_public_variable_used_is_declared():
    used = used_names()
    assert used - set(DEFAULTS) - TEMPLATE_INPUTS == set(), "used but not in defaults/main.yml"
    assert set(DEFAULTS) - used == set(), "declared but never used"


def test_the_template_inputs_are_not_admin_variables():
    assert not TEMPLATE_INPUTS & set(DEFAULTS)


def test_the_defaults_name_the_runbook_the_role_installs():
    internals = load("vars/main.yml")
    assert DEFAULTS["tor_monitoring_runbook_base_url"] == "file://" + internals["_tor_monitoring_runbook_path"]
