#!/bin/bash
# A small Debian 12 system on an ext4 disk image, for qemu-test/systemd.sh.
#
#   qemu-test/debian-root.sh --kver V --fixtures DIR --parmod BIN --parmod-plan BIN -o DIR
#       [--profile TRACE --profile-plan PLAN]
#
# DIR (build/debian) gets, each cached between runs:
#   base/               mmdebstrap --variant=minbase of bookworm with systemd-sysv,
#                       udev, kmod, initramfs-tools, busybox, zstd (rebuilt only when
#                       that list changes; needs a Debian mirror the first time)
#   initrd-debian.img   Debian's own initramfs: initramfs-tools' mkinitramfs run
#                       inside the system for kernel V (MODULES=most, udev inside)
#   disk.img            GPT disk, one partition (PARTUUID below, PARTLABEL debroot)
#                       holding an ext4 file system (UUID below, LABEL debroot) made
#                       with mkfs.ext4 -d, no loop mount; rebuilt when this script,
#                       the files beside it, parmod or the fixtures change
#   disk.env            PARTUUID=, FSUUID=, KVER= of that disk
#   system.plan         a copy of the system's /etc/parmod.plan
# The system: /lib/modules/V copied from the build host plus the fixtures in
# extra/parmod (depmod), /lib/firmware/pm_late_fw.bin, parmod installed with
# `make install DESTDIR=... PREFIX=/usr`, /etc/parmod.plan compiled from its
# modules-load.d by `packaging/install.sh --postinst` (with --profile: then
# compiled again with the load times of TRACE, a parmod trace recorded with
# PLAN, as parmod-plan compile --profile does), parmod-modules-load.service
# enabled, the list in debian/modules.conf, and the boot checks
# (debian/check.sh, parmod-boot-check.service, pm-late-user.service).
# Kernel command line switches of the test system:
#   pmtest.stock  parmod-modules-load.service does not run (systemd-modules-load does)
#   pmtest.late   pm-late-user.service runs
#   systemd.setenv=PMTEST_ARGS=-j1   options for parmod in parmod-modules-load.service
# Must run as root (ownership in the image, chroot).
set -euo pipefail

me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }
log() { echo "$me: $*" >&2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

KVER="" FIX="" PARMOD="" PARMOD_PLAN="" OUT="" PROFILE="" PROFILE_PLAN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --kver) KVER=$2; shift 2 ;;
        --fixtures) FIX=$2; shift 2 ;;
        --parmod) PARMOD=$2; shift 2 ;;
        --parmod-plan) PARMOD_PLAN=$2; shift 2 ;;
        -o) OUT=$2; shift 2 ;;
        --profile) PROFILE=$2; shift 2 ;;
        --profile-plan) PROFILE_PLAN=$2; shift 2 ;;
        *) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[ -n "$KVER" ] && [ -n "$FIX" ] && [ -n "$PARMOD" ] && [ -n "$PARMOD_PLAN" ] && [ -n "$OUT" ] || die "need --kver, --fixtures, --parmod, --parmod-plan and -o"
if [ -n "$PROFILE" ] && { [ ! -f "$PROFILE" ] || [ ! -f "$PROFILE_PLAN" ]; }; then
    die "--profile needs a trace and --profile-plan the plan it was recorded with"
fi
[ "$(id -u)" = 0 ] || die "must run as root"
[ -d "/lib/modules/$KVER/kernel" ] || die "no modules for $KVER in /lib/modules"
[ -f "$FIX/pm_late_misc.ko" ] || die "no fixture modules in $FIX (make -C qemu-test/fixtures)"
PATH=$PATH:/usr/sbin:/sbin

