# shellcheck shell=bash
# The plumbing every QEMU script shares (sourced by run.sh, bench.sh,
# arm64.sh, demo.sh, wait-latency.sh, boot.sh and setup.sh; bash only).
#
# Sourcing sets QT_HERE (qemu-test/), QT_REPO (the checkout) and QT_ME (the
# script's name, used in messages). The functions:
#
#   qt_usage [STATUS]      print the calling script's header comment and exit
#   qt_log / qt_die MSG    "NAME: MSG" on stderr (qt_die exits 1)
#   qt_need_root WHY       exit unless root
#   qt_packages PKG...     apt-get install the Debian packages that are missing
#   qt_kernel --arch A     find (install, download) the guest kernel: sets KVER,
#                          KERNEL (the image QEMU boots), MODSRC (its module tree)
#   qt_busybox --arch A    a static busybox for the guest: sets BUSYBOX
#   qt_binaries --arch A   PARMOD and PARMOD_PLAN (built with make unless both set)
#   qt_fixtures OUTDIR     build qemu-test/fixtures for $KVER into OUTDIR
#   qt_stage ROOT [stage-modules.sh options]   the staging module tree
#   qt_boot --arch A ...   one QEMU boot (see below)
#   qt_trace LOG OUT       the trace the guest printed in base64, decoded
#   plan_q PLAN [JQ OPTIONS] FILTER   jq over `parmod-plan show --json PLAN`
#   trace_q TRACE PLAN [JQ OPTIONS] FILTER   jq over `show --trace TRACE --json PLAN`
#   plan_files PLAN, trace_t0 TRACE PLAN   module files in a plan; a trace's time origin
#   fail MSG, t KEY, has_module M, summary, summary_field WORD, summary_ms
#                          checks on the console log $LOG (failures add to $REASONS)
#
# Guest kernels: x86_64 boots a kernel installed on the host: KVER= an exact
# version (6.1.0-57-amd64) or a Debian 12 series (6.1, 6.12); default: the one
# linux-image-amd64 depends on. One that is not installed is installed with
# apt-get, image and headers (the fixtures are built against them). arm64
# and armhf boot Debian's kernel for that architecture, downloaded with
# `apt-get download` and unpacked into build/ARCH/ (multiarch; nothing is
# installed).

QT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
QT_REPO=$(cd "$QT_HERE/.." && pwd)
QT_ME=${QT_ME:-$(basename "$0" .sh)}

# The calling script's header: its comment block after the #! line, up to
# the first line that is not a comment.
qt_usage() {
    awk 'NR == 1 && /^#!/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0" >&2
    exit "${1:-2}"
}

qt_log() { echo "$QT_ME: $*" >&2; }
qt_die() { echo "$QT_ME: $*" >&2; exit 1; }

# qt_bench_list NAME: the list bench.sh assigns to NAME (REAL_SET,
# REAL_ON_REQUEST), for the scripts that boot the same set.
qt_bench_list() { sed -n "s/^$1=\"\(.*\)\"\$/\1/p" "$QT_HERE/bench.sh"; }

# qt_selftest_failure LOG: the first crypto self-test failure in a boot's
# kernel log (empty if none): a sign that the image lacks a module the
# kernel requests by itself.
qt_selftest_failure() { grep -m1 -o 'alg: self-tests for .* failed.*' "$1" || true; }

qt_need_root() { [ "$(id -u)" = 0 ] || qt_die "must run as root ($1)"; }

# qt_packages PKG...: install those that are not installed (apt-get update first).
qt_packages() {
    local p missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
    done
    [ -n "$missing" ] || return 0
    qt_log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # An index that fails (a mirror in sync, a foreign architecture) need not
    # stop the install: apt-get install says what it cannot find.
    apt-get update -qq >&2 || qt_log "apt-get update reported errors; installing anyway"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >&2 || qt_die "apt-get install$missing failed"
}

