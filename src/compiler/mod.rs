//! The plan compiler (host): turns `lib/modules/$KVER` (modules.dep,
//! modules.alias, modules.softdep, modules.builtin), modprobe.d and
//! modules-load.d into a binary load plan.
//!
//! * [`kmod`]: the index files; [`config`]: modprobe.d and modules-load.d;
//! * [`graph`]: name resolution, closure, cycles, priorities, load order;
//! * [`show`]: printing plans and traces; [`cli`]: the `parmod-plan` tool.
//!
//! kmod behaviour followed (read in kmod's libkmod/libkmod-module.c,
//! libkmod/libkmod-config.c and tools/modprobe.c, and checked against
//! kmod 30's `modprobe --show-depends` on Debian 12; tests/kmod_compat.rs):
//! * lookup order (kmod_module_new_from_lookup, see [`graph::lookup`]):
//!   modprobe.d aliases, module names in modules.dep, `symbol:` names in
//!   modules.symbols, names of `install` lines, modules.alias, then
//!   built-ins; all modules an alias matches are loaded; a modprobe.d alias
//!   naming no module stops the lookup and loads nothing;
//! * `options ALIAS ...` apply to the module a request reached through ALIAS;
//! * `install NAME CMD` with a no-op command disables NAME (in the plan with
//!   [`module_flags::DISABLED`]; its dependencies still load, as kmod loads
//!   them before running the command); other commands are refused unless
//!   `--ignore-install`;
//! * the probe list of a module X is [pre softdeps, hard deps, X, post
//!   softdeps] and a failure stops the rest of it: post softdeps pulled in
//!   only for X carry [`module_flags::POST_ONLY`] and wait for X with
//!   [`crate::plan::EDGE_POST`] edges, so that the runtime can skip them when
//!   X fails. A failing *pre* softdep does not stop X: kmod ignores the
//!   errors of soft dependencies (`!m->required`), as parmod's soft edges do;
//! * blacklist: modprobe always passes KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY,
//!   and kmod_module_probe_insert_module checks it only for the module asked
//!   for when that module was found through an alias (`mod->alias != NULL`);
//!   its dependencies and soft dependencies are never filtered (that needs
//!   `modprobe -b`). So: a blacklisted module is skipped when a requested name
//!   reaches it through an alias, and loaded when named or depended on. (Note
//!   that systemd-modules-load passes KMOD_PROBE_APPLY_BLACKLIST, which also
//!   skips blacklisted modules named in modules-load.d; parmod follows modprobe.)
//! * softdep parsing and matching: see [`config`].
//!
//! Weights: without a measurement a module is expected to take
//! `200 + file_size / 8` µs to load: a first guess calibrated on a TCG
//! (QEMU without KVM) boot of the Debian 6.1 kernel, where load time grows
//! roughly with module size. Built-in modules weigh 0. With a trace of a
//! real boot (`compile --profile TRACE --profile-plan PLAN`, see [`profile`])
//! measured load times replace the estimate.
//!
//! Device readiness: `wait-for` statements (see [`config`] and
//! docs/config.md) become the plan's device-wait records.

pub mod cli;
pub mod config;
pub mod cost;
pub mod decompress;
pub mod elf;
pub mod error;
pub mod graph;
pub mod kmod;
pub mod modinfo;
pub mod profile;
pub mod show;

use std::format;
use std::path::{Path, PathBuf};
use std::prelude::rust_2021::*;

pub use error::{Error, Result};

use crate::plan::{module_flags, ModuleSpec, PlanBuilder, NONE};
pub use graph::{BuildOptions, Request};
use graph::{Graph, Target};

/// Default per-module timeout stored in the plan header (ms).
pub const DEFAULT_MODULE_TIMEOUT_MS: u32 = 10_000;
/// Default overall deadline stored in the plan header (ms).
pub const DEFAULT_DEADLINE_MS: u32 = 60_000;

/// modprobe.d directories under the root, highest precedence first (kmod's
/// list, plus usr/lib for merged-/usr systems).
pub const MODPROBE_DIRS: &[&str] =
    &["etc/modprobe.d", "run/modprobe.d", "usr/local/lib/modprobe.d", "lib/modprobe.d", "usr/lib/modprobe.d"];
