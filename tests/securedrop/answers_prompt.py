"""Checks that a patch makes an sdconfig pexpect flow answer the tor metrics question.

Usage: answers_prompt.py TEST_FUNCTION PATCH
Passes when one hunk of PATCH belongs to `def TEST_FUNCTION()` (git names the enclosing function
in the hunk header) and adds `verify_tor_metrics_prompt(child)` to it. A check of the patch text,
for SecureDrop code that is not in the data-only snapshot.
"""

import re
import sys


def main(function, patch):
    with open(patch, encoding="utf-8") as f:
        hunks = re.split(r"^(?=@@ )", f.read(), flags=re.M)
    for hunk in hunks:
        header = hunk.split("\n", 1)[0]
        if hunk.startswith("@@") and f"def {function}()" in header \
                and "+    verify_tor_metrics_prompt(child)" in hunk:
            return 0
    print(f"no hunk of def {function}() answers the tor metrics prompt", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
