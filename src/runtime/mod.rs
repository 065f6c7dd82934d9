//! The target runtime: `no_std`, no heap, raw system calls through rustix.
//!
//! [`run`] (here) picks the personality by how parmod was started: a plain
//! command (`args`), `parmod wait` (`wait`), /init (`init`) or `modprobe`
//! (`modprobe`). Each is a thin entry over
//! * `run`: one run of a plan: open and validate it, build the run context,
//!   execute it (workers, supervision, report);
//! * `sched` (the ready queue and the worker loop) over `state` (the
//!   atomics of a run), `sync` (futex lock, set-once cell) and `clock`;
//! * `supervisor`: the main task during a run: device waits, stuck loads,
//!   the deadline (its device-wait check also serves `parmod wait`);
//! * `kernel`: the seam: everything a run asks of the kernel (real,
//!   simulated, and a scripted fake for the tests);
//! * `thread` and `arch`: raw clone tasks (the only assembly);
//! * `report`: failure lines, the summary, the trace;
//! * `mapping`: every mmap (plan, state, stacks), the process arguments and
//!   the standard descriptors, with the unsafe views of them;
//! * `out`: messages without `core::fmt`.

pub mod arch;
pub mod args;
pub mod clock;
pub mod coldplug;
pub mod init;
pub mod kernel;
pub mod lookup;
pub mod mapping;
pub mod modprobe;
pub mod out;
pub mod report;
pub mod root;
pub mod run;
pub mod sched;
pub mod state;
pub mod supervisor;
pub mod sync;
pub mod thread;
pub mod unpack;
pub mod wait;

#[cfg(all(test, feature = "host"))]
mod tests;

use core::ffi::CStr;

use rustix::fs::{Mode, OFlags};

use crate::cmdline::CmdlineBuf;
use arch::Env;
use args::{ArgError, Options};
use kernel::real::REAL;
use kernel::sim::Sim;
use kernel::Kernel;
use mapping::Args;
use out::{emit, Out, Show};
use run::Reported;
use sched::Sched;
use sync::SetOnce;

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
    match e {
        ArgError::Missing(f) => emit!(o, "parmod: ", f, " needs a value\n"),
        ArgError::Number(f, v) => emit!(o, "parmod: ", f, " takes a whole number, not '", Show(v), "'\n"),
        ArgError::Unknown(a) => emit!(o, "parmod: unknown argument '", Show(a), "'\n"),
        ArgError::TooMany(f) => emit!(o, "parmod: too many names for ", f, " (at most ", kernel::sim::MAX_SIM_NAMES, ")\n"),
        ArgError::NoPlan => emit!(o, "parmod: no plan given\n"),
    }
    emit!(o, "Try 'parmod --help'.\n");
    EXIT_USAGE
}

fn basename(p: &[u8]) -> &[u8] {
    p.rsplit(|&c| c == b'/').next().unwrap_or(p)
}

/// The simulated kernel of `parmod --simulate`.
static SIM: SetOnce<Sim> = SetOnce::new();

/// Open the plan and build the run context for `opts` (simulated or real
/// kernel), with the kernel command line `cmdline` (/init mode; else empty).
/// Prints what went wrong and returns Err: nothing has been loaded then.
pub fn prepare_run(opts: &Options, plan_path: &CStr, keep: run::Keep, timeout_ms: Option<u32>, cmdline: CmdlineBuf) -> Result<&'static Sched, Reported> {
    let kernel: &'static dyn Kernel = if opts.simulate {
        let sim = Sim { real: &REAL, fail: opts.fail.clone(), hang: opts.hang.clone() };
        SIM.set(sim).map_err(|_| Reported)?
    } else {
        &REAL
    };
    let plan = run::open_plan(plan_path, keep)?;
    let path = plan_path.to_bytes();
    run::check_names(&plan, &opts.fail, "--fail", path)?;
    run::check_names(&plan, &opts.hang, "--hang", path)?;
    let setup = run::Setup { plan_path: path, force: opts.force, module_dir: opts.module_dir, module_timeout_ms: timeout_ms, cmdline };
    let s = run::install(run::prepare(plan, kernel, setup)?)?;
    // The runs that last (a command, /init) hold long serial parts back
    // while the kernel's requests load; the modprobe personality (a
    // mapped plan) marks them instead.
    if keep == run::Keep::Copy {
        s.kernel.watch_requests(plan_path);
    }
    Ok(s)
}