# What the x86_64 scripts need on the host.
QT_HOST_PKGS="qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static kmod cpio xz-utils zstd make gcc jq"

# --- architectures ---------------------------------------------------------
# qt_arch A: sets the per-architecture facts for A (x86_64, arm64, armhf).
qt_arch() {
    QT_ARCH=$1
    case "$1" in
        x86_64)
            QT_MAKE_ARCH=x86_64 QT_RUST_TARGET=x86_64-unknown-linux-musl QT_FILE_ARCH='x86-64'
            QT_QEMU=qemu-system-x86_64 QT_MACHINE=() QT_CONSOLE=ttyS0 QT_QEMU_PKG=qemu-system-x86 ;;
        arm64)
            # -cpu max,pauth-impdef=on: every arm64 feature, with QEMU's cheap
            # pointer authentication algorithm (the architected one is slow under TCG).
            QT_MAKE_ARCH=aarch64 QT_RUST_TARGET=aarch64-unknown-linux-musl QT_FILE_ARCH='ARM aarch64'
            QT_QEMU=qemu-system-aarch64 QT_MACHINE=(-M virt -cpu max,pauth-impdef=on) QT_CONSOLE=ttyAMA0
            QT_QEMU_PKG=qemu-system-arm QT_KMETA=linux-image-arm64 ;;
        armhf)
            # -cpu max: an AArch32 CPU with the CRC and crypto extensions.
            QT_MAKE_ARCH=armv7 QT_RUST_TARGET=armv7-unknown-linux-musleabihf QT_FILE_ARCH='ARM, EABI5'
            QT_QEMU=qemu-system-arm QT_MACHINE=(-M virt -cpu max) QT_CONSOLE=ttyAMA0
            QT_QEMU_PKG=qemu-system-arm QT_KMETA=linux-image-armmp ;;
        *) qt_die "architecture '$1': choose x86_64, arm64 or armhf" ;;
    esac
}

# qt_foreign_arch A: let dpkg and apt know packages of architecture A.
qt_foreign_arch() {
    dpkg --print-foreign-architectures | grep -qx "$1" && return 0
    qt_log "adding the $1 architecture to dpkg"
    dpkg --add-architecture "$1"
    apt-get update -q >&2 || true
}

