# shellcheck shell=bash
# shellcheck disable=SC2016  # ${distro_codename} and $$ are apt's and the inner shell's, not ours
# The upgrade as SecureDrop's servers get it: unattended-upgrades itself, with SecureDrop's apt
# configuration, from a signed apt repository labelled like SecureDrop's. Sourced by run.sh (its cx,
# eq, check, ok, nok, section, lacks, tor_pid, tor_restarts, unit_state, wait_tor_up); the package
# must be purged in the container when it starts.
#
#   unattended_upgrade_checks ROOT X
#     ROOT  the booted container's root folder (the .debs are copied into its repository there)
#     X     the current .deb extracted (its AppArmor profile is what the upgrade must bring back)
#
# In the container: a throwaway signing key (ed25519, made here, trusted through
# /etc/apt/trusted.gpg.d/ as SecureDrop's keyring package does), a flat-pool repository made with
# apt-ftparchive whose Release says Origin and Label "SecureDrop" and Codename the container's own
# (bookworm or trixie: SecureDrop's Origins-Pattern "origin=SecureDrop,codename=${distro_codename}"
# allows only the server's codename, as SecureDrop publishes one suite per codename), a sources
# line like SecureDrop's (`deb [arch=amd64] URI CODENAME main`), SecureDrop's 50unattended-upgrades,
# 20auto-upgrades and 80securedrop. The current version is installed from the repository with
# apt-get, the admin edits the AppArmor profile and config.toml, the higher version is published
# and the lists updated, then unattended-upgrade runs as a systemd service: no terminal, no input.

UU_REPO=/srv/sdte-apt
UU_LIST=/etc/apt/sources.list.d/securedrop-pkgtest.list
UU_KEYRING=/etc/apt/trusted.gpg.d/securedrop-pkgtest.gpg
UU_GNUPG=/root/sdte-gnupg
UU_LOG=/var/log/unattended-upgrades/unattended-upgrades.log
UU_DPKG_LOG=/var/log/unattended-upgrades/unattended-upgrades-dpkg.log
UU_PROFILE=/etc/apparmor.d/$PKG
UU_CODENAME=   # the container's VERSION_CODENAME, set by unattended_upgrade_checks

# SecureDrop as released (read only; tests/securedrop/run.sh looks in the same places).
uu_securedrop_snapshot() {
    local s=${SDTE_SECUREDROP_SNAPSHOT:-$(cd "$REPO/.." && pwd)/shared/upstream/securedrop}
    [ -d "$s/install_files/ansible-base" ] || s=/work/shared/upstream/securedrop
    printf '%s\n' "$s"
}

# uu_apt_conf NAME: SecureDrop's apt configuration file NAME on stdout, and where it came from on
# fd 3. 80securedrop is the common role's template, rendered with the role's default reboot hour.
# 50unattended-upgrades and 20auto-upgrades are the securedrop-config package's data
# (securedrop/debian/config/opt/securedrop/, copied to /etc/apt/apt.conf.d/ by its postinst);
# where the snapshot lacks them, the settings SecureDrop's files hold that bear on this upgrade are
# written out here instead, and said so.
uu_apt_conf() {
    local sd name=$1 f hour
    sd=$(uu_securedrop_snapshot)
    case "$name" in
        80securedrop)
            f=$sd/install_files/ansible-base/roles/common/templates/80securedrop.j2
            hour=$(sed -n 's/^daily_reboot_time: *\([0-9]*\).*/\1/p' \
                "$sd/install_files/ansible-base/roles/common/defaults/main.yml")
            [ -f "$f" ] && [ -n "$hour" ] || return 1
            sed "s/{{ *daily_reboot_time *}}/$hour/" "$f"
            echo "$f (daily_reboot_time $hour)" >&3
            ;;
        50unattended-upgrades | 20auto-upgrades)
            f=$sd/securedrop/debian/config/opt/securedrop/$name
            if [ -f "$f" ]; then
                cat "$f"
                echo "$f" >&3
                return 0
            fi
            echo "not in the snapshot ($f): its settings restated by tests/package/unattended_upgrade.sh" >&3
            if [ "$name" = 20auto-upgrades ]; then
                printf '%s\n' '// securedrop-config: the daily list update and unattended upgrade' \
                    'APT::Periodic::Update-Package-Lists "1";' \
                    'APT::Periodic::Unattended-Upgrade "1";' \
                    'APT::Periodic::AutocleanInterval "1";'
            else
                printf '%s\n' '// securedrop-config: the distribution and SecureDrop origins, dpkg keeps' \
                    '// changed conffiles without asking, an unclean dpkg is finished, reboots as needed' \
                    'Unattended-Upgrade::Origins-Pattern {' \
                    '    "origin=${distro_id},archive=${distro_codename}";' \
                    '    "origin=${distro_id},archive=${distro_codename}-security";' \
                    '    "origin=${distro_id},archive=${distro_codename}-updates";' \
                    '    "origin=SecureDrop,codename=${distro_codename}";' \
                    '};' \
                    'Unattended-Upgrade::Package-Blacklist {};' \
                    'Unattended-Upgrade::AutoFixInterruptedDpkg "true";' \
                    'Unattended-Upgrade::Remove-Unused-Dependencies "true";' \
                    'Unattended-Upgrade::Automatic-Reboot "true";' \
                    'Unattended-Upgrade::Automatic-Reboot-WithUsers "true";' \
                    'Dpkg::Options { "--force-confdef"; "--force-confold"; };'
            fi
            ;;
        *) return 1 ;;
    esac
}

