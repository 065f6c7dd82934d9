#!/bin/bash
# Boot benchmark: parmod against kmod's modprobe -a (Debian 12's kmod 30 and
# the newest kmod), the newest systemd-modules-load, busybox modprobe and
# xargs -P modprobe, in QEMU (TCG, -smp 2) with Debian 12's kernels. Run as root.
#
#   qemu-test/bench.sh [--boots N] [--kernels K,...] [--workloads W[@K],...]
#                      [--summary-only] [--more N]
#
# Kernels (--kernels, BENCH_KERNELS; default 6.1,6.12): a Debian 12 series
# (6.1: what linux-image-amd64 installs, plain .ko files; 6.12:
# linux-image-6.12-amd64, .ko.xz files the kernel decompresses itself) or an
# exact version; a kernel that is not installed is installed with apt-get,
# with its headers (the fixtures are built for each kernel; qemu-test/lib.sh).
# Workloads, one image per kernel and workload (parmod, its plans, kmod's
# modprobe with its libraries, the newest kmod and systemd-modules-load with
# theirs (qemu-test/peers.sh: from Debian's newest suite, downloaded into
# build/peers, never installed), busybox, the module files and the kmod
# index files):
#   real     REAL_SET below: 38 requested Debian modules, ~140 with their closure
#            (amdgpu, i915, nouveau, btrfs, xfs, mac80211, snd-hda-intel, ...);
#            runs on every kernel
#   fixture  the fixture graph of qemu-test/fixtures (inits sleep known times);
#            runs on the first kernel only
#   padded   fixtures whose init times the file sizes do not reflect: eight
#            1 MiB modules (a const array) that sleep 200 ms, and a chain of
#            two small modules that sleep 400 ms each, the critical path;
#            runs on the first kernel only
# W@K runs workload W on kernel K only (K one of the kernels, e.g. fixture@6.12).
# Variants, each in its own fresh boot (guest/bench-init.sh runs exactly one):
#   modprobe-a (kmod 30), kmod-modprobe-a (kmod >= 34), systemd-modules-load
#   (systemd >= 258, the names in /etc/modules-load.d, its own choice of
#   probe threads: one per online CPU), busybox (one modprobe per name),
#   xargs-P2, xargs-P8,
#   parmod (default settings: no --jobs, the plan's own weights), parmod-j1,
#   parmod-j2, and on the real set and the padded one parmod-profile
#   (default settings with a plan compiled with --profile from a parmod -j 1
#   trace of the same image).
#   BENCH_VARIANTS may name others of these kinds (parmod-jN, xargs-PN).
# Each variant is booted N times (BENCH_BOOTS, default 3), interleaved round
# by round (every kernel and workload in each round) so that drift of the
# host hits every variant alike; the median is reported. The lower bound
# comes from the -j 1 traces (parmod-plan report): max(critical path,
# work / vCPUs) on the real set, the critical path on the fixture graphs
# (their inits sleep: CPUs do not limit them).
# A slowed host: after the rounds, parmod (default settings) boots the real
# set on every kernel BENCH_SLOW_BOOTS times (default 2; 0 skips it) while
# BENCH_HOGS (default 2) busy loops run on the host, so that the guest's
# vCPUs get a part of a host CPU each, as on a slower board: the figures
# of interest are the stuck, slow and replacement-worker counts (a load that
# progresses must not be reported stuck), listed in their own table.
# For every parmod boot the modules its console lines report as stuck
# ("parmod: stuck: NAME") and slow ("parmod: slow: NAME") and the
# replacement workers it started ("worker N takes its place") are counted
# and reported per boot.
#
# Output: build/bench/results.tsv (one line per boot), build/bench/results.md
# (the tables, printed at the end), traces and console logs in build/bench/.
# --summary-only re-reads results.tsv and the traces and prints the tables.
# --more N adds N rounds to an earlier run (same images and plans, results appended).
#
# Boots start only when the host is quiet: anything else using more than
# BENCH_MAX_OTHER CPUs (default 0.1) is waited out for up to BENCH_QUIET_WAIT
# seconds (default 60); a boot during which others used more than that is
# marked disturbed, repeated up to BENCH_RETRIES times (default 1), and left
# out of the medians (unless no boot of that variant was undisturbed).
# --summary-only applies the BENCH_MAX_OTHER given then (a stricter one, say).
#
# Environment: BENCH_BOOTS, BENCH_KERNELS, BENCH_WORKLOADS, BENCH_VARIANTS (a
# subset, for quick runs), BENCH_DIR (default build/bench), PARMOD,
# PARMOD_PLAN, QEMU_TIMEOUT (per boot, default 240), BENCH_SMP (default 2).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Absolute: the fixtures are built with kbuild (M=), which resolves a relative
# directory against the fixture sources.
W=$(realpath -m "${BENCH_DIR:-$QT_REPO/build/bench}")
BOOTS=${BENCH_BOOTS:-3}
WORKLOADS=${BENCH_WORKLOADS:-real fixture padded}
KERNELS=${BENCH_KERNELS:-6.1 6.12}
SUMMARY_ONLY=0 MORE=0
SMP=${BENCH_SMP:-2}
while [ $# -gt 0 ]; do
    case "$1" in
        --boots) BOOTS=$2; shift 2 ;;
        --kernels) KERNELS=${2//,/ }; shift 2 ;;
        --workloads) WORKLOADS=${2//,/ }; shift 2 ;;
        --summary-only) SUMMARY_ONLY=1; shift ;;
        --more) MORE=$2; shift 2 ;;
        *) qt_usage ;;
    esac
