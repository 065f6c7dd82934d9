#!/bin/sh
# Build the parmod runtime for a cross target (what `make ARCH=aarch64|armv7`
# runs), installing what is missing on Debian 12:
#
#   packaging/cross/build-runtime.sh TARGET
#
# TARGET: aarch64-unknown-linux-musl or armv7-unknown-linux-musleabihf.
#
# * The linker driver is Debian's cross gcc (gcc-aarch64-linux-gnu,
#   gcc-arm-linux-gnueabihf; set in .cargo/config.toml). It only drives the
#   link: the C runtime is musl, from rustc's self-contained crt objects.
# * The Rust standard library for TARGET comes from `rustup target add`. When
#   rustup cannot get it (a mirror without that component: seen here for
#   armv7-unknown-linux-musleabihf), the runtime, which needs `core` only, is
#   built with `-Zbuild-std=core` from the rust-src component
#   (RUSTC_BOOTSTRAP=1 on the stable compiler), and the musl crt objects and
#   libc.a come from Debian's musl-dev for that architecture (multiarch,
#   `apt-get download`), crtbegin.o/crtend.o from the cross gcc. They are
#   assembled in build/cross/TARGET/musl.
#
# Environment: CARGO (default cargo).
set -eu

me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")/../.." && pwd)
CARGO=${CARGO:-cargo}

TARGET=${1:-}
case "$TARGET" in
    aarch64-unknown-linux-musl)
        GCC=aarch64-linux-gnu-gcc GCC_PKG=gcc-aarch64-linux-gnu
        DEB_ARCH=arm64 MUSL_DIR=usr/lib/aarch64-linux-musl ;;
    armv7-unknown-linux-musleabihf)
        GCC=arm-linux-gnueabihf-gcc GCC_PKG=gcc-arm-linux-gnueabihf
        DEB_ARCH=armhf MUSL_DIR=usr/lib/arm-linux-musleabihf ;;
    *) die "usage: $me aarch64-unknown-linux-musl|armv7-unknown-linux-musleabihf" ;;
esac

apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
        die "missing $*: install it (apt-get install $*) or run as root on Debian"
    echo "$me: installing $*" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 || {
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
    }
}

command -v "$GCC" >/dev/null || apt_install "$GCC_PKG"

cargo_build() {
    "$CARGO" build --release --target "$TARGET" --no-default-features --features runtime --bin parmod "$@"
}

if rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
    rustup target add "$TARGET" >/dev/null 2>&1; then
    cargo_build
else
    echo "$me: rustup has no standard library for $TARGET here: building core from source" >&2
    rustup component list --installed 2>/dev/null | grep -q '^rust-src' ||
        rustup component add rust-src >&2 || die "cannot install the rust-src component"
    musl=$here/build/cross/$TARGET/musl
    if [ ! -f "$musl/libc.a" ]; then
        dpkg --print-foreign-architectures | grep -qx "$DEB_ARCH" || {
            [ "$(id -u)" = 0 ] || die "run as root once: dpkg --add-architecture $DEB_ARCH"
            dpkg --add-architecture "$DEB_ARCH"
            apt-get update -q >&2 || true
        }
        dl=$(mktemp -d "${TMPDIR:-/tmp}/musl-$DEB_ARCH.XXXXXX")
        trap 'rm -rf "$dl"' EXIT INT TERM
        (cd "$dl" && apt-get download "musl-dev:$DEB_ARCH" >&2) || {
            apt-get update -q >&2 || true
            (cd "$dl" && apt-get download "musl-dev:$DEB_ARCH" >&2)
        } || die "cannot download musl-dev:$DEB_ARCH"
        dpkg-deb -x "$dl"/musl-dev_*.deb "$dl/x"
        mkdir -p "$musl"
        for f in crt1.o crti.o crtn.o libc.a; do
            cp "$dl/x/$MUSL_DIR/$f" "$musl/$f"
        done
        for f in crtbegin.o crtend.o; do
            p=$("$GCC" -print-file-name="$f")
            [ -f "$p" ] || die "$GCC has no $f"
            cp "$p" "$musl/$f"
        done
    fi
    # rustc looks up the crt objects in -L paths when its sysroot has none.
    RUSTC_BOOTSTRAP=1 cargo_build -Zbuild-std=core \
        --config "target.$TARGET.rustflags=['-L','native=$musl']"
fi

bin=$here/target/$TARGET/release/parmod
[ -x "$bin" ] || die "no $bin after the build"
echo "$me: $bin: $(wc -c < "$bin") bytes" >&2
