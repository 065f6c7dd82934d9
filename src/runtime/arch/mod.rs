//! The system calls rustix does not offer publicly, one file per
//! architecture (each with the same functions and contracts: `clone_task`,
//! `exit_task`, `exit_process`, `sigprocmask`, `execve`, `clock_ns`,
//! `sched_setscheduler`). The
//! raw entry points stay private to this module; what it exports is safe:
//! [`spawn_task`], [`exec`], the exits and the clocks.
#![allow(unsafe_code)]

use core::ffi::CStr;
use core::sync::atomic::AtomicU32;

use linux_raw_sys::general::{CLONE_CHILD_CLEARTID, CLONE_PARENT_SETTID, CLONE_SYSVSEM, CLONE_VM, SIGCHLD, SIG_SETMASK};
use rustix::io::Errno;

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
use x86_64 as imp;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
use aarch64 as imp;

#[cfg(target_arch = "arm")]
mod arm;
#[cfg(target_arch = "arm")]
use arm as imp;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm")))]
compile_error!("parmod's runtime has clone support for x86_64, aarch64 and arm only");

pub use imp::{exit_process, exit_task};

/// Put the calling task in the idle scheduling class (`SCHED_IDLE`: it runs
/// only on a CPU no other task wants); whether that worked.
pub fn sched_idle() -> bool {
    const SCHED_IDLE: i32 = 5;
    imp::sched_setscheduler(0, SCHED_IDLE, &0) == 0
}

/// CLOCK_MONOTONIC, ns.
pub fn monotonic_ns() -> u64 {
    imp::clock_ns(linux_raw_sys::general::CLOCK_MONOTONIC as i32).unwrap_or(0)
}

/// CLOCK_REALTIME, ns (0 when unreadable).
pub fn realtime_ns() -> u64 {
    imp::clock_ns(linux_raw_sys::general::CLOCK_REALTIME as i32).unwrap_or(0)
}

/// The CPU time task `pid` has used, ns: its process CPU clock
/// (`MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)` of include/linux/posix-timers.h).
/// A worker is a process of its own (not in our thread group), so its
/// process clock is its own CPU time, and any process may read it.
pub fn task_cpu_ns(pid: u32) -> Option<u64> {
    const CPUCLOCK_SCHED: u32 = 2;
    imp::clock_ns(((!pid) << 3 | CPUCLOCK_SCHED) as i32).ok()
}

/// Start `entry(arg)` as a new task that shares this address space (but not
/// the thread group, the descriptor table or the cwd), on a fresh stack of
/// `stack_size` bytes above a guard page, with every signal blocked. The
/// kernel stores the task's id in `tid` and clears it (waking futex waiters)
/// when the task exits; it reports its exit to us with SIGCHLD. `entry` must
/// end the task with [`exit_task`].
pub fn spawn_task(
    entry: extern "C" fn(usize) -> !,
    arg: usize,
    tid: &'static AtomicU32,
    stack_size: usize,
) -> Result<(), Errno> {
    let top = super::mapping::map_stack(stack_size)?;
    let flags = (CLONE_VM | CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD) as usize;
    // Block every signal across clone so the child starts with all blocked
    // and no handler of ours can run on its stack; restore ours afterwards.
    let all: u64 = !0;
    let mut old: u64 = 0;
    let _ = imp::sigprocmask(SIG_SETMASK, &all, &mut old);
    // SAFETY: `top` is the top of a fresh stack nobody else uses and that is
    // never unmapped; CLONE_VM is set and `entry` never returns; `tid` is a
    // 'static word, so it outlives the task.
    let ret = unsafe { imp::clone_task(flags, top, tid.as_ptr(), entry, arg) };
    let mut ignored: u64 = 0;
    let _ = imp::sigprocmask(SIG_SETMASK, &old, &mut ignored);
    if ret < 0 {
        return Err(Errno::from_raw_os_error(-ret as i32));
    }
    Ok(())
}

/// The process environment as the C runtime passed it to `main`.
#[derive(Clone, Copy)]
pub struct Env(*const *const u8);

impl Env {
    /// # Safety
    /// `envp` must be NULL or a NULL-terminated array of NUL-terminated
    /// strings that live as long as the process (as `main` receives it).
    pub unsafe fn new(envp: *const *const u8) -> Env {
        Env(envp)
    }

    /// No environment at all.
    pub const EMPTY: Env = Env(core::ptr::null());
}

/// Replace the process image with `path`, arguments `args` and the
/// environment `env` (at most [`MAX_EXEC_ARGS`] each). Returns only on
/// failure, with the errno.
pub fn exec_with(path: &CStr, args: &[&CStr], env: &[&CStr]) -> Errno {
    let mut envp = [core::ptr::null::<u8>(); MAX_EXEC_ARGS + 1];
    if env.len() > MAX_EXEC_ARGS {
        return Errno::TOOBIG;
    }
    for (slot, e) in envp.iter_mut().zip(env) {
        *slot = e.as_ptr() as *const u8;
    }
    exec(path, args, Env(envp.as_ptr()))
}

/// Most arguments [`exec`] passes.
pub const MAX_EXEC_ARGS: usize = 8;

/// Replace the process image with `path`, arguments `args` (argv[0]
/// included) and environment `env`. Returns only on failure, with the errno
/// (E2BIG for more than [`MAX_EXEC_ARGS`] arguments).
pub fn exec(path: &CStr, args: &[&CStr], env: Env) -> Errno {
    let mut argv = [core::ptr::null::<u8>(); MAX_EXEC_ARGS + 1];
    if args.len() > MAX_EXEC_ARGS {
        return Errno::TOOBIG;
    }
    for (slot, a) in argv.iter_mut().zip(args) {
        *slot = a.as_ptr() as *const u8;
    }
    let empty = [core::ptr::null::<u8>()];
    let envp = if env.0.is_null() { empty.as_ptr() } else { env.0 };
    // SAFETY: `argv` is NULL-terminated (one slot more than arguments) and
    // points to C strings borrowed for the call; `envp` is a NULL-terminated
    // array by `Env`'s contract (or the empty one above).
    let ret = unsafe { imp::execve(path, argv.as_ptr(), envp) };
    Errno::from_raw_os_error(-ret as i32)
}
