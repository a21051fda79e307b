# securedrop-admin sdconfig: the yes/no question for the tor metrics exporter.
#
# Where it goes: admin/securedrop_admin/__init__.py in a SecureDrop checkout, as one more entry of
# the `self.desc` list in `SiteConfig.__init__`, right after the `enable_ssh_over_tor` entry. Each
# entry is (var, default, type, prompt, validator, transform, condition), like every other yes/no
# question there. The answer is saved in install_files/ansible-base/group_vars/all/site-specific as
# `enable_tor_metrics: true|false`, and Ansible reads it from there (ansible/roles/tor_exporter
# turns it into tor_exporter_enabled).
#
# A site-specific file written before this entry existed has no `enable_tor_metrics`: the role and
# the torrc template patch both treat a missing value as false, so nothing changes until the admin
# answers yes.
#
# For SecureDrop's admin tests (admin/tests/test_securedrop-admin.py), the matching check is
# `verify_prompt_enable_tor_metrics = verify_prompt_boolean`.

(
    "enable_tor_metrics",
    False,
    bool,
    "Export tor's health metrics for Prometheus from both servers, over a "
    + "client-authorized onion service (no source activity is exported)?",
    SiteConfig.ValidateYesNo(),
    lambda x: x.lower() == "yes",
    lambda config: True,
),
