#!/bin/sh
# /init of the lock-trace images (qemu-test/lock-trace.sh): runs one loader
# under tracefs and prints the trace, then powers off.
#
# Kernel command line:
#   lt.mode=syms    print the kernel's /proc/kallsyms (gzipped, base64)
#   lt.mode=trace   trace one parmod run of /etc/parmod.plan: lt.jobs=N
#                   (parmod -j N; 0 or absent: parmod's default)
# Image: /etc/lock-trace.probes (kprobe_events lines built by the host from
# a disassembly), /etc/parmod.plan, parmod at /bin/parmod.
#
# Traced: the kprobes (call sites of ftrace_module_init, ftrace_module_enable,
# ftrace_free_mem and ftrace_release_mod, and the instruction after each),
# lock:contention_begin/end for the locks in LOCKS below, sched:sched_switch
# (who runs on each CPU) and module:module_load. No function tracer: it
# would change the code path. Output: "T: key value" lines, the trace text
# gzipped in base64 between "T: ftrace-begin" and "T: ftrace-end", parmod's
# trace between "T: trace-begin" and "T: trace-end".
PATH=/bin:/sbin:/usr/sbin:/usr/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mode="" j=0
for w in $(cat /proc/cmdline); do
    case "$w" in
        lt.mode=*) mode=${w#*=} ;;
        lt.jobs=*) j=${w#*=} ;;
    esac
done
LOCKS="ftrace_lock module_mutex text_mutex static_call_mutex"
finish() {
    sync
    poweroff -f
}
if [ "$mode" = syms ]; then
    # The kernel's own symbols (not the modules'), for the host's disassembly.
    echo "T: syms-begin"
    awk 'NF == 3' /proc/kallsyms | gzip -c | base64
    echo "T: syms-end"
    echo "T: syms-done"
    finish
fi

T=/sys/kernel/tracing
mount -t tracefs tracefs $T 2>/dev/null || mount -t debugfs debugfs /sys/kernel/debug
[ -d $T/events ] || T=/sys/kernel/debug/tracing
err() { echo "T: lock-trace-error $*"; }
# An optimised kprobe is a jump patched in under text_mutex: keep them int3.
echo 0 > /proc/sys/debug/kprobes-optimization || err "kprobes-optimization"
echo mono > $T/trace_clock || err "trace_clock mono"
echo 32768 > $T/buffer_size_kb || err "buffer_size_kb"
while read -r line; do
    [ -n "$line" ] || continue
    echo "$line" >> $T/kprobe_events || err "kprobe refused: $line"
done < /etc/lock-trace.probes
filter=""
for l in $LOCKS; do
    a=$(awk -v s="$l" '$3 == s { print $1; exit }' /proc/kallsyms)
    [ -n "$a" ] || { err "no symbol $l"; continue; }
    echo "T: lock $l 0x$a"
    filter="${filter:+$filter || }lock_addr == 0x$a"
done
for e in contention_begin contention_end; do
    echo "$filter" > $T/events/lock/$e/filter || err "filter $e"
    echo 1 > $T/events/lock/$e/enable || err "enable $e"
done
for e in $T/events/lt/*/enable; do
    echo 1 > "$e" || err "cannot enable kprobe $(basename "$(dirname "$e")")"
done
echo 1 > $T/events/sched/sched_switch/enable || err "enable sched_switch"
echo 1 > $T/events/module/module_load/enable || err "enable module_load"
# Nothing may run through ftrace: every probe is an int3 kprobe.
echo "T: enabled-functions $(grep -c . $T/enabled_functions)"
echo "T: kprobes $(grep -c . $T/kprobe_events)"
mark() { echo "lock-trace: $1" > /dev/kmsg; }
rc=0
jobs=""
[ "$j" -gt 0 ] && jobs="-j $j"
echo 1 > $T/tracing_on
mark start
# shellcheck disable=SC2086
/bin/parmod --force $jobs --trace /run/parmod.trace /etc/parmod.plan || rc=$?
mark end
echo 0 > $T/tracing_on
echo "T: rc $rc"
echo "T: cpus $(grep -c '^processor' /proc/cpuinfo)"
echo "T: module-count $(grep -c . /proc/modules)"
echo "T: lost-events $(grep -o 'entries-in-buffer/entries-written: [0-9]*/[0-9]*' $T/trace | head -n1)"
dmesg | grep 'lock-trace: \(start\|end\)$' | sed 's/^/T: mark /'
echo "T: ftrace-begin"
grep -v '^#' $T/trace | gzip -c | base64
echo "T: ftrace-end"
if [ -f /run/parmod.trace ]; then
    echo "T: trace-begin"
    base64 /run/parmod.trace
    echo "T: trace-end"
fi
finish
