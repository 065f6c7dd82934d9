################################################################################
#
# parmod
#
################################################################################

PARMOD_VERSION = 0.1.0
# Built from the source tree this BR2_EXTERNAL tree is part of
# (packaging/buildroot in the parmod sources). For a release tarball, set
# PARMOD_SITE/PARMOD_SOURCE (or PARMOD_SITE_METHOD = git) instead, drop the
# vendoring hook below (the cargo download post-process vendors then) and
# add the tarball's hash to parmod.hash.
PARMOD_SITE = $(realpath $(BR2_EXTERNAL_PARMOD_PATH)/../..)
PARMOD_SITE_METHOD = local
PARMOD_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=/target --exclude=/build --exclude=/vendor
HOST_PARMOD_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	$(PARMOD_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS)
PARMOD_LICENSE = MIT or Apache-2.0
# The source tree carries no license text yet: once it has LICENSE-MIT and
# LICENSE-APACHE, list them here and their sha256 in parmod.hash.

# The target side is the no_std runtime only; parmod-plan (std) is the
# host package's.
PARMOD_CARGO_BUILD_OPTS = --no-default-features --features runtime --bin parmod
HOST_PARMOD_CARGO_BUILD_OPTS = --features host --bin parmod-plan

# The cargo infrastructure derives opt-level and LTO from BR2_OPTIMIZE_* and
# BR2_ENABLE_LTO; the runtime keeps Cargo.toml's release profile (size:
# opt-level z, fat LTO, one codegen unit), or it outgrows its 64 KiB.
PARMOD_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
	CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
# parmod-plan wants speed, not size (Cargo.toml's "host" profile).
HOST_PARMOD_CARGO_ENV = CARGO_PROFILE_RELEASE_OPT_LEVEL=3

# A local source is not vendored by the download step: vendor the crates
# into the build directory before building (with host-rustc's cargo; this
# needs the crates in $(BR_CARGO_HOME) or network access once) and point
# cargo at them, so the builds stay --offline. Idempotent for rebuilds.
define PARMOD_CARGO_VENDOR
	cd $(@D) && $(PKG_COMMON_CARGO_ENV) cargo vendor --locked --versioned-dirs \
		vendor > $(@D)/.cargo/vendor.toml
	grep -q '^\[source.vendored-sources\]' $(@D)/.cargo/config.toml || \
		cat $(@D)/.cargo/vendor.toml >> $(@D)/.cargo/config.toml
endef
PARMOD_PRE_BUILD_HOOKS += PARMOD_CARGO_VENDOR
HOST_PARMOD_PRE_BUILD_HOOKS += PARMOD_CARGO_VENDOR

PARMOD_PROFILE_DIR = $(if $(BR2_ENABLE_DEBUG),debug,release)

define PARMOD_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 \
		$(@D)/target/$(RUSTC_TARGET_NAME)/$(PARMOD_PROFILE_DIR)/parmod \
		$(TARGET_DIR)/usr/sbin/parmod
endef

define PARMOD_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/packaging/systemd/parmod-modules-load.service \
		$(TARGET_DIR)/usr/lib/systemd/system/parmod-modules-load.service
	$(INSTALL) -D -m 0644 \
		$(@D)/packaging/systemd/systemd-modules-load.service.d/parmod.conf \
		$(TARGET_DIR)/usr/lib/systemd/system/systemd-modules-load.service.d/parmod.conf
	mkdir -p $(TARGET_DIR)/usr/lib/systemd/system-preset
	echo "enable parmod-modules-load.service" > \
		$(TARGET_DIR)/usr/lib/systemd/system-preset/50-parmod.preset
endef

define HOST_PARMOD_INSTALL_CMDS
	$(INSTALL) -D -m 0755 $(@D)/target/release/parmod-plan \
		$(HOST_DIR)/bin/parmod-plan
endef

$(eval $(cargo-package))
$(eval $(host-cargo-package))
