#!/bin/bash
# The QEMU boot suite for parmod (run as root on Debian 12; see README.md).
#
#   qemu-test/run.sh [--only NAME[,NAME]...] [--mode auto|script|init] [--list]
#
# Builds the fixture modules, a staging module tree (Debian's modules plus the
# fixtures in extra/parmod), plans, images; boots each scenario under TCG and
# checks the serial console. Prints one "PASS name" / "FAIL name: reason" line
# per scenario (and the console log on failure; "SKIP name: why" for the
# /init-only scenarios in script mode), then "N passed, M failed[, K skipped]".
# Logs, plans and images stay in build/qemu/{logs,img}.
#
# --only also takes the scenarios outside the default run (EXTRA below).
# --mode: "init" boots parmod as /init (parmod.next=/sbin/check); "script"
# boots a busybox /init script that runs parmod as a command; "auto" (default)
# takes init when `parmod --help` mentions --init.
#
# Environment: PARMOD, PARMOD_PLAN (binaries; default: built with make into
# target/x86_64-unknown-linux-musl), KVER (the kernel: a version, or 6.1 or
# 6.12; see lib.sh), QEMU_TIMEOUT (per boot, default 120), RUN_DIR (the
# work directory, default build/qemu).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

W=${RUN_DIR:-$QT_REPO/build/qemu}
ONLY="" MODE=auto
ALL="fixture-graph failure stuck busy-init late-waits real-devices real-large busybox-next cmdline rescue-next rescue-plan"
# Scenarios that run only when named with --only.
EXTRA="unpack-xz"
# The hostile machine (README.md, "Scenarios").
ALL="$ALL task-names request-loading request-self on-request request-hold request-storm kernel-fs console-full coldplug-flood"
ALL="$ALL root-switch root-mount-fail root-no-init root-missing root-missing-sleep root-firmware-early"
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY=${2//,/ }; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        --list) echo "$ALL"; exit 0 ;;
        *) qt_usage ;;
    esac
done
[ -n "$ONLY" ] || ONLY=$ALL
TMO=${QEMU_TIMEOUT:-120}
qt_need_root "apt-get, mknod in the images"
log() { qt_log "$@"; }
t_start=$(date +%s)

# --- set-up ---------------------------------------------------------------
qt_kernel --arch x86_64
log "kernel $KVER"
mkdir -p "$W/logs" "$W/img" "$W/conf"
qt_binaries --arch x86_64 "$W.build.log"
if [ "$MODE" = auto ]; then
    if "$PARMOD" --help 2>&1 | grep -q -- '--init'; then MODE=init; else MODE=script; fi
fi
# The modprobe personality (argv[0] "modprobe"): request_module() works then.
PERSONALITY=no
"$PARMOD" --help 2>&1 | grep -q 'modprobe \[-q\]' && PERSONALITY=yes
log "mode $MODE (parmod as /init: $([ "$MODE" = init ] && echo yes || echo no, a busybox script runs it))"

log "building fixtures"
qt_fixtures "$W/fixtures"

cat > "$W/conf/pm-fixtures.conf" <<'EOF'
options pm_params level=7 tag=hello
options pm_late_misc late_ms=1500
options pm_late_attr late_ms=1500
EOF
ROOT=$W/root
MODDIR=$ROOT/lib/modules/$KVER
log "staging module tree $ROOT"
qt_stage "$ROOT" --extra-dir "parmod:$W/fixtures" --modprobe-conf "$W/conf/pm-fixtures.conf"

# Scenarios collect failures themselves: no errexit from here on.
set +e

# --- helpers --------------------------------------------------------------
PASSED=0 FAILED=0 SKIPPED=0
LOG=""
SUMMARY=""

# plan NAME [compile options and module names...]
plan() {
    local name=$1
    shift
    "$PARMOD_PLAN" compile --root "$ROOT" --kver "$KVER" -o "$W/img/$name.plan" "$@" \
        >"$W/logs/$name.plan.log" 2>&1 || { cat "$W/logs/$name.plan.log" >&2; return 1; }
}

# image NAME [--extra SRC:DST]... : the image for plan NAME in the current mode.
image() {
    local name=$1
    shift
    local args=(--kver "$KVER" --modules-dir "$MODDIR" --plan "$W/img/$name.plan"
        --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" --busybox
        --extra "$QT_HERE/guest/check.sh:/sbin/check" "$@" -o "$W/img/$name.img")
    if [ "$MODE" = script ]; then
        args+=(--init-script "$QT_HERE/guest/init.sh")
    fi
    "$QT_REPO/initramfs/mkinitramfs.sh" "${args[@]}" 2>"$W/logs/$name.img.log" || {
        cat "$W/logs/$name.img.log" >&2
        return 1
    }
}

# boot NAME APPEND [qemu args...]: boots, leaves the console in $LOG (CR stripped).
boot() {
    local name=$1 append=$2
    shift 2
    LOG=$W/logs/$name.log
    qt_boot --arch x86_64 --initrd "$W/img/$name.img" --timeout "$TMO" \
        --log "$LOG" --append "$append" -- "$@"
    BOOT_SECS=$QT_BOOT_SECS
    if [ "$QT_BOOT_RC" = 124 ]; then
        fail "QEMU timed out after ${TMO} s"
    fi
    grep -q '^T: check-done' "$LOG" || fail "the next stage did not finish (no check-done)"
    if grep -q 'Kernel panic' "$LOG"; then
        fail "kernel panic: $(grep -m1 'Kernel panic' "$LOG")"
    fi
}

# loaded_or_builtin PLAN NAME: NAME is in /proc/modules, or PLAN says this
# kernel has it built in (6.12 builds in virtio_pci and fuse, 6.1 does not).
loaded_or_builtin() {
    has_module "$2" || [ "$(plan_q "$1" --arg n "$2" '.modules[] | select(.name == $n) | .builtin')" = true ]
}

# ktime_ns of "pm_fixture: NAME init start|end NS" (empty when absent).
kt() { sed -n "s/.*pm_fixture: $1 init $2 \([0-9]*\).*/\1/p" "$LOG" | head -n1; }

# The largest number of fixture inits running at the same moment (from the
# start/end ktime_ns lines).
concurrency() {
    sed -n 's/.*pm_fixture: \([a-z_]*\) init \(start\|end\) \([0-9]*\).*/\3 \2/p' "$LOG" |
        sort -n -k1,1 -k2,2 | awk '$2 == "start" { n++; if (n > max) max = n } $2 == "end" { n-- } END { print max + 0 }'
}

# Append "mode" facts: in script mode the exit status must be $1.
check_exit() {
    if [ "$MODE" = script ]; then
        local e
        e=$(t parmod-exit)
        [ "$e" = "$1" ] || fail "parmod exit status ${e:-none}, want $1"
    fi
}

