#!/bin/bash
# SecureDrop's playbooks, templates and data with contrib/securedrop/patches/ applied. The SecureDrop
# snapshot (../shared/upstream/securedrop, or SDTE_SECUREDROP_SNAPSHOT) holds data files only: no
# SecureDrop program code, no Python tests, no shell scripts. So this suite runs everything that needs
# only data, and says plainly that SecureDrop's admin tests are not run here:
#   - the series is well-formed `git format-patch` output, numbered 1/N..N/N;
#   - the patches that touch data (playbooks, templates, group_vars, .gitignore) apply with `git am`
#     to a copy of the snapshot; those that touch SecureDrop's Python code (admin/) cannot (the code
#     is not there) and are checked as far as the text allows: they parse as patches, touch only
#     admin/, carry the new tests by name, and every whole function they add compiles;
#   - yamllint with SecureDrop's configuration;
#   - `ansible-playbook --syntax-check` of securedrop-prod.yml and securedrop-staging.yml with the
#     ansible-core SecureDrop pins (admin/requirements.txt), and the play order;
#   - the torrc template rendered by that Ansible, unpatched and patched, flag unset/off/on, for the
#     app and the mon server; the rendered torrc checked by tor itself;
#   - the testinfra variable files (molecule/testinfra/vars/*.yml) still parse, those the series
#     changes named;
#   - the AppArmor path check of tests/package/apparmor_paths.py (the include line of this series);
#   - the .gitignore entries for the new private key files;
#   - contrib/securedrop/patches-2.13 (SecureDrop 2.13+): the same format checks, its data patches
#     applied to another copy of the snapshot (the result must be the 2.11 series' tree, file for
#     file), its code patches (admin/, builder/: 2.13+ code is not in the snapshot) checked as text,
#     and the block it adds to admin/migrate-to-deb.sh run with stand-in inputs;
#   - the testinfra module of both series: compiles, is the same in both, and is run for real by
#     tests/securedrop/testinfra.sh over this project's .deb in a booted container (its AppArmor
#     enforce check skipped there: that kernel has no AppArmor).
# SecureDrop's admin test suite with patch 0001 was run by hand against SecureDrop's own tree (see
# docs/securedrop.md, "Checked by hand"); nothing here fetches or runs SecureDrop's code.
# Needs root for apt (installs git, yamllint, tor, apparmor for its profile files, python3-venv
# and ShellCheck) and for testinfra.sh's container (systemd-nspawn).
# The ansible-core virtualenv is cached under SDTE_CACHE (default
# /var/cache/securedrop-tor-exporter-tests), keyed by the hash of admin/requirements.txt.
# Ends with `N passed, M failed`; exit 1 on failure.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SNAPSHOT=${SDTE_SECUREDROP_SNAPSHOT:-$(cd "$REPO/.." && pwd)/shared/upstream/securedrop}
[ -d "$SNAPSHOT/install_files/ansible-base" ] || SNAPSHOT=/work/shared/upstream/securedrop
PATCHES=$REPO/contrib/securedrop/patches
PATCHES_213=$REPO/contrib/securedrop/patches-2.13
ROLE=$REPO/ansible/roles/tor_exporter
CACHE=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
T0=$SECONDS

WORK=
# shellcheck source=scripts/lib/tap.sh
. "$REPO/scripts/lib/tap.sh"
cleanup() {
    local rc=$?
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${SDTE_KEEP:-0}" = 1 ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
    fi
    summary_at_exit "$rc"
    [ "$FAIL" -eq 0 ] || exit 1
}
trap cleanup EXIT

[ -d "$SNAPSHOT/install_files/ansible-base" ] || { nok "SecureDrop snapshot not found ($SNAPSHOT)"; summary; exit 1; }

section "tools"
# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"
tools=(cmd:git:git cmd:yamllint:yamllint cmd:tor:tor cmd:flock:util-linux
    cmd:apparmor_parser:apparmor py:venv:python3-venv py:ensurepip:python3-venv cmd:shellcheck:shellcheck)
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

section "venv (SecureDrop's pinned ansible-core, cached in $CACHE)"
# admin/requirements.txt only: ansible-core and what it needs. requirements-dev.txt (pytest, pexpect)
# and requirements-testinfra.txt served SecureDrop's Python tests, which the snapshot no longer has.
ADMIN_VENV=$(make_venv admin "$SNAPSHOT/admin/requirements.txt")
check "venv has SecureDrop's ansible-core 2.15.9" \
    test "$("$ADMIN_VENV/bin/python" -c 'import ansible.release as r; print(r.__version__)')" = 2.15.9

