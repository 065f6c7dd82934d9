//! One run of a plan: [`open_plan`] maps and validates it, [`prepare`]
//! checks the kernel and builds the run context ([`Sched`]), [`execute`]
//! starts the workers, supervises them and reports.

use core::ffi::CStr;

use crate::cmdline::CmdlineBuf;
use crate::plan::{same_name, Plan};
use rustix::fs::{Mode, OFlags};

use super::clock::MS;
use super::kernel::Kernel;
use super::out::{emit, Out, Show, Sys};
use super::coldplug::Coldplug;
use super::sched::Sched;
use super::state::{State, MAX_JOBS};
use super::sync::SetOnce;
use super::{mapping, report, supervisor};

/// The error of a step that has printed its message already.
#[derive(Debug)]
pub struct Reported;

/// How a run holds its plan.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// A copy of its own: nothing done to the file later can reach the run
    /// (runs that last: a command, /init).
    Copy,
    /// A mapping of the file (short runs, many at once: the modprobe
    /// personality; truncating the file under one would end it with SIGBUS).
    Map,
}

/// Read (or map) and validate the plan at `path`. Prints what went wrong
/// and returns Err (nothing has been loaded then).
pub fn open_plan(path: &CStr, keep: Keep) -> Result<Plan<'static>, Reported> {
    let shown = Show(path.to_bytes());
    let fd = match rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            let mut o = Out::stderr();
            emit!(o, "parmod: cannot open plan ", shown, ": ", Sys::from(e));
            if e == rustix::io::Errno::NOENT {
                emit!(o, "; build one with parmod-plan compile");
            }
            emit!(o, "\n");
            return Err(Reported);
        }
    };
    let bytes = rustix::fs::fstat(&fd).and_then(|st| {
        let (fd, len) = (rustix::fd::AsFd::as_fd(&fd), st.st_size as usize);
        match keep {
            Keep::Copy => mapping::copy_file(fd, len),
            Keep::Map => mapping::map_file(fd, len),
        }
    });
    drop(fd);
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            emit!(Out::stderr(), "parmod: cannot read plan ", shown, " into memory: ", Sys::from(e), "; nothing loaded\n");
            return Err(Reported);
        }
    };
    match Plan::parse(bytes) {
        Ok(p) => Ok(p),
        Err(e) => {
            emit!(Out::stderr(), "parmod: plan ", shown, ": ", e, "; nothing loaded\n");
            Err(Reported)
        }
    }
}

/// What a run needs besides the plan and the kernel.
pub struct Setup<'a> {
    /// The plan's file name, for messages.
    pub plan_path: &'a [u8],
    /// Load even if the plan was built for another kernel.
    pub force: bool,
    pub module_dir: Option<&'a [u8]>,
    pub module_timeout_ms: Option<u32>,
    pub cmdline: CmdlineBuf,
}

/// Check the kernel and build the run's state. Prints what went wrong and
/// returns Err (nothing has been loaded then).
pub fn prepare(plan: Plan<'static>, kernel: &'static dyn Kernel, s: Setup<'_>) -> Result<Sched, Reported> {
    let shown = Show(s.plan_path);
    let mut buf = [0u8; 65];
    let len = kernel.release(&mut buf);
    let release = &buf[..len];
    if !kernel.simulated() && !s.force && release != plan.kernel_release() {
        emit!(Out::stderr(), "parmod: plan ", shown, " was built for kernel ", Show(plan.kernel_release()), " but this is ", Show(release), ": rebuild the plan (or pass --force); nothing loaded\n");
        return Err(Reported);
    }
    let n = plan.module_count();
    let st = match State::new(n as usize, plan.wait_count() as usize) {
        Ok(st) => st,
        Err(e) => {
            emit!(Out::stderr(), "parmod: cannot map state for ", n, " modules: ", Sys::from(e), "; nothing loaded\n");
            return Err(Reported);
        }
    };
    let mut module_dir = heapless::Vec::<u8, 512>::new();
    let dir_ok = match s.module_dir {
        Some(d) => module_dir.extend_from_slice(d.strip_suffix(b"/").unwrap_or(d)).is_ok(),
        None => module_dir.extend_from_slice(b"/lib/modules/").is_ok()
            && module_dir.extend_from_slice(plan.kernel_release()).is_ok(),
    };
    if !dir_ok {
        emit!(Out::stderr(), "parmod: module directory name too long\n");
        return Err(Reported);
    }
    if let Err(e) = kernel.open() {
        emit!(Out::stderr(), "parmod: cannot create an eventfd: ", Sys::from(e), "; the main task looks at the workers every 10 ms instead\n");
    }
    Ok(Sched {
        plan,
        st,
        kernel,
        module_dir,
        module_timeout_ms: s.module_timeout_ms.unwrap_or(plan.module_timeout_ms()),
        timeout_forced: s.module_timeout_ms.is_some(),
        cmdline: s.cmdline,
    })
}

/// Every name in `names` must be a module of the plan (for --fail/--hang).
pub fn check_names(plan: &Plan<'_>, names: &[&[u8]], opt: &str, plan_path: &[u8]) -> Result<(), Reported> {
    for &want in names {
        if !plan.modules().any(|m| same_name(m.name(), want)) {
            emit!(Out::stderr(), "parmod: ", opt, " ", Show(want), ": no such module in plan ", Show(plan_path), "\n");
            return Err(Reported);
        }
    }
    Ok(())
}

/// The run context of this process (a static: it stays valid while the
/// main task exits or execs and a stuck worker is still inside the kernel).
static RUN: SetOnce<Sched> = SetOnce::new();

