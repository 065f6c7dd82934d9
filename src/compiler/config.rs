//! modprobe.d and modules-load.d.
//!
//! modprobe.d follows kmod (libkmod/libkmod-config.c, kmod 30):
//! * files are `*.conf` (and `*.alias`) in the configuration directories; a file name seen in
//!   an earlier directory hides the same name in later ones; all files are then
//!   read in order of their *file name*, whatever their directory. kmod adds the
//!   module directory's `modules.softdep` to that list as a file named
//!   `modules.softdep` (checked with modprobe: a `z.conf` softdep for jbd2
//!   loses against modules.softdep's, an `a.conf` one wins);
//! * a line ending in `\` continues on the next line; `#` starts a comment line;
//! * `softdep NAME ...`: tokens before the first `pre:`/`post:` are ignored
//!   (Debian's `softdep cifs gcm` therefore adds nothing), and only the first
//!   softdep line whose NAME (a glob) matches a module counts;
//! * `options NAME ...` accumulate in file order for exactly NAME (a module
//!   name, or an alias: kmod appends an alias's options to the module it
//!   resolved to through that alias);
//! * `alias PATTERN NAME` and `blacklist NAME`; names are normalised (`-` is `_`);
//! * `install PATTERN COMMAND`: the first line whose PATTERN (a glob) matches
//!   a module's name replaces loading it by the command; also found when
//!   PATTERN is exactly a name that is no module. A static loader runs no
//!   commands: the no-op commands that disable a module (`/bin/true`,
//!   `/bin/false`, `/usr/bin/true`, `/usr/bin/false`, `true`, `false`, `:`,
//!   with or without arguments, and no shell syntax) make it *disabled*; any
//!   other command is refused where it would apply (see the compiler), unless
//!   `--ignore-install`;
//! * `remove` lines only matter for unloading, which parmod never does: ignored.
//! * unknown keywords and malformed lines are skipped with a warning naming
//!   file and line, as kmod skips them with a message (`--strict` makes
//!   warnings errors). `include` and `config` (which kmod no longer parses
//!   either) are warned about too. `weakdep` (kmod 33+) names modules modprobe
//!   does not load: accepted and ignored, silently.
//!
//! parmod adds two statements, `wait-for PATH [after MODULE] [timeout MS]`
//! (device and sysfs readiness) and `module-timeout NAME MS` (one module's
//! stuck timeout); see docs/config.md. They may appear in
//! modprobe.d (kmod warns about the unknown keyword and goes on) and in
//! parmod's own directories, `etc/parmod.d` and `lib/parmod.d`, which take the
//! modprobe.d syntax and are read after it.

use std::collections::HashSet;
use std::format;
use std::path::{Path, PathBuf};
use std::prelude::rust_2021::*;

use super::error::{read, Error, Result};
use super::kmod::{canonical, normalize_alias};

/// Where a config statement came from.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

#[derive(Clone, Debug)]
pub struct SoftDep {
    /// Glob over canonical module names.
    pub pattern: String,
    pub pre: Vec<String>,
    pub post: Vec<String>,
    pub source: Source,
}

#[derive(Clone, Debug, Default)]
pub struct ModprobeConfig {
    /// (normalised pattern, canonical target, source), in reading order.
    pub aliases: Vec<(String, String, Source)>,
    pub blacklist: HashSet<String>,
    /// (normalised module name or alias, option string), in reading order.
    pub options: Vec<(String, String)>,
    pub softdeps: Vec<SoftDep>,
    /// `install PATTERN COMMAND` lines, in reading order.
    pub installs: Vec<Install>,
    /// `wait-for` statements (parmod's own), in reading order.
    pub waits: Vec<DeviceWaitDecl>,
    /// `module-timeout NAME MS` statements (parmod's own), in reading order.
    pub module_timeouts: Vec<ModuleTimeoutDecl>,
}

/// `module-timeout NAME MS`: module NAME's stuck timeout, instead of the one
/// derived from its expected load time.
#[derive(Clone, Debug)]
pub struct ModuleTimeoutDecl {
    /// Canonical module name.
    pub name: String,
    /// ms, at least 1.
    pub timeout_ms: u32,
    pub source: Source,
}

/// `install PATTERN COMMAND`.
#[derive(Clone, Debug)]
pub struct Install {
    /// Normalised glob over module names.
    pub pattern: String,
    pub command: String,
    pub source: Source,
}

impl Install {
    /// For the no-op commands that disable a module: whether the command
    /// succeeds (`true`) or fails (`false`). None for any other command.
    pub fn noop(&self) -> Option<bool> {
        noop_command(&self.command)
    }
}