# qt_fetch_deb PACKAGE DIR: download PACKAGE (e.g. busybox-static:arm64) and
# unpack it into DIR, once (DIR/.unpacked marks it done).
qt_fetch_deb() {
    local pkg=$1 dir=$2 tmp
    [ -f "$dir/.unpacked" ] && return 0
    qt_log "downloading $pkg"
    tmp=$dir.deb
    rm -rf "$dir" "$tmp"
    mkdir -p "$tmp"
    # _apt cannot write to root-owned directories: download as root (quietly).
    (cd "$tmp" && apt-get download "$pkg" >"$tmp/apt.log" 2>&1) || {
        cat "$tmp/apt.log" >&2
        return 1
    }
    dpkg-deb -x "$tmp"/*.deb "$dir"
    rm -rf "$tmp"
    touch "$dir/.unpacked"
}

# --- the guest kernel ------------------------------------------------------
# qt_kernel --arch A: sets KVER, KERNEL, MODSRC.
#   x86_64: KVER from the environment (a version, or a series: see
#   qt_kernel_series), else the version linux-image-amd64 depends on when its
#   image and headers are there, else the newest installed kernel with both;
#   installs QT_HOST_PKGS first, and the kernel's image and headers if missing.
#   arm64/armhf: the kernel package $QT_KMETA:A depends on, downloaded.
qt_kernel() {
    [ "$1" = --arch ] || qt_die "qt_kernel --arch A"
    qt_arch "$2"
    case "$QT_ARCH" in
        x86_64) qt_kernel_host ;;
        *) qt_kernel_foreign ;;
    esac
}

qt_kernel_host() {
    qt_packages $QT_HOST_PKGS
    local pick="${KVER:-}" meta d
    if [[ "$pick" =~ ^[0-9]+\.[0-9]+$ ]]; then
        qt_kernel_series "$pick"
        pick=$KVER
    elif [ -z "$pick" ]; then
        meta=$(dpkg-query -W -f='${Depends}\n' linux-image-amd64 2>/dev/null |
            tr ',' '\n' | sed -n 's/^ *linux-image-\([0-9][^ ]*\).*/\1/p' | head -n1)
        if [ -n "$meta" ] && [ -f "/boot/vmlinuz-$meta" ] && [ -d "/lib/modules/$meta/build" ]; then
            pick=$meta
        else
            for d in $(ls -1 /lib/modules 2>/dev/null | sort -V -r); do
                if [ -f "/boot/vmlinuz-$d" ] && [ -d "/lib/modules/$d/build" ]; then
                    pick=$d
                    break
                fi
            done
        fi
    fi
    [ -n "$pick" ] || qt_die "no kernel with /boot/vmlinuz-KVER and /lib/modules/KVER/build"
    # An exact version that is not installed: Debian's packages of that name.
    [ -f "/boot/vmlinuz-$pick" ] || qt_packages "linux-image-$pick"
    [ -f "/boot/vmlinuz-$pick" ] || qt_die "no /boot/vmlinuz-$pick after installing linux-image-$pick"
    # The headers (for the fixtures) may lag behind the image: make sure they match.
    [ -f "/lib/modules/$pick/build/Makefile" ] || qt_packages "linux-headers-$pick"
    KVER=$pick KERNEL=/boot/vmlinuz-$pick MODSRC=/lib/modules/$pick
}

# qt_kernel_series S (e.g. 6.1, 6.12): sets KVER to Debian 12's amd64 kernel
# of that series: the newest installed one (image and headers), else the one
# its metapackage depends on (linux-image-amd64 for 6.1, linux-image-S-amd64
# for the others, e.g. 6.12.117+deb12-amd64), which qt_kernel_host installs.
qt_kernel_series() {
    local s=$1 v meta
    KVER=""
    for v in $(ls -1 /lib/modules 2>/dev/null | sort -V -r); do
        case "$v" in
            "$s".*-amd64)
                if [ -f "/boot/vmlinuz-$v" ] && [ -f "/lib/modules/$v/build/Makefile" ]; then
                    KVER=$v
                    return 0
                fi ;;
        esac
    done
    meta=linux-image-$s-amd64
    [ "$s" = 6.1 ] && meta=linux-image-amd64
    v=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: linux-image-\([0-9][^ :]*\).*/\1/p' | head -n1)
    case "$v" in
        "$s".*) KVER=$v ;;
        *) qt_die "no installed $s kernel and apt-cache finds none through $meta (apt-get update?)" ;;
    esac
}

qt_kernel_foreign() {
    qt_packages "$QT_QEMU_PKG" cpio kmod file jq
    qt_foreign_arch "$QT_ARCH"
    local kpkg w=$QT_REPO/build/$QT_ARCH
    # The kernel package the metapackage points at (linux-image-6.1.0-N-arm64).
    kpkg=$(apt-cache depends "$QT_KMETA:$QT_ARCH" 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ :]*\).*/\1/p' | head -n1)
    [ -n "$kpkg" ] || qt_die "apt-cache knows no $QT_KMETA:$QT_ARCH (apt-get update after dpkg --add-architecture $QT_ARCH?)"
    KVER=${kpkg#linux-image-}
    qt_fetch_deb "$kpkg:$QT_ARCH" "$w/kernel-$KVER" || qt_die "cannot fetch $kpkg:$QT_ARCH"
    KERNEL=$w/kernel-$KVER/boot/vmlinuz-$KVER MODSRC=$w/kernel-$KVER/lib/modules/$KVER
    [ -f "$KERNEL" ] || qt_die "no $KERNEL in $kpkg"
}

