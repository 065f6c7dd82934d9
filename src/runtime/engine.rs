//! One run of a plan: `prepare` maps and validates the plan, checks the
//! kernel and builds the state; `execute` starts the workers, supervises them
//! (stuck loads, device waits, the deadline) and reports.

use core::sync::atomic::Ordering::Relaxed;

use crate::plan::{same_name, Compression, Plan};
use rustix::fs::{Mode, OFlags};

use super::init::CmdlineBuf;
use super::out::{emit, errno_text, Out, Show};
use super::sched::{self, at, now_ns, Ctx, State, CTX, MAX_JOBS, SIM_FAIL, SIM_HANG, WAIT_ACTIVE, WAIT_IDLE, WAIT_SATISFIED, WAIT_TIMED_OUT};
use super::{mapping, report, thread, waits, EXIT_USAGE};

/// What `/sys/module/compression` says the kernel can decompress.
fn kernel_decompression() -> Option<Compression> {
    let fd = rustix::fs::open(c"/sys/module/compression", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0u8; 32];
    let n = rustix::io::read(&fd, &mut buf).ok()?;
    let s = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
    match s {
        b"xz" => Some(Compression::Xz),
        b"zstd" => Some(Compression::Zstd),
        b"gzip" => Some(Compression::Gzip),
        _ => None,
    }
}

/// Default number of workers: twice the CPUs this process may run on. Module
/// inits often sleep (hardware probes, firmware, msleep): on the QEMU boot
/// benchmark (docs/BENCHMARKS.md, 2 vCPUs) 4 workers beat 2 on the sleep-bound
/// fixture graph (1.03 against 1.26 times the critical path) and on the
/// CPU-bound Debian set (0.62 against 0.65 of modprobe -a); 8 gained nothing.
fn default_jobs() -> u32 {
    2 * rustix::thread::sched_getaffinity(None).map_or(1, |s| s.count().max(1))
}

/// What a run needs besides the plan.
pub struct Setup<'a> {
    pub plan_path: &'a core::ffi::CStr,
    pub simulate: bool,
    pub force: bool,
    pub module_dir: Option<&'a [u8]>,
    pub fail: &'a [&'static [u8]],
    pub hang: &'a [&'static [u8]],
    pub module_timeout_ms: Option<u32>,
    pub cmdline: CmdlineBuf,
}

/// Map and validate the plan, check the kernel, build the state. Prints
/// what went wrong and returns Err (nothing has been loaded then).
pub fn prepare(s: Setup<'_>) -> Result<&'static Ctx, ()> {
    let shown = Show(s.plan_path.to_bytes());
    let fd = match rustix::fs::open(s.plan_path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            emit!(Out::stderr(), "parmod: cannot open plan ", shown, ": ", errno_text(e.raw_os_error()), " (errno ", e.raw_os_error(), "); build one with parmod-plan compile\n");
            return Err(());
        }
    };
    let bytes = rustix::fs::fstat(&fd).and_then(|st| mapping::map_file(rustix::fd::AsFd::as_fd(&fd), st.st_size as usize));
    drop(fd);
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            emit!(Out::stderr(), "parmod: cannot map plan ", shown, ": errno ", e.raw_os_error(), "\n");
            return Err(());
        }
    };
    let plan = match Plan::parse(bytes) {
        Ok(p) => p,
        Err(e) => {
            emit!(Out::stderr(), "parmod: plan ", shown, ": ", e, "; nothing loaded\n");
            return Err(());
        }
    };
    let uts = rustix::system::uname();
    let release = uts.release().to_bytes();
    if !s.simulate && !s.force && release != plan.kernel_release() {
        emit!(Out::stderr(), "parmod: plan ", shown, " was built for kernel ", Show(plan.kernel_release()), " but this is ", Show(release), ": rebuild the plan (or pass --force); nothing loaded\n");
        return Err(());
    }
    let n = plan.module_count();
    let st = match State::new(n as usize, plan.wait_count() as usize) {
        Ok(st) => st,
        Err(e) => {
            emit!(Out::stderr(), "parmod: cannot map state for ", n, " modules: errno ", e.raw_os_error(), "\n");
            return Err(());
        }
    };
    for (list, flag, opt) in [(s.fail, SIM_FAIL, "--fail"), (s.hang, SIM_HANG, "--hang")] {
        for &want in list {
            match plan.modules().find(|m| same_name(m.name(), want)) {
                Some(m) => {
                    at(st.sim, m.index() as usize).fetch_or(flag, Relaxed);
                }
                None => {
                    emit!(Out::stderr(), "parmod: ", opt, " ", Show(want), ": no such module in plan ", shown, "\n");
                    return Err(());
                }
            }
        }
    }
    let mut module_dir = heapless::Vec::<u8, 512>::new();
    let dir_ok = match s.module_dir {
        Some(d) => module_dir.extend_from_slice(d.strip_suffix(b"/").unwrap_or(d)).is_ok(),
        None => module_dir.extend_from_slice(b"/lib/modules/").is_ok()
            && module_dir.extend_from_slice(plan.kernel_release()).is_ok(),
    };
    if !dir_ok {
        emit!(Out::stderr(), "parmod: module directory name too long\n");
        return Err(());
    }
    let compressed = plan.modules().any(|m| m.compression() != Compression::None);
    let ctx = Ctx {
        plan,
        st,
        simulate: s.simulate,
        module_dir,
        kernel_decompress: if compressed && !s.simulate { kernel_decompression() } else { None },
        module_timeout_ms: s.module_timeout_ms.unwrap_or(plan.module_timeout_ms()),
        timeout_forced: s.module_timeout_ms.is_some(),
        cmdline: s.cmdline,
        wake_fd: rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK).ok(),
    };
    if ctx.wake_fd.is_none() {
        emit!(Out::stderr(), "parmod: cannot create an eventfd; nothing loaded\n");
        return Err(());
    }
    if !CTX.set(ctx) {
        return Err(());
    }
    CTX.get().ok_or(())
}