done
TMO=${QEMU_TIMEOUT:-240}
MAX_OTHER=${BENCH_MAX_OTHER:-0.1}
RETRIES=${BENCH_RETRIES:-1}
qt_need_root "apt-get, mknod in the images"
log() { qt_log "$@"; }

# The real set: run.sh's real-large list plus USB storage and a few more drivers.
REAL_SET="amdgpu i915 nouveau radeon btrfs xfs ext4 f2fs mac80211 iwlwifi ath9k snd_hda_intel snd_hda_codec_realtek e1000e igb ixgbe r8169 tg3 nvme ahci virtio_net virtio_gpu btusb usbhid hid_generic uvcvideo usb_storage uas xhci_pci dm_crypt raid456 nf_tables bridge vxlan wireguard sctp fuse overlay"
# What the kernel itself asks for (request_module()) while the real set loads,
# seen with the module:module_request trace event (trace_event=... tp_printk)
# in modprobe -a boots, until every request that a module of the tree answers
# was answered: on 6.1 the crypto manager's self-test of ecdh_generic wants
# crypto-stdrng (ansi_cprng, drbg), drbg's own self-tests then ctr, sha512 and
# jitterentropy_rng (which wants sha3-256), and crc64_rocksoft wants
# crypto-crc64-rocksoft: 8 more modules, 150 in all. On 6.12 those are built
# in but ansi_cprng and sha512, and nothing in the set asks (136 in all).
# Planned --on-request, so that every image holds their files, as a real
# system's module tree does: without them ecdh's self-test fails at once
# ("alg: ... test failed ... err=-14") instead of computing. (Requests before
# the run, from built-in code, are the same for every variant.)
REAL_ON_REQUEST="crypto-stdrng crypto-jitterentropy_rng crypto-crc64-rocksoft crypto-ctr crypto-sha512 crypto-sha3-256-generic"
FIXTURE_SET="pm_chain_c pm_diamond_top pm_soft_main pm_params pm_request pm_requested pm_late_misc pm_late_attr"
PADDED_SET="pm_sb_chain_b pm_sb_pad1 pm_sb_pad2 pm_sb_pad3 pm_sb_pad4 pm_sb_pad5 pm_sb_pad6 pm_sb_pad7 pm_sb_pad8"
VARIANTS_COMMON="modprobe-a kmod-modprobe-a systemd-modules-load busybox xargs-P2 xargs-P8 parmod parmod-j1 parmod-j2"

variants_of() { # workload
    if [ -n "${BENCH_VARIANTS:-}" ]; then echo "$BENCH_VARIANTS"; return; fi
    case "$1" in
        real|padded) echo "$VARIANTS_COMMON parmod-profile" ;;
        *) echo "$VARIANTS_COMMON" ;;
    esac
}
on_request_of() { # workload -> compile arguments for what the kernel requests
    case "$1" in
        real) echo "--on-request ${REAL_ON_REQUEST// /,}" ;;
    esac
}
set_of() {
    case "$1" in
        real) echo "$REAL_SET" ;;
        fixture) echo "$FIXTURE_SET" ;;
        padded) echo "$PADDED_SET" ;;
        *) qt_die "unknown workload $1 (real, fixture, padded)" ;;
    esac
}