# qt_busybox --arch A: sets BUSYBOX (x86_64: the host's busybox-static).
qt_busybox() {
    qt_arch "$2"
    if [ "$QT_ARCH" = x86_64 ]; then
        BUSYBOX=$(command -v busybox) || qt_die "no busybox (apt-get install busybox-static)"
    else
        local dir=$QT_REPO/build/$QT_ARCH/busybox
        qt_fetch_deb "busybox-static:$QT_ARCH" "$dir" || qt_die "cannot fetch busybox-static:$QT_ARCH"
        BUSYBOX=$dir/bin/busybox
    fi
    file -L "$BUSYBOX" | grep -q "$QT_FILE_ARCH.*statically linked" || qt_die "$BUSYBOX is not a static $QT_ARCH busybox"
}

# --- parmod ----------------------------------------------------------------
# qt_binaries --arch A [LOGFILE]: unless PARMOD and PARMOD_PLAN are both
# set, `make ARCH=... build` (output in LOGFILE, shown on failure). PARMOD is
# the runtime for A, PARMOD_PLAN the host's parmod-plan.
qt_binaries() {
    qt_arch "$2"
    local logf=${3:-$QT_REPO/build/qemu-build.log}
    if [ -z "${PARMOD:-}" ] || [ -z "${PARMOD_PLAN:-}" ]; then
        qt_log "building parmod for $QT_RUST_TARGET (make ARCH=$QT_MAKE_ARCH build)"
        mkdir -p "$(dirname "$logf")"
        make -C "$QT_REPO" --no-print-directory ARCH="$QT_MAKE_ARCH" build >"$logf" 2>&1 || {
            cat "$logf" >&2
            qt_die "make ARCH=$QT_MAKE_ARCH build failed"
        }
        PARMOD=${PARMOD:-$QT_REPO/target/$QT_RUST_TARGET/release/parmod}
        PARMOD_PLAN=${PARMOD_PLAN:-$QT_REPO/target/x86_64-unknown-linux-musl/host/parmod-plan}
    fi
    [ -x "$PARMOD" ] && [ -x "$PARMOD_PLAN" ] || qt_die "no parmod binaries ($PARMOD, $PARMOD_PLAN)"
    file -L "$PARMOD" | grep -q "$QT_FILE_ARCH" || qt_die "$PARMOD is not a $QT_ARCH binary"
}

# --- fixtures and the staging tree -------------------------------------------
# qt_fixtures OUTDIR: the fixture modules for $KVER (log in OUTDIR.log).
qt_fixtures() {
    local out=$1
    mkdir -p "$(dirname "$out")"
    make -C "$QT_HERE/fixtures" --no-print-directory KVER="$KVER" OUTDIR="$out" >"$out.log" 2>&1 || {
        cat "$out.log" >&2
        qt_die "fixture build failed ($out.log)"
    }
}

# qt_stage ROOT [--extra-dir NAME:DIR] [--modprobe-conf FILE]...: the module
# tree of $KVER from $MODSRC staged in ROOT (initramfs/stage-modules.sh; log
# in ROOT.log). When the fixtures are in it and depmod did not turn their
# MODULE_SOFTDEP into modules.softdep (older kmod), a modprobe.d line gives it.
qt_stage() {
    local root=$1
    shift
    "$QT_REPO/initramfs/stage-modules.sh" --kver "$KVER" --src "$MODSRC" -o "$root" "$@" 2>"$root.log" || {
        cat "$root.log" >&2
        qt_die "staging the module tree failed ($root.log)"
    }
    local md=$root/lib/modules/$KVER
    if [ -d "$md/extra/parmod" ] && ! grep -q 'softdep pm_soft_main pre: pm_soft_pre' "$md/modules.softdep"; then
        echo "softdep pm_soft_main pre: pm_soft_pre" >> "$root/etc/modprobe.d/pm-fixtures.conf"
    fi
}

