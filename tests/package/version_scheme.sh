# shellcheck shell=bash
# The package's version and maintainer follow SecureDrop's conventions (docs/packaging.md, "Version
# and maintainer"): <upstream>+<codename>, the codename being the distribution the .deb is built
# for and on, and the Maintainer SecureDrop's own. Sourced by tests/package/run.sh (ok/nok/check/eq
# from scripts/lib/tap.sh).
#
#   version_scheme_checks SOURCE_TREE VERSION

version_scheme_checks() {
    local tree=$1 version=$2 upstream distro cargo_version changelog_dist build_codename
    local maint_control maint_changelog
    upstream=${version%+*}
    distro=${version##*+}
    check "version $version is <upstream>+<codename> (digits, an optional ~rcN, one + suffix)" \
        grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+(~rc[0-9]+)?\+[a-z]+' <<<"$version"
    cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$tree/Cargo.toml" | head -n 1)
    # a release candidate is 1.2.3~rc1 here (it sorts before 1.2.3) and 1.2.3-rc.1 for cargo
    local semver=$upstream
    [[ $upstream != *~rc* ]] || semver=${upstream%~rc*}-rc.${upstream##*~rc}
    eq "the upstream part is Cargo.toml's version" "$cargo_version" "$semver"
    changelog_dist=$(dpkg-parsechangelog -l "$tree/debian/changelog" -S Distribution)
    eq "the codename suffix is the changelog's distribution" "$changelog_dist" "$distro"
    build_codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)
    eq "the codename suffix names the distribution it is built on (/etc/os-release)" "$build_codename" "$distro"
    maint_control=$(sed -n 's/^Maintainer: //p' "$tree/debian/control")
    maint_changelog=$(dpkg-parsechangelog -l "$tree/debian/changelog" -S Maintainer)
    eq "Maintainer is SecureDrop's" "SecureDrop Team <securedrop@freedom.press>" "$maint_control"
    eq "the changelog is signed by the Maintainer" "$maint_control" "$maint_changelog"
    eq "the package name" "securedrop-tor-exporter" "$(sed -n 's/^Package: //p' "$tree/debian/control")"

    # How upgrades compare across codenames (dpkg's order, as unattended-upgrades applies it).
    local next=${upstream%%~*}
    next=${next%.*}.$((${next##*.} + 1))
    check "the same version built for noble sorts above bookworm's and focal's" \
        bash -c "dpkg --compare-versions '$upstream+noble' gt '$upstream+bookworm' &&
            dpkg --compare-versions '$upstream+noble' gt '$upstream+focal'"
    check "a newer upstream version wins whatever the codename ($next+bookworm > $upstream+noble)" \
        dpkg --compare-versions "$next+bookworm" gt "$upstream+noble"
    check "a release candidate sorts below its release ($next~rc1+$distro < $next+$distro)" \
        dpkg --compare-versions "$next~rc1+$distro" lt "$next+$distro"
    check "$version upgrades a build of the same version without the suffix ($upstream)" \
        dpkg --compare-versions "$version" gt "$upstream"
}
