#!/bin/sh
# Make a module tree to compile plans against: a copy of /lib/modules/KVER
# (hard links when on the same file system) plus extra module files in
# extra/NAME/, indexed with depmod.
#
#   initramfs/stage-modules.sh --kver V -o ROOT [--src DIR] [--extra-dir NAME:DIR]...
#       [--modprobe-conf FILE]... [--decompress]
#
# ROOT gets lib/modules/V (from DIR, default /lib/modules/V, without build/ and
# source/) and etc/modprobe.d/ with the given confs. --decompress stores every
# .ko.xz/.ko.zst/.ko.gz as a plain .ko (for kernels that cannot decompress
# modules themselves), before depmod so that the plan names the .ko files.
# depmod replaces the index files by rename, so the source tree is never written.
set -eu

me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }

KVER="" ROOT="" SRC="" EXTRAS="" CONFS="" DECOMP=0
NL='
'
while [ $# -gt 0 ]; do
    case "$1" in
        --kver) KVER=$2; shift 2 ;;
        -o) ROOT=$2; shift 2 ;;
        --src) SRC=$2; shift 2 ;;
        --extra-dir) EXTRAS="$EXTRAS$2$NL"; shift 2 ;;
        --modprobe-conf) CONFS="$CONFS$2$NL"; shift 2 ;;
        --decompress) DECOMP=1; shift ;;
        *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[ -n "$KVER" ] && [ -n "$ROOT" ] || die "need --kver and -o"
[ -n "$SRC" ] || SRC=/lib/modules/$KVER
[ -d "$SRC/kernel" ] || die "no module tree at $SRC"
command -v depmod >/dev/null || PATH=$PATH:/sbin:/usr/sbin

DST=$ROOT/lib/modules/$KVER
rm -rf "$DST"
mkdir -p "$ROOT/lib/modules" "$ROOT/etc/modprobe.d"
# Hard links are cheap; fall back to a copy across file systems.
cp -al "$SRC" "$DST" 2>/dev/null || { rm -rf "$DST"; cp -a "$SRC" "$DST"; }
rm -rf "$DST/build" "$DST/source"

printf '%s' "$EXTRAS" | while IFS= read -r ex; do
    [ -n "$ex" ] || continue
    name=${ex%%:*}
    dir=${ex#*:}
    [ -d "$dir" ] || die "no directory $dir"
    mkdir -p "$DST/extra/$name"
    found=0
    for ko in "$dir"/*.ko "$dir"/*.ko.xz "$dir"/*.ko.zst "$dir"/*.ko.gz; do
        [ -f "$ko" ] || continue
        cp "$ko" "$DST/extra/$name/"
        found=1
    done
    [ "$found" = 1 ] || die "no module files in $dir"
done

rm -f "$ROOT"/etc/modprobe.d/*.conf
printf '%s' "$CONFS" | while IFS= read -r c; do
    [ -n "$c" ] || continue
    cp "$c" "$ROOT/etc/modprobe.d/$(basename "$c")"
done

if [ "$DECOMP" = 1 ]; then
    find "$DST" \( -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) | while IFS= read -r f; do
        case "$f" in
            *.xz) xz -dc "$f" > "${f%.xz}" ;;
            *.zst) zstd -q -dc "$f" > "${f%.zst}" ;;
            *.gz) gzip -dc "$f" > "${f%.gz}" ;;
        esac
        rm -f "$f"
    done
fi

# Index files are replaced (written to a temp file and renamed), never written
# through the hard links.
for f in "$DST"/modules.*; do
    [ -f "$f" ] || continue
    cp "$f" "$f.tmp" && mv "$f.tmp" "$f"
done
depmod -b "$ROOT" "$KVER"
echo "$me: $DST ready" >&2