/// `/bin/true`, `/bin/false`, `/usr/bin/true`, `/usr/bin/false`, `true`,
/// `false` and `:`, possibly with arguments (which they ignore) but without
/// shell syntax: Some(whether it succeeds). None for anything else.
pub fn noop_command(cmd: &str) -> Option<bool> {
    if cmd.contains([';', '&', '|', '<', '>', '`', '$', '(', ')', '\n']) {
        return None;
    }
    match cmd.split_ascii_whitespace().next()? {
        "/bin/true" | "/usr/bin/true" | "true" | ":" => Some(true),
        "/bin/false" | "/usr/bin/false" | "false" => Some(false),
        _ => None,
    }
}

/// Default time to wait for a `wait-for` path (ms).
pub const DEFAULT_WAIT_TIMEOUT_MS: u32 = 5000;

/// `wait-for PATH [after MODULE] [timeout MS]`.
#[derive(Clone, Debug)]
pub struct DeviceWaitDecl {
    /// Absolute path under /dev or /sys; one component may be a glob.
    pub path: String,
    /// Canonical name of the module after which to wait; None: before success.
    pub after: Option<String>,
    /// ms; 0 = until the plan's deadline.
    pub timeout_ms: u32,
    pub source: Source,
}

impl ModprobeConfig {
    /// The first softdep line whose pattern matches `name` (kmod uses only that one).
    pub fn softdep_for(&self, name: &str) -> Option<&SoftDep> {
        self.softdeps
            .iter()
            .find(|s| crate::plan::glob_match(s.pattern.as_bytes(), name.as_bytes()))
    }

    /// The module's options, space separated, as written.
    pub fn options_for(&self, name: &str) -> String {
        self.options_for_any(name, &[])
    }

    /// The options of a module reached as `name` or through `aliases`, in
    /// reading order, as kmod_module_get_options concatenates the lines for
    /// the module's name and its alias.
    pub fn options_for_any(&self, name: &str, aliases: &[String]) -> String {
        let mut out = String::new();
        for (key, opts) in &self.options {
            if key == name || aliases.contains(key) {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(opts);
            }
        }
        out
    }

    /// The first `install` line whose pattern matches the module `name`
    /// (kmod_module_get_install_commands).
    pub fn install_for(&self, name: &str) -> Option<&Install> {
        self.installs.iter().find(|i| crate::plan::glob_match(i.pattern.as_bytes(), name.as_bytes()))
    }

    /// The first `install` line whose pattern is exactly `name`: how kmod
    /// finds a name that is no module (kmod_lookup_alias_from_commands).
    pub fn install_named(&self, name: &str) -> Option<&Install> {
        self.installs.iter().find(|i| i.pattern == name)
    }
}

/// Collect config files from `paths` (files or directories) the way kmod and
/// systemd do: directory entries ending in one of `suffixes`, an earlier
/// path's file name hides a later one, the result sorted by file name. `extra`
/// files are added by their file name too. A path given explicitly
/// (`required`) must exist.
pub fn collect_files(
    paths: &[PathBuf],
    required: bool,
    suffixes: &[&str],
    extra: &[PathBuf],
) -> Result<Vec<PathBuf>> {
    let mut by_name: Vec<(String, PathBuf)> = Vec::new();
    let mut add = |name: String, p: PathBuf| {
        if !by_name.iter().any(|(n, _)| *n == name) {
            by_name.push((name, p));
        }
    };
    for p in paths {
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(err) => {
                if required {
                    return Err(Error::Read { path: p.clone(), err });
                }
                continue;
            }
        };
        if meta.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|err| Error::Read { path: p.clone(), err })?;
            let mut names: Vec<String> = Vec::new();
            for e in rd {
                let e = e.map_err(|err| Error::Read { path: p.clone(), err })?;
                let Ok(name) = e.file_name().into_string() else { continue };
                if name.starts_with('.') || !suffixes.iter().any(|s| name.ends_with(s)) || e.path().is_dir() {
                    continue;
                }
                names.push(name);
            }
            names.sort();
            for name in names {
                let full = p.join(&name);
                add(name, full);
            }
        } else {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            add(name, p.clone());
        }
    }
    for p in extra {
        if p.is_file() {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            add(name, p.clone());
        }
    }
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(by_name.into_iter().map(|(_, p)| p).collect())
}

