"""Neither role follows a link or takes over a foreign folder in tor's /var/lib/tor.

/var/lib/tor belongs to debian-tor, and so do the metrics onion service's folder (tor_exporter) and
the client-key folder (tor_monitoring): a compromised tor account can plant a symbolic link where
the roles work and wait for the admin's next run. Pointed at /etc/apt/apt.conf.d, the roles'
`file: state=directory, owner=debian-tor` chowned that folder to debian-tor (and an apt hook then
ran as root).

1. The roles' own task files (tor_exporter's onion_folder.yml, tor_monitoring's client_keys.yml) run
   with real `ansible-playbook`, connection local, as root, against a temporary folder standing for
   /var/lib/tor (owned by debian-tor, as there): a link to a victim folder planted at the folder, at
   its subfolder or at the key file the role writes, and a folder owned by `nobody`, are refused
   with a message naming the path and what was found, and the victim's owner, mode and content
   stay as they were; a clean run makes the folders and files, owned by debian-tor, and a second
   run changes nothing.
2. Statically, every task of either role that creates, writes, chowns, finds or deletes under the
   onion folder comes after the guard (tasks/refuse_links.yml) in its flow, and the guard names
   each literal subfolder it works in: a new task cannot bypass it unnoticed.
"""

import json
import os
import pathlib
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
import yaml

ROLES = pathlib.Path(__file__).resolve().parents[2] / "ansible" / "roles"
PUBLIC_KEY = "A" * 52  # stands for the admin's x25519 public key (tor's base32)
KEY_LINE = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid:descriptor:x25519:" + "B" * 52 + "\n"


def _account(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


needs_root_and_tor = pytest.mark.skipif(
    os.geteuid() != 0 or _account("debian-tor") is None or shutil.which("runuser") is None,
    reason="needs root, runuser and the debian-tor account (tor installed) to run the roles' tasks",
)


# --- running the roles' task files --------------------------------------------------------------

class World:
    """A temporary tree: lib-tor/ (debian-tor, 2700, like /var/lib/tor), victim/ (root, 0755, like
    /etc/apt/apt.conf.d, with one file in it) and admin/ (the controller's folder)."""

    def __init__(self):
        self.base = pathlib.Path(tempfile.mkdtemp(prefix="sdte-refuse-links-", dir="/var/tmp"))
        self.base.chmod(0o755)  # debian-tor must reach lib-tor/
        tor = pwd.getpwnam("debian-tor")
        self.lib_tor = self.base / "lib-tor"
        self.lib_tor.mkdir()
        os.chown(self.lib_tor, tor.pw_uid, tor.pw_gid)
        self.lib_tor.chmod(0o2700)
        self.victim = self.base / "victim"
        self.victim.mkdir()
        self.victim.chmod(0o755)
        (self.victim / "00keep").write_text("APT::Keep \"1\";\n", encoding="utf-8")
        self.admin = self.base / "admin"
        self.admin.mkdir()

    def victim_state(self):
        """Owner, mode and entries (name, owner, mode, content) of the victim folder."""
        entries = []
        for p in sorted(self.victim.iterdir()):
            st = p.lstat()
            entries.append((p.name, st.st_uid, stat.S_IMODE(st.st_mode), p.read_bytes() if p.is_file() else None))
        st = self.victim.lstat()
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), entries

    def as_tor(self, *argv):
        """Plant something as debian-tor (as the compromised account would)."""
        subprocess.run(["runuser", "-u", "debian-tor", "--", *argv], check=True)

    def cleanup(self):
        shutil.rmtree(self.base)


@pytest.fixture
def world():
    w = World()
    yield w
    w.cleanup()


def run_tasks(world, role, tasks_from, extra_vars):
    """Run one of a role's task files with ansible-playbook (connection local); (rc, output)."""
    playbook = world.base / f"{role}-{tasks_from}.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": f"{role}: {tasks_from}",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [
            {"name": "The role's task file", "ansible.builtin.include_role": {"name": role, "tasks_from": tasks_from}},
            # Not the role's handlers (they reload the real tor@default).
            {"name": "Stop before the handlers", "ansible.builtin.meta": "end_play"},
        ],
    }]), encoding="utf-8")
    varfile = world.base / "vars.json"
    varfile.write_text(json.dumps({"ansible_python_interpreter": sys.executable, **extra_vars}), encoding="utf-8")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROLES), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    result = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
         "-e", f"@{varfile}", str(playbook)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    return result.returncode, result.stdout