# --- one boot ----------------------------------------------------------------
# qt_boot --arch A --initrd IMG --log LOG [--kernel K] [--append ARGS]
#         [--timeout S] [--smp N] [--mem MB] [-- QEMU ARGS...]
# Boots KERNEL (default $KERNEL) under TCG (KVM hangs on these machines) with
# -smp N (default 2), -m MB (default 1024), -nographic -no-reboot -nic none
# (scenarios add their devices) and "console=CONSOLE panic=-1 loglevel=4 ARGS";
# QEMU runs under timeout (default 300 s). The guest is expected to power off;
# a panic reboots and -no-reboot makes QEMU exit then. The raw console goes to
# LOG.raw, the console without CRs to LOG. Sets QT_BOOT_RC (QEMU's status, 124
# on timeout) and QT_BOOT_SECS; returns QT_BOOT_RC.
qt_boot() {
    local arch=x86_64 initrd="" logf="" kernel=${KERNEL:-} append="" tmo=300 smp=2 mem=1024
    while [ $# -gt 0 ]; do
        case "$1" in
            --arch) arch=$2; shift 2 ;;
            --initrd) initrd=$2; shift 2 ;;
            --log) logf=$2; shift 2 ;;
            --kernel) kernel=$2; shift 2 ;;
            --append) append=$2; shift 2 ;;
            --timeout) tmo=$2; shift 2 ;;
            --smp) smp=$2; shift 2 ;;
            --mem) mem=$2; shift 2 ;;
            --) shift; break ;;
            *) qt_die "qt_boot: unknown argument $1" ;;
        esac
    done
    [ -n "$initrd" ] && [ -n "$logf" ] || qt_die "qt_boot needs --initrd and --log"
    [ -f "$kernel" ] || qt_die "no kernel '$kernel'"
    qt_arch "$arch"
    mkdir -p "$(dirname "$logf")"
    local t0 t1
    t0=$(date +%s.%N)
    QT_BOOT_RC=0
    # stdin from /dev/null: the -nographic serial/monitor mux then reads nothing.
    timeout --kill-after=10 "$tmo" "$QT_QEMU" "${QT_MACHINE[@]}" \
        -accel tcg,thread=multi -smp "$smp" -m "$mem" \
        -nographic -no-reboot -nic none \
        -kernel "$kernel" -initrd "$initrd" \
        -append "console=$QT_CONSOLE panic=-1 loglevel=4 $append" \
        "$@" </dev/null >"$logf.raw" 2>&1 || QT_BOOT_RC=$?
    t1=$(date +%s.%N)
    tr -d '\r' <"$logf.raw" >"$logf"
    QT_BOOT_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}')
    return "$QT_BOOT_RC"
}

# qt_trace LOG OUT: decode the trace the guest printed in base64 between
# "T: trace-begin" and "T: trace-end"; returns 1 when there is none.
qt_trace() {
    sed -n '/^T: trace-begin$/,/^T: trace-end$/p' "$1" | grep -v '^T: ' | base64 -d >"$2" 2>/dev/null
    [ -s "$2" ]
}

