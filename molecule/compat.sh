#!/bin/bash
# Usage: molecule/compat.sh VENV_DIR WORKDIR DEB
#
# The role with the ansible-core that SecureDrop's admin workstation pins (2.15.9; Molecule 26
# needs a newer one, so this runs ansible-playbook directly): on the same two staging containers
# (molecule/default/container.sh, SecureDrop-like tor from molecule/default/prepare.yml), converge
# with the flag on, again (changed=0), in check mode (changed=0), off, off again (changed=0).
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

mkdir -p "$WORKDIR/admin"
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
        tor_exporter_client_auth_dir: $WORKDIR/admin
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

"$VENV/bin/ansible-playbook" --version | head -n 1 >&2
# The SecureDrop-like tor only (the play that builds a local apt repository is not needed here).
playbook "$HERE/default/prepare.yml" --limit securedrop
playbook "$REPO/ansible/securedrop-tor-exporter.yml"
playbook "$REPO/ansible/securedrop-tor-exporter.yml" && unchanged "a second run"
playbook "$REPO/ansible/securedrop-tor-exporter.yml" --check && unchanged "a check-mode run"
for f in app-metrics.auth_private mon-metrics.auth_private tor-metrics-prometheus.yml; do
    [ -s "$WORKDIR/admin/$f" ] || { echo "compat.sh: $f missing on the controller" >&2; exit 1; }
done
playbook "$REPO/ansible/securedrop-tor-exporter.yml" -e enable_tor_metrics=false
playbook "$REPO/ansible/securedrop-tor-exporter.yml" -e enable_tor_metrics=false && unchanged "a second flag-off run"
for host in "${HOSTS[@]}"; do
    pid=$(cat "$WORKDIR/$host/state/leader.pid")
    if nsenter -t "$pid" -a dpkg-query -W securedrop-tor-exporter >/dev/null 2>&1 ||
        [ -e "/proc/$pid/root/var/lib/tor/securedrop-tor-exporter" ] ||
        ! nsenter -t "$pid" -a systemctl is-active --quiet tor@default.service; then
        echo "compat.sh: $host not clean after switching off (or tor not running)" >&2
        exit 1
    fi
done
[ -z "$(ls -A "$WORKDIR/admin")" ] || { echo "compat.sh: files left on the controller" >&2; exit 1; }
echo "compat.sh: ansible-core 2.15.9: on, idempotent, check mode, off, off idempotent: all fine" >&2