def recap(output):
    m = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert m, output
    return {k: int(v) for k, v in zip(("ok", "changed", "unreachable", "failed"), m.groups())}


def owner_mode(path):
    st = os.lstat(path)
    return pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)


def refused(output, path, found):
    """The guard's message: the path, what was found, 'refusing' (ansible may wrap long lines)."""
    flat = re.sub(r"\s+", " ", output)
    return f"{path} is {found}: refusing to use it" in flat


# tor_exporter: tasks/onion_folder.yml (the metrics onion service's folder, authorized_clients/,
# the admin's .auth), as install.yml includes it.
def exporter_vars(world):
    return {
        "tor_exporter_onion_dir": str(world.lib_tor / "securedrop-tor-exporter"),
        "_tor_exporter_client_key": {"public_key": PUBLIC_KEY},
        "_tor_exporter_simulated": False,
    }


@needs_root_and_tor
def test_exporter_clean_run_makes_the_folders_and_is_idempotent(world):
    onion = world.lib_tor / "securedrop-tor-exporter"
    rc, out = run_tasks(world, "tor_exporter", "onion_folder", exporter_vars(world))
    assert rc == 0, out
    auth = onion / "authorized_clients" / "securedrop-admin.auth"
    assert owner_mode(onion) == ("debian-tor", 0o700)
    assert owner_mode(onion / "authorized_clients") == ("debian-tor", 0o700)
    assert owner_mode(auth) == ("debian-tor", 0o600) and not auth.is_symlink()
    assert auth.read_text(encoding="utf-8") == f"descriptor:x25519:{PUBLIC_KEY}\n"
    # another client (a standalone key the package made) goes; the admin's stays as it is
    world.as_tor("sh", "-c", f"umask 077 && echo descriptor:x25519:{'C' * 52} > {onion}/authorized_clients/other.auth")
    rc, out = run_tasks(world, "tor_exporter", "onion_folder", exporter_vars(world))
    assert rc == 0 and recap(out)["changed"] == 1, out
    assert sorted(p.name for p in (onion / "authorized_clients").iterdir()) == ["securedrop-admin.auth"]
    rc, out = run_tasks(world, "tor_exporter", "onion_folder", exporter_vars(world))
    assert rc == 0 and recap(out)["changed"] == 0, out


@pytest.mark.parametrize("where", ["folder", "authorized_clients", "auth file"])
@needs_root_and_tor
def test_exporter_refuses_a_planted_link(world, where):
    onion = world.lib_tor / "securedrop-tor-exporter"
    link = {"folder": onion, "authorized_clients": onion / "authorized_clients",
            "auth file": onion / "authorized_clients" / "securedrop-admin.auth"}[where]
    if where != "folder":
        world.as_tor("mkdir", "-p", "-m", "0700", str(link.parent))
    world.as_tor("ln", "-s", str(world.victim), str(link))
    before = world.victim_state()
    rc, out = run_tasks(world, "tor_exporter", "onion_folder", exporter_vars(world))
    assert rc != 0, out
    assert refused(out, link, f"a symbolic link to {world.victim}"), out
    assert world.victim_state() == before, "the victim folder was changed"
    assert link.is_symlink(), "the link is left for the admin to look at"


@needs_root_and_tor
def test_exporter_refuses_a_folder_of_another_account(world):
    onion = world.lib_tor / "securedrop-tor-exporter"
    onion.mkdir(mode=0o755)
    nobody = pwd.getpwnam("nobody")
    os.chown(onion, nobody.pw_uid, nobody.pw_gid)
    onion.chmod(0o755)
    rc, out = run_tasks(world, "tor_exporter", "onion_folder", exporter_vars(world))
    assert rc != 0, out
    assert refused(out, onion, "a folder owned by nobody"), out
    assert owner_mode(onion) == ("nobody", 0o755)
    assert not (onion / "authorized_clients").exists()


