//! The plan writer (host only). Takes modules already in a valid load order,
//! derives the mirror `dependents` lists and the priorities, and lays the
//! file out exactly as the reader expects.

use super::fasthash::FastMap;
use std::string::String;
use std::vec::Vec;

use super::{
    arec, hdr, module_flags, rec, reader::checksum, wait_flags, wrec, Compression, ALIAS_RECORD_SIZE,
    EDGE_HARD, EDGE_POST, HEADER_SIZE, MAGIC, MAX_MODULES, MAX_PLAN_JOBS, MODULE_RECORD_SIZE, NONE, VERSION,
    WAIT_RECORD_SIZE,
};

/// One module to write. `deps` lists `(index, hard)` of earlier modules.
#[derive(Clone, Debug, Default)]
pub struct ModuleSpec {
    pub name: String,
    /// Relative to the module directory (to `/` with [`module_flags::ROOT_PATH`]);
    /// None for a built-in module, or for a disabled name without a file
    /// ([`module_flags::DISABLED`]).
    pub path: Option<String>,
    pub params: String,
    /// [`module_flags`] bits other than BUILTIN and the compression (derived).
    pub flags: u32,
    /// Expected load time, µs.
    pub weight_us: u32,
    /// The part of `weight_us` under the kernel's module-wide lock (the
    /// writer caps it at `weight_us`).
    pub serial_us: u32,
    pub timeout_ms: u32,
    pub file_size: u32,
    pub deps: Vec<(u32, bool)>,
    /// Modules of `deps` whose soft edge carries [`EDGE_POST`]: this
    /// module is in the plan for their `post:` soft dependencies. A hard
    /// edge to the same module wins (the post bit is dropped).
    pub post_deps: Vec<u32>,
    pub soft_pre: Vec<u32>,
    pub soft_post: Vec<u32>,
}

/// A path to wait for: after `module` has loaded, or before success (None).
#[derive(Clone, Debug)]
pub struct DeviceWaitSpec {
    pub path: String,
    pub module: Option<u32>,
    pub timeout_ms: u32,
}

#[derive(Clone, Debug, Default)]
pub struct PlanBuilder {
    pub kernel_release: String,
    pub jobs: u32,
    pub module_timeout_ms: u32,
    pub deadline_ms: u32,
    pub modules: Vec<ModuleSpec>,
    pub waits: Vec<DeviceWaitSpec>,
    pub aliases: Vec<(String, u32)>,
    /// How many of the first `aliases` come from modprobe.d (see
    /// [`super::Plan::config_alias_count`]).
    pub config_alias_count: u32,
    /// [`super::plan_flags`] of the header.
    pub flags: u32,
}

/// The string table: each distinct string once. Strings are borrowed from
/// the builder (no copies) and hashed with the compiler's fast hasher: the
/// ~26k alias patterns of a full kernel made SipHash and the key copies a
/// visible part of the build.
/// The table is appended straight to the output buffer, after the
/// (still zeroed) header and records: no second copy of it.
struct Strings<'a> {
    /// The whole file so far; the table starts at `base`.
    bytes: Vec<u8>,
    base: usize,
    seen: FastMap<&'a str, u32>,
}

impl<'a> Strings<'a> {
    /// A table at offset `base` of a file of about `base + bytes` bytes.
    fn new(base: usize, strings: usize, bytes: usize) -> Self {
        let mut b = Vec::with_capacity(base + bytes + 1);
        b.resize(base + 1, 0);
        let mut seen = FastMap::default();
        seen.reserve(strings);
        Strings { bytes: b, base, seen }
    }
    fn add(&mut self, s: &'a str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let next = (self.bytes.len() - self.base) as u32;
        let off = *self.seen.entry(s).or_insert(next);
        if off == next {
            self.bytes.extend_from_slice(s.as_bytes());
            self.bytes.push(0);
        }
        off
    }
}

/// Whether a wait path holds a glob (`*`, `?` or `[`) in some component,
/// not only the last one: the writer sets [`wait_flags::GLOB`] from this, and
/// the runtime matches such a path component by component. (The compiler
/// allows a glob in at most one component; the writer does not require it.)
pub fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

