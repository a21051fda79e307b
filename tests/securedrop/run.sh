#!/bin/bash
# SecureDrop's own code and tests with contrib/securedrop/patches/ applied: copies the SecureDrop
# snapshot (/work/shared/upstream/securedrop, or SDTE_SECUREDROP_SNAPSHOT) into a temporary git
# repository, applies the series with `git am`, copies ansible/roles/tor_exporter/ in as
# roles/tor_exporter/, and runs:
#   - SecureDrop's admin test suite (all but the five update tests that need GitHub); it must pass
#     with more tests than the unpatched snapshot's 74;
#   - yamllint with SecureDrop's configuration;
#   - `ansible-playbook --syntax-check` of securedrop-prod.yml and securedrop-staging.yml with the
#     ansible-core SecureDrop pins (admin/requirements.txt);
#   - SecureDrop's molecule/ansible-config tests (pytest + testinfra, local backend);
#   - the torrc template rendered by that Ansible, unpatched and patched, flag off and on, for the
#     app and the mon server; the rendered torrc checked by tor itself;
#   - the .gitignore entries for the new private key files.
#   - the AppArmor path check of tests/package/apparmor_paths.py (the include line of this series).
# Needs root for apt (installs git, python3-venv, gnupg2, sq-keyring-linter, sudo, yamllint, tor,
# apparmor for its profile files).
# Virtualenvs are cached under SDTE_CACHE (default /var/cache/securedrop-tor-exporter-tests),
# keyed by the hash of the requirement files. Ends with `N passed, M failed`; exit 1 on failure.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SNAPSHOT=${SDTE_SECUREDROP_SNAPSHOT:-$(cd "$REPO/.." && pwd)/shared/upstream/securedrop}
[ -d "$SNAPSHOT/admin" ] || SNAPSHOT=/work/shared/upstream/securedrop
PATCHES=$REPO/contrib/securedrop/patches
ROLE=$REPO/ansible/roles/tor_exporter
CACHE=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
UNPATCHED_ADMIN_TESTS=74
T0=$SECONDS

WORK=
# shellcheck source=scripts/lib/tap.sh
. "$REPO/scripts/lib/tap.sh"
cleanup() {
    local rc=$?
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${SDTE_KEEP:-0}" = 1 ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
    fi
    if [ -z "$SUMMARY_DONE" ]; then
        [ "$rc" -eq 0 ] || nok "run.sh stopped early (exit $rc)"
        summary
    fi
    [ "$FAIL" -eq 0 ] || exit 1
}
trap cleanup EXIT

[ -d "$SNAPSHOT/admin" ] || { nok "SecureDrop snapshot not found ($SNAPSHOT)"; summary; exit 1; }

section "tools"
# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"
# SecureDrop's admin/bin/validate-gpg-key.sh calls `gpg2`, which only the gnupg2 package ships (gpg,
# already on most machines, does not): check for that command, not for gpg.
tools=(cmd:git:git cmd:gpg2:gnupg2 cmd:sq-keyring-linter:sq-keyring-linter cmd:sudo:sudo
    cmd:yamllint:yamllint cmd:tor:tor cmd:flock:util-linux cmd:apparmor_parser:apparmor
    py:venv:python3-venv py:ensurepip:python3-venv)
missing=$(missing_packages "${tools[@]}")
if [ -n "$missing" ]; then
    [ "$(id -u)" -eq 0 ] || { nok "missing $missing and not root"; summary; exit 1; }
    echo "# installing $missing"
    need_packages "${tools[@]}"
fi

# make_venv NAME REQUIREMENTS... : a cached venv for these hashed requirement files (the first with
# its dependencies, the others --no-deps, as SecureDrop's README does); prints its path. Built under
# a lock at its final path (venvs are not relocatable) and used only once marked complete.
make_venv() {
    local name=$1 key dir
    shift
    key=$( { python3 --version; cat "$@"; } | sha256sum | cut -c1-16)
    dir=$CACHE/venv-$name-$key
    mkdir -p "$CACHE"
    (
        flock 9
        [ -e "$dir/.complete" ] && exit 0
        rm -rf "$dir"
        python3 -m venv "$dir" >&2
        local f deps=()
        for f in "$@"; do
            "$dir/bin/pip" install -q --disable-pip-version-check "${deps[@]}" --require-hashes -r "$f" >&2
            deps=(--no-deps)
        done
        touch "$dir/.complete"
    ) 9>"$CACHE/.venv-$name.lock"
    echo "$dir"
}

