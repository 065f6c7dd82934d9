#!/bin/bash
# Coldplug in QEMU: a machine with many devices, booted with every module of
# the Debian kernel in the initramfs, coldplugged by parmod and, in other
# boots of the same image, by Debian 12's systemd-udevd and by kmod's
# one-shot `modprobe -a $(cat /sys/.../modalias)`. Run as root.
#
#   qemu-test/coldplug.sh [--test] [--bench] [--aliases] [--boots N] [--smp LIST] [--settles LIST]
#
# --test (the default; `make qemu-test-coldplug`, part of `make test`): one
#   boot with parmod as /init (rdinit=/bin/parmod parmod.coldplug=1), one
#   with udevd; the two module sets must be equal up to the differences
#   docs/coldplug.md lists (KNOWN_DIFF below, each with its reason), nothing
#   may load in the 2 s after either said settled, the same devices must be
#   bound to the same drivers then, and the devices that appear only after
#   a bus driver bound (virtio, USB interfaces, SCSI disk and CD, the HDA
#   codec) must have their drivers when the loader settled.
# --bench (`make bench-coldplug`, part of `make bench`): start-to-settled
#   times of parmod (`parmod coldplug`), udevd and kmod's one-shot, --boots N
#   each (default 3), interleaved round by round, on each vCPU count of --smp
#   (default 1,2); then parmod with each settle time of --settles (default
#   none; e.g. 0,50,200,1000), and with each worker count of --jobs
#   (default none; e.g. 1,2), one boot each on --smp's last count; results
#   in build/coldplug/results.{tsv,md}.
# --aliases (part of `make bench-coldplug`): how long resolving the
#   machine's modaliases takes, natively and under TCG: one boot that
#   coldplugs with parmod, then times parmod's lookup (examples/aliasbench.rs,
#   built static for musl) and libkmod's (guest/kmodlookup.c, what udevd's
#   kmod builtin calls) over every modalias in /sys, and kmod's `modprobe -R`
#   once per modalias; the same three on the build host with that list. The
#   two lookups must name the same modules for every modalias. Results in
#   build/coldplug/aliases.md.
#
# The machine (q35, -cpu max): virtio-blk, virtio-net, virtio-rng,
# virtio-balloon, virtio-gpu, virtio-scsi with a disk, e1000e, intel-hda with
# a duplex codec, qemu-xhci with usb-storage, usb-tablet and usb-kbd, the
# ICH9 AHCI with a CD drive, nvme; q35's own devices (LPC, SMBus, the std VGA,
# the serial port, ...). The image holds every module of the kernel (KVER,
# default 6.12: Debian 12's linux-image-6.12-amd64, .ko.xz that the kernel
# decompresses), the plan compiled with --all, kmod (Debian 12's, with the
# tree's index files and modprobe.d), and udevd with what Debian's
# initramfs-tools copies for it (guest/coldplug-init.sh).
#
# Environment: KVER, PARMOD, PARMOD_PLAN, QEMU_TIMEOUT (per boot, default 300),
# COLDPLUG_DIR (default build/coldplug).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

W=${COLDPLUG_DIR:-$QT_REPO/build/coldplug}
DO_TEST=0 DO_BENCH=0 DO_ALIASES=0 BOOTS=${COLDPLUG_BOOTS:-3} SMPS="1 2" SETTLES="" JOBS_LIST=""
while [ $# -gt 0 ]; do
    case "$1" in
        --test) DO_TEST=1; shift ;;
        --bench) DO_BENCH=1; shift ;;
        --aliases) DO_ALIASES=1; shift ;;
        --boots) BOOTS=$2; shift 2 ;;
        --smp) SMPS=${2//,/ }; shift 2 ;;
        --settles) SETTLES=${2//,/ }; shift 2 ;;
        --jobs) JOBS_LIST=${2//,/ }; shift 2 ;;
        *) qt_usage ;;
    esac
done
[ "$DO_TEST$DO_BENCH$DO_ALIASES" != 000 ] || DO_TEST=1
TMO=${QEMU_TIMEOUT:-300}
qt_need_root "apt-get, mknod in the images"
log() { qt_log "$@"; }
t_start=$(date +%s)