/// Keep `s` for the rest of the process.
pub fn install(s: Sched) -> Result<&'static Sched, Reported> {
    RUN.set(s).map_err(|_| Reported)
}

/// How to run a prepared plan.
pub struct Run<'a> {
    /// Only these modules and what they need (empty: the whole plan).
    pub wanted: &'a [u32],
    /// Skip what `modprobe.blacklist=` names, with all that needs it (the
    /// boot; the modprobe personality applies it to aliases only, as kmod).
    pub blacklist: bool,
    pub jobs: Option<u32>,
    pub deadline_ms: Option<u32>,
    pub quiet: bool,
    /// Print the summary even when everything loaded.
    pub summary: bool,
    /// Coldplug (with this settle time, ms): load what the devices need,
    /// not the plan (see `coldplug`).
    pub coldplug: Option<u32>,
    /// Something else that keeps the run open (/init's root device).
    pub hook: Option<&'a mut dyn supervisor::Hook>,
    pub trace: Option<&'a CStr>,
    /// Unpack `.ko.xz` modules ahead of their loads on idle CPUs
    /// (`runtime::unpack`): runs that last (a command, /init), not the
    /// modprobe personality's short ones, not coldplug.
    pub unpack: bool,
}

/// Default number of workers: eight times the CPUs this process may run on
/// (at most [`MAX_JOBS`]). Only as many loads as there are CPUs run at
/// normal priority; the others run lowered and use a CPU only while those
/// are parked: on the kernel's module-wide lock, behind another load's
/// serial phase, or in an init that sleeps (hardware probes, firmware,
/// msleep). See `Sched::set_pool` and docs/BENCHMARKS.md.
pub const JOBS_PER_CPU: u32 = 8;

fn default_jobs(k: &dyn Kernel) -> u32 {
    JOBS_PER_CPU.saturating_mul(k.cpus())
}

/// Load the plan on the worker pool, supervise, report. Returns the exit status.
pub fn execute(s: &'static Sched, t0: u64, r: Run<'_>) -> i32 {
    let (plan, k) = (s.plan, s.kernel);
    let n = plan.module_count();
    let jobs = r.jobs.filter(|&j| j > 0).unwrap_or(if plan.jobs() > 0 { plan.jobs() } else { default_jobs(k) });
    let jobs = jobs.clamp(1, MAX_JOBS);
    s.set_pool(jobs, k.cpus());
    let deadline_ms = r.deadline_ms.unwrap_or(plan.deadline_ms());
    let deadline = (deadline_ms > 0).then(|| t0 + deadline_ms as u64 * MS);

    let partial = !r.wanted.is_empty() || r.coldplug.is_some();
    if r.coldplug.is_some() || r.hook.is_some() {
        s.hold();
    }
    let taking_part = s.seed(partial.then_some(r.wanted), r.blacklist);
    // Coldplug wants its modules once the workers run.
    let asked = if r.coldplug.is_some() { jobs } else { jobs.min(taking_part) };
    let mut started = 0;
    for _ in 0..asked {
        match s.start_worker() {
            Ok(_) => started += 1,
            Err(e) => {
                emit!(Out::stderr(), "parmod: cannot start worker ", started, ": ", Sys::from(e), "\n");
                break;
            }
        }
    }
    // No worker task at all (RLIMIT_NPROC, out of memory): the main task
    // loads, one module at a time. Loads cannot be timed out then.
    let inline = (started == 0 && s.st.done() < n).then(|| s.new_slot()).flatten();
    if asked > 0 && started == 0 {
        if inline.is_none() {
            emit!(Out::stderr(), "parmod: no worker could start; nothing loaded\n");
            return super::EXIT_USAGE;
        }
        emit!(Out::stderr(), "parmod: no worker could start: loading one module at a time (a load that never returns cannot be timed out)\n");
    }

    let unpacking = r.unpack && r.coldplug.is_none() && started > 0 && s.start_unpacker();

    let mut cold = r.coldplug.map(|settle| Coldplug::start(s, settle));
    let mut hooks: heapless::Vec<&mut dyn supervisor::Hook, 2> = heapless::Vec::new();
    if let Some(c) = cold.as_mut() {
        let _ = hooks.push(c);
    }
    if let Some(h) = r.hook {
        let _ = hooks.push(h);
    }
    let at_deadline = supervisor::supervise(s, deadline, inline, &mut hooks);
    drop(hooks);

    let now = k.now();
    if unpacking {
        s.stop_unpacker();
    }
    if at_deadline {
        // What is stuck at the deadline belongs in the booted system's journal.
        k.log_to_kmsg();
        emit!(Out::stderr(), "parmod: deadline of ", deadline_ms, " ms reached with ", n - s.st.done().min(n), " of ", n, " modules unfinished\n");
        s.retire_all();
    } else {
        for id in 0..s.st.spawned() {
            // Workers exit right after the last module; stuck ones that came
            // back have exited too.
            s.join(id, 1000);
        }
    }
    if let Some(c) = &cold {
        if !r.quiet {
            emit!(Out::stderr(), "parmod: coldplug: ", c.devices, " devices, ", c.matched, " with a module in the plan\n");
        }
    }
    let status = report::report(s, now, (now - t0) / MS, r.quiet, r.summary, (started, asked));
    if let Some(path) = r.trace {
        if let Err(e) = report::write_trace(s, path, t0, jobs) {
            emit!(Out::stderr(), "parmod: cannot write trace ", Show(path.to_bytes()), ": ", Sys::from(e), "\n");
            return status.max(1);
        }
    }
    status
}