/// How to run a prepared plan.
pub struct Run<'a> {
    pub wanted: &'a [u32],
    pub jobs: Option<u32>,
    pub deadline_ms: Option<u32>,
    pub quiet: bool,
    /// Print the summary even when everything loaded.
    pub summary: bool,
    pub trace: Option<&'a core::ffi::CStr>,
}

/// Load the plan on the worker pool, supervise, report. Returns the exit status.
pub fn execute(ctx: &'static Ctx, t0: u64, r: Run<'_>) -> i32 {
    let plan = ctx.plan;
    let n = plan.module_count();
    let jobs = r.jobs.filter(|&j| j > 0).unwrap_or(if plan.jobs() > 0 { plan.jobs() } else { default_jobs() });
    let jobs = jobs.clamp(1, MAX_JOBS);
    let deadline_ms = r.deadline_ms.unwrap_or(plan.deadline_ms());
    let deadline = (deadline_ms > 0).then(|| t0 + deadline_ms as u64 * 1_000_000);

    let taking_part = ctx.seed(r.wanted);
    let mut started = 0;
    for _ in 0..jobs.min(taking_part) {
        let Some(id) = ctx.new_slot() else { break };
        match thread::spawn(id) {
            Ok(()) => started += 1,
            Err(e) => {
                emit!(Out::stderr(), "parmod: cannot start worker ", id, ": errno ", e.raw_os_error(), "\n");
                break;
            }
        }
    }
    if started == 0 && ctx.st.done() < n {
        emit!(Out::stderr(), "parmod: no worker could start; nothing loaded\n");
        return EXIT_USAGE;
    }

    // Supervise: wake when a worker says so (everything done, a load to
    // time, a module whose devices must appear), when a watched directory or
    // the uevent socket has news, when a load may have outlived its
    // timeout, when a wait times out, or at the deadline.
    let st = &ctx.st;
    let any_sys = plan.waits().any(|w| waits::is_sys(w.path()));
    let any_other = plan.waits().any(|w| !waits::is_sys(w.path()));
    let mut watcher = waits::Watcher::new(any_other, any_sys);
    let mut finals_started = false;
    let mut at_deadline = false;
    loop {
        ctx.clear_wakeups();
        ctx.begin_check();
        let now = now_ns();
        ctx.take_awaiting(|m| {
            for w in plan.module(m).map_or(0..0, |x| x.dev_waits()) {
                at(st.wstatus, w as usize).store(WAIT_ACTIVE, Relaxed);
                at(st.wstart, w as usize).store(now, Relaxed);
            }
        });
        if !finals_started && st.done() >= n {
            // Waits before success start once every module is done.
            finals_started = true;
            for w in plan.waits().filter(|w| w.module().is_none()) {
                at(st.wstatus, w.index() as usize).store(WAIT_ACTIVE, Relaxed);
                at(st.wstart, w.index() as usize).store(now, Relaxed);
            }
        }
        watcher.drain(now);
        let mut next: Option<u64> = None;
        let mut sys_pending = false;
        let mut finals_pending = false;
        for w in plan.waits() {
            let i = w.index() as usize;
            if at(st.wstatus, i).load(Relaxed) != WAIT_ACTIVE {
                continue;
            }
            let path = w.path();
            let mut there = waits::exists(path);
            if !there && !waits::is_sys(path) {
                // Watch, then look again: nothing created in between is missed.
                there = watcher.arm(path);
            }
            let limit = if w.timeout_ms() > 0 {
                Some(at(st.wstart, i).load(Relaxed) + w.timeout_ms() as u64 * 1_000_000)
            } else {
                deadline
            };
            if there {
                at(st.wstatus, i).store(WAIT_SATISFIED, Relaxed);
                at(st.wend, i).store(now, Relaxed);
            } else if w.timeout_ms() > 0 && limit.is_some_and(|l| now >= l) {
                // (A wait without its own timeout stays active: the deadline
                // reports it as unfinished and its dependents as blocked.)
                at(st.wstatus, i).store(WAIT_TIMED_OUT, Relaxed);
                at(st.wend, i).store(now, Relaxed);
            } else {
                sys_pending |= waits::is_sys(path);
                finals_pending |= w.module().is_none();
                if let Some(l) = limit {
                    next = Some(next.map_or(l, |x: u64| x.min(l)));
                }
            }
        }
        // Modules whose waits are all decided: their dependents go on (or
        // are skipped when a wait timed out).
        let mut released = false;
        for m in plan.modules().filter(|m| at(st.await_flag, m.index() as usize).load(Relaxed) != 0) {
            let states = m.dev_waits().map(|w| at(st.wstatus, w as usize).load(Relaxed));
            if states.clone().any(|s| s == WAIT_ACTIVE || s == WAIT_IDLE) {
                continue;
            }
            let ok = states.clone().all(|s| s == WAIT_SATISFIED);
            ctx.release_after_waits(m.index(), ok);
            released = true;
        }
        if released {
            continue;
        }
        if st.done() >= n && finals_started && !finals_pending {
            break;
        }
        let now = now_ns();
        if deadline.is_some_and(|d| now >= d) {
            at_deadline = true;
            break;
        }
        let mut stuck = heapless::Vec::<(usize, u32), { sched::MAX_WORKERS }>::new();
        if let Some(t) = ctx.check_stuck(now, &mut stuck) {
            next = Some(next.map_or(t, |x: u64| x.min(t)));
        }
        for &(worker, m) in stuck.iter() {
            let name = Show(plan.module(m).map_or(b"?", |x| x.name()));
            let mut o = Out::stderr();
            emit!(o, "parmod: stuck: ", name, ": still loading after ", ctx.timeout_ms(m), " ms (worker ", worker, "); ");
            match ctx.new_slot().map(|id| (id, thread::spawn(id))) {
                Some((id, Ok(()))) => {
                    emit!(o, "worker ", id, " takes its place\n");
                }
                _ => {
                    emit!(o, "no replacement worker could start\n");
                }
            }
        }
        if sys_pending {
            // /sys raises no events for new attributes: look again after a
            // uevent, and on a bounded back-off in between.
            if watcher.recheck_at() == u64::MAX {
                watcher.restart_backoff(now);
            } else if now >= watcher.recheck_at() {
                watcher.backoff(now);
            }
            let r = watcher.recheck_at();
            next = Some(next.map_or(r, |x: u64| x.min(r)));
        } else {
            watcher.stop_backoff();
        }
        let until = match (next, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (a, b) = watcher.fds();
        ctx.wait_event(until, [a, b]);
    }

    let now = now_ns();
    if at_deadline {
        emit!(Out::stderr(), "parmod: deadline of ", deadline_ms, " ms reached with ", n - ctx.st.done().min(n), " of ", n, " modules unfinished\n");
        ctx.retire_all();
    } else {
        for id in 0..ctx.st.spawned() {
            // Workers exit right after the last module; stuck ones that came
            // back have exited too.
            ctx.join(id, 1000);
        }
    }
    let status = report::report(ctx, now, (now - t0) / 1_000_000, r.quiet, r.summary);
    if let Some(path) = r.trace {
        if let Err(e) = report::write_trace(ctx, path, t0, jobs) {
            emit!(Out::stderr(), "parmod: cannot write trace ", Show(path.to_bytes()), ": ", errno_text(e.raw_os_error()), " (errno ", e.raw_os_error(), ")\n");
            return status.max(1);
        }
    }
    status
}

