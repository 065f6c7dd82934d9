#!/bin/bash
# Idempotent set-up of the QEMU test environment on Debian 12 (run as root).
#
# Installs what the x86_64 suite needs when any of it is missing
# (qemu-system-x86, linux-image-amd64, linux-headers-amd64, busybox-static,
# kmod, cpio, xz-utils, zstd, make, gcc, jq), then prints
#   KVER=<version>
# the kernel to test: $KVER when set, else the one linux-image-amd64 depends
# on, else the newest under /lib/modules with /boot/vmlinuz-KVER and headers.
#
# Usage: qemu-test/setup.sh [--quiet]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case "${1:-}" in
    ""|--quiet) ;;
    *) qt_usage ;;
esac
qt_need_root "apt-get"
qt_kernel --arch x86_64
[ "${1:-}" = --quiet ] || qt_log "KVER=$KVER"
echo "KVER=$KVER"
