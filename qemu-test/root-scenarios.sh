# The hand-over to a real root: scenarios of the boot suite, sourced by
# run.sh (which, with lib.sh, defines plan, image, boot, t, fail, finish,
# skip, has_module, qt_boot, $W, $ROOT, $MODDIR, $KVER, $MODE, $QT_HERE). Each boots parmod as /init with
# root= on the command line and a virtio disk (opened with snapshot=on):
#
#   root-switch         LABEL= root on an ext4 partition: mounted, /dev /proc /sys /run
#                       moved, the initramfs deleted, init= run as PID 1; pm_late_fw
#                       requests its firmware late_ms after its init returned, after
#                       the switch: it gets the real root's /lib/firmware file
#   root-mount-fail     the partition holds no file system: "cannot mount", then rescue
#   root-no-init        init= names no file on the root: said, then rescue
#   root-missing        root=PARTUUID= of no partition, rootwait=3: the message names
#                       what was awaited and the block devices there are, then rescue
#   root-missing-sleep  the same without parmod.rescue=: the message and the endless
#                       sleep; PID 1 does not exit (no panic) until QEMU is stopped
#   root-firmware-early pm_late_fw asks for its firmware right after its init, before
#                       the switch: the copy mkinitramfs.sh --firmware put in the image

ROOT_PARTUUID=3b8f2a10-6c4d-4e5f-8a9b-0c1d2e3f4a5b
BLANK_PARTUUID=7e6d5c4b-3a29-4817-9605-f4e3d2c1b0a9

# mk_disk IMG PARTUUID [TREE]: a 64 MiB GPT disk, one partition; with TREE an
# ext4 file system (LABEL pmroot) made from it by mkfs.ext4 -d, else zeros.
mk_disk() {
    local img=$1 uuid=$2 tree=${3:-}
    rm -f "$img" "$img.fs"
    truncate -s 64M "$img"
    printf 'label: gpt\nstart=2048, size=%s, type=linux, uuid=%s, name=pmroot\n' $(( 62 * 2048 )) "$uuid" \
        | sfdisk -q "$img" || return 1
    if [ -n "$tree" ]; then
        mkfs.ext4 -q -F -d "$tree" -L pmroot -E root_owner=0:0 "$img.fs" 62M >/dev/null || return 1
        dd if="$img.fs" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none || return 1
        rm -f "$img.fs"
    fi
}

# The real root: busybox, the check script as /sbin/check, /sbin/root-init
# (reports, waits for pm_late_fw's firmware request, then runs the checks),
# the firmware file.
# Made once per run of the suite.
ROOT_DISKS=""
root_disks() {
    [ -z "$ROOT_DISKS" ] || return 0
    local tree=$W/root-tree bb a
    rm -rf "$tree"
    mkdir -p "$tree"/{bin,sbin,etc,dev,proc,sys,run,tmp,root,lib/firmware}
    bb=$(command -v busybox) || { echo "run: busybox not found" >&2; return 1; }
    install -m 755 "$bb" "$tree/bin/busybox"
    for a in $("$tree/bin/busybox" --list); do
        [ "$a" = busybox ] || [ "$a" = modprobe ] || ln -sf busybox "$tree/bin/$a"
    done
    install -m 755 "$QT_HERE/guest/check.sh" "$tree/sbin/check"
    cat > "$tree/sbin/root-init" <<'EOS'
#!/bin/sh
PATH=/bin:/sbin
export PATH
echo "T: root-init pid=$$ up=$(cut -d' ' -f1 /proc/uptime) initramfs-init=$([ -e /init ] && echo present || echo gone) fs=$(stat -f -c %T /) run=$(grep ' /run ' /proc/mounts | cut -d' ' -f3,4)"
# pm_late_fw asks for its firmware late_ms after its init: wait for that (15 s at most).
n=0
while ! dmesg | grep -q 'pm_late_fw firmware' && [ "$n" -lt 150 ]; do usleep 100000; n=$((n + 1)); done
exec /sbin/check
EOS
    chmod 755 "$tree/sbin/root-init"
    printf 'pm_late_fw from the real root\n' > "$tree/lib/firmware/pm_late_fw.bin"
    # The staging tree's copy, which mkinitramfs.sh --firmware puts in an image.
    mkdir -p "$ROOT/lib/firmware"
    printf 'initramfs: pm_late_fw firmware\n' > "$ROOT/lib/firmware/pm_late_fw.bin"
    mk_disk "$W/img/root-disk.img" "$ROOT_PARTUUID" "$tree" && mk_disk "$W/img/blank-disk.img" "$BLANK_PARTUUID" \
        && ROOT_DISKS=done
}