# Every fixture module that started must start after all its dependencies
# ended (modules.dep of the staging tree, plus the softdep pre).
check_order() {
    local line m deps d ms me de
    while IFS= read -r line; do
        m=$(basename "${line%%:*}" .ko)
        deps=${line#*:}
        ms=$(kt "$m" start)
        [ -n "$ms" ] || continue
        for d in $deps; do
            d=$(basename "$d" .ko)
            de=$(kt "$d" end)
            if [ -z "$de" ]; then
                fail "$m started but its dependency $d never finished"
            elif [ "$ms" -lt "$de" ]; then
                fail "$m started at $ms before $d ended at $de"
            fi
        done
    done < <(grep '^extra/parmod/' "$MODDIR/modules.dep")
    ms=$(kt pm_soft_main start)
    me=$(kt pm_soft_pre end)
    if [ -n "$ms" ]; then
        [ -n "$me" ] && [ "$ms" -ge "$me" ] || fail "pm_soft_main started ($ms) before pm_soft_pre ended (${me:-never})"
    fi
}

# The trace parmod wrote in the guest, printed in base64 by the check script,
# must decode with parmod-plan show --trace against its plan.
check_trace() {
    local name=$1
    if ! qt_trace "$LOG" "$W/logs/$name.trace"; then
        fail "no trace from the guest ($(grep -m1 '^T: trace-' "$LOG" || echo 'nothing'))"
        return
    fi
    "$PARMOD_PLAN" show --trace "$W/logs/$name.trace" --json "$W/img/$name.plan" > "$W/logs/$name.trace.json" 2>&1 \
        || fail "parmod-plan show --trace failed: $(head -n3 "$W/logs/$name.trace.json")"
}

finish() {
    local name=$1 info=$2
    if [ -z "$REASONS" ]; then
        echo "PASS $name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL $name: $REASONS"
        FAILED=$((FAILED + 1))
        if [ -n "$LOG" ] && [ -f "$LOG" ]; then
            echo "----- console log of $name ($LOG) -----"
            cat "$LOG"
            echo "----- end of $name -----"
        fi
    fi
    echo "  $name: $info" >&2
    SUMMARY="$SUMMARY  $name: ${REASONS:-ok}; $info
"
    REASONS="" LOG=""
}

skip() {
    echo "SKIP $1: $2"
    SKIPPED=$((SKIPPED + 1))
    SUMMARY="$SUMMARY  $1: skipped, $2
"
}

FIXTURES_ALL="pm_chain_a pm_chain_b pm_chain_c pm_diamond_bottom pm_diamond_left pm_diamond_right pm_diamond_top pm_soft_pre pm_soft_main pm_params pm_request pm_requested pm_late_misc pm_late_attr"

# --- (a) the fixture graph --------------------------------------------------
scenario_fixture-graph() {
    local name=fixture-graph append="quiet"
    plan "$name" --config "$ROOT/etc/modprobe.d" \
        pm_chain_c pm_diamond_top pm_soft_main pm_params pm_request pm_requested \
        pm_late_misc pm_late_attr || { fail "plan compile failed"; return; }
    printf '/dev/pm_late 5000\n/sys/kernel/pm_late/ready 5000\n' > "$W/conf/$name.wait"
    printf 'pm_requested\n-q pm_fixture_alias\n-q -- pm_no_such_module\n-q dummy\n' > "$W/conf/$name.modprobe"
    echo /run/parmod.trace > "$W/conf/$name.trace"
    echo "--trace /run/parmod.trace" > "$W/conf/$name.args"
    image "$name" --extra "$W/conf/$name.wait:/etc/check-wait" \
        --extra "$W/conf/$name.modprobe:/etc/check-modprobe" \
        --extra "$W/conf/$name.trace:/etc/check-trace" \
        --extra "$W/conf/$name.args:/etc/parmod-args" || { fail "image build failed"; return; }
    if [ "$MODE" = init ]; then
        # The command line overrides modprobe.d (level), which still gives tag.
        append="$append parmod.next=/sbin/check parmod.trace=/run/parmod.trace pm_params.level=9"
    fi
    boot "$name" "$append"
    local m
    for m in $FIXTURES_ALL; do
        has_module "$m" || fail "$m not loaded"
    done
    check_order
    check_exit 0
    [ "$(summary_field failed)" = 0 ] || fail "summary: $(summary)"
    # Two CPUs, so two workers: some inits must have run at the same time.
    local conc
    conc=$(concurrency)
    [ "$conc" -ge 2 ] || fail "at most $conc fixture init ran at a time (not parallel)"
    local want_level=7
    [ "$MODE" = init ] && want_level=9
    grep -q "^T: param level=$want_level$" "$LOG" || fail "pm_params level is '$(sed -n 's/^T: param level=//p' "$LOG")', want $want_level"
    grep -q '^T: param tag=hello$' "$LOG" || fail "pm_params tag is '$(sed -n 's/^T: param tag=//p' "$LOG")', want hello"
    local req
    req=$(sed -n 's/.*request_module(pm_requested) = \(.*\)$/\1/p' "$LOG" | head -n1)
    if [ "$PERSONALITY" = yes ]; then
        # /sbin/modprobe is parmod's modprobe personality.
        # A module still in its init counts as loaded, as for kmod: when the
        # run's own worker was inside pm_requested's init at the request,
        # request_module returns 0 at once and the symbol is not yet there.
        local qs qe rs re
        qs=$(kt pm_requested start) qe=$(kt pm_requested end) rs=$(kt pm_request start) re=$(kt pm_request end)
        if [ "$req" = "0, absent" ] && [ -n "$qs" ] && [ -n "$qe" ] && [ -n "$rs" ] && [ -n "$re" ] &&
            [ "$qs" -le "$re" ] && [ "$qe" -ge "$rs" ]; then
            has_module pm_requested || fail "pm_requested, initialising at the request, is not loaded at the end"
        else
            [ "$req" = "0, present" ] || fail "request_module(pm_requested) gave '${req:-nothing}', want '0, present'"
        fi
        [ "$(t 'modprobe pm_requested =>')" = 0 ] || fail "modprobe pm_requested exited '$(t 'modprobe pm_requested =>')'"
        [ "$(t 'modprobe -q pm_fixture_alias =>')" = 0 ] || fail "modprobe of the alias pm_fixture_alias exited '$(t 'modprobe -q pm_fixture_alias =>')'"
        local nx
        nx=$(t 'modprobe -q -- pm_no_such_module =>')
        [ -n "$nx" ] && [ "$nx" != 0 ] || fail "modprobe of an unknown module exited '$nx'"
    fi
    check_trace "$name"
    # Late device node and late attribute: reported, not judged.
    local lm la
    lm=$(grep -m1 '^T: .* /dev/pm_late ' "$LOG" | sed 's/^T: //')
    la=$(grep -m1 '^T: .* /sys/kernel/pm_late/ready ' "$LOG" | sed 's/^T: //')
    finish "$name" "boot ${BOOT_SECS} s, $(summary | sed 's/^parmod: //'), up to $conc inits at once; request_module: ${req:-?}; modprobe dummy (not in the plan) => $(t 'modprobe -q dummy =>'); after parmod: $lm, $la"
}

# --- (b) a failing module ---------------------------------------------------
scenario_failure() {
    local name=failure append="quiet"
    plan "$name" --config "$ROOT/etc/modprobe.d" pm_after_fail pm_chain_c pm_params pm_soft_main \
        || { fail "plan compile failed"; return; }
    image "$name" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check"
    boot "$name" "$append"
    grep -q 'pm_fixture: pm_fail failing with -ENODEV' "$LOG" || fail "pm_fail did not run its init"
    has_module pm_fail && fail "pm_fail is loaded"
    has_module pm_after_fail && fail "pm_after_fail is loaded"
    [ -z "$(kt pm_after_fail start)" ] || fail "pm_after_fail's init ran"
    grep -q 'parmod: failed: pm_fail' "$LOG" || fail "no 'parmod: failed: pm_fail' line"
    grep -q 'parmod: skipped: pm_after_fail' "$LOG" || fail "no 'parmod: skipped: pm_after_fail' line"
    local m
    for m in pm_chain_a pm_chain_b pm_chain_c pm_params pm_soft_pre pm_soft_main; do
        has_module "$m" || fail "$m not loaded"
    done
    [ "$(summary_field failed)" = 1 ] && [ "$(summary_field skipped)" = 1 ] \
        && [ "$(summary_field loaded)" = 6 ] || fail "summary '$(summary)', want 6 loaded, 1 failed, 1 skipped"
    check_exit 1
    check_order
    finish "$name" "boot ${BOOT_SECS} s, $(summary | sed 's/^parmod: //')"
}

# --- (c) a stuck module -----------------------------------------------------
scenario_stuck() {
    local name=stuck append="quiet"
    plan "$name" --module-timeout 2000 pm_after_hang pm_chain_c pm_diamond_top \
        || { fail "plan compile failed"; return; }
    echo "--deadline 5000 --module-timeout 2000" > "$W/conf/$name.args"
    image "$name" --extra "$W/conf/$name.args:/etc/parmod-args" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check parmod.deadline=5000"
    boot "$name" "$append"
    grep -q 'parmod: stuck: pm_hang' "$LOG" || fail "no 'parmod: stuck: pm_hang' line"
    has_module pm_after_hang && fail "pm_after_hang is loaded"
    [ -z "$(kt pm_after_hang start)" ] || fail "pm_after_hang's init ran"
    [ -n "$(kt pm_hang start)" ] || fail "pm_hang's init never started"
    local m
    for m in pm_chain_a pm_chain_b pm_chain_c pm_diamond_top; do
        has_module "$m" || fail "$m not loaded"
    done
    [ "$(summary_field stuck)" = 1 ] || fail "summary '$(summary)', want 1 stuck"
    local ms
    ms=$(summary_ms)
    if [ -n "$ms" ]; then
        [ "$ms" -le 6500 ] || fail "parmod took $ms ms, deadline 5000"
    fi
    check_exit 1
    # The next stage must start soon after the deadline, not when pm_hang returns.
    local ns
    ns=$(t next-start | cut -d' ' -f1)
    if [ -n "$ns" ]; then
        awk -v n="$ns" 'BEGIN{exit !(n < 30)}' || fail "next stage started at ${ns} s uptime"
    fi
    finish "$name" "boot ${BOOT_SECS} s, next stage at ${ns:-?} s uptime, $(summary | sed 's/^parmod: //')"
}

# --- (c1) a load that computes for longer than the module timeout ------------
# pm_busy's init burns CPU for 12 s, over the default 10 s timeout: it makes
# progress all along, so it must not be reported stuck nor replaced.
scenario_busy-init() {
    local name=busy-init append="quiet"
    plan "$name" pm_busy pm_chain_c || { fail "plan compile failed"; return; }
    image "$name" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check"
    boot "$name" "$append"
    [ -n "$(kt pm_busy end)" ] || fail "pm_busy's init did not finish"
    local m
    for m in pm_busy pm_chain_a pm_chain_b pm_chain_c; do
        has_module "$m" || fail "$m not loaded"
    done
    # parmod's own lines, not their copies from the kernel log ("K: ").
    grep -v '^K: ' "$LOG" | grep -q 'parmod: stuck: pm_busy' && fail "pm_busy reported stuck: $(grep -m1 -o 'parmod: stuck: pm_busy.*' "$LOG")"
    grep -v '^K: ' "$LOG" | grep -q 'takes its place' && fail "a replacement worker started"
    [ "$(summary_field loaded)" = 4 ] && [ "$(summary_field stuck)" = 0 ] \
        || fail "summary '$(summary)', want 4 loaded, 0 stuck"
    check_exit 0
    local busy
    busy=$(awk -v a="$(kt pm_busy start)" -v b="$(kt pm_busy end)" 'BEGIN{ if (a == "" || b == "") print "?"; else printf "%.0f", (b - a) / 1e6 }')
    finish "$name" "boot ${BOOT_SECS} s, pm_busy's init ${busy} ms, $(summary | sed 's/^parmod: //')"
}

# --- (c2) late device nodes and attributes: wait-for ------------------------
scenario_late-waits() {
    local name=late-waits append="quiet"
    local cd=$W/conf/$name.d
    rm -rf "$cd"
    mkdir -p "$cd"
    cp "$ROOT/etc/modprobe.d/pm-fixtures.conf" "$cd/"
    cat > "$cd/waits.conf" <<'EOF'
# pm_diamond_bottom may start only once pm_late_attr's late attribute is there.
softdep pm_diamond_bottom pre: pm_late_attr
wait-for /sys/kernel/pm_late/ready after pm_late_attr timeout 5000
# A final wait: parmod reports success only with /dev/pm_late there.
wait-for /dev/pm_late timeout 5000
# A wait that times out after a hard dependency: its dependents are skipped.
wait-for /dev/pm_never after pm_chain_a timeout 1000
# ... and after a soft one: the dependent still loads, once the wait is over.
softdep pm_request pre: pm_requested
wait-for /dev/pm_never_soft after pm_requested timeout 1000
EOF
    plan "$name" --config "$cd" pm_chain_c pm_diamond_top pm_late_misc pm_request \
        || { fail "plan compile failed"; return; }
    printf '/dev/pm_late 5000\n/sys/kernel/pm_late/ready 5000\n' > "$W/conf/$name.wait"
    image "$name" --extra "$W/conf/$name.wait:/etc/check-wait" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check"
    boot "$name" "$append"
    grep -q '^T: appeared /dev/pm_late after 0ms' "$LOG" || fail "/dev/pm_late not there when parmod was done ($(grep -m1 'T: .* /dev/pm_late' "$LOG"))"
    grep -q '^T: appeared /sys/kernel/pm_late/ready after 0ms' "$LOG" || fail "/sys/kernel/pm_late/ready not there when parmod was done"
    local created ds
    created=$(sed -n 's/.*pm_fixture: pm_late_attr created \/sys\/kernel\/pm_late\/ready \([0-9]*\) .*/\1/p' "$LOG" | head -n1)
    ds=$(kt pm_diamond_bottom start)
    if [ -n "$created" ] && [ -n "$ds" ]; then
        [ "$ds" -ge "$created" ] || fail "pm_diamond_bottom started at $ds before /sys/kernel/pm_late/ready was created at $created"
    else
        fail "no ktime for the attribute (${created:-none}) or pm_diamond_bottom (${ds:-none})"
    fi
    local re rs
    re=$(kt pm_requested end) rs=$(kt pm_request start)
    if [ -n "$re" ] && [ -n "$rs" ]; then
        [ "$rs" -ge $((re + 900000000)) ] || fail "pm_request started $(( (rs - re) / 1000000 )) ms after pm_requested ended, before its 1000 ms wait was over"
    else
        fail "no ktime for pm_requested's end (${re:-none}) or pm_request's start (${rs:-none})"
    fi
    local m
    for m in pm_chain_a pm_diamond_bottom pm_diamond_left pm_diamond_right pm_diamond_top \
        pm_late_misc pm_late_attr pm_requested pm_request; do
        has_module "$m" || fail "$m not loaded"
    done
    for m in pm_chain_b pm_chain_c; do
        has_module "$m" && fail "$m loaded although the wait after pm_chain_a timed out"
    done
    grep -q 'parmod: skipped: pm_chain_b: a wait after pm_chain_a timed out' "$LOG" \
        || fail "no 'skipped: pm_chain_b: a wait after pm_chain_a timed out' line"
    grep -q 'parmod: wait .*/dev/pm_never ' "$LOG" || fail "no 'parmod: wait ... /dev/pm_never' line"
    [ "$(summary_field loaded)" = 9 ] && [ "$(summary_field skipped)" = 2 ] \
        && [ "$(summary | grep -o '[0-9]* waits failed' | cut -d' ' -f1)" = 2 ] \
        || fail "summary '$(summary)', want 9 loaded, 2 skipped, 2 waits failed"
    check_exit 1
    finish "$name" "boot ${BOOT_SECS} s, $(summary | sed 's/^parmod: //')"
}

# --- (d) real Debian modules with real QEMU devices -------------------------
scenario_real-devices() {
    local name=real-devices append="quiet"
    # parmod waits for the nodes itself; /dev/sda comes ~1 s late (usb-storage
    # waits delay_use before scanning).
    local cd=$W/conf/$name.d
    rm -rf "$cd"
    mkdir -p "$cd"
    cat > "$cd/waits.conf" <<'EOF'
wait-for /dev/snd/controlC* after snd_hda_intel timeout 10000
wait-for /sys/class/net/eth0 after e1000 timeout 10000
wait-for /dev/vda timeout 10000
wait-for /dev/sda timeout 15000
wait-for /dev/dri/card0 timeout 10000
EOF
    plan "$name" --config "$cd" virtio_pci virtio_blk e1000 snd_hda_intel snd_hda_codec_generic \
        xhci_pci usb_storage sd_mod bochs || { fail "plan compile failed"; return; }
    cat > "$W/conf/$name.wait" <<'EOF'
/dev/vda 10000
/sys/class/net/eth0 10000
/dev/snd/controlC0 10000
/dev/sda 15000
/dev/dri/card0 10000
EOF
    image "$name" --extra "$W/conf/$name.wait:/etc/check-wait" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check"
    truncate -s 16M "$W/img/vd.img" "$W/img/usb.img"
    # -cpu max: TCG's default qemu64 CPU has no PCLMULQDQ, so crct10dif_pclmul
    # (pulled in by "softdep crc_t10dif pre: crct10dif", an alias) fails with
    # ENODEV there; real x86-64 hardware has it.
    boot "$name" "$append" -cpu max \
        -drive if=none,id=vd,file="$W/img/vd.img",format=raw -device virtio-blk-pci,drive=vd \
        -device e1000,romfile= \
        -audiodev none,id=snd0 -device intel-hda -device hda-duplex,audiodev=snd0 \
        -device qemu-xhci,id=xhci \
        -drive if=none,id=ud,file="$W/img/usb.img",format=raw -device usb-storage,bus=xhci.0,drive=ud \
        -vga std
    local m
    for m in virtio_pci virtio_blk e1000 snd_hda_intel snd_hda_codec_generic xhci_pci xhci_hcd \
        usb_storage sd_mod bochs; do
        loaded_or_builtin "$W/img/$name.plan" "$m" || fail "$m not loaded"
    done
    local p
    for p in /dev/vda /sys/class/net/eth0 /dev/snd/controlC0 /dev/sda /dev/dri/card0; do
        grep -q "^T: appeared $p " "$LOG" || fail "$p did not appear"
        grep -q "^T: appeared $p after 0ms" "$LOG" || fail "$p was not there when parmod was done (its wait-for)"
    done
    check_exit 0
    [ "$(summary_field failed)" = 0 ] || fail "summary: $(summary)"
    local seen
    seen=$(sed -n 's/^T: appeared \(.*\) after \(.*\)$/\1 +\2/p' "$LOG" | tr '\n' ',' | sed 's/,$//; s/,/, /g')
    finish "$name" "boot ${BOOT_SECS} s, $(summary | sed 's/^parmod: //'); nodes after parmod: ${seen:-none}"
}

# --- (d2) a large real module set: GPU, file system, wireless, network ------
# No hardware for most of them: their inits register drivers and return 0.
LARGE_SET="amdgpu i915 nouveau radeon btrfs xfs ext4 f2fs mac80211 iwlwifi ath9k snd_hda_intel e1000e igb ixgbe r8169 nvme ahci virtio_net virtio_gpu btusb usbhid hid_generic uvcvideo dm_crypt raid456 nf_tables bridge vxlan wireguard sctp fuse overlay"
scenario_real-large() {
    local name=real-large append="quiet"
    # shellcheck disable=SC2086
    plan "$name" $LARGE_SET || { fail "plan compile failed"; return; }
    local n
    # parmod counts built-in modules as loaded.
    n=$(plan_q "$W/img/$name.plan" .module_count)
    image "$name" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check"
    boot "$name" "$append" -cpu max
    local m
    for m in $LARGE_SET; do
        loaded_or_builtin "$W/img/$name.plan" "$m" || fail "$m not loaded"
    done
    [ "$(summary_field loaded)" = "$n" ] && [ "$(summary_field failed)" = 0 ] \
        || fail "summary '$(summary)', want $n loaded, 0 failed"
    check_exit 0
    finish "$name" "boot ${BOOT_SECS} s, $(du -m "$W/img/$name.img" | cut -f1) MB image, $(summary | sed 's/^parmod: //')"
}

# --- (d3) .ko.xz modules unpacked on idle CPUs --------------------------------
# A kernel whose modules are .ko.xz (Debian's 6.12: `make qemu-test-xz`):
# the large set twice from one image, with the unpacker (the default) and
# with parmod.unpack=0. Both must load the same modules with the same taint
# (the kernel checks an image's signature as it checks the file's), and the
# first must have loaded some from images.
scenario_unpack-xz() {
    local name=unpack-xz
    # shellcheck disable=SC2086
    plan "$name" $LARGE_SET || { fail "plan compile failed"; return; }
    local xz
    xz=$(plan_q "$W/img/$name.plan" '[.modules[] | select(.path != null) | select(.path | endswith(".ko.xz"))] | length')
    if [ "${xz:-0}" = 0 ]; then
        [ -n "${PARMOD_REQUIRE_XZ:-}" ] && { fail "no .ko.xz module on $KVER (PARMOD_REQUIRE_XZ is set)"; finish "$name" "no .ko.xz"; return; }
        skip "$name" "the modules of $KVER are not .ko.xz"
        return
    fi
    if [ "$MODE" != init ]; then
        skip "$name" "parmod.unpack= is read by /init only"
        return
    fi
    image "$name" || { fail "image build failed"; return; }
    # parmod's summary line with what follows "in N ms".
    full_summary() { grep -m1 -o 'parmod: [0-9]* loaded.*' "$LOG" || true; }
    ln -sf "$name.img" "$W/img/$name.off.img"
    # 6.12 under QEMU 7.2's multi-threaded TCG now and then oopses on an
    # int3 of its own text patching in the first seconds, before any
    # module loads: that boot is repeated once, and said so.
    boot_again_on_oops() {
        local before=$REASONS
        boot "$@"
        if grep -q 'Oops: int3' "$LOG" && ! grep -q 'parmod: [0-9]* loaded' "$LOG"; then
            echo "  $1: the kernel oopsed in its text patching before parmod ran; booting again" >&2
            REASONS=$before
            boot "$@"
        fi
    }
    boot_again_on_oops "$name.off" "quiet parmod.next=/sbin/check parmod.unpack=0" -cpu max
    local off_mods off_taint off_sum
    off_mods=$(t modules) off_taint=$(t tainted) off_sum=$(full_summary)
    [ -n "$off_sum" ] || fail "no summary from parmod with parmod.unpack=0"
    case "$off_sum" in *"unpacked on idle CPUs"*) fail "parmod.unpack=0 still unpacked: $off_sum" ;; esac
    boot_again_on_oops "$name" "quiet parmod.next=/sbin/check" -cpu max
    local m n
    for m in $LARGE_SET; do
        loaded_or_builtin "$W/img/$name.plan" "$m" || fail "$m not loaded"
    done
    n=$(plan_q "$W/img/$name.plan" .module_count)
    [ "$(summary_field loaded)" = "$n" ] && [ "$(summary_field failed)" = 0 ] \
        || fail "summary '$(summary)', want $n loaded, 0 failed"
    check_exit 0
    local used
    used=$(full_summary | sed -n 's/.*; \([0-9]*\) loads\{0,1\} from images unpacked on idle CPUs.*/\1/p')
    [ "${used:-0}" -gt 0 ] || fail "no load from an image: $(full_summary)"
    [ "$(t modules)" = "$off_mods" ] \
        || fail "the modules differ from the boot without unpacking"
    [ -n "$off_taint" ] && [ "$(t tainted)" = "$off_taint" ] \
        || fail "taint $(t tainted) with images, ${off_taint:-?} without"
    finish "$name" "boot ${BOOT_SECS} s, $xz .ko.xz of $n; taint $(t tainted); $(full_summary | sed 's/^parmod: //'); without: $(echo "$off_sum" | sed 's/^parmod: //')"
}

