//! modprobe.d (and parmod.d) and modules-load.d: a configuration the parser
//! accepts is compiled against the [`crate::tree`] kernel, the plan written,
//! read back and shown as JSON (`parmod-plan show --json`), and what the
//! plan says is compared with what the configuration said.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use parmod::compiler::config::{self, ModprobeConfig};
use parmod::compiler::kmod::{canonical, normalize_alias, DepPaths, KmodIndex};
use parmod::compiler::{compile_requests, BuildOptions, Inputs, Options, Request};
use parmod::plan::{glob_match, Plan};
use serde_json::Value;

use crate::cmdline::underscores;
use crate::tree;

/// The tree's index, loaded once (its configuration is replaced per input).
static INPUTS: Mutex<Option<Inputs>> = Mutex::new(None);

fn with_inputs<R>(f: impl FnOnce(&mut Inputs) -> R) -> R {
    let mut g = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
    let inputs = g.get_or_insert_with(|| {
        let root = tree::root().clone();
        let dir = root.join("lib/modules").join(tree::KVER);
        let index = KmodIndex::load(&dir, &DepPaths::new(&root, tree::KVER)).expect("the tree's index loads");
        Inputs { kver: tree::KVER.into(), root, dir, index, config: ModprobeConfig::default() }
    });
    f(inputs)
}

fn is_tree_module(name: &str) -> bool {
    tree::NAMES.contains(&name)
}

