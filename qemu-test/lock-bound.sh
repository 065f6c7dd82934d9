#!/bin/bash
# The lower bound of a parallel load of the real set, from the `-j 1` boot
# of qemu-test/lock-trace.sh: each load cut at its ftrace_lock sections,
# and max(longest chain, serial parts, work / CPUs, the bound that the
# longest serial phase gives), for any schedule in which every load costs
# at least as much (docs/BENCHMARKS.md, "The bound with the serial phase").
#
#   qemu-test/lock-bound.sh [--run NAME] [--cpus N] [--modules-dep FILE]
#                           [--untraced FILE] DIR
#
# DIR: lock-trace.sh's output (build/lock-trace/KVER). --run: the boot
# (default j1: NAME.ftrace.txt and NAME.trace); --cpus: CPUs of the bound
# (default 2); --modules-dep: default DIR/root/lib/modules/*/modules.dep.
# --untraced: "module ms" lines, each load's time in -j 1 boots without
# tracing (several boots: the least time counts), e.g. from bench.sh's
#   parmod-plan show --trace TRACE --json PLAN |
#       jq -r '.records[] | select(.result == "loaded") | "\(.module) \(.end_ms - .start_ms)"'
# A traced load is longer; each of its parts is then cut by the whole
# excess, so that the bound holds for the untraced boots too (if tracing
# only adds time). Needs no root and boots nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUN=j1 CPUS=2 DEPS="" UNTRACED="" DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        --run) RUN=$2; shift 2 ;;
        --cpus) CPUS=$2; shift 2 ;;
        --modules-dep) DEPS=$2; shift 2 ;;
        --untraced) UNTRACED=$2; shift 2 ;;
        -h|--help) qt_usage 0 ;;
        -*) qt_usage ;;
        *) [ -z "$DIR" ] || qt_usage; DIR=$1; shift ;;
    esac
done
[ -n "$DIR" ] || qt_usage
FT=$DIR/$RUN.ftrace.txt TR=$DIR/$RUN.trace
[ -s "$FT" ] || qt_die "no $FT: run qemu-test/lock-trace.sh --jobs 1 (--out $DIR)"
[ -s "$TR" ] || qt_die "no $TR (parmod's trace of that boot): rerun qemu-test/lock-trace.sh --jobs 1"
if [ -z "$DEPS" ]; then
    set -- "$DIR"/root/lib/modules/*/modules.dep
    [ $# = 1 ] && [ -s "$1" ] || qt_die "no single $DIR/root/lib/modules/*/modules.dep: give --modules-dep FILE"
    DEPS=$1
fi
[ -s "$DEPS" ] || qt_die "no $DEPS"
[ -z "$UNTRACED" ] || [ -s "$UNTRACED" ] || qt_die "--untraced $UNTRACED: no such file, or empty"
case "$CPUS" in ''|*[!0-9]*|0) qt_die "--cpus $CPUS: a positive number of CPUs" ;; esac

# parmod's trace (docs/plan-format.md): a 32-byte header, then 32-byte
# records; start_ns, end_ns (u64) and the kind byte (31) are all we need
[ "$(head -c 8 "$TR")" = PARMODTR ] || qt_die "$TR is not a parmod trace (magic)"
read -r ver size <<<"$(od -A n -t u4 -j 8 -N 8 "$TR")"
[ "$ver" = 2 ] && [ $((size & 0xffff)) = 32 ] ||
    qt_die "$TR: trace version $ver, record size $((size & 0xffff)); this script reads version 2, 32-byte records"
RECS=$(mktemp)
trap 'rm -f "$RECS"' EXIT
od -A n -v -t u4 -w32 -j 32 "$TR" |
    awk 'NF == 8 { printf "%.0f %.0f %d\n", $1 + $2 * 4294967296, $3 + $4 * 4294967296, int($8 / 65536) % 256 }' >"$RECS"

echo "$FT, $(basename "$DEPS") of $(basename "$(dirname "$DEPS")"), $CPUS CPUs"
awk -v recs="$RECS" -v deps="$DEPS" -v cpus="$CPUS" -v totals="$UNTRACED" -f "$QT_HERE/lock-bound.awk" "$FT"
