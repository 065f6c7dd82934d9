//! Name resolution, the dependency closure, cycle handling, priorities and
//! the load order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::format;
use std::prelude::rust_2021::*;
use std::vec;

use super::config::{Install, ModprobeConfig, Source};
use super::error::{Error, Result};
use super::kmod::{canonical, modname_from_path, normalize_alias, FastMap, KmodIndex, ModuleEntry};
use crate::plan::{glob_match, is_token};

/// What a name resolves to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A module of modules.dep (its index there).
    Module(u32),
    /// A built-in module (canonical name).
    Builtin(String),
    /// A name that is no module but has a no-op `install` command (kmod runs
    /// the command and succeeds): a disabled entry without a file.
    Disabled(String),
    /// A module file given by its path, not in modules.dep (its index in
    /// [`Graph::files`]).
    File(u32),
}

/// One module a lookup found.
#[derive(Clone, Debug)]
pub struct Found {
    pub target: Target,
    /// The alias kmod records for the module it creates (`mod->alias`): the
    /// modprobe.d pattern, or the name looked up in an index. None when the
    /// name itself was found. Options given for this alias apply too.
    pub alias: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Lookup {
    pub found: Vec<Found>,
    /// Found through an alias (modprobe.d, modules.symbols, modules.alias or a
    /// built-in's modinfo alias) rather than as a module name.
    pub via_alias: bool,
    /// modprobe.d aliases that matched but name no module: (pattern, target,
    /// line). kmod stops its lookup at them and then fails to load the target.
    pub missing: Vec<(String, String, Source)>,
    /// An `install` command (not a no-op) that would run for a name that is
    /// no module.
    pub command: Option<Install>,
}

impl Lookup {
    /// Nothing at all answers to the name.
    pub fn is_unknown(&self) -> bool {
        self.found.is_empty() && self.missing.is_empty() && self.command.is_none()
    }
}

/// Resolve a name the way kmod_module_new_from_lookup does (kmod 30): the
/// first of these that finds anything wins: modprobe.d aliases, module names
/// in modules.dep, modules.symbols (for `symbol:NAME`), `install` lines
/// naming exactly this name, modules.alias, built-in module names
/// (modules.builtin), built-in aliases (modules.builtin.modinfo). A modprobe.d
/// alias is not resolved further: its target is a module name (an alias
/// naming an alias, or no module, loads nothing, as with kmod). With
/// `ignore_install` the `install` lines are not looked at.
pub fn lookup(idx: &KmodIndex, cfg: &ModprobeConfig, name: &str, ignore_install: bool) -> Lookup {
    let norm = normalize_alias(name);
    let mut out = Lookup::default();
    let push = |out: &mut Lookup, target: Target, alias: Option<&str>| {
        if !out.found.iter().any(|f| f.target == target) {
            out.found.push(Found { target, alias: alias.map(str::to_string) });
        }
    };
    let install = |n: &str| if ignore_install { None } else { cfg.install_for(n) };
    for (pat, target, src) in &cfg.aliases {
        if !glob_match(pat.as_bytes(), norm.as_bytes()) {
            continue;
        }
        out.via_alias = true;
        if let Some(&m) = idx.by_name.get(target) {
            push(&mut out, Target::Module(m), Some(pat));
        } else if idx.builtin.contains(target) {
            push(&mut out, Target::Builtin(target.clone()), Some(pat));
        } else {
            match install(target) {
                // A disabled name goes into the plan, which holds module names
                // only (is_token): another name is missing.
                Some(i) if i.noop().is_some() && is_token(target.as_bytes()) => {
                    push(&mut out, Target::Disabled(target.clone()), Some(pat))
                }
                Some(i) if i.noop().is_none() => {
                    out.command.get_or_insert_with(|| i.clone());
                }
                _ => out.missing.push((pat.clone(), target.clone(), src.clone())),
            }
        }
    }
    if out.via_alias {
        return out;
    }
    if let Some(&m) = idx.by_name.get(&norm) {
        push(&mut out, Target::Module(m), None);
        return out;
    }
    let by_index = |out: &mut Lookup, mods: Vec<u32>| {
        for m in mods {
            push(out, Target::Module(m), Some(&norm));
        }
        out.via_alias = !out.found.is_empty();
        out.via_alias
    };
    if norm.starts_with("symbol:") && by_index(&mut out, idx.lookup_symbol(&norm)) {
        return out;
    }
    // An install line for a name that cannot be a module's (not a plan
    // token) finds nothing: kmod would run its command for that name.
    if let Some(i) = (!ignore_install && is_token(norm.as_bytes())).then(|| cfg.install_named(&norm)).flatten() {
        if i.noop().is_some() {
            push(&mut out, Target::Disabled(norm.clone()), None);
        } else {
            out.command = Some(i.clone());
        }
        return out;
    }
    if by_index(&mut out, idx.lookup_alias(&norm)) {
        return out;
    }
    if idx.builtin.contains(&norm) {
        push(&mut out, Target::Builtin(norm.clone()), None);
        return out;
    }
    for b in idx.lookup_builtin_alias(&norm) {
        push(&mut out, Target::Builtin(b), Some(&norm));
    }
    out.via_alias = !out.found.is_empty();
    out
}

/// A module of the closure.
#[derive(Clone, Debug)]
pub struct Node {
    pub target: Target,
    pub name: String,
    pub requested: bool,
    /// Named by `--on-request`: a module the kernel may ask for
    /// (request_module) while the plan runs.
    pub on_request: bool,
    /// Reachable from a requested module through any edge: loaded by a run
    /// of the whole plan. The others are in the plan only for an on-request
    /// name, loaded when the kernel (or a modprobe) asks for them.
    pub in_run: bool,
    /// Reachable from a requested module through hard dependencies only
    /// (from an on-request one, for a module outside the run).
    pub hard_reached: bool,
    /// Not reachable from a requested module through hard dependencies and
    /// `pre:` soft dependencies: in the plan only for `post:` ones.
    pub post_only: bool,
    /// Modules this one depends on: (node, hard).
    pub deps: Vec<(usize, bool)>,
    /// Nodes of `deps` whose soft edge is a post edge (this node is in
    /// the plan for their `post:` soft dependencies).
    pub post_deps: Vec<usize>,
    pub soft_pre: Vec<usize>,
    pub soft_post: Vec<usize>,
    /// Aliases through which requests or soft dependencies reached it: their
    /// `options` apply to it too.
    pub aliases: Vec<String>,
    /// Disabled by this `install` line (a no-op command).
    pub disabled: Option<Source>,
    pub blacklisted: bool,
    pub weight_us: u32,
    /// The part of `weight_us` under the kernel's module-wide lock.
    pub serial_us: u32,
    pub file_size: u32,
}

/// [`ModprobeConfig::softdep_for`] for many names: patterns without glob
/// characters in a map, so that a name costs one hash lookup and a glob
/// match per glob pattern instead of a glob match per softdep line.
struct SoftdepIndex<'a> {
    /// Literal pattern -> index of its first softdep line.
    literal: FastMap<&'a str, usize>,
    /// Indices of the softdep lines whose pattern is a glob, in order.
    globs: Vec<usize>,
}