# root_scenario NAME APPEND DISK [IMAGE OPTIONS...]: plan, image and boot for
# a hand-over scenario.
root_scenario() {
    local name=$1 append=$2 disk=$3
    shift 3
    root_disks || { fail "root disk build failed"; return 1; }
    plan "$name" virtio_pci virtio_blk ext4 pm_late_fw || { fail "plan compile failed"; return 1; }
    image "$name" "$@" || { fail "image build failed"; return 1; }
    boot "$name" "quiet $append" -cpu max -drive "file=$W/img/$disk,if=virtio,format=raw,snapshot=on"
}

# Rescue after a failed hand-over: the message, then /sbin/check of the
# initramfs as PID 1.
rescued() {
    grep -q 'parmod: starting rescue program /sbin/check' "$LOG" || fail "no 'starting rescue program' line"
    grep -q '^T: next-start .* pid=1 ' "$LOG" || fail "the rescue program is not PID 1"
    grep -q '^T: root-init' "$LOG" && fail "the real root's init ran"
}

scenario_root-switch() {
    local name=root-switch
    [ "$MODE" = init ] || { skip "$name" "needs parmod as /init"; return; }
    # The firmware request comes 5 s after pm_late_fw's init returned: after the switch.
    root_scenario "$name" "root=LABEL=pmroot rootfstype=ext4 init=/sbin/root-init pm_late_fw.late_ms=5000 parmod.rescue=/sbin/check" root-disk.img || return
    local ri fw up fw_ns
    ri=$(t root-init)
    [ -n "$ri" ] || fail "the real root's init did not run"
    case "$ri" in *pid=1\ *) ;; *) fail "the real root's init is not PID 1: $ri" ;; esac
    case "$ri" in *initramfs-init=gone*) ;; *) fail "the initramfs's /init is still there: $ri" ;; esac
    case "$ri" in *fs=ext2/ext3*) ;; *) fail "/ is not the ext4 root: $ri" ;; esac
    case "$ri" in *run=tmpfs\ rw,nosuid,nodev*) ;; *) fail "/run is not the initramfs's tmpfs: $ri" ;; esac
    grep -q 'parmod: cannot' "$LOG" && fail "$(grep -m1 'parmod: cannot' "$LOG")"
    local m
    for m in virtio_blk ext4 pm_late_fw; do has_module "$m" || fail "$m not loaded"; done
    fw=$(grep -m1 -o 'pm_late_fw firmware pm_late_fw.bin .*' "$LOG")
    case "$fw" in
        *" ret 0 size 30 first pm_late_fw from"*) ;;
        "") fail "pm_late_fw never asked for its firmware" ;;
        *) fail "the late firmware request failed: $fw" ;;
    esac
    up=$(echo "$ri" | sed -n 's/.* up=\([0-9.]*\) .*/\1/p')
    fw_ns=$(echo "$fw" | awk '{print $4}')
    if [ -n "$up" ] && [ -n "$fw_ns" ]; then
        awk -v u="$up" -v f="$fw_ns" 'BEGIN { exit !(f / 1e9 > u) }' || fail "the firmware request (${fw_ns} ns) came before the real root's init started (${up} s)"
    fi
    finish "$name" "boot ${BOOT_SECS} s, $(summary | sed 's/^parmod: //'); root init at ${up:-?} s uptime; firmware: ${fw:-none}"
}

