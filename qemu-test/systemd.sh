#!/bin/bash
# A real Debian 12 system booted three ways (make qemu-test-systemd; see
# README.md): same kernel, same disk (virtio-blk, GPT, ext4; QEMU TCG -smp 2,
# -cpu max, the disk opened with snapshot=on so every boot starts alike).
#
#   stock   Debian's initramfs (initramfs-tools, udev inside), root=PARTUUID=,
#           systemd-modules-load.service loading the modules-load.d list
#   parmod  parmod's initramfs (make initramfs), root=PARTUUID= on the command
#           line, parmod-modules-load.service loading the same list
#   late    parmod's initramfs built with ROOT=UUID=... (no root= on the command
#           line), parmod's unit, and pm-late-user.service, whose
#           ExecStartPre=parmod wait --timeout 5000 /dev/pm_late waits for the
#           node pm_late_misc registers 4.5 s after its init
#
#   qemu-test/systemd.sh [--only stock,parmod,late] [--boots N] [--bench FILE]
#       [--parmod-args --jobs=2] [--profile TRACE PLAN]
#
# Checks, from inside each booted system (debian/check.sh on the serial
# console): multi-user.target reached, the system "running" (no failed
# unit); the listed modules in /proc/modules, and the same modules of the
# list's closure loaded after stock and parmod; which module-loading unit
# ran and which was skipped; after parmod's initramfs: /run a tmpfs of mode
# 755, no /etc/initrd-release, nothing left of the initramfs, no error from
# parmod; in late: the consumer started only after
# its node existed, and had to wait for it (else "SKIP late-wait" with the
# reason: a host too slow for late_ms; a failure with
# PARMOD_REQUIRE_LATE_WAIT=1). Prints "PASS name" / "FAIL name: why" per boot and
# "N passed, M failed". --boots N boots each variant N times and prints the
# medians of: kernel start to the real root's init (switch_root), to
# multi-user.target, and the module-loading unit's duration; --bench FILE
# also writes them there. --parmod-args WORD: an option for parmod in
# parmod-modules-load.service (systemd.setenv=PMTEST_ARGS=... on the kernel
# command line of the parmod and late boots). --profile TRACE PLAN: the
# system's plan compiled with the load times of TRACE (a trace of parmod's
# unit, build/debian/logs/NAME.trace, best from a --parmod-args -j1 boot)
# recorded with PLAN (that boot's build/debian/system.plan, copied away
# first: every run writes it again). Environment: PARMOD, PARMOD_PLAN, KVER,
# QEMU_TIMEOUT (per boot, default 300).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

D=$QT_REPO/build/debian
ONLY="stock parmod late" BOOTS=1 BENCH="" PARGS="" PROFILE=()
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY=${2//,/ }; shift 2 ;;
        --boots) BOOTS=$2; shift 2 ;;
        --bench) BENCH=$2; shift 2 ;;
        --profile) [ $# -ge 3 ] || qt_usage; PROFILE=(--profile "$2" --profile-plan "$3"); shift 3 ;;
        --parmod-args) PARGS=$2; shift 2 ;;
        *) qt_usage ;;
    esac
done
case "$PARGS" in *[[:space:]]*) qt_die "--parmod-args takes one word (--jobs=2)" ;; esac
TMO=${QEMU_TIMEOUT:-300}
qt_need_root "apt-get, mmdebstrap, ownership in the image"
log() { qt_log "$@"; }
t_start=$(date +%s)

qt_kernel --arch x86_64
mkdir -p "$D/logs"
qt_binaries --arch x86_64 "$D/logs/build.log"
log "kernel $KVER; fixtures, Debian system, images"
qt_fixtures "$QT_REPO/build/qemu/fixtures"
"$QT_HERE/debian-root.sh" --kver "$KVER" --fixtures "$QT_REPO/build/qemu/fixtures" \
    --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" -o "$D" "${PROFILE[@]}"
