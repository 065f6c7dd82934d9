#!/bin/sh
# The boot checks of qemu-test/systemd.sh, run inside the booted Debian
# system by parmod-boot-check.service: wait for the boot to finish, report
# "T: key value" facts on the serial console, then power off.
exec >/dev/ttyS0 2>&1
state=$(systemctl is-system-running --wait)
echo "T: state $state"
echo "T: failed-units $(systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
echo "T: cmdline $(cat /proc/cmdline)"
for p in InitRDTimestampMonotonic UserspaceTimestampMonotonic FinishTimestampMonotonic; do
    echo "T: manager $p $(systemctl show -P "$p")"
done
echo "T: target multi-user.target $(systemctl is-active multi-user.target) $(systemctl show -P ActiveEnterTimestampMonotonic multi-user.target)"
for u in systemd-modules-load.service parmod-modules-load.service pm-late-user.service; do
    # cpu: the CPU time of the unit's processes (CPUUsageNSec), which for a
    # module loader includes the kernel's work in finit_module.
    printf 'T: unit %s active=%s condition=%s result=%s start=%s main=%s up=%s cpu=%s\n' "$u" \
        "$(systemctl is-active "$u")" "$(systemctl show -P ConditionResult "$u")" \
        "$(systemctl show -P Result "$u")" "$(systemctl show -P InactiveExitTimestampMonotonic "$u")" \
        "$(systemctl show -P ExecMainStartTimestampMonotonic "$u")" "$(systemctl show -P ActiveEnterTimestampMonotonic "$u")" \
        "$(systemctl show -P CPUUsageNSec "$u")"
done
echo "T: modules $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
echo "T: run mode=$(stat -c %a /run) $(grep ' /run ' /proc/mounts | head -n1)"
echo "T: initrd-release $([ -e /etc/initrd-release ] && echo present || echo absent)"
echo "T: initramfs-left $([ -e /init ] && echo /init || echo none)"
systemd-analyze time 2>&1 | sed 's/^/A: /'
systemd-analyze blame 2>&1 | head -n 40 | sed 's/^/B: /'
journalctl -b -o cat -u parmod-modules-load.service -u systemd-modules-load.service -u pm-late-user.service 2>&1 | sed 's/^/J: /'
dmesg | grep -E 'pm_fixture|parmod' | sed 's/^/K: /'
if [ -f /run/parmod/trace ]; then
    echo "T: trace-begin"
    base64 /run/parmod/trace
    echo "T: trace-end"
fi
echo "T: check-done"
systemctl poweroff