# --- (e) busybox init as the next stage -------------------------------------
scenario_busybox-next() {
    local name=busybox-next append="quiet"
    plan "$name" --config "$ROOT/etc/modprobe.d" pm_chain_c pm_params || { fail "plan compile failed"; return; }
    echo /sbin/init > "$W/conf/$name.next"
    image "$name" --extra "$QT_HERE/guest/inittab:/etc/inittab" \
        --extra "$W/conf/$name.next:/etc/next" \
        --extra "$W/img/busybox-init-link:/sbin/init" || { fail "image build failed"; return; }
    # Default parmod.next is /sbin/init: nothing to add in init mode.
    boot "$name" "$append"
    grep -q '^T: busybox-init pid1=init' "$LOG" || fail "busybox init did not run as PID 1"
    local m
    for m in pm_chain_a pm_chain_b pm_chain_c pm_params; do
        has_module "$m" || fail "$m not loaded"
    done
    check_exit 0
    finish "$name" "boot ${BOOT_SECS} s, $(summary | sed 's/^parmod: //'), $(t next-start)"
}
ln -sfn /bin/busybox "$W/img/busybox-init-link"

# --- (f) /init mode: the kernel command line --------------------------------
scenario_cmdline() {
    local name=cmdline
    [ "$MODE" = init ] || { skip "$name" "needs parmod as /init"; return; }
    plan "$name" --config "$ROOT/etc/modprobe.d" pm_chain_c pm_diamond_top pm_params \
        || { fail "plan compile failed"; return; }
    # The plan under another name; /etc/parmod.plan is garbage.
    echo "not a plan" > "$W/conf/$name.garbage"
    image "$name" --extra "$W/img/$name.plan:/etc/alt.plan" \
        --extra "$W/conf/$name.garbage:/etc/parmod.plan" || { fail "image build failed"; return; }
    boot "$name" "quiet parmod.next=/sbin/check parmod.plan=/etc/alt.plan parmod.jobs=1 modprobe.blacklist=pm_chain_b pm_params.tag=\"two words\""
    has_module pm_chain_a || fail "pm_chain_a not loaded"
    has_module pm_chain_b && fail "blacklisted pm_chain_b is loaded"
    has_module pm_chain_c && fail "pm_chain_c (needs the blacklisted pm_chain_b) is loaded"
    grep -q 'parmod: skipped: pm_chain_b: blacklisted' "$LOG" || fail "no 'parmod: skipped: pm_chain_b: blacklisted' line"
    grep -q 'parmod: skipped: pm_chain_c' "$LOG" || fail "no 'parmod: skipped: pm_chain_c' line"
    local m
    for m in pm_diamond_bottom pm_diamond_left pm_diamond_right pm_diamond_top pm_params; do
        has_module "$m" || fail "$m not loaded"
    done
    grep -q '^T: param tag=two words$' "$LOG" || fail "pm_params tag is '$(sed -n 's/^T: param tag=//p' "$LOG")', want 'two words'"
    grep -q '^T: param level=7$' "$LOG" || fail "pm_params level is '$(sed -n 's/^T: param level=//p' "$LOG")', want 7 (modprobe.d)"
    # One job: no two fixture inits overlap.
    local conc
    conc=$(concurrency)
    [ "$conc" = 1 ] || fail "$conc fixture inits ran at the same time with parmod.jobs=1"
    check_order
    finish "$name" "boot ${BOOT_SECS} s, $(summary | sed 's/^parmod: //')"
}