# --- set-up -------------------------------------------------------------------
KVER=${KVER:-6.12}
qt_kernel --arch x86_64
qt_packages udev
qt_binaries --arch x86_64 "$W/build.log"
log "kernel $KVER"
mkdir -p "$W/logs" "$W/img" "$W/conf"
ROOT=$W/root
MODDIR=$ROOT/lib/modules/$KVER
log "staging module tree $ROOT"
qt_stage "$ROOT"
PLAN=$W/img/all.plan
"$PARMOD_PLAN" compile --root "$ROOT" --kver "$KVER" --all --no-firmware-check -o "$PLAN" \
    >"$W/logs/plan.log" 2>&1 || { cat "$W/logs/plan.log" >&2; qt_die "parmod-plan compile --all failed"; }

# The files of the other loaders: kmod (modprobe) and udevd, each with the
# libraries ldd names, as initramfs-tools' copy_exec does.
EXTRAS=()
declare -A HAVE
extra() { # SRC DST
    [ -z "${HAVE[$2]:-}" ] || return 0
    HAVE[$2]=1
    EXTRAS+=(--extra "$1:$2")
}
with_libs() { # BINARY DST
    extra "$(readlink -f "$1")" "$2"
    local lib
    for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
        extra "$(readlink -f "$lib")" "$lib"
    done
}
with_libs "$(command -v kmod)" /usr/bin/kmod
ln -sfn /usr/bin/kmod "$W/conf/kmod-modprobe-link"
extra "$W/conf/kmod-modprobe-link" /usr/sbin/modprobe
for f in "$MODDIR"/modules.*; do
    extra "$f" "/lib/modules/$KVER/$(basename "$f")"
