#!/bin/bash
# Boot a kernel + initramfs in QEMU (TCG) and capture the serial console.
#
#   qemu-test/boot.sh --initrd IMG [--arch x86_64|arm64|armhf] [--kver V]
#       [--kernel PATH] [--append "ARGS"] [--timeout SECONDS] [--log FILE]
#       [--smp N] [--mem MB] [--quiet] [-- EXTRA QEMU ARGS...]
#
# The boot of lib.sh (qt_boot): kernel command line "console=ttyS0 (ttyAMA0
# on Arm) panic=-1 loglevel=4 ARGS"; the guest is expected to power off
# (poweroff -f); a panic reboots, and -no-reboot makes QEMU exit then. QEMU
# runs under timeout (default 300 s). The console without CRs goes to FILE
# (default build/qemu/logs/boot.log; the raw one to FILE.raw) and is printed
# to stdout unless --quiet. No default NIC (-nic none): add your devices.
# The kernel: --kernel, else /boot/vmlinuz-V for --kver V, else the one
# setup.sh picks (x86_64) or Debian's for the architecture (downloaded).
# Exit status: QEMU's, 124 on timeout. TCG only: KVM hangs on these machines.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ARCH=x86_64 KERNEL_ARG="" INITRD="" APPEND="" TIMEOUT=300 LOGF="" SMP=2 MEM=1024 QUIET=0
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=$2; shift 2 ;;
        --kver) KVER=$2; shift 2 ;;
        --kernel) KERNEL_ARG=$2; shift 2 ;;
        --initrd) INITRD=$2; shift 2 ;;
        --append) APPEND=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --log) LOGF=$2; shift 2 ;;
        --smp) SMP=$2; shift 2 ;;
        --mem) MEM=$2; shift 2 ;;
        --quiet) QUIET=1; shift ;;
        --) shift; break ;;
        *) echo "$QT_ME: unknown argument $1" >&2; qt_usage ;;
    esac
done
[ -n "$INITRD" ] || { echo "$QT_ME: --initrd is required" >&2; qt_usage; }
if [ -n "$KERNEL_ARG" ]; then
    KERNEL=$KERNEL_ARG
    qt_arch "$ARCH"
elif [ "$ARCH" = x86_64 ] && [ -n "${KVER:-}" ]; then
    KERNEL=/boot/vmlinuz-$KVER
else
    qt_kernel --arch "$ARCH"
fi
[ -n "$LOGF" ] || LOGF=$QT_REPO/build/qemu/logs/boot.log
rc=0
qt_boot --arch "$ARCH" --kernel "$KERNEL" --initrd "$INITRD" --log "$LOGF" --append "$APPEND" \
    --timeout "$TIMEOUT" --smp "$SMP" --mem "$MEM" -- "$@" || rc=$?
[ "$QUIET" = 1 ] || cat "$LOGF"
if [ "$rc" = 124 ]; then
    echo "$QT_ME: timed out after ${TIMEOUT} s ($LOGF)" >&2
else
    echo "$QT_ME: QEMU exited $rc after $QT_BOOT_SECS s ($LOGF)" >&2
fi
exit "$rc"