# check_series DIR LABEL CODE_RE: every patch of DIR is git format-patch output (mbox header,
# "[PATCH k/N]" in order, a subject and an author git mailinfo reads, a diff git apply reads), split
# into data_patches (they apply to the snapshot) and code_patches (they touch a path matching
# CODE_RE: SecureDrop code the snapshot does not hold); the two sets touch no file in common. Check
# lines start with LABEL.
check_series() {
    local dir=$1 label=$2 code_re=$3 series k p name subject author files
    mapfile -t series < <(find "$dir" -maxdepth 1 -name '*.patch' | sort)
    check "contrib/securedrop/$(basename "$dir") has a series (${#series[@]} patches)" test "${#series[@]}" -gt 0
    data_patches=()
    code_patches=()
    : >"$WORK/data-files"
    : >"$WORK/code-files"
    k=0
    for p in "${series[@]}"; do
        k=$((k + 1))
        name=$label$(basename "$p")
        check "$name: git format-patch header" \
            grep -qE '^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$' <(head -1 "$p")
        subject=$(git mailinfo /dev/null /dev/null <"$p" 2>/dev/null | sed -n 's/^Subject: //p')
        check "$name: numbered $k/${#series[@]} and has a subject" \
            grep -qE "^Subject: \[PATCH $k/${#series[@]}\] " <(sed -n '/^Subject:/,/^$/p' "$p" | head -1)
        author=$(git mailinfo /dev/null /dev/null <"$p" 2>/dev/null | sed -n 's/^Author: //p')
        check "$name: git mailinfo reads an author and a subject ($subject)" test -n "$author" -a -n "$subject"
        if ! files=$(git apply --numstat "$p" 2>"$WORK/numstat.err" | cut -f3); then
            nok "$name: git apply reads the diff: $(head -3 "$WORK/numstat.err")"
            continue
        fi
        ok "$name: git apply reads the diff ($(wc -l <<<"$files") files)"
        if grep -qE "$code_re" <<<"$files"; then
            code_patches+=("$p")
            echo "$files" >>"$WORK/code-files"
            check "$name: touches SecureDrop's code only ($code_re)" \
                test -z "$(grep -vE "$code_re" <<<"$files")"
        else
            data_patches+=("$p")
            echo "$files" >>"$WORK/data-files"
        fi
    done
    eq "${label}the data patches touch no file the code patches touch (so they apply without them)" "" \
        "$(sort -u "$WORK/data-files" | comm -12 - <(sort -u "$WORK/code-files") | paste -sd' ')"
}

section "the patch series"
# SecureDrop's Python code (admin/) is not in the snapshot.
check_series "$PATCHES" "" '^admin/'

section "the data patches apply to the snapshot"
cp -a "$SNAPSHOT" "$SD"
git_() { git -C "$SD" -c user.name=snapshot -c user.email=snapshot@example.invalid "$@"; }
git_ init -q -b main
git_ add -A
git_ commit -q -m "SecureDrop snapshot"
cp -a "$SD" "$WORK/unpatched"
if git_ am -q "${data_patches[@]}" >"$WORK/am.log" 2>&1; then
    ok "git am applies the ${#data_patches[@]} data patches ($(for p in "${data_patches[@]}"; do basename "$p" | cut -c1-4; done | paste -sd' '))"
else
    nok "git am failed: $(tail -5 "$WORK/am.log")"
    summary
    exit 1
fi
check "the working tree is clean after git am" test -z "$(git_ status --porcelain)"
cp -a "$ROLE" "$AB/roles/tor_exporter"

section "the code patches (SecureDrop's admin code is not in the snapshot)"
echo "# SecureDrop's admin tests are NOT run here: the snapshot holds no SecureDrop code"
echo "# (admin/securedrop_admin/ and admin/tests/*.py). ${#code_patches[@]} patch(es) touch it; they"
echo "# were run by hand against SecureDrop's own tree and tests (docs/securedrop.md, \"Checked by hand\")."
for p in "${code_patches[@]}"; do
    name=$(basename "$p")
    for f in $(git apply --numstat "$p" | cut -f3); do
        check "$name: $f is not in the snapshot (so the patch is not applied here)" test ! -e "$SNAPSHOT/$f"
    done
    # every whole function or method the patch adds, dedented, compiles with this Python
    check "$name: every function it adds compiles" \
        python3 "$HERE/added_functions.py" "$p"
