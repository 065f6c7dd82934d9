#!/bin/bash
# Where the kernel serialises parallel loads: boots the real module set with
# tracefs kprobes on the ftrace_lock sections of load_module and the lock
# contention events, and reports each module's serial phase and who waited
# on what, for how long. Run as root.
#
#   qemu-test/lock-trace.sh [--jobs N]... [--out DIR] [--tag TAG]
#
# --jobs N: one traced boot of `parmod -j N` per value given (0: parmod's
# default); default: 1 and 0. KVER= picks the kernel (6.1, 6.12 or a
# version, as for the other scripts); LT_MODULES= the requested modules
# (default: bench.sh's real set).
#
# How: the kernel's ftrace functions are built without fentry, so kprobes
# refuse their entries (CONFIG_KPROBE_EVENTS_ON_NOTRACE is off); the probes
# sit on the call instructions in load_module, prepare_coming_module and
# do_init_module instead (their argument, the module, is in %rdi there) and
# on the instruction after each. The call sites come from a disassembly of
# the guest's vmlinux (extracted from the bzImage) at the addresses the
# guest's /proc/kallsyms gives with nokaslr (one boot, cached). Kprobe
# optimisation is off (it patches under text_mutex) and the function tracer
# is never used (enabled_functions must stay empty). Lock addresses come from
# /proc/kallsyms; lock:contention_begin/end are filtered to them.
#
# Output in DIR (default build/lock-trace/KVER): jN.ftrace.txt (the trace),
# jN.trace (parmod's), jN.report.txt (printed), jN.phases.tsv (its
# per-module table), the console logs; with --tag, TAG-jN.* (to keep runs
# of other parmod binaries: PARMOD=... PARMOD_PLAN=...). After a -j 1 boot,
# qemu-test/lock-bound.sh's lower bound from it, in jN.bound.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

JOBS=() OUT="" TAG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --jobs) JOBS+=("$2"); shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --tag) TAG=$2-; shift 2 ;;
        *) qt_usage ;;
    esac
