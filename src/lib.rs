//! parmod: parallel, dependency-driven kernel module loading.
//!
//! * [`blockid`]: the root device from the kernel command line, partition
//!   tables and superblocks (`no_std`, no allocation, no I/O of its own).
//! * [`plan`]: the binary load plan shared by both programs (reader: `no_std`,
//!   no allocation; writer: host only).
//! * [`compiler`] (feature `host`): turns `/lib/modules/$KVER` and modprobe.d
//!   into a plan; `parmod-plan` is its command line.
//! * [`report`] (feature `host`): what a boot did, from its trace.
//! * [`runtime`] (feature `runtime`): the target loader, `no_std` and
//!   heap-free; `src/bin/parmod.rs` is its thin `main`.
#![no_std]
// `unsafe` only where a module says why it needs it (#[allow] there): the
// runtime's mappings, futex cell and clone trampolines, and the host CRC's
// SSE4.2 path.
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(any(feature = "host", test))]
extern crate std;

pub mod blockid;
pub mod cmdline;
pub mod plan;

#[cfg(feature = "host")]
pub mod compiler;
#[cfg(feature = "host")]
pub mod report;

#[cfg(feature = "runtime")]
pub mod runtime;