done
cat /dev/null "${code_patches[@]}" >"$WORK/code.patch"
all_code=$(cat "$WORK/code.patch")
for t in test_enable_tor_metrics_defaults_to_no test_enable_tor_metrics_answer_is_kept \
    verify_prompt_enable_tor_metrics; do
    check "the code patches add $t" grep -qE "^\+ *def $t\(" <<<"$all_code"
done
for t in test_sdconfig_on_first_run test_sdconfig_enable_journalist_alerts \
    test_sdconfig_enable_https_disable_pow_on_source_interface; do
    check "the code patches answer the new prompt in $t" \
        python3 - "$t" "$WORK/code.patch" <<'EOF'
import re, sys
hunks = re.split(r"^(?=@@ )", open(sys.argv[2], encoding="utf-8").read(), flags=re.M)
assert any(h.startswith("@@") and f"def {sys.argv[1]}()" in h.split("\n", 1)[0]
           and "+    verify_tor_metrics_prompt(child)" in h for h in hunks), sys.argv[1]
EOF
done
eq "the code patches expect enable_tor_metrics: false in the three sdconfig outputs" 3 \
    "$(grep -c '^+enable_tor_metrics: false$' <<<"$all_code")"
check "the code patches ask enable_tor_metrics as a boolean with the default False" \
    python3 - "$WORK/code.patch" <<'EOF'
import re, sys
added = "\n".join(l[1:] for l in open(sys.argv[1], encoding="utf-8").read().splitlines() if l.startswith("+") and not l.startswith("+++"))
assert re.search(r'"enable_tor_metrics",\s*False,\s*bool,', added), "no (enable_tor_metrics, False, bool, …) prompt"
EOF

section "yamllint with SecureDrop's configuration"
# SecureDrop's .yamllint (the snapshot does not carry it; freedomofpress/securedrop at 4c3c173):
# the `relaxed` preset with line-length 200 as a warning.
SD_YAMLLINT='{extends: relaxed, rules: {line-length: {max: 200, level: warning}}}'
if yamllint -f parsable -d "$SD_YAMLLINT" "$AB" "$SD/molecule/ansible-config" \
    "$SD/molecule/testinfra/vars" "$AB/group_vars/all/securedrop" >"$WORK/yamllint.log" 2>&1 &&
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
printf 'HiddenServiceDir %s/tor/securedrop-tor-exporter/\nHiddenServicePort 80 unix:/var/lib/tor/securedrop-tor-exporter.sock\n' "$WORK" \
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

section "SecureDrop's testinfra variable files"
# testinfra's Python tests are not in the snapshot; its variable files are, and a change to them
# must still load as YAML mappings (testinfra reads them with yaml.safe_load).
mapfile -t changed_vars < <(git_ diff --name-only "HEAD~${#data_patches[@]}" HEAD -- molecule/testinfra/vars)
echo "# the series changes ${#changed_vars[@]} testinfra variable file(s)${changed_vars[*]:+: ${changed_vars[*]}}"
check "every molecule/testinfra/vars/*.yml of the patched tree loads as a YAML mapping" \
    "$ADMIN_VENV/bin/python" - "$SD/molecule/testinfra/vars" <<'EOF'
import glob, os, sys, yaml
files = sorted(glob.glob(os.path.join(sys.argv[1], "*.yml")))
assert files, "no variable files in " + sys.argv[1]
for f in files:
    data = yaml.safe_load(open(f, encoding="utf-8"))
    assert isinstance(data, dict), f + ": not a mapping"
print("#", len(files), "files")
EOF
for f in "${changed_vars[@]}"; do
    check "$f (changed by the series) loads" "$ADMIN_VENV/bin/python" -c \
        'import sys, yaml; assert isinstance(yaml.safe_load(open(sys.argv[1])), dict)' "$SD/$f"
done

