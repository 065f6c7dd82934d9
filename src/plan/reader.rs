//! The zero-copy plan reader. [`Plan::parse`] validates the whole file once;
//! after that every accessor only reads bytes already proven in bounds and
//! consistent, so nothing here allocates, trusts an offset or panics.

use core::fmt;

use super::{
    arec, crc::crc32c_update, hdr, le_u32, le_u64, module_flags, plan_flags, rec, wait_flags, wrec,
    Compression, ALIAS_RECORD_SIZE, EDGE_BITS, EDGE_HARD, EDGE_POST, EDGE_SIZE, HEADER_SIZE, MAGIC,
    MAX_MODULES, MAX_PLAN_JOBS, MODULE_RECORD_SIZE, NONE, VERSION, WAIT_RECORD_SIZE,
};

/// Why a plan was refused. Every variant says where the problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The file is shorter than its header or than the size it declares.
    Truncated { len: usize, need: usize },
    /// Not a parmod plan at all.
    BadMagic,
    /// A plan of another format version.
    Version { found: u32 },
    /// The file is longer than the size its header declares.
    TrailingBytes { len: usize, declared: usize },
    /// The checksum over the file does not match.
    Checksum { stored: u32, computed: u32 },
    /// A header field is out of range or inconsistent.
    Header { field: &'static str },
    /// A module record is inconsistent.
    Module { index: u32, field: &'static str },
    /// A device-wait record is inconsistent.
    DeviceWait { index: u32, field: &'static str },
    /// An alias record is inconsistent.
    Alias { index: u32, field: &'static str },
}

/// Where an error message goes, piece by piece: lets the `no_std` runtime
/// print it without `core::fmt`, and `Display` print it on the host.
pub trait MessageSink {
    fn text(&mut self, s: &str);
    fn number(&mut self, n: u64);
    fn hex32(&mut self, n: u32) {
        self.text("0x");
        for shift in (0..8).rev() {
            let d = ((n >> (shift * 4)) & 0xf) as usize;
            self.text(&"0123456789abcdef"[d..d + 1]);
        }
    }
}

impl PlanError {
    /// Write the message: what is wrong and what to do.
    pub fn explain(&self, o: &mut impl MessageSink) {
        match *self {
            PlanError::Truncated { len, need } => {
                o.text("truncated: ");
                o.number(len as u64);
                o.text(" bytes, needs ");
                o.number(need as u64);
                o.text("; copy the plan again or rebuild it with parmod-plan compile");
            }
            PlanError::BadMagic => o.text("not a parmod plan (bad magic); build one with parmod-plan compile"),
            PlanError::Version { found } => {
                o.text("plan format version ");
                o.number(found as u64);
                o.text(", this parmod reads version ");
                o.number(VERSION as u64);
                o.text("; rebuild the plan with a matching parmod-plan");
            }
            PlanError::TrailingBytes { len, declared } => {
                o.number(len as u64);
                o.text(" bytes but the header declares ");
                o.number(declared as u64);
                o.text("; the file is corrupt, rebuild the plan");
            }
            PlanError::Checksum { stored, computed } => {
                o.text("checksum mismatch (stored ");
                o.hex32(stored);
                o.text(", computed ");
                o.hex32(computed);
                o.text("); the file is corrupt, rebuild the plan");
            }
            PlanError::Header { field } => {
                o.text("corrupt header field '");
                o.text(field);
                o.text("'; rebuild the plan");
            }
            PlanError::Module { index, field } | PlanError::DeviceWait { index, field } | PlanError::Alias { index, field } => {
                o.text(match self {
                    PlanError::Module { .. } => "corrupt module record ",
                    PlanError::DeviceWait { .. } => "corrupt device-wait record ",
                    _ => "corrupt alias record ",
                });
                o.number(index as u64);
                o.text(" (field '");
                o.text(field);
                o.text("'); rebuild the plan");
            }
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Sink<'a, 'b>(&'a mut fmt::Formatter<'b>, fmt::Result);
        impl MessageSink for Sink<'_, '_> {
            fn text(&mut self, s: &str) {
                if self.1.is_ok() {
                    self.1 = self.0.write_str(s);
                }
            }
            fn number(&mut self, n: u64) {
                if self.1.is_ok() {
                    self.1 = write!(self.0, "{n}");
                }
            }
        }
        let mut sink = Sink(f, Ok(()));
        self.explain(&mut sink);
        sink.1
    }
}

/// A validated plan, borrowed from its bytes (usually an mmap).
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    bytes: &'a [u8],
    module_count: u32,
    modules_off: usize,
    edge_count: u32,
    edges_off: usize,
    wait_count: u32,
    waits_off: usize,
    alias_count: u32,
    aliases_off: usize,
    strings: &'a [u8],
}

/// One dependency edge: the other module's index, whether it is hard, and
/// whether it is a post edge ([`super::EDGE_POST`]; never both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub module: u32,
    pub hard: bool,
    pub post: bool,
}

/// An iterator over a validated adjacency list.
#[derive(Clone)]
pub struct Edges<'a> {
    bytes: &'a [u8],
}

impl Iterator for Edges<'_> {
    type Item = Edge;
    fn next(&mut self) -> Option<Edge> {
        let (head, rest) = self.bytes.split_first_chunk::<4>()?;
        self.bytes = rest;
        let raw = u32::from_le_bytes(*head);
        Some(Edge { module: raw & !EDGE_BITS, hard: raw & EDGE_HARD != 0, post: raw & EDGE_POST != 0 })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bytes.len() / 4;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Edges<'_> {}

/// A module record.
#[derive(Clone, Copy)]
pub struct Module<'a> {
    plan: Plan<'a>,
    index: u32,
    rec: &'a [u8],
}

/// A device-wait record: a path that must exist, after a module or before success.
#[derive(Clone, Copy)]
pub struct DeviceWait<'a> {
    plan: Plan<'a>,
    index: u32,
    rec: &'a [u8],
}

