SUMMARY = "Parallel, dependency-driven kernel module loading for fast boots"
DESCRIPTION = "parmod loads kernel modules in parallel at early boot, each as \
soon as its dependencies are loaded, from a plan compiled ahead of time. The \
target package holds the static, heap-free loader (/usr/sbin/parmod) and a \
systemd unit that takes over from systemd-modules-load; parmod-native holds \
parmod-plan, which compiles plans at image build time (see the \
parmod-initramfs class)."
SECTION = "kernel/userland"
LICENSE = "MIT | Apache-2.0"
# The sources carry no license texts yet: the license is the one Cargo.toml
# states (line 6). Point this at LICENSE-MIT / LICENSE-APACHE once they exist.
LIC_FILES_CHKSUM = "file://Cargo.toml;beginline=6;endline=6;md5=86b31c7756a1a7962f28b62856ed4f05"

# This layer sits in the parmod source tree (packaging/yocto/meta-parmod):
# the recipe builds that tree's git repository. For a product, set PARMOD_GIT
# (and the protocol) to your clone or server and SRCREV to a release commit.
PARMOD_GIT ?= "${@os.path.abspath(os.path.join(d.getVar('FILE_DIRNAME'), '../../../../..'))}"
PARMOD_GIT_PROTOCOL ?= "file"
PARMOD_BRANCH ?= "main"
SRC_URI = "git://${PARMOD_GIT};protocol=${PARMOD_GIT_PROTOCOL};branch=${PARMOD_BRANCH};destsuffix=${BP}"
SRCREV ?= "${AUTOREV}"
PV .= "+git"

# Releases before styhead unpack into WORKDIR and have no UNPACKDIR.
UNPACKDIR ??= "${WORKDIR}"
S = "${UNPACKDIR}/${BP}"

inherit cargo cargo-update-recipe-crates systemd

# The crates of Cargo.lock (regenerate: packaging/yocto/gen-crates-inc.sh, or
# bitbake -c update_crates parmod).
require ${BPN}-crates.inc

# Target: the no_std runtime only. Native: the plan compiler (std).
PARMOD_CARGO_ARGS = "--no-default-features --features runtime --bin parmod"
PARMOD_CARGO_ARGS:class-native = "--features host --bin parmod-plan"
CARGO_BUILD_FLAGS:append = " ${PARMOD_CARGO_ARGS}"

# oe-core's Rust targets are its own (e.g. aarch64-poky-linux-musl), so the
# per-target settings of the source's .cargo/config.toml do not apply: give
# them here. Static and non-PIE with musl (the loader runs as the initramfs
# /init, without a dynamic loader); no unwind tables (panic = "abort");
# Thumb-2 on 32-bit ARM to stay within the 64 KiB budget. With glibc the
# loader links dynamically (not tested).
RUSTFLAGS:append:class-target:libc-musl = " -C target-feature=+crt-static -C relocation-model=static \
    -C link-arg=-Wl,-z,noseparate-code -C link-arg=-Wl,--build-id=none"
RUSTFLAGS:append:class-target:aarch64 = " -C link-arg=-lc"
RUSTFLAGS:append:class-target:arm = " -C force-unwind-tables=no -C target-feature=+thumb-mode"
# Yocto strips and splits debug info itself (Cargo.toml's release profile
# strips: that would trip the already-stripped QA check).
export CARGO_PROFILE_RELEASE_STRIP = "false"

COMPATIBLE_HOST = "(x86_64|aarch64|arm).*-linux.*"

do_install() {
    install -D -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/parmod ${D}${sbindir}/parmod
    if ${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'true', 'false', d)}; then
        install -d ${D}${systemd_system_unitdir}/systemd-modules-load.service.d
        sed 's|/usr/sbin/parmod|${sbindir}/parmod|g' \
            ${S}/packaging/systemd/parmod-modules-load.service \
            > ${D}${systemd_system_unitdir}/parmod-modules-load.service
        chmod 0644 ${D}${systemd_system_unitdir}/parmod-modules-load.service
        install -m 0644 ${S}/packaging/systemd/systemd-modules-load.service.d/parmod.conf \
            ${D}${systemd_system_unitdir}/systemd-modules-load.service.d/parmod.conf
    fi
}

do_install:class-native() {
    install -D -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/parmod-plan ${D}${bindir}/parmod-plan
}

SYSTEMD_SERVICE:${PN} = "parmod-modules-load.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"
FILES:${PN} += "${systemd_system_unitdir}/systemd-modules-load.service.d"

# parmod-native: parmod-plan, for the parmod-initramfs class.
BBCLASSEXTEND = "native"