mkdir -p "$W/logs" "$W/traces"
RES=$W/results.tsv
# The runs: "WORKLOAD@KVER", one image each, in $W/runs (kept for --more and --summary-only).
if [ "$SUMMARY_ONLY" = 1 ] || [ "$MORE" -gt 0 ]; then
    # The images hold the binaries of the first run.
    PARMOD=$W/bin/parmod PARMOD_PLAN=$W/bin/parmod-plan
    [ -x "$PARMOD_PLAN" ] && [ -s "$W/runs" ] || qt_die "no earlier run in $W"
    RUNS=$(cat "$W/runs")
else
    # Resolve the kernel names once (installing what is missing).
    KVERS=""
    for k in $KERNELS; do
        KVER=$k
        qt_kernel --arch x86_64
        KVERS="$KVERS $KVER"
    done
    kver_of() { # a --kernels entry (series or version) -> the version
        local v
        for v in $KVERS; do
            case "$v" in "$1"|"$1".*) echo "$v"; return 0 ;; esac
        done
        qt_die "$1 (in --workloads) is not one of the kernels:$KVERS"
    }
    first_kver=$(set -- $KVERS; echo "$1")
    RUNS=""
    for w in $WORKLOADS; do
        set_of "${w%@*}" >/dev/null
        case "$w" in
            *@*) RUNS="$RUNS ${w%@*}@$(kver_of "${w#*@}")" ;;
            real) for v in $KVERS; do RUNS="$RUNS real@$v"; done ;;
            *) RUNS="$RUNS $w@$first_kver" ;;
        esac
    done
    echo $RUNS > "$W/runs"
    qt_binaries --arch x86_64 "$W/build.log"
    # Private copies: a rebuild in the tree during the run changes nothing here.
    mkdir -p "$W/bin"
    cp "$PARMOD" "$W/bin/parmod"
    cp "$PARMOD_PLAN" "$W/bin/parmod-plan"
    PARMOD=$W/bin/parmod PARMOD_PLAN=$W/bin/parmod-plan
    git -C "$QT_REPO" log -1 --format='%h %s' > "$W/commit" 2>/dev/null || true
fi

# use_kernel KVER: the per-kernel paths (staging tree, images, configuration).
use_kernel() {
    KVER=$1 KERNEL=/boot/vmlinuz-$1 MODSRC=/lib/modules/$1
    KW=$W/k/$KVER ROOT=$W/k/$KVER/root MODDIR=$W/k/$KVER/root/lib/modules/$KVER
}

# --- set-up: fixtures, staging tree, kmod for the guest ----------------------
setup_kernel() { # KVER: fixtures, staging tree, and the loaders' files (KMOD_EXTRAS)
    use_kernel "$1"
    mkdir -p "$KW/img" "$KW/conf"
    log "kernel $KVER; building fixtures"
    qt_fixtures "$KW/fixtures"
    cat > "$KW/conf/pm-fixtures.conf" <<'EOF'
options pm_params level=7 tag=hello
EOF
    log "staging module tree $ROOT"
    qt_stage "$ROOT" --extra-dir "parmod:$KW/fixtures" --modprobe-conf "$KW/conf/pm-fixtures.conf"
    # kmod is dynamically linked: the binary, its libraries and the loader.
    KMOD_EXTRAS=()
    local kmod lib
    kmod=$(readlink -f "$(command -v kmod)")
    # (link targets must exist on the host too: mkinitramfs checks them)
    KMOD_EXTRAS+=(--extra "$kmod:/usr/bin/kmod")
    ln -sfn /usr/bin/kmod "$KW/conf/kmod-modprobe-link"
    KMOD_EXTRAS+=(--extra "$KW/conf/kmod-modprobe-link:/usr/sbin/modprobe")
    for lib in $(ldd "$kmod" | grep -o '/[^ ]*'); do
        KMOD_EXTRAS+=(--extra "$(readlink -f "$lib"):$lib")
    done
    ln -sfn /bin/busybox "$KW/conf/bb-modprobe-link"
    KMOD_EXTRAS+=(--extra "$KW/conf/bb-modprobe-link:/opt/bb/modprobe")
    # kmod and busybox read the index files; parmod reads only its plan.
    local f
    for f in "$MODDIR"/modules.*; do
        KMOD_EXTRAS+=(--extra "$f:/lib/modules/$KVER/$(basename "$f")")
    done
    KMOD_EXTRAS+=(--extra "$ROOT/etc/modprobe.d:/etc/modprobe.d")
    # The 2025 loaders, each with its own loader and libraries.
    KMOD_EXTRAS+=(--extra "$W/peers/kmod:/opt/kmod" --extra "$W/peers/systemd:/opt/systemd")
}

