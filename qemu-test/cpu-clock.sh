#!/bin/bash
# The cost of the stuck-load signal (a worker's CPU clock read with
# clock_gettime, src/runtime/arch task_cpu_ns), natively and in a QEMU TCG
# guest: guest/cpuclock.c, built static, run RUNS times each way; prints
# the median ns per call of each measurement (docs/robustness.md).
#
#   qemu-test/cpu-clock.sh [--runs N] [--calls N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
W=$repo/build/qemu/cpu-clock
RUNS=5 CALLS=200000
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --calls) CALLS=$2; shift 2 ;;
        *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "cpu-clock: must run as root (the image)" >&2; exit 1; }
KVER=${KVER:-$("$here/setup.sh" --quiet | sed -n 's/^KVER=//p')}
mkdir -p "$W/stage/bin" "$W/stage/proc" "$W/stage/dev"
gcc -O2 -static -o "$W/stage/bin/cpuclock" "$here/guest/cpuclock.c"

# median WHAT < lines "cpuclock WHAT NS"
median() { awk -v w="$1" '$1 == "cpuclock" && $2 == w { print $3 }' | sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "?") }'; }

: > "$W/native.txt"
for _ in $(seq "$RUNS"); do "$W/stage/bin/cpuclock" "$CALLS" >> "$W/native.txt"; done

cp /bin/busybox "$W/stage/bin/busybox"
for c in sh mount seq poweroff; do ln -sf busybox "$W/stage/bin/$c"; done
cat > "$W/stage/init" <<INIT
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
for i in \$(seq $RUNS); do /bin/cpuclock $CALLS; done
poweroff -f
INIT
chmod 755 "$W/stage/init"
(cd "$W/stage" && find . | cpio -o -H newc --owner=0:0 --quiet) > "$W/image.cpio"
"$here/boot.sh" --kver "$KVER" --initrd "$W/image.cpio" --timeout 600 --log "$W/guest.log" --quiet
tr -d '\r' < "$W/guest.log" > "$W/guest.txt"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs of $CALLS calls each, median ns per call"
printf '%-24s %8s %8s\n' "clock read" native "TCG"
for w in other-process-sleeping other-process-running own-thread monotonic; do
    printf '%-24s %8s %8s\n' "$w" "$(median "$w" < "$W/native.txt")" "$(median "$w" < "$W/guest.txt")"
done