# tor_monitoring: tasks/client_keys.yml (the client-key folder and the servers' keys in it), as
# main.yml includes it.
def monitoring_vars(world):
    return {
        "tor_monitoring_onion_auth_dir": str(world.lib_tor / "onion_auth"),
        "tor_monitoring_client_auth_dir": str(world.admin),
    }


@needs_root_and_tor
def test_monitoring_clean_run_installs_the_keys_and_is_idempotent(world):
    (world.admin / "app-metrics.auth_private").write_text(KEY_LINE, encoding="utf-8")
    keys = world.lib_tor / "onion_auth"
    rc, out = run_tasks(world, "tor_monitoring", "client_keys", monitoring_vars(world))
    assert rc == 0, out
    assert owner_mode(keys) == ("debian-tor", 0o700)
    assert owner_mode(keys / "app-metrics.auth_private") == ("debian-tor", 0o600)
    assert (keys / "app-metrics.auth_private").read_text(encoding="utf-8") == KEY_LINE
    assert "B" * 52 not in out, "the private key reached the output"
    # a server that is gone: its key goes
    world.as_tor("sh", "-c", f"umask 077 && cp {keys}/app-metrics.auth_private {keys}/old-metrics.auth_private")
    rc, out = run_tasks(world, "tor_monitoring", "client_keys", monitoring_vars(world))
    assert rc == 0 and recap(out)["changed"] == 1, out
    assert sorted(p.name for p in keys.iterdir()) == ["app-metrics.auth_private"]
    rc, out = run_tasks(world, "tor_monitoring", "client_keys", monitoring_vars(world))
    assert rc == 0 and recap(out)["changed"] == 0, out


@pytest.mark.parametrize("where", ["folder", "key file"])
@needs_root_and_tor
def test_monitoring_refuses_a_planted_link(world, where):
    (world.admin / "app-metrics.auth_private").write_text(KEY_LINE, encoding="utf-8")
    keys = world.lib_tor / "onion_auth"
    link = keys if where == "folder" else keys / "app-metrics.auth_private"
    if where != "folder":
        world.as_tor("mkdir", "-m", "0700", str(keys))
    world.as_tor("ln", "-s", str(world.victim), str(link))
    before = world.victim_state()
    rc, out = run_tasks(world, "tor_monitoring", "client_keys", monitoring_vars(world))
    assert rc != 0, out
    assert refused(out, link, f"a symbolic link to {world.victim}"), out
    assert world.victim_state() == before, "the victim folder was changed"
    assert "B" * 52 not in out


@needs_root_and_tor
def test_monitoring_refuses_a_folder_of_another_account(world):
    (world.admin / "app-metrics.auth_private").write_text(KEY_LINE, encoding="utf-8")
    keys = world.lib_tor / "onion_auth"
    keys.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(keys, nobody.pw_uid, nobody.pw_gid)
    keys.chmod(0o755)
    rc, out = run_tasks(world, "tor_monitoring", "client_keys", monitoring_vars(world))
    assert rc != 0, out
    assert refused(out, keys, "a folder owned by nobody"), out
    assert owner_mode(keys) == ("nobody", 0o755)
    assert list(keys.iterdir()) == []


# --- the guard comes first, statically -----------------------------------------------------------

# The onion folder each role works in, as its tasks name it.
ONION_VARS = {"tor_exporter": "tor_exporter_onion_dir", "tor_monitoring": "tor_monitoring_onion_auth_dir"}
GUARD = "refuse_links.yml"
# Modules that create, change, write, list-to-delete or delete files.
WRITERS = {f"ansible.builtin.{m}" for m in (
    "file", "copy", "template", "find", "lineinfile", "blockinfile", "replace", "assemble", "unarchive",
    "get_url", "command", "shell", "fetch")}
INCLUDES = {"ansible.builtin.include_tasks", "ansible.builtin.import_tasks"}
PATH_ARGS = ("path", "dest", "paths", "argv", "cmd", "_raw_params", "chdir", "creates", "removes")


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def flat_tasks(path):
    stack = list(yaml.safe_load(path.read_text(encoding="utf-8")) or [])
    while stack:
        task = stack.pop(0)
        if any(k in task for k in ("block", "rescue", "always")):
            stack[0:0] = (task.get("block") or []) + (task.get("rescue") or []) + (task.get("always") or [])
            continue
        yield task