done
extra "$ROOT/etc/modprobe.d" /etc/modprobe.d
# udevd as /usr/share/initramfs-tools/hooks/udev installs it.
with_libs /bin/udevadm /bin/udevadm
ln -sfn /bin/udevadm "$W/conf/udevd-link"
extra "$W/conf/udevd-link" /lib/systemd/systemd-udevd
extra /etc/udev/udev.conf /etc/udev/udev.conf
for f in /lib/systemd/network/*.link; do
    extra "$f" "/lib/systemd/network/$(basename "$f")"
done
UDEV_RULES="50-firmware.rules 50-udev-default.rules 60-block.rules 60-persistent-storage.rules
    61-persistent-storage-android.rules 71-seat.rules 73-special-net-names.rules
    75-net-description.rules 80-net-setup-link.rules 80-drivers.rules"
for r in $UDEV_RULES; do
    [ -f "/lib/udev/rules.d/$r" ] && extra "/lib/udev/rules.d/$r" "/lib/udev/rules.d/$r"
done
with_libs /lib/udev/ata_id /lib/udev/ata_id
with_libs /lib/udev/scsi_id /lib/udev/scsi_id
with_libs /sbin/blkid /sbin/blkid
extra "$QT_HERE/guest/coldplug-init.sh" /sbin/coldplug-report
if [ "$DO_ALIASES" = 1 ]; then
    log "building the lookup benchmarks"
    cargo build -q --manifest-path "$QT_REPO/Cargo.toml" --profile host --target x86_64-unknown-linux-musl \
        --features host,runtime --example aliasbench >"$W/logs/aliasbench.build.log" 2>&1 \
        || { cat "$W/logs/aliasbench.build.log" >&2; qt_die "building examples/aliasbench failed"; }
    ALIASBENCH=$QT_REPO/target/x86_64-unknown-linux-musl/host/examples/aliasbench
    qt_packages libkmod-dev
    KMODLOOKUP=$W/img/kmodlookup
    gcc -O2 -Wall -o "$KMODLOOKUP" "$QT_HERE/guest/kmodlookup.c" -lkmod || qt_die "building guest/kmodlookup.c failed"
    extra "$ALIASBENCH" /bin/aliasbench
    with_libs "$KMODLOOKUP" /bin/kmodlookup
fi

IMG=$W/img/coldplug.img
log "image $IMG ($(plan_q "$PLAN" .module_count) modules in the plan)"
"$QT_REPO/initramfs/mkinitramfs.sh" --kver "$KVER" --modules-dir "$MODDIR" --plan "$PLAN" \
    --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" --busybox --init-script "$QT_HERE/guest/coldplug-init.sh" \
    "${EXTRAS[@]}" -o "$IMG" 2>"$W/logs/img.log" || { cat "$W/logs/img.log" >&2; qt_die "image build failed"; }
log "image: $(du -m "$IMG" | cut -f1) MB"

# The machine's disks.
for d in vd nvme scsi usb; do truncate -s 16M "$W/img/$d.disk"; done
MACHINE=(-M q35 -cpu max
    -drive if=none,id=vd,file="$W/img/vd.disk",format=raw -device virtio-blk-pci,drive=vd
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=
    -device virtio-rng-pci -device virtio-balloon-pci -device virtio-gpu-pci
    -device virtio-scsi-pci,id=vscsi
    -drive if=none,id=sd,file="$W/img/scsi.disk",format=raw -device scsi-hd,bus=vscsi.0,drive=sd
    -netdev user,id=n1 -device e1000e,netdev=n1,romfile=
    -audiodev none,id=snd0 -device intel-hda -device hda-duplex,audiodev=snd0
    -device qemu-xhci,id=xhci
    -drive if=none,id=ud,file="$W/img/usb.disk",format=raw -device usb-storage,bus=xhci.0,drive=ud
    -device usb-tablet,bus=xhci.0 -device usb-kbd,bus=xhci.0
    -drive if=none,id=cd,media=cdrom -device ide-cd,bus=ide.0,drive=cd
    -drive if=none,id=nv,file="$W/img/nvme.disk",format=raw -device nvme,drive=nv,serial=parmod0)

# boot NAME SMP APPEND: one boot of the image; the console in $LOG.
boot() {
    local name=$1 smp=$2 append=$3
    LOG=$W/logs/$name.log
    qt_boot --arch x86_64 --initrd "$IMG" --timeout "$TMO" --smp "$smp" --mem 2048 \
        --log "$LOG" --append "quiet $append" -- "${MACHINE[@]}" || true
    [ "$QT_BOOT_RC" != 124 ] || fail "QEMU timed out after $TMO s"
    grep -q '^T: cp-done' "$LOG" || fail "the guest did not finish its report (no cp-done)"
    ! grep -q 'Kernel panic' "$LOG" || fail "kernel panic: $(grep -m1 'Kernel panic' "$LOG")"
}
# The modules of T: KEY (modules, late-modules), one a line.
mods_of() { sed -n "s/^T: $2 //p" "$1" | head -n1 | tr ' ' '\n' | grep . | sort -u || true; }
# Milliseconds between the cp: start and cp: end marks.
span_ms() {
    local s e
    s=$(sed -n 's/^T: mark \[ *\([0-9.]*\)\] cp: start$/\1/p' "$1" | head -n1)
    e=$(sed -n 's/^T: mark \[ *\([0-9.]*\)\] cp: end$/\1/p' "$1" | head -n1)
    if [ -n "$s" ] && [ -n "$e" ]; then awk -v a="$s" -v b="$e" 'BEGIN{printf "%.1f", (b - a) * 1000}'; else echo NA; fi
}

# busy_ms: how long the vCPUs were busy (user, nice, system, irq,
# softirq, steal; summed over the vCPUs) between the marks of $LOG, in ms (USER_HZ
# is 100: 10 ms steps), or NA.
busy_ms() { qt_guest_busy_ms "$(t cpu-start)" "$(t cpu-end)"; }

log "set-up done in $(( $(date +%s) - t_start )) s"

# What udevd loads and parmod does not, or the other way round, on this
# machine, each for a reason docs/coldplug.md gives. NAME: reason.
KNOWN_DIFF="ppdev: udevd only; a rule of 80-drivers.rules (SUBSYSTEM==module, KERNEL==parport_pc) loads it when parport_pc loads, not a modalias"
known_diff_names() { echo "$KNOWN_DIFF" | sed -n 's/^ *\([A-Za-z0-9_]*\):.*/\1/p'; }

# The drivers the devices that only appear after a bus driver bound must
# have: BUS DRIVER-PATTERN WHAT. (Debian builds virtio_pci into the kernel:
# the virtio devices are there at the scan, checked here all the same.)
FOLLOW_UPS="virtio virtio_blk virtio-blk's device
virtio virtio_net virtio-net's device
virtio virtio_scsi virtio-scsi's device
platform iTCO_wdt the watchdog lpc_ich adds
usb usb-storage|uas usb-storage's interface after xhci_pci
usb usbhid usb-tablet's and usb-kbd's interfaces after xhci_pci
scsi sd the SCSI disks (sd_mod) after virtio_scsi and usb-storage
scsi sr the CD drive (sr_mod) after ahci
hdaudio snd_hda_codec_generic the HDA codec after snd_hda_intel"