WORK=$(mktemp -d /tmp/sdte-securedrop.XXXXXX)
SD=$WORK/securedrop
AB=$SD/install_files/ansible-base

section "venvs (SecureDrop's pinned requirements, cached in $CACHE)"
ADMIN_VENV=$(make_venv admin "$SNAPSHOT/admin/requirements.txt" "$SNAPSHOT/admin/requirements-dev.txt")
TI_VENV=$(make_venv testinfra "$SNAPSHOT/admin/requirements-testinfra.txt")
check "admin venv has SecureDrop's ansible-core 2.15.9" \
    test "$("$ADMIN_VENV/bin/python" -c 'import ansible.release as r; print(r.__version__)')" = 2.15.9

section "the patch series applies to the snapshot"
cp -a "$SNAPSHOT" "$SD"
git_() { git -C "$SD" -c user.name=snapshot -c user.email=snapshot@example.invalid "$@"; }
git_ init -q -b main
git_ add -A
git_ commit -q -m "SecureDrop snapshot"
cp -a "$SD" "$WORK/unpatched"
mapfile -t series < <(find "$PATCHES" -maxdepth 1 -name '*.patch' | sort)
check "contrib/securedrop/patches has a series (${#series[@]} patches)" test "${#series[@]}" -gt 0
if git_ am -q "${series[@]}" >"$WORK/am.log" 2>&1; then
    ok "git am applies all ${#series[@]} patches"
else
    nok "git am failed: $(tail -5 "$WORK/am.log")"
    summary
    exit 1
fi
check "the working tree is clean after git am" test -z "$(git_ status --porcelain)"
cp -a "$ROLE" "$AB/roles/tor_exporter"

section "SecureDrop's admin test suite"
ln -s "$ADMIN_VENV" "$SD/admin/.venv3"
D=tests/test_integration.py
admin_log=$WORK/admin-tests.log
set +e
(cd "$SD/admin" && PATH="$ADMIN_VENV/bin:$PATH" PYTHONPATH="$SD/admin" \
    "$ADMIN_VENV/bin/python" -m pytest tests -p no:cacheprovider -q \
    --deselect "$D::test_check_for_update_when_updates_needed" \
    --deselect "$D::test_check_for_update_when_updates_not_needed" \
    --deselect "$D::test_update" \
    --deselect "$D::test_update_fails_when_no_signature_present" \
    --deselect "$D::test_update_with_duplicate_branch_and_tag") >"$admin_log" 2>&1
admin_rc=$?
set -e
admin_line=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$admin_log" | tail -1 || true)
admin_passed=$(grep -oE '[0-9]+ passed' <<<"$admin_line" | grep -oE '[0-9]+' || echo 0)
echo "# admin suite: $admin_line"
if [ "$admin_rc" -eq 0 ]; then ok "admin suite passes"; else
    nok "admin suite failed (exit $admin_rc)"
    grep -E '^(FAILED|ERROR)' "$admin_log" | sed 's/^/#   /' || true
fi
check "admin suite ran more than the snapshot's $UNPATCHED_ADMIN_TESTS tests ($admin_passed passed)" \
    test "$admin_passed" -gt "$UNPATCHED_ADMIN_TESTS"
(cd "$SD/admin" && "$ADMIN_VENV/bin/python" -m pytest tests -p no:cacheprovider -q --collect-only) \
    >"$WORK/admin-collect.log" 2>&1 || true
for t in test_enable_tor_metrics_defaults_to_no test_enable_tor_metrics_answer_is_kept \
    test_user_prompt_config_one test_sdconfig_on_first_run test_sdconfig_enable_journalist_alerts \
    test_sdconfig_enable_https_disable_pow_on_source_interface; do
    check "admin suite has $t" grep -q "::$t\$" "$WORK/admin-collect.log"
done
check "test_user_prompt_config_one checks enable_tor_metrics" \
    grep -q 'def verify_prompt_enable_tor_metrics' "$SD/admin/tests/test_securedrop-admin.py"

section "yamllint with SecureDrop's configuration"
# SecureDrop's .yamllint (the snapshot does not carry it; freedomofpress/securedrop at 4c3c173):
# the `relaxed` preset with line-length 200 as a warning.
SD_YAMLLINT='{extends: relaxed, rules: {line-length: {max: 200, level: warning}}}'
if yamllint -f parsable -d "$SD_YAMLLINT" "$AB" "$SD/molecule/ansible-config" \
    "$AB/group_vars/all/securedrop" >"$WORK/yamllint.log" 2>&1 &&
    ! grep -q '\[error\]' "$WORK/yamllint.log"; then
    ok "yamllint: no errors ($(grep -c '\[warning\]' "$WORK/yamllint.log" || true) warnings)"