plan_of() { # workload -> compile the size-weighted plan
    local w=$1 cfg=()
    [ "$w" = fixture ] && cfg=(--config "$ROOT/etc/modprobe.d")
    # shellcheck disable=SC2046
    "$PARMOD_PLAN" compile --root "$ROOT" --kver "$KVER" "${cfg[@]}" -o "$KW/img/$w.plan" $(on_request_of "$w") $(set_of "$w") \
        >"$KW/img/$w.plan.log" 2>&1 || { cat "$KW/img/$w.plan.log" >&2; exit 1; }
}

image_of() { # workload (uses $KW/img/$w.plan and $KW/img/$w-profile.plan)
    local w=$1
    set_of "$w" > "$KW/conf/$w.modules"
    set_of "$w" | tr ' ' '\n' > "$KW/conf/$w.modules-load.conf"
    "$QT_REPO/initramfs/mkinitramfs.sh" --kver "$KVER" --modules-dir "$MODDIR" --plan "$KW/img/$w.plan" \
        --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" --busybox --init-script "$QT_HERE/guest/bench-init.sh" \
        "${KMOD_EXTRAS[@]}" --extra "$KW/conf/$w.modules:/etc/bench-modules" \
        --extra "$KW/conf/$w.modules-load.conf:/etc/modules-load.d/bench.conf" \
        --extra "$KW/img/$w-profile.plan:/etc/parmod-profile.plan" \
        -o "$KW/img/$w.img" 2>"$KW/img/$w.img.log" || { cat "$KW/img/$w.img.log" >&2; exit 1; }
}

# Wait (up to BENCH_QUIET_WAIT s, default 60) until the host's other load is
# below BENCH_MAX_OTHER CPUs over 2 s, so that boots do not start in a build.
wait_quiet() { qt_wait_quiet "$MAX_OTHER" "${BENCH_QUIET_WAIT:-60}"; }

