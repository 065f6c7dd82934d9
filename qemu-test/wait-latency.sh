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
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
W=$repo/build/qemu-latency
BOOTS=${BOOTS:-3}
COUNT=8
[ "$(id -u)" = 0 ] || { echo "wait-latency: must run as root" >&2; exit 1; }
KVER=${KVER:-$("$here/setup.sh" --quiet | sed -n 's/^KVER=//p')}
if [ -z "${PARMOD:-}" ] || [ -z "${PARMOD_PLAN:-}" ]; then
    make -C "$repo" --no-print-directory build >/dev/null
    PARMOD=$repo/target/x86_64-unknown-linux-musl/release/parmod
    PARMOD_PLAN=$repo/target/x86_64-unknown-linux-musl/host/parmod-plan
fi
mkdir -p "$W/conf" "$W/logs"
make -C "$here/fixtures" --no-print-directory KVER="$KVER" OUTDIR="$W/fixtures" >"$W/logs/fixtures.log" 2>&1
echo "options pm_late_many late_ms=1000 gap_ms=200 count=$COUNT" > "$W/conf/pm.conf"
"$repo/initramfs/stage-modules.sh" --kver "$KVER" -o "$W/root" \
    --extra-dir "parmod:$W/fixtures" --modprobe-conf "$W/conf/pm.conf" 2>"$W/logs/stage.log"
{
    cat "$W/conf/pm.conf"
    for i in $(seq 0 $((COUNT - 1))); do
        echo "wait-for /dev/pm_many$i timeout 20000"
        echo "wait-for /sys/kernel/pm_many/attr$i timeout 20000"
    done
} > "$W/conf/latency.conf"
"$PARMOD_PLAN" compile --root "$W/root" --kver "$KVER" --config "$W/conf/latency.conf" \
    -o "$W/latency.plan" pm_late_many 2>"$W/logs/plan.log"
echo /run/parmod.trace > "$W/conf/check-trace"
"$repo/initramfs/mkinitramfs.sh" --kver "$KVER" --modules-dir "$W/root/lib/modules/$KVER" \
    --plan "$W/latency.plan" --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" --busybox \
    --extra "$here/guest/check.sh:/sbin/check" --extra "$W/conf/check-trace:/etc/check-trace" \
    -o "$W/latency.img" 2>"$W/logs/img.log"
"$PARMOD_PLAN" show --json "$W/latency.plan" > "$W/plan.json"

: > "$W/samples"
for b in $(seq 1 "$BOOTS"); do
    log=$W/logs/boot$b.log
    "$here/boot.sh" --kver "$KVER" --initrd "$W/latency.img" --timeout 180 --quiet \
        --log "$log.raw" --append "parmod.next=/sbin/check parmod.trace=/run/parmod.trace" \
        2>"$W/logs/boot$b.err" || true
    tr -d '\r' < "$log.raw" > "$log"
    sed -n '/^T: trace-begin$/,/^T: trace-end$/p' "$log" | grep -v '^T: ' | base64 -d > "$W/boot$b.trace"
    python3 - "$W/boot$b.trace" "$W/plan.json" "$log" >> "$W/samples" <<'PY'
import json, re, struct, sys
trace, plan, log = sys.argv[1:4]
waits = [w["path"] for w in json.load(open(plan))["waits"]]
data = open(trace, "rb").read()
count = struct.unpack_from("<I", data, 20)[0]
seen = {}
for i in range(count):
    start, end, index, errno, cause, worker, kind, result = struct.unpack_from("<QQIiIHBB", data, 32 + 32 * i)
    if kind == 1 and result == 8:  # a satisfied wait
        seen[waits[index]] = end
for line in open(log, errors="replace"):
    m = re.search(r"pm_fixture: pm_late_many (node|attr) (\S+) (\d+)", line)
    if m and m.group(2) in seen:
        kind = "dev" if m.group(1) == "node" else "sys"
        print(kind, (seen[m.group(2)] - int(m.group(3))) / 1e6)
PY
done
python3 - "$W/samples" "$BOOTS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
for kind in ("dev", "sys"):
    v = sorted(float(r[1]) for r in rows if r[0] == kind)
    if not v:
        print(f"{kind}: no samples"); continue
    p90 = v[min(len(v) - 1, int(0.9 * len(v)))]
    print(f"/{kind}: {len(v)} samples over {sys.argv[2]} boots: median {statistics.median(v):.3f} ms, "
          f"p90 {p90:.3f} ms, max {v[-1]:.3f} ms, min {v[0]:.3f} ms")
PY