# follow_ups LOG NAME: every follow-up device of FOLLOW_UPS has its driver.
follow_ups() {
    local logf=$1 name=$2 bus pat what n
    while read -r bus pat what; do
        n=$(grep -E -c "^T: drv $bus [^ ]+ ($pat)$" "$logf" || true)
        if [ "$n" -gt 0 ]; then
            log "$name: $what: bound ($n device(s) on $bus with ${pat//|/ or })"
        else
            fail "$name: $what: no $bus device bound to ${pat//|/ or }"
        fi
    done <<<"$FOLLOW_UPS"
}

if [ "$DO_TEST" = 1 ]; then
    rc=0
    # parmod as /init (rdinit=), coldplugging, then the report as its next stage.
    REASONS=""
    boot test-parmod 2 "rdinit=/bin/parmod parmod.coldplug=1 parmod.next=/sbin/coldplug-report cp.late=2000"
    grep -q '^T: cp-variant parmod-init' "$LOG" || fail "parmod as /init did not exec its next stage"
    grep -q 'parmod: coldplug: [0-9]* devices' "$LOG" || fail "parmod did not say it coldplugged"
    log "parmod: $(grep -m1 -o 'parmod: coldplug: .*' "$LOG" || true); $(summary)"
    follow_ups "$LOG" parmod
    mods_of "$LOG" modules >"$W/parmod.modules"
    mods_of "$LOG" late-modules >"$W/parmod.late-modules"
    P_REASONS=$REASONS
    REASONS=""
    boot test-udevd 2 "cp.variant=udevd cp.late=2000"
    [ "$(t cp-rc)" = 0 ] || fail "udevd's coldplug exited with $(t cp-rc)"
    follow_ups "$LOG" udevd
    mods_of "$LOG" modules >"$W/udevd.modules"
    mods_of "$LOG" late-modules >"$W/udevd.late-modules"
    U_REASONS=$REASONS
    REASONS="${P_REASONS}${P_REASONS:+${U_REASONS:+; }}${U_REASONS}"
    for v in parmod udevd; do
        late=$(comm -13 "$W/$v.modules" "$W/$v.late-modules" | tr '\n' ' ')
        [ -z "$late" ] || fail "$v: loaded after it said settled (within 2 s): $late"
    done
    [ -s "$W/parmod.modules" ] && [ -s "$W/udevd.modules" ] || fail "a boot reported no modules"
    # Every device udevd bound, parmod bound to the same driver, and back,
    # 2 s after each said settled (SCSI host numbers follow the order the
    # host adapters probed in: there only the count per driver is compared).
    # A device bound then but not yet when the loader settled was announced
    # after the settle time (usb-storage scans a disk delay_use, 1 s, after
    # it binds): its module was loaded already, or it would be listed below.
    for v in parmod udevd; do
        for k in drv late-drv; do
            sed -n "s/^T: $k //p" "$W/logs/test-$v.log" | sed -E 's/^(scsi) [^ ]+/\1 H:C:T:L/' | sort >"$W/$v.$k"
        done
        while read -r line; do
            log "$v: bound after it settled: $line"
        done < <(comm -13 "$W/$v.drv" "$W/$v.late-drv")
        log "$v: SCSI devices: $(sed -n 's/^T: scsi-path //p' "$W/logs/test-$v.log" | tr '\n' ' ')"
    done
    while read -r line; do
        fail "bound in the udevd boot only: $line"
    done < <(comm -13 "$W/parmod.late-drv" "$W/udevd.late-drv")
    while read -r line; do
        fail "bound in the parmod boot only: $line"
    done < <(comm -23 "$W/parmod.late-drv" "$W/udevd.late-drv")
    log "devices bound: parmod $(grep -c . "$W/parmod.late-drv"), udevd $(grep -c . "$W/udevd.late-drv")"
    log "parmod loaded $(grep -c . "$W/parmod.modules"), udevd $(grep -c . "$W/udevd.modules") modules"
    known=$(known_diff_names)
    while read -r side m; do
        [ -n "$m" ] || continue
        if echo "$known" | grep -qx "$m"; then
            log "known difference: $(echo "$KNOWN_DIFF" | grep "^ *$m:" | sed 's/^ *//')"
        else
            fail "$m loaded by $side only"
        fi
    done < <(comm -3 "$W/parmod.modules" "$W/udevd.modules" | sed 's/^\t/udevd /; t; s/^/parmod /')
    for m in $known; do
        comm -3 "$W/parmod.modules" "$W/udevd.modules" | tr -d '\t' | grep -qx "$m" ||
            log "note: $m is in KNOWN_DIFF but loaded by both or neither this time"
    done
    if [ -n "$REASONS" ]; then
        echo "coldplug: FAIL: $REASONS (logs in $W/logs)" >&2
        rc=1
    else
        echo "coldplug: PASS (parmod as /init and udevd: the same modules up to KNOWN_DIFF; every follow-up device bound)"
    fi
    [ "$DO_BENCH" = 1 ] || exit "$rc"
    [ "$rc" = 0 ] || exit "$rc"