# --- CPU time on the host and in the guest --------------------------------------
# The host's busy CPU time in jiffies (USER_HZ = 100): user, nice, system,
# irq, softirq, steal of the "cpu" line of /proc/stat.
qt_host_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
# qt_times_secs FILE: the children's user + system seconds in the output of
# `times` (run in the caller's shell: a $(...) subshell has no children).
qt_times_secs() { tail -n1 "$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } printf "%.2f", t }'; }
# qt_others B0 B1 C0 C1 T0 T1: the CPUs the rest of the host used between two
# readings (qt_host_busy B, qt_times_secs C of our children, date +%s.%N T),
# on average.
qt_others() {
    awk -v b0="$1" -v b1="$2" -v c0="$3" -v c1="$4" -v t0="$5" -v t1="$6" \
        'BEGIN{ o = ((b1 - b0) / 100 - (c1 - c0)) / (t1 - t0); if (o < 0) o = 0; printf "%.2f", o }'
}
# qt_wait_quiet MAX SECONDS: wait (at most SECONDS) until the host's load
# over 2 s is at most MAX CPUs, so that a timed boot does not start in a build.
qt_wait_quiet() {
    local waited=0 b0 b1 other
    while :; do
        b0=$(qt_host_busy); sleep 2; b1=$(qt_host_busy)
        other=$(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", (b - a) / 100 / 2}')
        awk -v o="$other" -v m="$1" 'BEGIN{exit !(o <= m)}' && return 0
        waited=$((waited + 2))
        if [ "$waited" -ge "$2" ]; then
            qt_log "host still busy ($other CPUs in use by others), booting anyway"
            return 0
        fi
        sleep 3; waited=$((waited + 3))
    done
}
# qt_guest_busy_ms A B: how long the guest's vCPUs were busy (user, nice,
# system, irq, softirq, steal; summed over the vCPUs) between two of its
# /proc/stat "cpu" lines without the "cpu" (A: the earlier), in ms (10 ms
# steps); NA when one is missing.
qt_guest_busy_ms() {
    if [ -n "$1" ] && [ -n "$2" ]; then
        printf '%s\n%s\n' "$1" "$2" | awk 'NR == 1 { x = $1 + $2 + $3 + $6 + $7 + $8 } NR == 2 { printf "%d", ($1 + $2 + $3 + $6 + $7 + $8 - x) * 10 }'
    else
        echo NA
    fi
}

# --- plan and trace, through parmod-plan's JSON ------------------------------
# (jq options such as --arg NAME VALUE may come before FILTER)
plan_q() { local p=$1; shift; "$PARMOD_PLAN" show --json "$p" | jq -r "$@"; }
trace_q() { local tr=$1 p=$2; shift 2; "$PARMOD_PLAN" show --trace "$tr" --json "$p" | jq -r "$@"; }
# The number of module files a plan loads (built-in modules have none).
plan_files() { plan_q "$1" '[.modules[] | select(.path != null)] | length'; }
# trace_t0 TRACE PLAN: CLOCK_MONOTONIC (ns) at parmod's start, the origin of
# the trace's start_ms/end_ms. `show --trace --json` does not print it (yet):
# until it does, it is read from the header (bytes 24..32, little-endian),
# after checking the magic and format version 1 (docs/plan-format.md).
trace_t0() {
    local v
    v=$(trace_q "$1" "$2" '.t0_ns // empty') || return 1
    if [ -z "$v" ]; then
        [ "$(head -c 8 "$1")" = PARMODTR ] && [ "$(od -A n -t u4 -j 8 -N 4 "$1" | tr -d ' ')" = 1 ] ||
            qt_die "$1: not a version-1 parmod trace, and parmod-plan prints no t0_ns"
        v=$(od -A n -t u8 -j 24 -N 8 "$1" | tr -d ' ')
    fi
    echo "$v"
}

# --- checks on the console log $LOG --------------------------------------------
REASONS=""
fail() { REASONS="${REASONS:+$REASONS; }$*"; }
# t KEY: the value of the first "T: KEY ..." line.
t() { sed -n "s/^T: $1 //p" "$LOG" | head -n1; }
has_module() { t modules | tr ' ' '\n' | grep -qx "$1"; }
# parmod's summary line ("parmod: N loaded (...) ... in T ms").
summary() { grep -m1 -o 'parmod: [0-9]* loaded.*in [0-9]* ms' "$LOG" || true; }
summary_field() { summary | grep -o "[0-9]* $1" | head -n1 | cut -d' ' -f1; }
summary_ms() { summary | sed -n 's/.* in \([0-9]*\) ms$/\1/p'; }
