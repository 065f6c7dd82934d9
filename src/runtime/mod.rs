//! The target runtime: `no_std`, no heap, raw system calls through rustix.
//!
//! * `args`: the command line.
//! * `mapping`: every mmap (plan, state, stacks) and the unsafe views of them.
//! * `sched`: module state, the ready queue, the worker loop.
//! * `thread` and `arch`: raw clone tasks (the only assembly).
//! * `kernel`: the seam where a module is loaded (or its load simulated).
//! * `report`: failure lines, the summary, the trace.

pub mod arch;
pub mod args;
pub mod kernel;
pub mod mapping;
pub mod out;
pub mod report;
pub mod sched;
pub mod thread;

use core::fmt::Write;
use core::sync::atomic::Ordering::{Acquire, Relaxed};

use parmod::plan::{same_name, Compression, Plan};
use rustix::fs::{Mode, OFlags};

use args::ArgError;
use mapping::Args;
use out::{errno_text, Out, Show};
use sched::{now_ns, Ctx, State, CTX, MAX_JOBS, SIM_FAIL, SIM_HANG};

/// Exit status for a usage error or a plan that cannot be used.
pub const EXIT_USAGE: i32 = 2;

/// Make sure fds 0-2 are open, so a file we open never lands on one of them
/// (and our messages into a plan or trace).
fn ensure_std_fds() {
    for fd in 0..3 {
        if !mapping::fd_is_open(fd) {
            if let Ok(f) = rustix::fs::open(c"/dev/null", OFlags::RDWR, Mode::empty()) {
                // Lowest free descriptor: it is `fd`; keep it open for good.
                core::mem::forget(f);
            }
        }
    }
}

fn usage_error(e: ArgError) -> i32 {
    let mut o = Out::stderr();
    let _ = match e {
        ArgError::Missing(f) => writeln!(o, "parmod: {f} needs a value"),
        ArgError::Number(f, v) => writeln!(o, "parmod: {f} takes a whole number, not '{}'", Show(v)),
        ArgError::Unknown(a) => writeln!(o, "parmod: unknown argument '{}'", Show(a)),
        ArgError::TooMany(f) => writeln!(o, "parmod: too many names for {f} (at most {})", args::MAX_SIM_NAMES),
        ArgError::NoPlan => writeln!(o, "parmod: no plan given"),
    };
    let _ = writeln!(o, "Try 'parmod --help'.");
    EXIT_USAGE
}

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

fn cpus() -> u32 {
    rustix::thread::sched_getaffinity(None).map_or(1, |s| s.count().max(1))
}