# shellcheck disable=SC1091
. "$D/disk.env"
mk_initramfs() { # IMAGE [ROOT]
    make -C "$QT_REPO" --no-print-directory initramfs KVER="$KVER" IMAGE="$1" ROOT="${2:-}" \
        PARMOD="$PARMOD" PARMOD_PLAN="$PARMOD_PLAN" >"$D/logs/$(basename "$1").log" 2>&1 \
        || { cat "$D/logs/$(basename "$1").log" >&2; exit 1; }
}
mk_initramfs "$D/initrd-parmod.img"
mk_initramfs "$D/initrd-parmod-uuid.img" "UUID=$FSUUID"

LISTED=$(grep -v '^#' "$QT_HERE/debian/modules.conf" | tr '-' '_' | tr '\n' ' ')
# The list's closure, from the system's plan (built-ins aside).
CLOSURE=$("$PARMOD_PLAN" show --json "$D/system.plan" | python3 -c '
import json, sys
print(" ".join(sorted(m["name"] for m in json.load(sys.stdin)["modules"] if not m["builtin"])))')

set +e
PASSED=0 FAILED=0 REASONS="" LOG=""
# (fail, t and has_module are lib.sh's)
# unit UNIT FIELD: a field of the "T: unit UNIT k=v ..." line.
unit() { t "unit $1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
ms() { awk -v a="$1" -v b="${2:-0}" 'BEGIN { if (a == "" || a == 0) print ""; else printf "%.0f", (a - b) / 1000 }'; }

declare -A R_ROOT R_MULTI R_UNIT R_UCPU R_MODS R_OTHER
# The host is shared: CPUs used by anything but the boot itself, as bench.sh
# measures them (busy jiffies of /proc/stat less the boot's own CPU time).
MAX_OTHER=${BENCH_MAX_OTHER:-0.3}
# Before a timed boot: wait up to 120 s for the others to fall under MAX_OTHER.
wait_quiet() { qt_wait_quiet "$MAX_OTHER" 120; }

boot_one() { # VARIANT RUN
    local v=$1 run=$2 img append
    case "$v" in
        stock) img=$D/initrd-debian.img append="root=PARTUUID=$PARTUUID ro quiet pmtest.stock" ;;
        parmod) img=$D/initrd-parmod.img append="root=PARTUUID=$PARTUUID ro quiet" ;;
        late) img=$D/initrd-parmod-uuid.img append="ro quiet pmtest.late" ;;
    esac
    [ "$v" = stock ] || [ -z "$PARGS" ] || append="$append systemd.setenv=PMTEST_ARGS=$PARGS"
    local name=$v$([ "$BOOTS" -gt 1 ] && echo "-$run")
    local rc=0 b0 b1 t0 t1
    [ "$BOOTS" -gt 1 ] && wait_quiet
    LOG=$D/logs/$name.log
    times > "$D/.times0"
    b0=$(qt_host_busy) t0=$(date +%s.%N)
    qt_boot --arch x86_64 --initrd "$img" --timeout "$TMO" --log "$LOG.tty" \
        --append "$append" -- -cpu max -drive "file=$D/disk.img,if=virtio,format=raw,snapshot=on" || rc=$?
    times > "$D/.times1"
    b1=$(qt_host_busy) t1=$(date +%s.%N)
    OTHER=$(qt_others "$b0" "$b1" "$(qt_times_secs "$D/.times0")" "$(qt_times_secs "$D/.times1")" "$t0" "$t1")
    # systemd's colours off
    sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$LOG.tty" > "$LOG"
    [ "$rc" = 124 ] && fail "QEMU timed out after $TMO s"
    grep -q '^T: check-done' "$LOG" || fail "the checks did not finish (no check-done)"
    grep -q 'Kernel panic' "$LOG" && fail "kernel panic: $(grep -m1 'Kernel panic' "$LOG")"
    [ "$(t state)" = running ] || fail "system state '$(t state)', failed units: $(t failed-units)"
    case "$(t 'target multi-user.target')" in active\ *) ;; *) fail "multi-user.target not reached" ;; esac
    local m missing=""
    for m in $LISTED; do has_module "$m" || missing="$missing $m"; done
    [ -z "$missing" ] || fail "listed modules not loaded:$missing"
    local loader other
    if [ "$v" = stock ]; then loader=systemd-modules-load.service other=parmod-modules-load.service
    else loader=parmod-modules-load.service other=systemd-modules-load.service; fi
    [ "$(unit $loader active)" = active ] || fail "$loader is $(unit $loader active)"
    [ "$(unit $other active)" = inactive ] && [ "$(unit $other condition)" = no ] \
        || fail "$other should be skipped (condition failed), is $(unit $other active), condition $(unit $other condition)"
    if [ "$v" != stock ]; then
        # What systemd expects of an initramfs that is not a systemd one.
        case "$(t run)" in "mode=755 tmpfs /run tmpfs "*) ;; *) fail "/run is not a tmpfs of mode 755: $(t run)" ;; esac
        [ "$(t initrd-release)" = absent ] || fail "/etc/initrd-release is there"
        [ "$(t initramfs-left)" = none ] || fail "initramfs files left in the root: $(t initramfs-left)"
        grep -q 'parmod: cannot' "$LOG" && fail "$(grep -m1 'parmod: cannot' "$LOG")"
        grep -q 'K: .*parmod: [0-9]* loaded .* 0 failed, 0 skipped, 0 stuck' "$LOG" || fail "parmod's initramfs run: $(grep -m1 'parmod: [0-9]* loaded' "$LOG" || echo 'no summary')"
    fi
    if [ "$v" = late ]; then
        local reg start main
        reg=$(sed -n 's/.*pm_late_misc registered \/dev\/pm_late \([0-9]*\) ret 0.*/\1/p' "$LOG" | head -n1)
        start=$(unit pm-late-user.service start) main=$(unit pm-late-user.service main)
        [ "$(unit pm-late-user.service active)" = active ] || fail "pm-late-user.service is $(unit pm-late-user.service active)"
        if [ -n "$reg" ] && [ -n "$main" ] && [ "$main" != 0 ]; then
            [ "$main" -ge $((reg / 1000)) ] || fail "pm-late-user.service started at $main us, before /dev/pm_late was registered at $((reg / 1000)) us"
            if [ $((reg / 1000)) -gt "$start" ]; then
                WAITED="waited $(( (reg / 1000 - start) / 1000 )) ms for /dev/pm_late, started $(( (main - reg / 1000) / 1000 )) ms after it"
            else
                # The host was too slow for late_ms: the node came before the
                # service, and its wait had nothing to wait for.
                WAITED="/dev/pm_late was there $(( (start - reg / 1000) / 1000 )) ms before the service started: the wait was not exercised"
                echo "SKIP late-wait: $WAITED"
                [ "${PARMOD_REQUIRE_LATE_WAIT:-0}" != 1 ] || fail "$WAITED (PARMOD_REQUIRE_LATE_WAIT=1)"
            fi
        else
            fail "no registration time (${reg:-none}) or start time (${main:-none}) of pm-late-user.service"
        fi
    fi
    if [ "$v" != stock ]; then
        sed -n '/^T: trace-begin$/,/^T: trace-end$/p' "$LOG" | grep -v '^T: ' | base64 -d > "$D/logs/$name.trace" 2>/dev/null
        "$PARMOD_PLAN" report --plan "$D/system.plan" "$D/logs/$name.trace" > "$D/logs/$name.report.txt" 2>&1 \
            || fail "no trace of parmod's unit ($(head -n 2 "$D/logs/$name.report.txt"))"
    fi
    local root multi ustart uup
    root=$(ms "$(t 'manager UserspaceTimestampMonotonic')")
    multi=$(ms "$(t 'target multi-user.target' | cut -d' ' -f2)")
    ustart=$(unit $loader start) uup=$(unit $loader up)
    R_ROOT[$v]="${R_ROOT[$v]:-} $root" R_MULTI[$v]="${R_MULTI[$v]:-} $multi" R_UNIT[$v]="${R_UNIT[$v]:-} $(ms "$uup" "$ustart")"
    local ucpu
    ucpu=$(unit $loader cpu | awk '/^[0-9]+$/ { printf "%.0f", $1 / 1e6 }')
    R_UCPU[$v]="${R_UCPU[$v]:-} ${ucpu:-NA}"
    R_OTHER[$v]="${R_OTHER[$v]:-} $OTHER"
    R_MODS[$v]=$(t modules)
    local info="root at $root ms, multi-user at $multi ms, $loader $(ms "$uup" "$ustart") ms (its CPU time ${ucpu:-NA} ms), others used $OTHER CPUs"
    [ "$v" = late ] && info="$info; ${WAITED:-}"
    info="$info; $(grep -m1 '^A: Startup' "$LOG" | sed 's/^A: //')"
    if [ -z "$REASONS" ]; then
        echo "PASS $name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL $name: $REASONS"
        FAILED=$((FAILED + 1))
        echo "----- console log of $name ($LOG) -----"
        grep -v '^\s*$' "$LOG" | tail -n 150
        echo "----- end of $name -----"
    fi
    echo "  $name: $info" >&2
    REASONS="" LOG="" WAITED=""
}

