//! The modprobe personality: started as `modprobe` (a `/sbin/modprobe`
//! symlink), parmod loads the named modules (or aliases kept in the plan)
//! with what they depend on, so the kernel's request_module() works in an
//! image without kmod.

use crate::cmdline::Cmdline;
use crate::plan::{glob_match, Plan};

use super::args::{Arg, ArgCursor, Options};
use super::init::read_cmdline;
use super::kernel::real::REAL;
use super::mapping::Args;
use super::out::{emit, Out, Show};
use super::run::{self, Run};
use super::usage_error;

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
        match resolve(&s.plan, s.cmdline.view(), name, &mut wanted) {
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
    if wanted.is_empty() {
        return 0;
    }
    let r = Run { wanted: &wanted, blacklist: false, jobs: None, deadline_ms: None, quiet, summary: false, trace: None };
    match run::execute(s, t0, r) {
        0 => 0,
        _ => 1,
    }
}

/// What a name resolved to.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found,
    /// Only blacklisted modules match (through aliases).
    Blacklisted,
    Unknown,
}

/// Resolve `name` as kmod's modprobe does (kmod_module_new_from_lookup),
/// adding every module it names to `wanted`: the modprobe.d aliases first
/// (if any matches, that is the answer), then module names, then the
/// kernel's aliases (`symbol:NAME` only among the modules.symbols ones).
/// Modules found through an alias are skipped when modprobe.d or the
/// kernel command line (`modprobe.blacklist=`) blacklist them.
pub fn resolve(plan: &Plan<'_>, cmdline: Cmdline<'_>, name: &[u8], wanted: &mut heapless::Vec<u32, 64>) -> Lookup {
    let mut norm = [0u8; 256];
    let Some(n) = norm.get_mut(..name.len()) else { return Lookup::Unknown };
    n.copy_from_slice(name);
    crate::plan::normalize_alias_in_place(n);
    let name_n: &[u8] = n;
    let symbol = name_n.starts_with(b"symbol:");
    let before = wanted.len();
    let mut matched = false;
    let mut add = |m: u32, via_alias: bool, matched: &mut bool| {
        *matched = true;
        let Some(module) = plan.module(m) else { return };
        if via_alias && (module.is_blacklisted() || cmdline.blacklists(module.name())) {
            return;
        }
        if !wanted.contains(&m) {
            let _ = wanted.push(m);
        }
    };
    for a in plan.config_aliases() {
        if glob_match(a.pattern, name_n) {
            add(a.module, true, &mut matched);
        }
    }
    if !matched {
        if let Some(m) = plan.find_module(name) {
            add(m.index(), false, &mut matched);
        }
    }
    if !matched {
        for a in plan.kernel_aliases_matching(name_n) {
            if a.pattern.starts_with(b"symbol:") == symbol {
                add(a.module, true, &mut matched);
            }
        }
    }
    match (matched, wanted.len() == before) {
        (false, _) => Lookup::Unknown,
        (true, true) => Lookup::Blacklisted,
        (true, false) => Lookup::Found,
    }
}
