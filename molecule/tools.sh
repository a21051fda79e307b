# shellcheck shell=bash
# The pinned Python tools and Ansible collections of the Molecule scenarios, sourced by
# molecule/run.sh (molecule/default) and monitoring/molecule.sh (molecule/monitoring), so that
# both use the same pins and so the same cached venv. Needs CACHE (the cache folder).
#
#   molecule_venv         the venv of PY_PINS in $CACHE (made once; VENV set, put first on PATH)
#   molecule_collections  community.docker and its dependency from the ansible bundle's wheel,
#                         in $CACHE (made once; ANSIBLE_COLLECTIONS_PATH set)
# shellcheck disable=SC2034  # the pins are read by the scripts that source this file too

PY_PINS=(ansible-core==2.19.14 molecule==26.10.0 ansible-lint==26.10.1 pytest-testinfra==10.2.2
    yamllint==1.38.0)
ANSIBLE_BUNDLE=ansible==12.3.0
COLLECTIONS=(community/docker community/library_inventory_filtering_v1)

molecule_venv() {
    local key
    key=$(printf '%s\n' "$(python3 --version 2>&1)" "${PY_PINS[@]}" | sha256sum | cut -c1-12)
    VENV=$CACHE/venv-$key
    # .complete is written last: an interrupted install is redone.
    if [ ! -e "$VENV/.complete" ]; then
        echo "== creating $VENV (${PY_PINS[*]})" >&2
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PINS[@]}"
        : >"$VENV/.complete"
    fi
    export PATH=$VENV/bin:$PATH
}

molecule_collections() {
    local wheel
    export TOR_EXPORTER_COLLECTIONS=$CACHE/collections-${ANSIBLE_BUNDLE#ansible==}
    export ANSIBLE_COLLECTIONS_PATH=$TOR_EXPORTER_COLLECTIONS
    [ -f "$TOR_EXPORTER_COLLECTIONS/ansible_collections/community/docker/MANIFEST.json" ] && return 0
    mkdir -p "$CACHE/wheels"
    wheel=$CACHE/wheels/${ANSIBLE_BUNDLE/==/-}-py3-none-any.whl
    if [ ! -s "$wheel" ]; then
        echo "== pip download $ANSIBLE_BUNDLE (for community.docker's nsenter connection)" >&2
        "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$CACHE/wheels" "$ANSIBLE_BUNDLE"
    fi
    rm -rf "$TOR_EXPORTER_COLLECTIONS.tmp"
    "$VENV/bin/python" - "$wheel" "$TOR_EXPORTER_COLLECTIONS.tmp" "${COLLECTIONS[@]}" <<'PY'
import sys
import zipfile

wheel, out, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as archive:
    names = [n for n in archive.namelist()
             if any(n.startswith(f"ansible_collections/{c}/") for c in wanted)]
    archive.extractall(out, names)
PY
    rm -rf "$TOR_EXPORTER_COLLECTIONS"
    mv "$TOR_EXPORTER_COLLECTIONS.tmp" "$TOR_EXPORTER_COLLECTIONS"
}
