#!/bin/bash
# QEMU boot test on arm64: parmod (aarch64 build) as /init loads a real
# Debian arm64 module set, then /sbin/check (qemu-test/guest/check.sh, on
# busybox-static for arm64) reports /proc/modules and the devices on the
# serial console. Run as root on Debian 12 (apt, mknod in the image).
#
#   qemu-test/arm64.sh [--arch arm64|armhf] [--timeout SECONDS] [--modules "NAME..."]
#
# Fetches Debian's arm64 kernel (what linux-image-arm64 depends on) and
# busybox-static:arm64 through multiarch (`apt-get download` + `dpkg-deb -x`
# into build/arm64/), stages the module tree (depmod), compiles the plan
# with the host parmod-plan, builds the image (initramfs/mkinitramfs.sh) and
# boots it with qemu-system-aarch64 -M virt -cpu max (TCG, 2 vCPUs, under
# `timeout`). Prints "PASS arm64: ..." or "FAIL arm64: reasons" and the
# console log on failure; exit 0 on PASS.
#
# --arch armhf does the same for 32-bit ARM: the armv7 (Thumb-2) parmod,
# Debian's armmp kernel and busybox-static:armhf, qemu-system-arm -M virt
# -cpu max (an AArch32 CPU with the CRC and crypto extensions: on a
# cortex-a15, crc32_arm_ce, which a softdep pulls in, fails with ENODEV), in
# build/armhf/.
#
# Environment: PARMOD (parmod for the architecture; default: built into
# target/aarch64-unknown-linux-musl or target/armv7-unknown-linux-musleabihf),
# PARMOD_PLAN (host tool; default: built into
# target/x86_64-unknown-linux-musl/host), QEMU_TIMEOUT (default 600).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DARCH=arm64
TMO=${QEMU_TIMEOUT:-600}
MODULES=""
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) DARCH=$2; shift 2 ;;
        --timeout) TMO=$2; shift 2 ;;
        --modules) MODULES=$2; shift 2 ;;
        *) qt_usage ;;
    esac
done
# Block and network drivers (with virtio_mmio, the transport of -M virt's
# virtio devices), file systems and crypto with dependency chains (btrfs:
# raid6_pq, xor, zstd, libcrc32c...; dm_crypt: dm_mod; aes_ce_blk: the
# arm64 Crypto Extensions that -cpu max provides).
case "$DARCH" in
    arm64)
        [ -n "$MODULES" ] || MODULES="virtio_mmio virtio_blk virtio_net virtio_rng ext4 btrfs xfs vfat
            nls_utf8 squashfs overlay fuse dm_crypt xts gcm ccm sha3_generic aes_ce_blk chacha20poly1305" ;;
    armhf)
        [ -n "$MODULES" ] || MODULES="virtio_mmio virtio_blk virtio_net virtio_rng ext4 btrfs xfs vfat
            nls_utf8 squashfs overlay fuse dm_crypt xts gcm ccm sha3_generic chacha20poly1305" ;;
    *) echo "arm64: --arch arm64 or armhf" >&2; exit 2 ;;
esac
MODULES=$(echo $MODULES)
W=$QT_REPO/build/$DARCH
QT_ME=$DARCH

log() { qt_log "$@"; }
die() { qt_die "$@"; }
qt_need_root "apt-get, mknod in the image"
t_start=$(date +%s.%N)

# --- Debian kernel, modules and busybox; parmod -------------------------------
mkdir -p "$W/logs" "$W/img"
qt_kernel --arch "$DARCH"
qt_busybox --arch "$DARCH"
qt_binaries --arch "$DARCH" "$W/logs/build.log"
log "kernel $KVER"

ROOT=$W/root
MODDIR=$ROOT/lib/modules/$KVER
if [ ! -f "$MODDIR/modules.dep" ] || [ "$MODDIR/modules.dep" -ot "$W/kernel-$KVER/.unpacked" ]; then
    log "staging module tree $ROOT"
    qt_stage "$ROOT"
fi