/// parmod's own configuration directories under the root, highest
/// precedence first: modprobe.d syntax plus `wait-for`, read after modprobe.d
/// (so real modprobe.d files need not hold parmod-only statements).
pub const PARMOD_DIRS: &[&str] = &["etc/parmod.d", "lib/parmod.d"];
/// modules-load.d directories under the root, highest precedence first (systemd's list).
pub const MODULES_LOAD_DIRS: &[&str] =
    &["etc/modules-load.d", "run/modules-load.d", "usr/local/lib/modules-load.d", "usr/lib/modules-load.d", "lib/modules-load.d"];

/// What to compile.
#[derive(Clone, Debug)]
pub struct Options {
    pub root: PathBuf,
    pub kver: Option<String>,
    /// modprobe.d files or directories; empty: the root's default modprobe.d
    /// directories, then its parmod.d directories ([`PARMOD_DIRS`]).
    pub configs: Vec<PathBuf>,
    /// modules-load.d files or directories. When empty and `names` is empty
    /// too, the root's modules-load.d directories are read.
    pub modules_load: Vec<PathBuf>,
    pub names: Vec<String>,
    /// Names planned with what they need but loaded only when asked for:
    /// modules the kernel requests by itself (request_module(), e.g. the
    /// crypto manager's `crypto-stdrng` for a self-test) while the plan
    /// runs. A run of the whole plan leaves them out; the modprobe
    /// personality finds them.
    pub on_request: Vec<String>,
    pub jobs: u32,
    pub module_timeout_ms: u32,
    pub deadline_ms: u32,
    /// Measured load times replacing the size estimates (see [`profile`]).
    pub profile: Option<profile::Profile>,
    /// Decompress the plan's compressed module files into this directory and
    /// plan the uncompressed paths (see [`decompress`]).
    pub decompress: Option<PathBuf>,
    /// `install` lines and unknown names (see [`BuildOptions`]).
    pub build: BuildOptions,
    /// Warn about `firmware=` files of the planned modules that are missing
    /// under `ROOT/lib/firmware` (see [`missing_firmware`]).
    pub firmware_check: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: PathBuf::from("/"),
            kver: None,
            configs: Vec::new(),
            modules_load: Vec::new(),
            names: Vec::new(),
            on_request: Vec::new(),
            jobs: 0,
            module_timeout_ms: DEFAULT_MODULE_TIMEOUT_MS,
            deadline_ms: DEFAULT_DEADLINE_MS,
            profile: None,
            decompress: None,
            build: BuildOptions::default(),
            firmware_check: true,
        }
    }
}

/// Expected load time of a module file of `size` bytes, in µs, when its
/// section headers cannot be read (else [`cost::Cost::estimate`]).
pub fn estimate_weight_us(size: u64) -> u32 {
    (200 + size / 8).min(u32::MAX as u64) as u32
}

/// The kernel's index files and the modprobe.d configuration, loaded once.
#[derive(Debug)]
pub struct Inputs {
    pub kver: String,
    /// The root (`--root`).
    pub root: PathBuf,
    /// `ROOT/lib/modules/KVER`.
    pub dir: PathBuf,
    pub index: kmod::KmodIndex,
    pub config: config::ModprobeConfig,
}

/// Find the kernel version and load its index files and the modprobe.d configuration.
pub fn load_inputs(opts: &Options, warn: &mut dyn FnMut(String)) -> Result<Inputs> {
    let modules_root = opts.root.join("lib/modules");
    let kver = match &opts.kver {
        Some(v) => v.clone(),
        None => kmod::default_kver(&modules_root)?,
    };
    if kver.is_empty() || kver.contains('/') || kver == "." || kver == ".." {
        return Err(Error::Usage(format!("--kver '{kver}' is not a kernel version")));
    }
    let dir = modules_root.join(&kver);
    if !kmod::is_kernel_dir(&dir) {
        return Err(Error::Other(format!(
            "{}/modules.dep not found (nor modules.builtin): no modules for kernel '{kver}' under {}; check --kver and --root, or run depmod",
            dir.display(),
            opts.root.display()
        )));
    }
    let index = kmod::KmodIndex::load(&dir, &kmod::DepPaths::new(&opts.root, &kver))?;
    let (config_paths, required) = if opts.configs.is_empty() {
        (MODPROBE_DIRS.iter().map(|d| opts.root.join(d)).collect::<Vec<_>>(), false)
    } else {
        (opts.configs.clone(), true)
    };
    // kmod reads `*.alias` files in modprobe.d too.
    let mut files = config::collect_files(&config_paths, required, &[".conf", ".alias"], &[dir.join("modules.softdep")])?;
    if opts.configs.is_empty() {
        let parmod_paths: Vec<PathBuf> = PARMOD_DIRS.iter().map(|d| opts.root.join(d)).collect();
        files.extend(config::collect_files(&parmod_paths, false, &[".conf"], &[])?);
    }
    let config = config::parse_modprobe(&files, warn)?;
    Ok(Inputs { kver, root: opts.root.clone(), dir, index, config })
}