/// An alias record: a pattern from modules.alias or modprobe.d and the module it names.
#[derive(Clone, Copy)]
pub struct Alias<'a> {
    pub pattern: &'a [u8],
    pub module: u32,
}

fn checked_span(off: u32, count: u32, size: usize) -> Option<(usize, usize)> {
    let start = off as usize;
    let len = (count as usize).checked_mul(size)?;
    Some((start, start.checked_add(len)?))
}

impl<'a> Plan<'a> {
    /// Validate `bytes` in full and return a reader over them.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PlanError> {
        if bytes.len() < HEADER_SIZE {
            if bytes.len() >= 8 && bytes[..8] != MAGIC {
                return Err(PlanError::BadMagic);
            }
            return Err(PlanError::Truncated { len: bytes.len(), need: HEADER_SIZE });
        }
        if bytes[hdr::MAGIC..hdr::MAGIC + 8] != MAGIC {
            return Err(PlanError::BadMagic);
        }
        let h = |at| le_u32(bytes, at);
        let version = h(hdr::VERSION);
        if version != VERSION {
            return Err(PlanError::Version { found: version });
        }
        let declared = h(hdr::FILE_SIZE) as usize;
        if declared > bytes.len() {
            return Err(PlanError::Truncated { len: bytes.len(), need: declared });
        }
        if declared < bytes.len() {
            return Err(PlanError::TrailingBytes { len: bytes.len(), declared });
        }
        let stored = h(hdr::CHECKSUM);
        let computed = checksum(bytes);
        if stored != computed {
            return Err(PlanError::Checksum { stored, computed });
        }
        Self::parse_structure(bytes)
    }

    /// Validate everything but the checksum. Exposed so that tests can prove
    /// the structural checks alone never admit an unsafe plan.
    pub fn parse_structure(bytes: &'a [u8]) -> Result<Self, PlanError> {
        let herr = |field| PlanError::Header { field };
        if bytes.len() < HEADER_SIZE {
            return Err(PlanError::Truncated { len: bytes.len(), need: HEADER_SIZE });
        }
        if bytes[..8] != MAGIC {
            return Err(PlanError::BadMagic);
        }
        let h = |at| le_u32(bytes, at);
        if h(hdr::VERSION) != VERSION {
            return Err(PlanError::Version { found: h(hdr::VERSION) });
        }
        if h(hdr::FILE_SIZE) as usize != bytes.len() {
            return Err(herr("file_size"));
        }
        if h(hdr::HEADER_SIZE) as usize != HEADER_SIZE {
            return Err(herr("header_size"));
        }
        if h(hdr::MODULE_RECORD_SIZE) as usize != MODULE_RECORD_SIZE {
            return Err(herr("module_record_size"));
        }
        if h(hdr::WAIT_RECORD_SIZE) as usize != WAIT_RECORD_SIZE {
            return Err(herr("wait_record_size"));
        }
        if h(hdr::ALIAS_RECORD_SIZE) as usize != ALIAS_RECORD_SIZE {
            return Err(herr("alias_record_size"));
        }
        if h(hdr::FLAGS) & !plan_flags::KNOWN != 0 {
            return Err(herr("flags"));
        }
        if bytes[hdr::RESERVED..HEADER_SIZE].iter().any(|&b| b != 0) {
            return Err(herr("reserved"));
        }
        let module_count = h(hdr::MODULE_COUNT);
        if module_count > MAX_MODULES {
            return Err(herr("module_count"));
        }
        // The sections follow each other without gaps, in this order.
        let mut cursor = HEADER_SIZE;
        let mut section = |off_field, count: u32, size: usize, name| {
            let (start, end) = checked_span(h(off_field), count, size).ok_or(herr(name))?;
            if start != cursor || end > bytes.len() {
                return Err(herr(name));
            }
            cursor = end;
            Ok(start)
        };
        let modules_off = section(hdr::MODULES_OFF, module_count, MODULE_RECORD_SIZE, "modules_off")?;
        let edge_count = h(hdr::EDGE_COUNT);
        let edges_off = section(hdr::EDGES_OFF, edge_count, EDGE_SIZE, "edges_off")?;
        let wait_count = h(hdr::WAIT_COUNT);
        let waits_off = section(hdr::WAITS_OFF, wait_count, WAIT_RECORD_SIZE, "waits_off")?;
        let alias_count = h(hdr::ALIAS_COUNT);
        let aliases_off = section(hdr::ALIASES_OFF, alias_count, ALIAS_RECORD_SIZE, "aliases_off")?;
        let strings_off = section(hdr::STRINGS_OFF, h(hdr::STRINGS_LEN), 1, "strings")?;
        if cursor != bytes.len() {
            return Err(herr("strings_len"));
        }
        let strings = &bytes[strings_off..];
        // Offset 0 is the empty string and the table ends in NUL, so every
        // offset inside the table names a NUL-terminated string.
        if strings.first() != Some(&0) || strings.last() != Some(&0) {
            return Err(herr("strings"));
        }
        let plan = Plan {
            bytes,
            module_count,
            modules_off,
            edge_count,
            edges_off,
            wait_count,
            waits_off,
            alias_count,
            aliases_off,
            strings,
        };
        match plan.string(h(hdr::KERNEL_RELEASE)) {
            Some(s) if super::is_token(s) => {}
            _ => return Err(herr("kernel_release")),
        }
        if h(hdr::JOBS) > MAX_PLAN_JOBS {
            return Err(herr("jobs"));
        }
        if h(hdr::CONFIG_ALIAS_COUNT) > alias_count {
            return Err(herr("config_alias_count"));
        }
        plan.validate_modules()?;
        plan.validate_waits()?;
        plan.validate_aliases()?;
        Ok(plan)
    }

    fn validate_modules(&self) -> Result<(), PlanError> {
        let mut waits_total: u64 = 0;
        let mut dependents_total: u64 = 0;
        for i in 0..self.module_count {
            let err = |field| PlanError::Module { index: i, field };
            let r = self.record(i);
            let flags = le_u32(r, rec::FLAGS);
            if flags & !module_flags::KNOWN != 0 {
                return Err(err("flags"));
            }
            let comp = (flags & module_flags::COMPRESSION_MASK) >> module_flags::COMPRESSION_SHIFT;
            if Compression::from_bits(comp).is_none() {
                return Err(err("compression"));
            }
            if flags & module_flags::BUILTIN != 0 && flags & module_flags::DISABLED != 0 {
                return Err(err("flags"));
            }
            if flags & module_flags::ON_REQUEST != 0 && self.is_all_modules() {
                return Err(err("flags"));
            }
            match self.string(le_u32(r, rec::NAME)) {
                Some(n) if super::is_token(n) => {}
                _ => return Err(err("name")),
            }
            let path = le_u32(r, rec::PATH);
            let root_path = flags & module_flags::ROOT_PATH != 0;
            let no_file = flags & module_flags::BUILTIN != 0
                || (flags & module_flags::DISABLED != 0 && path == NONE);
            if no_file {
                if path != NONE || comp != 0 || root_path {
                    return Err(err("path"));
                }
            } else {
                match self.string(path) {
                    Some(p) if super::is_safe_relative_path(p) => {
                        if Compression::from_path(p) != Compression::from_bits(comp) {
                            return Err(err("compression"));
                        }
                    }
                    _ => return Err(err("path")),
                }
            }
            if self.string(le_u32(r, rec::PARAMS)).is_none() {
                return Err(err("params"));
            }
            if le_u32(r, rec::SERIAL_US) > le_u32(r, rec::WEIGHT_US) {
                return Err(err("serial_us"));
            }
            // deps: strictly increasing, all before this module (so the
            // record order is a valid load order and the graph is acyclic).
            let waits = self.edge_list(r, rec::DEPS).ok_or(err("deps"))?;
            let mut prev: Option<u32> = None;
            for e in waits.clone() {
                if e.module >= i || prev.is_some_and(|p| e.module <= p) || (e.hard && e.post) {
                    return Err(err("deps"));
                }
                prev = Some(e.module);
            }
            waits_total += waits.len() as u64;
            // dependents: strictly increasing, all after this module, and each
            // the mirror of an entry in that module's deps.
            let deps = self.edge_list(r, rec::DEPENDENTS).ok_or(err("dependents"))?;
            let mut prev: Option<u32> = None;
            for e in deps.clone() {
                if e.module <= i || e.module >= self.module_count || prev.is_some_and(|p| e.module <= p) {
                    return Err(err("dependents"));
                }
                prev = Some(e.module);
                let other = self.record(e.module);
                let theirs = self.edge_list(other, rec::DEPS).ok_or(err("dependents"))?;
                if !contains_edge(theirs, Edge { module: i, hard: e.hard, post: e.post }) {
                    return Err(err("dependents"));
                }
            }
            dependents_total += deps.len() as u64;
            for (field, off) in [("soft_pre", rec::SOFT_PRE), ("soft_post", rec::SOFT_POST)] {
                let list = self.edge_list(r, off).ok_or(err(field))?;
                for e in list {
                    if e.hard || e.post || e.module >= self.module_count || e.module == i {
                        return Err(err(field));
                    }
                }
            }
            let (ws, wl) = (le_u32(r, rec::DEV_WAITS), le_u32(r, rec::DEV_WAITS + 4));
            let we = ws.checked_add(wl).ok_or(err("dev_waits"))?;
            if we > self.wait_count {
                return Err(err("dev_waits"));
            }
            for w in ws..we {
                if le_u32(self.wait_record(w), wrec::MODULE) != i {
                    return Err(err("dev_waits"));
                }
            }
            let _ = le_u64(r, rec::PRIORITY_US);
        }
        // Every dependents entry mirrors a distinct deps entry; equal
        // totals make the two lists exact mirrors of each other.
        if waits_total != dependents_total {
            return Err(PlanError::Header { field: "edges (dependents do not mirror deps)" });
        }
        Ok(())
    }

    fn validate_waits(&self) -> Result<(), PlanError> {
        for w in 0..self.wait_count {
            let err = |field| PlanError::DeviceWait { index: w, field };
            let r = self.wait_record(w);
            match self.string(le_u32(r, wrec::PATH)) {
                Some(p) if is_wait_path(p) => {}
                _ => return Err(err("path")),
            }
            if le_u32(r, wrec::FLAGS) & !wait_flags::KNOWN != 0 {
                return Err(err("flags"));
            }
            if r[wrec::RESERVED..WAIT_RECORD_SIZE].iter().any(|&b| b != 0) {
                return Err(err("reserved"));
            }
            let m = le_u32(r, wrec::MODULE);
            if m != NONE {
                if m >= self.module_count {
                    return Err(err("module"));
                }
                let mr = self.record(m);
                let (s, l) = (le_u32(mr, rec::DEV_WAITS), le_u32(mr, rec::DEV_WAITS + 4));
                if w < s || w - s >= l {
                    return Err(err("module"));
                }
            }
        }
        Ok(())
    }

    fn validate_aliases(&self) -> Result<(), PlanError> {
        let cfg = self.config_alias_count();
        let mut prev: &[u8] = b"";
        for a in 0..self.alias_count {
            let err = |field| PlanError::Alias { index: a, field };
            let r = self.alias_record(a);
            let pattern = match self.string(le_u32(r, arec::PATTERN)) {
                Some(p) if !p.is_empty() => p,
                _ => return Err(err("pattern")),
            };
            if le_u32(r, arec::MODULE) >= self.module_count {
                return Err(err("module"));
            }
            // The kernel's aliases are sorted by literal prefix.
            if a >= cfg {
                let p = super::literal_prefix(pattern);
                if a > cfg && p < prev {
                    return Err(err("order"));
                }
                prev = p;
            }
        }
        Ok(())
    }

    #[inline(never)]
    fn record(&self, i: u32) -> &'a [u8] {
        let at = self.modules_off + i as usize * MODULE_RECORD_SIZE;
        self.bytes.get(at..at + MODULE_RECORD_SIZE).unwrap_or(&[0; MODULE_RECORD_SIZE])
    }

    fn wait_record(&self, i: u32) -> &'a [u8] {
        let at = self.waits_off + i as usize * WAIT_RECORD_SIZE;
        self.bytes.get(at..at + WAIT_RECORD_SIZE).unwrap_or(&[0; WAIT_RECORD_SIZE])
    }

    fn alias_record(&self, i: u32) -> &'a [u8] {
        let at = self.aliases_off + i as usize * ALIAS_RECORD_SIZE;
        self.bytes.get(at..at + ALIAS_RECORD_SIZE).unwrap_or(&[0; ALIAS_RECORD_SIZE])
    }

    /// The (start, len) edge range at `field` of a record, if in bounds.
    #[inline(never)]
    fn edge_list(&self, r: &[u8], field: usize) -> Option<Edges<'a>> {
        let (start, len) = (le_u32(r, field), le_u32(r, field + 4));
        let end = start.checked_add(len)?;
        if end > self.edge_count {
            return None;
        }
        let a = self.edges_off + start as usize * EDGE_SIZE;
        let b = self.edges_off + end as usize * EDGE_SIZE;
        Some(Edges { bytes: self.bytes.get(a..b)? })
    }

    /// The NUL-terminated string at `off`, without its NUL.
    fn string(&self, off: u32) -> Option<&'a [u8]> {
        let s = self.string_with_nul(off)?;
        Some(&s[..s.len() - 1])
    }

    #[inline(never)]
    fn string_with_nul(&self, off: u32) -> Option<&'a [u8]> {
        let tail = self.strings.get(off as usize..)?;
        let end = tail.iter().position(|&c| c == 0)?;
        Some(&tail[..=end])
    }

    fn header_u32(&self, at: usize) -> u32 {
        le_u32(self.bytes, at)
    }

    // ---- public accessors ----

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn checksum(&self) -> u32 {
        self.header_u32(hdr::CHECKSUM)
    }
    pub fn kernel_release(&self) -> &'a [u8] {
        self.string(self.header_u32(hdr::KERNEL_RELEASE)).unwrap_or(b"")
    }
    /// Worker tasks the plan asks for (0: the runtime decides: eight times the CPUs).
    pub fn jobs(&self) -> u32 {
        self.header_u32(hdr::JOBS)
    }
    /// Default time after which a module still loading counts as stuck (0: none).
    pub fn module_timeout_ms(&self) -> u32 {
        self.header_u32(hdr::MODULE_TIMEOUT_MS)
    }
    /// Default overall deadline (0: none).
    pub fn deadline_ms(&self) -> u32 {
        self.header_u32(hdr::DEADLINE_MS)
    }
    pub fn total_weight_us(&self) -> u64 {
        le_u64(self.bytes, hdr::TOTAL_WEIGHT_US)
    }
    pub fn module_count(&self) -> u32 {
        self.module_count
    }
    pub fn edge_count(&self) -> u32 {
        self.edge_count
    }
    pub fn wait_count(&self) -> u32 {
        self.wait_count
    }
    pub fn alias_count(&self) -> u32 {
        self.alias_count
    }
    /// [`super::plan_flags`] of the header.
    pub fn flags(&self) -> u32 {
        self.header_u32(hdr::FLAGS)
    }
    /// Compiled with `--all`: a run of it is a coldplug.
    pub fn is_all_modules(&self) -> bool {
        self.flags() & super::plan_flags::ALL_MODULES != 0
    }
    /// The first `config_alias_count` alias records come from modprobe.d
    /// `alias` lines (looked up before module names); the rest from the
    /// kernel's indexes (modules.symbols, modules.alias, built-in aliases).
    pub fn config_alias_count(&self) -> u32 {
        self.header_u32(hdr::CONFIG_ALIAS_COUNT)
    }

    #[inline(never)]
    pub fn module(&self, index: u32) -> Option<Module<'a>> {
        (index < self.module_count).then(|| Module { plan: *self, index, rec: self.record(index) })
    }

    pub fn modules(&self) -> impl Iterator<Item = Module<'a>> + '_ {
        (0..self.module_count).filter_map(|i| self.module(i))
    }

    /// Find a module by name (`-` and `_` alike). Linear: for tools, not hot paths.
    pub fn find_module(&self, name: &[u8]) -> Option<Module<'a>> {
        self.modules().find(|m| super::same_name(m.name(), name))
    }

    #[inline(never)]
    pub fn wait(&self, index: u32) -> Option<DeviceWait<'a>> {
        (index < self.wait_count).then(|| DeviceWait { plan: *self, index, rec: self.wait_record(index) })
    }

    pub fn waits(&self) -> impl Iterator<Item = DeviceWait<'a>> + '_ {
        (0..self.wait_count).filter_map(|i| self.wait(i))
    }

    pub fn alias(&self, index: u32) -> Option<Alias<'a>> {
        if index >= self.alias_count {
            return None;
        }
        let r = self.alias_record(index);
        Some(Alias { pattern: self.string(le_u32(r, arec::PATTERN)).unwrap_or(b""), module: le_u32(r, arec::MODULE) })
    }

    pub fn aliases(&self) -> impl Iterator<Item = Alias<'a>> + '_ {
        (0..self.alias_count).filter_map(|i| self.alias(i))
    }

    /// The modprobe.d aliases (the first [`Self::config_alias_count`]).
    pub fn config_aliases(&self) -> impl Iterator<Item = Alias<'a>> + '_ {
        (0..self.config_alias_count().min(self.alias_count)).filter_map(|i| self.alias(i))
    }

    /// The kernel's aliases whose pattern matches `name` (already
    /// normalised), without reading them all: they are sorted by literal
    /// prefix, so for each prefix of `name` a binary search (from where the
    /// last one ended) finds the patterns with exactly that literal prefix,
    /// and only those are matched; once no literal prefix begins with a
    /// prefix of `name`, none can begin with a longer one, and the search
    /// ends. At most `len(name) x log2(aliases)` comparisons, and for most
    /// names (a CPU's 600-byte modalias among them) the length of the
    /// longest literal prefix that they begin with times that.
    pub fn kernel_aliases_matching<'n>(&self, name: &'n [u8]) -> KernelAliases<'a, 'n> {
        let from = self.config_alias_count().min(self.alias_count);
        KernelAliases { plan: *self, name, len: 0, at: None, from }
    }
}

