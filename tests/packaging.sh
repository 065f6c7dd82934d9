#!/bin/bash
# Offline checks of the packaging (run by `make test-packaging`):
#
#   tests/packaging.sh
#
# * shell syntax of every script under packaging/ and qemu-test/arm64.sh;
# * Buildroot: the BR2_EXTERNAL tree's files, parmod.mk through a stand-in
#   harness (cargo-package and host-cargo-package as no-op macros) that
#   checks the PARMOD_* variables, the hash file's format, and post-build.sh
#   against a staged target tree (a few real Debian modules, hard-linked, and
#   depmod -b): the plan exists and `parmod-plan show --json` lists the
#   modules, for names from arguments, BR2_CONFIG and modules-load.d;
# * Yocto: the recipe's and layer.conf's required variables, LIC_FILES_CHKSUM
#   against Cargo.toml, the crate list against Cargo.lock, and the image
#   class's parmod_compile_plan run (shell function lifted out of the class)
#   against the same kind of staged tree;
# * man pages: generated from --help (packaging/man/gen-man.sh), every
#   section present, groff without warnings, `man -l` renders;
# * systemd unit: required settings, systemd-analyze verify when present;
# * packaging/install.sh into a DESTDIR, and its --postinst into a fake root.
#
# Environment: PARMOD, PARMOD_PLAN (binaries; default: the x86_64 musl build
# under target/), KVER (Debian kernel whose modules to stage; default: the
# newest under /lib/modules). Installs groff-base and kmod when missing and
# run as root. Prints "ok"/"FAIL" lines, exits 1 on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PARMOD=${PARMOD:-$repo/target/x86_64-unknown-linux-musl/release/parmod}
PARMOD_PLAN=${PARMOD_PLAN:-$repo/target/x86_64-unknown-linux-musl/host/parmod-plan}
W=$(mktemp -d "${TMPDIR:-/tmp}/packaging-test.XXXXXX")
trap 'rm -rf "$W"' EXIT

FAILS=0 PASSES=0
ok() { PASSES=$((PASSES + 1)); echo "ok   $*"; }
bad() { FAILS=$((FAILS + 1)); echo "FAIL $*"; }
check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    local out
    if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/     /'; fi
}

[ -x "$PARMOD" ] && [ -x "$PARMOD_PLAN" ] || {
    echo "packaging.sh: no binaries ($PARMOD, $PARMOD_PLAN): run make first" >&2
    exit 1
}
need=""
command -v groff >/dev/null || need="$need groff-base"
command -v depmod >/dev/null || [ -x /sbin/depmod ] || need="$need kmod"
if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null ||
            { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null; }
    else
        echo "packaging.sh: missing:$need" >&2
        exit 1
    fi
fi
PATH=$PATH:/sbin:/usr/sbin

# --- shell syntax -----------------------------------------------------------
while IFS= read -r f; do
    case "$(head -n1 "$f")" in
        *bash*) check "bash -n ${f#"$repo"/}" bash -n "$f" ;;
        *) check "sh -n ${f#"$repo"/}" sh -n "$f" ;;
    esac
done < <(find "$repo/packaging" -name '*.sh' | sort; echo "$repo/qemu-test/arm64.sh"; echo "$here/packaging.sh")

# --- a staged module tree ---------------------------------------------------
# stage ROOT NAME...: ROOT/lib/modules/KVER with the NAMEs and their
# dependencies from the Debian tree (hard links when possible), indexed.
KVER=${KVER:-}
if [ -z "$KVER" ]; then
    for d in $(ls -1 /lib/modules 2>/dev/null | sort -V); do
        [ -f "/lib/modules/$d/modules.dep" ] && [ -d "/lib/modules/$d/kernel" ] && KVER=$d
    done