impl<'a> SoftdepIndex<'a> {
    fn new(cfg: &'a ModprobeConfig) -> Self {
        let mut literal: FastMap<&'a str, usize> = FastMap::default();
        let mut globs = Vec::new();
        for (i, sd) in cfg.softdeps.iter().enumerate() {
            if sd.pattern.contains(['*', '?', '[', '\\']) {
                globs.push(i);
            } else {
                literal.entry(sd.pattern.as_str()).or_insert(i);
            }
        }
        SoftdepIndex { literal, globs }
    }

    /// The first softdep line whose pattern matches `name`, as `softdep_for` finds it.
    fn find<'c>(&self, cfg: &'c ModprobeConfig, name: &str) -> Option<&'c super::config::SoftDep> {
        let lit = self.literal.get(name).copied();
        let glob = self
            .globs
            .iter()
            .copied()
            .take_while(|&i| lit.is_none_or(|l| i < l))
            .find(|&i| glob_match(cfg.softdeps[i].pattern.as_bytes(), name.as_bytes()));
        glob.or(lit).map(|i| &cfg.softdeps[i])
    }
}

/// The closure of the requested names.
#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub index: FastMap<Target, usize>,
    /// Module files given by path that modules.dep does not list.
    pub files: Vec<ModuleEntry>,
    /// Their dependencies, from their modinfo `depends=`.
    file_deps: Vec<Vec<Target>>,
}

