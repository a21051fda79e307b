# shellcheck shell=bash
# Installing the Debian packages a test script needs, sourced by the scripts that install them
# (scripts/, tests/package/, tests/container/, tests/securedrop/, monitoring/, molecule/, bench/). Each wanted package is named with how to tell it is there:
#   cmd:NAME:PKG      PKG, unless the command NAME is on PATH
#   py:MOD:PKG        PKG, unless /usr/bin/python3 imports the module MOD
#   PKG               PKG, unless dpkg has it installed
# (a package named twice is installed once).
#
#   missing_packages ITEM...                    prints the missing packages, one line
#   need_packages [OPTION]... ITEM...           installs the missing ones (none missing: nothing)
#     --recommends    with the packages' Recommends (default: --no-install-recommends)
#     --no-services   no service may start while they are installed (policy-rc.d says no, unless
#                     the machine has a policy already): Debian's tor, prometheus and the like
#                     start on install, and a system tor would join the public Tor network
# need_packages says what it installs on stderr and returns apt-get's status. It waits for apt's locks
# (up to 15 min) and for any other need_packages of ours (SDTE_APT_LOCK, up to 30 min).

missing_packages() {
    local item name pkg mod missing=()
    for item in "$@"; do
        case $item in
            cmd:*:*)
                name=${item#cmd:}
                pkg=${name#*:}
                name=${name%%:*}
                command -v "$name" >/dev/null 2>&1 && continue
                ;;
            py:*:*)
                mod=${item#py:}
                pkg=${mod#*:}
                mod=${mod%%:*}
                /usr/bin/python3 -c "import ${mod}" 2>/dev/null && continue
                ;;
            *)
                pkg=$item
                dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed && continue
                ;;
        esac
        case " ${missing[*]} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
    done
    echo "${missing[*]}"
}

need_packages() {
    local recommends=--no-install-recommends no_services='' policy_added='' rc=0 missing apt_lock_fd
    while [ $# -gt 0 ]; do
        case $1 in
            --recommends) recommends= ;;
            --no-services) no_services=1 ;;
            *) break ;;
        esac
        shift
    done
    [ -n "$(missing_packages "$@")" ] || return 0
    # One install at a time: the suites of scripts/test.sh run side by side, and a fresh machine
    # often runs apt at boot (its first try here failed at once on "Could not get lock
    # /var/lib/dpkg/lock-frontend"). Our own callers queue on SDTE_APT_LOCK; anyone else's apt
    # is waited for by apt itself (DPkg::Lock::Timeout, which covers the lists' lock too).
    exec {apt_lock_fd}>"${SDTE_APT_LOCK:-/tmp/sdte-host-apt.lock}"
    if ! flock -w 1800 "$apt_lock_fd"; then
        echo "${0##*/}: waited 30 min for ${SDTE_APT_LOCK:-/tmp/sdte-host-apt.lock}" >&2
        exec {apt_lock_fd}>&-
        return 1
    fi
    # Asked again under the lock: the caller before us may have installed them.
    missing=$(missing_packages "$@")
    if [ -n "$missing" ]; then
        echo "${0##*/}: installing $missing" >&2
        if [ -n "$no_services" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 0755 /usr/sbin/policy-rc.d
            policy_added=1
        fi
        # Package lists may be missing or stale on a fresh machine; a failed update is not fatal.
        apt-get -o DPkg::Lock::Timeout=900 update -qq >/dev/null 2>&1 || true
        # shellcheck disable=SC2086  # $missing is a list of package names; $recommends may be empty
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
            $recommends $missing >/dev/null || rc=$?
        [ -z "$policy_added" ] || rm -f /usr/sbin/policy-rc.d
    fi
    exec {apt_lock_fd}>&-
    return "$rc"
}
