#!/bin/bash
# Usage: molecule/compat.sh VENV_DIR WORKDIR DEB
#
# The role with the ansible-core that SecureDrop's admin workstation pins (2.15.9; Molecule 26
# needs a newer one, so this runs ansible-playbook directly): on the same two staging containers
# (molecule/default/container.sh, SecureDrop-like tor from molecule/default/prepare.yml), converge
# with the flag on, again (changed=0), in check mode (changed=0), traffic counters refused on the
# application server and on and off again on the monitor server, off, off again (changed=0); and
# in both admin workstation layouts: 2.11-like (the playbook's folder holds the admin's files) and
# 2.13-like (the playbooks in a read-only, package-owned folder, the admin's files in config_path;
# without config_path the role stops before changing anything).
# Called by molecule/run.sh, which passes a venv folder to create (or reuse), a fresh work folder
# and the .deb, and stops the containers in its exit trap too. ANSIBLE_COLLECTIONS_PATH must hold
# community.docker (run.sh sets it).
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 VENV_DIR WORKDIR DEB" >&2; exit 2; }
: "${ANSIBLE_COLLECTIONS_PATH:?must point to a folder with community.docker (see molecule/run.sh)}"
VENV=$1 WORKDIR=$2 DEB=$3
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
HOSTS=(app-staging mon-staging)