# bootone RUN VARIANT TAG: one boot of RUN (WORKLOAD@KVER); appends a line to results.tsv.
# Columns: kernel workload variant tag ms modules rc load1 load5 date other ok stuck slow replaced note
# "other" = CPUs used on the host by anything but this boot, on average over
# the boot; "ok" = 1 when that stayed under BENCH_MAX_OTHER; stuck, slow,
# replaced: modules parmod reported stuck, slow, and its replacement workers;
# note: systemd-modules-load's probe threads ("threads=N", from its log), else "-".
bootone() {
    local w=${1%@*} k=${1#*@} v=$2 tag=$3 kind jobs
    case "$v" in
        modprobe-a|kmod-modprobe-a|systemd-modules-load|busybox) kind=$v jobs=1 ;;
        xargs-P*) kind=xargs jobs=${v#xargs-P} ;;
        parmod-profile) kind=parmod-profile jobs=0 ;;
        parmod) kind=parmod jobs=0 ;;
        parmod-j*) kind=parmod jobs=${v#parmod-j} ;;
        parmod-hogs*) kind=parmod jobs=0 ;;
        *) echo "bench: unknown variant $v" >&2; exit 2 ;;
    esac
    use_kernel "$k"
    local name=$k.$w.$v.$tag
    local logf=$W/logs/$name.log
    local la rc=0 b0 b1 t0 t1
    wait_quiet
    local hogs=() i
    case "$v" in parmod-hogs*) for i in $(seq 1 "${v#parmod-hogs}"); do (while :; do :; done) & hogs+=($!); done ;; esac
    la=$(cut -d' ' -f1,2 /proc/loadavg)
    times > "$W/.times0"
    b0=$(qt_host_busy) t0=$(date +%s.%N)
    qt_boot --arch x86_64 --initrd "$KW/img/$w.img" --timeout "$TMO" --smp "$SMP" \
        --log "$logf" --append "quiet bench.variant=$kind bench.jobs=$jobs" -- -cpu max || rc=$?
    [ ${#hogs[@]} = 0 ] || { kill "${hogs[@]}"; wait "${hogs[@]}" 2>/dev/null || true; }
    times > "$W/.times1"
    b1=$(qt_host_busy) t1=$(date +%s.%N)
    local other ok
    other=$(qt_others "$b0" "$b1" "$(qt_times_secs "$W/.times0")" "$(qt_times_secs "$W/.times1")" "$t0" "$t1")
    ok=$(awk -v o="$other" -v m="$MAX_OTHER" 'BEGIN{print (o <= m) ? 1 : 0}')
    local s e ms mods grc stuck slow repl note
    s=$(sed -n 's/^T: mark \[ *\([0-9.]*\)\] bench: start$/\1/p' "$logf" | head -n1)
    e=$(sed -n 's/^T: mark \[ *\([0-9.]*\)\] bench: end$/\1/p' "$logf" | head -n1)
    if [ -n "$s" ] && [ -n "$e" ]; then
        ms=$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.1f", (b - a) * 1000}')
    else
        ms=NA ok=0
    fi
    mods=$(sed -n 's/^T: module-count //p' "$logf" | head -n1)
    grc=$(sed -n 's/^T: bench-rc //p' "$logf" | head -n1)
    # parmod's own lines (not their copies in the kernel log, "K: ..."):
    # the modules reported stuck or slow, and the replacement workers started.
    stuck=$(grep -v '^K: ' "$logf" | grep -o 'parmod: stuck: [^:]*' | sort -u | grep -c . || true)
    slow=$(grep -v '^K: ' "$logf" | grep -o 'parmod: slow: [^:]*' | sort -u | grep -c . || true)
    repl=$(grep -v '^K: ' "$logf" | grep -o 'worker [0-9]* takes its place' | sort -u | grep -c . || true)
    note=$(sed -n 's/^T: sdml .*Using \([0-9]*\) probe threads.*/threads=\1/p' "$logf" | head -n1)
    sed -n 's/^T: modules //p' "$logf" | head -n1 | tr ' ' '\n' | grep . > "$W/logs/$name.modules" || true
    if grep -q '^T: trace-begin$' "$logf"; then
        qt_trace "$logf" "$W/traces/$name.trace" || true
    fi
    [ "$rc" = 0 ] || log "$name: QEMU exit $rc"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$w" "$v" "$tag" "$ms" "${mods:-NA}" \
        "${grc:-NA}" ${la} "$(date -u +%FT%TZ)" "$other" "$ok" "$stuck" "$slow" "$repl" "${note:--}" >> "$RES"
    log "$name: ${ms} ms, ${mods:-?} modules, rc ${grc:-?}, load $la, others used $other CPUs$([ "$ok" = 1 ] || echo ' (disturbed)')$( [ "$stuck$slow$repl" = 000 ] || echo ", parmod: $stuck stuck, $slow slow, $repl replacement workers")"
    local st
    st=$(qt_selftest_failure "$logf")
    [ -z "$st" ] || log "warning: $name: a crypto self-test failed ($st): does the image lack a module the kernel requests?"
    LAST_OK=$ok
}

# bootv RUN VARIANT ROUND: boot until undisturbed (BENCH_RETRIES more tries).
bootv() {
    local try=0 sfx=""
    while :; do
        bootone "$1" "$2" "$3$sfx"
        [ "$LAST_OK" = 1 ] && return 0
        try=$((try + 1))
        [ "$try" -le "$RETRIES" ] || return 0
        sfx=$(printf "\\x$(printf %x $((97 + try)))")
    done
}

run_setup() { # RUN: plans and image (and the profile boot of the real set)
    local w=${1%@*}
    use_kernel "${1#*@}"
    plan_of "$w"
    cp "$KW/img/$w.plan" "$KW/img/$w-profile.plan"
    image_of "$w"
    if variants_of "$w" | grep -qw parmod-profile; then
        # A -j 1 trace of this image gives the measured weights.
        bootv "$1" parmod-j1 profile
        # The least disturbed attempt (the undisturbed one when there is one).
        local tag
        tag=$(awk -F'\t' -v k="$KVER" -v w="$w" '$1==k && $2==w && $3=="parmod-j1" && $4 ~ /^profile/ && $5!="NA" {print $11, $4}' "$RES" |
            sort -g | head -n1 | cut -d' ' -f2)
        local t=$W/traces/$KVER.$w.parmod-j1.${tag:-profile}.trace
        [ -s "$t" ] || { echo "bench: no trace from the profiling boot of $1" >&2; exit 1; }
        # shellcheck disable=SC2046
        "$PARMOD_PLAN" compile --root "$ROOT" --kver "$KVER" --profile "$t" --profile-plan "$KW/img/$w.plan" \
            -o "$KW/img/$w-profile.plan" $(on_request_of "$w") $(set_of "$w") >"$KW/img/$w.profile-plan.log" 2>&1 \
            || { cat "$KW/img/$w.profile-plan.log" >&2; exit 1; }
        image_of "$w"
    fi
    log "$1: $(du -m "$KW/img/$w.img" | cut -f1) MB image, $(plan_q "$KW/img/$w.plan" .module_count) modules in the plan"
}

run_rounds() {
    local first=1 last=$BOOTS r run v
    if [ "$MORE" -gt 0 ]; then
        first=$(( $(awk -F'\t' '$4 ~ /^r[0-9]/ {sub(/^r/, "", $4); sub(/[a-z]*$/, "", $4); print $4}' "$RES" | sort -n | tail -n1) + 1 ))
        last=$((first + MORE - 1))
    fi
    for r in $(seq "$first" "$last"); do
        for run in $RUNS; do
            for v in $(variants_of "${run%@*}"); do
                bootv "$run" "$v" "r$r"
            done
        done
    done
}

# --- summary ------------------------------------------------------------------
# median: of the numbers on stdin, one a line (empty lines ignored); NA when none.
median() { sort -g | awk 'NF {a[++n]=$1} END{if(n==0){print "NA"} else if(n%2){print a[(n+1)/2]} else {printf "%.1f\n", (a[n/2]+a[n/2+1])/2}}'; }

# vals KVER WORKLOAD VARIANT: the times of the undisturbed boots (all boots when none was).
vals() {
    local v
    v=$(awk -F'\t' -v k="$1" -v w="$2" -v v="$3" -v mx="$MAX_OTHER" '$1==k && $2==w && $3==v && $4 ~ /^r/ && $5!="NA" && $11<=mx {print $5}' "$RES")
    [ -n "$v" ] || v=$(awk -F'\t' -v k="$1" -v w="$2" -v v="$3" '$1==k && $2==w && $3==v && $4 ~ /^r/ && $5!="NA" {print $5}' "$RES")
    printf '%s\n' "$v"
}

# bound_of KVER WORKLOAD: "critical_ms work_ms" from the median of the -j 1
# traces (of the undisturbed boots; of all when none was).
bound_of() {
    local k=$1 w=$2 t cp wk cps="" wks="" tag out tags
    tags=$(awk -F'\t' -v k="$k" -v w="$w" -v mx="$MAX_OTHER" '$1==k && $2==w && $3=="parmod-j1" && $4 ~ /^r/ && $11<=mx {print $4}' "$RES")
    [ -n "$tags" ] || tags=$(awk -F'\t' -v k="$k" -v w="$w" '$1==k && $2==w && $3=="parmod-j1" && $4 ~ /^r/ {print $4}' "$RES")
    for tag in $tags; do
        t=$W/traces/$k.$w.parmod-j1.$tag.trace
        [ -s "$t" ] || continue
        out=$("$PARMOD_PLAN" report --plan "$W/k/$k/img/$w.plan" "$t" 2>/dev/null | sed -n 's/^lower bound: //p') || continue
        cp=$(echo "$out" | sed -n 's/.*critical path \([0-9.]*\) ms.*/\1/p')
        wk=$(echo "$out" | sed -n 's/.*work \([0-9.]*\) ms.*/\1/p')
        [ -n "$cp" ] && cps="$cps$cp
"
        [ -n "$wk" ] && wks="$wks$wk
"
    done
    echo "$(printf '%s' "$cps" | median) $(printf '%s' "$wks" | median)"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="NA"||b=="NA"||b==0) print "NA"; else printf "%.2f", a/b }'; }

