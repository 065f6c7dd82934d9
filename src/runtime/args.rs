//! Command-line parsing for `parmod`.

use core::ffi::CStr;

use heapless::Vec;

use super::mapping::Args;

/// Names given to --fail / --hang (simulation only).
pub const MAX_SIM_NAMES: usize = 64;

pub struct Options {
    pub plan: Option<&'static CStr>,
    pub jobs: Option<u32>,
    pub trace: Option<&'static CStr>,
    pub module_timeout_ms: Option<u32>,
    pub deadline_ms: Option<u32>,
    pub simulate: bool,
    pub force: bool,
    pub quiet: bool,
    pub module_dir: Option<&'static [u8]>,
    pub fail: Vec<&'static [u8], MAX_SIM_NAMES>,
    pub hang: Vec<&'static [u8], MAX_SIM_NAMES>,
    pub help: bool,
}

pub const USAGE: &str = "\
usage: parmod [-j N] [--trace PATH] [--module-timeout MS] [--deadline MS]
              [--force] [--module-dir DIR] [-q] PLAN
       parmod --simulate [--fail NAME,..] [--hang NAME,..] [options] PLAN
       parmod --init [options] [PLAN]       (as PID 1: the initramfs /init)
       parmod wait [--timeout MS] PATH...
       modprobe [-q] [--] NAME...           (started under that name)
Loads the modules of a plan from parmod-plan in parallel, each as soon as
its dependencies are done, longest remaining chain first.
  -j, --jobs N          workers (default: the plan's, else 2 x the CPUs)
  --trace PATH          write a binary trace (parmod-plan show --trace)
  --module-timeout MS   report a longer load as stuck, start a new worker
  --deadline MS         report what is unfinished and exit (0: never)
  --simulate            sleep each module's planned weight, load nothing
  --force               load even if the plan is for another kernel
  --module-dir DIR      module files are under DIR (/lib/modules/RELEASE)
  -q, --quiet           print only failures and the summary
/init reads parmod.{plan,next,rescue,jobs,deadline,timeout,trace}=,
modprobe.blacklist= and MODULE.PARAM=VALUE from the kernel command line.
Exit: 0 all loaded; 1 failed, skipped, stuck, blocked or a wait failed;
2 usage or plan error (nothing loaded). See parmod(8).
";

pub enum ArgError {
    Missing(&'static str),
    Number(&'static str, &'static [u8]),
    Unknown(&'static [u8]),
    TooMany(&'static str),
    NoPlan,
}

fn number(flag: &'static str, v: &'static [u8]) -> Result<u32, ArgError> {
    crate::cmdline::decimal(v).ok_or(ArgError::Number(flag, v))
}

fn names(
    flag: &'static str,
    v: &'static [u8],
    into: &mut Vec<&'static [u8], MAX_SIM_NAMES>,
) -> Result<(), ArgError> {
    for n in v.split(|&c| c == b',').filter(|n| !n.is_empty()) {
        into.push(n).map_err(|_| ArgError::TooMany(flag))?;
    }
    Ok(())
}

pub fn parse(args: &Args, first: usize) -> Result<Options, ArgError> {
    let mut o = Options {
        plan: None,
        jobs: None,
        trace: None,
        module_timeout_ms: None,
        deadline_ms: None,
        simulate: false,
        force: false,
        quiet: false,
        module_dir: None,
        fail: Vec::new(),
        hang: Vec::new(),
        help: false,
    };
    let mut i = first;
    while let Some(a) = args.get(i) {
        i += 1;
        let a_bytes = a.to_bytes();
        // Accept both "--flag value" and "--flag=value".
        let (flag, inline) = match a_bytes.iter().position(|&c| c == b'=') {
            Some(p) if a_bytes.starts_with(b"--") => (&a_bytes[..p], Some(&a_bytes[p + 1..])),
            _ => (a_bytes, None),
        };
        let mut value = |name: &'static str| -> Result<&'static [u8], ArgError> {
            if let Some(v) = inline {
                return Ok(v);
            }
            let v = args.get(i).ok_or(ArgError::Missing(name))?;
            i += 1;
            Ok(v.to_bytes())
        };
        match flag {
            b"-h" | b"--help" => o.help = true,
            b"-j" | b"--jobs" => {
                let v = value("--jobs")?;
                o.jobs = Some(number("--jobs", v)?);
            }
            b"--trace" => {
                // A path: keep the C string (for open); inline form is not NUL-terminated.
                if inline.is_some() {
                    return Err(ArgError::Unknown(a_bytes));
                }
                o.trace = Some(args.get(i).ok_or(ArgError::Missing("--trace"))?);
                i += 1;
            }
            b"--module-timeout" => {
                let v = value("--module-timeout")?;
                o.module_timeout_ms = Some(number("--module-timeout", v)?);
            }
            b"--deadline" => {
                let v = value("--deadline")?;
                o.deadline_ms = Some(number("--deadline", v)?);
            }
            b"--simulate" => o.simulate = true,
            b"--init" => {} // seen by `run` before parsing
            b"--force" => o.force = true,
            b"-q" | b"--quiet" => o.quiet = true,
            b"--module-dir" => o.module_dir = Some(value("--module-dir")?),
            b"--fail" => {
                let v = value("--fail")?;
                names("--fail", v, &mut o.fail)?;
            }
            b"--hang" => {
                let v = value("--hang")?;
                names("--hang", v, &mut o.hang)?;
            }
            _ if a_bytes.starts_with(b"-") && a_bytes.len() > 1 => return Err(ArgError::Unknown(a_bytes)),
            _ => {
                if o.plan.is_some() {
                    return Err(ArgError::Unknown(a_bytes));
                }
                o.plan = Some(a);
            }
        }
    }
    Ok(o)
}
