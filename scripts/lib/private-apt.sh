# shellcheck shell=bash
# One package from another Debian suite, without touching the machine's apt (its sources, lists,
# package cache and their locks are neither used nor changed): a private apt state. Sourced by
# monitoring/prometheus3.sh (Prometheus 3 from testing) and scripts/tor-0.4.8.sh (tor 0.4.8 from
# bookworm-backports); each takes its own lock on its state folder first.
#
#   private_apt_setup STATE SUITE   writes STATE/sources.list for SUITE of the machine's Debian
#                                   mirror (signed by Debian's archive keyring), makes STATE's
#                                   folders, and sets the array `apt_opts` and `mirror`
# Then: apt-get "${apt_opts[@]}" update / download PKG=VERSION (apt refuses a .deb whose hash is
# not in the signed index).

# debian_mirror: the mirror of the machine's Debian sources (deb822 `URIs:` or one-line `deb URI
# suite`), the first that serves the machine's own release (not -security, -updates, a snapshot);
# deb.debian.org when none does. No trailing slash.
debian_mirror() {
    local codename m
    codename=$(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release | tr -d "\"")
    m=$(
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            case $f in
                *.sources)
                    # One stanza per paragraph.
                    awk -v want="$codename" '
                        /^[ \t]*#/ { next }
                        /^[ \t]*$/ { if (uris != "" && ok && deb) print uris; uris = ""; ok = 0; deb = 0; next }
                        tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                        tolower($1) == "uris:" { uris = $2 }
                        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == want) ok = 1 }
                        tolower($1) == "enabled:" && tolower($2) == "no" { uris = "" }
                        END { if (uris != "" && ok && deb) print uris }' "$f"
                    ;;
                *)
                    sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' "$f" |
                        awk -v want="$codename" '$2 == want { print $1 }'
                    ;;
            esac
        done | grep -E '^https?://' | grep -v -E 'security|snapshot' | head -1
    ) || true
    if [ -z "$m" ]; then
        m=http://deb.debian.org/debian
        echo "${0##*/}: no Debian mirror for '$codename' in /etc/apt/sources.list*; using $m" >&2
    fi
    printf '%s\n' "${m%/}"
}

private_apt_setup() {
    local state=$1 suite=$2
    mirror=$(debian_mirror)
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
        >"$state/sources.list"
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
    # shellcheck disable=SC2034  # for the caller
    apt_opts=(
        -o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=-
        -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
        # Only the private state is locked, but should a lock be held elsewhere it is waited for.
        -o DPkg::Lock::Timeout=900
        # Only the Packages index: no translations, no AppStream metadata, no Contents.
        -o Acquire::Languages=none
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
        -o Acquire::Retries=3
    )
}
