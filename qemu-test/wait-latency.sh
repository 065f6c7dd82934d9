#!/bin/bash
# Benchmark: how long after a device node or sysfs attribute is created does
# parmod notice it? Boots the Debian kernel with the pm_late_many fixture,
# which creates /dev/pm_manyN and /sys/kernel/pm_many/attrN one after the
# other (logging the ktime just before each creation), while parmod waits for
# all of them (final waits). The trace parmod writes in the guest gives the
# moment each wait was satisfied (CLOCK_MONOTONIC = ktime_get). Prints the
# median, 90th percentile and maximum latency for /dev and /sys.
#
#   qemu-test/wait-latency.sh            (as root; BOOTS=3 boots by default)
#
# Environment: BOOTS, PARMOD, PARMOD_PLAN (default: make build), KVER.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# = 0 ] || qt_usage
W=$QT_REPO/build/qemu-latency
BOOTS=${BOOTS:-3}
COUNT=8
qt_need_root "apt-get, mknod in the image"
qt_kernel --arch x86_64
mkdir -p "$W/conf" "$W/logs"
qt_binaries --arch x86_64 "$W/logs/build.log"
qt_fixtures "$W/fixtures"
echo "options pm_late_many late_ms=1000 gap_ms=200 count=$COUNT" > "$W/conf/pm.conf"
qt_stage "$W/root" --extra-dir "parmod:$W/fixtures" --modprobe-conf "$W/conf/pm.conf"
{
    cat "$W/conf/pm.conf"
    for i in $(seq 0 $((COUNT - 1))); do
        echo "wait-for /dev/pm_many$i timeout 20000"
        echo "wait-for /sys/kernel/pm_many/attr$i timeout 20000"
    done
} > "$W/conf/latency.conf"
"$PARMOD_PLAN" compile --root "$W/root" --kver "$KVER" --config "$W/conf/latency.conf" \
    -o "$W/latency.plan" pm_late_many 2>"$W/logs/plan.log" || { cat "$W/logs/plan.log" >&2; qt_die "plan compile failed"; }
echo /run/parmod.trace > "$W/conf/check-trace"
"$QT_REPO/initramfs/mkinitramfs.sh" --kver "$KVER" --modules-dir "$W/root/lib/modules/$KVER" \
    --plan "$W/latency.plan" --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" --busybox \
    --extra "$QT_HERE/guest/check.sh:/sbin/check" --extra "$W/conf/check-trace:/etc/check-trace" \
    -o "$W/latency.img" 2>"$W/logs/img.log" || { cat "$W/logs/img.log" >&2; qt_die "image build failed"; }

# samples: "dev|sys LATENCY_MS" per satisfied wait whose creation the fixture logged.
: > "$W/samples"
for b in $(seq 1 "$BOOTS"); do
    LOG=$W/logs/boot$b.log
    qt_boot --arch x86_64 --initrd "$W/latency.img" --timeout 180 --log "$LOG" \
        --append "parmod.next=/sbin/check parmod.trace=/run/parmod.trace" || true
    qt_trace "$LOG" "$W/boot$b.trace" || qt_die "boot $b: no trace on the console ($LOG)"
    t0=$(trace_t0 "$W/boot$b.trace" "$W/latency.plan")
    # "PATH END_NS" of each satisfied wait (ms since parmod's start, to ns).
    trace_q "$W/boot$b.trace" "$W/latency.plan" \
        '.records[] | select(.result == "satisfied" and (.module | startswith("wait:"))) | "\(.module[5:]) \(.end_ms)"' |
        awk -v t0="$t0" '{ printf "%s %.0f\n", $1, t0 + $2 * 1e6 }' > "$W/boot$b.seen"
    sed -n 's/.*pm_fixture: pm_late_many \(node\|attr\) \([^ ]*\) \([0-9]*\).*/\1 \2 \3/p' "$LOG" |
        awk 'NR == FNR { seen[$1] = $2; next }
             ($2 in seen) { printf "%s %.6f\n", ($1 == "node" ? "dev" : "sys"), (seen[$2] - $3) / 1e6 }' \
            "$W/boot$b.seen" - >> "$W/samples"
done
for kind in dev sys; do
    awk -v k="$kind" '$1 == k { print $2 }' "$W/samples" | sort -g |
        awk -v k="$kind" -v boots="$BOOTS" '{ v[NR] = $1 }
            END {
                if (NR == 0) { printf "/%s: no samples\n", k; exit }
                med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                i90 = int(0.9 * NR) + 1; if (i90 > NR) i90 = NR
                printf "/%s: %d samples over %d boots: median %.3f ms, p90 %.3f ms, max %.3f ms, min %.3f ms\n",
                    k, NR, boots, med, v[i90], v[NR], v[1]
            }'
done