done
[ ${#JOBS[@]} -gt 0 ] || JOBS=(1 0)
qt_need_root "mknod in the image"
qt_kernel --arch x86_64
qt_busybox --arch x86_64
W=${OUT:-$QT_REPO/build/lock-trace/$KVER}
mkdir -p "$W"
qt_binaries --arch x86_64 "$W/build.log"
qt_packages binutils
MODULES=${LT_MODULES:-$(qt_bench_list REAL_SET)}
[ -n "$MODULES" ] || qt_die "no module list (LT_MODULES, or REAL_SET in bench.sh)"
# What the kernel requests for the real set (bench.sh's REAL_ON_REQUEST), in the image too.
ON_REQUEST=""
[ -n "${LT_MODULES:-}" ] || ON_REQUEST=$(qt_bench_list REAL_ON_REQUEST)

ROOT=$W/root
if [ ! -d "$ROOT/lib/modules/$KVER" ]; then
    qt_log "staging the module tree of $KVER"
    qt_stage "$ROOT"
fi
# shellcheck disable=SC2086
"$PARMOD_PLAN" compile --root "$ROOT" --kver "$KVER" -o "$W/real.plan" ${ON_REQUEST:+--on-request "${ON_REQUEST// /,}"} $MODULES >"$W/plan.log" 2>&1 ||
    { cat "$W/plan.log" >&2; qt_die "compile failed"; }

image() { # OUT PROBES
    "$QT_REPO/initramfs/mkinitramfs.sh" --kver "$KVER" --modules-dir "$ROOT/lib/modules/$KVER" --plan "$W/real.plan" \
        --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" --busybox --init-script "$QT_HERE/guest/lock-trace-init.sh" \
        --extra "$2:/etc/lock-trace.probes" -o "$1" 2>"$1.log" || { cat "$1.log" >&2; qt_die "image failed"; }
}

# --- the guest's vmlinux and symbol addresses (nokaslr) ------------------------
VMLINUX=$W/vmlinux
if [ ! -s "$VMLINUX" ]; then
    qt_log "extracting vmlinux from $KERNEL"
    for c in 'xz:\xfd\x37\x7a\x58\x5a\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
        off=$(LC_ALL=C grep -obUaP "${c#*:}" "$KERNEL" | head -n1 | cut -d: -f1 || true)
        [ -n "$off" ] || continue
        tail -c +$((off + 1)) "$KERNEL" | "${c%%:*}" -dc >"$VMLINUX" 2>/dev/null || true
        file "$VMLINUX" | grep -q 'ELF 64-bit' && break
        rm -f "$VMLINUX"
    done
    [ -s "$VMLINUX" ] || qt_die "cannot extract an ELF vmlinux from $KERNEL"
fi
SYMS=$W/kallsyms
if [ ! -s "$SYMS" ]; then
    qt_log "reading symbol addresses (one boot)"
    : >"$W/none.probes"
    image "$W/syms.img" "$W/none.probes"
    qt_boot --arch x86_64 --initrd "$W/syms.img" --log "$W/syms.console" --timeout 120 \
        --append "lt.mode=syms nokaslr" -- -cpu max || true
    # (the first line may follow the firmware's escape sequences)
    sed -n '/T: syms-begin$/,/^T: syms-end$/{/T: syms-/!p}' "$W/syms.console" | base64 -d | gunzip >"$SYMS.tmp" ||
        qt_die "the symbol boot printed no symbols ($W/syms.console)"
    mv "$SYMS.tmp" "$SYMS"
fi
sym() { awk -v s="$1" '$3 == s { print $1; exit }' "$SYMS"; }

# --- probes on the call sites ------------------------------------------------------
# Every call of the four functions in the kernel's text, with the next
# instruction; each is placed in the function holding it (kallsyms is
# sorted by address, and hex addresses of one length compare as strings).
PROBES=$W/lock-trace.probes
targets=""
for callee in ftrace_module_init ftrace_module_enable ftrace_free_mem ftrace_release_mod; do
    t=$(sym "$callee")
    [ -n "$t" ] || qt_die "no $callee in the guest's kallsyms"
    targets="$targets $callee=$t"
done
text=$(readelf -SW "$VMLINUX" | awk '{ for (i = 1; i < NF; i++) if ($i == ".text") { print $(i + 2), $(i + 4); exit } }')
objdump -d --no-show-raw-insn --start-address=0x"${text% *}" --stop-address=0x"$(printf %x $((16#${text% *} + 16#${text#* })))" "$VMLINUX" |
    grep -A1 -E "call +0x($(echo "$targets" | sed 's/ [a-z_]*=/|/g; s/^|//'))$" |
    awk -v targets="$targets" -v syms="$SYMS" '
        # the low 32 bits of a hex address (awk numbers are doubles)
        function low(s,   i, n) { n = 0; s = substr(tolower(s), length(s) - 7); for (i = 1; i <= 8; i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return n }
        BEGIN {
            n = split(targets, a, " ")
            for (i = 1; i <= n; i++) { split(a[i], kv, "="); short = kv[1]; sub(/^ftrace_/, "", short); name["0x" kv[2]] = short }
            while ((getline line < syms) > 0) { split(line, f, " "); if (f[2] ~ /^[tT]$/) { ns++; sa[ns] = f[1]; sn[ns] = f[3] } }
        }
        function holder(addr,   lo, hi, mid) { lo = 1; hi = ns; while (lo < hi) { mid = int((lo + hi + 1) / 2); if (sa[mid] <= addr) lo = mid; else hi = mid - 1 }; return lo }
        # (in the loader only: delete_module is no place for kprobes)
        $2 ~ /^call/ && ($3 in name) {
            addr = $1; sub(/:$/, "", addr); h = holder(addr)
            if (sn[h] !~ /^(load_module|do_init_module)([.]|$)/) next
            ev = name[$3]; k[ev]++
            if (k[ev] > 1) ev = ev k[ev]
            printf "p:lt/%s %s+0x%x name=+24(%%di):string\n", ev, sn[h], low(addr) - low(sa[h])
            want = ev; next
        }
        want != "" && /^ *[0-9a-f]+:/ {
            addr = $1; sub(/:$/, "", addr); h = holder(addr)
            printf "p:lt/%s_ret %s+0x%x\n", want, sn[h], low(addr) - low(sa[h]); want = ""
        }' >"$PROBES"
grep -q '^p:lt/module_enable ' "$PROBES" && grep -q '^p:lt/module_init ' "$PROBES" ||
    qt_die "no call of ftrace_module_init/ftrace_module_enable in the kernel's text ($PROBES)"
qt_log "probes: $(cut -d' ' -f1,2 "$PROBES" | tr '\n' ';')"
image "$W/trace.img" "$PROBES"

# --- the traced boots -----------------------------------------------------------
for j in "${JOBS[@]}"; do
    J=$W/${TAG}j$j
    log=$J.console
    qt_log "boot: parmod $([ "$j" = 0 ] && echo "(default jobs)" || echo "-j $j"); load: $(cut -d' ' -f1-3 /proc/loadavg)"
    qt_boot --arch x86_64 --initrd "$W/trace.img" --log "$log" --timeout 400 --mem 2048 \
        --append "lt.mode=trace lt.jobs=$j nokaslr no_hash_pointers" -- -cpu max || true
    grep '^T: lock-trace-error' "$log" >&2 || true
    [ "$(sed -n 's/^T: enabled-functions //p' "$log")" = 0 ] || qt_die "functions traced through ftrace ($log)"
    sed -n '/^T: ftrace-begin$/,/^T: ftrace-end$/p' "$log" | grep -v '^T: ' | base64 -d | gunzip >"$J.ftrace.txt" ||
        qt_die "no trace in $log"
    qt_trace "$log" "$J.trace" || qt_log "no parmod trace in $log"
    {
        echo "parmod $([ "$j" = 0 ] && echo "default jobs" || echo "-j $j"), kernel $KVER, $(sed -n 's/^T: cpus //p' "$log") vCPUs (TCG), $(date -u +%F), host load $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "modules loaded: $(sed -n 's/^T: module-count //p' "$log"); parmod exit $(sed -n 's/^T: rc //p' "$log"); $(sed -n 's/^T: lost-events //p' "$log")"
        awk -v locks="$(grep -o 'T: lock [a-z_]* 0x[0-9a-f]*' "$log" | cut -d' ' -f3,4 | tr '\n' ' ')" -v tsv="$J.phases.tsv" -f "$QT_HERE/lock-trace.awk" "$J.ftrace.txt"
    } >"$J.report.txt"
    cat "$J.report.txt"
done
# the lower bound from the one-at-a-time boot
if [[ " ${JOBS[*]} " == *" 1 "* ]]; then
    "$QT_HERE/lock-bound.sh" --run "${TAG}j1" "$W" | tee "$W/${TAG}j1.bound.txt" ||
        qt_log "no bound from ${TAG}j1 (qemu-test/lock-bound.sh $W)"
fi
