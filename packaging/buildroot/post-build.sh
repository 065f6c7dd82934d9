#!/bin/sh
# Buildroot post-build script (BR2_ROOTFS_POST_BUILD_SCRIPT): compile
# /etc/parmod.plan for the image with the host parmod-plan.
#
#   post-build.sh TARGET_DIR [MODULE_OR_ALIAS...]
#
# Buildroot runs it with TARGET_DIR as $1 (extra arguments come from
# BR2_ROOTFS_POST_SCRIPT_ARGS) and HOST_DIR, BR2_CONFIG in the environment.
# The kernel version is the one module tree under TARGET_DIR/lib/modules
# (the newest when there are several; depmod has run by then). The modules:
# the arguments, else BR2_PACKAGE_PARMOD_PLAN_MODULES from BR2_CONFIG, else
# the modules-load.d files of the target tree. modprobe.d and parmod.d
# (wait-for) are read from the target tree too. No modules at all: no plan
# (parmod-modules-load.service then stays inactive).
#
# Environment: PARMOD_PLAN (the tool; default $HOST_DIR/bin/parmod-plan),
# PARMOD_PLAN_OUT (default TARGET_DIR/etc/parmod.plan).
set -eu

me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }
TARGET_DIR=${1:-${TARGET_DIR:-}}
[ -n "$TARGET_DIR" ] && [ -d "$TARGET_DIR" ] || die "usage: $me TARGET_DIR [MODULE...]"
shift

TOOL=${PARMOD_PLAN:-${HOST_DIR:+$HOST_DIR/bin/parmod-plan}}
[ -n "$TOOL" ] && [ -x "$TOOL" ] || die "no parmod-plan (HOST_DIR unset or host-parmod not built; or set PARMOD_PLAN)"
OUT=${PARMOD_PLAN_OUT:-$TARGET_DIR/etc/parmod.plan}

# The kernel of the image: the newest module tree with depmod's index.
KVER=""
for d in $(ls -1 "$TARGET_DIR/lib/modules" 2>/dev/null | sort -V); do
    [ -f "$TARGET_DIR/lib/modules/$d/modules.dep" ] && KVER=$d
done
[ -n "$KVER" ] || die "no kernel modules under $TARGET_DIR/lib/modules (BR2_LINUX_KERNEL with modules?)"

if [ $# -eq 0 ] && [ -n "${BR2_CONFIG:-}" ] && [ -f "$BR2_CONFIG" ]; then
    mods=$(sed -n 's/^BR2_PACKAGE_PARMOD_PLAN_MODULES="\(.*\)"$/\1/p' "$BR2_CONFIG")
    # shellcheck disable=SC2086
    [ -z "$mods" ] || set -- $mods
fi

mkdir -p "$(dirname "$OUT")"
log=$OUT.log
"$TOOL" compile --root "$TARGET_DIR" --kver "$KVER" -o "$OUT" "$@" 2>"$log" || {
    cat "$log" >&2
    rm -f "$log"
    die "parmod-plan compile failed"
}
if grep -q 'no modules requested' "$log"; then
    rm -f "$OUT" "$log"
    echo "$me: no modules named and none in modules-load.d: no plan" >&2
    exit 0
fi
cat "$log" >&2
rm -f "$log"
echo "$me: $OUT for kernel $KVER: $("$TOOL" show "$OUT" | sed -n 's/^modules: *//p')" >&2
