#!/bin/sh
# /init of the coldplug images (qemu-test/coldplug.sh): ONE coldplug loader
# on a fresh kernel, timed from the kernel's log clock, then a report on the
# serial console and power-off.
#
# Kernel command line:
#   cp.variant=parmod     parmod coldplug /etc/parmod.plan (cp.settle=MS: --settle MS,
#                         cp.jobs=N: -j N)
#   cp.variant=udevd      Debian 12's systemd-udevd as Debian's initramfs starts it
#                         (scripts/init-top/udev of initramfs-tools): --daemon
#                         --resolve-names=never, trigger subsystems, trigger devices, settle
#   cp.variant=modprobe   kmod's one-shot: modprobe -q -b -a $(cat every /sys/devices/**/modalias)
#   cp.variant=aliases    parmod coldplug, then the lookups of every modalias in /sys timed:
#                         /bin/aliasbench, /bin/kmodlookup, modprobe -R (T: lookup-*)
#   cp.late=MS            after the loader: wait MS, report the modules again (T: late-modules)
#   cp.aliases=1          print every modalias of /sys/devices (T: modalias ...)
# parmod as the real /init is booted with rdinit=/bin/parmod parmod.coldplug=1
# parmod.next=/sbin/coldplug-report instead: it runs this script's report.
#
# Image: /bin/parmod (/sbin/modprobe -> parmod), /etc/parmod.plan (compiled
# with --all), kmod's modprobe at /usr/sbin/modprobe with its libraries and
# the module tree's index files, udevd and udevadm with the files Debian's
# initramfs-tools hook copies (rules, .link files, ata_id, scsi_id, blkid).
#
# Output: "T: key value" lines: the marks ("[ 3.123456] cp: start|end"),
# the "cpu" line of /proc/stat at each (T: cpu-start, T: cpu-end: how long
# the vCPUs were busy in between), the loader's exit status, /proc/modules, the driver bound to every device
# ("T: drv BUS DEVICE DRIVER"; after cp.late: T: late-modules, T: late-drv and
# the sysfs path of every SCSI device, T: scsi-path), the kernel's complaints, parmod's trace in
# base64.
PATH=/bin:/sbin:/usr/sbin:/usr/bin
export PATH
# drivers PREFIX: "T: PREFIX BUS DEVICE DRIVER" for every device bound.
drivers() {
    for d in /sys/bus/*/devices/*; do
        [ -L "$d/driver" ] || continue
        b=${d#/sys/bus/}
        echo "T: $1 ${b%%/*} ${d##*/} $(basename "$(readlink "$d/driver")")"
    done
}
report() {
    echo "T: cp-rc ${rc:-NA}"
    [ -z "$cpu0" ] || echo "T: cpu-start $cpu0"
    [ -z "$cpu1" ] || echo "T: cpu-end $cpu1"
    dmesg | grep 'cp: \(start\|end\)$' | sed 's/^/T: mark /'
    echo "T: modules $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
    echo "T: module-count $(grep -c . /proc/modules)"
    drivers drv
    if [ -n "$late" ] && [ "$late" != 0 ]; then
        usleep $((late * 1000))
        echo "T: late-modules $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
        drivers late-drv
        for d in /sys/bus/scsi/devices/*:*:*:*; do
            [ -e "$d" ] && echo "T: scsi-path ${d##*/} $(readlink -f "$d" | sed 's,^/sys/devices/,,')"
        done
    fi
    if [ "$aliases" = 1 ]; then
        find /sys/devices -name uevent -exec sed -n 's/^MODALIAS=\(..*\)/T: modalias \1/p' {} + | sort -u
    fi
    dmesg | grep -i -E 'Unknown symbol|failed|error|parmod' | grep -v 'cp: ' | head -n 40 | sed 's/^/K: /'
    if [ -f /run/parmod.trace ]; then
        echo "T: trace-begin"
        base64 /run/parmod.trace
        echo "T: trace-end"
    fi
    echo "T: cp-done $(cut -d' ' -f1 /proc/uptime)"
    sync
    poweroff -f
}
grep -q ' /proc ' /proc/mounts 2>/dev/null || mount -t proc proc /proc
grep -q ' /sys ' /proc/mounts || mount -t sysfs sysfs /sys
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
grep -q ' /run ' /proc/mounts || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
v="" settle="" jobs="" late="" aliases=""
for w in $(cat /proc/cmdline); do
    case "$w" in
        cp.variant=*) v=${w#*=} ;;
        cp.settle=*) settle=${w#*=} ;;
        cp.jobs=*) jobs=${w#*=} ;;
        cp.late=*) late=${w#*=} ;;
        cp.aliases=*) aliases=${w#*=} ;;
    esac
done
# The next stage after parmod as /init: only the report.
if [ "$(basename "$0")" = coldplug-report ]; then
    echo "T: cp-variant parmod-init"
    report
fi
echo "T: cp-variant $v"
echo "T: cp-ready $(cut -d' ' -f1 /proc/uptime) nproc=$(grep -c '^processor' /proc/cpuinfo)"
# The mark in the kernel log, and the CPU times (USER_HZ ticks) of /proc/stat.
cpu0="" cpu1=""
mark() {
    echo "cp: $1" > /dev/kmsg
    if [ "$1" = start ]; then cpu0=$(sed -n 's/^cpu  *//p' /proc/stat); else cpu1=$(sed -n 's/^cpu  *//p' /proc/stat); fi
}
rc=0
case "$v" in
    parmod)
        opts=""
        [ -z "$settle" ] || opts="$opts --settle $settle"
        [ -z "$jobs" ] || opts="$opts -j $jobs"
        mark start
        # shellcheck disable=SC2086
        /bin/parmod coldplug --trace /run/parmod.trace $opts /etc/parmod.plan || rc=$?
        mark end
        ;;
    udevd)
        # request_module() from an init goes to kmod's modprobe, as on Debian.
        echo /usr/sbin/modprobe > /proc/sys/kernel/modprobe
        mark start
        SYSTEMD_LOG_LEVEL=notice /lib/systemd/systemd-udevd --daemon --resolve-names=never || rc=$?
        udevadm trigger --type=subsystems --action=add
        udevadm trigger --type=devices --action=add
        udevadm settle || rc=$?
        mark end
        ;;
    modprobe)
        echo /usr/sbin/modprobe > /proc/sys/kernel/modprobe
        mark start
        # shellcheck disable=SC2046
        /usr/sbin/modprobe -q -b -a $(find /sys/devices -name modalias -exec cat {} +) || rc=$?
        mark end
        ;;
    aliases)
        # The lookups alone, once parmod has coldplugged (so that the
        # devices that appear only after a driver bound are there too).
        /bin/parmod coldplug /etc/parmod.plan >/dev/null 2>&1 || rc=$?
        find /sys/devices -name uevent -exec sed -n 's/^MODALIAS=\(..*\)/\1/p' {} + | sort -u > /tmp/modaliases
        sed 's/^/T: modalias /' /tmp/modaliases
        echo "T: lookup-parmod $(/bin/aliasbench /etc/parmod.plan /tmp/modaliases 20)"
        echo "T: lookup-libkmod $(/bin/kmodlookup "/lib/modules/$(uname -r)" /etc/modprobe.d /tmp/modaliases 20)"
        t0=$(cut -d' ' -f1 /proc/uptime)
        while read -r a; do /usr/sbin/modprobe -R "$a" >/dev/null 2>&1; done < /tmp/modaliases
        echo "T: lookup-modprobe $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms (10 ms steps)"
        ;;
    *)
        echo "T: cp-error unknown variant '$v'"
        ;;
esac
report