fi

# --- the lookup benchmark --------------------------------------------------------
if [ "$DO_ALIASES" = 1 ]; then
    REASONS=""
    boot aliases 2 "cp.variant=aliases"
    [ -z "$REASONS" ] || qt_die "the lookup boot: $REASONS (log $LOG)"
    sed -n 's/^T: modalias //p' "$LOG" >"$W/modaliases"
    n=$(grep -c . "$W/modaliases" || true)
    [ "$n" -gt 0 ] || qt_die "the lookup boot listed no modalias (log $LOG)"
    # The modules each lookup names for each modalias, sorted, must agree.
    names() {
        sed -n 's/ -> */\t/p' | while IFS=$'\t' read -r a m; do
            printf '%s\t%s\n' "$a" "$(echo "$m" | tr ' ' '\n' | sort | tr '\n' ' ')"
        done | sort
    }
    "$ALIASBENCH" "$PLAN" "$W/modaliases" 1 --show | names >"$W/aliases.parmod"
    "$KMODLOOKUP" "$MODDIR" "$ROOT/etc/modprobe.d" "$W/modaliases" 1 --show | names >"$W/aliases.libkmod"
    if ! diff -u "$W/aliases.libkmod" "$W/aliases.parmod" >"$W/aliases.diff"; then
        cat "$W/aliases.diff" >&2
        qt_die "parmod's lookup and libkmod's name different modules (above: - libkmod, + parmod)"
    fi
    per() { sed -n 's/.*median \([0-9.]*\) ms per pass.*/\1/p'; }
    nat_p=$("$ALIASBENCH" "$PLAN" "$W/modaliases" 200 | per)
    nat_k=$("$KMODLOOKUP" "$MODDIR" "$ROOT/etc/modprobe.d" "$W/modaliases" 200 | per)
    t0=$(date +%s%N)
    while read -r a; do modprobe -d "$ROOT" -S "$KVER" -C "$ROOT/etc/modprobe.d" -R "$a" >/dev/null 2>&1 || true; done <"$W/modaliases"
    nat_m=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
    tcg_p=$(t lookup-parmod | per) tcg_k=$(t lookup-libkmod | per) tcg_m=$(t lookup-modprobe | sed -n 's/^\([0-9.]*\) ms.*/\1/p')
    {
        echo "# Resolving a machine's modaliases ($(date -u +%Y-%m-%d), kernel $KVER)"
        echo
        echo "qemu-test/coldplug.sh --aliases: the $n modaliases in /sys of the coldplug machine after parmod's"
        echo "coldplug, against the plan's $(plan_q "$PLAN" '.aliases | length') aliases ($(plan_q "$PLAN" .module_count) modules) and the tree's index files."
        echo "Per pass over all $n: parmod's and libkmod's lookups the median of 200 passes natively and of 20 under TCG (QEMU"
        echo "$("$QT_QEMU" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p'), -cpu max, 2 vCPUs); modprobe -R, one process per modalias, one pass."
        echo "Build host: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), load average $(cut -d' ' -f1-3 /proc/loadavg)."
        echo "Both lookups name the same modules for every modalias."
        echo
        echo "| lookup | native (ms) | under TCG (ms) |"
        echo "|---|---|---|"
        echo "| parmod (the runtime's resolve, the plan's sorted aliases) | $nat_p | $tcg_p |"
        echo "| libkmod (kmod_module_new_from_lookup + blacklist filter, as udevd) | $nat_k | $tcg_k |"
        echo "| kmod's modprobe -R, a process per modalias | $nat_m | $tcg_m |"
    } >"$W/aliases.md"
    cat "$W/aliases.md"
fi

