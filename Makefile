# parmod: build, test, benchmark.
#
#   make              both binaries, static, for $(TARGET)
#   make test         every test (installs what it needs on Debian 12)
#   make bench-plan   time parmod-plan compiling a plan of every Debian module
#   make bench        the benchmarks: simulated scheduler, device-wait latency, QEMU boots
#   make demo         QEMU boot of the Debian kernel: parmod beside modprobe -a
#   make fuzz         every fuzz target for FUZZ_SECONDS seconds (docs/fuzzing.md)

SHELL := /bin/bash
# rustup installs cargo here when the machine has none.
export PATH := $(HOME)/.cargo/bin:$(PATH)
ARCH ?= x86_64
# parmod-plan runs on the build host, whatever ARCH is.
HOST_TARGET := x86_64-unknown-linux-musl
ifeq ($(ARCH),x86_64)
TARGET ?= x86_64-unknown-linux-musl
else ifeq ($(ARCH),aarch64)
TARGET ?= aarch64-unknown-linux-musl
else ifeq ($(ARCH),armv7)
TARGET ?= armv7-unknown-linux-musleabihf
else
$(error ARCH=$(ARCH): choose x86_64, aarch64 or armv7)
endif
CARGO ?= cargo
OUT := target/$(TARGET)
PARMOD := $(OUT)/release/parmod
PARMOD_PLAN := target/$(HOST_TARGET)/host/parmod-plan
# The stripped runtime must stay within this many bytes (128 KiB; 64 KiB held
# through the restructuring into the kernel seam; what each later feature
# cost is in README.md, "Size").
SIZE_BUDGET := 163840

.PHONY: all build deps rust-target test unit-test msrv size-check bench bench-plan demo qemu-test initramfs clean \
	install man qemu-test-arm64 test-packaging fuzz qemu-test-systemd bench-systemd \
	qemu-test-coldplug bench-coldplug qemu-test-xz

all: build

build: rust-target
ifeq ($(TARGET),$(HOST_TARGET))
	$(CARGO) build --release --target $(TARGET) --no-default-features --features runtime --bin parmod
else
	CARGO="$(CARGO)" packaging/cross/build-runtime.sh $(TARGET)
endif
	$(CARGO) build --profile host --target $(HOST_TARGET) --features host --bin parmod-plan
	@ls -l $(PARMOD) $(PARMOD_PLAN)

# The host target; packaging/cross/build-runtime.sh sees to a cross target
# (rustup target or core from source, the cross linker from Debian).
rust-target:
	@command -v cargo >/dev/null || { \
	  echo "cargo not found: installing Rust with rustup"; \
	  command -v curl >/dev/null || { apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl ca-certificates; }; \
	  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal; }
	@rustup target list --installed 2>/dev/null | grep -qx $(HOST_TARGET) || rustup target add $(HOST_TARGET)

# Debian packages the tests use: the real kernel tree for the compiler tests,
# kmod for modprobe --show-depends, strace for the no-heap proof.
deps:
	@missing=""; \
	for p in gcc kmod strace linux-image-amd64 python3 musl-tools librsvg2-bin file xz-utils zstd util-linux \
	         e2fsprogs xfsprogs btrfs-progs dosfstools fdisk; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q || echo "apt-get update failed; installing from the package lists there are"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

size-check: build
	@size=$$(stat -c %s $(PARMOD)); \
	echo "parmod: $$size bytes stripped (budget $(SIZE_BUDGET))"; \
	file $(PARMOD) 2>/dev/null | grep -q 'statically linked\|static-pie linked' || { echo "parmod is not static" >&2; exit 1; }; \
	[ $$size -le $(SIZE_BUDGET) ] || { echo "parmod is over its size budget" >&2; exit 1; }

# The library's unit tests with the runtime (on the fake kernel) and the
# compiler, then the integration tests against the built binaries.
unit-test: deps build
	$(CARGO) test --lib --features host,runtime
	PARMOD_BIN=$(CURDIR)/$(PARMOD) PARMOD_REQUIRE_DEBIAN=1 PARMOD_REQUIRE_STRACE=1 PARMOD_REQUIRE_RSVG=1 PARMOD_REQUIRE_SETPRIV=1 \
	  PARMOD_REQUIRE_DEV_WRITABLE=1 PARMOD_REQUIRE_COMPRESSORS=1 PARMOD_REQUIRE_SCHEDSTAT=1 \
	  $(CARGO) test --features host