# The slowed host (BENCH_SLOW_BOOTS, BENCH_HOGS): parmod on the real set.
SLOW_BOOTS=${BENCH_SLOW_BOOTS:-2} HOGS=${BENCH_HOGS:-2}
run_slow_host() {
    local r run
    [ "$SLOW_BOOTS" -gt 0 ] || return 0
    for r in $(seq 1 "$SLOW_BOOTS"); do
        for run in $RUNS; do
            [ "${run%@*}" = real ] && bootone "$run" "parmod-hogs$HOGS" "s$r"
        done
    done
}

summary_slow_host() {
    awk -F'\t' '$3 ~ /^parmod-hogs/ {f=1} END {exit !f}' "$RES" || return 0
    echo
    echo "### parmod on a slowed host (busy loops on the host beside the guest)"
    echo
    echo "| kernel | busy loops | boot | ms | modules | stuck / slow / replacement workers |"
    echo "|---|---|---|---|---|---|"
    awk -F'\t' '$3 ~ /^parmod-hogs/ {h = $3; sub(/^parmod-hogs/, "", h); printf "| %s | %s | %s | %s | %s | %s/%s/%s |\n", $1, h, $4, $5, $6, $13, $14, $15}' "$RES"
}

summary() {
    [ -s "$RES" ] || { echo "bench: no results in $RES" >&2; exit 1; }
    local out=$W/results.md run w k v
    {
        echo "Machine: $(uname -m), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), QEMU $(qemu-system-x86_64 --version | head -n1 | awk '{print $4}'), TCG -smp $SMP"
        echo "parmod: $(cat "$W/commit" 2>/dev/null); host uptime: $(tr '\n' ';' < "$W/uptime.log" 2>/dev/null)"
        echo "Peers: kmod-modprobe-a = $(cat "$W/peers/kmod/version" 2>/dev/null), systemd-modules-load = systemd $(cut -d' ' -f2 "$W/peers/systemd/version" 2>/dev/null) (package $(cut -d' ' -f1 "$W/peers/systemd/version" 2>/dev/null)), from Debian ${PEERS_SUITE:-sid}; modprobe-a = Debian 12's $(dpkg-query -W -f='kmod ${Version}' kmod 2>/dev/null)"
        echo "Date: $(date -u +%F); rounds: $(awk -F'\t' '$4 ~ /^r/ {sub(/[a-z]*$/, "", $4); print $4}' "$RES" | sort -u | wc -l) (a disturbed boot is repeated as rNb)"
        for run in $RUNS; do
            w=${run%@*} k=${run#*@}
            awk -F'\t' -v k="$k" -v w="$w" '$1==k && $2==w {f=1} END {exit !f}' "$RES" || continue
            local base b cp wk bound best="" bestv="" plan=$W/k/$k/img/$w.plan
            base=$(vals "$k" "$w" modprobe-a | median)
            read -r cp wk < <(bound_of "$k" "$w")
            if [ "$w" = real ]; then
                bound=$(awk -v c="$cp" -v k="$wk" -v n="$SMP" 'BEGIN{ if (c=="NA"||k=="NA") print "NA"; else { b=k/n; if (c>b) b=c; printf "%.1f", b } }')
            else
                bound=$cp
            fi
            echo
            echo "### $w on $k ($(wc -w < <(set_of "$w")) requested, $(plan_q "$plan" .module_count) modules in the plan)"
            echo
            echo "Lower bound from the parmod -j 1 traces (median): critical path $cp ms, work $wk ms; bound = $( [ "$w" = real ] && echo "max(critical path, work / $SMP)" || echo "critical path") = $bound ms"
            echo
            echo "| variant | median ms | / modprobe -a | / bound | modules | boots (ms; disturbed in brackets) | load average at boot (1 min) / CPUs used by others during the boot | parmod stuck / slow / replacement workers, per boot |"
            echo "|---|---|---|---|---|---|---|---|"
            for v in $(variants_of "$w"); do
                local ms all mods las ssr
                awk -F'\t' -v k="$k" -v w="$w" -v v="$v" '$1==k && $2==w && $3==v {f=1} END {exit !f}' "$RES" || continue
                ms=$(vals "$k" "$w" "$v" | median)
                # every boot; a disturbed one (others used > BENCH_MAX_OTHER CPUs) in brackets, not in the median
                all=$(awk -F'\t' -v k="$k" -v w="$w" -v v="$v" -v mx="$MAX_OTHER" '$1==k && $2==w && $3==v && $4 ~ /^r/ {printf "%s%s", s, ($11<=mx ? $5 : "(" $5 ")"); s=" "}' "$RES")
                las=$(awk -F'\t' -v k="$k" -v w="$w" -v v="$v" '$1==k && $2==w && $3==v && $4 ~ /^r/ {printf "%s%s/%s", s, $8, $11; s=" "}' "$RES")
                mods=$(awk -F'\t' -v k="$k" -v w="$w" -v v="$v" '$1==k && $2==w && $3==v && $4 ~ /^r/ {print $6}' "$RES" | sort -u | tr '\n' '/' | sed 's:/$::')
                ssr="-"
                case "$v" in parmod*)
                    ssr=$(awk -F'\t' -v k="$k" -v w="$w" -v v="$v" '$1==k && $2==w && $3==v && $4 ~ /^r/ {printf "%s%s/%s/%s", s, $13, $14, $15; s=" "}' "$RES") ;;
                esac
                case "$v" in
                    parmod*) ;;
                    *) if [ "$ms" != NA ] && { [ -z "$bestv" ] || awk -v a="$ms" -v b="$bestv" 'BEGIN{exit !(a < b)}'; }; then
                           best=$v bestv=$ms
                       fi ;;
                esac
                echo "| $v | $ms | $(ratio "$ms" "$base") | $(ratio "$ms" "$bound") | $mods | $all | $las | $ssr |"
            done
            local pm unfinished
            unfinished=$(awk -F'\t' -v k="$k" -v w="$w" '$1==k && $2==w && $4 ~ /^r/ && $5=="NA" {printf "%s%s.%s", s, $3, $4; s=", "}' "$RES")
            [ -z "$unfinished" ] || { echo; echo "Boots that did not reach the loader's end (QEMU timed out or the guest failed; no time, no module set): $unfinished."; }
            pm=$(vals "$k" "$w" parmod | median)
            local th
            th=$(awk -F'\t' -v k="$k" -v w="$w" '$1==k && $2==w && $3=="systemd-modules-load" && $4 ~ /^r/ {print $16}' "$RES" | sort -u | tr '\n' ' ')
            [ -z "$th" ] || { echo; echo "systemd-modules-load probe threads (from its log): $th"; }
            echo
            echo "parmod (default settings): $pm ms = $(ratio "$pm" "$base") × modprobe -a; best other loader: ${best:-none} ($bestv ms), parmod / it = $(ratio "$pm" "$bestv")."
            # Same module set after every variant as after modprobe -a?
            local ref f d="" n diffs
            ref=$(awk -F'\t' -v k="$k" -v w="$w" '$1==k && $2==w && $3=="modprobe-a" && $4 ~ /^r/ && $5!="NA" {print $4; exit}' "$RES")
            [ -z "$ref" ] || ref=$W/logs/$k.$w.modprobe-a.$ref.modules
            if [ -n "$ref" ] && [ -f "$ref" ]; then
                for v in $(variants_of "$w"); do
                    n=0 diffs=""
                    for f in "$W"/logs/"$k.$w.$v".r*.modules; do
                        [ -f "$f" ] || continue
                        # A boot that never got to the loader's end (QEMU timed out) has no set.
                        awk -F'\t' -v k="$k" -v w="$w" -v v="$v" -v t="$(basename "$f" .modules | sed 's/.*\.//')" \
                            '$1==k && $2==w && $3==v && $4==t && $5!="NA" {f=1} END {exit !f}' "$RES" || continue
                        n=$((n + 1))
                        cmp -s "$ref" "$f" && continue
                        diffs="$diffs$( { diff "$ref" "$f" || true; } | grep '^[<>]' | tr '\n' ' ')