/// Logical lines of a file, as kmod reads them (`freadline_wrapped`): a
/// `\` at the end of a line joins the next line to it, a `\` before any
/// other character stands for that character (`\\` for a backslash), and
/// a NUL ends the line's text (kmod's C string ends there: the rest of that
/// line is never seen). One difference, on purpose: a `\r` before a line's
/// end is dropped, so a file with CRLF line ends reads as meant (kmod makes
/// the `\r` part of the line's last word: `blacklist foo\r` names no
/// module). Each with the number of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut line, mut start) = (1usize, 1usize);
    let mut pending = false;
    let end_line = |cur: &mut String, start: usize, out: &mut Vec<(usize, String)>| {
        let mut l = std::mem::take(cur);
        if l.ends_with('\r') {
            l.pop();
        }
        if let Some(nul) = l.find('\0') {
            l.truncate(nul);
        }
        out.push((start, l));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        pending = true;
        match c {
            '\n' => {
                end_line(&mut cur, start, &mut out);
                line += 1;
                start = line;
                pending = false;
            }
            '\\' => match chars.peek().copied() {
                Some('\n') => {
                    chars.next();
                    line += 1;
                }
                Some('\r') if text_follows(&chars, "\r\n") => {
                    chars.next();
                    chars.next();
                    line += 1;
                }
                Some(next) => {
                    chars.next();
                    cur.push(next);
                }
                None => {}
            },
            c => cur.push(c),
        }
    }
    if pending {
        end_line(&mut cur, start, &mut out);
    }
    out
}

/// Whether the characters still to come start with `s`.
fn text_follows(chars: &std::iter::Peekable<std::str::Chars<'_>>, s: &str) -> bool {
    chars.clone().take(s.chars().count()).eq(s.chars())
}

/// kmod's check of a name or pattern in a modprobe.d line (`underscores()`):
/// a `]` without its `[`, or a `[` never closed, makes kmod ignore the line.
fn brackets_balanced(s: &str) -> bool {
    let mut open = false;
    for c in s.chars() {
        match c {
            '[' if !open => open = true,
            ']' if open => open = false,
            ']' => return false,
            _ => {}
        }
    }
    !open
}

/// Parse modprobe.d files (in the order given) into one configuration.
/// Warnings go to `warn`.
pub fn parse_modprobe(files: &[PathBuf], warn: &mut dyn FnMut(String)) -> Result<ModprobeConfig> {
    let mut cfg = ModprobeConfig::default();
    for path in files {
        let text = read(path)?;
        parse_modprobe_text(&mut cfg, path, &String::from_utf8_lossy(&text), warn)?;
    }
    Ok(cfg)
}