# ---- begin OSSEC section (tests/ossec; patch 0005's rules and testinfra cases) ----
section "OSSEC: the exporter's lines through the patched tree's OSSEC rules (tests/ossec)"
# OSSEC 3.6.0's decoders and rules with the patched tree's ossec.conf, local_decoder.xml and
# local_rules.xml, evaluated by tests/ossec/ossec_match.py (ossec-logtest's logic in Python; the real
# ossec-logtest was run by hand on the same lines, docs/ossec.md): the golden health lines, the
# routine lines, and every testinfra case of the snapshot and of the patched tree. One check per
# unittest test; a skipped test counts as failed (PyYAML comes with the ansible-core venv).
OSSEC_ETC=${SDTE_OSSEC_HIDS_ETC:-$(cd "$REPO/.." && pwd)/shared/upstream/ossec-hids/etc}
[ -f "$OSSEC_ETC/decoder.xml" ] || OSSEC_ETC=/work/shared/upstream/ossec-hids/etc
if [ ! -f "$OSSEC_ETC/decoder.xml" ] || [ ! -d "$OSSEC_ETC/rules" ]; then
    nok "OSSEC 3.6.0's decoder.xml and rules/ not found ($OSSEC_ETC)"
else
    ossec_rc=0
    PYTHONDONTWRITEBYTECODE=1 SDTE_OSSEC_HIDS_ETC=$OSSEC_ETC SDTE_SECUREDROP_SNAPSHOT=$SNAPSHOT \
        SDTE_OSSEC_PATCHED_TREE=$SD "$ADMIN_VENV/bin/python" -m unittest discover \
        -s "$REPO/tests/ossec" -p 'test_*.py' -v >"$WORK/ossec.log" 2>&1 || ossec_rc=$?
    ossec_tests=0
    while IFS= read -r line; do
        ossec_tests=$((ossec_tests + 1))
        name=${line#* (test_rules.}
        name=${name%%) ...*}
        why=${line##* ... }
        case $why in
        ok) ok "OSSEC: $name" ;;
        *) nok "OSSEC: $name: ${why:-failed in subtests}" ;;
        esac
    done < <(grep -E '^test_[A-Za-z0-9_]+ \(.*\) \.\.\. ' "$WORK/ossec.log")
    if [ "$ossec_rc" -eq 0 ] && [ "$ossec_tests" -gt 0 ] && grep -qx 'OK' "$WORK/ossec.log"; then
        ok "OSSEC: the unittest run passed ($ossec_tests tests, none skipped)"
    else
        why=$(grep -E '^(FAIL|ERROR|OK|Ran)' "$WORK/ossec.log" | head -8 | paste -sd' ')
        nok "OSSEC: the unittest run (exit $ossec_rc, $ossec_tests tests): $why"
        grep -E -A12 '^(FAIL|ERROR):' "$WORK/ossec.log" | head -60 | sed 's/^/# /'
    fi
fi
# ---- end OSSEC section ----

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

section "the 2.13+ series (contrib/securedrop/patches-2.13): as format-patch output"
# Made against SecureDrop 2.13+ files (admin/ as of 2.15.0~rc1; contrib/securedrop/README.md lists
# the base). Its code patches touch admin/ and builder/, which the snapshot does not hold.
SD_213=$WORK/securedrop-2.13
check_series "$PATCHES_213" "2.13 " '^(admin|builder)/'
patches_213_data=("${data_patches[@]}")
patches_213_code=("${code_patches[@]}")

section "the 2.13+ series: its data patches applied to the snapshot"
cp -a "$SNAPSHOT" "$SD_213"
git213() { git -C "$SD_213" -c user.name=snapshot -c user.email=snapshot@example.invalid "$@"; }
git213 init -q -b main
git213 add -A
git213 commit -q -m "SecureDrop snapshot"
if git213 am -q "${patches_213_data[@]}" >"$WORK/am-2.13.log" 2>&1; then
    ok "2.13: git am applies the ${#patches_213_data[@]} data patches ($(for p in "${patches_213_data[@]}"; do basename "$p" | cut -c1-4; done | paste -sd' '))"
else
    nok "2.13: git am of the data patches failed: $(tail -5 "$WORK/am-2.13.log")"
fi
check "2.13: the working tree is clean after git am" test -z "$(git213 status --porcelain)"
# The same data changes as the 2.11 series: every check above of the patched data tree (yamllint,
# syntax checks, the rendered torrc, tor, OSSEC, testinfra vars, .gitignore) holds for both.
check "2.13: the patched data tree is the 2.11 series' one, file for file (the checks above cover it)" \
    diff -r -q -x .git -x tor_exporter "$SD_213" "$SD"