# uu_publish: (re)make the repository's indices from its pool and sign them with the test's key
uu_publish() {
    cx env GNUPGHOME=$UU_GNUPG sh -euc "
        cd $UU_REPO
        d=dists/$UU_CODENAME
        mkdir -p \$d/main/binary-amd64
        apt-ftparchive packages pool >\$d/main/binary-amd64/Packages
        gzip -9nkf \$d/main/binary-amd64/Packages
        apt-ftparchive -o APT::FTPArchive::Release::Origin=SecureDrop \
            -o APT::FTPArchive::Release::Label=SecureDrop \
            -o APT::FTPArchive::Release::Suite=$UU_CODENAME \
            -o APT::FTPArchive::Release::Codename=$UU_CODENAME \
            -o APT::FTPArchive::Release::Architectures=amd64 \
            -o APT::FTPArchive::Release::Components=main release \$d >/root/Release.new
        mv /root/Release.new \$d/Release
        rm -f \$d/InRelease \$d/Release.gpg
        gpg --batch --quiet --clearsign -o \$d/InRelease \$d/Release
        gpg --batch --quiet --armor --detach-sign -o \$d/Release.gpg \$d/Release
        chmod -R a+rX $UU_REPO"
}

# uu_update_lists: apt-get update of the test repository alone (the container has no network for
# the Debian mirror in sources.list; unattended-upgrade reads every source, as on a server)
uu_update_lists() {
    cx apt-get -q update -o Dir::Etc::sourcelist="$UU_LIST" -o Dir::Etc::sourceparts=- \
        -o APT::Get::List-Cleanup=0
}

# uu_gone PID: no such process in the container
uu_gone() { ! cx kill -0 "$1" 2>/dev/null; }

# uu_stop_agent: the gpg-agent that gpg started for the key, stopped by its PID
uu_stop_agent() {
    local pid
    pid=$(cx env GNUPGHOME=$UU_GNUPG gpg-connect-agent --no-autostart 'getinfo pid' /bye 2>/dev/null |
        sed -n 's/^D \([0-9][0-9]*\)$/\1/p')
    [ -n "$pid" ] || return 0
    cx kill "$pid"
    wait_for 60 uu_gone "$pid" || { nok "gpg-agent ($pid) stopped"; return 1; }
}

# the onion address, the service's key, the authorized clients and the generated client key
uu_keys() {
    cx sh -c "cd / && sha256sum $HS/hostname $HS/hs_ed25519_secret_key $HS/hs_ed25519_public_key \
        $HS/authorized_clients/*.auth $KEY 2>&1"
}

