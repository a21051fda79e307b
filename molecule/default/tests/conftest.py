"""Shared fixtures for the testinfra checks of the Molecule scenario."""

import json
import os
import time

import pytest

WORKDIR = os.environ.get("TOR_EXPORTER_MOLECULE_WORKDIR", "/var/tmp/securedrop-tor-exporter-molecule")
ADMIN_DIR = os.path.join(WORKDIR, "admin")
_CACHE = {}


def _read_state(host):
    result = host.run("/usr/local/sbin/sdte-tor-state")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def state(host):
    """The container's state (files/tor_state.py), read once per host; polls up to 60 s for the
    exporter to report tor_up 1 (it reconnects to tor with backoff)."""
    name = host.backend.get_hostname()
    if name not in _CACHE:
        deadline = time.monotonic() + 60
        current = _read_state(host)
        while current["metrics"].get("tor_up") != "1" and time.monotonic() < deadline:
            time.sleep(1)  # poll interval of a condition with a deadline
            current = _read_state(host)
        _CACHE[name] = current
    return _CACHE[name]


@pytest.fixture
def prefix(host):
    """app or mon, as SecureDrop names the servers' files."""
    return host.backend.get_hostname().split("-", 1)[0]