/// Whether (and with which settle time) a run is a coldplug: asked for, or
/// a plan compiled with `--all`; unless `off` (parmod.coldplug=0). A
/// coldplug needs the plan's aliases.
pub fn coldplug_of(s: &Sched, opts: &Options, plan_path: &[u8]) -> Result<Option<u32>, Reported> {
    if !opts.coldplug && !s.plan.is_all_modules() {
        return Ok(None);
    }
    if s.plan.alias_count() == 0 {
        emit!(Out::stderr(), "parmod: plan ", Show(plan_path), " has no aliases to match devices with; compile one with parmod-plan compile --all\n");
        return Err(Reported);
    }
    Ok(Some(opts.settle_ms.unwrap_or(coldplug::DEFAULT_SETTLE_MS)))
}

/// The program: `parmod [options] PLAN`, /init mode, or the modprobe
/// personality, by how it was started. Returns the exit status (never in
/// /init mode).
pub fn run(argv: Args, env: Env) -> i32 {
    let t0 = REAL.now();
    let arg0 = argv.get(0).map_or(&b""[..], |a| a.to_bytes());
    if basename(arg0) == b"modprobe" {
        ensure_std_fds();
        return modprobe::main(argv, t0);
    }
    if argv.get(1).is_some_and(|a| a.to_bytes() == b"wait") {
        ensure_std_fds();
        return wait::main(&REAL, &argv);
    }
    let init_mode = rustix::process::getpid().is_init()
        || (1..8).any(|i| argv.get(i).is_some_and(|a| a.to_bytes() == b"--init"));
    if init_mode {
        init::setup();
    }
    ensure_std_fds();
    let coldplug = argv.get(1).is_some_and(|a| a.to_bytes() == b"coldplug");
    let opts = match args::parse(&argv, 1 + coldplug as usize, coldplug) {
        Ok(o) => o,
        Err(e) => {
            if init_mode {
                let _ = usage_error(e);
                init::give_up(None, env);
            }
            return usage_error(e);
        }
    };
    if opts.help {
        Out::stdout().bytes(args::USAGE.as_bytes());
        return 0;
    }
    if !opts.simulate && (!opts.fail.is_empty() || !opts.hang.is_empty()) {
        emit!(Out::stderr(), "parmod: --fail and --hang only work with --simulate\n");
        return EXIT_USAGE;
    }
    if init_mode {
        init::main(opts, t0, env);
    }
    let plan_path = match opts.plan {
        Some(p) => p,
        None if coldplug => c"/etc/parmod.plan",
        None => return usage_error(ArgError::NoPlan),
    };
    // Coldplug reads the kernel command line (blacklists, modules_load=).
    let cmdline = if coldplug { init::read_cmdline(&REAL) } else { CmdlineBuf::empty() };
    let Ok(s) = prepare_run(&opts, plan_path, run::Keep::Copy, opts.module_timeout_ms, cmdline) else { return EXIT_USAGE };
    let Ok(cold) = coldplug_of(s, &opts, plan_path.to_bytes()) else { return EXIT_USAGE };
    let run = run::Run {
        wanted: &[],
        blacklist: cold.is_none(),
        jobs: opts.jobs,
        deadline_ms: opts.deadline_ms,
        quiet: opts.quiet,
        summary: true,
        coldplug: cold,
        hook: None,
        trace: opts.trace,
        unpack: !opts.no_unpack,
    };
    run::execute(s, t0, run)
}