# rescue_scenario NAME APPEND DISK LINE: /init on DISK with APPEND must say
# LINE (a grep pattern), then run the rescue program as PID 1.
rescue_scenario() {
    local name=$1 append=$2 disk=$3 line=$4
    [ "$MODE" = init ] || { skip "$name" "needs parmod as /init"; return; }
    root_scenario "$name" "$append parmod.rescue=/sbin/check" "$disk" || return
    grep -q "$line" "$LOG" || fail "no '$line' line"
    rescued
    finish "$name" "boot ${BOOT_SECS} s, $(grep -m1 -o "$line.*" "$LOG"), rescue at $(t next-start | cut -d' ' -f1) s uptime"
}

scenario_root-mount-fail() {
    rescue_scenario root-mount-fail "root=PARTUUID=$BLANK_PARTUUID rootfstype=ext4" blank-disk.img \
        'parmod: cannot mount /dev/vda1 on /root (rootfstype=ext4): '
}

scenario_root-no-init() {
    rescue_scenario root-no-init "root=PARTUUID=$ROOT_PARTUUID init=/sbin/no-such-init" root-disk.img \
        'parmod: /sbin/no-such-init is not on the root file system /dev/vda1; set init='
}

scenario_root-missing() {
    rescue_scenario root-missing "root=PARTUUID=00000000-0000-0000-0000-0000000000aa rootwait=3" root-disk.img \
        'parmod: the root device root=PARTUUID=00000000-0000-0000-0000-0000000000aa did not appear; block devices: .*vda1'
}

scenario_root-missing-sleep() {
    local name=root-missing-sleep
    [ "$MODE" = init ] || { skip "$name" "needs parmod as /init"; return; }
    root_disks || { fail "root disk build failed"; return; }
    plan "$name" virtio_pci virtio_blk ext4 || { fail "plan compile failed"; return; }
    image "$name" || { fail "image build failed"; return; }
    # No rescue: PID 1 must sleep, not exit (which would panic the kernel).
    LOG=$W/logs/$name.log
    qt_boot --arch x86_64 --initrd "$W/img/$name.img" --timeout 40 --log "$LOG" \
        --append "quiet root=PARTUUID=00000000-0000-0000-0000-0000000000aa rootwait=3" -- \
        -cpu max -drive "file=$W/img/root-disk.img,if=virtio,format=raw,snapshot=on"
    [ "$QT_BOOT_RC" = 124 ] || fail "QEMU ended by itself (status $QT_BOOT_RC), PID 1 should sleep until stopped"
    grep -q 'parmod: the root device root=PARTUUID=00000000-0000-0000-0000-0000000000aa did not appear' "$LOG" || fail "no 'root device ... did not appear' line"
    grep -q 'parmod: PID 1 has nothing to run; waiting for ever' "$LOG" || fail "no 'waiting for ever' line"
    grep -q 'Kernel panic' "$LOG" && fail "kernel panic: $(grep -m1 'Kernel panic' "$LOG")"
    finish "$name" "stopped after 40 s, sleeping: $(grep -c 'waiting for ever' "$LOG") message"
}

scenario_root-firmware-early() {
    local name=root-firmware-early
    [ "$MODE" = init ] || { skip "$name" "needs parmod as /init"; return; }
    root_scenario "$name" "root=LABEL=pmroot init=/sbin/root-init pm_late_fw.late_ms=0 parmod.rescue=/sbin/check" root-disk.img --firmware || return
    grep -q '^T: root-init pid=1 ' "$LOG" || fail "the real root's init did not run as PID 1"
    local fw
    fw=$(grep -m1 -o 'pm_late_fw firmware pm_late_fw.bin .*' "$LOG")
    case "$fw" in
        *" ret 0 size 31 first initramfs: pm_la"*) ;;
        "") fail "pm_late_fw never asked for its firmware" ;;
        *) fail "the early firmware request did not get the image's copy: $fw" ;;
    esac
    grep -q "mkinitramfs.sh: .* 1 firmware files" "$W/logs/$name.img.log" || fail "mkinitramfs.sh did not copy the firmware: $(cat "$W/logs/$name.img.log")"
    finish "$name" "boot ${BOOT_SECS} s, firmware: ${fw:-none}"
}
