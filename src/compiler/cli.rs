//! The `parmod-plan` command line: one small argument cursor for the
//! three subcommands (no parser crate: the options are few, and the usage
//! text below is the manual page's source).

use std::format;
use std::io::Write;
use std::path::PathBuf;
use std::prelude::rust_2021::*;
use std::{eprintln, print};

use super::error::{Error, Result};
use super::Options;
use crate::plan::Plan;

pub const USAGE: &str = "\
usage:
  parmod-plan compile [--root DIR] [--kver VERSION] [--config PATH]... [--modules-load PATH]...
                      [--jobs N] [--module-timeout MS] [--deadline MS]
                      [--profile TRACE --profile-plan OLD_PLAN] [--decompress DIR] [--all]
                      [--strict] [--ignore-install] [--skip-missing] [--no-firmware-check]
                      [--on-request NAME[,NAME]...]... -o PLAN [MODULE_OR_ALIAS_OR_FILE]...
  parmod-plan show [--json] PLAN
  parmod-plan show --trace TRACE [--json] PLAN
  parmod-plan report --plan PLAN TRACE [--svg FILE] [--chrome-trace FILE]

compile: resolve the names (modules, aliases; and the modules-load.d entries), pull in
  their dependencies (modules.dep) and soft dependencies (modules.softdep, modprobe.d),
  and write a load plan. A name starting with / or ./ is a module file inside ROOT: it is
  planned with the dependencies its modinfo depends= names.
  --root DIR           system root holding lib/modules/VERSION, modprobe.d, modules-load.d (default /)
  --kver VERSION       kernel version (default: the only, or newest, under ROOT/lib/modules)
  --config PATH        modprobe.d-style file or directory (also takes parmod's wait-for lines);
                       replaces the default directories (ROOT/etc/modprobe.d, run/, usr/local/lib/,
                       lib/, usr/lib/modprobe.d, then ROOT/etc/parmod.d and lib/parmod.d)
  --modules-load PATH  modules-load.d-style file or directory to load. Without it, the root's
                       modules-load.d directories are read only when no names are given.
  --jobs N             loader threads (0: the runtime decides; default 0)
  --module-timeout MS  per-module stuck timeout (default 10000)
  --deadline MS        overall deadline (default 60000)
  --profile TRACE      use the load times a parmod --trace measured as module weights, instead of
                       the estimate from the module files' section headers (unmeasured modules:
                       the estimate times the median measured/estimated ratio); best from a
                       parmod -j 1 boot
  --profile-plan PLAN  the plan TRACE was recorded with (required with --profile)
  --decompress DIR     for a kernel that cannot decompress modules itself: decompress the plan's
                       .ko.xz/.ko.zst/.ko.gz files into DIR at the same relative path without the
                       suffix (kernel/fs/xfs/xfs.ko.xz -> DIR/kernel/fs/xfs/xfs.ko) and plan the .ko
                       paths. Uncompressed modules are not copied: layer DIR over lib/modules/VERSION
                       in the image. DIR may be ROOT/lib/modules/VERSION itself.
  --all                every module of the kernel, with its aliases, options, softdeps and
                       blacklist: a plan for coldplug (`parmod coldplug`, or /init), which loads
                       what the devices present need; names given are loaded in any case
  --on-request NAMES   modules or aliases the kernel may request by itself while the plan runs
                       (request_module(): e.g. crypto-stdrng, which the crypto manager's self-tests
                       of ecdh_generic and others ask for): planned with what they need, so that an
                       image built from the plan holds their files and the modprobe personality
                       finds them, but loaded only when asked for, not by a run of the plan
  --strict             treat every warning as an error (exit status 1, no plan written)
  --ignore-install     ignore modprobe.d install lines: load the modules themselves. Without it an
                       install line with a no-op command (/bin/true, /bin/false, true, false, :)
                       disables its module, and any other command that would run is an error
  --skip-missing       a name on the command line that is no module of the kernel is a warning,
                       not an error (modules-load.d names always are warnings)
  --no-firmware-check  do not warn about firmware= files of the planned modules missing under
                       ROOT/lib/firmware (the check reads every planned module file)
  -o PLAN              output file (written atomically)
