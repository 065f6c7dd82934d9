//! Name resolution, the dependency closure, cycle handling, priorities and
//! the load order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::format;
use std::prelude::rust_2021::*;
use std::vec;

use super::config::{ModprobeConfig, Source};
use super::error::{Error, Result};
use super::kmod::{normalize_alias, FastMap, KmodIndex};
use crate::plan::glob_match;

/// What a name resolves to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A module of modules.dep (its index there).
    Module(u32),
    /// A built-in module (canonical name).
    Builtin(String),
}

#[derive(Debug, Default)]
pub struct Lookup {
    pub targets: Vec<Target>,
    /// Found through an alias (modprobe.d, modules.alias or a built-in's
    /// modinfo alias) rather than as a module name.
    pub via_alias: bool,
}

/// Resolve a name the way kmod_module_new_from_lookup does (kmod 30): the
/// first of these that finds anything wins: modprobe.d aliases, module names
/// in modules.dep, modules.alias, built-in module names, built-in aliases.
/// (kmod also looks at modules.symbols and install commands in between; a
/// static plan has no use for either.)
pub fn lookup(idx: &KmodIndex, cfg: &ModprobeConfig, name: &str, warn: &mut dyn FnMut(String)) -> Lookup {
    let norm = normalize_alias(name);
    let mut out = Lookup::default();
    let push = |out: &mut Lookup, t: Target| {
        if !out.targets.contains(&t) {
            out.targets.push(t);
        }
    };
    for (pat, target, src) in &cfg.aliases {
        if glob_match(pat.as_bytes(), norm.as_bytes()) {
            if let Some(&m) = idx.by_name.get(target) {
                push(&mut out, Target::Module(m));
            } else if idx.builtin.contains(target) {
                push(&mut out, Target::Builtin(target.clone()));
            } else {
                warn(format!("{src}: alias '{pat}' names '{target}', which is no module; ignored"));
            }
        }
    }
    if !out.targets.is_empty() {
        out.via_alias = true;
        return out;
    }
    if let Some(&m) = idx.by_name.get(&norm) {
        out.targets.push(Target::Module(m));
        return out;
    }
    let mods = idx.lookup_alias(&norm);
    if !mods.is_empty() {
        out.targets = mods.into_iter().map(Target::Module).collect();
        out.via_alias = true;
        return out;
    }
    if idx.builtin.contains(&norm) {
        out.targets.push(Target::Builtin(norm));
        return out;
    }
    let b = idx.lookup_builtin_alias(&norm);
    if !b.is_empty() {
        out.targets = b.into_iter().map(Target::Builtin).collect();
        out.via_alias = true;
    }
    out
}

/// A module of the closure.
#[derive(Clone, Debug)]
pub struct Node {
    pub target: Target,
    pub name: String,
    pub requested: bool,
    /// Reachable from a requested module through hard dependencies only.
    pub hard_reached: bool,
    /// Modules this one waits for: (node, hard).
    pub waits_for: Vec<(usize, bool)>,
    pub soft_pre: Vec<usize>,
    pub soft_post: Vec<usize>,
    pub weight_us: u32,
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
}

/// A name to load and where it was asked for (None: the command line).
pub struct Request {
    pub name: String,
    pub source: Option<Source>,
}

