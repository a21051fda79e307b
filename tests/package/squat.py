#!/usr/bin/python3
"""A local account trying to take the exporter's port: bind HOST:PORT and 0.0.0.0:PORT, plain, with
SO_REUSEADDR and with SO_REUSEPORT, and listen. Each socket is closed at once; nothing is served.

Usage: squat.py HOST PORT   prints one line per try; exit 0 when every try got EADDRINUSE (the
port is held), 1 when any bound, 2 on another error. Run it as the account to test (runuser -u
nobody -- python3 -c "$(cat squat.py)" HOST PORT: the file itself may be unreadable to it).
"""

import errno
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
result = 0
for h in (host, "0.0.0.0"):
    for name, opt in (("plain", None), ("SO_REUSEADDR", socket.SO_REUSEADDR),
                      ("SO_REUSEPORT", socket.SO_REUSEPORT)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if opt is not None:
                s.setsockopt(socket.SOL_SOCKET, opt, 1)
            s.bind((h, port))
            s.listen(1)
            print(f"{h}:{port} {name}: bound")
            result = 1
        except OSError as e:
            print(f"{h}:{port} {name}: {errno.errorcode.get(e.errno, e.errno)}")
            if e.errno != errno.EADDRINUSE and result == 0:
                result = 2
        finally:
            s.close()
sys.exit(result)
