#!/bin/sh
# Next stage after parmod in the test images (/sbin/check): reports what the
# host-side checks need as "T: key value" lines, then powers off.
#   /etc/check-wait  optional, lines "PATH TIMEOUT_MS": wait for each path
#                    (the last component may be a glob) and report when it showed up.
#   /etc/check-modprobe  optional, one modprobe argument list a line: run
#                    /sbin/modprobe with it and report the exit status.
#   /etc/check-trace optional, a path: print that file in base64 between
#                    "T: trace-begin" and "T: trace-end".
PATH=/bin:/sbin
export PATH
grep -q ' /proc ' /proc/mounts 2>/dev/null || mount -t proc proc /proc
grep -q ' /sys ' /proc/mounts || mount -t sysfs sysfs /sys
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
up() { cut -d' ' -f1 /proc/uptime; }
echo "T: next-start $(up) pid=$$ init=$(cat /proc/1/comm)"
exists() { for f in $1; do [ -e "$f" ] && return 0; done; return 1; }
if [ -f /etc/check-wait ]; then
    while read -r p t; do
        [ -n "$p" ] || continue
        n=0
        while ! exists "$p" && [ "$n" -lt "$t" ]; do usleep 20000; n=$((n + 20)); done
        if exists "$p"; then echo "T: appeared $p after ${n}ms"; else echo "T: missing $p after ${n}ms"; fi
    done < /etc/check-wait
fi
if [ -f /etc/check-modprobe ]; then
    while read -r line; do
        [ -n "$line" ] || continue
        # shellcheck disable=SC2086
        /sbin/modprobe $line
        echo "T: modprobe $line => $?"
    done < /etc/check-modprobe
fi
echo "T: modules $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
for f in /sys/module/pm_params/parameters/*; do
    [ -f "$f" ] && echo "T: param $(basename "$f")=$(cat "$f")"
done
echo "T: modprobe-helper $(cat /proc/sys/kernel/modprobe)"
echo "T: tainted $(cat /proc/sys/kernel/tainted)"
echo "T: net $(ls /sys/class/net 2>/dev/null | tr '\n' ' ')"
echo "T: dev $(ls /dev | tr '\n' ' ')"
echo "T: devsnd $(ls /dev/snd 2>/dev/null | tr '\n' ' ')"
echo "T: devdri $(ls /dev/dri 2>/dev/null | tr '\n' ' ')"
dmesg | grep -E 'pm_fixture|parmod|taint|Unknown symbol|snd_hda|hda_codec|bochs|e1000|virtio_blk|usb-storage|sd [0-9]' | sed 's/^/K: /'
if [ -f /etc/check-trace ]; then
    tr=$(cat /etc/check-trace)
    if [ -f "$tr" ]; then
        echo "T: trace-size $(wc -c < "$tr")"
        echo "T: trace-begin"
        base64 "$tr"
        echo "T: trace-end"
    else
        echo "T: trace-missing $tr"
    fi
fi
echo "T: check-done $(up)"
sync
poweroff -f
