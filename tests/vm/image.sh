#!/bin/bash
# Usage: tests/vm/image.sh SUITE
#
# Prints the folder of a bootable Debian SUITE (bookworm, trixie) guest for tests/vm/run.sh,
# building it only when the cache has none for this suite, package list and script:
#   ${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}/vm/<suite>-<key>/
#     vmlinuz, initrd.img   the guest's own kernel and initramfs (qemu -kernel/-initrd)
#     disk.raw              its root file system, ext4 on the whole (sparse, 3 GiB) disk: /dev/vda
#     id_ed25519            the key root@guest accepts over ssh
#     packages.txt          the guest's packages and versions
# Two levels, so that editing this script does not download again: the mmdebstrap tarball
# (vm/rootfs-<suite>-<key1>.tar, key1 hashes the suite, the package list and the mirror) and the
# image made from it (key hashes key1 and this script). No loop device, no mount: the file system
# is made from a folder by `mkfs.ext4 -d`.
#
# The guest (test settings, not the product's): tor with `DisableNetwork 1` and the tor@default
# drop-in of tests/container/prepare-tor.sh (ExecStartPost sends the SIGHUP after which a tor
# started offline opens its control socket; no start limit); a static 10.0.2.15/24 with no gateway
# (qemu's user network, restrict=on: no way out); sshd for root by key only; a fixed machine-id.
#
# Environment: SDTE_CACHE; SDTE_VM_MIRROR (default http://deb.debian.org/debian; security
# updates from the same host's /debian-security). Needs root, mmdebstrap, mkfs.ext4, ssh-keygen.
# Concurrent callers for one suite build once (a lock); the build log is printed only on failure.
set -euo pipefail

die() { echo "image.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 SUITE"
SUITE=$1
[ "$(id -u)" -eq 0 ] || die "must run as root"
for c in mmdebstrap mkfs.ext4 ssh-keygen; do command -v "$c" >/dev/null || die "$c missing"; done

MIRROR=${SDTE_VM_MIRROR:-http://deb.debian.org/debian}
MIRROR=${MIRROR%/}
SECURITY=${MIRROR%/debian}/debian-security
PACKAGES=linux-image-amd64,systemd-sysv,udev,dbus,apparmor,tor,openssh-server,curl,procps
CACHE=${SDTE_CACHE:-/var/cache/securedrop-tor-exporter-tests}/vm
key1=$(printf '%s %s %s' "$SUITE" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-12)
TARBALL=$CACHE/rootfs-$SUITE-$key1.tar
HERE=$(cd "$(dirname "$0")" && pwd)
key=$({ echo "$key1"; cat "$HERE/image.sh" "$HERE/../container/prepare-tor.sh"; } | sha256sum | cut -c1-12)
OUT=$CACHE/$SUITE-$key

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock-$SUITE"
flock -w 1800 9 || die "timed out waiting for $CACHE/.lock-$SUITE"
if [ -s "$OUT/disk.raw" ]; then
    printf '%s\n' "$OUT"
    exit 0
fi

work=$(mktemp -d "$CACHE/build-$SUITE.XXXXXX")
# shellcheck disable=SC2064  # expand $work now
trap "rm -rf '$work'" EXIT
t0=$SECONDS
if [ ! -s "$TARBALL" ]; then
    {
        echo "deb $MIRROR $SUITE main"
        echo "deb $MIRROR $SUITE-updates main"
        echo "deb $SECURITY $SUITE-security main"
    } >"$work/sources.list"
    echo "image.sh: mmdebstrap $SUITE from $MIRROR (cached in $TARBALL)" >&2
    # its temporary root (with /proc mounted in it) beside ours, not in /tmp, where any recursive
    # walk of /tmp would keep the mount busy and fail mmdebstrap's cleanup
    if ! TMPDIR=$work mmdebstrap --variant=minbase --format=tar --include="$PACKAGES" "$SUITE" "$work/rootfs.tar" "$work/sources.list" >"$work/mmdebstrap.log" 2>&1; then
        tail -n 30 "$work/mmdebstrap.log" >&2
        die "mmdebstrap failed"
    fi
    rm -f "$CACHE/rootfs-$SUITE-"*.tar
    mv "$work/rootfs.tar" "$TARBALL"
fi
t1=$SECONDS

R=$work/root
mkdir "$R" "$work/out"
tar -C "$R" --numeric-owner --xattrs --xattrs-include='*' -xpf "$TARBALL"
ssh-keygen -q -t ed25519 -N '' -C sdte-vm -f "$work/out/id_ed25519"

echo sdte-vm >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tsdte-vm\n' >"$R/etc/hosts"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$R/etc/fstab"
# every boot starts from this image (-snapshot): one fixed machine-id, never a "first boot"
tr -d '-' </proc/sys/kernel/random/uuid >"$R/etc/machine-id"
install -d -m 0700 "$R/root/.ssh"
install -m 0600 "$work/out/id_ed25519.pub" "$R/root/.ssh/authorized_keys"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
    >"$R/etc/ssh/sshd_config.d/sdte-vm.conf"
# qemu's user network: the guest is 10.0.2.15/24, no gateway, no DHCP to wait for
printf '[Match]\nName=en*\n\n[Network]\nAddress=10.0.2.15/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
    >"$R/etc/systemd/network/10-sdte-vm.network"
ln -sfn /lib/systemd/system/systemd-networkd.service \
    "$R/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
for u in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer; do
    ln -sfn /dev/null "$R/etc/systemd/system/$u"
done
"$HERE/../container/prepare-tor.sh" "$R"

kernel=$(find "$R/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
initrd=$(find "$R/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)
if [ -z "$kernel" ] || [ -z "$initrd" ]; then die "no kernel or initrd in the guest's /boot"; fi
cp "$kernel" "$work/out/vmlinuz"
cp "$initrd" "$work/out/initrd.img"
dpkg-query --admindir="$R/var/lib/dpkg" -W -f '${Package}\t${Version}\n' >"$work/out/packages.txt"
mkfs.ext4 -q -F -L sdte-vm -d "$R" "$work/out/disk.raw" 3G >/dev/null
rm -rf "$CACHE/$SUITE-"*
mv "$work/out" "$OUT"
echo "image.sh: $SUITE image in $OUT (mmdebstrap $((t1 - t0)) s, image $((SECONDS - t1)) s)" >&2
printf '%s\n' "$OUT"