pub fn parse_modprobe_text(
    cfg: &mut ModprobeConfig,
    path: &Path,
    text: &str,
    warn: &mut dyn FnMut(String),
) -> Result<()> {
    for (line, l) in logical_lines(text) {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let src = Source { path: path.to_path_buf(), line };
        let err = |msg: String| Error::Config { path: path.to_path_buf(), line, msg };
        // kmod logs a malformed or unknown line and goes on: so does parmod.
        let mut skip = |msg: &str| warn(format!("{src}: {msg}; line ignored (as kmod ignores it)"));
        let (cmd, rest) = split_word(l);
        // kmod ignores a line whose name (or alias pattern) has a `]`
        // without `[` or an unclosed `[`.
        if matches!(cmd, "alias" | "blacklist" | "options" | "softdep" | "install") {
            let (name, rest) = split_word(rest);
            let (target, _) = split_word(rest);
            let bad = if !brackets_balanced(name) {
                Some(name)
            } else if cmd == "alias" && !brackets_balanced(target) {
                Some(target)
            } else {
                None
            };
            if let Some(b) = bad {
                skip(&format!("'{b}' has a ']' without '[' or a '[' without ']'"));
                continue;
            }
        }
        match cmd {
            "alias" => {
                let (pattern, rest) = split_word(rest);
                let (target, _) = split_word(rest);
                if pattern.is_empty() || target.is_empty() {
                    skip("'alias' needs a pattern and a module name");
                    continue;
                }
                cfg.aliases.push((normalize_alias(pattern), canonical(target), src));
            }
            "blacklist" => {
                let (name, _) = split_word(rest);
                if name.is_empty() {
                    skip("'blacklist' needs a module name");
                    continue;
                }
                cfg.blacklist.insert(canonical(name));
            }
            "options" => {
                let (name, opts) = split_word(rest);
                if name.is_empty() || opts.is_empty() {
                    skip("'options' needs a module name and options");
                    continue;
                }
                cfg.options.push((normalize_alias(name), opts.replace('\t', " ")));
            }
            "softdep" => {
                let (name, rest) = split_word(rest);
                if name.is_empty() || rest.is_empty() {
                    skip("'softdep' needs a module name and dependencies");
                    continue;
                }
                let (mut pre, mut post) = (Vec::new(), Vec::new());
                // kmod: tokens before the first pre:/post: are ignored.
                let mut mode = 0u8;
                for tok in rest.split_ascii_whitespace() {
                    match tok {
                        "pre:" => mode = 1,
                        "post:" => mode = 2,
                        t if mode == 1 => pre.push(t.to_string()),
                        t if mode == 2 => post.push(t.to_string()),
                        _ => {}
                    }
                }
                cfg.softdeps.push(SoftDep { pattern: normalize_alias(name), pre, post, source: src });
            }
            "install" => {
                let (name, command) = split_word(rest);
                if name.is_empty() || command.is_empty() {
                    skip("'install' needs a module name and a command");
                    continue;
                }
                cfg.installs.push(Install { pattern: normalize_alias(name), command: command.to_string(), source: src });
            }
            "remove" => {}
            "include" | "config" => {
                warn(format!("{src}: '{cmd}' is deprecated and not parsed by kmod either; ignored"));
            }
            "weakdep" => {}
            "wait-for" => {
                let w = parse_wait(rest).map_err(|m| err(format!("wait-for: {m}")))?;
                let (path, after, timeout_ms) = w;
                cfg.waits.push(DeviceWaitDecl { path, after, timeout_ms, source: src });
            }
            "module-timeout" => {
                let (name, timeout_ms) = parse_module_timeout(rest).map_err(|m| err(format!("module-timeout: {m}")))?;
                cfg.module_timeouts.push(ModuleTimeoutDecl { name, timeout_ms, source: src });
            }
            other => skip(&format!(
                "unknown keyword '{other}' (expected alias, blacklist, options, softdep, weakdep, install, remove, wait-for or module-timeout)"
            )),
        }
    }
    Ok(())
}

/// The words after `module-timeout`: `NAME MS`.
fn parse_module_timeout(rest: &str) -> std::result::Result<(String, u32), String> {
    const USAGE: &str = "module-timeout NAME MS";
    let mut words = rest.split_ascii_whitespace();
    let name = words.next().ok_or(format!("needs a module name and milliseconds: {USAGE}"))?;
    let v = words.next().ok_or(format!("needs milliseconds after '{name}': {USAGE}"))?;
    if let Some(extra) = words.next() {
        return Err(format!("unexpected '{extra}' after the milliseconds: {USAGE}"));
    }
    if name.contains(['*', '?', '[']) {
        return Err(format!("'{name}' is a glob; module-timeout takes one module name"));
    }
    let ms: u32 = v.parse().map_err(|_| format!("'{v}' is not a number of milliseconds (1 to 4294967295)"))?;
    if ms == 0 {
        return Err("0 ms: give a number of milliseconds from 1 to 4294967295 (a module that may take \
                    very long gets a large one; --deadline still bounds the run)"
            .into());
    }
    Ok((canonical(name), ms))
}

/// Check a `wait-for` path; the message says what is wrong.
pub fn check_wait_path(path: &str) -> std::result::Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path '{path}' is not absolute (it must start with /dev/ or /sys/)"));
    }
    if !(path.starts_with("/dev/") || path.starts_with("/sys/")) {
        return Err(format!("path '{path}' is not under /dev or /sys"));
    }
    // What the plan reader accepts (plan::reader::is_wait_path).
    if !crate::plan::is_safe_relative_path(&path.as_bytes()[5..]) {
        return Err(format!("path '{path}' has an empty, '.' or '..' component (or names /dev or /sys itself)"));
    }
    let globs = path.split('/').filter(|c| c.contains(['*', '?', '['])).count();
    if globs > 1 {
        return Err(format!(
            "path '{path}' has glob characters (*, ? or [) in {globs} components; at most one component may be a glob"
        ));
    }
    Ok(())
}

