//! The modprobe personality: started as `modprobe` (a `/sbin/modprobe`
//! symlink), parmod loads the named modules (or aliases kept in the plan)
//! with what they depend on, so the kernel's request_module() works in an
//! image without kmod.

use super::engine::{self, Run, Setup};
use super::init::CmdlineBuf;
use super::mapping::Args;
use super::out::{emit, Out, Show};
use super::{usage_error, args::ArgError};

/// The modprobe personality: `modprobe [-q] [--] NAME...`, as the kernel
/// runs it for request_module(). Loads each NAME (a module or an alias in
/// the plan) with what it depends on.
pub fn main(argv: Args, t0: u64) -> i32 {
    let mut quiet = false;
    let mut plan_path: &core::ffi::CStr = c"/etc/parmod.plan";
    let mut names = heapless::Vec::<&'static [u8], 16>::new();
    let mut i = 1;
    let mut flags_done = false;
    while let Some(a) = argv.get(i) {
        i += 1;
        let b = a.to_bytes();
        if !flags_done && b.starts_with(b"-") {
            match b {
                b"--" => flags_done = true,
                b"-q" | b"--quiet" => quiet = true,
                // Accepted for compatibility: parmod has no syslog, verbose
                // output or use of the blacklist for explicit names.
                b"-b" | b"--use-blacklist" | b"-s" | b"--syslog" | b"-v" | b"--verbose" | b"-a" | b"--all" => {}
                b"--plan" => match argv.get(i) {
                    Some(p) => {
                        plan_path = p;
                        i += 1;
                    }
                    None => return usage_error(ArgError::Missing("--plan")),
                },
                _ => {
                    emit!(Out::stderr(), "modprobe (parmod): unsupported option '", Show(b), "'\n");
                    return 1;
                }
            }
            continue;
        }
        if names.push(b).is_err() {
            emit!(Out::stderr(), "modprobe (parmod): too many names\n");
            return 1;
        }
    }
    if names.is_empty() {
        emit!(Out::stderr(), "modprobe (parmod): usage: modprobe [-q] [--plan PLAN] [--] NAME...\n");
        return 1;
    }
    let setup = Setup {
        plan_path,
        simulate: false,
        force: false,
        module_dir: None,
        fail: &[],
        hang: &[],
        module_timeout_ms: None,
        cmdline: CmdlineBuf::read(),
    };
    let Ok(ctx) = engine::prepare(setup) else { return 1 };
    let mut wanted = heapless::Vec::<u32, 64>::new();
    for &name in names.iter() {
        let before = wanted.len();
        if let Some(m) = ctx.plan.find_module(name) {
            let _ = wanted.push(m.index());
        } else {
            for a in ctx.plan.aliases() {
                if crate::plan::glob_match(a.pattern, name) && !wanted.contains(&a.module) {
                    let _ = wanted.push(a.module);
                }
            }
        }
        if wanted.len() == before {
            if !quiet {
                emit!(Out::stderr(), "modprobe: FATAL: Module ", Show(name), " not found in plan ", Show(plan_path.to_bytes()), "\n");
            }
            return 1;
        }
    }
    // Silent on success, as kmod's modprobe is.
    let run = Run { wanted: &wanted, jobs: None, deadline_ms: None, quiet, summary: false, trace: None };
    match engine::execute(ctx, t0, run) {
        0 => 0,
        _ => 1,
    }
}