test: deps size-check unit-test msrv test-packaging fuzz qemu-test qemu-test-xz qemu-test-arm64 qemu-test-systemd qemu-test-coldplug

# Coverage-guided fuzzing (cargo-fuzz, libFuzzer; a nightly toolchain): each
# target FUZZ_SECONDS seconds, after the inputs that once failed
# (fuzz/regressions). About 2 minutes of build and 9 x FUZZ_SECONDS here.
FUZZ_SECONDS ?= 30
FUZZ_TOOLCHAIN ?= nightly
fuzz: rust-target
	@rustup toolchain list | grep -q '^$(FUZZ_TOOLCHAIN)' || rustup toolchain install $(FUZZ_TOOLCHAIN) --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked --version 0.13.2
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TOOLCHAIN=$(FUZZ_TOOLCHAIN) fuzz/run.sh

# Cargo.toml's rust-version holds: the library, both binaries and the tests
# type-check with that toolchain (heapless 0.9 needs 1.88; a safe
# #[target_feature] function 1.86).
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
msrv: rust-target
	@rustup toolchain list | grep -q "^$(MSRV)" || rustup toolchain install $(MSRV) --profile minimal
	@rustup target list --installed --toolchain $(MSRV) | grep -qx $(HOST_TARGET) || rustup target add $(HOST_TARGET) --toolchain $(MSRV)
	$(CARGO) +$(MSRV) check --target-dir target/msrv --target $(HOST_TARGET) --no-default-features --features runtime --bin parmod
	$(CARGO) +$(MSRV) check --target-dir target/msrv --features host,runtime --lib --tests
	$(CARGO) +$(MSRV) check --target-dir target/msrv --features host --bin parmod-plan

# The QEMU boot suite (installs qemu, the Debian kernel and headers, busybox).
qemu-test: build
	PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) qemu-test/run.sh

# Debian 12's 6.12 kernel, whose modules are .ko.xz: the large real set
# loaded with and without the unpacker (scenario unpack-xz), in its own
# work directory.
qemu-test-xz: build
	RUN_DIR=$(CURDIR)/build/qemu-xz KVER=6.12 PARMOD_REQUIRE_XZ=1 QEMU_TIMEOUT=300 PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) \
	  qemu-test/run.sh --only unpack-xz --mode init

# A Debian 12 system (mmdebstrap, cached in build/debian) booted with
# initramfs-tools + systemd-modules-load, with parmod's initramfs + unit, and
# with a unit waiting for a late device (qemu-test/systemd.sh).
qemu-test-systemd: build
	PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) qemu-test/systemd.sh

# Its timings: BENCH_BOOTS (default 3) boots of each way, medians into
# build/bench/systemd.txt.
bench-systemd: build
	PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) qemu-test/systemd.sh \
	  --only stock,parmod --boots $(or $(BENCH_BOOTS),3) --bench $(CURDIR)/build/bench/systemd.txt

# Coldplug on a q35 machine with many devices and every module of Debian's
# 6.12 kernel: parmod as /init (parmod.coldplug=1) against Debian 12's
# systemd-udevd, the same modules and drivers (qemu-test/coldplug.sh; 2 boots).
qemu-test-coldplug: build
	PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) qemu-test/coldplug.sh --test

# Its timings: parmod coldplug, udevd and kmod's one-shot modprobe -a,
# BENCH_BOOTS (default 3) interleaved boots each on 1 and 2 vCPUs, medians
# into build/coldplug/results.md.
bench-coldplug: build
	PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) qemu-test/coldplug.sh \
	  --bench --aliases --boots $(or $(BENCH_BOOTS),3)

