//! The target runtime: `no_std`, no heap, raw system calls through rustix.
//!
//! `run` (here) picks the mode by how parmod was started:
//! * a plain command (`args`), `parmod wait` (`waits`), /init (`init`) or
//!   `modprobe` (`modprobe`); all but `parmod wait` go through
//! * `engine`: one run of a plan: prepare (map, validate, state) and execute
//!   (workers, supervision, device waits, report), built on
//! * `sched`: module state, the ready queue, the worker loop;
//! * `thread` and `arch`: raw clone tasks (the only assembly);
//! * `kernel`: the seam where a module is loaded (or its load simulated);
//! * `report`: failure lines, the summary, the trace;
//! * `mapping`: every mmap (plan, state, stacks) and the unsafe views of them;
//! * `out`: messages without `core::fmt`.

pub mod arch;
pub mod args;
pub mod engine;
pub mod init;
pub mod kernel;
pub mod mapping;
pub mod modprobe;
pub mod out;
pub mod report;
pub mod sched;
pub mod thread;
pub mod waits;

use rustix::fs::{Mode, OFlags};

use args::ArgError;
use init::CmdlineBuf;
use mapping::Args;
use out::{emit, Out, Show};
use sched::now_ns;

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
        ArgError::TooMany(f) => emit!(o, "parmod: too many names for ", f, " (at most ", args::MAX_SIM_NAMES, ")\n"),
        ArgError::NoPlan => emit!(o, "parmod: no plan given\n"),
    }
    emit!(o, "Try 'parmod --help'.\n");
    EXIT_USAGE
}

fn basename(p: &[u8]) -> &[u8] {
    p.rsplit(|&c| c == b'/').next().unwrap_or(p)
}

/// The program: `parmod [options] PLAN`, /init mode, or the modprobe
/// personality, by how it was started. Returns the exit status (never in
/// /init mode).
pub fn run(argv: Args, envp: *const *const u8) -> i32 {
    let t0 = now_ns();
    let arg0 = argv.get(0).map_or(&b""[..], |a| a.to_bytes());
    if basename(arg0) == b"modprobe" {
        ensure_std_fds();
        return modprobe::main(argv, t0);
    }
    if argv.get(1).is_some_and(|a| a.to_bytes() == b"wait") {
        ensure_std_fds();
        return waits::wait_command(&argv);
    }
    let init_mode = rustix::process::getpid().is_init()
        || (1..8).any(|i| argv.get(i).is_some_and(|a| a.to_bytes() == b"--init"));
    if init_mode {
        init::setup();
    }
    ensure_std_fds();
    let opts = match args::parse(&argv, 1) {
        Ok(o) => o,
        Err(e) => {
            if init_mode {
                let _ = usage_error(e);
                init::give_up(None, envp);
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
        init::main(opts, t0, envp);
    }
    let Some(plan_path) = opts.plan else { return usage_error(ArgError::NoPlan) };
    let setup = engine::Setup {
        plan_path,
        simulate: opts.simulate,
        force: opts.force,
        module_dir: opts.module_dir,
        fail: &opts.fail,
        hang: &opts.hang,
        module_timeout_ms: opts.module_timeout_ms,
        cmdline: CmdlineBuf::empty(),
    };
    let Ok(ctx) = engine::prepare(setup) else { return EXIT_USAGE };
    let run = engine::Run {
        wanted: &[],
        jobs: opts.jobs,
        deadline_ms: opts.deadline_ms,
        quiet: opts.quiet,
        summary: true,
        trace: opts.trace,
    };
    engine::execute(ctx, t0, run)
}

