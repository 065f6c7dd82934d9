#!/bin/bash
# The demo: a Debian kernel in QEMU (TCG, -smp 2) loads a broad real module
# set (GPU, file systems, wireless, sound, network, USB storage: the benchmark's
# real set) once with parmod (default settings) and once with kmod's
# modprobe -a, each in a fresh boot of the same image; prints both times and
# their ratio, then `parmod-plan report` on the trace parmod wrote in the guest:
#   build/demo/report.txt    the text summary (also printed)
#   build/demo/timeline.svg  one lane per worker, the critical path outlined
#   build/demo/trace.json    Chrome trace-event JSON (Perfetto, chrome://tracing)
# Run as root (installs what it needs, see qemu-test/lib.sh).
#
#   qemu-test/demo.sh     PARMOD, PARMOD_PLAN: binaries (default: make build);
#                         KVER: the kernel (default 6.1; e.g. 6.12)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# = 0 ] || qt_usage
OUT=$QT_REPO/build/demo
qt_need_root "apt-get, QEMU images"
mkdir -p "$OUT"

# The benchmark does the set-up, the image and the boots: one boot of each.
echo "demo: setting up (packages, fixtures, module tree, image) and booting twice; ~2 min" >&2
BENCH_BOOTS=1 BENCH_RETRIES=0 BENCH_QUIET_WAIT=0 BENCH_VARIANTS="modprobe-a parmod" BENCH_DIR=$OUT/work \
    BENCH_KERNELS=${KVER:-6.1} "$QT_HERE/bench.sh" --workloads real > "$OUT/bench.txt"

W=$OUT/work
RES=$W/results.tsv
k=$(cut -d' ' -f1 "$W/runs")
k=${k#*@}
# results.tsv: kernel workload variant tag ms modules ...
ms_of() { awk -F'\t' -v v="$1" '$3 == v && $4 ~ /^r/ {print $5}' "$RES" | tail -n1; }
mods_of() { awk -F'\t' -v v="$1" '$3 == v && $4 ~ /^r/ {print $6}' "$RES" | tail -n1; }
kmod_ms=$(ms_of modprobe-a)
parmod_ms=$(ms_of parmod)
trace=$(ls -t "$W/traces/$k".real.parmod.r1*.trace 2>/dev/null | head -n1)
[ -n "$trace" ] && [ -s "$trace" ] || { echo "demo: no trace from the parmod boot (see $W/logs)" >&2; exit 1; }
cp "$trace" "$OUT/parmod.trace"
cp "$W/k/$k/img/real.plan" "$OUT/parmod.plan"
"$W/bin/parmod-plan" report --plan "$OUT/parmod.plan" "$OUT/parmod.trace" \
    --svg "$OUT/timeline.svg" --chrome-trace "$OUT/trace.json" > "$OUT/report.txt"

echo
echo "== $(wc -w < "$W/k/$k/conf/real.modules") requested modules; $(mods_of parmod) loaded by parmod, $(mods_of modprobe-a) by modprobe -a (QEMU TCG, 2 vCPUs, kernel $k)"
echo "modprobe -a:  ${kmod_ms} ms"
echo "parmod:       ${parmod_ms} ms"
awk -v a="$parmod_ms" -v b="$kmod_ms" -v la="$(cut -d' ' -f1-3 /proc/loadavg)" \
    'BEGIN{ if (a != "NA" && b != "NA" && b > 0) printf "ratio:        %.2f (parmod / modprobe -a; one boot each; host load average %s)\n", a / b, la }'
echo "(single boots drift by +-10 % and more on a busy host: make bench boots each variant 3 times)"
echo
cat "$OUT/report.txt"
echo
echo "files: $OUT/report.txt $OUT/timeline.svg $OUT/trace.json (open in https://ui.perfetto.dev or chrome://tracing)"
