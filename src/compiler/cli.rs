//! The `parmod-plan` command line (hand-written parsing).

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
                      [--profile TRACE --profile-plan OLD_PLAN] [--decompress DIR]
                      [--strict] [--ignore-install] [--skip-missing] [--no-firmware-check]
                      -o PLAN [MODULE_OR_ALIAS_OR_FILE]...
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
                       the size estimate (unmeasured modules: the estimate times the median
                       measured/estimated ratio)
  --profile-plan PLAN  the plan TRACE was recorded with (required with --profile)
  --decompress DIR     for a kernel that cannot decompress modules itself: decompress the plan's
                       .ko.xz/.ko.zst/.ko.gz files into DIR at the same relative path without the
                       suffix (kernel/fs/xfs/xfs.ko.xz -> DIR/kernel/fs/xfs/xfs.ko) and plan the .ko
                       paths. Uncompressed modules are not copied: layer DIR over lib/modules/VERSION
                       in the image. DIR may be ROOT/lib/modules/VERSION itself.
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

fn value<'a>(args: &'a [String], i: &mut usize, opt: &str) -> Result<&'a str> {
    *i += 1;
    args.get(*i).map(|s| s.as_str()).ok_or_else(|| Error::Usage(format!("{opt} needs a value")))
}

fn number(v: &str, opt: &str) -> Result<u32> {
    v.parse::<u32>().map_err(|_| Error::Usage(format!("{opt}: '{v}' is not a non-negative integer")))
}

/// Split `--opt=value` into (`--opt`, Some(value)).
fn split_eq(a: &str) -> (&str, Option<&str>) {
    if a.starts_with("--") {
        if let Some((k, v)) = a.split_once('=') {
            return (k, Some(v));
        }
    }
    (a, None)
}

fn compile_cmd(args: &[String]) -> Result<i32> {
    let mut o = Options::default();
    let mut out: Option<PathBuf> = None;
    let mut i = 0;
    let mut names_only = false;
    let mut strict = false;
    let (mut profile, mut profile_plan): (Option<PathBuf>, Option<PathBuf>) = (None, None);
    while i < args.len() {
        let a = args[i].as_str();
        if names_only || !a.starts_with('-') || a == "-" {
            o.names.push(a.to_string());
            i += 1;
            continue;
        }
        let (k, inline) = split_eq(a);
        let val = |i: &mut usize| -> Result<String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => value(args, i, k).map(str::to_string),
            }
        };
        match k {
            "--" => names_only = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(0);
            }
            "--root" => o.root = PathBuf::from(val(&mut i)?),
            "--kver" => o.kver = Some(val(&mut i)?),
            "--config" => o.configs.push(PathBuf::from(val(&mut i)?)),
            "--modules-load" => o.modules_load.push(PathBuf::from(val(&mut i)?)),
            "--jobs" | "-j" => {
                let n = number(&val(&mut i)?, k)?;
                if n > crate::plan::MAX_PLAN_JOBS {
                    return Err(Error::Usage(format!("--jobs {n}: at most {}", crate::plan::MAX_PLAN_JOBS)));
                }
                o.jobs = n;
            }
            "--module-timeout" => o.module_timeout_ms = number(&val(&mut i)?, k)?,
            "--deadline" => o.deadline_ms = number(&val(&mut i)?, k)?,
            "-o" | "--output" => out = Some(PathBuf::from(val(&mut i)?)),
            "--profile" => profile = Some(PathBuf::from(val(&mut i)?)),
            "--profile-plan" => profile_plan = Some(PathBuf::from(val(&mut i)?)),
            "--decompress" => o.decompress = Some(PathBuf::from(val(&mut i)?)),
            "--strict" => strict = true,
            "--ignore-install" => o.build.ignore_install = true,
            "--skip-missing" => o.build.skip_missing = true,
            "--no-firmware-check" => o.firmware_check = false,
            _ => return Err(Error::Usage(format!("compile: unknown option '{a}'"))),
        }
        i += 1;
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
    let mut i = 0;
    while i < args.len() {
        let (k, inline) = split_eq(&args[i]);
        match k {
            "--json" => as_json = true,
            "--trace" => {
                trace = Some(PathBuf::from(match inline {
                    Some(v) => v,
                    None => value(args, &mut i, "--trace")?,
                }))
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(0);
            }
            a if a.starts_with('-') && a != "-" => {
                return Err(Error::Usage(format!("show: unknown option '{a}'")))
            }
            _ => {
                if plan_path.is_some() {
                    return Err(Error::Usage("show: only one PLAN".into()));
                }
                plan_path = Some(PathBuf::from(&args[i]));
            }
        }
        i += 1;
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
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (k, inline) = match a.split_once('=') {
            Some((k, v)) if a.starts_with("--") => (k, Some(v.to_string())),
            _ => (a, None),
        };
        let val = |i: &mut usize| -> Result<PathBuf> {
            if let Some(v) = &inline {
                return Ok(PathBuf::from(v));
            }
            *i += 1;
            args.get(*i).map(PathBuf::from).ok_or_else(|| Error::Usage(format!("report: {k} needs a value")))
        };
        match k {
            "--plan" => plan_p = Some(val(&mut i)?),
            "--svg" => svg_p = Some(val(&mut i)?),
            "--chrome-trace" => chrome_p = Some(val(&mut i)?),
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(0);
            }
            _ if k.starts_with('-') && k != "-" => return Err(Error::Usage(format!("report: unknown option '{a}'"))),
            _ => {
                if trace_p.is_some() {
                    return Err(Error::Usage("report: only one TRACE".into()));
                }
                trace_p = Some(PathBuf::from(a));
            }
        }
        i += 1;
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

