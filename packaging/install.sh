#!/bin/sh
# Install parmod (what `make install` runs), or run the post-install step.
#
#   packaging/install.sh [--parmod BIN] [--parmod-plan BIN]
#   packaging/install.sh --postinst [--root DIR] [--kver VERSION] [--no-enable]
#
# Environment (make variables): DESTDIR (staging directory, default empty),
# PREFIX (default /usr/local), SBINDIR ($PREFIX/sbin), BINDIR ($PREFIX/bin),
# MANDIR ($PREFIX/share/man), UNITDIR ($PREFIX/lib/systemd/system).
#
# Installs parmod to SBINDIR, parmod-plan to BINDIR, parmod(8) and
# parmod-plan(8) to MANDIR/man8 (generated into build/man/ first when
# missing), parmod-modules-load.service (with SBINDIR in its command lines)
# and the systemd-modules-load.service drop-in to UNITDIR. Defaults for the
# binaries: the x86_64 musl build under target/.
#
# Without DESTDIR (installing onto the running system) the post-install step
# follows. --postinst alone is that step, for package post-install scripts:
# compile ROOT/etc/parmod.plan (ROOT default /) from ROOT's modules-load.d
# and modprobe.d for kernel VERSION (default: `uname -r` when ROOT is /,
# else the newest under ROOT/lib/modules), then, on a running systemd with
# ROOT /, `systemctl daemon-reload` and `systemctl enable` the unit (not with
# --no-enable). An empty modules-load.d gives no plan (the unit then stays
# inactive); an existing plan is replaced.
set -eu

me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SBINDIR=${SBINDIR:-$PREFIX/sbin}
BINDIR=${BINDIR:-$PREFIX/bin}
MANDIR=${MANDIR:-$PREFIX/share/man}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
PARMOD=$repo/target/x86_64-unknown-linux-musl/release/parmod
PARMOD_PLAN=$repo/target/x86_64-unknown-linux-musl/host/parmod-plan
POSTINST=0 ROOT=/ KVER="" ENABLE=1
while [ $# -gt 0 ]; do
    case "$1" in
        --parmod) PARMOD=$2; shift 2 ;;
        --parmod-plan) PARMOD_PLAN=$2; shift 2 ;;
        --postinst) POSTINST=1; shift ;;
        --root) ROOT=$2; shift 2 ;;
        --kver) KVER=$2; shift 2 ;;
        --no-enable) ENABLE=0; shift ;;
        *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done

postinst() {
    tool=$(command -v parmod-plan 2>/dev/null || true)
    [ -x "$BINDIR/parmod-plan" ] && tool=$BINDIR/parmod-plan
    [ -n "$tool" ] || die "parmod-plan is not installed"
    if [ -z "$KVER" ] && [ "$ROOT" = / ]; then
        KVER=$(uname -r)
    fi
    set -- --root "$ROOT"
    [ -z "$KVER" ] || set -- "$@" --kver "$KVER"
    mkdir -p "$ROOT/etc"
    plan=${ROOT%/}/etc/parmod.plan
    # No names: parmod-plan reads ROOT's modules-load.d directories.
    "$tool" compile "$@" -o "$plan.new" 2>"$plan.log" || {
        cat "$plan.log" >&2
        rm -f "$plan.new" "$plan.log"
        die "could not compile $plan; systemd-modules-load stays in charge"
    }
    if grep -q 'no modules requested' "$plan.log"; then
        rm -f "$plan.new" "$plan" "$plan.log"
        echo "$me: modules-load.d lists no modules: no $plan" >&2
    else
        cat "$plan.log" >&2
        rm -f "$plan.log"
        mv "$plan.new" "$plan"
        echo "$me: compiled $plan" >&2
    fi
    if [ "$ROOT" = / ] && [ "$ENABLE" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl daemon-reload
        systemctl enable parmod-modules-load.service
    fi
}

if [ "$POSTINST" = 1 ]; then
    postinst
    exit 0
fi

[ -x "$PARMOD" ] || die "no $PARMOD: run make first"
[ -x "$PARMOD_PLAN" ] || die "no $PARMOD_PLAN: run make first"
man=$repo/build/man
if [ ! -f "$man/parmod.8" ] || [ ! -f "$man/parmod-plan.8" ] ||
    [ "$man/parmod.8" -ot "$PARMOD" ] || [ "$man/parmod-plan.8" -ot "$PARMOD_PLAN" ]; then
    "$here/man/gen-man.sh" --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" -o "$man"
fi

D=$DESTDIR
install -d "$D$SBINDIR" "$D$BINDIR" "$D$MANDIR/man8" "$D$UNITDIR/systemd-modules-load.service.d"
install -m 755 "$PARMOD" "$D$SBINDIR/parmod"
install -m 755 "$PARMOD_PLAN" "$D$BINDIR/parmod-plan"
install -m 644 "$man/parmod.8" "$man/parmod-plan.8" "$D$MANDIR/man8/"
sed "s|/usr/sbin/parmod|$SBINDIR/parmod|g" "$here/systemd/parmod-modules-load.service" \
    > "$D$UNITDIR/parmod-modules-load.service"
chmod 644 "$D$UNITDIR/parmod-modules-load.service"
install -m 644 "$here/systemd/systemd-modules-load.service.d/parmod.conf" \
    "$D$UNITDIR/systemd-modules-load.service.d/parmod.conf"
for f in "$SBINDIR/parmod" "$BINDIR/parmod-plan" "$MANDIR/man8/parmod.8" "$MANDIR/man8/parmod-plan.8" \
    "$UNITDIR/parmod-modules-load.service" "$UNITDIR/systemd-modules-load.service.d/parmod.conf"; do
    echo "installed $D$f"
done

if [ -z "$DESTDIR" ]; then
    postinst
else
    echo "$me: staged in $DESTDIR; the package's post-install runs: $me --postinst (or: parmod-plan compile -o /etc/parmod.plan)"
fi
