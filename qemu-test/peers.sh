#!/bin/bash
# The loaders of 2025 for the boot benchmark, from Debian's newest suite,
# without touching the system: kmod's modprobe (>= 34) and systemd's
# systemd-modules-load (>= 258, which probes with several threads), each
# with its own libraries and dynamic loader in a prefix of its own, to be
# copied into a test image. Run as root.
#
#   qemu-test/peers.sh [--update] OUTDIR
#
# apt runs with a state of its own in build/peers/apt: a sources file for
# PEERS_SUITE (default sid) of PEERS_MIRROR (default http://deb.debian.org/debian,
# signed by Debian's archive keyring) and separate Dir::State::Lists,
# Dir::Cache, Dir::State::status and Dir::Etc::sourcelist/sourceparts, so
# the system's sources, lists and package database are never read or
# written. `apt-get update` runs when there are no lists yet (or with
# --update); `apt-get download` fetches the packages into build/peers/debs
# (kept: a later run downloads only what changed); `dpkg -x` unpacks them
# into build/peers/root. Nothing is installed.
#
# OUTDIR/kmod and OUTDIR/systemd each hold
#   bin/kmod, bin/systemd-modules-load   the binary
#   lib/                                 ld-linux-x86-64.so.2 and every library the
#                                        binary needs: its DT_NEEDED closure and the
#                                        ones it dlopen()s (libkmod, liblzma, libzstd,
#                                        libcrypto, libz)
#   version                              "PACKAGE VERSION" of the binary's package
# and OUTDIR/kmod/bin/modprobe is a shell wrapper for /proc/sys/kernel/modprobe.
# In an image at /opt/P they run as
#   /opt/P/lib/ld-linux-x86-64.so.2 --library-path /opt/P/lib /opt/P/bin/BINARY
# (kmod as modprobe: add --argv0 modprobe). The script fails when a library
# cannot be found in the unpacked packages or when a binary does not run
# (--version) on the host with its own loader.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

UPDATE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --update) UPDATE=1; shift ;;
        -*) qt_usage ;;
        *) break ;;
    esac
done
[ $# = 1 ] || qt_usage
OUT=$1
qt_need_root "apt-get download writes as root"
qt_packages binutils
P=$QT_REPO/build/peers
SUITE=${PEERS_SUITE:-sid}
MIRROR=${PEERS_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$P/apt/lists/partial" "$P/apt/cache/archives/partial" "$P/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" > "$P/apt/sources.list"
: > "$P/apt/status"
APT_OPTS=(-o "Dir::Etc::sourcelist=$P/apt/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
    -o "Dir::State::Lists=$P/apt/lists" -o "Dir::Cache=$P/apt/cache" -o "Dir::State::status=$P/apt/status"
    -o "APT::Architectures=amd64" -o "Acquire::Languages=none")
if [ "$UPDATE" = 1 ] || ! ls "$P/apt/lists/"*_Packages* >/dev/null 2>&1; then
    qt_log "apt-get update ($SUITE of $MIRROR, lists in $P/apt)"
    apt-get "${APT_OPTS[@]}" update -q >"$P/apt/update.log" 2>&1 || { cat "$P/apt/update.log" >&2; qt_die "apt-get update failed"; }
fi
# The candidate's record of each package asked about, once.
declare -A RECORD
record_of() {
    [ -n "${RECORD[$1]:-}" ] || RECORD[$1]=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null || true)
    printf '%s\n' "${RECORD[$1]}"
}
version_of() { record_of "$1" | sed -n 's/^Version: //p' | head -n1; }
# The library packages PKG depends on (Depends, Pre-Depends; first alternative).
lib_deps_of() {
    record_of "$1" | sed -n 's/^\(Depends\|Pre-Depends\): //p' | tr ',' '\n' |
        sed 's/|.*//; s/(.*//; s/:any//; s/ //g' | grep '^lib' || true
}
# deb_of PKG: the downloaded file (an epoch's colon is %3a in its name).
deb_of() { local v; v=$(version_of "$1"); echo "$P/debs/${1}_${v//:/%3a}_amd64.deb"; }

# kmod's binary is in kmod, systemd-modules-load in udev (Debian's split);
# the libraries they dlopen() are Recommends, named here.
ROOTS="kmod libkmod2 udev libsystemd-shared liblzma5 libzstd1 zlib1g libssl3t64"
todo=$ROOTS seen=""
while [ -n "$todo" ]; do
    set -- $todo
    p=$1; shift; todo="$*"
    case " $seen " in *" $p "*) continue ;; esac
    record_of "$p" >/dev/null # in this shell: later $(...) calls find it cached
    [ -n "$(version_of "$p")" ] || qt_die "$SUITE has no package $p"
    seen="$seen $p"
    todo="$todo $(lib_deps_of "$p" | tr '\n' ' ')"
