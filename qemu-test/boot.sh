#!/bin/sh
# Boot a kernel + initramfs in QEMU (TCG) and capture the serial console.
#
#   qemu-test/boot.sh --initrd IMG [--kver V] [--kernel PATH] [--append "ARGS"]
#       [--timeout SECONDS] [--log FILE] [--smp N] [--mem MB] [--quiet]
#       [-- EXTRA QEMU ARGS...]
#
# Kernel command line: "console=ttyS0 panic=-1 loglevel=4 ARGS". The guest is
# expected to power off (poweroff -f); a panic reboots, and -no-reboot makes
# QEMU exit then. QEMU runs under timeout (default 300 s). The console goes to
# FILE (default build/qemu/logs/boot.log), which is printed to stdout unless
# --quiet. No default NIC (-nic none): scenarios add their devices. Exit status: QEMU's, 124 on timeout. KVM hangs on these machines,
# so this always uses TCG.
set -eu

me=$(basename "$0")
here=$(cd "$(dirname "$0")" && pwd)
KVER="" KERNEL="" INITRD="" APPEND="" TIMEOUT=300 LOG="" SMP=2 MEM=1024 QUIET=0
while [ $# -gt 0 ]; do
    case "$1" in
        --kver) KVER=$2; shift 2 ;;
        --kernel) KERNEL=$2; shift 2 ;;
        --initrd) INITRD=$2; shift 2 ;;
        --append) APPEND=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --log) LOG=$2; shift 2 ;;
        --smp) SMP=$2; shift 2 ;;
        --mem) MEM=$2; shift 2 ;;
        --quiet) QUIET=1; shift ;;
        --) shift; break ;;
        *) echo "$me: unknown argument $1" >&2; sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[ -n "$INITRD" ] || { echo "$me: --initrd is required" >&2; exit 2; }
if [ -z "$KERNEL" ]; then
    if [ -z "$KVER" ]; then
        KVER=$("$here/setup.sh" --quiet | sed -n 's/^KVER=//p')
    fi
    KERNEL=/boot/vmlinuz-$KVER
fi
[ -f "$KERNEL" ] || { echo "$me: no kernel $KERNEL" >&2; exit 2; }
[ -n "$LOG" ] || LOG=$(cd "$here/.." && pwd)/build/qemu/logs/boot.log
mkdir -p "$(dirname "$LOG")"

start=$(date +%s.%N)
set +e
# stdin from /dev/null: the -nographic serial/monitor mux then reads nothing.
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -smp "$SMP" -m "$MEM" \
    -nographic -no-reboot -nic none \
    -kernel "$KERNEL" -initrd "$INITRD" \
    -append "console=ttyS0 panic=-1 loglevel=4 $APPEND" \
    "$@" < /dev/null > "$LOG" 2>&1
rc=$?
set -e
end=$(date +%s.%N)
secs=$(echo "$start $end" | awk '{printf "%.1f", $2 - $1}')
[ "$QUIET" = 1 ] || cat "$LOG"
if [ "$rc" = 124 ]; then
    echo "$me: timed out after ${TIMEOUT} s ($LOG)" >&2
else
    echo "$me: QEMU exited $rc after $secs s ($LOG)" >&2
fi
exit "$rc"