# --- (g) /init mode: the next stage cannot run: rescue ----------------------
scenario_rescue-next() {
    local name=rescue-next
    [ "$MODE" = init ] || { skip "$name" "needs parmod as /init"; return; }
    plan "$name" pm_chain_c || { fail "plan compile failed"; return; }
    image "$name" || { fail "image build failed"; return; }
    boot "$name" "quiet parmod.next=/sbin/no-such-init parmod.rescue=/sbin/check"
    grep -q 'parmod: starting rescue program /sbin/check' "$LOG" || fail "no 'starting rescue program' line"
    grep -q '^T: next-start .* pid=1 ' "$LOG" || fail "the rescue program is not PID 1"
    has_module pm_chain_c || fail "pm_chain_c not loaded before the rescue"
    finish "$name" "boot ${BOOT_SECS} s, $(summary | sed 's/^parmod: //')"
}

# --- (h) /init mode: an unusable plan: rescue, nothing loaded ---------------
scenario_rescue-plan() {
    local name=rescue-plan
    [ "$MODE" = init ] || { skip "$name" "needs parmod as /init"; return; }
    plan "$name" pm_chain_c || { fail "plan compile failed"; return; }
    # A truncated plan.
    head -c 200 "$W/img/$name.plan" > "$W/conf/$name.truncated"
    image "$name" --extra "$W/conf/$name.truncated:/etc/parmod.plan" || { fail "image build failed"; return; }
    boot "$name" "quiet parmod.next=/sbin/no-such-init parmod.rescue=/sbin/check"
    grep -q 'parmod: starting rescue program /sbin/check' "$LOG" || fail "no 'starting rescue program' line"
    grep -q 'truncated' "$LOG" || fail "no message about the truncated plan"
    grep -q '^T: next-start .* pid=1 ' "$LOG" || fail "the rescue program is not PID 1"
    has_module pm_chain_a && fail "pm_chain_a loaded from an unusable plan"
    finish "$name" "boot ${BOOT_SECS} s, $(grep -m1 -o 'parmod: .*truncated.*' "$LOG" || true)"
}

