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
# The same pins (and so the same venv) as molecule/run.sh.
PY_PINS=(ansible-core==2.19.14 molecule==26.10.0 ansible-lint==26.10.1 pytest-testinfra==10.2.2
    yamllint==1.38.0)
ANSIBLE_BUNDLE=ansible==12.3.0

# shellcheck source=scripts/lib/apt.sh
. "$REPO/scripts/lib/apt.sh"
need_packages --recommends debootstrap systemd-container python3-venv dpkg-dev

key=$(printf '%s\n' "$(python3 --version 2>&1)" "${PY_PINS[@]}" | sha256sum | cut -c1-12)
VENV=$CACHE/venv-$key
if [ ! -e "$VENV/.complete" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PINS[@]}"
    : >"$VENV/.complete"
fi
export PATH=$VENV/bin:$PATH

export TOR_EXPORTER_COLLECTIONS=$CACHE/collections-${ANSIBLE_BUNDLE#ansible==}
export ANSIBLE_COLLECTIONS_PATH=$TOR_EXPORTER_COLLECTIONS
if [ ! -f "$TOR_EXPORTER_COLLECTIONS/ansible_collections/community/docker/MANIFEST.json" ]; then
    mkdir -p "$CACHE/wheels"
    wheel=$CACHE/wheels/${ANSIBLE_BUNDLE/==/-}-py3-none-any.whl
    [ -s "$wheel" ] || pip download -q --disable-pip-version-check --no-deps -d "$CACHE/wheels" "$ANSIBLE_BUNDLE"
    rm -rf "$TOR_EXPORTER_COLLECTIONS.tmp"
    python - "$wheel" "$TOR_EXPORTER_COLLECTIONS.tmp" <<'PY'
import sys
import zipfile

wheel, out = sys.argv[1], sys.argv[2]
wanted = ("community/docker/", "community/library_inventory_filtering_v1/")
with zipfile.ZipFile(wheel) as archive:
    archive.extractall(out, [n for n in archive.namelist()
                             if any(n.startswith("ansible_collections/" + w) for w in wanted)])
PY
    rm -rf "$TOR_EXPORTER_COLLECTIONS"
    mv "$TOR_EXPORTER_COLLECTIONS.tmp" "$TOR_EXPORTER_COLLECTIONS"
fi

cd "$REPO"
yamllint -s ansible/roles/tor_monitoring molecule/monitoring
ANSIBLE_ROLES_PATH=$REPO/ansible/roles ansible-lint --offline --profile production ansible/roles/tor_monitoring molecule/monitoring
TOR_EXPORTER_DEB=$(bash tests/package/cached-deb.sh)
export TOR_EXPORTER_DEB
TOR_MONITORING_MOLECULE_WORKDIR=$(mktemp -d /var/tmp/tor-monitoring-molecule.XXXXXX)
export TOR_MONITORING_MOLECULE_WORKDIR
# Whatever happens, the container goes (destroy.yml also runs as molecule's last step).
trap 'molecule destroy --scenario-name monitoring >/dev/null 2>&1 || true; rm -rf "$TOR_MONITORING_MOLECULE_WORKDIR"' EXIT
molecule test --scenario-name monitoring