PACKAGES=systemd-sysv,udev,kmod,initramfs-tools,busybox,zstd
PARTUUID=8d3c6d1e-5b2a-4c7e-9f10-0123456789ab
FSUUID=5f0c2a44-7e1b-4a8e-b3d2-9a8b7c6d5e4f
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# --- the base system (network once) ---------------------------------------
if [ ! -d "$OUT/base" ] || [ "$(cat "$OUT/base.packages" 2>/dev/null)" != "$PACKAGES" ]; then
    command -v mmdebstrap >/dev/null || {
        log "installing mmdebstrap"
        apt-get update -q >/dev/null || log "apt-get update failed; installing from the lists there are"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null
    }
    log "mmdebstrap bookworm ($PACKAGES), about a minute"
    rm -rf "$OUT/base" "$OUT/base.new" "$OUT/base.packages"
    mmdebstrap --variant=minbase --include="$PACKAGES" bookworm "$OUT/base.new" \
        http://deb.debian.org/debian >"$OUT/mmdebstrap.log" 2>&1 || { tail -n 20 "$OUT/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $OUT/mmdebstrap.log)"; }
    mv "$OUT/base.new" "$OUT/base"
    echo "$PACKAGES" > "$OUT/base.packages"
    rm -f "$OUT/initrd-debian.img" "$OUT/disk.key"
fi

# --- the tree ---------------------------------------------------------------
key=$( { cat "$0" "$here"/debian/*; cat "$PARMOD" "$PARMOD_PLAN" "$FIX"/*.ko; echo "$KVER $PACKAGES";
         cat "$repo/packaging/install.sh" "$repo"/packaging/systemd/*.service "$repo"/packaging/systemd/*/*;
         [ -z "$PROFILE" ] || cat "$PROFILE" "$PROFILE_PLAN"; } | sha256sum | cut -c1-16)
if [ -f "$OUT/disk.img" ] && [ "$(cat "$OUT/disk.key" 2>/dev/null)" = "$key" ] && [ -f "$OUT/initrd-debian.img" ] && [ -f "$OUT/system.plan" ]; then
    log "disk $OUT/disk.img is up to date"
    exit 0