/// The names to load: modules-load.d entries (see [`Options::modules_load`]),
/// then the names given.
pub fn requests(opts: &Options) -> Result<Vec<Request>> {
    let mut requests: Vec<Request> = Vec::new();
    let load_paths: Vec<PathBuf> = if !opts.modules_load.is_empty() {
        opts.modules_load.clone()
    } else if opts.names.is_empty() {
        MODULES_LOAD_DIRS.iter().map(|d| opts.root.join(d)).collect()
    } else {
        Vec::new()
    };
    if !load_paths.is_empty() {
        let files = config::collect_files(&load_paths, !opts.modules_load.is_empty(), &[".conf"], &[])?;
        for (name, src) in config::parse_modules_load(&files)? {
            requests.push(Request { name, source: Some(src), on_request: false });
        }
    }
    for n in &opts.names {
        requests.push(Request { name: n.clone(), source: None, on_request: false });
    }
    if opts.build.all && !opts.on_request.is_empty() {
        return Err(Error::Other(
            "--on-request with --all: a plan of every module loads what is asked for already; drop --on-request".into(),
        ));
    }
    for n in &opts.on_request {
        requests.push(Request { name: n.clone(), source: None, on_request: true });
    }
    Ok(requests)
}

/// Compile a plan. Warnings go to `warn` (one message each, no prefix).
pub fn compile(opts: &Options, warn: &mut dyn FnMut(String)) -> Result<PlanBuilder> {
    let inputs = load_inputs(opts, warn)?;
    let requests = requests(opts)?;
    compile_requests(opts, &inputs, &requests, warn)
}