else
    nok "yamllint: $(grep '\[error\]' "$WORK/yamllint.log" | head -5)"
fi

section "ansible-playbook --syntax-check with SecureDrop's ansible-core"
cat >"$WORK/inventory" <<'EOF'
[securedrop_application_server]
app-staging ansible_host=127.0.0.1
[securedrop_monitor_server]
mon-staging ansible_host=127.0.0.1
[securedrop:children]
securedrop_application_server
securedrop_monitor_server
[staging:children]
securedrop_application_server
securedrop_monitor_server
EOF
for pb in securedrop-prod.yml securedrop-staging.yml; do
    if (cd "$AB" && "$ADMIN_VENV/bin/ansible-playbook" -i "$WORK/inventory" --syntax-check "$pb") \
        >"$WORK/syntax-$pb.log" 2>&1; then
        ok "syntax-check $pb"
    else
        nok "syntax-check $pb: $(tail -5 "$WORK/syntax-$pb.log")"
    fi
    # the tor_exporter play comes after the play with tor-hidden-services and before the one with
    # restrict-direct-access (the firewall)
    check "$pb: the tor_exporter play runs after tor-hidden-services, before the firewall" \
        "$ADMIN_VENV/bin/python" - "$AB/$pb" <<'EOF'
import sys, yaml
plays = yaml.safe_load(open(sys.argv[1]))
def index(role):
    for i, play in enumerate(plays):
        for r in play.get("roles", []):
            if (r.get("role") if isinstance(r, dict) else r) == role:
                return i
    raise AssertionError(role + " not in " + sys.argv[1])
assert index("tor-hidden-services") < index("tor_exporter") < index("restrict-direct-access")
EOF
done