# --- plan and image ---------------------------------------------------------
cd_=$W/conf.d
rm -rf "$cd_"
mkdir -p "$cd_"
# parmod itself waits for the block device and the network interface.
cat > "$cd_/waits.conf" <<'EOF'
wait-for /dev/vda after virtio_blk timeout 20000
wait-for /sys/class/net/eth0 after virtio_net timeout 20000
EOF
# shellcheck disable=SC2086
"$PARMOD_PLAN" compile --root "$ROOT" --kver "$KVER" --config "$cd_" -o "$W/img/$DARCH.plan" $MODULES \
    >"$W/logs/plan.log" 2>&1 || { cat "$W/logs/plan.log" >&2; die "plan compile failed"; }
n=$(plan_files "$W/img/$DARCH.plan")
log "plan: $(echo "$MODULES" | wc -w) names, $n module files"
printf '/dev/vda 20000\n/sys/class/net/eth0 20000\n' > "$W/conf.check-wait"
"$QT_REPO/initramfs/mkinitramfs.sh" --kver "$KVER" --modules-dir "$MODDIR" --plan "$W/img/$DARCH.plan" \
    --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" --busybox-bin "$BUSYBOX" \
    --extra "$QT_HERE/guest/check.sh:/sbin/check" --extra "$W/conf.check-wait:/etc/check-wait" \
    -o "$W/img/$DARCH.img" 2>"$W/logs/img.log" || { cat "$W/logs/img.log" >&2; die "image build failed"; }

# --- boot -------------------------------------------------------------------
truncate -s 16M "$W/img/vd.img"
LOG=$W/logs/console.log
log "booting (timeout ${TMO} s)"
rc=0
qt_boot --arch "$DARCH" --initrd "$W/img/$DARCH.img" --log "$LOG" --timeout "$TMO" \
    --append "quiet parmod.next=/sbin/check" -- \
    -drive if=none,id=vd,file="$W/img/vd.img",format=raw -device virtio-blk-device,drive=vd \
    -netdev user,id=n0 -device virtio-net-device,netdev=n0 \
    -device virtio-rng-device || rc=$?
boot_secs=$QT_BOOT_SECS

# --- checks -----------------------------------------------------------------
[ "$rc" != 124 ] || fail "QEMU timed out after ${TMO} s"
grep -q '^T: check-done' "$LOG" || fail "the next stage did not finish (no check-done)"
grep -q 'Kernel panic' "$LOG" && fail "kernel panic: $(grep -m1 'Kernel panic' "$LOG")"
loaded=$(t modules)
for m in $MODULES; do
    # Built into this kernel (e.g. virtio_mmio on armmp): nothing to load.
    grep -qE "/${m//_/[-_]}\.ko$" "$MODDIR/modules.builtin" && continue
    echo " $loaded " | grep -q " $m " || fail "$m not in /proc/modules"
done
# Every module file of the plan must be loaded (/proc/modules names use _).
missing_mods=""
for p in $(plan_q "$W/img/$DARCH.plan" '.modules[] | select(.path != null) | .path'); do
    m=$(basename "$p" | sed 's/\.ko.*$//' | tr - _)
    echo " $loaded " | grep -q " $m " || missing_mods="$missing_mods $m"
done
[ -z "$missing_mods" ] || fail "plan modules not loaded:$missing_mods"
[ "$(summary_field loaded)" = "$n" ] && [ "$(summary_field failed)" = 0 ] ||
    fail "summary '$(summary)', want $n loaded, 0 failed"
for p in /dev/vda /sys/class/net/eth0; do
    grep -q "^T: appeared $p after 0ms" "$LOG" || fail "$p was not there when parmod was done"
done
t_end=$(date +%s.%N)
wall=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN{printf "%.1f", b - a}')
if [ -z "$REASONS" ]; then
    echo "PASS $DARCH: kernel $KVER, boot ${boot_secs} s (script ${wall} s), $(echo "$loaded" | wc -w) modules in /proc/modules, $(summary | sed 's/^parmod: //')"
    exit 0
fi
cat "$LOG"
echo "FAIL $DARCH: $REASONS (boot ${boot_secs} s; log $LOG)"
exit 1