/// `parmod [options] PLAN`: returns the exit status.
pub fn run(argv: Args) -> i32 {
    ensure_std_fds();
    let t0 = now_ns();
    let opts = match args::parse(&argv, 1) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    if opts.help {
        Out::stdout().bytes(args::USAGE.as_bytes());
        return 0;
    }
    if !opts.simulate && !(opts.fail.is_empty() && opts.hang.is_empty()) {
        let _ = writeln!(Out::stderr(), "parmod: --fail and --hang only work with --simulate");
        return EXIT_USAGE;
    }
    let Some(plan_path) = opts.plan else { return usage_error(ArgError::NoPlan) };
    let shown = Show(plan_path.to_bytes());

    // The plan: mapped, then validated in full before anything happens.
    let fd = match rustix::fs::open(plan_path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = writeln!(
                Out::stderr(),
                "parmod: cannot open plan {shown}: {} (errno {}); build one with parmod-plan compile",
                errno_text(e.raw_os_error()),
                e.raw_os_error()
            );
            return EXIT_USAGE;
        }
    };
    let size = match rustix::fs::fstat(&fd) {
        Ok(s) => s.st_size as usize,
        Err(e) => {
            let _ = writeln!(Out::stderr(), "parmod: cannot stat plan {shown}: errno {}", e.raw_os_error());
            return EXIT_USAGE;
        }
    };
    let bytes = match mapping::map_file(rustix::fd::AsFd::as_fd(&fd), size) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(Out::stderr(), "parmod: cannot map plan {shown}: errno {}", e.raw_os_error());
            return EXIT_USAGE;
        }
    };
    drop(fd);
    let plan = match Plan::parse(bytes) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(Out::stderr(), "parmod: plan {shown}: {e}; nothing loaded");
            return EXIT_USAGE;
        }
    };

    let uts = rustix::system::uname();
    let release = uts.release().to_bytes();
    if !opts.simulate && !opts.force && release != plan.kernel_release() {
        let _ = writeln!(
            Out::stderr(),
            "parmod: plan {shown} was built for kernel {} but this is {}: rebuild the plan (or pass --force); nothing loaded",
            Show(plan.kernel_release()),
            Show(release)
        );
        return EXIT_USAGE;
    }

    let n = plan.module_count();
    let jobs = opts.jobs.filter(|&j| j > 0).unwrap_or(if plan.jobs() > 0 { plan.jobs() } else { cpus() });
    let jobs = jobs.clamp(1, MAX_JOBS);

    let st = match State::new(n as usize) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(Out::stderr(), "parmod: cannot map state for {n} modules: errno {}", e.raw_os_error());
            return EXIT_USAGE;
        }
    };
    for (list, flag, opt) in [(&opts.fail, SIM_FAIL, "--fail"), (&opts.hang, SIM_HANG, "--hang")] {
        for &want in list.iter() {
            match plan.modules().find(|m| same_name(m.name(), want)) {
                Some(m) => {
                    st.sim[m.index() as usize].fetch_or(flag, Relaxed);
                }
                None => {
                    let _ = writeln!(Out::stderr(), "parmod: {opt} {}: no such module in plan {shown}", Show(want));
                    return EXIT_USAGE;
                }
            }
        }
    }

    let mut module_dir = heapless::Vec::<u8, 512>::new();
    let dir_ok = match opts.module_dir {
        Some(d) => module_dir.extend_from_slice(d.strip_suffix(b"/").unwrap_or(d)).is_ok(),
        None => module_dir.extend_from_slice(b"/lib/modules/").is_ok()
            && module_dir.extend_from_slice(plan.kernel_release()).is_ok(),
    };
    if !dir_ok {
        let _ = writeln!(Out::stderr(), "parmod: module directory name too long");
        return EXIT_USAGE;
    }
    let compressed = plan.modules().any(|m| m.compression() != Compression::None);
    let ctx = Ctx {
        plan,
        st,
        simulate: opts.simulate,
        module_dir,
        kernel_decompress: if compressed && !opts.simulate { kernel_decompression() } else { None },
        module_timeout_ms: opts.module_timeout_ms.unwrap_or(plan.module_timeout_ms()),
        timeout_forced: opts.module_timeout_ms.is_some(),
    };
    if !CTX.set(ctx) {
        return EXIT_USAGE;
    }
    let Some(ctx) = CTX.get() else { return EXIT_USAGE };
    let deadline_ms = opts.deadline_ms.unwrap_or(plan.deadline_ms());
    let deadline = (deadline_ms > 0).then(|| t0 + deadline_ms as u64 * 1_000_000);

    ctx.seed();
    let mut started = 0;
    for _ in 0..jobs.min(n.max(1)) {
        let Some(id) = ctx.new_slot() else { break };
        match thread::spawn(id) {
            Ok(()) => started += 1,
            Err(e) => {
                let _ = writeln!(Out::stderr(), "parmod: cannot start worker {id}: errno {}", e.raw_os_error());
                break;
            }
        }
    }
    if started == 0 && n > 0 {
        let _ = writeln!(Out::stderr(), "parmod: no worker could start; nothing loaded");
        return EXIT_USAGE;
    }

    // Supervise: wake when everything is done, when a load may have
    // outlived its timeout, or at the deadline.
    let mut at_deadline = false;
    loop {
        ctx.begin_check();
        let seen = ctx.st.event().load(Acquire);
        if ctx.st.done() >= n {
            break;
        }
        let now = now_ns();
        if deadline.is_some_and(|d| now >= d) {
            at_deadline = true;
            break;
        }
        let mut stuck = heapless::Vec::<(usize, u32), { sched::MAX_WORKERS }>::new();
        let next = ctx.check_stuck(now, &mut stuck);
        for &(worker, m) in stuck.iter() {
            let name = Show(ctx.plan.module(m).map_or(b"?", |x| x.name()));
            let mut o = Out::stderr();
            let _ = write!(o, "parmod: stuck: {name}: still loading after {} ms (worker {worker}); ", ctx.timeout_ms(m));
            match ctx.new_slot().map(|id| (id, thread::spawn(id))) {
                Some((id, Ok(()))) => {
                    let _ = writeln!(o, "worker {id} takes its place");
                }
                _ => {
                    let _ = writeln!(o, "no replacement worker could start");
                }
            }
        }
        let until = match (next, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ctx.wait_event(seen, until);
    }

    let now = now_ns();
    if at_deadline {
        let _ = writeln!(
            Out::stderr(),
            "parmod: deadline of {deadline_ms} ms reached with {} of {n} modules unfinished",
            n - ctx.st.done().min(n)
        );
        ctx.retire_all();
    } else {
        for id in 0..ctx.st.spawned() {
            // Workers exit right after the last module; stuck ones that came
            // back have exited too.
            ctx.join(id, 1000);
        }
    }
    let status = report::report(ctx, now, (now - t0) / 1_000_000, opts.quiet);
    if let Some(path) = opts.trace {
        if let Err(e) = report::write_trace(ctx, path, t0, jobs) {
            let _ = writeln!(
                Out::stderr(),
                "parmod: cannot write trace {}: {} (errno {})",
                Show(path.to_bytes()),
                errno_text(e.raw_os_error()),
                e.raw_os_error()
            );
            return status.max(1);
        }
    }
    status
}