/// Compile a plan for `requests` from already loaded inputs (only the header
/// fields, the profile, the decompress directory, the build options and the
/// firmware check of `opts` are used).
pub fn compile_requests(
    opts: &Options,
    inputs: &Inputs,
    requests: &[Request],
    warn: &mut dyn FnMut(String),
) -> Result<PlanBuilder> {
    let (idx, cfg, dir, kver) = (&inputs.index, &inputs.config, &inputs.dir, &inputs.kver);
    if requests.is_empty() && !opts.build.all {
        warn("no modules requested (no names, nothing in modules-load.d): the plan is empty".into());
    }

    let mut g = Graph::build(idx, cfg, requests, opts.build, warn)?;
    g.check_hard_cycles()?;
    // stat every module file to load (in parallel: on big plans this is most
    // of the system time) for its size and to catch a stale modules.dep.
    // Meanwhile, copy the modules.alias and modules.symbols patterns of the
    // modules in the plan (tens of thousands of strings for a whole kernel).
    // Disabled modules are never opened.
    // The module files given by path, out of the graph (which is changed
    // below while their paths are borrowed).
    let given = std::mem::take(&mut g.files);
    let entry = |t: &Target| match t {
        Target::Module(m) => idx.modules.get(*m as usize),
        Target::File(f) => given.get(*f as usize),
        Target::Builtin(_) | Target::Disabled(_) => None,
    };
    let mut files: Vec<(usize, &str)> = Vec::new();
    let mut root_files: Vec<(usize, &str)> = Vec::new();
    let mut in_plan = std::vec![false; idx.modules.len()];
    for (n, node) in g.nodes.iter().enumerate() {
        if let Target::Module(m) = node.target {
            in_plan[m as usize] = true;
        }
        if let Some(e) = entry(&node.target) {
            if node.disabled.is_some() {
                continue;
            }
            if e.root_path {
                root_files.push((n, e.path.as_str()));
            } else {
                files.push((n, e.path.as_str()));
            }
        }
    }
    if opts.decompress.is_some() {
        if let Some(&(n, p)) = root_files.iter().find(|f| crate::plan::Compression::from_path(f.1.as_bytes()) != Some(crate::plan::Compression::None)) {
            return Err(Error::Other(format!(
                "--decompress: module '{}' is {}, outside {} (depmod's external directory): decompress it there by hand, or move it under the module directory and run depmod",
                g.nodes[n].name,
                inputs.root.join(p).display(),
                dir.display()
            )));
        }
    }
    let (sizes, (alias_copies, symbol_copies)) = std::thread::scope(|s| {
        let stat = s.spawn(|| -> Result<Vec<(usize, Option<u64>)>> {
            let mut v = match &opts.decompress {
                Some(out) => decompress::decompress_all(dir, out, &files)?,
                None => stat_all(dir, &files),
            };
            v.extend(stat_all(&inputs.root, &root_files));
            Ok(v)
        });
        let copies = |t: &kmod::AliasTable| {
            let keep = |a: &&kmod::AliasEntry| a.module != NONE && in_plan[a.module as usize];
            let mut c: Vec<(String, u32)> = Vec::with_capacity(t.entries.iter().filter(keep).count());
            c.extend(t.entries.iter().filter(keep).map(|a| (t.pattern(a).to_string(), a.module)));
            c
        };
        let copied = (copies(&idx.aliases), copies(&idx.symbols));
        (stat.join().unwrap_or_else(|_| Ok(Vec::new())), copied)
    });
    let sizes = sizes?;
    if sizes.len() != files.len() + root_files.len() {
        return Err(Error::Other("internal error: a stat thread failed".into()));
    }
    for (n, size) in sizes {
        let node = &mut g.nodes[n];
        match size {
            Some(len) => node.file_size = len.min(u32::MAX as u64) as u32,
            None => {
                let path = match files.iter().find(|f| f.0 == n) {
                    Some(f) => dir.join(f.1),
                    None => root_files.iter().find(|f| f.0 == n).map(|f| inputs.root.join(f.1)).unwrap_or_default(),
                };
                return Err(Error::MissingFile { module: node.name.clone(), path });
            }
        }
    }
    // Each module file once: its section headers give the cost estimate
    // (see [`cost`]), its modinfo the firmware to check. With --decompress,
    // the decompressed copies (not decoded twice).
    let read_from = |p: &str| match &opts.decompress {
        Some(out) if decompress::plan_path(p) != p => out.join(decompress::plan_path(p)),
        _ => dir.join(p),
    };
    let targets: Vec<(usize, PathBuf)> = files
        .iter()
        .map(|&(n, p)| (n, read_from(p)))
        .chain(root_files.iter().map(|&(n, p)| (n, inputs.root.join(p))))
        .collect();
    let read = read_modules(&targets, opts.firmware_check);
    let mut costed: Vec<usize> = Vec::with_capacity(read.len());
    let mut costs: Vec<cost::Cost> = Vec::with_capacity(read.len());
    let mut firmware: Vec<(usize, Vec<String>)> = Vec::new();
    for (n, facts) in read {
        let c = match facts {
            Ok(f) => {
                if !f.firmware.is_empty() {
                    firmware.push((n, f.firmware));
                }
                cost::Cost::estimate(&f.features)
            }
            Err(e) => {
                // (Placeholder files in tests, damaged files: the size decides.)
                if opts.firmware_check {
                    warn(format!(
                        "cannot check the firmware of module '{}': {e}; the kernel will likely refuse this file too",
                        g.nodes[n].name
                    ));
                }
                cost::Cost::from_size(g.nodes[n].file_size as u64)
            }
        };
        costed.push(n);
        costs.push(c);
    }
    if let Some(p) = &opts.profile {
        let names: Vec<&str> = costed.iter().map(|&n| g.nodes[n].name.as_str()).collect();
        p.apply(&names, &mut costs);
    }
    for (&n, c) in costed.iter().zip(&costs) {
        g.nodes[n].weight_us = c.weight_us;
        g.nodes[n].serial_us = c.serial_us;
    }
    if opts.firmware_check {
        for (n, (missing, total)) in missing_firmware(&inputs.root, kver, &firmware) {
            warn(firmware_warning(&g.nodes[n].name, &inputs.root, &missing, total));
        }
    }
    g.add_soft_edges(warn);
    g.add_post_edges();
    let prio = g.priorities();
    let order = g.load_order(&prio);
    if order.len() != g.nodes.len() {
        return Err(Error::Other("internal error: dependency graph has a cycle after cycle checks".into()));
    }
    let mut pos = vec_usize(g.nodes.len());
    for (i, &n) in order.iter().enumerate() {
        pos[n] = i as u32;
    }

    let mut b = PlanBuilder {
        kernel_release: kver.clone(),
        jobs: opts.jobs,
        module_timeout_ms: opts.module_timeout_ms,
        deadline_ms: opts.deadline_ms,
        flags: if opts.build.all { crate::plan::plan_flags::ALL_MODULES } else { 0 },
        ..Default::default()
    };
    b.modules.reserve(order.len());
    for &n in &order {
        let node = &g.nodes[n];
        let mut flags = 0;
        for (set, bit) in [
            (node.requested, module_flags::REQUESTED),
            (!node.hard_reached, module_flags::SOFT_ONLY),
            (node.disabled.is_some(), module_flags::DISABLED),
            (node.blacklisted, module_flags::BLACKLISTED),
            (node.post_only, module_flags::POST_ONLY),
            (!node.in_run, module_flags::ON_REQUEST),
        ] {
            if set {
                flags |= bit;
            }
        }
        let path = match entry(&node.target) {
            Some(e) => {
                if e.root_path {
                    flags |= module_flags::ROOT_PATH;
                    Some(e.path.clone())
                } else if opts.decompress.is_some() && node.disabled.is_none() {
                    Some(decompress::plan_path(&e.path).to_string())
                } else {
                    Some(e.path.clone())
                }
            }
            None => None,
        };
        let params = cfg.options_for_any(&node.name, &node.aliases);
        let mut deps: Vec<(u32, bool)> = node.deps.iter().map(|&(d, h)| (pos[d], h)).collect();
        deps.sort_unstable();
        b.modules.push(ModuleSpec {
            name: node.name.clone(),
            path,
            params,
            flags,
            weight_us: node.weight_us,
            serial_us: node.serial_us,
            timeout_ms: module_timeout(&cfg.module_timeouts, &node.name),
            file_size: node.file_size,
            deps,
            post_deps: node.post_deps.iter().map(|&d| pos[d]).collect(),
            soft_pre: node.soft_pre.iter().map(|&d| pos[d]).collect(),
            soft_post: node.soft_post.iter().map(|&d| pos[d]).collect(),
        });
    }
    b.waits = resolve_waits(&cfg.waits, &g, &pos, idx)?;
    check_module_timeouts(&cfg.module_timeouts, idx)?;
    // Aliases of the modules in the plan, in kmod's lookup order: modprobe.d
    // first (counted in the header), then modules.symbols, modules.alias and
    // the built-ins' modinfo aliases.
    for (pat, target, _) in &cfg.aliases {
        let t = if let Some(&m) = idx.by_name.get(target) {
            Target::Module(m)
        } else if idx.builtin.contains(target) {
            Target::Builtin(target.clone())
        } else {
            Target::Disabled(target.clone())
        };
        if let Some(&n) = g.index.get(&t) {
            b.aliases.push((pat.clone(), pos[n]));
        }
    }
    b.config_alias_count = b.aliases.len() as u32;
    let mut plan_index = std::vec![NONE; idx.modules.len()];
    for (n, node) in g.nodes.iter().enumerate() {
        if let Target::Module(m) = node.target {
            plan_index[m as usize] = pos[n];
        }
    }
    for mut copies in [symbol_copies, alias_copies] {
        for a in &mut copies {
            a.1 = plan_index[a.1 as usize];
        }
        b.aliases.append(&mut copies);
    }
    for (pat, name) in &idx.builtin_aliases {
        if let Some(&n) = g.index.get(&Target::Builtin(name.clone())) {
            b.aliases.push((pat.clone(), pos[n]));
        }
    }
    Ok(b)
}

