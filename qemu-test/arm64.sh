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

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
DARCH=arm64
TMO=${QEMU_TIMEOUT:-600}
# Block and network drivers (with virtio_mmio, the transport of -M virt's
# virtio devices), file systems and crypto with dependency chains (btrfs:
# raid6_pq, xor, zstd, libcrc32c...; dm_crypt: dm_mod; aes_ce_blk: the
# arm64 Crypto Extensions that -cpu max provides).
MODULES=""
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) DARCH=$2; shift 2 ;;
        --timeout) TMO=$2; shift 2 ;;
        --modules) MODULES=$2; shift 2 ;;
        *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
case "$DARCH" in
    arm64)
        RUST_TARGET=aarch64-unknown-linux-musl KMETA=linux-image-arm64 FILE_ARCH='ARM aarch64'
        QEMU=qemu-system-aarch64 CPU=max,pauth-impdef=on
        [ -n "$MODULES" ] || MODULES="virtio_mmio virtio_blk virtio_net virtio_rng ext4 btrfs xfs vfat
            nls_utf8 squashfs overlay fuse dm_crypt xts gcm ccm sha3_generic aes_ce_blk chacha20poly1305" ;;
    armhf)
        RUST_TARGET=armv7-unknown-linux-musleabihf KMETA=linux-image-armmp FILE_ARCH='ARM, EABI5'
        QEMU=qemu-system-arm CPU=max
        [ -n "$MODULES" ] || MODULES="virtio_mmio virtio_blk virtio_net virtio_rng ext4 btrfs xfs vfat
            nls_utf8 squashfs overlay fuse dm_crypt xts gcm ccm sha3_generic chacha20poly1305" ;;
    *) echo "arm64: --arch arm64 or armhf" >&2; exit 2 ;;
esac
MODULES=$(echo $MODULES)
W=$repo/build/$DARCH