/// Whether a requested name is a module file's path, as kmod (31 and
/// later) tells them apart: it starts with `/` or `./`.
pub fn is_file_name(name: &str) -> bool {
    name.starts_with('/') || name.starts_with("./")
}

/// A name to load and where it was asked for (None: the command line).
pub struct Request {
    pub name: String,
    pub source: Option<Source>,
    /// Plan it (with what it needs) but load it only when asked for: the
    /// kernel's request_module() (the modprobe personality) or a modprobe.
    pub on_request: bool,
}

/// How [`Graph::build`] treats what kmod would treat differently from a plan.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildOptions {
    /// Ignore every `install` line: load the modules themselves.
    pub ignore_install: bool,
    /// A name on the command line that resolves to no module is a warning,
    /// not an error.
    pub skip_missing: bool,
    /// Every module of modules.dep is in the plan (`--all`), for coldplug:
    /// each counts as reached for its own sake, but only the names given
    /// are requested.
    pub all: bool,
}

impl Graph {
    /// The module file entry of a target: in modules.dep, or given by path.
    pub fn entry<'a>(&'a self, idx: &'a KmodIndex, t: &Target) -> Option<&'a ModuleEntry> {
        match t {
            Target::Module(m) => idx.modules.get(*m as usize),
            Target::File(f) => self.files.get(*f as usize),
            Target::Builtin(_) | Target::Disabled(_) => None,
        }
    }

    fn target_name(&self, idx: &KmodIndex, t: &Target) -> String {
        match (t, self.entry(idx, t)) {
            (_, Some(e)) => e.name.clone(),
            (Target::Builtin(b) | Target::Disabled(b), None) => b.clone(),
            _ => String::new(),
        }
    }

    /// A requested module file (kmod 31's `modprobe /path/x.ko`): the module
    /// of modules.dep when it is one of its files, else a module of its own,
    /// its dependencies read from its modinfo `depends=`. It must lie inside
    /// the root: the plan names files of the system it is for.
    fn file_target(&mut self, idx: &KmodIndex, name: &str, warn: &mut dyn FnMut(String)) -> Result<Target> {
        let given = std::path::Path::new(name);
        let abs = std::fs::canonicalize(given).map_err(|err| Error::Read { path: given.to_path_buf(), err })?;
        let root = &idx.paths.root_abs;
        let outside = || {
            Error::Other(format!(
                "'{name}' is {}, outside the root {}: a plan names the module files of the system it is for; copy the file under {}/{} (updates/, for instance) and run depmod, or give the root it belongs to",
                abs.display(),
                idx.paths.root.display(),
                idx.paths.root.display(),
                idx.paths.module_dir_rel.trim_end_matches('/')
            ))
        };
        let rel = abs.strip_prefix(root).map_err(|_| outside())?;
        let rel = rel.to_str().ok_or_else(outside)?;
        if crate::plan::Compression::from_path(rel.as_bytes()).is_none() {
            return Err(Error::Other(format!("'{name}' is not a module file (.ko, .ko.xz, .ko.zst or .ko.gz)")));
        }
        let (path, root_path) = match rel.strip_prefix(idx.paths.module_dir_rel.as_str()) {
            Some(inner) => (inner.to_string(), false),
            None => (rel.to_string(), true),
        };
        if let Some(m) = idx.modules.iter().position(|e| e.path == path && e.root_path == root_path) {
            return Ok(Target::Module(m as u32));
        }
        let modname = super::modinfo::read(&abs, "name")?.pop().map(|n| canonical(&n)).unwrap_or_else(|| modname_from_path(rel));
        let mut deps = Vec::new();
        for d in super::modinfo::read(&abs, "depends")?.iter().flat_map(|v| v.split(',')).filter(|d| !d.is_empty()) {
            let d = canonical(d);
            if let Some(&m) = idx.by_name.get(&d) {
                deps.push(Target::Module(m));
            } else if idx.builtin.contains(&d) {
                deps.push(Target::Builtin(d));
            } else {
                warn(format!("'{name}' depends on '{d}' (modinfo depends=), which is no module of this kernel; it will likely fail to load"));
            }
        }
        self.files.push(ModuleEntry { name: modname, path, root_path, deps: Vec::new() });
        self.file_deps.push(deps);
        Ok(Target::File(self.files.len() as u32 - 1))
    }