/// The iterator of [`Plan::kernel_aliases_matching`].
pub struct KernelAliases<'a, 'n> {
    plan: Plan<'a>,
    name: &'n [u8],
    /// The prefix length being looked at (`name.len() + 1`: done).
    len: usize,
    /// The next record to look at for it (None: search for the first).
    at: Option<u32>,
    /// Where that search starts: no record before it has a literal prefix
    /// that is a longer prefix of `name`.
    from: u32,
}

impl<'a> Iterator for KernelAliases<'a, '_> {
    type Item = Alias<'a>;
    fn next(&mut self) -> Option<Alias<'a>> {
        let p = &self.plan;
        let n = p.alias_count;
        loop {
            let key = self.name.get(..self.len)?;
            let at = match self.at {
                Some(at) => at,
                None => {
                    // The first record whose literal prefix is not below `key`.
                    let (mut lo, mut hi) = (self.from, n);
                    while lo < hi {
                        let mid = lo + (hi - lo) / 2;
                        if p.alias(mid).is_some_and(|a| super::literal_prefix(a.pattern) < key) {
                            lo = mid + 1;
                        } else {
                            hi = mid;
                        }
                    }
                    lo
                }
            };
            match p.alias(at).map(|a| (a, super::literal_prefix(a.pattern))) {
                Some((a, literal)) if literal == key => {
                    self.at = Some(at + 1);
                    if super::glob_match(a.pattern, self.name) {
                        return Some(a);
                    }
                }
                // Sorted, the literal prefixes that begin with `key` follow
                // one another: the next prefix of the name is looked for
                // from here.
                Some((_, literal)) if literal.starts_with(key) => {
                    self.len += 1;
                    self.at = None;
                    self.from = at;
                }
                // None begins with `key`: none begins with a longer prefix.
                _ => {
                    self.len = self.name.len() + 1;
                    return None;
                }
            }
        }
    }
}

