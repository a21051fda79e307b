"""
Stand-in for SecureDrop's molecule/testinfra/testutils.py, whose Python is not in the data-only
snapshot: the series' testinfra module reads its variables from securedrop_test_vars here, which
conftest.py fills.
"""

securedrop_test_vars = None