show: print a plan (or a parmod trace against its plan) for people, or as JSON.
report: what a boot did, from a parmod --trace file and the plan it ran: the slowest modules,
  the critical path taken, worker idle time, queueing, waits, the lower bound;
  --svg FILE a timeline (one lane per worker), --chrome-trace FILE trace-event JSON
  (Perfetto, chrome://tracing).
";

/// One argument of a subcommand: a flag (`-x`, `--name`, with the value of
/// `--name=value`) or a word (anything else, `-` included, and everything
/// after `--`).
enum Arg<'a> {
    Flag(&'a str, Option<&'a str>),
    Word(&'a str),
}

/// The one argument parser of `parmod-plan`'s subcommands.
struct Cursor<'a> {
    cmd: &'static str,
    args: &'a [String],
    i: usize,
    words_only: bool,
}

impl<'a> Cursor<'a> {
    fn new(cmd: &'static str, args: &'a [String]) -> Self {
        Cursor { cmd, args, i: 0, words_only: false }
    }

    fn next(&mut self) -> Option<Arg<'a>> {
        let a = self.args.get(self.i)?.as_str();
        self.i += 1;
        if self.words_only || !a.starts_with('-') || a == "-" {
            return Some(Arg::Word(a));
        }
        if a == "--" {
            self.words_only = true;
            return self.next();
        }
        match a.split_once('=') {
            Some((k, v)) if a.starts_with("--") => Some(Arg::Flag(k, Some(v))),
            _ => Some(Arg::Flag(a, None)),
        }
    }

    /// The value of `flag`: its `=value`, else the next argument.
    fn value(&mut self, flag: &str, inline: Option<&'a str>) -> Result<&'a str> {
        if let Some(v) = inline {
            return Ok(v);
        }
        let v = self.args.get(self.i).ok_or_else(|| Error::Usage(format!("{}: {flag} needs a value", self.cmd)))?;
        self.i += 1;
        Ok(v)
    }

    fn path(&mut self, flag: &str, inline: Option<&'a str>) -> Result<PathBuf> {
        self.value(flag, inline).map(PathBuf::from)
    }

    fn number(&mut self, flag: &str, inline: Option<&'a str>) -> Result<u32> {
        let v = self.value(flag, inline)?;
        v.parse::<u32>().map_err(|_| Error::Usage(format!("{}: {flag}: '{v}' is not a non-negative integer", self.cmd)))
    }

    fn unknown(&self, flag: &str) -> Error {
        Error::Usage(format!("{}: unknown option '{flag}'", self.cmd))
    }
}

