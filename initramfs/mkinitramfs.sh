#!/bin/sh
# Build a newc cpio initramfs around parmod and a compiled plan.
#
#   initramfs/mkinitramfs.sh --kver V --modules-dir DIR --plan PLAN --parmod BIN
#       [--parmod-plan TOOL] [--busybox] [--busybox-bin PATH]
#       [--extra SRC:DST]... [--init-script FILE] [--cmdline "ARGS"] [--firmware]
#       [--compress none|gzip] -o OUT
#
# Image layout:
#   /init                 parmod (or FILE from --init-script, then parmod is /bin/parmod)
#   /bin/parmod           -> /init when parmod is /init
#   /sbin/modprobe        -> parmod (its modprobe personality; request_module() runs it)
#   /etc/parmod.plan      PLAN
#   /etc/parmod.cmdline   ARGS (--cmdline): root parameters built in, e.g.
#                         "root=PARTUUID=... rootflags=noatime"; /init takes them
#                         as defaults that the kernel command line overrides
#   /lib/modules/V/PATH   exactly the module files the plan names (copied from DIR/PATH)
#   /lib/firmware/NAME    (--firmware) the firmware files those modules name
#                         (modinfo firmware=) that ROOT/lib/firmware has, as
#                         NAME, NAME.xz or NAME.zst: for requests made before
#                         the switch to the real root
#   /bin/busybox + applet links (--busybox; never a modprobe link)
#   /dev/console, /dev/null, and empty /proc /sys /dev /tmp /run
#   extras: SRC copied to DST (DST is a path inside the image)
#
# DIR is the module tree the plan was compiled against (ROOT/lib/modules/V).
# PLAN's module paths come from `parmod-plan show --json PLAN` (TOOL: --parmod-plan,
# else $PARMOD_PLAN, else target/host/parmod-plan beside this script, else PATH).
# A compressed module (.ko.xz/.zst/.gz) is copied as it is when the kernel
# decompresses that format itself (CONFIG_MODULE_DECOMPRESS and the matching
# CONFIG_MODULE_COMPRESS_* in /boot/config-V or DIR/build/.config). Otherwise the
# plan cannot work (it names the compressed file): the script stops and says to
# stage a decompressed tree (initramfs/stage-modules.sh --decompress) and rebuild
# the plan. Must run as root (mknod, file ownership).
set -eu

me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

KVER="" MODDIR="" PLAN="" PARMOD="" TOOL="${PARMOD_PLAN:-}" BUSYBOX=0 BUSYBOX_BIN=""
INIT_SCRIPT="" COMPRESS=none OUT="" EXTRAS="" CMDLINE="" FIRMWARE=0
NL='
'
while [ $# -gt 0 ]; do
    case "$1" in
        --kver) KVER=$2; shift 2 ;;
        --modules-dir) MODDIR=$2; shift 2 ;;
        --plan) PLAN=$2; shift 2 ;;
        --parmod) PARMOD=$2; shift 2 ;;
        --parmod-plan) TOOL=$2; shift 2 ;;
        --busybox) BUSYBOX=1; shift ;;
        --busybox-bin) BUSYBOX=1; BUSYBOX_BIN=$2; shift 2 ;;
        --extra) EXTRAS="$EXTRAS$2$NL"; shift 2 ;;
        --init-script) INIT_SCRIPT=$2; shift 2 ;;
        --cmdline) CMDLINE=$2; shift 2 ;;
        --firmware) FIRMWARE=1; shift ;;
        --compress) COMPRESS=$2; shift 2 ;;
        -o) OUT=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "$me: unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$KVER" ] && [ -n "$MODDIR" ] && [ -n "$PLAN" ] && [ -n "$PARMOD" ] && [ -n "$OUT" ] || usage
case "$COMPRESS" in none|gzip) ;; *) die "--compress must be none or gzip" ;; esac
[ "$(id -u)" = 0 ] || die "must run as root (mknod /dev/console)"
[ -d "$MODDIR" ] || die "no module directory $MODDIR"
[ -f "$PLAN" ] || die "no plan $PLAN"
[ -x "$PARMOD" ] || die "parmod binary $PARMOD is not executable"
[ -z "$INIT_SCRIPT" ] || [ -f "$INIT_SCRIPT" ] || die "no init script $INIT_SCRIPT"

