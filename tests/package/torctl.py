#!/usr/bin/python3
"""Ask the local tor one control-port question (test helper, runs inside the test container).

Usage: torctl.py 'GETCONF HiddenServiceOptions' ['GETINFO version' ...]

Authenticates with the cookie tor announces (COOKIE method) on /run/tor/control, sends each
command and prints tor's reply lines. Exits 1 if tor cannot be reached or refuses a command.
Only read-only commands are accepted here.
"""

import socket
import sys

ALLOWED = ("GETCONF ", "GETINFO ")
SOCKET = "/run/tor/control"
COOKIE = "/run/tor/control.authcookie"


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("torctl: connection closed")
        line = line.rstrip("\r\n")
        lines.append(line)
        if len(line) >= 4 and line[3] == " ":
            return lines


def main():
    commands = sys.argv[1:]
    for c in commands:
        if not c.startswith(ALLOWED):
            raise SystemExit(f"torctl: refusing {c.split()[0]!r}: only GETCONF/GETINFO")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(SOCKET)
    f = s.makefile("rw", newline="")
    with open(COOKIE, "rb") as cf:
        cookie = cf.read().hex()
    f.write(f"AUTHENTICATE {cookie}\r\n")
    f.flush()
    reply = read_reply(f)
    if not reply[-1].startswith("250"):
        raise SystemExit("torctl: authentication refused")
    status = 0
    for c in commands:
        f.write(c + "\r\n")
        f.flush()
        reply = read_reply(f)
        print("\n".join(reply))
        if not reply[-1].startswith("250"):
            status = 1
    f.write("QUIT\r\n")
    f.flush()
    s.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
