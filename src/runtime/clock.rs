//! The clock: CLOCK_MONOTONIC in nanoseconds (the clock of the trace and of
//! the kernel's ktime), and timespecs for the system calls that take them.
//! The run reads time through its kernel (`Kernel::now`), so that tests can
//! run on a fake clock; this is the real one.

/// Nanoseconds in a millisecond.
pub const MS: u64 = 1_000_000;

/// `ns` nanoseconds as a timespec (an absolute time or a duration).
pub fn timespec(ns: u64) -> rustix::time::Timespec {
    rustix::time::Timespec { tv_sec: (ns / 1_000_000_000) as _, tv_nsec: (ns % 1_000_000_000) as _ }
}

/// CLOCK_MONOTONIC, ns.
pub use super::arch::monotonic_ns;

/// `a` and `b` both optional: the earlier one.
pub fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}
