# Copyright: securedrop-tor-exporter contributors
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Controller-side x25519 client key for a v3 onion service (action plugin, runs on the controller).

Reads the admin's ``<prefix>-metrics.auth_private`` file on the controller if it exists
(``<onion56>:descriptor:x25519:<PRIV52>``) and returns its key; otherwise makes a new x25519 pair in
memory. It never writes a file and never changes anything (the role writes the file with
``ansible.builtin.copy`` once the onion address is known), so it is safe in check mode.

Options:
  path: the .auth_private file on the controller (required).

Returns: exists (bool), onion (str, "" when the file does not exist), private_key (52 base32
characters), public_key (52 base32 characters), generated (bool). Call it with ``no_log: true``:
private_key is a secret. Error messages never contain the file's content.

Key encoding is tor's: the raw 32-byte keys in RFC 4648 base32, upper case, '=' padding removed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import x25519

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - ansible-core depends on cryptography
    HAS_CRYPTOGRAPHY = False

_ONION = re.compile(r"^[a-z2-7]{56}$")
_KEY = re.compile(r"^[A-Z2-7]{52}$")
_RAW = serialization.Encoding.Raw if HAS_CRYPTOGRAPHY else None


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _unb32(text: str) -> bytes:
    return base64.b32decode(text + "====", casefold=False)


def is_v3_onion(onion: str) -> bool:
    """A v3 onion address (without .onion) as tor writes it: base32 of the 32-byte key, a 2-byte
    checksum and the version byte 3 (rend-spec-v3, "Encoding onion addresses"). The binary's
    ``check-onion-address`` checks the server's hostname file the same way; this copy is for the
    admin's workstation, where the binary is not installed."""
    if not _ONION.match(onion):
        return False
    raw = base64.b32decode(onion.upper())
    key, checksum, version = raw[:32], raw[32:34], raw[34:]
    digest = hashlib.sha3_256(b".onion checksum" + key + version).digest()
    return version == b"\x03" and digest[:2] == checksum


def public_from_private(private_b32: str) -> str:
    """The base32 public key that belongs to a base32 x25519 private key."""
    key = x25519.X25519PrivateKey.from_private_bytes(_unb32(private_b32))
    return _b32(key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw))


def new_private() -> str:
    """A fresh x25519 private key, base32 (tor clamps the scalar when it uses it)."""
    key = x25519.X25519PrivateKey.generate()
    return _b32(
        key.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    )


def parse_auth_private(text: str, where: str) -> tuple[str, str]:
    """(onion56, private_b32) from an .auth_private line; messages never quote the content."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise AnsibleActionFail(f"{where}: expected exactly one line, found {len(lines)}")
    parts = lines[0].split(":")
    if len(parts) != 4 or parts[1:3] != ["descriptor", "x25519"]:
        raise AnsibleActionFail(
            f"{where}: not of the form <onion56>:descriptor:x25519:<base32 private key>"
        )
    onion = parts[0].removesuffix(".onion")
    if not is_v3_onion(onion):
        raise AnsibleActionFail(
            f"{where}: the onion address is not a v3 address (56 base32 characters, version 3,"
            " checksum)"
        )
    if not _KEY.match(parts[3]) or len(_unb32(parts[3])) != 32:
        raise AnsibleActionFail(
            f"{where}: the private key is not 52 upper-case base32 characters (32 bytes)"
        )
    return onion, parts[3]


class ActionModule(ActionBase):
    """See the module docstring."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path",))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        if not HAS_CRYPTOGRAPHY:
            raise AnsibleActionFail("the python 'cryptography' package is missing on the controller")
        path = self._task.args.get("path")
        if not isinstance(path, str) or not path:
            raise AnsibleActionFail("'path' (the .auth_private file on the controller) is required")
        path = os.path.expanduser(path)

        if os.path.exists(path):
            try:
                with open(path, encoding="ascii") as handle:
                    text = handle.read(4096)
            except (OSError, UnicodeDecodeError) as exc:
                raise AnsibleActionFail(f"{path}: cannot read it ({type(exc).__name__})") from None
            onion, private = parse_auth_private(text, path)
            exists, generated = True, False
        else:
            onion, private = "", new_private()
            exists, generated = False, True

        result.update(
            changed=False,
            exists=exists,
            generated=generated,
            onion=onion,
            private_key=private,
            public_key=public_from_private(private),
        )
        return result