# --- the hostile machine ------------------------------------------------------
# /sbin/hostile (guest/hostile.sh) is the next stage: it reports the pm:*
# tasks and mends what a scenario broke, then runs /sbin/check.
HOSTILE=(--extra "$QT_HERE/guest/hostile.sh:/sbin/hostile")

# A stuck worker is named after its module, and the stuck module with how
# long it was stuck is in the kernel log after the deadline.
scenario_task-names() {
    local name=task-names append="quiet"
    plan "$name" --module-timeout 2000 pm_after_hang pm_chain_c || { fail "plan compile failed"; return; }
    echo "--deadline 5000 --module-timeout 2000" > "$W/conf/$name.args"
    echo /sbin/hostile > "$W/conf/$name.next"
    image "$name" "${HOSTILE[@]}" --extra "$W/conf/$name.args:/etc/parmod-args" \
        --extra "$W/conf/$name.next:/etc/next" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/hostile parmod.deadline=5000"
    boot "$name" "$append"
    grep -q '^T: hostile-start' "$LOG" || fail "/sbin/hostile did not run"
    grep -q '^T: task pm:pm_hang ' "$LOG" || fail "no task named pm:pm_hang while pm_hang's init sleeps ($(grep '^T: task' "$LOG" | tr '\n' ' '))"
    local ms
    ms=$(sed -n 's/^K: .*parmod: stuck: pm_hang: still inside finit_module after \([0-9]*\) ms.*/\1/p' "$LOG" | head -n1)
    if [ -z "$ms" ]; then
        fail "no 'parmod: stuck: pm_hang: still inside finit_module after N ms' in the kernel log"
    elif [ "$ms" -lt 4000 ] || [ "$ms" -gt 6500 ]; then
        fail "the kernel log says pm_hang was stuck for $ms ms, want about 5000 (the deadline)"
    fi
    has_module pm_chain_c || fail "pm_chain_c not loaded"
    finish "$name" "boot ${BOOT_SECS} s, tasks: $(sed -n 's/^T: task \([^ ]*\) .*/\1/p' "$LOG" | sort | uniq -c | tr -s ' ' | tr '\n' ',') kernel log: stuck ${ms:-?} ms"
}

