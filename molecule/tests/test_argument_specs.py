"""The role's defaults/main.yml and meta/argument_specs.yml declare the same variables, with the
same defaults, and every default is documented; the role's variable naming holds."""

import pathlib
import re

import pytest
import yaml

ROLE = pathlib.Path(__file__).resolve().parents[2] / "ansible" / "roles" / "tor_exporter"
TYPES = {"bool": bool, "str": str, "int": int, "dict": dict, "list": list}


def load(relative):
    with open(ROLE / relative, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


DEFAULTS = load("defaults/main.yml")
OPTIONS = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]


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
    assert spec.get("description"), f"{name}: argument_specs has no description"


def test_every_default_is_documented():
    lines = (ROLE / "defaults" / "main.yml").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+:", line):
            assert number > 0 and lines[number - 1].startswith("#"), f"no comment above: {line}"


def test_variable_prefixes():
    assert all(name.startswith("tor_exporter_") for name in DEFAULTS)
    internals = load("vars/main.yml")
    assert all(name.startswith("_tor_exporter_") for name in internals)


def test_every_public_variable_used_is_declared():
    used = set()
    for path in list(ROLE.glob("tasks/*.yml")) + list(ROLE.glob("handlers/*.yml")) + list(
            ROLE.glob("templates/*.j2")) + [ROLE / "vars" / "main.yml"]:
        used |= set(re.findall(r"(?<![_\w])tor_exporter_\w+", path.read_text(encoding="utf-8")))
    used -= {"tor_exporter_client_key"}  # the role's action plugin, not a variable
    assert used - set(DEFAULTS) == set(), "used but not in defaults/main.yml"
    assert set(DEFAULTS) - used - {"tor_exporter_enabled"} <= set(), "declared but never used"
