#!/bin/sh
# Next stage of the hostile-machine scenarios (/sbin/hostile; /sbin/init in
# images where parmod cannot read the kernel command line): makes the image
# usable again where a scenario broke it, reports the tasks parmod left
# behind ("T: task NAME" for every task named pm:*), then runs /sbin/check.
#   /etc/hostile-fs   /dev, /proc or /sys may not be directories: make them
#                     directories and mount them
#   /etc/hostile-tty  PID 1's console was unusable: write to /dev/ttyS0
PATH=/bin:/sbin
export PATH
if [ -f /etc/hostile-fs ]; then
    for d in /dev /proc /sys; do
        if [ ! -d "$d" ] || [ -L "$d" ]; then
            rm -f "$d"
            mkdir "$d"
            echo "$d" >> /tmp/hostile-fixed
        fi
    done
    mount -t devtmpfs devtmpfs /dev 2>/dev/null
fi
if [ -f /etc/hostile-tty ]; then
    exec </dev/null >/dev/ttyS0 2>&1
fi
grep -q ' /proc ' /proc/mounts 2>/dev/null || mount -t proc proc /proc
echo "T: hostile-start pid=$$"
[ -f /tmp/hostile-fixed ] && echo "T: hostile-fixed $(tr '\n' ' ' < /tmp/hostile-fixed)"
for c in /proc/[0-9]*/task/*/comm; do
    n=$(cat "$c" 2>/dev/null)
    case "$n" in pm:*) echo "T: task $n ${c%/comm}" ;; esac
done
exec /sbin/check
