#!/bin/sh
# Idempotent set-up of the QEMU test environment on Debian 12 (run as root).
#
# Installs what the suite needs when any of it is missing, then prints
#   KVER=<version>
# the kernel to test: the newest under /lib/modules that has /boot/vmlinuz-KVER
# and a build/ directory (headers), preferring the one linux-image-amd64 depends on.
#
# Usage: qemu-test/setup.sh [--quiet]
set -eu

PKGS="qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static kmod cpio xz-utils zstd make gcc"

quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
log() { [ "$quiet" = 1 ] || echo "setup: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    echo "setup: must run as root" >&2
    exit 1
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >&2
else
    log "all packages present"
fi

# The kernel linux-image-amd64 points at (e.g. linux-image-6.1.0-56-amd64).
meta_kver=$(dpkg-query -W -f='${Depends}\n' linux-image-amd64 2>/dev/null |
    tr ',' '\n' | sed -n 's/^ *linux-image-\([0-9][^ ]*\).*/\1/p' | head -n1)

pick=""
if [ -n "$meta_kver" ] && [ -f "/boot/vmlinuz-$meta_kver" ] && [ -d "/lib/modules/$meta_kver/build" ]; then
    pick=$meta_kver
else
    for d in $(ls -1 /lib/modules 2>/dev/null | sort -V -r); do
        if [ -f "/boot/vmlinuz-$d" ] && [ -d "/lib/modules/$d/build" ]; then
            pick=$d
            break
        fi
    done
fi

if [ -z "$pick" ]; then
    echo "setup: no kernel with /boot/vmlinuz-KVER and /lib/modules/KVER/build" >&2
    exit 1
fi
# linux-headers-amd64 may point at the same version; make sure the headers match.
if [ ! -f "/lib/modules/$pick/build/Makefile" ]; then
    log "installing linux-headers-$pick"
    apt-get install -y -qq --no-install-recommends "linux-headers-$pick" >&2
fi
log "KVER=$pick"
echo "KVER=$pick"