"
                    done
                    [ -n "$diffs" ] || continue
                    d="$d $v ($(printf '%s' "$diffs" | grep -c .) of $n boots): $(printf '%s' "$diffs" | sort -u | tr '\n' ';' | sed 's/ *;$//; s/ *;/;/g')."
                done
                echo
                if [ -z "$d" ]; then
                    echo "Module set after every boot = the set after modprobe -a ($(grep -c . "$ref") modules)."
                else
                    echo "Module set after every boot = the set after modprobe -a ($(grep -c . "$ref") modules), except (< only after modprobe -a, > only after the other):$d"
                fi
            fi
        done
        summary_slow_host
    } > "$out"
    cat "$out"
}

if [ "$SUMMARY_ONLY" = 0 ]; then
    t0=$(date +%s)
    if [ "$MORE" = 0 ]; then
        : > "$RES"
        echo "start: $(uptime)" > "$W/uptime.log"
        "$QT_HERE/peers.sh" "$W/peers"
        for k in $(for run in $RUNS; do echo "${run#*@}"; done | awk '!seen[$0]++'); do
            setup_kernel "$k"
            for run in $RUNS; do
                [ "${run#*@}" != "$k" ] || run_setup "$run"
            done
        done
    else
        echo "more: $(uptime)" >> "$W/uptime.log"
    fi
    log "runs: $RUNS; uptime: $(uptime)"
    run_rounds
    run_slow_host
    echo "end: $(uptime)" >> "$W/uptime.log"
    log "$(( $(date +%s) - t0 )) s in all; uptime: $(uptime)"
fi
summary
