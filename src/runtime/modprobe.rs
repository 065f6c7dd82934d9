//! The modprobe personality: started as `modprobe` (a `/sbin/modprobe`
//! symlink), parmod loads the named modules (or aliases kept in the plan)
//! with what they depend on, so the kernel's request_module() works in an
//! image without kmod.

use super::args::{Arg, ArgCursor, Options};
use super::lookup::{resolve, Lookup};
use super::init::read_cmdline;
use super::kernel::{join_c, Kernel};
use super::kernel::real::REAL;
use super::mapping::Args;
use super::out::{emit, Out, Show};
use super::run::{self, Run};
use super::usage_error;

/// Whether module `name` is in the kernel and running its init
/// (`/sys/module/NAME/initstate` says "coming").
fn initialising(k: &dyn Kernel, name: &[u8]) -> bool {
    let mut path = [0u8; 160];
    let Some(p) = join_c(&mut path, &[b"/sys/module/", name, b"/initstate"]) else { return false };
    let mut state = [0u8; 8];
    matches!(k.read_small(p, &mut state), Ok(n) if state[..n].starts_with(b"coming"))
}

/// Most names one call takes.
const MAX_NAMES: usize = 16;

/// `modprobe [-q] [--plan PLAN] [--] NAME...`, as the kernel runs it for
/// request_module(). Loads each NAME (a module or an alias in the plan)
/// with what it depends on. Silent on success, as kmod's modprobe is.
pub fn main(argv: Args, t0: u64) -> i32 {
    let mut quiet = false;
    let mut plan_path: &core::ffi::CStr = c"/etc/parmod.plan";
    let mut names = heapless::Vec::<&'static [u8], MAX_NAMES>::new();
    let mut c = ArgCursor::new(&argv, 1);
    while let Some(a) = c.next() {
        match a {
            Arg::Flag(b"-q" | b"--quiet", _) => quiet = true,
            // Accepted for compatibility: parmod has no syslog, verbose
            // output or use of the blacklist for explicit names.
            Arg::Flag(b"-b" | b"--use-blacklist" | b"-s" | b"--syslog" | b"-v" | b"--verbose" | b"-a" | b"--all", _) => {}
            Arg::Flag(b"--plan", v) => match c.value("--plan", v) {
                Ok(p) => plan_path = p,
                Err(e) => return usage_error(e),
            },
            Arg::Flag(f, _) => {
                emit!(Out::stderr(), "modprobe (parmod): unsupported option '", Show(f), "'\n");
                return 1;
            }
            Arg::Word(w) => {
                if names.push(w.to_bytes()).is_err() {
                    emit!(Out::stderr(), "modprobe (parmod): too many names (at most ", MAX_NAMES, ")\n");
                    return 1;
                }
            }
        }
    }
    if names.is_empty() {
        emit!(Out::stderr(), "modprobe (parmod): usage: modprobe [-q] [--plan PLAN] [--] NAME...\n");
        return 1;
    }
    let opts = Options::default();
    let Ok(s) = super::prepare_run(&opts, plan_path, run::Keep::Map, None, read_cmdline(&REAL)) else { return 1 };
    let mut wanted = heapless::Vec::<u32, 64>::new();
    for &name in names.iter() {
        let mut add = |m: u32| {
            if !wanted.contains(&m) {
                let _ = wanted.push(m);
            }
        };
        match resolve(&s.plan, s.cmdline.view(), name, &mut add) {
            Lookup::Found => {}
            Lookup::Blacklisted => {
                // As kmod: an alias whose every module is blacklisted loads
                // nothing, and that is not an error.
            }
            Lookup::Unknown => {
                if !quiet {
                    emit!(Out::stderr(), "modprobe: FATAL: Module ", Show(name), " not found in plan ", Show(plan_path.to_bytes()), "\n");
                }
                return 1;
            }
        }
    }
    // A module still initialising counts as loaded, as for kmod's modprobe
    // (module_is_inkernel: live or coming): the request may come from that
    // very init (a crypto self test asks for the algorithm its own module is
    // registering), and finit_module would wait for the end of the init
    // that waits for us.
    wanted.retain(|&m| !s.plan.module(m).is_some_and(|md| initialising(s.kernel, md.name())));
    if wanted.is_empty() {
        return 0;
    }
    // A run of the same plan holds its loads with long serial parts back
    // while this one loads (see `Sched::hold_for_requests`).
    s.kernel.mark_request(plan_path);
    let r = Run { wanted: &wanted, blacklist: false, jobs: None, deadline_ms: None, quiet, summary: false, coldplug: None, hook: None, trace: None, unpack: false };
    match run::execute(s, t0, r) {
        0 => 0,
        _ => 1,
    }
}