fn compile_cmd(args: &[String]) -> Result<i32> {
    let mut o = Options::default();
    let mut out: Option<PathBuf> = None;
    let mut strict = false;
    let (mut profile, mut profile_plan): (Option<PathBuf>, Option<PathBuf>) = (None, None);
    let mut c = Cursor::new("compile", args);
    while let Some(a) = c.next() {
        let (k, v) = match a {
            Arg::Word(w) => {
                o.names.push(w.to_string());
                continue;
            }
            Arg::Flag(k, v) => (k, v),
        };
        match k {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(0);
            }
            "--root" => o.root = c.path(k, v)?,
            "--kver" => o.kver = Some(c.value(k, v)?.to_string()),
            "--config" => o.configs.push(c.path(k, v)?),
            "--modules-load" => o.modules_load.push(c.path(k, v)?),
            "--jobs" | "-j" => {
                let n = c.number(k, v)?;
                if n > crate::plan::MAX_PLAN_JOBS {
                    return Err(Error::Usage(format!("--jobs {n}: at most {}", crate::plan::MAX_PLAN_JOBS)));
                }
                o.jobs = n;
            }
            "--module-timeout" => o.module_timeout_ms = c.number(k, v)?,
            "--deadline" => o.deadline_ms = c.number(k, v)?,
            "-o" | "--output" => out = Some(c.path(k, v)?),
            "--profile" => profile = Some(c.path(k, v)?),
            "--profile-plan" => profile_plan = Some(c.path(k, v)?),
            "--decompress" => o.decompress = Some(c.path(k, v)?),
            "--strict" => strict = true,
            "--ignore-install" => o.build.ignore_install = true,
            "--skip-missing" => o.build.skip_missing = true,
            "--no-firmware-check" => o.firmware_check = false,
            "--all" => o.build.all = true,
            "--on-request" => {
                let list = c.value(k, v)?;
                for name in list.split(',') {
                    if name.is_empty() {
                        return Err(Error::Usage(format!("--on-request '{list}': an empty name")));
                    }
                    o.on_request.push(name.to_string());
                }
            }
            _ => return Err(c.unknown(k)),
        }
    }
    let out = out.ok_or_else(|| Error::Usage("compile: -o PLAN is required".into()))?;
    match (profile, profile_plan) {
        (Some(t), Some(p)) => o.profile = Some(super::profile::load(&t, &p)?),
        (None, None) => {}
        (Some(_), None) => {
            return Err(Error::Usage(
                "compile: --profile TRACE needs --profile-plan PLAN, the plan the trace was recorded with".into(),
            ))
        }
        (None, Some(_)) => return Err(Error::Usage("compile: --profile-plan needs --profile TRACE".into())),
    }
    let mut warnings = 0usize;
    let mut warn = |m: String| {
        warnings += 1;
        eprintln!("parmod-plan: {}: {m}", if strict { "error" } else { "warning" });
    };
    let inputs = super::load_inputs(&o, &mut warn)?;
    let requests = super::requests(&o)?;
    let b = super::compile_requests(&o, &inputs, &requests, &mut warn)?;
    if strict && warnings > 0 {
        return Err(Error::Other(format!(
            "--strict: {warnings} warning{} treated as error{}; no plan written",
            if warnings == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        )));
    }
    super::write_plan(&b, &out)?;
    // The process exits right after: freeing tens of thousands of strings
    // one by one would only cost time (a few ms on a full kernel tree).
    std::mem::forget(b);
    std::mem::forget(inputs);
    Ok(0)
}

fn show_cmd(args: &[String]) -> Result<i32> {
    let mut as_json = false;
    let mut trace: Option<PathBuf> = None;
    let mut plan_path: Option<PathBuf> = None;
    let mut c = Cursor::new("show", args);
    while let Some(a) = c.next() {
        match a {
            Arg::Flag("--json", _) => as_json = true,
            Arg::Flag(k @ "--trace", v) => trace = Some(c.path(k, v)?),
            Arg::Flag("-h" | "--help", _) => {
                print!("{USAGE}");
                return Ok(0);
            }
            Arg::Flag(k, _) => return Err(c.unknown(k)),
            Arg::Word(w) => {
                if plan_path.is_some() {
                    return Err(Error::Usage("show: only one PLAN".into()));
                }
                plan_path = Some(PathBuf::from(w));
            }
        }
    }
    let plan_path = plan_path.ok_or_else(|| Error::Usage("show: PLAN is required".into()))?;
    let bytes = super::error::read(&plan_path)?;
    let plan = Plan::parse(&bytes).map_err(|e| Error::Other(format!("{}: {e}", plan_path.display())))?;
    let mut stdout = std::io::stdout().lock();
    let res = match trace {
        None if as_json => writeln_json(&mut stdout, &super::show::json(&plan)),
        None => stdout.write_all(super::show::text(&plan).as_bytes()),
        Some(t) => {
            let tb = super::error::read(&t)?;
            let bad = |e: String| Error::Other(format!("{}: {e}", t.display()));
            if as_json {
                let (v, note) = super::show::trace_json(&plan, &tb).map_err(bad)?;
                if let Some(n) = note {
                    eprintln!("parmod-plan: warning: {n}");
                }
                writeln_json(&mut stdout, &v)
            } else {
                let (txt, note) = super::show::trace_text(&plan, &tb).map_err(bad)?;
                if let Some(n) = note {
                    eprintln!("parmod-plan: warning: {n}");
                }
                stdout.write_all(txt.as_bytes())
            }
        }
    };
    match res {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Error::Other(format!("writing to stdout: {e}"))),
    }
}