# --- the benchmark --------------------------------------------------------------
if [ "$DO_BENCH" = 1 ]; then
    TSV=$W/results.tsv
    printf 'variant\tsmp\tsettle_ms\tround\tms\tmodules\tjobs\tbusy_ms\n' >"$TSV"
    bench_boot() { # VARIANT SMP SETTLE ROUND [JOBS]
        local v=$1 smp=$2 settle=$3 r=$4 jobs=${5:--} ms n busy extra=""
        [ "$settle" = - ] || extra="cp.settle=$settle"
        [ "$jobs" = - ] || extra="$extra cp.jobs=$jobs"
        REASONS=""
        boot "bench-$v-smp$smp-s$settle-j$jobs-$r" "$smp" "cp.variant=$v $extra"
        ms=$(span_ms "$LOG")
        n=$(t module-count)
        busy=$(busy_ms)
        [ "$ms" != NA ] || fail "no start/end marks"
        [ -z "$REASONS" ] || qt_die "bench boot $v smp=$smp round $r: $REASONS (log $LOG)"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$v" "$smp" "$settle" "$r" "$ms" "$n" "$jobs" "$busy" >>"$TSV"
        log "$v smp=$smp settle=$settle jobs=$jobs round $r: $ms ms, $n modules, vCPUs busy $busy ms (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    }
    LOAD_BEFORE=$(uptime)
    for smp in $SMPS; do
        for r in $(seq 1 "$BOOTS"); do
            for v in parmod udevd modprobe; do bench_boot "$v" "$smp" - "$r"; done
        done
    done
    last_smp=${SMPS##* }
    for settle in $SETTLES; do bench_boot parmod "$last_smp" "$settle" 1; done
    for jobs in $JOBS_LIST; do bench_boot parmod "$last_smp" - 1 "$jobs"; done
    LOAD_AFTER=$(uptime)
    med() { # VARIANT SMP SETTLE COLUMN [JOBS]: the median of the column over the rounds
        awk -F'\t' -v v="$1" -v s="$2" -v st="$3" -v c="$4" -v j="${5:--}" '$1 == v && $2 == s && $3 == st && $7 == j { print $c }' "$TSV" |
            sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
    }
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a / b }'; }
    MD=$W/results.md
    {
        echo "# Coldplug, start to settled ($(date -u +%Y-%m-%d), kernel $KVER)"
        echo
        echo "qemu-test/coldplug.sh --bench: QEMU $("$QT_QEMU" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') TCG, q35 -cpu max, 2 GiB;"
        echo "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) host CPUs. $BOOTS boots of each, interleaved;"
        echo "the time from the kernel's log stamps of the marks before and after the loader."
        echo "Host load before: ${LOAD_BEFORE##*load average: }; after: ${LOAD_AFTER##*load average: }."
        echo
        echo "| vCPUs | parmod coldplug (ms) | udevd (ms) | modprobe -a one-shot (ms) | parmod / udevd | modprobe / udevd | modules parmod / udevd / modprobe | vCPUs busy (ms) parmod / udevd / modprobe |"
        echo "|---|---|---|---|---|---|---|---|"
        for smp in $SMPS; do
            p=$(med parmod "$smp" - 5) u=$(med udevd "$smp" - 5) m=$(med modprobe "$smp" - 5)
            echo "| $smp | $p | $u | $m | $(ratio "$p" "$u") | $(ratio "$m" "$u") | $(med parmod "$smp" - 6) / $(med udevd "$smp" - 6) / $(med modprobe "$smp" - 6) | $(med parmod "$smp" - 8) / $(med udevd "$smp" - 8) / $(med modprobe "$smp" - 8) |"
        done
        echo
        echo "vCPUs busy: the CPU time of the guest between the marks, summed over its vCPUs (/proc/stat)."
        echo "A run that costs the guest that much CPU time cannot settle sooner than busy / vCPUs (plus"
        echo "parmod's settle time, with nothing loading); how much the kernel's work costs depends on the"
        echo "order and overlap of the loads (see -j 1)."
        if [ -n "$SETTLES" ]; then
            echo
            echo "parmod coldplug with --settle MS, $last_smp vCPUs, one boot each:"
            echo
            echo "| settle (ms) | ms | modules |"
            echo "|---|---|---|"
            for settle in $SETTLES; do echo "| $settle | $(med parmod "$last_smp" "$settle" 5) | $(med parmod "$last_smp" "$settle" 6) |"; done
        fi
        if [ -n "$JOBS_LIST" ]; then
            echo
            echo "parmod coldplug with -j N (default: 2 x the CPUs), $last_smp vCPUs, one boot each:"
            echo
            echo "| -j | ms | modules |"
            echo "|---|---|---|"
            for jobs in $JOBS_LIST; do echo "| $jobs | $(med parmod "$last_smp" - 5 "$jobs") | $(med parmod "$last_smp" - 6 "$jobs") |"; done
        fi
        echo
        echo "Every boot: $TSV."
    } >"$MD"
    cat "$MD"
fi