if [ -z "$TOOL" ]; then
    here=$(cd "$(dirname "$0")/.." && pwd)
    if [ -x "$here/target/host/parmod-plan" ]; then
        TOOL=$here/target/host/parmod-plan
    elif [ -x "$here/target/x86_64-unknown-linux-musl/host/parmod-plan" ]; then
        TOOL=$here/target/x86_64-unknown-linux-musl/host/parmod-plan
    else
        TOOL=$(command -v parmod-plan) || die "parmod-plan not found: pass --parmod-plan"
    fi
fi

# The parmod binary must run without a dynamic loader.
if command -v file >/dev/null 2>&1 && file -L "$PARMOD" | grep -q 'dynamically linked'; then
    die "$PARMOD is dynamically linked; build the static musl binary"
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/mkinitramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT INT TERM

mkdir -p "$STAGE/bin" "$STAGE/sbin" "$STAGE/etc" "$STAGE/proc" "$STAGE/sys" \
    "$STAGE/dev" "$STAGE/tmp" "$STAGE/run" "$STAGE/lib/modules/$KVER"
chmod 1777 "$STAGE/tmp"
mknod -m 600 "$STAGE/dev/console" c 5 1
mknod -m 666 "$STAGE/dev/null" c 1 3

# /init, parmod and the modprobe link.
if [ -n "$INIT_SCRIPT" ]; then
    install -m 755 "$INIT_SCRIPT" "$STAGE/init"
    install -m 755 "$PARMOD" "$STAGE/bin/parmod"
    ln -s /bin/parmod "$STAGE/sbin/modprobe"
else
    install -m 755 "$PARMOD" "$STAGE/init"
    ln -s /init "$STAGE/bin/parmod"
    ln -s /init "$STAGE/sbin/modprobe"
fi
install -m 644 "$PLAN" "$STAGE/etc/parmod.plan"
if [ -n "$CMDLINE" ]; then
    case "$CMDLINE" in *root=*) ;; *) die "--cmdline '$CMDLINE' names no root= (give root=UUID=..., PARTUUID=..., LABEL=..., PARTLABEL=..., MAJ:MIN or /dev/NAME)" ;; esac
    [ "${#CMDLINE}" -lt 1024 ] || die "--cmdline is longer than 1023 bytes"
    printf '%s\n' "$CMDLINE" > "$STAGE/etc/parmod.cmdline"
fi

# Which compressions the target kernel undoes itself.
kconfig=""
for c in "/boot/config-$KVER" "$MODDIR/build/.config"; do
    if [ -f "$c" ]; then kconfig=$c; break; fi
done
kernel_decompresses() { # xz|zstd|gzip
    [ -n "$kconfig" ] || return 1
    grep -q '^CONFIG_MODULE_DECOMPRESS=y' "$kconfig" || return 1
    case "$1" in
        xz) grep -q '^CONFIG_MODULE_COMPRESS_XZ=y' "$kconfig" ;;
        zstd) grep -q '^CONFIG_MODULE_COMPRESS_ZSTD=y' "$kconfig" ;;
        gzip) grep -q '^CONFIG_MODULE_COMPRESS_GZIP=y' "$kconfig" ;;
    esac
}

# Module paths named by the plan ("path": "kernel/…/x.ko", relative to the
# module directory, or "/lib/modules/external/x.ko" from the root for
# depmod's external directories; wait paths are not module files, built-in
# and disabled modules have none).
"$TOOL" show --json "$PLAN" > "$STAGE/.plan.json" || die "$TOOL show --json $PLAN failed"
sed -n 's/^ *"path": *"\(\/\{0,1\}[^"/][^"]*\.ko\(\.xz\|\.zst\|\.gz\)\{0,1\}\)",\{0,1\} *$/\1/p' \
    "$STAGE/.plan.json" | sort -u > "$STAGE/.paths"
