#!/bin/sh
# /init of the test images while parmod runs as a plain command ("script
# mode"): mount, run parmod on /etc/parmod.plan with the arguments in
# /etc/parmod-args, report its exit status, then exec /etc/next (default
# /sbin/check) as PID 1.
PATH=/bin:/sbin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
args=$(cat /etc/parmod-args 2>/dev/null)
next=$(cat /etc/next 2>/dev/null)
[ -n "$next" ] || next=/sbin/check
echo "T: parmod-start $(cut -d' ' -f1 /proc/uptime)"
# shellcheck disable=SC2086
/bin/parmod --force $args /etc/parmod.plan
echo "T: parmod-exit $?"
echo "T: parmod-end $(cut -d' ' -f1 /proc/uptime)"
exec "$next"