for ((run = 1; run <= BOOTS; run++)); do
    for v in $ONLY; do
        case "$v" in stock|parmod|late) ;; *) echo "systemd: unknown variant $v" >&2; exit 2 ;; esac
        log "boot $v ($run of $BOOTS), load $(cut -d' ' -f1-3 /proc/loadavg)"
        boot_one "$v" "$run"
    done
done

# The same modules of the list's closure after both loaders.
if [ -n "${R_MODS[stock]:-}" ] && [ -n "${R_MODS[parmod]:-}" ]; then
    diff=""
    for m in $CLOSURE; do
        a=no b=no
        echo " ${R_MODS[stock]} " | grep -q " $m " && a=yes
        echo " ${R_MODS[parmod]} " | grep -q " $m " && b=yes
        [ "$a" = "$b" ] || diff="$diff $m(stock:$a,parmod:$b)"
    done
    if [ -z "$diff" ]; then
        echo "PASS same-modules"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL same-modules: loaded after one loader only:$diff"
        FAILED=$((FAILED + 1))
    fi
    extra=$(comm -3 <(echo "${R_MODS[stock]}" | tr ' ' '\n' | sed '/^$/d' | sort) <(echo "${R_MODS[parmod]}" | tr ' ' '\n' | sed '/^$/d' | sort) | tr -d '\t' | tr '\n' ' ')
    log "modules of the list's closure: $(echo "$CLOSURE" | wc -w), the same after both; outside it, after one boot only: ${extra:-none}"
