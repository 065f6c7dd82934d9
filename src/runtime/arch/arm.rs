//! 32-bit ARM (EABI) system-call entry points that rustix does not offer
//! publicly: `clone` onto a fresh stack, the exit of one task,
//! `rt_sigprocmask` and `execve`. Same functions and contracts as
//! `x86_64.rs`; numbers from linux-raw-sys.
//!
//! The ARM EABI Linux system-call convention: the number in `r7`, arguments
//! in `r0`..`r6`, `svc #0`, the result (or a negative errno) in `r0`. The
//! kernel preserves every other register (the EABI numbers, without the OABI
//! offset).
//!
//! `r7` is the frame pointer of Thumb code, and LLVM does not let an `asm!`
//! operand name it. Every call below therefore gets the number in another
//! register, saves `r7` in `r10`, loads the number into `r7` for the `svc`
//! and restores `r7` afterwards. That works in Thumb and ARM state alike
//! (the runtime is built as Thumb-2: about a fifth smaller than A32).

use core::arch::asm;

use linux_raw_sys::general::{__NR_clock_gettime64, __NR_clone, __NR_execve, __NR_exit, __NR_exit_group, __NR_rt_sigprocmask, __NR_sched_setscheduler};

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
    // SAFETY: the caller upholds the contract above. ARM's clone takes
    // (flags, newsp, parent_tid, tls, child_tid): r0..r4. The child starts
    // with a copy of every register but r0 (0) and sp (`stack_top`), and
    // touches no memory of the parent's frame: it only moves `arg` (r8) into
    // r0 and calls `entry` (r5), which never returns. The parent restores r7
    // from r10 (see the module comment); r5, r8 and r12 are kept intact by
    // the kernel. (LLVM reserves r6, r7/r11 and r9, hence these choices.)
    unsafe {
        asm!(
            "mov r10, r7",
            "mov r7, r12",
            "svc #0",
            "cmp r0, #0",
            "bne 2f",
            // Child: zero both frame-pointer candidates (r7 in Thumb, r11 in
            // ARM state) and the link register so back-traces end here; sp is
            // 16-byte aligned (AAPCS asks for 8 at calls).
            "mov r7, #0",
            "mov r11, #0",
            "mov lr, #0",
            "mov r0, r8",
            "blx r5",
            "udf #0",
            "2:",
            "mov r7, r10",
            in("r12") __NR_clone as usize,
            inlateout("r0") flags as isize => ret,
            in("r1") stack_top,
            in("r2") tid,
            in("r3") 0usize,
            in("r4") tid,
            in("r5") entry,
            in("r8") arg,
            out("r10") _,
            options(nostack),
        );
    }
    ret
}

/// End the calling task (not the whole process): `exit(2)`, not `exit_group`.
pub fn exit_task(code: i32) -> ! {
    // SAFETY: SYS_exit takes one integer and never returns; it touches no
    // memory of ours. r7 need not be restored: nothing runs after the call.
    unsafe {
        asm!("mov r7, r12", "svc #0", in("r12") __NR_exit as usize, in("r0") code as isize, options(noreturn, nostack));
    }
}

/// End the whole thread group (our worker tasks are separate: they die
/// through PR_SET_PDEATHSIG).
pub fn exit_process(code: i32) -> ! {
    // SAFETY: SYS_exit_group takes one integer and never returns.
    unsafe {
        asm!("mov r7, r12", "svc #0", in("r12") __NR_exit_group as usize, in("r0") code as isize, options(noreturn, nostack));
    }
}

/// `rt_sigprocmask(how, set, old, 8)`: returns 0 or a negative errno.
pub(super) fn sigprocmask(how: u32, set: &u64, old: &mut u64) -> isize {
    let ret: isize;
    // SAFETY: `set` and `old` are valid 8-byte kernel sigsets for the call;
    // r7 is restored before the block ends.
    unsafe {
        asm!(
            "mov r10, r7",
            "mov r7, r12",
            "svc #0",
            "mov r7, r10",
            in("r12") __NR_rt_sigprocmask as usize,
            inlateout("r0") how as isize => ret,
            in("r1") set as *const u64,
            in("r2") old as *mut u64,
            in("r3") 8usize,
            out("r10") _,
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
    // promises; r7 is restored before the block ends.
    unsafe {
        asm!(
            "mov r10, r7",
            "mov r7, r12",
            "svc #0",
            "mov r7, r10",
            in("r12") __NR_execve as usize,
            inlateout("r0") path.as_ptr() as isize => ret,
            in("r1") argv,
            in("r2") envp,
            out("r10") _,
            options(nostack),
        );
    }
    ret
}

/// `clock_gettime(clock)` in nanoseconds, or the negative errno: the 64-bit
/// time call (`clock_gettime64`, Linux 5.1), by system call (no vDSO code in
/// the binary).
pub(super) fn clock_ns(clock: i32) -> Result<u64, i32> {
    let mut ts = [0i64; 2];
    let ret: isize;
    // SAFETY: `ts` is a valid, writable struct __kernel_timespec for the
    // call; r7 is restored before the block ends.
    unsafe {
        asm!(
            "mov r10, r7",
            "mov r7, r12",
            "svc #0",
            "mov r7, r10",
            in("r12") __NR_clock_gettime64 as usize,
            inlateout("r0") clock as isize => ret,
            in("r1") ts.as_mut_ptr(),
            out("r10") _,
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
    // SAFETY: `param` is a valid struct sched_param (one int) for the call;
    // r7 is restored before the block ends.
    unsafe {
        asm!(
            "mov r10, r7",
            "mov r7, r12",
            "svc #0",
            "mov r7, r10",
            in("r12") __NR_sched_setscheduler as usize,
            inlateout("r0") pid as isize => ret,
            in("r1") policy as isize,
            in("r2") param as *const i32,
            out("r10") _,
            options(nostack),
        );
    }
    ret
}