section "SecureDrop's molecule/ansible-config tests"
if (cd "$SD/molecule/ansible-config" && "$TI_VENV/bin/python" -m pytest -p no:cacheprovider -q \
    --hosts=local:// tests) >"$WORK/ansible-config.log" 2>&1; then
    ok "molecule/ansible-config: $(tail -1 "$WORK/ansible-config.log")"
else
    nok "molecule/ansible-config: $(grep -E '^(FAILED|ERROR)|passed|failed' "$WORK/ansible-config.log" | tail -5)"
fi

section "the torrc template, rendered by SecureDrop's Ansible"
# render TREE HOST FLAG OUT: FLAG is unset|false|true
render() {
    local tree=$1 host=$2 flag=$3 out=$4 extra=()
    [ "$flag" = unset ] || extra=(-e "enable_tor_metrics=$flag")
    cat >"$WORK/render.yml" <<EOF
- hosts: $host
  gather_facts: false
  connection: local
  tasks:
    - name: render
      ansible.builtin.template:
        src: $tree/install_files/ansible-base/roles/tor-hidden-services/templates/torrc
        dest: $out
        mode: "0644"
EOF
    ANSIBLE_CONFIG=$AB/ansible.cfg "$ADMIN_VENV/bin/ansible-playbook" -i "$WORK/inventory" \
        -e enable_ssh_over_tor=true -e ansible_python_interpreter="$ADMIN_VENV/bin/python" \
        "${extra[@]}" "$WORK/render.yml" >"$WORK/render.log" 2>&1 ||
        { cat "$WORK/render.log" >&2; return 1; }
}
R=$WORK/render
mkdir -p "$R"
for host in app-staging mon-staging; do
    render "$WORK/unpatched" "$host" unset "$R/$host.before"
    render "$SD" "$host" unset "$R/$host.unset"
    render "$SD" "$host" false "$R/$host.off"
    render "$SD" "$host" true "$R/$host.on"
    check "$host: flag unset renders byte-identical to the unpatched template" cmp -s "$R/$host.before" "$R/$host.unset"
    check "$host: flag off renders byte-identical to the unpatched template" cmp -s "$R/$host.before" "$R/$host.off"
    check "$host: flag on adds exactly the include line after RunAsDaemon" \
        test "$(diff "$R/$host.before" "$R/$host.on" | grep -v '^[0-9]')" = "> %include /etc/tor/securedrop-tor-exporter.torrc"
    check "$host: the include is an exact top-level file of /etc/tor/ (no glob, no subfolder)" \
        bash -c "grep '^%include' '$R/$host.on' | grep -qxE '%include /etc/tor/[^/*?]+'"
done
check "app: the sources' services are in the flag-on torrc" grep -q 'HiddenServiceDir /var/lib/tor/services/sourcev3' "$R/app-staging.on"
check "enable_tor_metrics defaults to false in group_vars/all/securedrop" \
    grep -qx 'enable_tor_metrics: false' "$AB/group_vars/all/securedrop"

# tor itself on the flag-on torrc: the paths moved into a temporary folder, the drop-in empty (as
# the tor-hidden-services role creates it) and then with the package's onion service.
tor_verify() {
    local torrc=$1
    tor --verify-config --defaults-torrc /dev/null -f "$torrc" --DisableNetwork 1 \
        --DataDirectory "$WORK/tor/data" >"$WORK/tor-verify.log" 2>&1
}
mkdir -p "$WORK/tor/data" "$WORK/tor/services" "$WORK/tor/etc"
chmod 0700 "$WORK/tor" "$WORK/tor/data" "$WORK/tor/services"
sed -e "s#/var/lib/tor/services/#$WORK/tor/services/#" -e "s#/etc/tor/#$WORK/tor/etc/#" \
    "$R/app-staging.on" >"$WORK/tor/torrc"
: >"$WORK/tor/etc/securedrop-tor-exporter.torrc"
check "tor accepts the flag-on app torrc with the drop-in still empty" tor_verify "$WORK/tor/torrc"
printf 'HiddenServiceDir %s/tor/securedrop-tor-exporter/\nHiddenServicePort 80 127.0.0.1:9747\n' "$WORK" \
    >"$WORK/tor/etc/securedrop-tor-exporter.torrc"
check "tor accepts the flag-on app torrc with the package's drop-in" tor_verify "$WORK/tor/torrc"
rm -f "$WORK/tor/etc/securedrop-tor-exporter.torrc"
if tor_verify "$WORK/tor/torrc"; then
    nok "tor refuses the flag-on torrc without the drop-in (so the role must create it first)"
else
    ok "tor refuses the flag-on torrc without the drop-in (so the role must create it first)"
fi
check "tor-hidden-services creates the drop-in (never overwriting it) before writing the torrc" \
    python3 - "$AB/roles/tor-hidden-services/tasks/configure_tor_hidden_services.yml" <<'EOF'
import sys, yaml
tasks = yaml.safe_load(open(sys.argv[1]))
names = [t.get("name", "") for t in tasks]
touch = next(i for i, t in enumerate(tasks)
             if t.get("copy", {}).get("dest") == "/etc/tor/securedrop-tor-exporter.torrc")
torrc = next(i for i, t in enumerate(tasks) if t.get("template", {}).get("dest") == "/etc/tor/torrc")
t = tasks[touch]
assert touch < torrc, names
assert t["copy"]["force"] is False and t["copy"]["content"] == ""
assert "enable_tor_metrics" in str(t["when"])
EOF

section "AppArmor: what tor must read for the product, under old and new system_tor rules"
# the same static check the package suite runs (tests/package/apparmor_paths.py), here because it
# reads the include line of this patch series too
if python3 "$REPO/tests/package/apparmor_paths.py" "$REPO" >"$WORK/apparmor.log" 2>&1; then
    ok "AppArmor: $(grep -c '^ok' "$WORK/apparmor.log") path checks hold under both rule sets"
else
    # its failed checks, or where it stopped (a traceback has no "not ok" line)
    why=$(grep '^not ok' "$WORK/apparmor.log" | head -5) || why=$(tail -n 3 "$WORK/apparmor.log")
    nok "AppArmor: $why"
fi

section ".gitignore"
for f in app-metrics.auth_private mon-metrics.auth_private tor-metrics-prometheus.yml; do
    check "git ignores install_files/ansible-base/$f" git_ check-ignore -q "install_files/ansible-base/$f"
done
for f in securedrop-prod.yml roles/tor_exporter/tasks/main.yml; do
    if git_ check-ignore -q "install_files/ansible-base/$f"; then
        nok "git ignores install_files/ansible-base/$f"
    else
        ok "git does not ignore install_files/ansible-base/$f"
    fi
done

summary
[ "$FAIL" -eq 0 ] || exit 1
