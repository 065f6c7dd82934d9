//! parmod: parallel, dependency-driven kernel module loading.
//!
//! * [`plan`]: the binary load plan shared by both programs (reader: `no_std`,
//!   no allocation; writer: host only).
//! * [`compiler`] (feature `host`): turns `/lib/modules/$KVER` and modprobe.d
//!   into a plan.
//! * The target runtime lives in `src/runtime/` and is compiled only into the
//!   `parmod` binary (feature `runtime`).
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(any(feature = "host", test))]
extern crate std;

pub mod cmdline;
pub mod plan;

#[cfg(feature = "host")]
pub mod compiler;
