//! x86_64 system-call entry points that rustix does not offer publicly:
//! `clone` onto a fresh stack, the exit of one task, `rt_sigprocmask`,
//! `execve`, and `clock_gettime` by system call. Numbers from linux-raw-sys.

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
    // SAFETY: the caller upholds the contract above. In the child every
    // register but rax is a copy of the parent's, rsp is `stack_top`, and the
    // child touches no memory of the parent's frame: it only moves `arg`
    // (r13) into rdi and calls `entry` (r12), which never returns.
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            // Child: clear the frame pointer so back-traces end here; rsp is
            // 16-byte aligned, so after `call` pushes the return address the
            // callee sees the alignment the ABI promises.
            "xor ebp, ebp",
            "mov rdi, r13",
            "call r12",
            "ud2",
            "2:",
            inlateout("rax") __NR_clone as isize => ret,
            in("rdi") flags,
            in("rsi") stack_top,
            in("rdx") tid,
            in("r10") tid,
            in("r8") 0usize,
            in("r12") entry,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
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
        asm!("syscall", in("rax") __NR_exit as usize, in("rdi") code as isize, options(noreturn, nostack));
    }
}

/// End the whole thread group (our worker tasks are separate: they die
/// through PR_SET_PDEATHSIG).
pub fn exit_process(code: i32) -> ! {
    // SAFETY: SYS_exit_group takes one integer and never returns.
    unsafe {
        asm!("syscall", in("rax") __NR_exit_group as usize, in("rdi") code as isize, options(noreturn, nostack));
    }
}

/// `rt_sigprocmask(how, set, old, 8)`: returns 0 or a negative errno.
pub(super) fn sigprocmask(how: u32, set: &u64, old: &mut u64) -> isize {
    let ret: isize;
    // SAFETY: `set` and `old` are valid 8-byte kernel sigsets for the call.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") __NR_rt_sigprocmask as isize => ret,
            in("rdi") how as usize,
            in("rsi") set as *const u64,
            in("rdx") old as *mut u64,
            in("r10") 8usize,
            lateout("rcx") _,
            lateout("r11") _,
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
            "syscall",
            inlateout("rax") __NR_execve as isize => ret,
            in("rdi") path.as_ptr(),
            in("rsi") argv,
            in("rdx") envp,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// `clock_gettime(clock)` in nanoseconds, or the negative errno; by the
/// system call rather than the vDSO: the vDSO lookup code would cost 1.6 KiB
/// of a 64 KiB budget, the system call well under a microsecond.
pub(super) fn clock_ns(clock: i32) -> Result<u64, i32> {
    let mut ts = [0i64; 2];
    let ret: isize;
    // SAFETY: `ts` is a valid, writable struct timespec for the call.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") __NR_clock_gettime as isize => ret,
            in("rdi") clock as isize,
            in("rsi") ts.as_mut_ptr(),
            lateout("rcx") _,
            lateout("r11") _,
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
            "syscall",
            inlateout("rax") __NR_sched_setscheduler as isize => ret,
            in("rdi") pid as isize,
            in("rsi") policy as isize,
            in("rdx") param as *const i32,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