/// Firmware search directories under the root, as the kernel's firmware
/// loader tries them (drivers/base/firmware_loader/main.c, fw_path), and the
/// suffixes of compressed firmware (CONFIG_FW_LOADER_COMPRESS).
fn firmware_dirs(root: &Path, kver: &str) -> Vec<PathBuf> {
    ["lib/firmware/updates/KVER", "lib/firmware/updates", "lib/firmware/KVER", "lib/firmware"]
        .iter()
        .map(|d| root.join(d.replace("KVER", kver)))
        .collect()
}
const FIRMWARE_SUFFIXES: [&str; 3] = ["", ".xz", ".zst"];

/// What the compiler reads from one module file.
#[derive(Debug, Default)]
pub struct ModuleFacts {
    /// For the cost estimate.
    pub features: cost::Features,
    /// Its modinfo's `firmware=` entries (read only when asked for).
    pub firmware: Vec<String>,
}

/// Read each module file of `modules` ((node, path) pairs): its section
/// headers, and with `firmware` its modinfo's `firmware=` names; in input
/// order. A few threads read the files (the compressed ones are decoded
/// whole).
pub fn read_modules(modules: &[(usize, PathBuf)], firmware: bool) -> Vec<(usize, Result<ModuleFacts>)> {
    let one = |(n, path): &(usize, PathBuf)| -> (usize, Result<ModuleFacts>) {
        let facts = elf::Elf::open(path).and_then(|e| {
            let firmware = if firmware { modinfo::of(&e, "firmware")? } else { Vec::new() };
            Ok(ModuleFacts { features: cost::Features::of(&e), firmware })
        });
        (*n, facts)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if modules.len() < 64 || threads < 2 {
        return modules.iter().map(one).collect();
    }
    let chunk = modules.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = modules.chunks(chunk).map(|c| s.spawn(move || c.iter().map(one).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// Of the `firmware=` names of each module ((node, names) pairs), those that
/// exist under none of the firmware directories of `root`, plain or
/// compressed, for the modules that miss any, with the number of names, in
/// node order. Each name is looked up once, skipping directories that do
/// not exist (a whole kernel names thousands of firmware files).
pub fn missing_firmware(root: &Path, kver: &str, modules: &[(usize, Vec<String>)]) -> Vec<(usize, (Vec<String>, usize))> {
    let dirs: Vec<PathBuf> = firmware_dirs(root, kver).into_iter().filter(|d| d.is_dir()).collect();
    let mut dir_exists: std::collections::HashMap<PathBuf, bool> = std::collections::HashMap::new();
    let mut found: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    let mut exists = |name: &str| -> bool {
        if let Some(&f) = found.get(name) {
            return f;
        }
        let f = is_safe_firmware_name(name)
            && dirs.iter().any(|d| {
                let file = d.join(name);
                let parent = file.parent().map(Path::to_path_buf).unwrap_or_default();
                *dir_exists.entry(parent.clone()).or_insert_with(|| parent.is_dir())
                    && FIRMWARE_SUFFIXES.iter().any(|s| d.join(format!("{name}{s}")).exists())
            });
        found.insert(name.to_string(), f);
        f
    };
    let mut out: Vec<(usize, (Vec<String>, usize))> = Vec::new();
    for (n, names) in modules {
        let missing: Vec<String> = names.iter().filter(|f| !exists(f)).cloned().collect();
        if !missing.is_empty() {
            out.push((*n, (missing, names.len())));
        }
    }
    out.sort_by_key(|e| e.0);
    out
}

/// A firmware name the loader would look up: relative, no `..` (the kernel
/// refuses those too).
fn is_safe_firmware_name(name: &str) -> bool {
    crate::plan::is_safe_relative_path(name.as_bytes())
}

fn firmware_warning(module: &str, root: &Path, missing: &[String], total: usize) -> String {
    const SHOWN: usize = 5;
    let mut list = missing.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if missing.len() > SHOWN {
        list.push_str(&format!(", and {} more", missing.len() - SHOWN));
    }
    format!(
        "module '{module}' names firmware that is not under {} (plain, .xz or .zst): {list} ({} of its {total} firmware files); where the device needs one of them the module fails at boot, with no retry: install the firmware into the image",
        root.join("lib/firmware").display(),
        missing.len()
    )
}

/// Turn the `wait-for` statements into the plan's waits: `after MODULE` must
/// name a module of the plan (a requested module or one pulled in).
/// The `module-timeout` for `name` (0: none, the runtime derives one); the
/// last statement for a name wins, as a later file overrides an earlier one.
fn module_timeout(decls: &[config::ModuleTimeoutDecl], name: &str) -> u32 {
    decls.iter().rev().find(|d| d.name == name).map_or(0, |d| d.timeout_ms)
}

/// `module-timeout` statements must name modules of this kernel (a statement
/// for a module the plan does not load is kept for plans that do).
fn check_module_timeouts(decls: &[config::ModuleTimeoutDecl], idx: &kmod::KmodIndex) -> Result<()> {
    match decls.iter().find(|d| !idx.knows(&d.name)) {
        None => Ok(()),
        Some(d) => Err(Error::Config {
            path: d.source.path.clone(),
            line: d.source.line,
            msg: format!(
                "module-timeout {} {}: no such module in this kernel's modules.dep or modules.builtin \
                 (module-timeout takes a module name, not an alias)",
                d.name, d.timeout_ms
            ),
        }),
    }
}

fn resolve_waits(
    decls: &[config::DeviceWaitDecl],
    g: &Graph,
    pos: &[u32],
    idx: &kmod::KmodIndex,
) -> Result<Vec<crate::plan::DeviceWaitSpec>> {
    let mut out = Vec::with_capacity(decls.len());
    for w in decls {
        let module = match &w.after {
            None => None,
            Some(name) => match g.nodes.iter().position(|n| n.name == *name) {
                Some(n) => Some(pos[n]),
                None => {
                    let why = if idx.knows(name) {
                        "it is neither requested nor a dependency of a requested module"
                    } else {
                        "no such module (wait-for takes a module name, not an alias)"
                    };
                    return Err(Error::Config {
                        path: w.source.path.clone(),
                        line: w.source.line,
                        msg: format!("wait-for {} after '{name}': module '{name}' is not in the plan: {why}", w.path),
                    });
                }
            },
        };
        out.push(crate::plan::DeviceWaitSpec { path: w.path.clone(), module, timeout_ms: w.timeout_ms });
    }
    Ok(out)
}

/// Sizes of regular files (None: missing or not a regular file), in input
/// order. Paths are relative to `dir` and looked up from a directory fd
/// (shorter path walks), in a few threads: on big plans this is most of the
/// system time.
fn stat_all(dir: &Path, files: &[(usize, &str)]) -> Vec<(usize, Option<u64>)> {
    use rustix::fs::{open, statat, AtFlags, FileType, Mode, OFlags};
    use std::os::unix::ffi::OsStrExt;
    let Ok(dfd) = open(dir.as_os_str().as_bytes(), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
        return files.iter().map(|(n, _)| (*n, None)).collect();
    };
    let dfd = &dfd;
    let one = move |&(n, p): &(usize, &str)| {
        let st = statat(dfd, p, AtFlags::empty()).ok();
        (n, st.filter(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).map(|st| st.st_size as u64))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if files.len() < 256 || threads < 2 {
        return files.iter().map(one).collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> =
            files.chunks(chunk).map(|c| s.spawn(move || c.iter().map(one).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

fn vec_usize(n: usize) -> Vec<u32> {
    std::vec![0u32; n]
}

/// Serialise `b` and write it to `out` through a temporary file in the same
/// directory and a rename: a failed compile never leaves a partial plan.
pub fn write_plan(b: &PlanBuilder, out: &Path) -> Result<usize> {
    let bytes = b.build_unchecked().map_err(|e| Error::Other(format!("cannot build the plan: {e}")))?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fname = out.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "plan".into());
    let tmp = dir.join(format!(".{fname}.tmp.{}", std::process::id()));
    // The writer's self-check runs while the file is written and synced; the
    // file is renamed into place only when both succeeded.
    let (check, res) = std::thread::scope(|s| {
        let check = s.spawn(|| PlanBuilder::self_check(&bytes));
        let res = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })();
        (check.join().unwrap_or_else(|_| Err("internal error: the plan check panicked".into())), res)
    });
    let res = match (check, res) {
        (Err(e), _) => Err(Error::Other(format!("cannot build the plan: {e}"))),
        (Ok(()), Err(err)) => Err(Error::Other(format!("cannot write plan {}: {err}", out.display()))),
        (Ok(()), Ok(())) => std::fs::rename(&tmp, out)
            .map_err(|err| Error::Other(format!("cannot write plan {}: {err}", out.display()))),
    };
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(bytes.len())
}
