# Compile parmod's load plan at image build time.
#
# Inherit in an image recipe (an initramfs image or a root file system):
#
#   inherit parmod-initramfs
#   PARMOD_MODULES = "virtio_blk virtio_net btrfs"
#
# The image gets the parmod package and ${sysconfdir}/parmod.plan, compiled
# by parmod-plan from the native sysroot (parmod-native) against the image's
# own module tree, modprobe.d and parmod.d (wait-for statements).
#
# PARMOD_MODULES    module names or aliases; empty: the image's modules-load.d
# PARMOD_PLAN_ARGS  more `parmod-plan compile` options (--jobs, --deadline ...)
# PARMOD_PLAN_FILE  where the plan goes (default ${sysconfdir}/parmod.plan)
# PARMOD_INIT       "1": /init is parmod (an initramfs without another init):
#                   it mounts /proc, /sys and /dev, loads the plan and
#                   executes parmod.next= from the kernel command line
#                   (default /sbin/init)
#
# The image needs the kernel modules it loads (e.g. in PACKAGE_INSTALL of
# an initramfs image, or kernel-modules).

PARMOD_MODULES ??= ""
PARMOD_PLAN_ARGS ??= ""
PARMOD_PLAN_FILE ??= "${sysconfdir}/parmod.plan"
PARMOD_INIT ??= "0"

# PACKAGE_INSTALL: what initramfs images set instead of IMAGE_INSTALL (and
# what IMAGE_INSTALL feeds in other images).
PACKAGE_INSTALL:append = " parmod"
do_rootfs[depends] += "parmod-native:do_populate_sysroot"

ROOTFS_POSTPROCESS_COMMAND += "parmod_compile_plan"

parmod_compile_plan () {
	# The kernel the image is for (what do_rootfs runs depmod for).
	kver=""
	abi=${PKGDATA_DIR}/kernel-depmod/kernel-abiversion
	if [ -f "$abi" ]; then
		kver=$(cat "$abi")
	fi
	if [ -z "$kver" ] || [ ! -d ${IMAGE_ROOTFS}/lib/modules/$kver ]; then
		bbwarn "parmod: no kernel modules in the image: no plan"
		return 0
	fi
	# ROOTFS_POSTPROCESS_COMMAND runs before do_rootfs' own depmod.
	depmodwrapper -a -b ${IMAGE_ROOTFS} $kver
	plan=${IMAGE_ROOTFS}${PARMOD_PLAN_FILE}
	mkdir -p $(dirname $plan)
	${STAGING_BINDIR_NATIVE}/parmod-plan compile --root ${IMAGE_ROOTFS} --kver $kver \
		${PARMOD_PLAN_ARGS} -o $plan ${PARMOD_MODULES}
	if [ "${PARMOD_INIT}" = "1" ]; then
		ln -sf ${sbindir}/parmod ${IMAGE_ROOTFS}/init
	fi
}