log() { echo "$DARCH: $*" >&2; }
die() { echo "$DARCH: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (apt-get, mknod in the image)"
t_start=$(date +%s.%N)

# --- host packages and the arm64 architecture ------------------------------
missing=""
for p in qemu-system-arm cpio kmod file; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
foreign=$(dpkg --print-foreign-architectures)
if ! echo "$foreign" | grep -qx "$DARCH"; then
    log "adding the $DARCH architecture to dpkg"
    dpkg --add-architecture "$DARCH"
    apt-get update -q >&2 || true
fi
if [ -n "$missing" ]; then
    log "installing:$missing"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
fi

# --- binaries ---------------------------------------------------------------
mkdir -p "$W/logs" "$W/img" "$W/deb"
if [ -z "${PARMOD:-}" ]; then
    log "building parmod for $RUST_TARGET"
    "$repo/packaging/cross/build-runtime.sh" "$RUST_TARGET" >"$W/logs/build.log" 2>&1 || {
        cat "$W/logs/build.log" >&2
        die "$RUST_TARGET build failed"
    }
    PARMOD=$repo/target/$RUST_TARGET/release/parmod
fi
if [ -z "${PARMOD_PLAN:-}" ]; then
    log "building parmod-plan for the host"
    (cd "$repo" && cargo build --profile host --target x86_64-unknown-linux-musl --features host \
        --bin parmod-plan) >"$W/logs/build-host.log" 2>&1 || {
        cat "$W/logs/build-host.log" >&2
        die "parmod-plan build failed"
    }
    PARMOD_PLAN=$repo/target/x86_64-unknown-linux-musl/host/parmod-plan
fi
[ -x "$PARMOD" ] && [ -x "$PARMOD_PLAN" ] || die "no parmod binaries ($PARMOD, $PARMOD_PLAN)"
file -L "$PARMOD" | grep -q "$FILE_ARCH" || die "$PARMOD is not a $DARCH binary"

# --- Debian kernel, modules and busybox -------------------------------------
# The kernel package the metapackage points at (linux-image-6.1.0-N-arm64).
kpkg=$(apt-cache depends "$KMETA:$DARCH" 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ :]*\).*/\1/p' | head -n1)
[ -n "$kpkg" ] || die "apt-cache knows no $KMETA:$DARCH (apt-get update after dpkg --add-architecture $DARCH?)"
KVER=${kpkg#linux-image-}
fetch() { # PACKAGE DIR: download PACKAGE:$DARCH and unpack it into DIR once
    local pkg=$1 dir=$2
    [ -f "$dir/.unpacked" ] && return 0
    log "downloading $pkg:$DARCH"
    rm -rf "$dir" "$W/deb/$pkg"
    mkdir -p "$W/deb/$pkg"
    # _apt cannot write to root-owned directories: download as root (quietly).
    (cd "$W/deb/$pkg" && apt-get download "$pkg:$DARCH" >"$W/logs/apt-$pkg.log" 2>&1) || {
        cat "$W/logs/apt-$pkg.log" >&2
        return 1
    }
    dpkg-deb -x "$W/deb/$pkg"/*.deb "$dir"
    rm -rf "$W/deb/$pkg"
    touch "$dir/.unpacked"
}
fetch "$kpkg" "$W/kernel-$KVER" || die "cannot fetch $kpkg"
fetch busybox-static "$W/busybox" || die "cannot fetch busybox-static"
KERNEL=$W/kernel-$KVER/boot/vmlinuz-$KVER
BUSYBOX=$W/busybox/bin/busybox
[ -f "$KERNEL" ] || die "no $KERNEL in $kpkg"
file -L "$BUSYBOX" | grep -q "$FILE_ARCH.*statically linked" || die "$BUSYBOX is not a static $DARCH busybox"
log "kernel $KVER"

ROOT=$W/root
MODDIR=$ROOT/lib/modules/$KVER
if [ ! -f "$MODDIR/modules.dep" ] || [ "$MODDIR/modules.dep" -ot "$W/kernel-$KVER/.unpacked" ]; then
    log "staging module tree $ROOT"
    "$repo/initramfs/stage-modules.sh" --kver "$KVER" --src "$W/kernel-$KVER/lib/modules/$KVER" \
        -o "$ROOT" 2>"$W/logs/stage.log" || { cat "$W/logs/stage.log" >&2; die "staging failed"; }
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
n=$("$PARMOD_PLAN" show --json "$W/img/$DARCH.plan" | grep -c '"path": "[^/]' || true)
log "plan: $(echo "$MODULES" | wc -w) names, $n module files"
printf '/dev/vda 20000\n/sys/class/net/eth0 20000\n' > "$W/conf.check-wait"
"$repo/initramfs/mkinitramfs.sh" --kver "$KVER" --modules-dir "$MODDIR" --plan "$W/img/$DARCH.plan" \
    --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" --busybox-bin "$BUSYBOX" \
    --extra "$here/guest/check.sh:/sbin/check" --extra "$W/conf.check-wait:/etc/check-wait" \
    -o "$W/img/$DARCH.img" 2>"$W/logs/img.log" || { cat "$W/logs/img.log" >&2; die "image build failed"; }

# --- boot -------------------------------------------------------------------
truncate -s 16M "$W/img/vd.img"
RAW=$W/logs/console.raw
LOG=$W/logs/console.log
log "booting (timeout ${TMO} s)"
t0=$(date +%s.%N)
rc=0
# arm64: -cpu max,pauth-impdef=on: every arm64 feature, with QEMU's cheap
# pointer authentication algorithm (the architected one is slow under TCG).
# stdin from /dev/null: the -nographic serial/monitor mux then reads nothing.
timeout --kill-after=10 "$TMO" "$QEMU" \
    -M virt -cpu "$CPU" -accel tcg,thread=multi -smp 2 -m 1024 \
    -nographic -no-reboot -nic none \
    -kernel "$KERNEL" -initrd "$W/img/$DARCH.img" \
    -append "console=ttyAMA0 panic=-1 loglevel=4 quiet parmod.next=/sbin/check" \
    -drive if=none,id=vd,file="$W/img/vd.img",format=raw -device virtio-blk-device,drive=vd \
    -netdev user,id=n0 -device virtio-net-device,netdev=n0 \
    -device virtio-rng-device \
    </dev/null >"$RAW" 2>&1 || rc=$?
t1=$(date +%s.%N)
tr -d '\r' <"$RAW" >"$LOG"
boot_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}')

# --- checks -----------------------------------------------------------------
REASONS=""
fail() { REASONS="${REASONS:+$REASONS; }$*"; }
t() { sed -n "s/^T: $1 //p" "$LOG" | head -n1; }
summary() { grep -m1 -o 'parmod: [0-9]* loaded.*in [0-9]* ms' "$LOG" || true; }
summary_field() { summary | grep -o "[0-9]* $1" | head -n1 | cut -d' ' -f1; }

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
for p in $("$PARMOD_PLAN" show --json "$W/img/$DARCH.plan" | sed -n 's/^ *"path": *"\([^"/][^"]*\)",\{0,1\} *$/\1/p'); do
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