/// `parmod-plan report` (arguments after the command name).
fn report_cmd(args: &[String]) -> Result<i32> {
    let (mut plan_p, mut trace_p, mut svg_p, mut chrome_p): (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>, Option<PathBuf>) =
        (None, None, None, None);
    let mut c = Cursor::new("report", args);
    while let Some(a) = c.next() {
        match a {
            Arg::Flag(k @ "--plan", v) => plan_p = Some(c.path(k, v)?),
            Arg::Flag(k @ "--svg", v) => svg_p = Some(c.path(k, v)?),
            Arg::Flag(k @ "--chrome-trace", v) => chrome_p = Some(c.path(k, v)?),
            Arg::Flag("-h" | "--help", _) => {
                print!("{USAGE}");
                return Ok(0);
            }
            Arg::Flag(k, _) => return Err(c.unknown(k)),
            Arg::Word(w) => {
                if trace_p.is_some() {
                    return Err(Error::Usage("report: only one TRACE".into()));
                }
                trace_p = Some(PathBuf::from(w));
            }
        }
    }
    let plan_p = plan_p.ok_or_else(|| Error::Usage("report: --plan PLAN is required (the plan the trace was made with)".into()))?;
    let trace_p = trace_p.ok_or_else(|| Error::Usage("report: TRACE is required (a parmod --trace file)".into()))?;
    use crate::report;
    let pb = super::error::read(&plan_p)?;
    let plan = Plan::parse(&pb).map_err(|e| Error::Other(format!("{}: {e}", plan_p.display())))?;
    let tb = super::error::read(&trace_p)?;
    let d = report::decode(&plan, &tb).map_err(|e| Error::Other(format!("{}: {e}", trace_p.display())))?;
    let a = report::analyse(&plan, d);
    if !a.checksum_matches {
        std::eprintln!(
            "parmod-plan: warning: {} was made with another plan than {}: names may be wrong",
            trace_p.display(),
            plan_p.display()
        );
    }
    let write = |p: &PathBuf, data: &[u8]| -> Result<()> {
        std::fs::write(p, data).map_err(|e| Error::Other(format!("writing {}: {e}", p.display())))
    };
    if let Some(p) = &svg_p {
        write(p, report::svg::svg(&a).as_bytes())?;
    }
    if let Some(p) = &chrome_p {
        let s = serde_json::to_string(&report::chrome::chrome(&a)).map_err(|e| Error::Other(format!("{}: {e}", p.display())))?;
        write(p, s.as_bytes())?;
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(report::text::text(&plan, &a).as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Other(format!("writing to stdout: {e}"))),
        _ => Ok(0),
    }
}

fn writeln_json(w: &mut dyn Write, v: &serde_json::Value) -> std::io::Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
    w.write_all(s.as_bytes())?;
    w.write_all(b"\n")
}

/// Run the tool with `args` (without the program name); returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let res = match args.first().map(String::as_str) {
        Some("compile") => compile_cmd(&args[1..]),
        Some("show") => show_cmd(&args[1..]),
        Some("report") => report_cmd(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(0)
        }
        Some(other) => Err(Error::Usage(format!("unknown command '{other}' (expected compile, show or report)"))),
        None => Err(Error::Usage("missing command (compile, show or report)".into())),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("parmod-plan: {e}");
            e.exit_code()
        }
    }
}