section "the 2.13+ series: its code patches, checked as text (SecureDrop 2.13+ code is not in /work/shared)"
echo "# SecureDrop 2.13+'s admin code, migrate-to-deb.sh and builder tests are not in the snapshot, so"
echo "# these ${#patches_213_code[@]} patches are not applied here: what their text allows is checked instead"
echo "# (docs/securedrop.md, \"The 2.13+ series\"; the admin tests were run by hand)."
cat /dev/null "${patches_213_code[@]}" >"$WORK/code-2.13.patch"
eq "2.13: the code patches touch SecureDrop's admin code, its migration script and package test" \
    "admin/migrate-to-deb.sh admin/securedrop_admin/__init__.py admin/tests/test_integration.py admin/tests/test_securedrop-admin.py builder/tests/test_admin_package.py" \
    "$(sort -u "$WORK/code-files" | paste -sd' ')"
while read -r f; do
    check "2.13: $f is not in the snapshot (so the patch is not applied here)" test ! -e "$SNAPSHOT/$f"
done < <(sort -u "$WORK/code-files")
for p in "${patches_213_code[@]}"; do
    grep -q '^+++ b/admin/securedrop_admin/' "$p" || continue
    check "2.13 $(basename "$p"): every function it adds compiles" python3 "$HERE/added_functions.py" "$p"
done
# The blob each code patch starts from is the one contrib/securedrop/README.md's base table lists,
# so the table and the series describe the same base.
while read -r blob; do
    check "2.13: the base blob $blob is listed in contrib/securedrop/README.md" \
        grep -qF "| $blob (" "$REPO/contrib/securedrop/README.md"
done < <(grep -h '^index ' "${patches_213_code[@]}" | sed -E 's/^index ([0-9a-f]+)\..*/\1/' | sort -u)
# the added lines of the 2.13 code patches, without the +
added_text=$(grep '^+' "$WORK/code-2.13.patch" | grep -v '^+++ ' | cut -c2-)
for t in test_enable_tor_metrics_defaults_to_no test_enable_tor_metrics_answer_is_kept \
    test_enable_tor_metrics_is_saved_with_config_path verify_prompt_enable_tor_metrics; do
    check "2.13: the code patches add $t" grep -qE "^ *def $t\(self[,)]" <<<"$added_text"
done
# shellcheck disable=SC2016  # $1 is the inner bash's
check "2.13: no added line builds SiteConfig from arguments or uses tmpdir (2.13+ takes none)" \
    bash -c '! grep -qE "SiteConfig\([^)]|argparse\.Namespace\(|tmpdir" <<<"$1"' _ "$added_text"
eq "2.13: the added tests make SiteConfig() as 2.13+ does (all three)" 3 \
    "$(grep -cF 'securedrop_admin.SiteConfig()' <<<"$added_text")"
check "2.13: a yes is expected in the saved site-specific beside config_path" \
    grep -qF 'assert saved["config_path"] == CONFIG_DIR' <<<"$added_text"
check "2.13: the code patches ask enable_tor_metrics as a boolean with the default False" \
    grep -qzE '"enable_tor_metrics",[[:space:]]*False,[[:space:]]*bool,' <<<"$added_text"
for t in test_sdconfig_on_first_run test_sdconfig_enable_journalist_alerts \
    test_sdconfig_enable_https_disable_pow_on_source_interface; do
    check "2.13: the code patches answer the new prompt in $t" \
        python3 "$HERE/answers_prompt.py" "$t" "$WORK/code-2.13.patch"
done
# yaml.safe_dump sorts the keys: enable_tor_metrics comes right after enable_ssh_over_tor
eq "2.13: enable_tor_metrics: false follows enable_ssh_over_tor: true in the three sdconfig outputs" 3 \
    "$(grep -A1 -x ' enable_ssh_over_tor: true' "$WORK/code-2.13.patch" | grep -cx '+enable_tor_metrics: false')"
check "2.13: the package test looks for the role inside ansible-base" \
    grep -qF '"/usr/share/securedrop-admin/ansible-base/roles/tor_exporter/tasks/main.yml",' <<<"$added_text"