/// Checksum of a plan: CRC-32C of the file with the checksum field as zero.
pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    let c = crc32c_update(0, &bytes[..hdr::CHECKSUM]);
    let c = crc32c_update(c, &[0; 4]);
    crc32c_update(c, &bytes[hdr::CHECKSUM + 4..])
}

fn contains_edge(list: Edges<'_>, want: Edge) -> bool {
    // Lists are sorted by module index: binary search over the raw entries.
    let n = list.bytes.len() / 4;
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let raw = le_u32(list.bytes, mid * 4);
        let m = raw & !EDGE_BITS;
        if m == want.module {
            return (raw & EDGE_HARD != 0) == want.hard && (raw & EDGE_POST != 0) == want.post;
        }
        if m < want.module {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    false
}

/// A wait path: absolute, under /dev or /sys, no `.`/`..`/empty components.
pub fn is_wait_path(p: &[u8]) -> bool {
    let rest = if let Some(r) = p.strip_prefix(b"/dev/") {
        r
    } else if let Some(r) = p.strip_prefix(b"/sys/") {
        r
    } else {
        return false;
    };
    super::is_safe_relative_path(rest)
}

impl<'a> Module<'a> {
    pub fn index(&self) -> u32 {
        self.index
    }
    pub fn name(&self) -> &'a [u8] {
        self.plan.string(le_u32(self.rec, rec::NAME)).unwrap_or(b"")
    }
    /// Path relative to `/lib/modules/$KVER`; None for built-in modules.
    pub fn path(&self) -> Option<&'a [u8]> {
        if self.is_builtin() {
            return None;
        }
        self.plan.string(le_u32(self.rec, rec::PATH))
    }
    /// Same as [`Self::path`] with its terminating NUL.
    pub fn path_with_nul(&self) -> Option<&'a [u8]> {
        if self.is_builtin() {
            return None;
        }
        self.plan.string_with_nul(le_u32(self.rec, rec::PATH))
    }
    /// Module parameters, `key=value` separated by spaces.
    pub fn params(&self) -> &'a [u8] {
        self.plan.string(le_u32(self.rec, rec::PARAMS)).unwrap_or(b"")
    }
    /// Same as [`Self::params`] with its terminating NUL (for finit_module).
    pub fn params_with_nul(&self) -> &'a [u8] {
        self.plan.string_with_nul(le_u32(self.rec, rec::PARAMS)).unwrap_or(b"\0")
    }
    pub fn flags(&self) -> u32 {
        le_u32(self.rec, rec::FLAGS)
    }
    pub fn is_builtin(&self) -> bool {
        self.flags() & module_flags::BUILTIN != 0
    }
    /// Disabled by configuration (`install NAME /bin/true`): never loaded.
    pub fn is_disabled(&self) -> bool {
        self.flags() & module_flags::DISABLED != 0
    }
    /// Named by a modprobe.d `blacklist` line.
    pub fn is_blacklisted(&self) -> bool {
        self.flags() & module_flags::BLACKLISTED != 0
    }
    /// In the plan only for `post:` soft dependencies (see [`module_flags::POST_ONLY`]).
    pub fn is_post_only(&self) -> bool {
        self.flags() & module_flags::POST_ONLY != 0
    }
    /// Loaded only when asked for (see [`module_flags::ON_REQUEST`]).
    pub fn is_on_request(&self) -> bool {
        self.flags() & module_flags::ON_REQUEST != 0
    }
    /// The path is relative to `/`, not to the module directory.
    pub fn is_root_path(&self) -> bool {
        self.flags() & module_flags::ROOT_PATH != 0
    }
    pub fn compression(&self) -> Compression {
        let bits = (self.flags() & module_flags::COMPRESSION_MASK) >> module_flags::COMPRESSION_SHIFT;
        Compression::from_bits(bits).unwrap_or(Compression::None)
    }
    /// Expected load time in microseconds.
    pub fn weight_us(&self) -> u32 {
        le_u32(self.rec, rec::WEIGHT_US)
    }
    /// The part of [`Self::weight_us`] the kernel is expected to spend under
    /// its module-wide lock (`ftrace_lock`), where no other load passes: µs.
    pub fn serial_us(&self) -> u32 {
        le_u32(self.rec, rec::SERIAL_US)
    }
    /// Per-module stuck timeout (0: the plan's default).
    pub fn timeout_ms(&self) -> u32 {
        le_u32(self.rec, rec::TIMEOUT_MS)
    }
    /// Heaviest remaining path from this module to the end of the graph (µs).
    pub fn priority_us(&self) -> u64 {
        le_u64(self.rec, rec::PRIORITY_US)
    }
    pub fn file_size(&self) -> u32 {
        le_u32(self.rec, rec::FILE_SIZE)
    }
    /// Modules that must be done before this one starts (hard: must have loaded).
    pub fn deps(&self) -> Edges<'a> {
        self.list(rec::DEPS)
    }
    /// Modules that depend on this one (hard: skipped if this one fails).
    pub fn dependents(&self) -> Edges<'a> {
        self.list(rec::DEPENDENTS)
    }
    /// Declared soft pre-dependencies that are in the plan.
    pub fn soft_pre(&self) -> Edges<'a> {
        self.list(rec::SOFT_PRE)
    }
    /// Declared soft post-dependencies that are in the plan.
    pub fn soft_post(&self) -> Edges<'a> {
        self.list(rec::SOFT_POST)
    }
    /// Indices of the device-wait records to satisfy after this module loads.
    pub fn dev_waits(&self) -> core::ops::Range<u32> {
        let s = le_u32(self.rec, rec::DEV_WAITS);
        s..s.saturating_add(le_u32(self.rec, rec::DEV_WAITS + 4))
    }
    fn list(&self, field: usize) -> Edges<'a> {
        self.plan.edge_list(self.rec, field).unwrap_or(Edges { bytes: &[] })
    }
}