    fn node(&mut self, idx: &KmodIndex, t: &Target, queue: &mut VecDeque<usize>) -> usize {
        if let Some(&n) = self.index.get(t) {
            return n;
        }
        let name = self.target_name(idx, t);
        let n = self.nodes.len();
        self.nodes.push(Node {
            target: t.clone(),
            name,
            requested: false,
            on_request: false,
            in_run: false,
            hard_reached: false,
            post_only: false,
            deps: vec![],
            post_deps: vec![],
            soft_pre: vec![],
            soft_post: vec![],
            aliases: vec![],
            disabled: None,
            blacklisted: false,
            weight_us: 0,
            serial_us: 0,
            file_size: 0,
        });
        self.index.insert(t.clone(), n);
        queue.push_back(n);
        n
    }

    /// Resolve the requests and pull in every hard and soft dependency.
    pub fn build(
        idx: &KmodIndex,
        cfg: &ModprobeConfig,
        requests: &[Request],
        opts: BuildOptions,
        warn: &mut dyn FnMut(String),
    ) -> Result<Graph> {
        let mut g = Graph::default();
        g.nodes.reserve(requests.len());
        g.index.reserve(requests.len());
        let mut queue = VecDeque::new();
        let softdeps = SoftdepIndex::new(cfg);
        // Soft dependency names repeat (crypto-crc32c, ecb, ...) and are often
        // aliases, the slowest lookup: resolve each once.
        let mut soft_lookups: FastMap<&str, Lookup> = FastMap::default();
        let kver = idx.dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        for r in requests {
            if is_file_name(&r.name) {
                let t = g.file_target(idx, &r.name, warn)?;
                let n = g.node(idx, &t, &mut queue);
                g.mark_root(n, r.on_request);
                continue;
            }
            let found = lookup(idx, cfg, &r.name, opts.ignore_install);
            // A name that loads nothing: an error on the command line (an
            // image build should fail loudly) unless --skip-missing; a warning
            // from modules-load.d, as with systemd-modules-load.
            let mut unloadable = |msg: String| -> Result<()> {
                match &r.source {
                    Some(src) => warn(format!("{src}: {msg}; skipped, as systemd-modules-load skips it")),
                    None if opts.skip_missing => warn(format!("{msg}; skipped (--skip-missing)")),
                    None => return Err(Error::Other(msg)),
                }
                Ok(())
            };
            if let Some(i) = &found.command {
                return Err(install_error(i, &format!("'{}' is no module of {kver} but", r.name)));
            }
            for (pat, target, src) in &found.missing {
                unloadable(format!(
                    "{src}: alias '{pat}' (matching '{}') names '{target}', which is no module of {kver}; modprobe stops at this alias and fails to load '{target}' too; fix the alias or the name",
                    r.name
                ))?;
            }
            if found.is_unknown() {
                unloadable(format!("{}", Error::UnknownModule { name: r.name.clone(), dir: idx.dir.clone() }))?;
                continue;
            }
            let mut kept = 0;
            for f in &found.found {
                let tname = g.target_name(idx, &f.target);
                // modprobe (KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY) skips a
                // blacklisted module only when it was found through an alias.
                if found.via_alias && cfg.blacklist.contains(&tname) {
                    warn(format!("'{}' resolves to blacklisted module '{tname}'; not loaded", r.name));
                    continue;
                }
                kept += 1;
                let n = g.node(idx, &f.target, &mut queue);
                g.mark_root(n, r.on_request);
                g.add_alias(n, f);
            }
            if kept == 0 && !found.found.is_empty() {
                warn(format!("every module alias '{}' resolves to is blacklisted; nothing loaded for it", r.name));
            }
        }
        let listed = g.nodes.len();
        if opts.all {
            for m in 0..idx.modules.len() as u32 {
                g.node(idx, &Target::Module(m), &mut queue);
            }
        }
        while let Some(n) = queue.pop_front() {
            let deps: Vec<Target> = match g.nodes[n].target {
                Target::Module(m) => idx.modules[m as usize].deps.iter().map(|&d| Target::Module(d)).collect(),
                Target::File(f) => g.file_deps[f as usize].clone(),
                _ => Vec::new(),
            };
            for d in deps {
                let dn = g.node(idx, &d, &mut queue);
                g.nodes[n].deps.push((dn, true));
            }
            if let Some(sd) = softdeps.find(cfg, &g.nodes[n].name) {
                let name = g.nodes[n].name.clone();
                for (pre, list) in [(true, &sd.pre), (false, &sd.post)] {
                    for dep in list {
                        let found = soft_lookups
                            .entry(dep.as_str())
                            .or_insert_with(|| lookup(idx, cfg, dep, opts.ignore_install));
                        let what = format!("{}: soft dependency '{dep}' of '{name}'", sd.source);
                        if found.is_unknown() {
                            warn(format!("{what} is no module or alias; ignored"));
                        }
                        for (pat, target, src) in &found.missing {
                            warn(format!("{what} resolves through alias '{pat}' ({src}) to '{target}', which is no module; ignored"));
                        }
                        if let Some(i) = &found.command {
                            warn(format!(
                                "{what} is no module but has the command '{}' ({}), which parmod cannot run; ignored",
                                i.command, i.source
                            ));
                        }
                        for f in &found.found {
                            let dn = g.node(idx, &f.target, &mut queue);
                            if dn == n {
                                warn(format!("{}: '{name}' names itself as a soft dependency; ignored", sd.source));
                                continue;
                            }
                            g.add_alias(dn, f);
                            let list = if pre { &mut g.nodes[n].soft_pre } else { &mut g.nodes[n].soft_post };
                            if !list.contains(&dn) {
                                list.push(dn);
                            }
                        }
                    }
                }
            }
        }
        // What a run of the whole plan loads: what the requested modules
        // reach through any edge. Then, from the requested modules (from
        // the on-request ones for the rest), hard reachability and
        // reachability through hard and pre edges (what is not reached is
        // post-only).
        let run_root = |n: &Node, i: usize| n.requested || (opts.all && i >= listed);
        let in_run = g.reach(&run_root, true, true);
        for (node, r) in g.nodes.iter_mut().zip(in_run) {
            node.in_run = r;
        }
        let run_hard = g.reach(&run_root, false, false);
        let run_pre = g.reach(&run_root, true, false);
        let extra_root = |n: &Node, _: usize| n.on_request && !n.in_run;
        let (extra_hard, extra_pre) = (g.reach(&extra_root, false, false), g.reach(&extra_root, true, false));
        for (i, node) in g.nodes.iter_mut().enumerate() {
            let (hard, pre) = if node.in_run { (run_hard[i], run_pre[i]) } else { (extra_hard[i], extra_pre[i]) };
            node.hard_reached = hard;
            node.post_only = !pre;
        }
        g.apply_install_and_blacklist(cfg, opts, warn)?;
        let mut seen: FastMap<&str, usize> = FastMap::default();
        for (n, node) in g.nodes.iter().enumerate() {
            if let Some(&other) = seen.get(node.name.as_str()) {
                let from = |k: usize| match g.entry(idx, &g.nodes[k].target) {
                    Some(e) => e.path.clone(),
                    None => "built in".into(),
                };
                return Err(Error::Other(format!(
                    "two modules named '{}' in the plan: {} and {}; request one of them",
                    node.name,
                    from(other),
                    from(n)
                )));
            }
            seen.insert(&node.name, n);
        }
        Ok(g)
    }