# migrate-to-deb.sh: the block the patch adds, run for real with a stand-in for the script's own
# value reader (ours, not SecureDrop's): copied when enable_tor_metrics is true, a missing file
# skipped and said, nothing copied when it is false.
awk '/^\+\+\+ b\/admin\/migrate-to-deb.sh/ { on = 1; next } /^diff --git/ { on = 0 }
    on && /^\+/ { print substr($0, 2) }' "$WORK/code-2.13.patch" >"$WORK/migrate-block.sh"
# shellcheck disable=SC2016  # $1 is the inner bash's
check "2.13: the migration block is there and parses (bash -n)" \
    bash -c 'test -s "$1" && bash -n "$1"' _ "$WORK/migrate-block.sh"
check "2.13: the migration block is shellcheck-clean (its variables come from the script)" \
    shellcheck -s bash -e SC2154 "$WORK/migrate-block.sh"
# migrate FLAG FILES...: the block with site-specific saying enable_tor_metrics: FLAG and FILES in
# the old folder; prints what the new folder holds afterwards
migrate() {
    local flag=$1 m=$WORK/migrate f
    shift
    rm -rf "$m"
    mkdir -p "$m/old" "$m/new"
    printf 'enable_ssh_over_tor: true\nenable_tor_metrics: %s\n' "$flag" >"$m/old/site-specific"
    for f in "$@"; do echo "stand-in for $f" >"$m/old/$f"; done
    # shellcheck disable=SC2016  # expanded by the inner bash
    OLD_CONFIG_DIR=$m/old NEW_CONFIG_DIR=$m/new SITE_SPECIFIC_FILE=$m/old/site-specific bash -c '
        set -e -o pipefail
        get_site_specific_value() { sed -n "s/^$1: *//p" "$SITE_SPECIFIC_FILE"; }
        . "$1"' _ "$WORK/migrate-block.sh" >"$m/out" 2>&1 || { sed 's/^/#   /' "$m/out"; return 1; }
    (cd "$m/new" && find . -type f | sort | paste -sd' ')
}
eq "2.13: migration with the flag on carries both keys and the snippet" \
    "./app-metrics.auth_private ./mon-metrics.auth_private ./tor-metrics-prometheus.yml" \
    "$(migrate true app-metrics.auth_private mon-metrics.auth_private tor-metrics-prometheus.yml)"
eq "2.13: migration with a key missing carries the rest" "./app-metrics.auth_private" \
    "$(migrate true app-metrics.auth_private)"
check "2.13: ... and says which one it skipped" \
    grep -q '^! Not found (skipping): mon-metrics.auth_private' "$WORK/migrate/out"
eq "2.13: migration with the flag off carries none" "" \
    "$(migrate false app-metrics.auth_private mon-metrics.auth_private)"

section "the testinfra module (in both series)"
MODULE=molecule/testinfra/common/test_tor_exporter.py
check "the module compiles" python3 -c \
    'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' "$SD/$MODULE"
check "the module is the same in both series" cmp -s "$SD/$MODULE" "$SD_213/$MODULE"
check "the staging vars list the exporter's profile under apparmor_enforce, beside the others" \
    "$ADMIN_VENV/bin/python" -c '
import sys, yaml
enforce = yaml.safe_load(open(sys.argv[1]))["apparmor_enforce"]
assert all("securedrop-tor-exporter" in profiles for profiles in enforce.values()), enforce' \
    "$SD/molecule/testinfra/vars/staging.yml"
check "staging turns enable_tor_metrics on (group_vars/staging.yml)" "$ADMIN_VENV/bin/python" -c '
import sys, yaml
assert yaml.safe_load(open(sys.argv[1]))["enable_tor_metrics"] is True' "$AB/group_vars/staging.yml"
# The module run for real over the package in a booted container (tests/securedrop/testinfra.sh);
# its own lines are shown as comments, its result is one check here.
if bash "$HERE/testinfra.sh" "$SD" >"$WORK/testinfra.log" 2>&1; then
    ok "testinfra: the module over the .deb in a container ($(tail -1 "$WORK/testinfra.log"))"
else
    nok "testinfra: the module over the .deb in a container ($(tail -1 "$WORK/testinfra.log"))"
fi
grep -E '^(ok|not ok|# SKIPPED|# \(this)' "$WORK/testinfra.log" | sed 's/^/#   /' || true

summary
[ "$FAIL" -eq 0 ] || exit 1