impl<'a> DeviceWait<'a> {
    pub fn index(&self) -> u32 {
        self.index
    }
    pub fn path(&self) -> &'a [u8] {
        self.plan.string(le_u32(self.rec, wrec::PATH)).unwrap_or(b"")
    }
    pub fn path_with_nul(&self) -> &'a [u8] {
        self.plan.string_with_nul(le_u32(self.rec, wrec::PATH)).unwrap_or(b"\0")
    }
    pub fn flags(&self) -> u32 {
        le_u32(self.rec, wrec::FLAGS)
    }
    pub fn is_glob(&self) -> bool {
        self.flags() & wait_flags::GLOB != 0
    }
    /// The module this wait follows, or None for a wait before success.
    pub fn module(&self) -> Option<u32> {
        let m = le_u32(self.rec, wrec::MODULE);
        (m != NONE).then_some(m)
    }
    pub fn timeout_ms(&self) -> u32 {
        le_u32(self.rec, wrec::TIMEOUT_MS)
    }
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::super::{ModuleSpec, PlanBuilder};
    use super::*;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    /// The prefix search finds exactly what matching every kernel alias
    /// one by one finds, for patterns with and without literal prefixes.
    #[test]
    fn kernel_alias_search_equals_a_linear_scan() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let alphabet = b"ab:*?[]01";
        let word = |rnd: &mut dyn FnMut(u64) -> u64, max: u64| -> String {
            let len = rnd(max) as usize;
            (0..len).map(|_| alphabet[rnd(alphabet.len() as u64) as usize] as char).collect()
        };
        let modules = vec![ModuleSpec { name: "m".into(), path: Some("m.ko".into()), ..ModuleSpec::default() }];
        for round in 0..200 {
            let mut pb = PlanBuilder { kernel_release: "k".into(), modules: modules.clone(), ..PlanBuilder::default() };
            let count = 1 + rnd(60);
            for _ in 0..count {
                let p = word(&mut rnd, 8);
                if !p.is_empty() {
                    pb.aliases.push((p, 0));
                }
            }
            pb.aliases.push(("pci:v00008086d*sv*".into(), 0));
            pb.aliases.push(("*".into(), 0));
            pb.config_alias_count = rnd(3).min(pb.aliases.len() as u64) as u32;
            let bytes = pb.build().expect("builds");
            let plan = Plan::parse(&bytes).expect("parses");
            for _ in 0..50 {
                let q = word(&mut rnd, 10);
                let q = q.replace(['*', '?', '[', ']'], "a");
                let fast: Vec<&[u8]> = plan.kernel_aliases_matching(q.as_bytes()).map(|a| a.pattern).collect();
                let mut slow: Vec<&[u8]> = plan
                    .aliases()
                    .skip(plan.config_alias_count() as usize)
                    .filter(|a| super::super::glob_match(a.pattern, q.as_bytes()))
                    .map(|a| a.pattern)
                    .collect();
                let mut f = fast.clone();
                f.sort();
                slow.sort();
                assert_eq!(f, slow, "round {round}, query {q:?}");
            }
        }
    }
}