unattended_upgrade_checks() {
    local root=$1 x=$2 name src out rc=0 keys_before pid_before restarts_before pkgs_before sd
    section "upgrade by unattended-upgrades from a signed repository, SecureDrop's apt configuration"
    cx rm -f "/etc/$PKG/no-standalone-client-key"
    UU_CODENAME=$(cx sh -c '. /etc/os-release && echo "$VERSION_CODENAME"')
    echo "# the container's codename: ${UU_CODENAME:-?}"

    # SecureDrop's apt configuration, as its servers have it
    sd=$(uu_securedrop_snapshot)
    for name in 50unattended-upgrades 20auto-upgrades 80securedrop; do
        if out=$(uu_apt_conf "$name" 3>"$WORK/uu-src"); then
            src=$(cat "$WORK/uu-src")
            cx install -m 0644 /dev/stdin "/etc/apt/apt.conf.d/$name" <<<"$out"
            echo "# $name: ${src#"$sd/"}"
        else
            nok "SecureDrop's $name in $sd"
        fi
    done
    eq "apt reads SecureDrop's settings: confdef and confold for dpkg, origin SecureDrop allowed" \
        "--force-confdef --force-confold|origin=SecureDrop,codename=\${distro_codename}" \
        "$(cx apt-config dump | sed -n 's/^dpkg::options:: "\(.*\)";$/\1/Ip' | paste -sd' ')|$(cx apt-config dump |
            sed -n 's/^Unattended-Upgrade::Origins-Pattern:: "\(origin=SecureDrop[^"]*\)";$/\1/p')"

    # the repository, its throwaway key, and the current version in it
    cx install -d -m 0700 "$UU_GNUPG"
    if cx env GNUPGHOME=$UU_GNUPG gpg --batch --quiet --passphrase '' --quick-gen-key \
        'securedrop-tor-exporter package test repository (throwaway) <pkgtest@securedrop-tor-exporter.invalid>' \
        ed25519 sign 1d >"$WORK/uu-gpg.log" 2>&1 &&
        cx sh -c "GNUPGHOME=$UU_GNUPG gpg --batch --export >$UU_KEYRING && chmod 0644 $UU_KEYRING"; then
        ok "a throwaway signing key, trusted by apt through $UU_KEYRING"
    else
        nok "a throwaway signing key"
        sed 's/^/#   /' "$WORK/uu-gpg.log"
    fi
    mkdir -p "$root$UU_REPO/pool/main/s/$PKG"
    cp "$DEB" "$root$UU_REPO/pool/main/s/$PKG/"
    cx sh -c "echo 'deb [arch=amd64] file:$UU_REPO $UU_CODENAME main' >$UU_LIST"
    if uu_publish >"$WORK/uu-publish.log" 2>&1 && uu_update_lists >"$WORK/uu-update.log" 2>&1; then
        ok "repository with $VERSION published, signed; apt-get update accepts its signature"
    else
        nok "repository with $VERSION published and read"
        sed 's/^/#   /' "$WORK/uu-publish.log" "$WORK/uu-update.log"
    fi
    eq "its Release is labelled as SecureDrop's" "Codename: $UU_CODENAME|Label: SecureDrop|Origin: SecureDrop" \
        "$(cx grep -E '^(Origin|Label|Codename):' "$UU_REPO/dists/$UU_CODENAME/Release" | sort | paste -sd'|')"
    # apt's view of the repository: `release o=…,a=…,n=…,l=…,c=…,b=…` under its source's line
    out=$(cx apt-cache policy 2>&1)
    if grep -A1 -F "file:$UU_REPO $UU_CODENAME/main" <<<"$out" | grep -q "release .*o=SecureDrop,.*n=$UU_CODENAME,l=SecureDrop,"; then
        ok "apt-cache policy: the repository is o=SecureDrop, n=$UU_CODENAME, l=SecureDrop"
    else
        nok "apt-cache policy: the repository is o=SecureDrop, n=$UU_CODENAME, l=SecureDrop"
        printf '%s\n' "$out" | sed 's/^/#   /'
    fi
    if cx apt-get -q -y install "$PKG=$VERSION" >"$WORK/uu-install.log" 2>&1; then
        ok "apt-get install $PKG=$VERSION from the repository"
    else
        nok "apt-get install $PKG=$VERSION from the repository"
        sed 's/^/#   /' "$WORK/uu-install.log"
    fi
    eq "installed: $VERSION" "$VERSION" "$(cx dpkg-query -W -f='${Version}' "$PKG" 2>&1)"
    eq "exporter active" active "$(unit_state "$PKG" active)"
    check "/metrics shows tor_up 1" wait_tor_up

    # The admin edits the profile (not a conffile: the upgrade replaces it) and config.toml (a
    # conffile: the admin's copy stays). Then the higher version is published.
    cx sh -c "echo '# an edit by the admin (package test)' >>$UU_PROFILE"
    cx sh -c "echo '# an edit by the admin (package test)' >>/etc/$PKG/config.toml"
    keys_before=$(uu_keys)
    pid_before=$(tor_pid)
    restarts_before=$(tor_restarts)
    pkgs_before=$(cx dpkg-query -W -f='${Package}\n' | sort)
    cp "$UDEB" "$root$UU_REPO/pool/main/s/$PKG/"
    if uu_publish >"$WORK/uu-publish2.log" 2>&1 && uu_update_lists >"$WORK/uu-update2.log" 2>&1; then
        ok "$UVERSION published beside $VERSION, lists updated"
    else
        nok "$UVERSION published"
        sed 's/^/#   /' "$WORK/uu-publish2.log" "$WORK/uu-update2.log"
    fi
    uu_stop_agent
    check "no reboot pending before the run (SecureDrop's configuration reboots when one is)" \
        bash -c "! nsenter -t $L -a test -e /run/reboot-required"
    cx rm -f "$UU_LOG" "$UU_DPKG_LOG"

    # unattended-upgrade as a systemd service, as apt-daily-upgrade.service runs it: no terminal
    # (it writes what ps says its terminal is first), standard input /dev/null. systemd reads $$$$
    # in a command line as $$, the shell's own PID.
    cx systemd-run --wait --quiet --collect --unit=sdte-unattended-upgrade \
        --property=StandardInput=null --property=StandardOutput=journal \
        sh -c 'ps -o tty= -p $$$$ >/root/uu-tty; if [ -t 0 ]; then echo stdin-is-a-terminal >>/root/uu-tty; fi; exec unattended-upgrade' \
        >"$WORK/uu-run.log" 2>&1 || rc=$?
    cx cat "$UU_LOG" >"$WORK/uu.log" 2>&1 || true
    cx cat "$UU_DPKG_LOG" >"$WORK/uu-dpkg.log" 2>&1 || true
    if [ "$rc" -eq 0 ]; then ok "unattended-upgrade exited 0"; else
        nok "unattended-upgrade exited $rc"
        sed 's/^/#   /' "$WORK/uu-run.log" "$WORK/uu.log"
    fi
    eq "it ran with no terminal and no terminal on its input" "?" "$(cx cat /root/uu-tty 2>&1 | tr -d ' ')"
    eq "upgraded by unattended-upgrade: $UVERSION" "$UVERSION" "$(cx dpkg-query -W -f='${Version}' "$PKG" 2>&1)"
    check "its log names the upgrade" grep -q "Packages that will be upgraded: $PKG\$" "$WORK/uu.log"
    check "its log says all upgrades were installed" grep -q "All upgrades installed" "$WORK/uu.log"
    check "no conffile question: not in its log" bash -c "! grep -Eiq 'conffile prompt|needs to be upgraded manually' '$WORK/uu.log'"
    check "no conffile question: not in dpkg's output" bash -c "! grep -Eq 'Configuration file|\\*\\*\\* |\\[default=N\\]' '$WORK/uu-dpkg.log'"
    check "dpkg's output shows the unpack of $UVERSION" grep -qF "Unpacking $PKG ($UVERSION) over ($VERSION)" "$WORK/uu-dpkg.log"
    eq "the edited AppArmor profile replaced by the new one" \
        "$(sha256sum "$x$UU_PROFILE" | cut -d' ' -f1)" "$(cx sha256sum "$UU_PROFILE" 2>&1 | cut -d' ' -f1)"
    check "the admin's edit of config.toml kept (a conffile, --force-confold)" \
        cx grep -qxF '# an edit by the admin (package test)' "/etc/$PKG/config.toml"
    eq "tor not restarted (same MainPID)" "$pid_before" "$(tor_pid)"
    eq "tor NRestarts unchanged" "$restarts_before" "$(tor_restarts)"
    eq "onion address, onion key, authorized clients, client key byte-identical" "$keys_before" "$(uu_keys)"
    eq "exporter active afterwards" active "$(unit_state "$PKG" active)"
    check "/metrics shows tor_up 1 afterwards" wait_tor_up
    eq "no package removed or added (Remove-Unused-Dependencies)" "$pkgs_before" "$(cx dpkg-query -W -f='${Package}\n' | sort)"
    check "no reboot asked for" bash -c "! nsenter -t $L -a test -e /run/reboot-required"
    cx rm -f "$UU_LIST"
}
