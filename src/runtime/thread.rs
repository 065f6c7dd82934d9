//! Worker tasks. Each worker is a raw `clone` task sharing our address
//! space (CLONE_VM) but *not* our thread group: a worker stuck inside
//! `finit_module` must not stop parmod from exiting (a thread group is only
//! reaped once all its threads are gone), and in /init mode the stuck task
//! simply stays behind when PID 1 execs the next stage. For the same reason
//! workers get copies of the descriptor table and cwd rather than sharing
//! them, and report their exit with SIGCHLD, so whichever init inherits them
//! reaps them like any child. Workers run with every signal blocked, die
//! with the main task (PR_SET_PDEATHSIG), and make raw system calls only.

use super::sched::at;
use rustix::io::Errno;

use super::arch;
use super::mapping;
use super::sched::CTX;

const CLONE_VM: usize = 0x0000_0100;
const CLONE_SYSVSEM: usize = 0x0004_0000;
const CLONE_PARENT_SETTID: usize = 0x0010_0000;
const CLONE_CHILD_CLEARTID: usize = 0x0020_0000;
const SIG_SETMASK: u32 = 2;
const SIGCHLD: usize = 17;

/// Stack of a worker: it formats nothing and keeps one 1 KiB path buffer.
const STACK_SIZE: usize = 64 * 1024;

/// Start worker `id` (its slot already reserved).
pub fn spawn(id: usize) -> Result<(), Errno> {
    let ctx = CTX.get().ok_or(Errno::INVAL)?;
    let top = mapping::map_stack(STACK_SIZE)?;
    let tid = at(ctx.st.slot_tid, id).as_ptr();
    let flags = CLONE_VM | CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD;
    // Block every signal across clone so the child starts with all blocked
    // and no handler of ours can run on its stack; restore ours afterwards.
    let all: u64 = !0;
    let mut old: u64 = 0;
    let _ = arch::sigprocmask(SIG_SETMASK, &all, &mut old);
    // SAFETY: `top` is the top of a fresh stack nobody else uses and that is
    // never unmapped; CLONE_VM is set and `worker_main` never returns; `tid`
    // points into the state mapping, which lives as long as the process.
    let ret = unsafe { arch::clone_task(flags, top, tid, worker_main, id) };
    let mut ignored: u64 = 0;
    let _ = arch::sigprocmask(SIG_SETMASK, &old, &mut ignored);
    if ret < 0 {
        return Err(Errno::from_raw_os_error(-ret as i32));
    }
    Ok(())
}

extern "C" fn worker_main(id: usize) -> ! {
    // Die with the main task: after it has reported and exited, a stuck
    // worker that returns from the kernel must not go on loading.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if let Some(ctx) = CTX.get() {
        if ctx.simulate {
            // Simulated loads are sleeps: do not let timer slack (50 µs by
            // default) stretch them.
            let _ = rustix::thread::set_current_timer_slack(core::num::NonZeroU64::new(1));
        }
        ctx.work(id);
    }
    arch::exit_task(0)
}
