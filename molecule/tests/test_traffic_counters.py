"""tor's traffic counters stay off wherever sources connect (tasks/traffic_guard.yml).

The role's guard and its configuration template run with real `ansible-playbook` (connection
local, no root needed) in a temporary folder: on the Application Server, or on any server whose
tor serves SecureDrop's source or journalist interface, `tor_exporter_traffic_counters: true` stops
the run with a message naming the variable, and the rendered configuration says
`enabled = false` whatever else is set; on the Monitor Server true is an explicit opt-in and
false the default. The Molecule scenario checks the same on the staging servers, with the
exporter's own reading of its configuration and its /metrics.
"""

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

ROLES = pathlib.Path(__file__).resolve().parents[2] / "ansible" / "roles"
ROLE = ROLES / "tor_exporter"
TEMPLATE = ROLE / "templates" / "90-securedrop-traffic.toml.j2"


@pytest.fixture
def base():
    path = pathlib.Path(tempfile.mkdtemp(prefix="sdte-traffic-"))
    yield path
    shutil.rmtree(path)


def run_guard(base, group, extra_vars, services=()):
    """Run traffic_guard.yml, then render the role's traffic template into base/traffic.toml, for
    a host in `group`, with `services` as SecureDrop's onion folders on it. (rc, output, the
    rendered file or None)."""
    services_dir = base / "services"
    services_dir.mkdir()
    for name in services:
        (services_dir / name).mkdir()
    inventory = base / "inventory.ini"
    inventory.write_text(f"[{group}]\nlocalhost ansible_connection=local\n", encoding="utf-8")
    rendered = base / "traffic.toml"
    playbook = base / "guard.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "tor_exporter: traffic_guard",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {"name": "The role's guard",
             "ansible.builtin.include_role": {"name": "tor_exporter", "tasks_from": "traffic_guard"}},
            {"name": "The role's template",
             "ansible.builtin.template": {"src": str(TEMPLATE), "dest": str(rendered), "mode": "0644"}},
        ],
    }]), encoding="utf-8")
    varfile = base / "vars.json"
    varfile.write_text(json.dumps({
        "ansible_python_interpreter": sys.executable,
        "tor_exporter_securedrop_services_dir": str(services_dir),
        **extra_vars,
    }), encoding="utf-8")
    env = {
        "PATH": str(pathlib.Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(base),
        "ANSIBLE_ROLES_PATH": str(ROLES),
        "ANSIBLE_LOCAL_TEMP": str(base / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        # one line per result, so that a message is searched unwrapped
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
    }
    result = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
         "-e", f"@{varfile}", str(playbook)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    content = rendered.read_text(encoding="utf-8") if rendered.exists() else None
    return result.returncode, result.stdout, content


def enabled_line(content):
    lines = [line for line in content.splitlines() if line.startswith("enabled")]
    assert len(lines) == 1, content
    return lines[0]


@pytest.mark.parametrize("value", [True, "yes", "true", 1])
def test_refused_on_the_application_server(base, value):
    rc, out, content = run_guard(base, "securedrop_application_server", {"tor_exporter_traffic_counters": value},
                                 services=["sourcev3", "journalistv3", "sshv3"])
    assert rc != 0, out
    assert ("tor_exporter_traffic_counters is true for localhost, but sources connect to this server "
            "(it is in the securedrop_application_server group)") in out, out
    assert "Set tor_exporter_traffic_counters to false for this server" in out
    assert content is None, "the template ran after the refusal"


@pytest.mark.parametrize("services", [["sourcev3"], ["journalistv3"], ["sourcev3", "journalistv3"]])
def test_refused_wherever_tor_serves_the_source_or_journalist_interface(base, services):
    rc, out, content = run_guard(base, "ungrouped_servers", {"tor_exporter_traffic_counters": True},
                                 services=services)
    assert rc != 0, out
    assert ("tor_exporter_traffic_counters is true for localhost, but sources connect to this server "
            f"(its tor serves {' and '.join(services)})") in out, out
    assert content is None


@pytest.mark.parametrize("extra_vars", [{}, {"tor_exporter_traffic_counters": False}])
def test_off_on_the_application_server(base, extra_vars):
    rc, out, content = run_guard(base, "securedrop_application_server", extra_vars,
                                 services=["sourcev3", "journalistv3", "sshv3"])
    assert rc == 0, out
    assert enabled_line(content) == "enabled = false"
    assert "[traffic]" in content.splitlines()


def test_off_by_default_on_the_monitor_server(base):
    rc, out, content = run_guard(base, "securedrop_monitor_server", {}, services=["sshv3"])
    assert rc == 0, out
    assert enabled_line(content) == "enabled = false"


def test_opt_in_on_the_monitor_server(base):
    rc, out, content = run_guard(base, "securedrop_monitor_server", {"tor_exporter_traffic_counters": True},
                                 services=["sshv3"])
    assert rc == 0, out
    assert enabled_line(content) == "enabled = true"


def test_not_a_yes_no_value_is_refused(base):
    rc, out, content = run_guard(base, "securedrop_monitor_server", {"tor_exporter_traffic_counters": "maybe"})
    assert rc != 0, out
    assert "tor_exporter_traffic_counters must be true or false" in out
    assert content is None


def test_the_guard_runs_in_the_preflight_before_anything_changes():
    main = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text(encoding="utf-8"))
    assert main[0]["ansible.builtin.include_tasks"] == "preflight.yml"
    assert "when" not in main[0], "the preflight runs on and off"
    preflight = yaml.safe_load((ROLE / "tasks" / "preflight.yml").read_text(encoding="utf-8"))
    includes = [task.get("ansible.builtin.include_tasks") for task in preflight]
    assert "traffic_guard.yml" in includes
    guard = includes.index("traffic_guard.yml")
    # nothing before it in the preflight changes the server: facts, an assert
    assert all(set(task) & {"ansible.builtin.setup", "ansible.builtin.assert"} for task in preflight[:guard])