impl Graph {
    fn node(&mut self, idx: &KmodIndex, t: &Target, queue: &mut VecDeque<usize>) -> usize {
        if let Some(&n) = self.index.get(t) {
            return n;
        }
        let name = match t {
            Target::Module(m) => idx.modules[*m as usize].name.clone(),
            Target::Builtin(b) => b.clone(),
        };
        let n = self.nodes.len();
        self.nodes.push(Node {
            target: t.clone(),
            name,
            requested: false,
            hard_reached: false,
            waits_for: vec![],
            soft_pre: vec![],
            soft_post: vec![],
            weight_us: 0,
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
        for r in requests {
            let found = lookup(idx, cfg, &r.name, warn);
            if found.targets.is_empty() {
                return Err(match &r.source {
                    None => Error::UnknownModule { name: r.name.clone(), dir: idx.dir.clone() },
                    Some(src) => Error::Config {
                        path: src.path.clone(),
                        line: src.line,
                        msg: format!("{}", Error::UnknownModule { name: r.name.clone(), dir: idx.dir.clone() }),
                    },
                });
            }
            let mut kept = 0;
            for t in &found.targets {
                let tname = match t {
                    Target::Module(m) => idx.modules[*m as usize].name.clone(),
                    Target::Builtin(b) => b.clone(),
                };
                // modprobe (KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY) skips a
                // blacklisted module only when it was found through an alias.
                if found.via_alias && cfg.blacklist.contains(&tname) {
                    warn(format!("'{}' resolves to blacklisted module '{tname}'; not loaded", r.name));
                    continue;
                }
                kept += 1;
                let n = g.node(idx, t, &mut queue);
                g.nodes[n].requested = true;
            }
            if kept == 0 {
                warn(format!("every module alias '{}' resolves to is blacklisted; nothing loaded for it", r.name));
            }
        }
        while let Some(n) = queue.pop_front() {
            if let Target::Module(m) = g.nodes[n].target {
                for &d in &idx.modules[m as usize].deps {
                    let dn = g.node(idx, &Target::Module(d), &mut queue);
                    g.nodes[n].waits_for.push((dn, true));
                }
            }
            if let Some(sd) = softdeps.find(cfg, &g.nodes[n].name) {
                let name = g.nodes[n].name.clone();
                for (pre, list) in [(true, &sd.pre), (false, &sd.post)] {
                    for dep in list {
                        let found = soft_lookups.entry(dep.as_str()).or_insert_with(|| lookup(idx, cfg, dep, warn));
                        if found.targets.is_empty() {
                            warn(format!(
                                "{}: soft dependency '{dep}' of '{name}' is no module or alias; ignored",
                                sd.source
                            ));
                        }
                        for t in &found.targets {
                            let dn = g.node(idx, t, &mut queue);
                            if dn == n {
                                warn(format!("{}: '{name}' names itself as a soft dependency; ignored", sd.source));
                                continue;
                            }
                            if pre {
                                if !g.nodes[n].soft_pre.contains(&dn) {
                                    g.nodes[n].soft_pre.push(dn);
                                }
                            } else if !g.nodes[n].soft_post.contains(&dn) {
                                g.nodes[n].soft_post.push(dn);
                            }
                        }
                    }
                }
            }
        }
        // Hard reachability from the requested modules.
        let mut stack: Vec<usize> = (0..g.nodes.len()).filter(|&n| g.nodes[n].requested).collect();
        while let Some(n) = stack.pop() {
            if g.nodes[n].hard_reached {
                continue;
            }
            g.nodes[n].hard_reached = true;
            for &(d, _) in &g.nodes[n].waits_for {
                stack.push(d);
            }
        }
        Ok(g)
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
                let edges = &self.nodes[v].waits_for;
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
    fn waits_transitively(&self, from: usize, to: usize) -> bool {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![from];
        while let Some(v) = stack.pop() {
            if v == to {
                return true;
            }
            if std::mem::replace(&mut seen[v], true) {
                continue;
            }
            stack.extend(self.nodes[v].waits_for.iter().map(|e| e.0));
        }
        false
    }

    /// Turn soft pre/post lists into soft edges, dropping (with a warning)
    /// each one that would close a cycle.
    pub fn add_soft_edges(&mut self, warn: &mut dyn FnMut(String)) {
        for n in 0..self.nodes.len() {
            // pre: n waits for d. post: d waits for n.
            let pre = std::mem::take(&mut self.nodes[n].soft_pre);
            self.nodes[n].soft_pre = pre.into_iter().filter(|&d| self.add_soft_edge(n, d, "pre", warn)).collect();
            let post = std::mem::take(&mut self.nodes[n].soft_post);
            self.nodes[n].soft_post = post.into_iter().filter(|&d| self.add_soft_edge(d, n, "post", warn)).collect();
        }
    }

    /// Make `waiter` wait (softly) for `waited`, unless that would close a
    /// cycle: then warn and return false. `kind` names the declaration.
    fn add_soft_edge(&mut self, waiter: usize, waited: usize, kind: &str, warn: &mut dyn FnMut(String)) -> bool {
        if self.waits_transitively(waited, waiter) {
            let (module, other) = if kind == "pre" { (waiter, waited) } else { (waited, waiter) };
            warn(format!(
                "soft dependency '{}' {kind}: '{}' would close a dependency cycle; dropped",
                self.nodes[module].name, self.nodes[other].name
            ));
            return false;
        }
        self.nodes[waiter].waits_for.push((waited, false));
        true
    }

    /// Longest remaining path (weights included) from each node through the
    /// modules that wait for it: the priorities the plan stores.
    pub fn priorities(&self) -> Vec<u64> {
        let n = self.nodes.len();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut indeg = vec![0usize; n];
        for (v, node) in self.nodes.iter().enumerate() {
            for &(d, _) in &node.waits_for {
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
        crate::plan::remaining_paths(&order, |v| self.nodes[v].weight_us as u64, |v| self.nodes[v].waits_for.iter().map(|e| e.0))
    }

    /// A load order: topological, and among ready modules the highest
    /// priority first (ties by name, for reproducible plans).
    pub fn load_order(&self, prio: &[u64]) -> Vec<usize> {
        let n = self.nodes.len();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut indeg = vec![0usize; n];
        for (v, node) in self.nodes.iter().enumerate() {
            for &(d, _) in &node.waits_for {
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
