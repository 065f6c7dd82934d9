#!/bin/bash
# A/B boots of parmod builds on the benchmark's real module set (bench.sh's
# REAL_SET), against modprobe -a and systemd-modules-load in the same run.
# Run as root.
#
#   qemu-test/ab.sh [--rounds N] [--out DIR] NAME=REV...
#
# Each NAME=REV is a git revision of this repository, built on its own
# (git archive into DIR/../src/NAME, one shared cargo target directory):
# its parmod and its parmod-plan, and a plan that parmod-plan compiles with
# default settings (no --jobs, no --profile). Each variant has an image of
# its own (guest/bench-init.sh: the same module files, kmod, the newest
# systemd-modules-load from qemu-test/peers.sh) and is booted once per round
# with default settings (bench.variant=parmod bench.jobs=0); modprobe-a and
# systemd-modules-load boot from the first variant's image. One variant per
# fresh boot, N rounds (default 3), the order of the variants rotated by one
# every round. KVER= picks the kernel (6.1, 6.12 or a version).
#
# Output: DIR (default build/ab/KVER)/results.tsv, one line per boot:
#   variant round ms modules rc load1 others date busy
# (load1: the host's 1-minute load average before the boot; others: CPUs
# the rest of the host used during the boot, on average; busy: how long the
# guest's vCPUs were busy while the loader ran, in ms summed over the vCPUs,
# from its /proc/stat at the marks in 10 ms steps), and
# the medians per variant with their ratios to modprobe -a and to
# systemd-modules-load of the same run, printed at the end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROUNDS=3 OUT=""
SPECS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *=*) SPECS+=("$1"); shift ;;
        *) qt_usage ;;
    esac
