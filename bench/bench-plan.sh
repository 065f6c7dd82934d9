#!/bin/sh
# Compile one plan holding every module of a kernel tree (all names of
# modules.dep) N times with a release build of parmod-plan; print the median
# wall time and the plan size.
#
#   bench/bench-plan.sh [KVER] [RUNS]      (defaults: newest under /lib/modules, 20)
#
# PARMOD_PLAN_BIN=path/to/parmod-plan times that binary instead of building
# one (to compare two versions under the same machine load).
set -eu
cd "$(dirname "$0")/.."
KVER=${1:-$(ls /lib/modules | sort -V | tail -n 1)}
RUNS=${2:-20}
DIR=/lib/modules/$KVER
[ -f "$DIR/modules.dep" ] || { echo "bench-plan: no $DIR/modules.dep; install linux-image-amd64" >&2; exit 1; }

if [ -n "${PARMOD_PLAN_BIN:-}" ]; then
    BIN=$PARMOD_PLAN_BIN
else
    cargo build --quiet --profile host --features host --bin parmod-plan
    BIN=target/host/parmod-plan
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
sed -n 's/:.*//p' "$DIR/modules.dep" | sed 's,.*/,,; s/\.ko.*//' > "$TMP/names"
COUNT=$(wc -l < "$TMP/names")
# shellcheck disable=SC2046
set -- $(cat "$TMP/names")
OUT=$TMP/all.plan

# Warm the page cache once (and check that it works).
"$BIN" compile --kver "$KVER" -o "$OUT" "$@" 2>/dev/null

if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --warmup 2 --runs "$RUNS" --export-json "$TMP/h.json" \
        "$BIN compile --kver $KVER -o $OUT $*" >/dev/null 2>&1
    MEDIAN=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$TMP/h.json")
else
    i=0
    : > "$TMP/times"
    while [ "$i" -lt "$RUNS" ]; do
        t0=$(date +%s%N)
        "$BIN" compile --kver "$KVER" -o "$OUT" "$@" 2>/dev/null
        t1=$(date +%s%N)
        echo $(( (t1 - t0) / 1000 )) >> "$TMP/times"
        i=$((i + 1))
    done
    MEDIAN=$(sort -n "$TMP/times" | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f", m / 1000}')
fi
SIZE=$(wc -c < "$OUT")
echo "kernel $KVER: $COUNT modules requested; plan: $("$BIN" show "$OUT" | sed -n "s/^modules: *//p")"
echo "median wall time over $RUNS runs: $MEDIAN ms"
echo "plan size: $SIZE bytes"
echo "machine: $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), load average$(uptime | sed 's/.*load average//')"
