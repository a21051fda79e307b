"""
Stand-in for SecureDrop's molecule/testinfra/conftest.py (its Python is not in the data-only
snapshot). Like SecureDrop's, it loads the testinfra variable file of the target (here the patched
tree's vars/staging.yml, named by SDTE_TESTINFRA_VARS) and offers its keys as attributes of
testutils.securedrop_test_vars. SecureDrop's resolves per-distribution entries such as
apparmor_enforce itself; the module under test copes with both shapes, so this one does not.
"""

import os
import types

import testutils
import yaml

with open(os.environ["SDTE_TESTINFRA_VARS"], encoding="utf-8") as f:
    testutils.securedrop_test_vars = types.SimpleNamespace(**yaml.safe_load(f))
