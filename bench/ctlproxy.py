#!/usr/bin/env python3
"""A counting proxy for tor's control socket, for bench/scrape.sh.

Usage: ctlproxy.py LISTEN_SOCKET TOR_SOCKET LOG_FILE

Listens on the unix socket LISTEN_SOCKET and relays every connection, byte for byte, to tor's
control socket TOR_SOCKET. For every command line a client sends, it appends one line
"<CLOCK_MONOTONIC seconds> <VERB>" to LOG_FILE. Only the verb is written, never the arguments:
AUTHENTICATE carries a secret derived from tor's cookie.

Multi-line commands ("+VERB ..." followed by data up to a lone ".") count once.
"""

import os
import re
import socket
import sys
import threading
import time

MAX_LINE = 64 * 1024
VERB = re.compile(rb"[A-Z0-9_]{1,32}")


class Counter:
    def __init__(self, path):
        self._lock = threading.Lock()
        self._log = open(path, "a", buffering=1, encoding="ascii")

    def record(self, verb):
        with self._lock:
            self._log.write(f"{time.monotonic():.6f} {verb}\n")


def verb_of(line):
    word = line.split(b" ", 1)[0].lstrip(b"+").upper()
    return word.decode("ascii") if VERB.fullmatch(word) else "?"


def client_to_tor(src, dst, counter):
    buf = b""
    in_data = False
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
            buf += chunk
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                if in_data:
                    in_data = line != b"."
                    continue
                if line.startswith(b"+"):
                    in_data = True
                counter.record(verb_of(line))
            if len(buf) > MAX_LINE:
                counter.record("OVERLONG")
                buf = b""
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def tor_to_client(src, dst):
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client, tor_path, counter):
    tor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        tor.connect(tor_path)
    except OSError:
        client.close()
        tor.close()
        return
    t = threading.Thread(target=tor_to_client, args=(tor, client), daemon=True)
    t.start()
    client_to_tor(client, tor, counter)
    t.join()
    client.close()
    tor.close()


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: ctlproxy.py LISTEN_SOCKET TOR_SOCKET LOG_FILE")
    listen_path, tor_path, log_path = sys.argv[1:]
    counter = Counter(log_path)
    if os.path.exists(listen_path):
        os.unlink(listen_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    srv.bind(listen_path)
    os.umask(old)
    srv.listen(16)
    while True:
        client, _ = srv.accept()
        threading.Thread(target=handle, args=(client, tor_path, counter), daemon=True).start()


if __name__ == "__main__":
    main()