fi
T=$OUT/rootfs
rm -rf "$T"
cp -a "$OUT/base" "$T"
log "modules of $KVER and the fixtures"
mkdir -p "$T/lib/modules"
cp -a "/lib/modules/$KVER" "$T/lib/modules/"
rm -rf "$T/lib/modules/$KVER/build" "$T/lib/modules/$KVER/source"
mkdir -p "$T/lib/modules/$KVER/extra/parmod"
cp "$FIX"/*.ko "$T/lib/modules/$KVER/extra/parmod/"
depmod -b "$T" "$KVER"
mkdir -p "$T/lib/firmware"
printf 'pm_late_fw from the real root\n' > "$T/lib/firmware/pm_late_fw.bin"

echo debian-parmod > "$T/etc/hostname"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$FSUUID" > "$T/etc/fstab"
cp "$here/debian/modules.conf" "$T/etc/modules-load.d/parmod-test.conf"
printf 'options pm_late_misc late_ms=4500\n' > "$T/etc/modprobe.d/pm-late.conf"

# Debian's own initramfs, made in the system itself (it depends on the base
# and the kernel only).
if [ ! -f "$OUT/initrd-debian.img" ]; then
    log "mkinitramfs $KVER inside the system (initramfs-tools)"
    mkdir -p "$T/boot"
    cp "/boot/config-$KVER" "$T/boot/"
    chroot "$T" mkinitramfs -o "/boot/initrd.img-$KVER" "$KVER" >"$OUT/mkinitramfs.log" 2>&1 \
        || { tail -n 20 "$OUT/mkinitramfs.log" >&2; die "mkinitramfs failed (log: $OUT/mkinitramfs.log)"; }
    mv "$T/boot/initrd.img-$KVER" "$OUT/initrd-debian.img"
fi

log "make install DESTDIR=$T PREFIX=/usr"
make -C "$repo" --no-print-directory install DESTDIR="$T" PREFIX=/usr \
    PARMOD="$PARMOD" PARMOD_PLAN="$PARMOD_PLAN" >"$OUT/install.log" 2>&1 \
    || { cat "$OUT/install.log" >&2; die "make install failed"; }
# The package's post-install step: the plan from the system's modules-load.d.
PATH=$(dirname "$PARMOD_PLAN"):$PATH "$repo/packaging/install.sh" --postinst --root "$T" --kver "$KVER" --no-enable \
    >>"$OUT/install.log" 2>&1 || { cat "$OUT/install.log" >&2; die "plan compile failed"; }
[ -f "$T/etc/parmod.plan" ] || die "no /etc/parmod.plan in the system"
if [ -n "$PROFILE" ]; then
    "$PARMOD_PLAN" compile --root "$T" --kver "$KVER" --profile "$PROFILE" --profile-plan "$PROFILE_PLAN" \
        -o "$T/etc/parmod.plan" >>"$OUT/install.log" 2>&1 || { cat "$OUT/install.log" >&2; die "profiled plan compile failed"; }
    log "/etc/parmod.plan compiled with the load times of $PROFILE"
fi
cp "$T/etc/parmod.plan" "$OUT/system.plan"

# Units: parmod's (off with pmtest.stock), the consumer, the checks.
mkdir -p "$T/etc/systemd/system/parmod-modules-load.service.d"
# (and a trace of the run, for parmod-plan report; systemd.setenv=PMTEST_ARGS=-j1
# on the kernel command line passes options, unset it expands to nothing)
printf '[Unit]\nConditionKernelCommandLine=!pmtest.stock\n[Service]\nExecStart=\nExecStart=/usr/sbin/parmod -q $PMTEST_ARGS --trace /run/parmod/trace /etc/parmod.plan\n' \
    > "$T/etc/systemd/system/parmod-modules-load.service.d/boot-test.conf"
install -m 644 "$here/debian/pm-late-user.service" "$here/debian/parmod-boot-check.service" "$T/etc/systemd/system/"
install -m 755 "$here/debian/check.sh" "$T/usr/local/sbin/parmod-boot-check"
# Enabled as `systemctl enable` would (their WantedBy=), without the host's systemctl.
S=$T/etc/systemd/system
mkdir -p "$S/sysinit.target.wants" "$S/multi-user.target.wants"
ln -sf /usr/lib/systemd/system/parmod-modules-load.service "$S/sysinit.target.wants/"
ln -sf /etc/systemd/system/pm-late-user.service /etc/systemd/system/parmod-boot-check.service "$S/multi-user.target.wants/"
# The checks write to the serial console: no getty there.
ln -sf /dev/null "$S/serial-getty@ttyS0.service"
rm -f "$T/etc/machine-id" && : > "$T/etc/machine-id"

# --- the disk, without loop devices -------------------------------------
log "ext4 file system (mkfs.ext4 -d) and GPT disk"
mb=$(( $(du -sm "$T" | cut -f1) * 13 / 10 + 256 ))
rm -f "$OUT/fs.img" "$OUT/disk.img.new"
mkfs.ext4 -q -F -d "$T" -U "$FSUUID" -L debroot -E root_owner=0:0 "$OUT/fs.img" "${mb}M" >/dev/null
truncate -s $(( mb + 2 ))M "$OUT/disk.img.new"
printf 'label: gpt\nstart=2048, size=%s, type=linux, uuid=%s, name=debroot\n' $(( mb * 2048 )) "$PARTUUID" \
    | sfdisk -q "$OUT/disk.img.new"
dd if="$OUT/fs.img" of="$OUT/disk.img.new" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$OUT/fs.img"
mv "$OUT/disk.img.new" "$OUT/disk.img"
printf 'PARTUUID=%s\nFSUUID=%s\nKVER=%s\n' "$PARTUUID" "$FSUUID" "$KVER" > "$OUT/disk.env"
echo "$key" > "$OUT/disk.key"
rm -rf "$T"
log "$OUT/disk.img: ${mb} MiB file system, PARTUUID=$PARTUUID UUID=$FSUUID"
