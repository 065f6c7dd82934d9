//! Worker tasks of the real kernel. Each worker is a raw `clone` task
//! sharing our address space (CLONE_VM) but *not* our thread group: a worker
//! stuck inside `finit_module` must not stop parmod from exiting (a thread
//! group is only reaped once all its threads are gone), and in /init mode the
//! stuck task simply stays behind when PID 1 execs the next stage. For the
//! same reason workers get copies of the descriptor table and cwd rather
//! than sharing them, and report their exit with SIGCHLD, so whichever init
//! inherits them reaps them like any child. Workers run with every signal
//! blocked, die with the main task (PR_SET_PDEATHSIG), and make raw system
//! calls only.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use rustix::io::Errno;

use super::arch;
use super::kernel::Work;
use super::sync::SetOnce;

/// Stack of a worker: it formats nothing; its largest frames are the load's
/// path (1 KiB) and parameter (2 KiB) buffers.
const STACK_SIZE: usize = 64 * 1024;
/// Stack of the unpacker (`state::UNPACKER`): the xz decoder's state is
/// about 32 KiB of it.
const UNPACKER_STACK_SIZE: usize = 256 * 1024;

/// What every worker runs (one run per process: set by the first spawn).
static WORK: SetOnce<&'static dyn Work> = SetOnce::new();
/// Whether workers drop their timer slack (simulated loads are sleeps).
static NO_SLACK: AtomicBool = AtomicBool::new(false);

/// Start worker `id` (or the unpacker) running `work.work(id)`.
pub fn spawn_worker(work: &'static dyn Work, id: usize, tid: &'static AtomicU32, no_slack: bool) -> Result<(), Errno> {
    let w = match WORK.set(work) {
        Ok(w) => w,
        Err(_) => WORK.get().ok_or(Errno::INVAL)?,
    };
    if !core::ptr::addr_eq(*w as *const dyn Work, work as *const dyn Work) {
        // A second run in the same process: not something parmod does.
        return Err(Errno::INVAL);
    }
    NO_SLACK.store(no_slack, Relaxed);
    let stack = if id == super::state::UNPACKER { UNPACKER_STACK_SIZE } else { STACK_SIZE };
    arch::spawn_task(worker_main, id, tid, stack)
}

extern "C" fn worker_main(id: usize) -> ! {
    // Die with the main task: after it has reported and exited, a stuck
    // worker that returns from the kernel must not go on loading.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if NO_SLACK.load(Relaxed) {
        // Do not let timer slack (50 µs by default) stretch simulated loads.
        let _ = rustix::thread::set_current_timer_slack(core::num::NonZeroU64::new(1));
    }
    if let Some(w) = WORK.get() {
        w.work(id);
    }
    arch::exit_task(0)
}