def module_of(task):
    return next((k for k in task if k.startswith("ansible.builtin.") or k in ("command", "shell", "file")), None)


def as_debian_tor(args):
    """A command run as debian-tor (runuser -u debian-tor): it can do no more than tor's account."""
    argv = args.get("argv") if isinstance(args, dict) else None
    return isinstance(argv, list) and argv[:3] == ["runuser", "-u", "debian-tor"]


def required_paths(text, var):
    """'{{ var }}' and each literal subpath of it that a string names ('{{ var }}/a/b' -> both)."""
    base = "{{ " + var + " }}"
    needed = {base}
    for rest in re.findall(re.escape(base) + r"((?:/[^/\s\"'{}]+)+)", text):
        parts = rest.strip("/").split("/")
        for n in range(1, len(parts) + 1):
            needed.add(base + "/" + "/".join(parts[:n]))
    return needed


def unguarded_tasks(role_dir, var):
    """[(file, task name, why)] for every onion-folder writer not preceded by a guard naming it;
    and how many such writers were checked."""
    problems, checked = [], [0]

    def walk(path, inherited, related_registers):
        guards = set(inherited)
        for task in flat_tasks(path):
            module = module_of(task)
            args = task.get(module) if module else None
            if module in INCLUDES:
                target = args if isinstance(args, str) else args.get("file")
                if pathlib.Path(target).name == GUARD:
                    guards |= {s for s in strings(task.get("vars", {}))}
                    continue
                walk(path.parent / target, guards, related_registers)
                continue
            if module not in WRITERS:
                continue
            texts = [s for k in PATH_ARGS if isinstance(args, dict) for s in strings(args.get(k))]
            texts += list(strings(task.get("loop"))) + list(strings(task.get("with_items")))
            mentions = [t for t in texts if var in t]
            follows_find = any(r in t for r in related_registers for t in texts)
            if not mentions and not follows_find:
                continue
            if "register" in task and module == "ansible.builtin.find":
                related_registers.add(task["register"])
            if module in ("ansible.builtin.command", "ansible.builtin.shell") and as_debian_tor(args):
                continue
            checked[0] += 1
            needed = set().union(*(required_paths(t, var) for t in mentions)) if mentions else {"{{ " + var + " }}"}
            missing = sorted(n for n in needed if n not in guards)
            if missing:
                problems.append((path.name, task.get("name"), f"not checked by {GUARD} before it: {missing}"))

    walk(role_dir / "tasks" / "main.yml", set(), set())
    return problems, checked[0]


@pytest.mark.parametrize("role", sorted(ONION_VARS))
def test_every_task_in_the_onion_folder_comes_after_the_guard(role):
    problems, checked = unguarded_tasks(ROLES / role, ONION_VARS[role])
    assert problems == []
    assert checked >= 2, "nothing was checked: has the flow or the variable changed?"


def test_a_new_task_before_the_guard_is_caught(tmp_path):
    role = tmp_path / "tor_exporter"
    shutil.copytree(ROLES / "tor_exporter", role)
    install = role / "tasks" / "install.yml"
    tasks = yaml.safe_load(install.read_text(encoding="utf-8"))
    tasks.insert(0, {"name": "A new task", "ansible.builtin.file": {
        "path": "{{ tor_exporter_onion_dir }}/new", "state": "directory", "owner": "debian-tor"}})
    install.write_text(yaml.safe_dump(tasks), encoding="utf-8")
    folder = role / "tasks" / "onion_folder.yml"
    tasks = yaml.safe_load(folder.read_text(encoding="utf-8"))
    tasks.append({"name": "A new subfolder", "ansible.builtin.file": {
        "path": "{{ tor_exporter_onion_dir }}/other/x", "state": "directory"}})
    folder.write_text(yaml.safe_dump(tasks), encoding="utf-8")
    problems, _ = unguarded_tasks(role, "tor_exporter_onion_dir")
    assert [p[1] for p in problems] == ["A new task", "A new subfolder"], problems