/// Parse `modprobe_d` (one modprobe.d or parmod.d file) and `modules_load`
/// (one modules-load.d file), compile them, and check the round trip.
pub fn round_trip(modprobe_d: &[u8], modules_load: &[u8]) {
    let conf = Path::new("/etc/parmod.d/fuzz.conf");
    let mut cfg = ModprobeConfig::default();
    let mut warnings: Vec<String> = Vec::new();
    let text = String::from_utf8_lossy(modprobe_d);
    if let Err(e) = config::parse_modprobe_text(&mut cfg, conf, &text, &mut |w| warnings.push(w)) {
        let msg = e.to_string();
        assert!(msg.starts_with("/etc/parmod.d/fuzz.conf:"), "a config error must name file and line: {msg}");
        return;
    }
    for w in &warnings {
        assert!(w.starts_with("/etc/parmod.d/fuzz.conf:"), "a warning must name file and line: {w}");
    }
    check_against_kmod(modprobe_d, &cfg);

    let load = Path::new("/etc/modules-load.d/fuzz.conf");
    let names = config::parse_modules_load_text(load, modules_load);
    let expect_names: Vec<String> = String::from_utf8_lossy(modules_load)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .map(str::to_string)
        .collect();
    assert_eq!(names.iter().map(|n| n.0.clone()).collect::<Vec<_>>(), expect_names, "modules-load.d names");

    let mut requests: Vec<Request> = names.into_iter().map(|(name, src)| Request { name, source: Some(src), on_request: false }).collect();
    requests.extend(tree::NAMES.iter().map(|n| Request { name: n.to_string(), source: None, on_request: false }));
    let opts = Options {
        root: tree::root().clone(),
        kver: Some(tree::KVER.into()),
        build: BuildOptions { skip_missing: true, ..BuildOptions::default() },
        firmware_check: false,
        ..Options::default()
    };
    let compiled = with_inputs(|inputs| {
        inputs.config = cfg.clone();
        compile_requests(&opts, inputs, &requests, &mut |w| warnings.push(w))
    });
    let builder = match compiled {
        Ok(b) => b,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "a compile error without a message");
            return;
        }
    };
    let bytes = builder.build().unwrap_or_else(|e| panic!("the compiler made a plan the writer refuses: {e}"));
    let plan = Plan::parse(&bytes).unwrap_or_else(|e| panic!("the writer made a plan the reader refuses: {e}"));
    crate::plan::check_plan(&plan);
    let _ = parmod::compiler::show::text(&plan);
    let shown = parmod::compiler::show::json(&plan);
    check_shown(&cfg, &warnings, &shown);
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// What `show --json` says against what the configuration said, for the
/// tree's modules (all requested by name).
fn check_shown(cfg: &ModprobeConfig, warnings: &[String], shown: &Value) {
    let modules = shown["modules"].as_array().expect("modules");
    let module = |name: &str| modules.iter().find(|m| m["name"] == name);
    // Option lines whose name is not one of the tree's modules, or is one
    // that a modprobe.d alias takes over (kmod looks up those first), may
    // name an alias a module was reached through: then a module has more
    // options than its own lines give.
    let only_module_keys = cfg
        .options
        .iter()
        .all(|(k, _)| is_tree_module(k) && !cfg.aliases.iter().any(|(p, _, _)| glob_match(p.as_bytes(), k.as_bytes())));
    // A soft dependency that would close a cycle is dropped (with a warning).
    let dropped = warnings.iter().any(|w| w.contains("would close a dependency cycle"));
    for &name in tree::NAMES {
        // A name a modprobe.d alias matches is looked up through the alias
        // (kmod's order), which may lead elsewhere.
        let aliased = cfg.aliases.iter().any(|(p, _, _)| glob_match(p.as_bytes(), name.as_bytes()));
        let Some(m) = module(name) else {
            assert!(aliased, "module {name} was requested but is not in the plan");
            continue;
        };
        if !aliased {
            assert_eq!(m["requested"], true, "module {name}: requested by name");
        }
        assert_eq!(m["blacklisted"], cfg.blacklist.contains(name), "module {name}: blacklisted");
        // The last module-timeout line for it, or none (0).
        let timeout = cfg.module_timeouts.iter().rev().find(|t| t.name == name).map_or(0, |t| t.timeout_ms);
        assert_eq!(m["timeout_ms"], timeout, "module {name}: module-timeout");
        let own: Vec<&str> = cfg.options.iter().filter(|(k, _)| k == name).map(|(_, o)| o.as_str()).collect();
        let params = m["params"].as_str().expect("params");
        if only_module_keys {
            assert_eq!(params, own.join(" "), "module {name}: options");
        } else {
            let mut rest = params;
            for o in &own {
                let at = rest.find(o).unwrap_or_else(|| panic!("module {name}: options {o:?} missing from {params:?}"));
                rest = &rest[at + o.len()..];
            }
        }
        let pre = strs(&m["softdeps_pre"]);
        let post = strs(&m["softdeps_post"]);
        let disabled = m["disabled"] == true;
        match cfg.install_for(name) {
            Some(i) if i.noop().is_some() && pre.is_empty() && post.is_empty() && !dropped => {
                assert!(disabled, "module {name}: {} disables it", i.source)
            }
            Some(_) => {}
            None => assert!(!disabled, "module {name}: disabled without an install line"),
        }
        if let Some(sd) = cfg.softdep_for(name) {
            for (kind, tokens, listed) in [("pre", &sd.pre, &pre), ("post", &sd.post, &post)] {
                for t in tokens {
                    let t = canonical(t);
                    // A token a modprobe.d alias matches resolves through it.
                    let aliased = cfg.aliases.iter().any(|(p, _, _)| glob_match(p.as_bytes(), normalize_alias(&t).as_bytes()));
                    if is_tree_module(&t) && t != name && !aliased && !dropped {
                        assert!(listed.contains(&t), "module {name}: softdep {kind} {t} ({}) missing: {listed:?}", sd.source);
                    }
                }
            }
        } else {
            assert!(pre.is_empty() && post.is_empty(), "module {name}: soft dependencies without a softdep line");
        }
    }

    // modprobe.d aliases of the tree's modules in the plan, in order.
    let count = shown["config_alias_count"].as_u64().expect("config_alias_count") as usize;
    let aliases = shown["aliases"].as_array().expect("aliases");
    let said: Vec<(String, String)> = cfg
        .aliases
        .iter()
        .filter(|(_, t, _)| is_tree_module(t) && module(t).is_some())
        .map(|(p, t, _)| (p.clone(), t.clone()))
        .collect();
    let planned: Vec<(String, String)> = aliases[..count]
        .iter()
        .map(|a| (a["pattern"].as_str().unwrap_or("").to_string(), a["module"].as_str().unwrap_or("").to_string()))
        .filter(|(_, t)| is_tree_module(t))
        .collect();
    assert_eq!(planned, said, "modprobe.d aliases");
    // wait-for lines.
    let said: BTreeSet<(String, Option<String>, u64)> =
        cfg.waits.iter().map(|w| (w.path.clone(), w.after.clone(), w.timeout_ms as u64)).collect();
    let planned: BTreeSet<(String, Option<String>, u64)> = shown["waits"]
        .as_array()
        .expect("waits")
        .iter()
        .map(|w| {
            (
                w["path"].as_str().unwrap_or("").to_string(),
                w["after"].as_str().map(str::to_string),
                w["timeout_ms"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    assert_eq!(planned, said, "wait-for lines");
    assert_eq!(shown["waits"].as_array().map(Vec::len), Some(cfg.waits.len()), "wait-for lines, counted");
}

/// What kmod 30 takes from one modprobe.d file (`kmod_config_parse()` over
/// `freadline_wrapped()` lines, libkmod/libkmod-config.c), read the way its
/// C does it: strtok on blanks, `underscores()` on names, the rest of the
/// line for options, commands and soft dependencies.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KmodConfig {
    pub aliases: Vec<(Vec<u8>, Vec<u8>)>,
    pub blacklist: Vec<Vec<u8>>,
    pub options: Vec<(Vec<u8>, Vec<u8>)>,
    pub installs: Vec<(Vec<u8>, Vec<u8>)>,
    /// (name, pre, post, whether the dependencies followed the name after
    /// more than one blank: kmod's tokenizer then misreads the first word).
    pub softdeps: Vec<(Vec<u8>, Vec<Vec<u8>>, Vec<Vec<u8>>, bool)>,
}

/// `freadline_wrapped()`: lines of the file, `\` + newline joined, `\` +
/// another byte that byte; a line is its bytes up to the first NUL.
fn kmod_lines(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\n' => out.push(std::mem::take(&mut cur)),
            b'\\' => {
                i += 1;
                match text.get(i) {
                    Some(b'\n') => {}
                    Some(&c) => cur.push(c),
                    // getc's EOF stored as a char.
                    None => cur.push(0xff),
                }
            }
            c => cur.push(c),
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    for l in &mut out {
        if let Some(nul) = l.iter().position(|&c| c == 0) {
            l.truncate(nul);
        }
    }
    out
}

/// strtok_r over `s` from `*at` with the delimiters " \t" (`rest`: the
/// empty delimiter set, the remainder of the line).
fn strtok(s: &[u8], at: &mut usize, rest: bool) -> Option<Vec<u8>> {
    let delim = |c: u8| !rest && (c == b' ' || c == b'\t');
    while *at < s.len() && delim(s[*at]) {
        *at += 1;
    }
    if *at >= s.len() {
        return None;
    }
    let start = *at;
    while *at < s.len() && !delim(s[*at]) {
        *at += 1;
    }
    let tok = s[start..*at].to_vec();
    if *at < s.len() {
        *at += 1;
    }
    Some(tok)
}

/// `kmod_config_add_softdep()`'s reading of the words after the name.
fn kmod_softdep(line: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let (mut pre, mut post) = (Vec::new(), Vec::new());
    let mut mode = 0;
    let (mut p, mut was_space) = (0usize, false);
    let mut s = 0usize;
    loop {
        let end = s >= line.len();
        if !end {
            if !space(line[s]) {
                was_space = false;
                s += 1;
                continue;
            }
            if was_space {
                p = s + 1;
                s += 1;
                continue;
            }
            was_space = true;
            if p >= s {
                s += 1;
                continue;
            }
        }
        let word = &line[p.min(s)..s];
        if word == b"pre:" {
            mode = 1;
        } else if word == b"post:" {
            mode = 2;
        } else if !end || !was_space {
            match mode {
                1 => pre.push(word.to_vec()),
                2 => post.push(word.to_vec()),
                _ => {}
            }
        }
        p = s + 1;
        if end {
            break;
        }
        s += 1;
    }
    (pre, post)
}

pub fn kmod_config(text: &[u8]) -> KmodConfig {
    let mut k = KmodConfig::default();
    for line in kmod_lines(text) {
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let mut at = 0;
        let Some(cmd) = strtok(&line, &mut at, false) else { continue };
        let word = |at: &mut usize| strtok(&line, at, false);
        match &cmd[..] {
            b"alias" => {
                let (a, m) = (word(&mut at), word(&mut at));
                if let (Some(a), Some(m)) = (a.as_deref().and_then(underscores), m.as_deref().and_then(underscores)) {
                    k.aliases.push((a, m));
                }
            }
            b"blacklist" => {
                if let Some(m) = word(&mut at).as_deref().and_then(underscores) {
                    k.blacklist.push(m);
                }
            }
            b"options" | b"install" | b"softdep" => {
                let m = word(&mut at).as_deref().and_then(underscores);
                let r = strtok(&line, &mut at, true);
                if let (Some(m), Some(r)) = (m, r) {
                    match &cmd[..] {
                        b"options" => k.options.push((m, r.iter().map(|&c| if c == b'\t' { b' ' } else { c }).collect())),
                        b"install" => k.installs.push((m, r)),
                        _ => {
                            let (pre, post) = kmod_softdep(&r);
                            let misread = r.first().is_some_and(|&c| c == b' ' || c == b'\t');
                            // Only blanks after the name: kmod keeps a softdep with
                            // nothing in it, parmod warns and ignores the line.
                            if r.iter().any(|&c| c != b' ' && c != b'\t') {
                                k.softdeps.push((m, pre, post, misread));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    k
}

/// parmod's reading of a modprobe.d file against kmod's. Compared where
/// both read plain ASCII without CR, VT or FF and the file does not end in
/// a backslash (parmod drops the `\r` of CRLF
/// line ends and trims blanks at the ends of lines, kmod does neither), and
/// with the option and command texts trimmed (the kernel splits parameters
/// at blanks anyway). Soft dependencies that kmod misreads (dependencies
/// after two or more blanks: its tokenizer then keeps a blank in the first
/// word) are not compared.
pub fn check_against_kmod(text: &[u8], cfg: &ModprobeConfig) {
    if !text.iter().all(|&c| c == b'\n' || c == b'\t' || c == 0 || (0x20..0x7f).contains(&c)) {
        return;
    }
    // kmod stores getc's EOF after a backslash that ends the file (a 0xff
    // byte); parmod drops that backslash.
    if text.ends_with(b"\\") {
        return;
    }
    let k = kmod_config(text);
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let trim = |b: &[u8]| s(b).trim_matches([' ', '\t']).to_string();
    let ours: Vec<(String, String)> = cfg.aliases.iter().map(|(p, t, _)| (p.clone(), t.clone())).collect();
    // parmod makes a module name canonical everywhere; kmod keeps a `-`
    // between brackets, which no module name has.
    let theirs: Vec<(String, String)> = k.aliases.iter().map(|(p, t)| (s(p), canonical(&s(t)))).collect();
    assert_eq!(ours, theirs, "modprobe.d aliases (kmod's reading)");
    let mut theirs: Vec<String> = k.blacklist.iter().map(|b| canonical(&s(b))).collect();
    theirs.sort();
    theirs.dedup();
    let mut ours: Vec<String> = cfg.blacklist.iter().cloned().collect();
    ours.sort();
    assert_eq!(ours, theirs, "blacklist (kmod's reading)");
    let ours: Vec<(String, String)> = cfg.options.iter().map(|(n, o)| (n.clone(), trim(o.as_bytes()))).collect();
    // A line whose options (or command) are only blanks: kmod keeps the
    // blanks, parmod warns and ignores the line; no module gets anything.
    let theirs: Vec<(String, String)> = k.options.iter().map(|(n, o)| (s(n), trim(o))).filter(|o| !o.1.is_empty()).collect();
    assert_eq!(ours, theirs, "options (kmod's reading)");
    let ours: Vec<(String, String)> = cfg.installs.iter().map(|i| (i.pattern.clone(), trim(i.command.as_bytes()))).collect();
    let theirs: Vec<(String, String)> = k.installs.iter().map(|(n, c)| (s(n), trim(c))).filter(|c| !c.1.is_empty()).collect();
    assert_eq!(ours, theirs, "install lines (kmod's reading)");
    assert_eq!(cfg.softdeps.len(), k.softdeps.len(), "softdep lines (kmod's reading)");
    for (o, (name, pre, post, misread)) in cfg.softdeps.iter().zip(&k.softdeps) {
        assert_eq!(o.pattern, s(name), "softdep name (kmod's reading)");
        if !misread {
            let v = |l: &[Vec<u8>]| l.iter().map(|x| s(x)).collect::<Vec<_>>();
            assert_eq!((o.pre.clone(), o.post.clone()), (v(pre), v(post)), "softdep {} (kmod's reading)", o.pattern);
        }
    }
}