impl PlanBuilder {
    /// Priorities: each module's weight plus the heaviest priority among the
    /// modules that wait for it (hard or soft): the longest remaining path.
    /// An on-request module adds nothing to the modules of the run it
    /// needs: a run of the whole plan does not load it.
    pub fn priorities(&self) -> Vec<u64> {
        let order: Vec<usize> = (0..self.modules.len()).collect();
        let on_request = |m: usize| self.modules[m].flags & module_flags::ON_REQUEST != 0;
        super::remaining_paths(&order, |m| self.modules[m].weight_us as u64, move |m| {
            // Only earlier modules: a later one would be an invalid plan,
            // which check_input reports.
            self.modules[m].deps.iter().map(|&(d, _)| d as usize).filter(move |&d| d < m && (on_request(d) || !on_request(m)))
        })
    }

    /// Refuse what the format cannot hold, naming the item, before writing.
    fn check_input(&self) -> Result<(), String> {
        let n = self.modules.len();
        let token = |s: &str| super::is_token(s.as_bytes());
        if !token(&self.kernel_release) {
            return Err(std::format!("kernel release {:?} is empty or has spaces, '/' or control characters", self.kernel_release));
        }
        if self.jobs > MAX_PLAN_JOBS {
            return Err(std::format!("jobs {} is more than {MAX_PLAN_JOBS}", self.jobs));
        }
        for (i, m) in self.modules.iter().enumerate() {
            if !token(&m.name) {
                return Err(std::format!("module name {:?} is empty or has spaces, '/' or control characters", m.name));
            }
            if m.params.contains('\0') || m.path.as_deref().is_some_and(|p| p.contains('\0')) {
                return Err(std::format!("module {}: a NUL byte in its path or parameters", m.name));
            }
            if m.flags & !module_flags::KNOWN != 0 {
                return Err(std::format!("module {}: unknown flag bits {:#x}", m.name, m.flags & !module_flags::KNOWN));
            }
            if m.flags & module_flags::ON_REQUEST != 0 && self.flags & super::plan_flags::ALL_MODULES != 0 {
                return Err(std::format!("module {}: ON_REQUEST in a plan of every module", m.name));
            }
            if m.flags & module_flags::ROOT_PATH != 0 && m.path.is_none() {
                return Err(std::format!("module {}: ROOT_PATH without a path", m.name));
            }
            for &p in &m.post_deps {
                if !m.deps.iter().any(|&(d, _)| d == p) {
                    return Err(std::format!("module {}: post edge to {p}, which it does not depend on", m.name));
                }
            }
            for &s in m.soft_pre.iter().chain(&m.soft_post) {
                if s as usize >= n || s as usize == i || s & EDGE_HARD != 0 {
                    return Err(std::format!("module {}: soft dependency {s} is not another module of the plan", m.name));
                }
            }
        }
        for w in &self.waits {
            if w.path.contains('\0') || !super::reader::is_wait_path(w.path.as_bytes()) {
                let after = match w.module.and_then(|m| self.modules.get(m as usize)) {
                    Some(m) => std::format!(" (after module {})", m.name),
                    None => String::new(),
                };
                return Err(std::format!(
                    "wait path {:?}{after} must be an absolute path under /dev or /sys without '.' or '..' components",
                    w.path
                ));
            }
        }
        for (pattern, m) in &self.aliases {
            if pattern.is_empty() || pattern.contains('\0') || *m as usize >= n {
                return Err(std::format!("alias {pattern:?} is empty or names no module of the plan"));
            }
        }
        if self.flags & !super::plan_flags::KNOWN != 0 {
            return Err(std::format!("unknown plan flag bits {:#x}", self.flags & !super::plan_flags::KNOWN));
        }
        if self.config_alias_count as usize > self.aliases.len() {
            return Err(std::format!(
                "{} modprobe.d aliases declared but the plan has {} aliases",
                self.config_alias_count,
                self.aliases.len()
            ));
        }
        Ok(())
    }

