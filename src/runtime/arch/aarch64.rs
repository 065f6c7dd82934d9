//! aarch64 system-call entry points that rustix does not offer publicly:
//! `clone` onto a fresh stack, the exit of one task, `rt_sigprocmask` and
//! `execve`. Same functions and contracts as `x86_64.rs`; numbers from
//! linux-raw-sys.
//!
//! The arm64 Linux system-call convention: the number in `x8`, arguments in
//! `x0`..`x5`, `svc #0`, the result (or a negative errno) in `x0`. The kernel
//! preserves every other general register. arm64 uses the generic system-call
//! table (include/uapi/asm-generic/unistd.h).

use core::arch::asm;

use linux_raw_sys::general::{__NR_clock_gettime, __NR_clone, __NR_execve, __NR_exit, __NR_exit_group, __NR_rt_sigprocmask, __NR_sched_setscheduler};

/// Start `entry(arg)` in a new task on the stack whose top is `stack_top`.
///
/// Returns the new task's id, or a negative errno.
///
/// # Safety
/// * `stack_top` must be the 16-byte aligned top of a writable mapping that
///   nothing else uses and that outlives the task.
/// * `flags` must include `CLONE_VM`: the child runs `entry` in this address
///   space and must not return (it ends with [`exit_task`]).
/// * `tid` must point to a `u32` that outlives the task (the kernel writes the
///   id there and clears it at exit for `CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID`).
pub(super) unsafe fn clone_task(
    flags: usize,
    stack_top: *mut u8,
    tid: *mut u32,
    entry: extern "C" fn(usize) -> !,
    arg: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the caller upholds the contract above. arm64's clone takes
    // (flags, newsp, parent_tid, tls, child_tid): x0..x4. The child starts
    // with a copy of every register but x0 (0) and sp (`stack_top`), and
    // touches no memory of the parent's frame: it only moves `arg` (x10) into
    // x0 and calls `entry` (x9), which never returns. `entry` and `arg` sit
    // in x9/x10 because LLVM reserves x19 and x29; the kernel keeps both
    // intact across `svc` in parent and child.
    unsafe {
        asm!(
            "svc #0",
            "cbnz x0, 2f",
            // Child: zero the frame pointer and link register so back-traces
            // end here; sp is 16-byte aligned as the ABI requires.
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, x10",
            "blr x9",
            "udf #0",
            "2:",
            in("x8") __NR_clone as usize,
            inlateout("x0") flags as isize => ret,
            in("x1") stack_top,
            in("x2") tid,
            in("x3") 0usize,
            in("x4") tid,
            in("x9") entry,
            in("x10") arg,
            options(nostack),
        );
    }
    ret
}

/// End the calling task (not the whole process): `exit(2)`, not `exit_group`.
pub fn exit_task(code: i32) -> ! {
    // SAFETY: SYS_exit takes one integer and never returns; it touches no
    // memory of ours.
    unsafe {
        asm!("svc #0", in("x8") __NR_exit as usize, in("x0") code as isize, options(noreturn, nostack));
    }
}

/// End the whole thread group (our worker tasks are separate: they die
/// through PR_SET_PDEATHSIG).
pub fn exit_process(code: i32) -> ! {
    // SAFETY: SYS_exit_group takes one integer and never returns.
    unsafe {
        asm!("svc #0", in("x8") __NR_exit_group as usize, in("x0") code as isize, options(noreturn, nostack));
    }
}

/// `rt_sigprocmask(how, set, old, 8)`: returns 0 or a negative errno.
pub(super) fn sigprocmask(how: u32, set: &u64, old: &mut u64) -> isize {
    let ret: isize;
    // SAFETY: `set` and `old` are valid 8-byte kernel sigsets for the call.
    unsafe {
        asm!(
            "svc #0",
            in("x8") __NR_rt_sigprocmask as usize,
            inlateout("x0") how as isize => ret,
            in("x1") set as *const u64,
            in("x2") old as *mut u64,
            in("x3") 8usize,
            options(nostack),
        );
    }
    ret
}

/// `execve(path, argv, envp)`: returns only on failure, with a negative errno.
///
/// # Safety
/// `argv` and `envp` must be NULL-terminated arrays of pointers to
/// NUL-terminated strings, valid for the call.
pub(super) unsafe fn execve(path: &core::ffi::CStr, argv: *const *const u8, envp: *const *const u8) -> isize {
    let ret: isize;
    // SAFETY: `path` is NUL-terminated; `argv` and `envp` are as the caller
    // promises.
    unsafe {
        asm!(
            "svc #0",
            in("x8") __NR_execve as usize,
            inlateout("x0") path.as_ptr() as isize => ret,
            in("x1") argv,
            in("x2") envp,
            options(nostack),
        );
    }
    ret
}

/// `clock_gettime(clock)` in nanoseconds, or the negative errno (by system
/// call: no vDSO lookup code in the binary).
pub(super) fn clock_ns(clock: i32) -> Result<u64, i32> {
    let mut ts = [0i64; 2];
    let ret: isize;
    // SAFETY: `ts` is a valid, writable struct timespec for the call.
    unsafe {
        asm!(
            "svc #0",
            in("x8") __NR_clock_gettime as usize,
            inlateout("x0") clock as isize => ret,
            in("x1") ts.as_mut_ptr(),
            options(nostack),
        );
    }
    if ret < 0 {
        return Err(ret as i32);
    }
    Ok(ts[0] as u64 * 1_000_000_000 + ts[1] as u64)
}

/// `sched_setscheduler(pid, policy, param)`: 0 or a negative errno.
pub(super) fn sched_setscheduler(pid: i32, policy: i32, param: &i32) -> isize {
    let ret: isize;
    // SAFETY: `param` is a valid struct sched_param (one int) for the call.
    unsafe {
        asm!(
            "svc #0",
            in("x8") __NR_sched_setscheduler as usize,
            inlateout("x0") pid as isize => ret,
            in("x1") policy as isize,
            in("x2") param as *const i32,
            options(nostack),
        );
    }
    ret
}
