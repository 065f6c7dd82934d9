#!/bin/sh
# /init of the benchmark images (qemu-test/bench.sh): runs ONE loader variant
# on a fresh kernel, times it, reports, powers off.
#
# Kernel command line: bench.variant=modprobe-a|kmod-modprobe-a|systemd-modules-load|
#                      busybox|xargs|parmod|parmod-profile
#                      bench.jobs=N (xargs -P N, parmod -j N; 0: parmod's default)
# Image: /etc/bench-modules (the requested names, one line), the same names
# in /etc/modules-load.d/bench.conf, /etc/parmod.plan,
# /etc/parmod-profile.plan, kmod's modprobe at /usr/sbin/modprobe (with its
# libraries), the newest kmod in /opt/kmod and systemd-modules-load in
# /opt/systemd (each with its own loader and libraries: qemu-test/peers.sh),
# busybox's modprobe at /opt/bb/modprobe, parmod at /bin/parmod
# (/sbin/modprobe -> parmod).
#
# The time is taken from the kernel's log clock: a line written to /dev/kmsg
# right before and right after the variant (µs resolution, same clock for all
# variants; fork/exec of the loader is included for every one of them).
# Output (serial console): "T: key value" lines, the trace in base64.
PATH=/bin:/sbin:/usr/sbin:/usr/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
v="" j=1
for w in $(cat /proc/cmdline); do
    case "$w" in
        bench.variant=*) v=${w#*=} ;;
        bench.jobs=*) j=${w#*=} ;;
    esac
done
list=$(cat /etc/bench-modules)
echo "T: bench-ready $(cut -d' ' -f1 /proc/uptime) variant=$v jobs=$j"
# The "cpu" line of /proc/stat at each mark: how long the vCPUs were busy in between.
mark() {
    if [ "$1" = end ]; then cpu1=$(sed -n 's/^cpu  *//p;q' /proc/stat); fi
    echo "bench: $1" > /dev/kmsg
    if [ "$1" = start ]; then cpu0=$(sed -n 's/^cpu  *//p;q' /proc/stat); fi
}
rc=0
case "$v" in
    modprobe-a)
        # request_module() from an init goes to the same modprobe.
        echo /usr/sbin/modprobe > /proc/sys/kernel/modprobe
        mark start
        # shellcheck disable=SC2086
        /usr/sbin/modprobe -a $list || rc=$?
        mark end
        ;;
    kmod-modprobe-a)
        echo /opt/kmod/bin/modprobe > /proc/sys/kernel/modprobe
        mark start
        # shellcheck disable=SC2086
        /opt/kmod/lib/ld-linux-x86-64.so.2 --library-path /opt/kmod/lib --argv0 modprobe \
            /opt/kmod/bin/kmod -a $list || rc=$?
        mark end
        ;;
    systemd-modules-load)
        # As systemd-modules-load.service runs it: no arguments, the names
        # from modules-load.d, as many probe threads as it picks itself
        # (online CPUs, at most 16); its log to /dev/kmsg.
        echo /opt/kmod/bin/modprobe > /proc/sys/kernel/modprobe
        mark start
        SYSTEMD_LOG_TARGET=kmsg /opt/systemd/lib/ld-linux-x86-64.so.2 --library-path /opt/systemd/lib \
            /opt/systemd/bin/systemd-modules-load || rc=$?
        mark end
        dmesg | grep 'systemd-modules-load\[' | grep -v 'Inserted module' | sed 's/^/T: sdml /'
        ;;
    busybox)
        echo /opt/bb/modprobe > /proc/sys/kernel/modprobe
        mark start
        for m in $list; do
            /opt/bb/modprobe "$m" || rc=$?
        done
        mark end
        ;;
    xargs)
        echo /usr/sbin/modprobe > /proc/sys/kernel/modprobe
        mark start
        echo "$list" | tr ' ' '\n' | xargs -n1 -P "$j" /usr/sbin/modprobe || rc=$?
        mark end
        ;;
    parmod|parmod-profile)
        plan=/etc/parmod.plan
        [ "$v" = parmod-profile ] && plan=/etc/parmod-profile.plan
        # /sbin/modprobe is parmod's modprobe personality (the default helper).
        jobs=""
        [ "$j" = 0 ] || jobs="-j $j"
        mark start
        # shellcheck disable=SC2086
        /bin/parmod --force $jobs --trace /run/parmod.trace "$plan" || rc=$?
        mark end
        ;;
    *)
        echo "T: bench-error unknown variant '$v'"
        ;;
esac
echo "T: bench-rc $rc"
echo "T: bench-nproc $(grep -c '^processor' /proc/cpuinfo)"
[ -z "${cpu0:-}" ] || echo "T: cpu-start $cpu0"
[ -z "${cpu1:-}" ] || echo "T: cpu-end $cpu1"
# The two marks with their kernel time stamps ("[    3.123456] bench: start").
dmesg | grep 'bench: \(start\|end\)$' | sed 's/^/T: mark /'
echo "T: modules $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
echo "T: module-count $(grep -c . /proc/modules)"
dmesg | grep -i -E 'Unknown symbol|failed|error' | grep -v 'bench:' | head -n 20 | sed 's/^/K: /'
if [ -f /run/parmod.trace ]; then
    echo "T: trace-begin"
    base64 /run/parmod.trace
    echo "T: trace-end"
fi
echo "T: bench-done $(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