fi

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# keep LIST OTHERS: the values of boots during which others used <= MAX_OTHER
# CPUs (all of them when there is none such).
keep() {
    local kept
    kept=$(paste -d' ' <(echo "$1" | tr ' ' '\n' | sed '/^$/d') <(echo "$2" | tr ' ' '\n' | sed '/^$/d') \
        | awk -v m="$MAX_OTHER" '$2 <= m { print $1 }' | tr '\n' ' ')
    echo "${kept:-$1}"
}
{
    echo "# variant  root_ms  multi_user_ms  unit_ms  unit_cpu_ms: medians of the boots during which others used <= $MAX_OTHER CPUs (all $BOOTS boots when none); then per boot: root | multi-user | unit | unit's CPU time (CPUUsageNSec) | CPUs used by others"
    for v in $ONLY; do
        o=${R_OTHER[$v]:-}
        echo "$v $(keep "${R_ROOT[$v]:-}" "$o" | median) $(keep "${R_MULTI[$v]:-}" "$o" | median) $(keep "${R_UNIT[$v]:-}" "$o" | median) $(keep "${R_UCPU[$v]:-}" "$o" | median)  |${R_ROOT[$v]:-} |${R_MULTI[$v]:-} |${R_UNIT[$v]:-} |${R_UCPU[$v]:-} |$o"
    done
} > "$D/results.txt"
cat "$D/results.txt" >&2
[ -z "$BENCH" ] || { mkdir -p "$(dirname "$BENCH")"; cp "$D/results.txt" "$BENCH"; }
log "$(( $(date +%s) - t_start )) s in all"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