# An initramfs that mounts the root and hands over to its init:
#   make initramfs [KVER=...] [ROOT=PARTUUID=...] [ROOTFS="ext4"] [STORAGE="..."]
#                  [MODULES="a b c"] [CONFIG=dir] [IMAGE=file]
# The plan holds the storage drivers (STORAGE), the root's file system
# modules (ROOTFS) and MODULES. ROOT (and any root parameters after it, e.g.
# ROOT="LABEL=root rootflags=noatime") is built into the image as
# /etc/parmod.cmdline; root= on the kernel command line overrides it, and
# without either /init execs parmod.next= (default /sbin/init) in the image.
# Names the kernel does not have are warnings (--skip-missing). The firmware
# the planned modules name is copied from /lib/firmware (FIRMWARE=0: none).
KVER ?= $(shell ls /lib/modules 2>/dev/null | sort -V | tail -n 1)
MODULES ?=
ROOT ?=
ROOTFS ?= ext4
STORAGE ?= virtio_pci virtio_blk virtio_scsi sd_mod nvme ahci
FIRMWARE ?= 1
IMAGE ?= build/initramfs-$(KVER).cpio.gz
initramfs: build
	@[ -n "$(strip $(STORAGE) $(ROOTFS) $(MODULES))" ] || { echo "make initramfs: STORAGE, ROOTFS and MODULES are all empty: nothing to load" >&2; exit 2; }
	mkdir -p build/initramfs
	$(PARMOD_PLAN) compile --kver $(KVER) --skip-missing $(if $(CONFIG),--config $(CONFIG)) \
	  -o build/initramfs/parmod.plan $(STORAGE) $(ROOTFS) $(MODULES)
	initramfs/mkinitramfs.sh --kver $(KVER) --modules-dir /lib/modules/$(KVER) \
	  --plan build/initramfs/parmod.plan --parmod $(PARMOD) --parmod-plan $(PARMOD_PLAN) \
	  $(if $(strip $(ROOT)),--cmdline "root=$(strip $(ROOT))") $(if $(filter 1,$(FIRMWARE)),--firmware) \
	  --busybox --compress gzip -o $(IMAGE)

# Install (onto this system, or into DESTDIR): parmod to $(PREFIX)/sbin,
# parmod-plan to $(PREFIX)/bin, man pages, the systemd unit; without DESTDIR
# also compile /etc/parmod.plan and enable the unit (packaging/install.sh).
PREFIX ?= /usr/local
install: build
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" packaging/install.sh --parmod $(PARMOD) --parmod-plan $(PARMOD_PLAN)

# parmod(8) and parmod-plan(8) from --help, into build/man/.
man: build
	packaging/man/gen-man.sh --parmod $(PARMOD) --parmod-plan $(PARMOD_PLAN)

# The arm64 QEMU boot test: the aarch64 parmod as /init of Debian's arm64 kernel.
qemu-test-arm64:
	$(MAKE) --no-print-directory ARCH=aarch64 build
	PARMOD=$(CURDIR)/target/aarch64-unknown-linux-musl/release/parmod \
	  PARMOD_PLAN=$(CURDIR)/target/$(HOST_TARGET)/host/parmod-plan qemu-test/arm64.sh

# Offline checks of the Buildroot and Yocto packaging, man pages, unit and
# install script (host binaries: run with the default ARCH).
test-packaging: build
	PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) tests/packaging.sh

bench-plan: deps
	bench/bench-plan.sh

# The benchmarks: the scheduler on simulated plans, device-wait latency in
# QEMU, and the QEMU boot benchmark against the other loaders on Debian 12's
# 6.1 and 6.12 kernels (docs/BENCHMARKS.md; ~1 h on a quiet 2-CPU host).
# BENCH_BOOTS=N boots per variant (default 3), BENCH_KERNELS="6.1 6.12",
# BENCH_WORKLOADS="real fixture padded" (qemu-test/bench.sh --help).
bench: build
	PARMOD_BIN=$(CURDIR)/$(PARMOD) $(CARGO) run --quiet --profile host --features host --example simbench
	PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) qemu-test/wait-latency.sh
	PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) qemu-test/bench.sh
	$(MAKE) --no-print-directory bench-systemd
	$(MAKE) --no-print-directory bench-coldplug

# One boot with parmod, one with modprobe -a, and the report of the parmod boot
# (build/demo/: report.txt, timeline.svg, trace.json).
demo: deps build
	PARMOD=$(CURDIR)/$(PARMOD) PARMOD_PLAN=$(CURDIR)/$(PARMOD_PLAN) qemu-test/demo.sh

clean:
	$(CARGO) clean
	rm -rf build