# request_scenario NAME ASKER TARGET MODULES...: a plan of MODULES, whose
# fixture ASKER logs "request_module(TARGET) = RC, MS ms" from its init;
# the call must give 0 within 10 s, every module load, none be stuck.
request_scenario() {
    local name=$1 asker=$2 target=$3 append="quiet"
    shift 3
    [ "$PERSONALITY" = yes ] || { skip "$name" "parmod has no modprobe personality"; return; }
    plan "$name" "$@" || { fail "plan compile failed"; return; }
    image "$name" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check"
    boot "$name" "$append"
    local r
    r=$(sed -n "s/.*pm_fixture: $asker request_module($target) = \(.*\)\$/\1/p" "$LOG" | head -n1)
    [ -n "$r" ] || fail "$asker logged no request_module result"
    [ "${r%%,*}" = 0 ] || fail "request_module($target) gave '$r', want 0 (a module loading counts as loaded, as for kmod)"
    local took=${r##*, }
    took=${took% ms}
    [ -n "$took" ] && [ "$took" -lt 10000 ] || fail "request_module($target) took '${took}' ms"
    local m
    for m in "$@"; do has_module "$m" || fail "$m not loaded"; done
    [ "$(summary_field stuck)" = 0 ] || fail "summary '$(summary)', want 0 stuck"
    check_exit 0
    finish "$name" "boot ${BOOT_SECS} s, request_module: $r, $(summary | sed 's/^parmod: //')"
}

# request_module() of a module that is still loading: pm_req_waiter asks for
# pm_req_slow 300 ms into pm_req_slow's 1500 ms init.
scenario_request-loading() { request_scenario request-loading pm_req_waiter pm_req_slow pm_req_slow pm_req_waiter pm_chain_c; }

# request_module() of the module whose init is asking (a crypto self test
# asking for the algorithm its module registers): must not wait for itself.
scenario_request-self() { request_scenario request-self pm_req_self pm_req_self_alias pm_req_self pm_chain_c; }

# A module only the kernel asks for (compiled --on-request): the run leaves
# it out, pm_request's request_module() loads it from the plan through the
# modprobe personality, and its file is in the image.
scenario_on-request() {
    local name=on-request append="quiet"
    [ "$PERSONALITY" = yes ] || { skip "$name" "parmod has no modprobe personality"; return; }
    plan "$name" pm_request pm_chain_c --on-request pm_requested || { fail "plan compile failed"; return; }
    "$PARMOD_PLAN" show "$W/img/$name.plan" | grep -q '^ *[0-9]* pm_requested \[on-request\]' \
        || fail "pm_requested is not on request in the plan"
    image "$name" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check"
    boot "$name" "$append"
    local req
    req=$(sed -n 's/.*request_module(pm_requested) = \(.*\)$/\1/p' "$LOG" | head -n1)
    [ "$req" = "0, present" ] || fail "request_module(pm_requested) gave '${req:-nothing}', want '0, present'"
    local m
    for m in pm_request pm_requested pm_chain_a pm_chain_b pm_chain_c; do has_module "$m" || fail "$m not loaded"; done
    # The run's own summary: the four modules of the run, nothing skipped.
    [ "$(summary_field loaded)" = 4 ] && [ "$(summary_field skipped)" = 0 ] && [ "$(summary_field failed)" = 0 ] \
        || fail "summary '$(summary)', want 4 loaded (pm_requested by the request, not the run), 0 skipped, 0 failed"
    check_exit 0
    finish "$name" "boot ${BOOT_SECS} s, request_module: $req, $(summary | sed 's/^parmod: //')"
}

# A load with a long serial phase waits while the kernel loads what it
# asked for: pm_req_waiter asks for pm_req_slow (on request, 1500 ms init)
# 300 ms into the run; pm_serial (about 130 ms of ftrace_lock by the plan's
# estimate) becomes ready after pm_chain_b, about 400 ms in, while the
# request loads: it is held back, at most for its serial estimate, then loads.
scenario_request-hold() {
    local name=request-hold append="quiet"
    [ "$PERSONALITY" = yes ] || { skip "$name" "parmod has no modprobe personality"; return; }
    plan "$name" pm_req_waiter pm_serial --on-request pm_req_slow || { fail "plan compile failed"; return; }
    local serial
    serial=$("$PARMOD_PLAN" show --json "$W/img/$name.plan" | python3 -c 'import json,sys; print(next(m["serial"] for m in json.load(sys.stdin)["modules"] if m["name"] == "pm_serial"))')
    [ "${serial:-0}" -ge 100000 ] || fail "pm_serial's serial estimate is ${serial:-?} us, want at least the hold threshold (100000)"
    image "$name" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check"
    boot "$name" "$append"
    local r
    r=$(sed -n 's/.*pm_fixture: pm_req_waiter request_module(pm_req_slow) = \(.*\)$/\1/p' "$LOG" | head -n1)
    [ "${r%%,*}" = 0 ] || fail "request_module(pm_req_slow) gave '${r:-nothing}', want 0"
    local m
    for m in pm_req_waiter pm_req_slow pm_serial pm_chain_b; do has_module "$m" || fail "$m not loaded"; done
    local held
    held=$(sed -n 's/.*parmod: [0-9]* loaded.* 1 load held back \([0-9]*\) ms while the kernel loaded what it requested$/\1/p' "$LOG" | head -n1)
    [ -n "$held" ] || fail "no load held back: '$(grep -m1 'parmod: [0-9]* loaded' "$LOG")'"
    # Held until the request was loaded or for its serial estimate (plus a
    # look every 2 ms), whichever came first; the request lasts 1500 ms.
    [ -n "$held" ] && [ "$held" -ge 1 ] && [ "$held" -le $((serial / 1000 + 50)) ] \
        || fail "pm_serial held back ${held:-?} ms, want 1 to $((serial / 1000 + 50)) (its serial estimate)"
    [ "$(summary_field stuck)" = 0 ] && [ "$(summary_field failed)" = 0 ] || fail "summary '$(summary)', want 0 stuck, 0 failed"
    check_exit 0
    finish "$name" "boot ${BOOT_SECS} s, serial estimate $((serial / 1000)) ms, held ${held:-?} ms, request_module: $r"
}

# 200 request_module() calls from as many kernel threads, spread over the
# first second of the run, while the plan loads: of modules loaded, still
# loading (pm_storm itself) and not loaded yet (pm_diamond_top, whose
# dependencies take 300 ms), of an alias and of a name no plan has.
scenario_request-storm() {
    local name=request-storm append="quiet"
    [ "$PERSONALITY" = yes ] || { skip "$name" "parmod has no modprobe personality"; return; }
    plan "$name" pm_storm pm_requested pm_chain_c pm_diamond_top || { fail "plan compile failed"; return; }
    image "$name" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/check"
    boot "$name" "$append"
    grep -q 'pm_fixture: pm_storm started 200 requests' "$LOG" || fail "pm_storm did not start 200 requests ($(grep -m1 'pm_storm started' "$LOG"))"
    local n want
    for n in pm_requested pm_fixture_alias pm_diamond_top pm_storm_alias pm_no_such_module; do
        want="ok 40 failed 0"
        [ "$n" = pm_no_such_module ] && want="ok 0 failed 40"
        grep -q "pm_fixture: pm_storm requests $n $want\$" "$LOG" \
            || fail "requests for $n: '$(sed -n "s/.*pm_fixture: pm_storm requests $n //p" "$LOG" | head -n1)', want '$want'"
    done
    local longest
    longest=$(sed -n 's/.*pm_fixture: pm_storm started .* longest \([0-9]*\) ms.*/\1/p' "$LOG" | head -n1)
    [ -n "$longest" ] && [ "$longest" -lt 30000 ] || fail "the longest request took '${longest}' ms"
    local m
    for m in pm_storm pm_requested pm_chain_c pm_diamond_top; do has_module "$m" || fail "$m not loaded"; done
    [ "$(summary_field failed)" = 0 ] && [ "$(summary_field stuck)" = 0 ] || fail "summary '$(summary)', want 0 failed, 0 stuck"
    check_exit 0
    finish "$name" "boot ${BOOT_SECS} s, longest request ${longest:-?} ms, $(summary | sed 's/^parmod: //')"
}

# PID 1 without /proc and /sys it can mount: /proc is a file (so there is
# no kernel command line), /sys a link to a file. The plan still loads and
# the next stage (the default /sbin/init, as without a command line) still
# runs. (/dev cannot be broken so: the kernel's built-in initramfs always
# has /dev/console; console-full covers an unusable console.)
scenario_kernel-fs() {
    local name=kernel-fs
    [ "$MODE" = init ] || { skip "$name" "needs parmod as /init"; return; }
    plan "$name" pm_chain_c pm_params || { fail "plan compile failed"; return; }
    : > "$W/conf/$name.file"
    # /sys: a link to a file (relative, so that it resolves here too).
    mkdir -p "$W/conf/etc"
    : > "$W/conf/etc/hostile-fs"
    ln -sfn etc/hostile-fs "$W/conf/$name.link"
    image "$name" "${HOSTILE[@]}" --extra "$QT_HERE/guest/hostile.sh:/sbin/init" \
        --extra "$W/conf/$name.file:/etc/hostile-fs" --extra "$W/conf/$name.file:/proc" \
        --extra "$W/conf/$name.link:/sys" || { fail "image build failed"; return; }
    boot "$name" "quiet"
    grep -q '^T: hostile-fixed /proc /sys $' "$LOG" || fail "the image's /proc and /sys were not what the scenario made them ($(grep -m1 '^T: hostile-fixed' "$LOG"))"
    grep -q 'parmod: cannot mount /proc: ENOTDIR' "$LOG" || fail "no 'parmod: cannot mount /proc: ENOTDIR' message"
    grep -q 'parmod: cannot mount /sys: ENOTDIR' "$LOG" || fail "no 'parmod: cannot mount /sys: ENOTDIR' message"
    grep -q '^T: next-start .* pid=1 ' "$LOG" || fail "the next stage is not PID 1"
    local m
    for m in pm_chain_a pm_chain_b pm_chain_c pm_params; do has_module "$m" || fail "$m not loaded"; done
    finish "$name" "boot ${BOOT_SECS} s, $(summary | sed 's/^parmod: //')"
}

# PID 1's console is /dev/full: every message write fails (ENOSPC). The plan
# loads, the summary reaches the kernel log, the next stage runs.
scenario_console-full() {
    local name=console-full
    [ "$MODE" = init ] || { skip "$name" "needs parmod as /init"; return; }
    plan "$name" pm_chain_c pm_after_fail || { fail "plan compile failed"; return; }
    rm -f "$W/conf/$name.console"
    mknod -m 600 "$W/conf/$name.console" c 1 7
    : > "$W/conf/$name.file"
    image "$name" "${HOSTILE[@]}" --extra "$W/conf/$name.console:/dev/console" \
        --extra "$W/conf/$name.file:/etc/hostile-tty" || { fail "image build failed"; return; }
    boot "$name" "quiet parmod.next=/sbin/hostile"
    grep -q '^T: next-start .* pid=1 ' "$LOG" || fail "the next stage is not PID 1"
    grep -q '^K: .*parmod: 3 loaded .* 1 failed, 1 skipped' "$LOG" || fail "no summary in the kernel log ($(grep -m1 '^K: .*parmod: [0-9]* loaded' "$LOG"))"
    grep -q '^K: .*parmod: failed: pm_fail' "$LOG" || fail "no 'parmod: failed: pm_fail' in the kernel log"
    local m
    for m in pm_chain_a pm_chain_b pm_chain_c; do has_module "$m" || fail "$m not loaded"; done
    finish "$name" "boot ${BOOT_SECS} s, kernel log: $(sed -n 's/^K: .*\(parmod: [0-9]* loaded.*\)/\1/p' "$LOG" | head -n1)"
}
# A flood of uevents during coldplug (guest/flood.sh runs `parmod coldplug`
# as a command): pm_flood adds and removes FLOOD1 devices, each with a
# modalias of its own, then FLOOD2 while parmod is stopped, enough to
# overflow its receive buffer (16 MB asked, 32 MB given); it adds a device
# that stays halfway through the first (for pm_flood_t1) and after the
# second (pm_flood_t2, whose uevent the full buffer drops). Neither may be
# lost (the second is found in /sys after ENOBUFS), and parmod's memory may not
# grow: its address space stays the same size, its resident set within a
# few pages (stack first touched by the rescan).
FLOOD1=${FLOOD1:-4000} FLOOD2=${FLOOD2:-24000}
scenario_coldplug-flood() {
    local name=coldplug-flood append="quiet"
    local fr=$W/flood-root
    local MODDIR=$fr/lib/modules/$KVER
    rm -rf "$fr"
    mkdir -p "$MODDIR/extra/parmod"
    cp "$W"/fixtures/pm_flood.ko "$W"/fixtures/pm_flood_t[12].ko "$MODDIR/extra/parmod/"
    cp "$ROOT/lib/modules/$KVER"/modules.builtin* "$ROOT/lib/modules/$KVER"/modules.order "$MODDIR/"
    depmod -b "$fr" "$KVER" || { fail "depmod of the flood tree failed"; return; }
    "$PARMOD_PLAN" compile --root "$fr" --kver "$KVER" --all -o "$W/img/$name.plan" >"$W/logs/$name.plan.log" 2>&1 \
        || { fail "plan compile failed: $(head -n3 "$W/logs/$name.plan.log")"; return; }
    echo "$FLOOD1 $FLOOD2" > "$W/conf/$name.sizes"
    echo /sbin/flood > "$W/conf/$name.next"
    image "$name" --extra "$QT_HERE/guest/flood.sh:/sbin/flood" --extra "$W/conf/$name.sizes:/etc/flood-sizes" \
        --extra "$W/conf/$name.next:/etc/next" || { fail "image build failed"; return; }
    [ "$MODE" = init ] && append="$append parmod.next=/sbin/flood"
    boot "$name" "$append"
    grep -q '^T: flood-error' "$LOG" && fail "$(grep -m1 '^T: flood-error' "$LOG" | sed 's/^T: //')"
    [ "$(t flood-done)" = 2 ] || fail "pm_flood did not finish both floods ($(t flood-done))"
    local added
    added=$(grep -c 'pm_fixture: pm_flood added pm_flood_t' "$LOG")
    [ "$added" = 2 ] || fail "pm_flood added $added of its 2 lasting devices"
    local m
    for m in pm_flood_t1 pm_flood_t2; do has_module "$m" || fail "$m not loaded: the device that needs it was lost"; done
    grep -q '^T: coldplug-out parmod: uevents were lost (ENOBUFS); scanning /sys again' "$LOG" \
        || fail "no 'uevents were lost (ENOBUFS)' from parmod: the second flood did not overflow its buffer (FLOOD2=$FLOOD2)"
    local rc
    rc=$(t coldplug-exit | cut -d' ' -f1)
    [ "$rc" = 0 ] || fail "parmod coldplug exited ${rc:-?}, want 0"
    local start after1 after2
    start=$(t 'flood-mem start') after1=$(t 'flood-mem after-1') after2=$(t 'flood-mem after-2')
    memk() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
    if [ -z "$(memk "$start" VmSize)" ] || [ -z "$(memk "$after2" VmSize)" ]; then
        fail "no memory figures from the guest (start '$start', end '$after2')"
    else
        [ "$(memk "$start" VmSize)" = "$(memk "$after1" VmSize)" ] && [ "$(memk "$start" VmSize)" = "$(memk "$after2" VmSize)" ] \
            || fail "parmod's address space changed: start $start, after flood 1 $after1, after flood 2 $after2"
        [ $(( $(memk "$after2" Rss) - $(memk "$start" Rss) )) -le 64 ] \
            || fail "parmod's resident set grew by more than 64 kB: start $start, after flood 2 $after2"
    fi
    finish "$name" "boot ${BOOT_SECS} s, floods $FLOOD1 + $FLOOD2 devices, $(t 'flood-1 start') → $(t 'flood-1 end'), $(t 'flood-2 start') → $(t 'flood-2 end'); memory (kB) start: $start; after 1: $after1; after 2: $after2; $(sed -n 's/^T: coldplug-out \(parmod: [0-9]* loaded.*\)/\1/p' "$LOG" | head -n1)"
}
# --- the hand-over to a real root (root-*) ----------------------------------
# shellcheck source=qemu-test/root-scenarios.sh
. "$QT_HERE/root-scenarios.sh"

# --- run --------------------------------------------------------------------
for s in $ONLY; do
    case " $ALL $EXTRA " in *" $s "*) ;; *) echo "run: unknown scenario $s" >&2; exit 2 ;; esac
    log "scenario $s"
    "scenario_$s"
    # A scenario that gave up before booting has not reported yet.
    [ -z "$REASONS" ] || finish "$s" "gave up before booting"
done

log "mode $MODE, $(( $(date +%s) - t_start )) s in all"
printf '%s' "$SUMMARY" >&2
if [ "$SKIPPED" -gt 0 ]; then
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
    echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" = 0 ]