    /// Serialise. Fails (naming the module) when the order is not a valid
    /// load order or a field cannot be represented.
    pub fn build(&self) -> Result<Vec<u8>, String> {
        let out = self.build_unchecked()?;
        Self::self_check(&out)?;
        Ok(out)
    }

    /// The writer's own output must satisfy the reader; anything else is a
    /// bug here. The structural checks are the whole reader minus the
    /// checksum, which [`build_unchecked`](Self::build_unchecked) computed
    /// with the reader's own function.
    pub(crate) fn self_check(out: &[u8]) -> Result<(), String> {
        super::Plan::parse_structure(out).map(|_| ()).map_err(|e| std::format!("internal error, plan rejected: {e}"))
    }

    /// [`build`](Self::build) without the final self-check: the caller must
    /// run [`self_check`](Self::self_check) before using the bytes (the
    /// compiler does it while the file is being written, and renames it into
    /// place only if it passes).
    pub(crate) fn build_unchecked(&self) -> Result<Vec<u8>, String> {
        let n = self.modules.len();
        if n as u64 > MAX_MODULES as u64 {
            return Err(std::format!("{n} modules: a plan holds at most {MAX_MODULES}"));
        }
        self.check_input()?;

        // Normalised deps lists (as encoded entries) and their mirror.
        let mut deps: Vec<Vec<u32>> = Vec::with_capacity(n);
        let mut dependents: Vec<Vec<u32>> = std::vec![Vec::new(); n];
        for (i, m) in self.modules.iter().enumerate() {
            let mut list: Vec<(u32, bool)> = Vec::with_capacity(m.deps.len());
            for &(d, hard) in &m.deps {
                if d as usize >= i {
                    return Err(std::format!(
                        "module {} depends on module {} which comes later: not a valid load order",
                        m.name, d
                    ));
                }
                list.push((d, hard));
            }
            // Sort by index; a hard edge wins over a soft one to the same module.
            list.sort_by_key(|&(d, hard)| (d, !hard));
            list.dedup_by_key(|e| e.0);
            let enc: Vec<u32> = list
                .iter()
                .map(|&(d, hard)| match (hard, m.post_deps.contains(&d)) {
                    (true, _) => d | EDGE_HARD,
                    (false, true) => d | EDGE_POST,
                    (false, false) => d,
                })
                .collect();
            for &e in &enc {
                dependents[(e & !super::EDGE_BITS) as usize].push((i as u32) | (e & super::EDGE_BITS));
            }
            deps.push(enc);
        }

        // Waits: per-module groups in module order, then waits before success.
        let mut wait_order: Vec<usize> = (0..self.waits.len()).collect();
        wait_order.sort_by_key(|&w| (self.waits[w].module.unwrap_or(NONE), w));
        let mut dev_waits = std::vec![(0u32, 0u32); n];
        for (pos, &w) in wait_order.iter().enumerate() {
            if let Some(m) = self.waits[w].module {
                let e = dev_waits.get_mut(m as usize).ok_or_else(|| {
                    std::format!("wait for {} names module {m}, not in the plan", self.waits[w].path)
                })?;
                if e.1 == 0 {
                    e.0 = pos as u32;
                }
                e.1 += 1;
            }
        }

        // The layout up to the string table, then the table straight into
        // the output buffer, then every other section in place.
        let edge_total: usize = deps.iter().map(Vec::len).sum::<usize>() * 2
            + self.modules.iter().map(|m| m.soft_pre.len() + m.soft_post.len()).sum::<usize>();
        let modules_off = HEADER_SIZE;
        let edges_off = modules_off + n * MODULE_RECORD_SIZE;
        let waits_off = edges_off + edge_total * 4;
        let aliases_off = waits_off + self.waits.len() * WAIT_RECORD_SIZE;
        let strings_off = aliases_off + self.aliases.len() * ALIAS_RECORD_SIZE;
        let bytes_hint = self.modules.iter().map(|m| m.name.len() + m.params.len() + m.path.as_ref().map_or(0, String::len) + 3).sum::<usize>()
            + self.aliases.iter().map(|(p, _)| p.len() + 1).sum::<usize>()
            + self.waits.iter().map(|w| w.path.len() + 1).sum::<usize>()
            + self.kernel_release.len() + 1;
        let mut strings = Strings::new(strings_off, n * 3 + self.aliases.len() + self.waits.len() + 1, bytes_hint);
        let kernel = strings.add(&self.kernel_release);
        let mut module_strings: Vec<(u32, u32, u32, u32)> = Vec::with_capacity(n);
        for m in &self.modules {
            let mut flags = m.flags & !(module_flags::BUILTIN | module_flags::COMPRESSION_MASK);
            let path = match &m.path {
                None if m.flags & module_flags::DISABLED != 0 => NONE,
                None => {
                    flags |= module_flags::BUILTIN;
                    NONE
                }
                Some(p) => {
                    if !super::is_safe_relative_path(p.as_bytes()) {
                        return Err(std::format!(
                            "module {}: path {p:?} is absolute or leaves the module directory",
                            m.name
                        ));
                    }
                    let c = Compression::from_path(p.as_bytes()).ok_or_else(|| {
                        std::format!("module {}: {p:?} is not a .ko, .ko.xz, .ko.zst or .ko.gz file", m.name)
                    })?;
                    flags |= (c as u32) << module_flags::COMPRESSION_SHIFT;
                    strings.add(p)
                }
            };
            module_strings.push((strings.add(&m.name), path, strings.add(&m.params), flags));
        }
        let wait_paths: Vec<u32> = wait_order.iter().map(|&w| strings.add(&self.waits[w].path)).collect();
        // The kernel's aliases (after the modprobe.d ones, whose order is
        // kept) sorted by literal prefix, for the reader's prefix search.
        let cfg = self.config_alias_count as usize;
        let mut alias_order: Vec<usize> = (0..self.aliases.len()).collect();
        alias_order[cfg..].sort_by(|&a, &b| {
            let (pa, pb) = (self.aliases[a].0.as_bytes(), self.aliases[b].0.as_bytes());
            super::literal_prefix(pa).cmp(super::literal_prefix(pb)).then(pa.cmp(pb)).then(self.aliases[a].1.cmp(&self.aliases[b].1))
        });
        let alias_patterns: Vec<u32> = alias_order.iter().map(|&i| strings.add(&self.aliases[i].0)).collect();
        let mut out = strings.bytes;
        let file_size = out.len();
        let strings_len = file_size - strings_off;
        if file_size > u32::MAX as usize {
            return Err(std::format!("plan of {file_size} bytes exceeds the 4 GiB format limit"));
        }

        let prio = self.priorities();
        let mut total_weight: u64 = 0;
        let (head, rest) = out.split_at_mut(edges_off);
        let (edge_bytes, _) = rest.split_at_mut(edge_total * 4);
        let mut next_edge = 0usize;
        let mut push_list = |list: &mut dyn Iterator<Item = u32>| {
            let start = next_edge;
            for e in list {
                put32(edge_bytes, next_edge * 4, e);
                next_edge += 1;
            }
            (start as u32, (next_edge - start) as u32)
        };
        for (i, m) in self.modules.iter().enumerate() {
            let at = modules_off + i * MODULE_RECORD_SIZE;
            let r = &mut head[at..at + MODULE_RECORD_SIZE];
            let (name, path, params, flags) = module_strings[i];
            put32(r, rec::NAME, name);
            put32(r, rec::PATH, path);
            put32(r, rec::PARAMS, params);
            put32(r, rec::FLAGS, flags);
            put32(r, rec::WEIGHT_US, m.weight_us);
            put32(r, rec::TIMEOUT_MS, m.timeout_ms);
            put64(r, rec::PRIORITY_US, prio[i]);
            let (s, l) = push_list(&mut deps[i].iter().copied());
            put32(r, rec::DEPS, s);
            put32(r, rec::DEPS + 4, l);
            let (s, l) = push_list(&mut dependents[i].iter().copied());
            put32(r, rec::DEPENDENTS, s);
            put32(r, rec::DEPENDENTS + 4, l);
            let (s, l) = push_list(&mut m.soft_pre.iter().copied());
            put32(r, rec::SOFT_PRE, s);
            put32(r, rec::SOFT_PRE + 4, l);
            let (s, l) = push_list(&mut m.soft_post.iter().copied());
            put32(r, rec::SOFT_POST, s);
            put32(r, rec::SOFT_POST + 4, l);
            put32(r, rec::DEV_WAITS, dev_waits[i].0);
            put32(r, rec::DEV_WAITS + 4, dev_waits[i].1);
            put32(r, rec::FILE_SIZE, m.file_size);
            put32(r, rec::SERIAL_US, m.serial_us.min(m.weight_us));
            if m.flags & module_flags::ON_REQUEST == 0 {
                total_weight += m.weight_us as u64;
            }
        }

        for (pos, &w) in wait_order.iter().enumerate() {
            let spec = &self.waits[w];
            let at = waits_off + pos * WAIT_RECORD_SIZE;
            let r = &mut out[at..at + WAIT_RECORD_SIZE];
            put32(r, wrec::PATH, wait_paths[pos]);
            put32(r, wrec::FLAGS, if has_glob(&spec.path) { wait_flags::GLOB } else { 0 });
            put32(r, wrec::MODULE, spec.module.unwrap_or(NONE));
            put32(r, wrec::TIMEOUT_MS, spec.timeout_ms);
        }

        for (i, &a) in alias_order.iter().enumerate() {
            let at = aliases_off + i * ALIAS_RECORD_SIZE;
            put32(&mut out, at + arec::PATTERN, alias_patterns[i]);
            put32(&mut out, at + arec::MODULE, self.aliases[a].1);
        }

        out[hdr::MAGIC..hdr::MAGIC + 8].copy_from_slice(&MAGIC);
        put32(&mut out, hdr::VERSION, VERSION);
        put32(&mut out, hdr::HEADER_SIZE, HEADER_SIZE as u32);
        put32(&mut out, hdr::FILE_SIZE, file_size as u32);
        put32(&mut out, hdr::FLAGS, self.flags);
        put32(&mut out, hdr::MODULE_COUNT, n as u32);
        put32(&mut out, hdr::MODULES_OFF, modules_off as u32);
        put32(&mut out, hdr::EDGE_COUNT, edge_total as u32);
        put32(&mut out, hdr::EDGES_OFF, edges_off as u32);
        put32(&mut out, hdr::WAIT_COUNT, self.waits.len() as u32);
        put32(&mut out, hdr::WAITS_OFF, waits_off as u32);
        put32(&mut out, hdr::ALIAS_COUNT, self.aliases.len() as u32);
        put32(&mut out, hdr::ALIASES_OFF, aliases_off as u32);
        put32(&mut out, hdr::STRINGS_OFF, strings_off as u32);
        put32(&mut out, hdr::STRINGS_LEN, strings_len as u32);
        put32(&mut out, hdr::KERNEL_RELEASE, kernel);
        put32(&mut out, hdr::JOBS, self.jobs);
        put32(&mut out, hdr::MODULE_TIMEOUT_MS, self.module_timeout_ms);
        put32(&mut out, hdr::DEADLINE_MS, self.deadline_ms);
        put64(&mut out, hdr::TOTAL_WEIGHT_US, total_weight);
        put32(&mut out, hdr::MODULE_RECORD_SIZE, MODULE_RECORD_SIZE as u32);
        put32(&mut out, hdr::WAIT_RECORD_SIZE, WAIT_RECORD_SIZE as u32);
        put32(&mut out, hdr::ALIAS_RECORD_SIZE, ALIAS_RECORD_SIZE as u32);
        put32(&mut out, hdr::CONFIG_ALIAS_COUNT, self.config_alias_count);
        let sum = checksum(&out);
        put32(&mut out, hdr::CHECKSUM, sum);
        Ok(out)
    }
}
