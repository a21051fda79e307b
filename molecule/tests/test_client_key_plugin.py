"""The role's controller-side action plugin: key encoding (tor's base32), parsing of
.auth_private files, and that error messages never contain the file's content."""

import base64
import importlib.util
import pathlib

import pytest
from ansible.errors import AnsibleActionFail

PLUGIN = (pathlib.Path(__file__).resolve().parents[2] / "ansible" / "roles" / "tor_exporter"
          / "action_plugins" / "tor_exporter_client_key.py")
spec = importlib.util.spec_from_file_location("tor_exporter_client_key", PLUGIN)
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)

# RFC 7748, section 6.1: Alice's private and public key.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
# A published v3 onion address (the Tor Project's website): a known answer for the checksum.
ONION = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid"


def b32(raw):
    return base64.b32encode(raw).decode().rstrip("=")


def test_public_from_private_known_answer():
    assert plugin.public_from_private(b32(ALICE_PRIVATE)) == b32(ALICE_PUBLIC)


def test_new_private_is_tor_base32():
    keys = {plugin.new_private() for _ in range(3)}
    assert len(keys) == 3
    for key in keys:
        assert len(key) == 52 and key == key.upper() and "=" not in key
        assert len(base64.b32decode(key + "====")) == 32


def test_parse_auth_private():
    line = f"{ONION}:descriptor:x25519:{b32(ALICE_PRIVATE)}\n"
    assert plugin.parse_auth_private(line, "f") == (ONION, b32(ALICE_PRIVATE))


@pytest.mark.parametrize("text", [
    "",
    f"{ONION}:descriptor:x25519:{b32(ALICE_PRIVATE)}\n{ONION}:descriptor:x25519:{b32(ALICE_PRIVATE)}\n",
    f"{ONION}:descriptor:ed25519:{b32(ALICE_PRIVATE)}",
    f"{ONION[:-1]}:descriptor:x25519:{b32(ALICE_PRIVATE)}",
    # the right shape, but one character off: the checksum no longer matches
    f"{ONION[:10]}b{ONION[11:]}:descriptor:x25519:{b32(ALICE_PRIVATE)}",
    # another version byte than 3 (the last character encodes its low bits)
    f"{ONION[:-1]}a:descriptor:x25519:{b32(ALICE_PRIVATE)}",
    f"{ONION}:descriptor:x25519:{b32(ALICE_PRIVATE).lower()}",
    f"{ONION}:descriptor:x25519:{b32(ALICE_PRIVATE)[:-1]}",
])
def test_malformed_files_are_refused_without_quoting_them(text):
    with pytest.raises(AnsibleActionFail) as error:
        plugin.parse_auth_private(text, "/x/app-metrics.auth_private")
    assert b32(ALICE_PRIVATE)[:20] not in str(error.value)
    assert b32(ALICE_PRIVATE)[:20].lower() not in str(error.value)


def test_v3_onion_check_known_answers():
    assert plugin.is_v3_onion(ONION)
    assert not plugin.is_v3_onion(ONION.upper())
    assert not plugin.is_v3_onion(ONION[:10] + "b" + ONION[11:])
    assert not plugin.is_v3_onion("a" * 55 + "d")