done
kmod_v=$(version_of kmod) udev_v=$(version_of udev)
dpkg --compare-versions "$kmod_v" ge 34 || qt_die "$SUITE has kmod $kmod_v; the benchmark wants >= 34"
dpkg --compare-versions "$udev_v" ge 258 || qt_die "$SUITE has systemd $udev_v; the benchmark wants >= 258"

# Download what is not here yet, unpack everything afresh.
qt_log "packages:$seen"
(
    cd "$P/debs"
    for p in $seen; do
        [ -f "$(deb_of "$p")" ] && continue
        apt-get "${APT_OPTS[@]}" download "$p" >>"$P/apt/download.log" 2>&1 || { cat "$P/apt/download.log" >&2; exit 1; }
    done
) || qt_die "apt-get download failed ($P/apt/download.log)"
rm -rf "$P/root"
mkdir -p "$P/root"
for p in $seen; do
    [ -f "$(deb_of "$p")" ] || qt_die "apt-get download gave no $(deb_of "$p")"
    dpkg -x "$(deb_of "$p")" "$P/root"
done
LIBDIRS="$P/root/usr/lib/x86_64-linux-gnu $P/root/usr/lib/x86_64-linux-gnu/systemd $P/root/lib/x86_64-linux-gnu"

# find_lib SONAME: its file in the unpacked packages.
find_lib() {
    local d
    for d in $LIBDIRS; do
        [ -e "$d/$1" ] && { readlink -f "$d/$1"; return 0; }
    done
    return 1
}

# make_prefix DIR BINARY PACKAGE DLOPENED...: DIR/bin/BINARY and its libraries.
make_prefix() {
    local dir=$1 bin=$2 pkg=$3
    shift 3
    rm -rf "$dir"
    mkdir -p "$dir/bin" "$dir/lib"
    cp "$bin" "$dir/bin/"
    echo "$pkg $(version_of "$pkg")" > "$dir/version"
    local todo="ld-linux-x86-64.so.2 $* $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
    local done_="" so f
    while [ -n "$todo" ]; do
        set -- $todo
        so=$1; shift; todo="$*"
        case " $done_ " in *" $so "*) continue ;; esac
        done_="$done_ $so"
        f=$(find_lib "$so") || qt_die "$(basename "$bin"): no $so in the unpacked packages ($P/root)"
        cp "$f" "$dir/lib/$so"
        todo="$todo $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
    done
    # It must run with its own loader and libraries only.
    "$dir/lib/ld-linux-x86-64.so.2" --library-path "$dir/lib" "$dir/bin/$(basename "$bin")" --version >"$dir/version.out" 2>&1 ||
        { cat "$dir/version.out" >&2; qt_die "$dir/bin/$(basename "$bin") does not run with its own libraries"; }
}

# libkmod dlopen()s the decompressors (and links libcrypto for signatures);
# libsystemd-shared dlopen()s libkmod.
make_prefix "$OUT/kmod" "$P/root/usr/bin/kmod" kmod libkmod.so.2 liblzma.so.5 libzstd.so.1 libz.so.1 libcrypto.so.3
cat > "$OUT/kmod/bin/modprobe" <<'EOF'
#!/bin/sh
# request_module() helper: kmod as modprobe, with its own loader and libraries.
exec /opt/kmod/lib/ld-linux-x86-64.so.2 --library-path /opt/kmod/lib --argv0 modprobe /opt/kmod/bin/kmod "$@"
EOF
chmod 755 "$OUT/kmod/bin/modprobe"
make_prefix "$OUT/systemd" "$P/root/usr/lib/systemd/systemd-modules-load" udev \
    libkmod.so.2 liblzma.so.5 libzstd.so.1 libz.so.1 libcrypto.so.3
qt_log "$(head -n1 "$OUT/kmod/version.out"), $(head -n1 "$OUT/systemd/version.out") in $OUT ($(du -sh "$OUT" | cut -f1))"