    /// A module named by a request: loaded by the run, or on request only.
    fn mark_root(&mut self, n: usize, on_request: bool) {
        if on_request {
            self.nodes[n].on_request = true;
        } else {
            self.nodes[n].requested = true;
        }
    }

    /// Which nodes the roots reach through hard edges, and soft `pre:`
    /// (`pre`) and `post:` (`post`) ones. Edges to nodes are those of the
    /// closure before [`Self::add_soft_edges`].
    fn reach(&self, root: &dyn Fn(&Node, usize) -> bool, pre: bool, post: bool) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<usize> = (0..self.nodes.len()).filter(|&n| root(&self.nodes[n], n)).collect();
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n], true) {
                continue;
            }
            let node = &self.nodes[n];
            stack.extend(node.deps.iter().map(|e| e.0));
            if pre {
                stack.extend(node.soft_pre.iter().copied());
            }
            if post {
                stack.extend(node.soft_post.iter().copied());
            }
        }
        seen
    }

    fn add_alias(&mut self, n: usize, f: &Found) {
        if let Some(a) = &f.alias {
            let node = &mut self.nodes[n];
            if *a != node.name && !node.aliases.contains(a) {
                node.aliases.push(a.clone());
            }
        }
    }

    /// `install` lines and `blacklist` for the modules of the closure: a
    /// module whose first matching `install` line is a no-op command is
    /// disabled (kmod ignores the command of a module that has soft
    /// dependencies, and so does parmod); any other command is an error,
    /// unless --ignore-install.
    fn apply_install_and_blacklist(
        &mut self,
        cfg: &ModprobeConfig,
        opts: BuildOptions,
        warn: &mut dyn FnMut(String),
    ) -> Result<()> {
        for n in 0..self.nodes.len() {
            let node = &mut self.nodes[n];
            node.blacklisted = cfg.blacklist.contains(&node.name);
            match &node.target {
                Target::Disabled(_) => {
                    let src = cfg.install_for(&node.name).map(|i| i.source.clone());
                    node.disabled = src;
                }
                Target::Module(_) | Target::File(_) if !opts.ignore_install => {
                    let Some(i) = cfg.install_for(&node.name) else { continue };
                    if !node.soft_pre.is_empty() || !node.soft_post.is_empty() {
                        continue;
                    }
                    if i.noop().is_none() {
                        let why = if node.requested { "requested" } else { "needed by the requested modules" };
                        return Err(install_error(i, &format!("module '{}' is in the plan ({why}) and", node.name)));
                    }
                    node.disabled = Some(i.source.clone());
                }
                _ => {}
            }
        }
        for n in 0..self.nodes.len() {
            for &(d, hard) in &self.nodes[n].deps {
                if let (true, Some(src)) = (hard, &self.nodes[d].disabled) {
                    warn(format!(
                        "module '{}' needs '{}', which {src} disables; modprobe loads '{}' anyway, and it will likely fail (unknown symbols)",
                        self.nodes[n].name, self.nodes[d].name, self.nodes[n].name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Mark the post edges, and make the post-only modules that a `post:`
    /// soft dependency needs (its hard and `pre:` dependencies in the plan
    /// for nothing else) wait for the module it follows, with a post edge:
    /// kmod loads them after that module, and not at all when it failed.
    /// Run after [`Self::add_soft_edges`] (which kept the post edges that
    /// close no cycle).
    pub fn add_post_edges(&mut self) {
        for x in 0..self.nodes.len() {
            for p in self.nodes[x].soft_post.clone() {
                if !self.nodes[p].post_deps.contains(&x) {
                    self.nodes[p].post_deps.push(x);
                }
                if !self.nodes[p].post_only {
                    continue;
                }
                let mut seen = vec![false; self.nodes.len()];
                let mut stack = vec![p];
                seen[p] = true;
                while let Some(v) = stack.pop() {
                    let next: Vec<usize> = self.nodes[v]
                        .deps
                        .iter()
                        .filter(|e| e.1)
                        .map(|e| e.0)
                        .chain(self.nodes[v].soft_pre.iter().copied())
                        .collect();
                    for w in next {
                        if w == x || !self.nodes[w].post_only || std::mem::replace(&mut seen[w], true) {
                            continue;
                        }
                        stack.push(w);
                        // Already after x, or needed before x anyway.
                        if self.nodes[w].post_deps.contains(&x) || self.depends_transitively(x, w) {
                            continue;
                        }
                        self.nodes[w].deps.push((x, false));
                        self.nodes[w].post_deps.push(x);
                    }
                }
            }
        }
    }

    /// Fail on a cycle of hard edges, naming it.
    pub fn check_hard_cycles(&self) -> Result<()> {
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let n = self.nodes.len();
        let mut color = vec![0u8; n];
        for start in 0..n {
            if color[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            color[start] = 1;
            while let Some(top) = stack.len().checked_sub(1) {
                let (v, i) = stack[top];
                let edges = &self.nodes[v].deps;
                if i < edges.len() {
                    let (w, hard) = edges[i];
                    stack[top].1 += 1;
                    if !hard {
                        continue;
                    }
                    if color[w] == 1 {
                        let pos = stack.iter().position(|&(x, _)| x == w).unwrap_or(0);
                        let mut names: Vec<String> =
                            stack[pos..].iter().map(|&(x, _)| self.nodes[x].name.clone()).collect();
                        names.push(self.nodes[w].name.clone());
                        return Err(Error::Cycle(names));
                    }
                    if color[w] == 0 {
                        color[w] = 1;
                        stack.push((w, 0));
                    }
                } else {
                    color[v] = 2;
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    /// Does `from` wait (transitively) for `to`?
    fn depends_transitively(&self, from: usize, to: usize) -> bool {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![from];
        while let Some(v) = stack.pop() {
            if v == to {
                return true;
            }
            if std::mem::replace(&mut seen[v], true) {
                continue;
            }
            stack.extend(self.nodes[v].deps.iter().map(|e| e.0));
        }
        false
    }

    /// Turn soft pre/post lists into soft edges, dropping (with a warning)
    /// each one that would close a cycle.
    pub fn add_soft_edges(&mut self, warn: &mut dyn FnMut(String)) {
        for n in 0..self.nodes.len() {
            // pre: n depends on d. post: d depends on n.
            let pre = std::mem::take(&mut self.nodes[n].soft_pre);
            self.nodes[n].soft_pre = pre.into_iter().filter(|&d| self.add_soft_edge(n, d, "pre", warn)).collect();
            let post = std::mem::take(&mut self.nodes[n].soft_post);
            self.nodes[n].soft_post = post.into_iter().filter(|&d| self.add_soft_edge(d, n, "post", warn)).collect();
        }
    }

    /// Make `waiter` wait (softly) for `waited`, unless that would close a
    /// cycle: then warn and return false. `kind` names the declaration.
    fn add_soft_edge(&mut self, waiter: usize, waited: usize, kind: &str, warn: &mut dyn FnMut(String)) -> bool {
        if self.depends_transitively(waited, waiter) {
            let (module, other) = if kind == "pre" { (waiter, waited) } else { (waited, waiter) };
            warn(format!(
                "soft dependency '{}' {kind}: '{}' would close a dependency cycle; dropped",
                self.nodes[module].name, self.nodes[other].name
            ));
            return false;
        }
        self.nodes[waiter].deps.push((waited, false));
        true
    }

    /// Longest remaining path (weights included) from each node through the
    /// modules that depend on it: the priorities the plan stores.
    pub fn priorities(&self) -> Vec<u64> {
        let n = self.nodes.len();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut indeg = vec![0usize; n];
        for (v, node) in self.nodes.iter().enumerate() {
            for &(d, _) in &node.deps {
                dependents[d].push(v);
                indeg[v] += 1;
            }
        }
        // Any topological order will do.
        let mut order = Vec::with_capacity(n);
        let mut ready: Vec<usize> = (0..n).filter(|&v| indeg[v] == 0).collect();
        while let Some(v) = ready.pop() {
            order.push(v);
            for &w in &dependents[v] {
                indeg[w] -= 1;
                if indeg[w] == 0 {
                    ready.push(w);
                }
            }
        }
        // A module outside the run adds nothing to the run's modules it needs.
        crate::plan::remaining_paths(&order, |v| self.nodes[v].weight_us as u64, |v| {
            self.nodes[v].deps.iter().map(|e| e.0).filter(move |&d| self.nodes[v].in_run || !self.nodes[d].in_run)
        })
    }

    /// A load order: topological, and among ready modules the highest
    /// priority first (ties by name, for reproducible plans).
    pub fn load_order(&self, prio: &[u64]) -> Vec<usize> {
        let n = self.nodes.len();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut indeg = vec![0usize; n];
        for (v, node) in self.nodes.iter().enumerate() {
            for &(d, _) in &node.deps {
                dependents[d].push(v);
                indeg[v] += 1;
            }
        }
        let mut heap: BinaryHeap<(u64, Reverse<&str>, usize)> = BinaryHeap::new();
        for v in 0..n {
            if indeg[v] == 0 {
                heap.push((prio[v], Reverse(self.nodes[v].name.as_str()), v));
            }
        }
        let mut order = Vec::with_capacity(n);
        while let Some((_, _, v)) = heap.pop() {
            order.push(v);
            for &w in &dependents[v] {
                indeg[w] -= 1;
                if indeg[w] == 0 {
                    heap.push((prio[w], Reverse(self.nodes[w].name.as_str()), w));
                }
            }
        }
        order
    }
}

/// The error for an `install` command that would have to run: what it
/// applies to (`subject`, ending in "and" or "but"), and what to do.
fn install_error(i: &Install, subject: &str) -> Error {
    Error::Config {
        path: i.source.path.clone(),
        line: i.source.line,
        msg: format!(
            "install {} {}: {subject} parmod runs no commands; give --ignore-install to load the module itself (kmod's option of that name), or remove the line (only no-op commands such as /bin/true, which disable a module, are understood)",
            i.pattern, i.command
        ),
    }
}
