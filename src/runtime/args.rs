//! Command-line parsing: one cursor over the arguments ([`ArgCursor`]) for
//! parmod's three parsers (`parmod`, `parmod wait`, the modprobe
//! personality), and `parmod`'s own options.

use core::ffi::CStr;

use heapless::Vec;

use super::kernel::sim::MAX_SIM_NAMES;
use super::mapping::Args;

/// One argument: a flag (`-x`, `--name`, with the value of `--name=value`)
/// or a word (anything else, and everything after `--`).
pub enum Arg {
    Flag(&'static [u8], Option<&'static CStr>),
    Word(&'static CStr),
}

pub enum ArgError {
    Missing(&'static str),
    Number(&'static str, &'static [u8]),
    Unknown(&'static [u8]),
    TooMany(&'static str),
    NoPlan,
}

pub struct ArgCursor<'a> {
    args: &'a Args,
    i: usize,
    words_only: bool,
}

impl<'a> ArgCursor<'a> {
    /// Start at argument `first`.
    pub fn new(args: &'a Args, first: usize) -> Self {
        ArgCursor { args, i: first, words_only: false }
    }

    /// The next argument. `--` ends the flags: it is not returned, and
    /// every argument after it is a word.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Arg> {
        let a = self.args.get(self.i)?;
        self.i += 1;
        let b = a.to_bytes();
        if self.words_only || b.first() != Some(&b'-') || b.len() < 2 {
            return Some(Arg::Word(a));
        }
        if b == b"--" {
            self.words_only = true;
            return self.next();
        }
        // "--name=value": the value is the tail of the same C string.
        if b.starts_with(b"--") {
            if let Some(p) = b.iter().position(|&c| c == b'=') {
                let tail = a.to_bytes_with_nul().get(p + 1..).and_then(|t| CStr::from_bytes_with_nul(t).ok());
                return Some(Arg::Flag(&b[..p], tail));
            }
        }
        Some(Arg::Flag(b, None))
    }

    /// The value of flag `name`: its `=value`, else the next argument.
    pub fn value(&mut self, name: &'static str, inline: Option<&'static CStr>) -> Result<&'static CStr, ArgError> {
        if let Some(v) = inline {
            return Ok(v);
        }
        let v = self.args.get(self.i).ok_or(ArgError::Missing(name))?;
        self.i += 1;
        Ok(v)
    }

    /// The value of flag `name` as a whole number.
    pub fn number(&mut self, name: &'static str, inline: Option<&'static CStr>) -> Result<u32, ArgError> {
        let v = self.value(name, inline)?.to_bytes();
        crate::cmdline::decimal(v).ok_or(ArgError::Number(name, v))
    }
}

#[derive(Default)]
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
    /// `parmod coldplug`: load what the devices need.
    pub coldplug: bool,
    pub settle_ms: Option<u32>,
    /// Leave `.ko.xz` files to the kernel (no unpacking on idle CPUs).
    pub no_unpack: bool,
}

pub const USAGE: &str = "\
usage: parmod [-j N] [--trace PATH] [--module-timeout MS] [--deadline MS]
              [--force] [--module-dir DIR] [--no-unpack] [-q] PLAN
       parmod --simulate [--fail NAME,..] [--hang NAME,..] [options] PLAN
       parmod --init [options] [PLAN]       (as PID 1: the initramfs /init)
       parmod coldplug [--settle MS] [--timeout MS] [-j N] [--trace PATH] [PLAN]
       parmod wait [--timeout MS] PATH...
       modprobe [-q] [--] NAME...           (started under that name)
Loads the modules of a plan from parmod-plan in parallel, each as soon as
its dependencies are done, longest remaining chain first.
  -j, --jobs N          loads at once (default: the plan's, else 8 x the CPUs);
                        beyond the CPUs they run at nice 19
  --trace PATH          write a binary trace (parmod-plan show --trace)
  --module-timeout MS   report a longer load as stuck, start a new worker
  --deadline MS         report what is unfinished and exit (0: never)
  --simulate            sleep each module's planned weight, load nothing
  --force               load even if the plan is for another kernel
  --module-dir DIR      module files are under DIR (/lib/modules/RELEASE)
  --no-unpack           leave .ko.xz files to the kernel (default: unpack
                        them ahead of their loads on idle CPUs)
  -q, --quiet           print only failures and the summary
coldplug: load what the devices present, and those appearing, need (a plan
from parmod-plan compile --all; a run of such a plan is one anyway), until
nothing loads and no device appears for --settle MS (default 200), or
--timeout MS. Reads modules_load=, rd.modules_load=, modprobe.blacklist=,
rd.driver.blacklist=, module_blacklist= from the kernel command line.
/init reads parmod.{plan,next,rescue,jobs,deadline,timeout,trace,coldplug,
settle,unpack}=, modprobe.blacklist= and MODULE.PARAM=VALUE from the command line.
Exit: 0 all loaded; 1 failed, skipped, stuck, blocked or a wait failed;
2 usage or plan error (nothing loaded). See parmod(8).
";

fn names(flag: &'static str, v: &'static CStr, into: &mut Vec<&'static [u8], MAX_SIM_NAMES>) -> Result<(), ArgError> {
    for n in v.to_bytes().split(|&c| c == b',').filter(|n| !n.is_empty()) {
        into.push(n).map_err(|_| ArgError::TooMany(flag))?;
    }
    Ok(())
}

/// `parmod`'s options, from argument `first` on (`parmod coldplug`'s with
/// `coldplug`).
pub fn parse(args: &Args, first: usize, coldplug: bool) -> Result<Options, ArgError> {
    let mut o = Options { coldplug, ..Options::default() };
    let mut c = ArgCursor::new(args, first);
    while let Some(a) = c.next() {
        match a {
            Arg::Flag(b"-h" | b"--help", _) => o.help = true,
            Arg::Flag(b"-j" | b"--jobs", v) => o.jobs = Some(c.number("--jobs", v)?),
            Arg::Flag(b"--trace", v) => o.trace = Some(c.value("--trace", v)?),
            Arg::Flag(b"--module-timeout", v) => o.module_timeout_ms = Some(c.number("--module-timeout", v)?),
            Arg::Flag(b"--deadline", v) => o.deadline_ms = Some(c.number("--deadline", v)?),
            Arg::Flag(b"--timeout", v) if o.coldplug => o.deadline_ms = Some(c.number("--timeout", v)?),
            Arg::Flag(b"--settle", v) if o.coldplug => o.settle_ms = Some(c.number("--settle", v)?),
            Arg::Flag(b"--simulate", _) => o.simulate = true,
            Arg::Flag(b"--init", _) => {} // seen by `run` before parsing
            Arg::Flag(b"--force", _) => o.force = true,
            Arg::Flag(b"--no-unpack", _) => o.no_unpack = true,
            Arg::Flag(b"-q" | b"--quiet", _) => o.quiet = true,
            Arg::Flag(b"--module-dir", v) => o.module_dir = Some(c.value("--module-dir", v)?.to_bytes()),
            Arg::Flag(b"--fail", v) => names("--fail", c.value("--fail", v)?, &mut o.fail)?,
            Arg::Flag(b"--hang", v) => names("--hang", c.value("--hang", v)?, &mut o.hang)?,
            Arg::Flag(f, _) => return Err(ArgError::Unknown(f)),
            Arg::Word(w) => {
                if o.plan.is_some() {
                    return Err(ArgError::Unknown(w.to_bytes()));
                }
                o.plan = Some(w);
            }
        }
    }
    Ok(o)
}
