#!/bin/sh
# Next stage of the coldplug-flood scenario (/sbin/flood): runs `parmod
# coldplug` as a command while the pm_flood fixture floods the uevent
# socket, first with parmod running, then with parmod stopped (SIGSTOP) so
# that its receive buffer overflows; reports parmod's memory after each,
# how it ended and what it said, then runs /sbin/check.
#   /etc/flood-sizes  "N1 N2": the devices each flood adds and removes
# (/proc, /sys and /dev are mounted: by parmod as /init, or by init.sh.)
PATH=/bin:/sbin
export PATH
up() { cut -d' ' -f1 /proc/uptime; }
# A process's address space (VmSize) and resident set (Rss of smaps_rollup,
# which walks the page tables: 6.1's VmRSS lags by up to 64 pages), in kB.
mem() {
    echo $(sed -n 's/^VmSize:[^0-9]*\([0-9]*\) kB$/VmSize=\1/p' "/proc/$1/status") \
        $(sed -n 's/^Rss:[^0-9]*\([0-9]*\) kB$/Rss=\1/p' "/proc/$1/smaps_rollup")
}
read -r n1 n2 < /etc/flood-sizes
param=/sys/module/pm_flood/parameters/flood
parmod coldplug --settle 3000 --timeout 150000 /etc/parmod.plan > /tmp/coldplug.out 2>&1 &
pid=$!
insmod "/lib/modules/$(uname -r)/extra/parmod/pm_flood.ko" || echo "T: flood-error insmod pm_flood failed"
usleep 300000
echo "T: flood-mem start $(mem $pid)"
echo "T: flood-1 start $(up)"
echo "$n1" > "$param" || echo "T: flood-error flood 1 failed"
echo "T: flood-1 end $(up)"
echo "T: flood-mem after-1 $(mem $pid)"
kill -STOP "$pid"
echo "T: flood-2 start $(up) (parmod stopped)"
echo "$n2" > "$param" || echo "T: flood-error flood 2 failed"
echo "T: flood-2 end $(up)"
kill -CONT "$pid"
# Sample until it ends (settled: 3 s after the last device or load).
last=""
while [ -d "/proc/$pid" ] && grep -q '^State:.*[RS]' "/proc/$pid/status" 2>/dev/null; do
    m=$(mem $pid)
    [ -n "$m" ] && last=$m
    usleep 200000
done
echo "T: flood-mem after-2 $last"
wait "$pid"
echo "T: coldplug-exit $? $(up)"
sed 's/^/T: coldplug-out /' /tmp/coldplug.out
echo "T: flood-done $(cat "$param")"
exec /sbin/check
