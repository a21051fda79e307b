#!/usr/bin/python3
"""A hostile tor account, for the package tests (runs as debian-tor inside the test container).

Usage: race_symlinks.py DIR TARGET STOP_FILE SECONDS

Polls DIR (tor's authorized_clients/, which debian-tor owns) as fast as it can and replaces every
entry that is not a `*.auth` file or already a symlink by a symlink to TARGET (a root-only file):
the swap a postinst that writes, chowns or chmods a temp file there by path loses to. With TARGET
`fifo`, by a FIFO nobody reads or writes instead: the swap that would hang a postinst that opens
the temp file by path without a bound. Prints its
PID on the first line, the number of swaps on the last. Stops by itself when STOP_FILE exists or
after SECONDS, whichever comes first.
"""

import os
import stat
import sys
import time


def main():
    folder, target, stop_file, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    print(os.getpid(), flush=True)
    end = time.monotonic() + seconds
    swaps = 0
    polls = 0
    while time.monotonic() < end:
        polls += 1
        # the stop file is looked at every 256 polls: a stat per poll would widen no window
        if polls % 256 == 0 and os.path.exists(stop_file):
            break
        try:
            names = os.listdir(folder)
        except OSError:
            time.sleep(0.001)  # the folder is being made or removed: try again
            continue
        for name in names:
            if name.endswith(".auth"):
                continue
            path = os.path.join(folder, name)
            try:
                if os.path.islink(path) or stat.S_ISFIFO(os.lstat(path).st_mode):
                    continue
                os.unlink(path)
                if target == "fifo":
                    os.mkfifo(path, 0o600)
                else:
                    os.symlink(target, path)
                swaps += 1
            except OSError:
                pass
    print(swaps, flush=True)


if __name__ == "__main__":
    main()