fi
[ -n "$KVER" ] || { echo "packaging.sh: no module tree under /lib/modules (apt-get install linux-image-amd64)" >&2; exit 1; }
SRC=/lib/modules/$KVER
STAGE_MODS="virtio_net btrfs vfat"
stage() {
    local root=$1 m p rel
    shift
    mkdir -p "$root/lib/modules/$KVER"
    for m in "$@"; do
        modprobe -S "$KVER" -d / --show-depends "$m" | sed -n 's/^insmod \([^ ]*\).*/\1/p' | while read -r p; do
            rel=${p#"$SRC"/}
            mkdir -p "$root/lib/modules/$KVER/$(dirname "$rel")"
            cp -al "$p" "$root/lib/modules/$KVER/$rel" 2>/dev/null || cp "$p" "$root/lib/modules/$KVER/$rel"
        done
    done
    for f in modules.builtin modules.builtin.modinfo modules.order; do
        [ -f "$SRC/$f" ] && cp "$SRC/$f" "$root/lib/modules/$KVER/"
    done
    depmod -b "$root" "$KVER"
}
# plan_names PLAN: the module names a plan lists (JSON "name" fields).
plan_names() { "$PARMOD_PLAN" show --json "$1" | sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p' | sort -u; }
# plan_has PLAN NAME...: every NAME is a module of PLAN
plan_has() {
    local plan=$1 m names
    shift
    [ -f "$plan" ] || { echo "no plan $plan"; return 1; }
    names=$(plan_names "$plan")
    for m in "$@"; do
        echo "$names" | grep -qx "$m" || { echo "$m missing from the plan; it has: $(echo $names)"; return 1; }
    done
}

# --- Buildroot ----------------------------------------------------------------
BR=$repo/packaging/buildroot
for f in external.desc external.mk Config.in post-build.sh README.md \
    package/parmod/Config.in package/parmod/parmod.mk package/parmod/parmod.hash; do
    check "buildroot: $f exists" test -f "$BR/$f"
done
check "buildroot: external.desc names the tree PARMOD" grep -qx 'name: PARMOD' "$BR/external.desc"
check "buildroot: Config.in sources the package" \
    grep -q 'source "$BR2_EXTERNAL_PARMOD_PATH/package/parmod/Config.in"' "$BR/Config.in"
check "buildroot: package Config.in defines BR2_PACKAGE_PARMOD and selects host-rustc" \
    sh -c "grep -q '^config BR2_PACKAGE_PARMOD\$' '$BR/package/parmod/Config.in' &&
           grep -q 'select BR2_PACKAGE_HOST_RUSTC' '$BR/package/parmod/Config.in' &&
           grep -q 'depends on BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS' '$BR/package/parmod/Config.in'"
# Kconfig: help texts indented by a tab and two spaces, options by a tab.
check "buildroot: package Config.in indentation (tab; tab + 2 spaces in help)" \
    sh -c "! grep -nvE '^(\$|config |if |endif|comment |source |	[a-z]|		|	  )' '$BR/package/parmod/Config.in'"
check "buildroot: parmod.hash has only comments or 'sha256 HASH FILE' lines" \
    sh -c "! grep -vE '^(#.*|\$|sha256  [0-9a-f]{64}  [^ ]+)\$' '$BR/package/parmod/parmod.hash'"

# parmod.mk through a stand-in for Buildroot's make machinery.
cat > "$W/br-harness.mk" <<EOF
BR2_EXTERNAL_PARMOD_PATH := $BR
# Buildroot's package macros: no-ops here.
cargo-package =
host-cargo-package =
UPPERCASE = \$(shell echo \$(1) | tr a-z- A-Z_)
include $BR/external.mk
.PHONY: show
show:
	@echo 'PARMOD_VERSION=\$(PARMOD_VERSION)'
	@echo 'PARMOD_SITE=\$(PARMOD_SITE)'
	@echo 'PARMOD_SITE_METHOD=\$(PARMOD_SITE_METHOD)'
	@echo 'PARMOD_LICENSE=\$(PARMOD_LICENSE)'
	@echo 'PARMOD_CARGO_BUILD_OPTS=\$(PARMOD_CARGO_BUILD_OPTS)'
	@echo 'HOST_PARMOD_CARGO_BUILD_OPTS=\$(HOST_PARMOD_CARGO_BUILD_OPTS)'
	@echo 'PARMOD_CARGO_ENV=\$(PARMOD_CARGO_ENV)'
	@echo 'PARMOD_PRE_BUILD_HOOKS=\$(PARMOD_PRE_BUILD_HOOKS)'
	@echo 'defined=\$(if \$(value PARMOD_INSTALL_TARGET_CMDS),target)\$(if \$(value HOST_PARMOD_INSTALL_CMDS),+host)\$(if \$(value PARMOD_INSTALL_INIT_SYSTEMD),+systemd)'
EOF
if br_out=$(make --no-print-directory -f "$W/br-harness.mk" show 2>&1); then
    ok "buildroot: parmod.mk parses (make -f harness)"
    brv() { printf '%s\n' "$br_out" | sed -n "s/^$1=//p"; }
    cargo_ver=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
    check "buildroot: PARMOD_VERSION is Cargo.toml's ($cargo_ver)" test "$(brv PARMOD_VERSION)" = "$cargo_ver"
    check "buildroot: PARMOD_SITE is the source tree" test "$(brv PARMOD_SITE)" = "$repo"
    check "buildroot: PARMOD_SITE_METHOD local" test "$(brv PARMOD_SITE_METHOD)" = local
    check "buildroot: PARMOD_LICENSE set" test -n "$(brv PARMOD_LICENSE)"
    check "buildroot: target cargo options build the runtime" \
        test "$(brv PARMOD_CARGO_BUILD_OPTS)" = "--no-default-features --features runtime --bin parmod"
    check "buildroot: host cargo options build parmod-plan" \
        test "$(brv HOST_PARMOD_CARGO_BUILD_OPTS)" = "--features host --bin parmod-plan"
    check "buildroot: the size profile is kept" sh -c "echo '$(brv PARMOD_CARGO_ENV)' | grep -q 'CARGO_PROFILE_RELEASE_OPT_LEVEL=z'"
    check "buildroot: vendoring hook registered" test "$(brv PARMOD_PRE_BUILD_HOOKS)" = PARMOD_CARGO_VENDOR
    check "buildroot: install commands defined (target, host, systemd)" test "$(brv defined)" = "target+host+systemd"
else
    bad "buildroot: parmod.mk parses (make -f harness)"
    printf '%s\n' "$br_out" | sed 's/^/     /'
fi
check "buildroot: parmod.mk uses the cargo infrastructure" \
    sh -c "grep -qx '\$(eval \$(cargo-package))' '$BR/package/parmod/parmod.mk' &&
           grep -qx '\$(eval \$(host-cargo-package))' '$BR/package/parmod/parmod.mk'"
check "buildroot: the files parmod.mk installs exist" \
    test -f "$repo/packaging/systemd/parmod-modules-load.service" -a \
        -f "$repo/packaging/systemd/systemd-modules-load.service.d/parmod.conf"

# post-build.sh against a staged TARGET_DIR.
T=$W/br-target
stage "$T" $STAGE_MODS >"$W/stage.log" 2>&1 || { cat "$W/stage.log"; bad "staging $T"; }
mkdir -p "$W/host/bin"
ln -s "$PARMOD_PLAN" "$W/host/bin/parmod-plan"
check "post-build.sh TARGET_DIR NAMES" env HOST_DIR="$W/host" BR2_CONFIG=/dev/null "$BR/post-build.sh" "$T" virtio_net btrfs
check "post-build.sh: plan lists virtio_net, btrfs and their dependencies" \
    plan_has "$T/etc/parmod.plan" virtio_net net_failover failover btrfs
check "post-build.sh: plan is for kernel $KVER" sh -c "'$PARMOD_PLAN' show '$T/etc/parmod.plan' | grep -q '^kernel: *$KVER\$'"
printf 'BR2_PACKAGE_PARMOD=y\nBR2_PACKAGE_PARMOD_PLAN_MODULES="vfat"\n' > "$W/br.config"
check "post-build.sh with BR2_PACKAGE_PARMOD_PLAN_MODULES" env HOST_DIR="$W/host" BR2_CONFIG="$W/br.config" "$BR/post-build.sh" "$T"
check "post-build.sh: plan from BR2_CONFIG lists vfat and fat" plan_has "$T/etc/parmod.plan" vfat fat
check "post-build.sh: plan from BR2_CONFIG lacks btrfs" sh -c "! '$PARMOD_PLAN' show --json '$T/etc/parmod.plan' | grep -q '\"name\": \"btrfs\"'"
mkdir -p "$T/etc/modules-load.d"
printf '# boot\nbtrfs\n' > "$T/etc/modules-load.d/fs.conf"
check "post-build.sh from modules-load.d" env HOST_DIR="$W/host" "$BR/post-build.sh" "$T"
check "post-build.sh: plan from modules-load.d lists btrfs" plan_has "$T/etc/parmod.plan" btrfs
rm -f "$T/etc/modules-load.d/fs.conf"
check "post-build.sh without any module" env HOST_DIR="$W/host" "$BR/post-build.sh" "$T"
check "post-build.sh: no modules, no plan" test ! -e "$T/etc/parmod.plan"
check "post-build.sh without parmod-plan fails" sh -c "! env -u HOST_DIR -u PARMOD_PLAN '$BR/post-build.sh' '$T' 2>/dev/null"

# --- Yocto --------------------------------------------------------------------
Y=$repo/packaging/yocto/meta-parmod
BB=$Y/recipes-core/parmod/parmod_0.1.0.bb
for v in SUMMARY LICENSE LIC_FILES_CHKSUM SRC_URI S; do
    check "yocto: recipe sets $v" grep -qE "^$v *[?]?=" "$BB"
done
check "yocto: recipe inherits cargo" grep -qE '^inherit .*\bcargo\b' "$BB"
check "yocto: native variant (BBCLASSEXTEND)" grep -qE '^BBCLASSEXTEND *= *".*native' "$BB"
for v in BBFILE_COLLECTIONS BBFILE_PATTERN_parmod BBFILE_PRIORITY_parmod LAYERSERIES_COMPAT_parmod BBFILES BBPATH; do
    check "yocto: layer.conf sets $v" grep -qE "^$v *(\+|\.)?=" "$Y/conf/layer.conf"
done
check "yocto: layer.conf collection is parmod" grep -qE '^BBFILE_COLLECTIONS \+= "parmod"' "$Y/conf/layer.conf"
check "yocto: the recipe file matches BBFILES" sh -c "ls '$Y'/recipes-*/*/*.bb | grep -q parmod_0.1.0.bb"
# LIC_FILES_CHKSUM: file://F;beginline=A;endline=B;md5=M against the source.
lic=$(sed -n 's/^LIC_FILES_CHKSUM = "file:\/\/\([^"]*\)"/\1/p' "$BB")
lf=${lic%%;*}
lb=$(echo "$lic" | sed -n 's/.*beginline=\([0-9]*\).*/\1/p')
le=$(echo "$lic" | sed -n 's/.*endline=\([0-9]*\).*/\1/p')
lm=$(echo "$lic" | sed -n 's/.*md5=\([0-9a-f]*\).*/\1/p')
if [ -n "$lb" ]; then
    actual=$(sed -n "${lb},${le:-\$}p" "$repo/$lf" | md5sum | cut -d' ' -f1)
else
    actual=$(md5sum < "$repo/$lf" | cut -d' ' -f1)
fi
check "yocto: LIC_FILES_CHKSUM md5 matches $lf${lb:+ lines $lb-$le}" test "$actual" = "$lm"
check "yocto: LIC_FILES_CHKSUM covers the license line" sh -c "sed -n '${lb:-1},${le:-\$}p' '$repo/$lf' | grep -q '^license = '"
check "yocto: parmod-crates.inc matches Cargo.lock (regenerate with packaging/yocto/gen-crates-inc.sh)" \
    sh -c "'$repo/packaging/yocto/gen-crates-inc.sh' | diff -u '$Y/recipes-core/parmod/parmod-crates.inc' -"
check "yocto: every crate has a sha256" sh -c "
    n=\$(grep -c 'crate://crates.io/' '$Y/recipes-core/parmod/parmod-crates.inc')
    s=\$(grep -c '^SRC_URI\[.*\.sha256sum\] = \"[0-9a-f]\{64\}\"' '$Y/recipes-core/parmod/parmod-crates.inc')
    [ \"\$n\" -gt 0 ] && [ \"\$n\" = \"\$s\" ]"
# Shell functions of the recipe and class: bitbake expressions replaced.
bbfunc() { # FILE NAME: the body of shell function NAME
    awk -v n="$2" '$0 ~ "^"n" *\\(\\) *\\{" { on = 1; next } on && /^}/ { exit } on { print }' "$1" |
        sed 's/\${@[^}]*}/true/g'
}
for fn in do_install do_install:class-native; do
    bbfunc "$BB" "$fn" > "$W/fn.sh"
    check "yocto: recipe $fn is shell" sh -c "[ -s '$W/fn.sh' ] && sh -n '$W/fn.sh'"
done
CL=$Y/classes/parmod-initramfs.bbclass
check "yocto: class adds parmod_compile_plan to ROOTFS_POSTPROCESS_COMMAND" \
    grep -qE '^ROOTFS_POSTPROCESS_COMMAND \+= "parmod_compile_plan"' "$CL"
check "yocto: class depends on parmod-native" grep -q 'parmod-native:do_populate_sysroot' "$CL"
# parmod_compile_plan against a staged image root, with bitbake's variables.
R=$W/yocto-rootfs
stage "$R" $STAGE_MODS >"$W/stage2.log" 2>&1 || { cat "$W/stage2.log"; bad "staging $R"; }
rm -f "$R/lib/modules/$KVER"/modules.dep*   # do_rootfs has not run depmod yet
mkdir -p "$W/pkgdata/kernel-depmod" "$W/native"
echo "$KVER" > "$W/pkgdata/kernel-depmod/kernel-abiversion"
ln -s "$PARMOD_PLAN" "$W/native/parmod-plan"
{
    echo 'set -e'
    echo 'bbwarn() { echo "WARNING: $*" >&2; }'
    echo 'depmodwrapper() { depmod "$@"; }'
    echo 'parmod_compile_plan() {'
    bbfunc "$CL" parmod_compile_plan | sed \
        -e "s|\${PKGDATA_DIR}|$W/pkgdata|g" -e "s|\${IMAGE_ROOTFS}|$R|g" \
        -e "s|\${STAGING_BINDIR_NATIVE}|$W/native|g" -e 's|\${PARMOD_PLAN_FILE}|/etc/parmod.plan|g' \
        -e 's|\${PARMOD_PLAN_ARGS}|--jobs 2|g' -e 's|\${PARMOD_MODULES}|virtio_net vfat|g' \
        -e 's|\${PARMOD_INIT}|1|g' -e 's|\${sbindir}|/usr/sbin|g'
    echo '}'
    echo 'parmod_compile_plan'
} > "$W/yocto-fn.sh"
check "yocto: parmod_compile_plan runs against a staged image root" sh "$W/yocto-fn.sh"
check "yocto: image plan lists virtio_net and vfat with dependencies" plan_has "$R/etc/parmod.plan" virtio_net failover vfat fat
check "yocto: PARMOD_INIT=1 makes /init parmod" test "$(readlink "$R/init")" = /usr/sbin/parmod

# --- man pages ----------------------------------------------------------------
MAN=$W/man
check "man: gen-man.sh" "$repo/packaging/man/gen-man.sh" --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN" -o "$MAN"
for p in parmod parmod-plan; do
    f=$MAN/$p.8
    for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" FILES "SEE ALSO"; do
        check "man: $p.8 has $s" grep -qx "\.SH \"\{0,1\}$s\"\{0,1\}" "$f"
    done
    check "man: $p.8 has no unfilled @...@" sh -c "! grep -n '@[A-Z]*@' '$f'"
    check "man: $p.8 renders without groff warnings" sh -c "w=\$(groff -man -Tutf8 -ww -z '$f' 2>&1); [ -z \"\$w\" ] || { echo \"\$w\"; false; }"
    if command -v man >/dev/null; then
        man -l "$f" 2>/dev/null | col -b 2>/dev/null > "$W/$p.txt" || MANWIDTH=80 groff -man -Tascii "$f" > "$W/$p.txt"
    else
        groff -man -Tascii "$f" | sed 's/.\x08//g' > "$W/$p.txt"
    fi
done
check "man: parmod(8) carries the --help text" sh -c "\"$PARMOD\" --help | grep -- '--module-timeout MS' | head -n1 | sed 's/^ *//' > '$W/l'; grep -qF -f '$W/l' '$W/parmod.txt'"
check "man: parmod(8) synopsis shows 'parmod wait'" grep -q 'parmod wait \[--timeout MS\] PATH' "$W/parmod.txt"
check "man: parmod-plan(8) carries the --help text" grep -q 'parmod-plan show --trace TRACE' "$W/parmod-plan.txt"

# --- systemd unit ---------------------------------------------------------------
U=$repo/packaging/systemd/parmod-modules-load.service
for l in 'DefaultDependencies=no' 'Conflicts=shutdown.target' 'ConditionPathExists=/etc/parmod.plan' \
    'Type=oneshot' 'RemainAfterExit=yes' 'ExecStart=/usr/sbin/parmod -q /etc/parmod.plan' 'WantedBy=sysinit.target'; do
    check "systemd: unit has $l" grep -qx "$l" "$U"
done
check "systemd: unit runs before sysinit.target and systemd-modules-load" \
    sh -c "grep -q '^Before=.*sysinit.target' '$U' && grep -q '^Before=.*systemd-modules-load.service' '$U'"
check "systemd: drop-in skips systemd-modules-load after parmod" \
    grep -qx 'ConditionPathExists=!/run/parmod/modules-loaded' "$repo/packaging/systemd/systemd-modules-load.service.d/parmod.conf"
check "systemd: README shows the ExecStartPre wait pattern" grep -q 'ExecStartPre=/usr/sbin/parmod wait' "$repo/packaging/systemd/README.md"
if command -v systemd-analyze >/dev/null; then
    sed "s|/usr/sbin/parmod|$PARMOD|g" "$U" > "$W/parmod-modules-load.service"
    check "systemd: systemd-analyze verify" systemd-analyze verify --man=no "$W/parmod-modules-load.service"
fi

# --- install.sh -------------------------------------------------------------------
D=$W/destdir
check "install.sh PREFIX=/usr/local DESTDIR=..." env DESTDIR="$D" PREFIX=/usr/local \
    "$repo/packaging/install.sh" --parmod "$PARMOD" --parmod-plan "$PARMOD_PLAN"
for f in sbin/parmod bin/parmod-plan share/man/man8/parmod.8 share/man/man8/parmod-plan.8 \
    lib/systemd/system/parmod-modules-load.service \
    lib/systemd/system/systemd-modules-load.service.d/parmod.conf; do
    check "install.sh: /usr/local/$f" test -f "$D/usr/local/$f"
done
check "install.sh: binaries are executable" test -x "$D/usr/local/sbin/parmod" -a -x "$D/usr/local/bin/parmod-plan"
check "install.sh: unit runs /usr/local/sbin/parmod" \
    grep -qx 'ExecStart=/usr/local/sbin/parmod -q /etc/parmod.plan' "$D/usr/local/lib/systemd/system/parmod-modules-load.service"
check "install.sh: nothing outside DESTDIR/usr/local" sh -c "[ -z \"\$(find '$D' -mindepth 1 -maxdepth 1 ! -name usr)\" ]"
PR=$W/postinst-root
stage "$PR" $STAGE_MODS >"$W/stage3.log" 2>&1 || { cat "$W/stage3.log"; bad "staging $PR"; }
mkdir -p "$PR/etc/modules-load.d"
printf 'virtio_net\n; comment\n' > "$PR/etc/modules-load.d/net.conf"
check "install.sh --postinst --root (modules-load.d)" env BINDIR="$D/usr/local/bin" \
    "$repo/packaging/install.sh" --postinst --root "$PR" --kver "$KVER" --no-enable
check "install.sh --postinst: plan lists virtio_net" plan_has "$PR/etc/parmod.plan" virtio_net net_failover

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