done
[ ${#SPECS[@]} -gt 0 ] || qt_die "name at least one variant (NAME=REV)"
qt_need_root "mknod in the images"
qt_kernel --arch x86_64
qt_busybox --arch x86_64
AB=$QT_REPO/build/ab
W=${OUT:-$AB/$KVER}
mkdir -p "$W/logs" "$AB/src" "$AB/bin"
MODULES=$(qt_bench_list REAL_SET)
[ -n "$MODULES" ] || qt_die "no REAL_SET in $QT_HERE/bench.sh"
ON_REQUEST=$(qt_bench_list REAL_ON_REQUEST)
[ -n "$ON_REQUEST" ] || qt_die "no REAL_ON_REQUEST in $QT_HERE/bench.sh"
PEERS=$AB/peers
[ -x "$PEERS/systemd/bin/systemd-modules-load" ] || "$QT_HERE/peers.sh" "$PEERS"

# --- the builds ------------------------------------------------------------------
NAMES=()
for spec in "${SPECS[@]}"; do
    name=${spec%%=*} rev=${spec#*=}
    commit=$(git -C "$QT_REPO" rev-parse --verify "$rev^{commit}") || qt_die "$spec: no such revision"
    bin=$AB/bin/$name
    if [ "$(cat "$bin/commit" 2>/dev/null)" != "$commit" ]; then
        qt_log "$name: building $(git -C "$QT_REPO" log -1 --format='%h %s' "$commit" | cut -c1-70)"
        src=$AB/src/$name
        rm -rf "$src" "$bin"
        mkdir -p "$src" "$bin"
        # (-m: files dated now, so that cargo does not take another variant's
        # build in the shared target directory for this one's)
        git -C "$QT_REPO" archive "$commit" | tar -x -m -C "$src"
        export CARGO_TARGET_DIR=$AB/target
        {
            cargo build --manifest-path "$src/Cargo.toml" --release --target x86_64-unknown-linux-musl \
                --no-default-features --features runtime --bin parmod &&
                cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/parmod" "$bin/" &&
                cargo build --manifest-path "$src/Cargo.toml" --profile host --target x86_64-unknown-linux-musl \
                    --features host --bin parmod-plan &&
                cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/host/parmod-plan" "$bin/"
        } >"$AB/$name.build.log" 2>&1 || { tail -n 30 "$AB/$name.build.log" >&2; qt_die "$name: build failed"; }
        echo "$commit" >"$bin/commit"
    fi
    for other in "${NAMES[@]}"; do
        [ "$other" = "$name" ] || [ "$(cat "$AB/bin/$other/commit")" = "$commit" ] ||
            ! cmp -s "$AB/bin/$other/parmod" "$bin/parmod" ||
            qt_die "$name and $other are different revisions but the same parmod binary: remove $AB/bin and build again"
    done
    NAMES+=("$name")
done

# --- the module tree and the images -------------------------------------------------
MODSRC=/lib/modules/$KVER ROOT=$W/root MODDIR=$W/root/lib/modules/$KVER
if [ ! -d "$MODDIR" ]; then
    qt_log "staging the module tree of $KVER"
    qt_stage "$ROOT"
fi
echo "$MODULES" >"$W/bench-modules"
echo "$MODULES" | tr ' ' '\n' >"$W/bench.conf"
# kmod's modprobe (dynamically linked: its libraries and loader), its index
# files, and the newest kmod and systemd-modules-load, as bench.sh builds them.
EXTRAS=(--extra "$W/bench-modules:/etc/bench-modules" --extra "$W/bench.conf:/etc/modules-load.d/bench.conf")
kmod=$(readlink -f "$(command -v kmod)")
ln -sfn /usr/bin/kmod "$W/kmod-modprobe-link"
EXTRAS+=(--extra "$kmod:/usr/bin/kmod" --extra "$W/kmod-modprobe-link:/usr/sbin/modprobe")
for lib in $(ldd "$kmod" | grep -o '/[^ ]*'); do
    EXTRAS+=(--extra "$(readlink -f "$lib"):$lib")
done
for f in "$MODDIR"/modules.*; do
    EXTRAS+=(--extra "$f:/lib/modules/$KVER/$(basename "$f")")
done
EXTRAS+=(--extra "$ROOT/etc/modprobe.d:/etc/modprobe.d" --extra "$PEERS/kmod:/opt/kmod" --extra "$PEERS/systemd:/opt/systemd")
for name in "${NAMES[@]}"; do
    bin=$AB/bin/$name
    req=(--on-request "${ON_REQUEST// /,}")
    if ! "$bin/parmod-plan" compile --help 2>&1 | grep -q -- --on-request; then
        # Older than plan format 4. The peers boot the first variant's image:
        # name a revision with --on-request first.
        [ "$name" != "${NAMES[0]}" ] || qt_die "$name: this parmod-plan has no --on-request (older than plan format 4); name a newer revision first"
        qt_log "warning: $name: this parmod-plan has no --on-request: its image lacks what the kernel requests ($ON_REQUEST)"
        req=()
    fi
    # shellcheck disable=SC2086
    "$bin/parmod-plan" compile --root "$ROOT" --kver "$KVER" -o "$W/$name.plan" "${req[@]}" $MODULES >"$W/$name.plan.log" 2>&1 ||
        { cat "$W/$name.plan.log" >&2; qt_die "$name: compile failed"; }
    "$QT_REPO/initramfs/mkinitramfs.sh" --kver "$KVER" --modules-dir "$MODDIR" --plan "$W/$name.plan" \
        --parmod "$bin/parmod" --parmod-plan "$bin/parmod-plan" --busybox --init-script "$QT_HERE/guest/bench-init.sh" \
        "${EXTRAS[@]}" --extra "$W/$name.plan:/etc/parmod-profile.plan" -o "$W/$name.img" 2>"$W/$name.img.log" ||
        { cat "$W/$name.img.log" >&2; qt_die "$name: image failed"; }
done

# --- the boots ------------------------------------------------------------------------
RES=$W/results.tsv
touch "$RES"
boot() { # VARIANT ROUND
    local v=$1 r=$2 img kind=parmod logf la b0 b1 t0 t1 s e ms mods rc
    case "$v" in
        modprobe-a|systemd-modules-load) kind=$v img=$W/${NAMES[0]}.img ;;
        *) img=$W/$v.img ;;
    esac
    logf=$W/logs/$v.r$r.log
    la=$(cut -d' ' -f1 /proc/loadavg)
    times >"$W/.times0"
    b0=$(qt_host_busy) t0=$(date +%s.%N)
    qt_boot --arch x86_64 --initrd "$img" --timeout 240 --log "$logf" \
        --append "quiet bench.variant=$kind bench.jobs=0" -- -cpu max || true
    times >"$W/.times1"
    b1=$(qt_host_busy) t1=$(date +%s.%N)
    s=$(sed -n 's/^T: mark \[ *\([0-9.]*\)\] bench: start$/\1/p' "$logf" | head -n1)
    e=$(sed -n 's/^T: mark \[ *\([0-9.]*\)\] bench: end$/\1/p' "$logf" | head -n1)
    ms=NA
    [ -n "$s" ] && [ -n "$e" ] && ms=$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.1f", (b - a) * 1000}')
    mods=$(sed -n 's/^T: module-count //p' "$logf" | head -n1)
    rc=$(sed -n 's/^T: bench-rc //p' "$logf" | head -n1)
    # The host's CPU time less QEMU's (this shell's children: `times`), per second of the boot.
    local others
    others=$(qt_others "$b0" "$b1" "$(qt_times_secs "$W/.times0")" "$(qt_times_secs "$W/.times1")" "$t0" "$t1")
    local cpu
    cpu=$(qt_guest_busy_ms "$(sed -n 's/^T: cpu-start //p' "$logf")" "$(sed -n 's/^T: cpu-end //p' "$logf")")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$v" "$r" "$ms" "${mods:-NA}" "${rc:-NA}" "$la" "$others" \
        "$(date -u +%FT%TZ)" "$cpu" >>"$RES"
    qt_log "$v r$r: $ms ms, ${mods:-?} modules, rc ${rc:-?}, load $la, others used $others CPUs, guest busy $cpu ms"
    local st
    st=$(qt_selftest_failure "$logf")
    [ -z "$st" ] || qt_log "warning: $v r$r: a crypto self-test failed ($st): does the image lack a module the kernel requests?"
}
VARIANTS=(modprobe-a systemd-modules-load "${NAMES[@]}")
first=$(( $(cut -f2 "$RES" 2>/dev/null | sort -n | tail -n1 || echo 0) + 1 ))
for r in $(seq "$first" $((first + ROUNDS - 1))); do
    n=${#VARIANTS[@]}
    for i in $(seq 0 $((n - 1))); do
        boot "${VARIANTS[$(((i + r) % n))]}" "$r"
    done
done

# --- the summary ------------------------------------------------------------------------
median() { sort -g | awk 'NF {a[++n]=$1} END{if(n==0){print "NA"} else if(n%2){print a[(n+1)/2]} else {printf "%.1f\n", (a[n/2]+a[n/2+1])/2}}'; }
med() { awk -F'\t' -v v="$1" '$1==v && $3!="NA" {print $3}' "$RES" | median; }
base=$(med modprobe-a) sdml=$(med systemd-modules-load)
echo "kernel $KVER, $(cut -f2 "$RES" | sort -u | grep -c .) rounds; medians of all boots in $RES"
printf '%-22s %10s %8s %8s %8s  %s\n' variant "median ms" "/ mp -a" "/ sdml" "busy ms" "boots (ms)"
for v in "${VARIANTS[@]}"; do
    m=$(med "$v")
    printf '%-22s %10s %8s %8s %8s  %s\n' "$v" "$m" \
        "$(awk -v a="$m" -v b="$base" 'BEGIN{ if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.3f", a / b }')" \
        "$(awk -v a="$m" -v b="$sdml" 'BEGIN{ if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.3f", a / b }')" \
        "$(awk -F'\t' -v v="$v" '$1==v && $9!="" && $9!="NA" {print $9}' "$RES" | median)" \
        "$(awk -F'\t' -v v="$v" '$1==v {printf "%s ", $3}' "$RES")"
done