rm -f "$STAGE/.plan.json"
# The root the module directory lies in (for paths from the root).
ROOTDIR=${MODDIR%/lib/modules/$KVER}
count=0
while IFS= read -r rel; do
    case "$rel" in
        *..*) die "unsafe module path in plan: $rel" ;;
        /*) src="$ROOTDIR$rel"; dst="$STAGE$rel" ;;
        *) src="$MODDIR/$rel"; dst="$STAGE/lib/modules/$KVER/$rel" ;;
    esac
    [ -f "$src" ] || die "module file missing: $src (was the plan compiled against $MODDIR?)"
    mkdir -p "$(dirname "$dst")"
    case "$rel" in
        *.ko.xz) comp=xz ;; *.ko.zst) comp=zstd ;; *.ko.gz) comp=gzip ;; *) comp="" ;;
    esac
    if [ -n "$comp" ] && ! kernel_decompresses "$comp"; then
        die "$rel is $comp-compressed and kernel $KVER cannot decompress it; compile the plan with \`parmod-plan compile --decompress $MODDIR ...\` (the .ko files are written beside the compressed ones), or stage a decompressed tree (initramfs/stage-modules.sh --decompress) and rebuild the plan"
    fi
    cp -L "$src" "$dst"
    count=$((count + 1))
    [ "$FIRMWARE" = 1 ] && printf '%s\n' "$src" >> "$STAGE/.files"
done < "$STAGE/.paths"
rm -f "$STAGE/.paths"

# Firmware the modules name, from the root's /lib/firmware.
fw_count=0
if [ "$FIRMWARE" = 1 ] && [ -f "$STAGE/.files" ]; then
    command -v modinfo >/dev/null || PATH=$PATH:/sbin:/usr/sbin
    command -v modinfo >/dev/null || die "--firmware needs modinfo (apt-get install kmod)"
    while IFS= read -r ko; do
        modinfo -F firmware "$ko" 2>/dev/null
    done < "$STAGE/.files" | sort -u > "$STAGE/.firmware"
    while IFS= read -r fw; do
        case "$fw" in ""|*..*|/*) continue ;; esac
        for f in "$fw" "$fw.xz" "$fw.zst"; do
            if [ -f "$ROOTDIR/lib/firmware/$f" ]; then
                mkdir -p "$(dirname "$STAGE/lib/firmware/$f")"
                cp -L "$ROOTDIR/lib/firmware/$f" "$STAGE/lib/firmware/$f"
                fw_count=$((fw_count + 1))
            fi
        done
    done < "$STAGE/.firmware"
    rm -f "$STAGE/.files" "$STAGE/.firmware"
fi

# busybox and its applets (never modprobe: that is parmod's).
if [ "$BUSYBOX" = 1 ]; then
    [ -n "$BUSYBOX_BIN" ] || BUSYBOX_BIN=$(command -v busybox || true)
    [ -n "$BUSYBOX_BIN" ] && [ -x "$BUSYBOX_BIN" ] || die "busybox not found (apt-get install busybox-static)"
    if command -v file >/dev/null 2>&1 && file -L "$BUSYBOX_BIN" | grep -q 'dynamically linked'; then
        die "$BUSYBOX_BIN is dynamically linked; install busybox-static"
    fi
    install -m 755 "$BUSYBOX_BIN" "$STAGE/bin/busybox"
    for a in sh ash mount umount cat ls lsmod insmod rmmod poweroff reboot halt init \
        sleep grep dmesg xargs date stat test '[' echo printf mkdir ln sed awk head tail \
        wc sort cut tr uname find readlink true false cp mv rm mknod chmod seq expr \
        timeout tee env ps kill uptime usleep base64 od hexdump; do
        case "$a" in modprobe) continue ;; esac
        [ -e "$STAGE/bin/$a" ] || ln -s busybox "$STAGE/bin/$a"
    done
fi

# Extras: SRC:DST.
printf '%s' "$EXTRAS" | while IFS= read -r ex; do
    [ -n "$ex" ] || continue
    src=${ex%%:*}
    dst=${ex#*:}
    [ "$src" != "$ex" ] && [ -n "$dst" ] || die "--extra wants SRC:DST, got $ex"
    [ -e "$src" ] || die "extra $src does not exist"
    case "$dst" in /*) ;; *) dst=/$dst ;; esac
    mkdir -p "$STAGE$(dirname "$dst")"
    rm -rf "$STAGE$dst"
    cp -a "$src" "$STAGE$dst"
done

mkdir -p "$(dirname "$OUT")"
tmp_out="$OUT.tmp.$$"
(
    cd "$STAGE"
    find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet
) > "$tmp_out.cpio"
if [ "$COMPRESS" = gzip ]; then
    gzip -n -6 < "$tmp_out.cpio" > "$tmp_out"
    rm -f "$tmp_out.cpio"
else
    mv "$tmp_out.cpio" "$tmp_out"
fi
mv "$tmp_out" "$OUT"
echo "$me: $OUT: $count modules$([ "$FIRMWARE" = 1 ] && echo ", $fw_count firmware files"), $(wc -c < "$OUT") bytes" >&2