if [ ! -e "$VENV/.complete" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check ansible-core==2.15.9
    : >"$VENV/.complete"
fi

cleanup() {
    local host
    for host in "${HOSTS[@]}"; do
        "$HERE/default/container.sh" down "$host" "$WORKDIR" || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# 2.11-like: playbooks and the admin's files in install_files/ansible-base/. 2.13-like: playbooks
# in /usr/share/securedrop-admin/ansible-base (mounted read-only for the runs below, so not even
# root can write there), the admin's files in ~/.config/securedrop-admin (config_path).
AB211=$WORKDIR/sd-2.11/install_files/ansible-base
AB213=$WORKDIR/sd-2.13/usr/share/securedrop-admin/ansible-base
CONF213=$WORKDIR/sd-2.13/home/admin/.config/securedrop-admin
mkdir -p "$AB211" "$AB213" "$CONF213"
cp "$REPO/ansible/securedrop-tor-exporter.yml" "$AB211/"
cp "$REPO/ansible/securedrop-tor-exporter.yml" "$AB213/"
for host in "${HOSTS[@]}"; do
    "$HERE/default/container.sh" up "$host" "$WORKDIR" >/dev/null
done

cat >"$WORKDIR/inventory.yml" <<EOF
all:
  vars:
    tor_exporter_molecule_workdir: $WORKDIR
  children:
    securedrop:
      children:
        securedrop_application_server: {hosts: {app-staging: {}}}
        securedrop_monitor_server: {hosts: {mon-staging: {}}}
      vars:
        ansible_connection: community.docker.nsenter
        ansible_nsenter_pid: "{{ lookup('ansible.builtin.file', '$WORKDIR/' ~ inventory_hostname ~ '/state/leader.pid') }}"
        ansible_python_interpreter: /usr/bin/python3
        enable_tor_metrics: true
        enable_ssh_over_tor: true
        securedrop_app_https_on_source_interface: false
        tor_exporter_install_method: deb
        tor_exporter_deb_src: $DEB
EOF

export ANSIBLE_ROLES_PATH=$REPO/ansible/roles:$HERE/default/roles ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
playbook() {
    "$VENV/bin/ansible-playbook" -i "$WORKDIR/inventory.yml" "$@" >"$WORKDIR/last.log" 2>&1 || {
        tail -n 40 "$WORKDIR/last.log" >&2
        echo "compat.sh: ansible-playbook $* failed" >&2
        return 1
    }
}
# The PLAY RECAP must show changed=0 and failed=0 for both servers.
unchanged() {
    local host
    for host in "${HOSTS[@]}"; do
        grep -Eq "^$host +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0" "$WORKDIR/last.log" || {
            grep -A3 'PLAY RECAP' "$WORKDIR/last.log" >&2
            echo "compat.sh: $1 changed something on $host" >&2
            return 1
        }
    done
}

# playbook213 ARGS...: ansible-playbook with the 2.13-like playbook folder mounted read-only
playbook213() {
    # shellcheck disable=SC2016  # $1 and $@ are the inner shell's
    unshare -m --propagation private sh -c 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" &&
        shift && exec "$@"' sh "$AB213" "$VENV/bin/ansible-playbook" -i "$WORKDIR/inventory.yml" "$@" \
        >"$WORKDIR/last.log" 2>&1 || {
        tail -n 40 "$WORKDIR/last.log" >&2
        echo "compat.sh: ansible-playbook (2.13 layout) $* failed" >&2
        return 1
    }
}
files_in() { # DIR: the admin's files are there
    local f
    for f in app-metrics.auth_private mon-metrics.auth_private tor-metrics-prometheus.yml; do
        [ -s "$1/$f" ] || { echo "compat.sh: $f missing in $1" >&2; return 1; }
    done
}

# sed reads to the end: `head -n 1` closed the pipe early, and ansible-playbook then died of
# BrokenPipeError, which pipefail turned into a failed run (seen once under load).
"$VENV/bin/ansible-playbook" --version | sed -n 1p >&2
# The SecureDrop-like tor only (the play that builds a local apt repository is not needed here).
playbook "$HERE/default/prepare.yml" --limit securedrop
# 2.11-like layout
playbook "$AB211/securedrop-tor-exporter.yml"
playbook "$AB211/securedrop-tor-exporter.yml" && unchanged "a second run"
playbook "$AB211/securedrop-tor-exporter.yml" --check && unchanged "a check-mode run"
files_in "$AB211"
# tor's traffic counters (tasks/traffic_guard.yml) on 2.15.9, whose set_fact turns "true"/"false"
# into booleans: asked for on both, refused on app-staging by name before any change (and, the
# playbook stopping at the first failure, nothing done on mon-staging); the exporter's files say
# off on both; on for mon-staging alone it runs (the exporter reads "true"), and off again.
traffic_in() { # HOST VALUE: the role's traffic file on HOST says `enabled = VALUE`
    grep -qx "enabled = $2" "/proc/$(cat "$WORKDIR/$1/state/leader.pid")/root/etc/securedrop-tor-exporter/config.d/90-securedrop-traffic.toml" ||
        { echo "compat.sh: the traffic file on $1 does not say enabled = $2" >&2; return 1; }
}
if playbook "$AB211/securedrop-tor-exporter.yml" -e tor_exporter_traffic_counters=true 2>/dev/null; then
    echo "compat.sh: the role turned traffic counters on for the Application Server" >&2
    exit 1
fi
grep -q 'tor_exporter_traffic_counters is true for app-staging, but sources connect' "$WORKDIR/last.log" ||
    { echo "compat.sh: the traffic refusal does not name the variable" >&2; exit 1; }
for host in "${HOSTS[@]}"; do
    grep -Eq "^$host +: .*changed=0 " "$WORKDIR/last.log" ||
        { grep -A3 'PLAY RECAP' "$WORKDIR/last.log" >&2; echo "compat.sh: the traffic refusal changed $host" >&2; exit 1; }
    traffic_in "$host" false
done
playbook "$AB211/securedrop-tor-exporter.yml" --limit mon-staging -e tor_exporter_traffic_counters=true
traffic_in mon-staging true
playbook "$AB211/securedrop-tor-exporter.yml" --limit mon-staging
traffic_in mon-staging false
# 2.13-like layout. Without config_path the admin's files would go into the read-only playbook
# folder: the role must refuse in its preflight, before any server changes.
if playbook213 "$AB213/securedrop-tor-exporter.yml" 2>/dev/null; then
    echo "compat.sh: the role ran with its files pointed at a read-only playbook folder" >&2
    exit 1
fi
grep -q 'config_path' "$WORKDIR/last.log" || { echo "compat.sh: the refusal does not name config_path" >&2; exit 1; }
for host in "${HOSTS[@]}"; do
    grep -Eq "^$host +: .*changed=0 .*failed=1" "$WORKDIR/last.log" ||
        { grep -A3 'PLAY RECAP' "$WORKDIR/last.log" >&2; echo "compat.sh: the refusal changed $host" >&2; exit 1; }
done
# the admin's files moved to config_path (as SecureDrop's 2.13 migration moves site-specific and the
# *.auth_private files): same keys and addresses, nothing changes on the servers
cp -p "$AB211"/*-metrics.auth_private "$CONF213/"
sums=$(cd "$CONF213" && sha256sum ./*-metrics.auth_private)
playbook213 "$AB213/securedrop-tor-exporter.yml" -e "config_path=$CONF213"
files_in "$CONF213"
[ "$sums" = "$(cd "$CONF213" && sha256sum ./*-metrics.auth_private)" ] ||
    { echo "compat.sh: the 2.13 layout run changed the admin's keys" >&2; exit 1; }
[ "$(ls -A "$AB213")" = securedrop-tor-exporter.yml ] ||
    { echo "compat.sh: something was written into the 2.13 playbook folder" >&2; exit 1; }
playbook213 "$AB213/securedrop-tor-exporter.yml" -e "config_path=$CONF213" && unchanged "a second 2.13-layout run"
playbook213 "$AB213/securedrop-tor-exporter.yml" -e "config_path=$CONF213" -e enable_tor_metrics=false
playbook213 "$AB213/securedrop-tor-exporter.yml" -e "config_path=$CONF213" -e enable_tor_metrics=false &&
    unchanged "a second flag-off run"
for host in "${HOSTS[@]}"; do
    pid=$(cat "$WORKDIR/$host/state/leader.pid")
    if nsenter -t "$pid" -a dpkg-query -W securedrop-tor-exporter >/dev/null 2>&1 ||
        [ -e "/proc/$pid/root/var/lib/tor/securedrop-tor-exporter" ] ||
        ! nsenter -t "$pid" -a systemctl is-active --quiet tor@default.service; then
        echo "compat.sh: $host not clean after switching off (or tor not running)" >&2
        exit 1
    fi
done
[ -z "$(ls -A "$CONF213")" ] || { echo "compat.sh: files left in config_path" >&2; exit 1; }
echo "compat.sh: ansible-core 2.15.9: on, idempotent, check mode, traffic counters refused on app and on/off on mon (2.11 layout); refused without config_path, on, idempotent, off, off idempotent (2.13 layout): all fine" >&2
