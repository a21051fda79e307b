#!/bin/bash
# Usage: monitoring/molecule.sh   (as root; monitoring/test.sh runs it)
#
# `molecule test` of molecule/monitoring: the tor_monitoring role on a booted systemd container
# standing for the admin's monitoring host (loopback only). Uses the pinned tools and the
# community.docker collection in the same cache as molecule/run.sh (made here the same way when
# missing), and the package suite's cached .deb of this tree (tests/package/cached-deb.sh).
# Also yamllint and ansible-lint on the role and the scenario. Exit status 0 only if all pass.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}
# The same pins, venv and collections as molecule/run.sh.
# shellcheck source=molecule/tools.sh
. "$REPO/molecule/tools.sh"

# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"
need_packages --recommends debootstrap systemd-container python3-venv dpkg-dev

molecule_venv
molecule_collections

cd "$REPO"
# One run at a time on this machine: the container has a fixed name (monitoring-staging), and a
# second run (another checkout, another suite) would destroy it under the first.
mkdir -p /run/lock
exec 8>/run/lock/sdte-molecule-monitoring.lock
flock -w 3600 8 || { echo "molecule.sh: another run holds the container for over an hour" >&2; exit 1; }
yamllint -s ansible/roles/tor_monitoring molecule/monitoring
ANSIBLE_ROLES_PATH=$REPO/ansible/roles ansible-lint --offline --profile production ansible/roles/tor_monitoring molecule/monitoring
TOR_EXPORTER_DEB=$(bash tests/package/cached-deb.sh)
export TOR_EXPORTER_DEB
TOR_MONITORING_MOLECULE_WORKDIR=$(mktemp -d /var/tmp/tor-monitoring-molecule.XXXXXX)
export TOR_MONITORING_MOLECULE_WORKDIR
# Whatever happens, the container goes (destroy.yml also runs as molecule's last step).
trap 'molecule destroy --scenario-name monitoring >/dev/null 2>&1 || true; rm -rf "$TOR_MONITORING_MOLECULE_WORKDIR"' EXIT
molecule test --scenario-name monitoring