/// The words after `wait-for`: `PATH [after MODULE] [timeout MS]` (the two
/// clauses in either order, each at most once).
fn parse_wait(rest: &str) -> std::result::Result<(String, Option<String>, u32), String> {
    let mut words = rest.split_ascii_whitespace();
    let path = words.next().ok_or("needs a path: wait-for PATH [after MODULE] [timeout MS]")?;
    check_wait_path(path)?;
    let (mut after, mut timeout) = (None, None);
    while let Some(w) = words.next() {
        match w {
            "after" => {
                let m = words.next().ok_or("'after' needs a module name")?;
                if after.replace(canonical(m)).is_some() {
                    return Err("'after' given twice".into());
                }
            }
            "timeout" => {
                let v = words.next().ok_or("'timeout' needs a number of milliseconds")?;
                let ms = v
                    .parse::<u32>()
                    .map_err(|_| format!("timeout '{v}' is not a number of milliseconds (0 to 4294967295)"))?;
                if timeout.replace(ms).is_some() {
                    return Err("'timeout' given twice".into());
                }
            }
            other => {
                return Err(format!("unexpected '{other}' (expected 'after MODULE' or 'timeout MS')"));
            }
        }
    }
    Ok((path.to_string(), after, timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT_MS)))
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// Module names from modules-load.d files: one per line, `#` and `;` start
/// comment lines. Returns (name, source) pairs.
pub fn parse_modules_load(files: &[PathBuf]) -> Result<Vec<(String, Source)>> {
    let mut out = Vec::new();
    for path in files {
        out.extend(parse_modules_load_text(path, &read(path)?));
    }
    Ok(out)
}

/// The module names of one modules-load.d file's contents `text`, read
/// from `path` (for the sources).
pub fn parse_modules_load_text(path: &Path, text: &[u8]) -> Vec<(String, Source)> {
    let mut out = Vec::new();
    for (n, l) in String::from_utf8_lossy(text).lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        out.push((l.to_string(), Source { path: path.to_path_buf(), line: n + 1 }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn softdep_tokens_before_pre_are_ignored() {
        let mut cfg = ModprobeConfig::default();
        let mut w = vec![];
        let text = "softdep cifs gcm\nsoftdep x-y a pre: b c post: d\noptions m a=1\\\n b=\"x y\"\n";
        parse_modprobe_text(&mut cfg, Path::new("t.conf"), text, &mut |s| w.push(s)).unwrap();
        assert!(cfg.softdeps[0].pre.is_empty() && cfg.softdeps[0].post.is_empty());
        assert_eq!(cfg.softdeps[1].pattern, "x_y");
        assert_eq!(cfg.softdeps[1].pre, vec!["b", "c"]);
        assert_eq!(cfg.softdeps[1].post, vec!["d"]);
        assert_eq!(cfg.options_for("m"), "a=1 b=\"x y\"");
        assert!(w.is_empty());
    }

    fn parse(text: &str) -> (ModprobeConfig, Vec<String>) {
        let mut cfg = ModprobeConfig::default();
        let mut w = vec![];
        parse_modprobe_text(&mut cfg, Path::new("t.conf"), text, &mut |s| w.push(s)).unwrap();
        (cfg, w)
    }

    #[test]
    fn backslashes_escape_as_in_kmod() {
        // freadline_wrapped: `\` + newline joins, `\` + anything else is that character.
        let (cfg, _) = parse("options m a=x\\y b=\\\\ c=\\\"q\\\"\noptions n v=1\\\r\n w=2\r\n");
        assert_eq!(cfg.options_for("m"), "a=xy b=\\ c=\"q\"");
        assert_eq!(cfg.options_for("n"), "v=1 w=2", "a CRLF line end continues too");
        let (cfg, _) = parse("options m a=1\\");
        assert_eq!(cfg.options_for("m"), "a=1", "a backslash at the end of the file");
    }

    #[test]
    fn a_nul_ends_the_line_as_in_kmod() {
        // Found by the config fuzz target: the NUL reached the plan writer,
        // which refused the plan without naming the configuration line.
        let (cfg, _) = parse("options g debug=probe\0 --ignore\\\nmore\nblacklist \0x\noptions h y=1\n");
        assert_eq!(cfg.options_for("g"), "debug=probe");
        assert_eq!(cfg.options_for("h"), "y=1");
        assert!(cfg.blacklist.is_empty());
    }

    #[test]
    fn unbalanced_brackets_are_ignored_as_in_kmod() {
        let (cfg, w) = parse("alias a]b m\nalias pci:v[0-9 m\nalias x n[o\nblacklist q]\noptions r[ s=1\nalias ok[-] m-x\n");
        assert_eq!(cfg.aliases.len(), 1);
        assert_eq!(cfg.aliases[0].0, "ok[-]");
        assert!(cfg.blacklist.is_empty() && cfg.options.is_empty());
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[0].starts_with("t.conf:1: 'a]b' has a ']' without '['"), "{}", w[0]);
    }
}
