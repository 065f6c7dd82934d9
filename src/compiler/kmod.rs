//! The kmod index files in `lib/modules/$KVER`: modules.dep, modules.alias,
//! modules.symbols, modules.builtin and modules.builtin.modinfo (text forms;
//! the `.bin` indexes hold the same data).
//!
//! Paths in modules.dep are relative to the module directory, except for
//! modules depmod found elsewhere (its `external` directive), which it writes
//! as absolute paths of the system it ran for. An absolute path is read as a
//! path under the root (`--root`); when it lies under `lib/modules/KVER` it is
//! planned relative to the module directory like the others, otherwise
//! relative to the root ([`crate::plan::module_flags::ROOT_PATH`]). A path
//! with `.`, `..` or empty components is refused, whatever its form.

use std::path::{Path, PathBuf};
use std::prelude::rust_2021::*;
use std::vec;

use super::error::{read, Error, Result};
use crate::plan::{glob_match, is_safe_relative_path, NONE};

pub use crate::plan::fasthash::{FastHasher, FastMap, FastSet};
use std::hash::BuildHasherDefault;

/// A module of modules.dep.
#[derive(Clone, Debug)]
pub struct ModuleEntry {
    /// Canonical name (`-` turned into `_`).
    pub name: String,
    /// Path relative to the module directory (to the root when `root_path`).
    pub path: String,
    /// modules.dep gave an absolute path outside `lib/modules/KVER`.
    pub root_path: bool,
    /// Every dependency modules.dep lists (it lists the transitive closure).
    pub deps: Vec<u32>,
}

/// An alias pattern from modules.alias (normalised like kmod's index). The
/// pattern lives in [`KmodIndex::alias_text`]: see [`KmodIndex::alias_pattern`].
#[derive(Clone, Copy, Debug)]
pub struct AliasEntry {
    /// Byte range of the pattern in `alias_text`.
    pub start: u32,
    pub len: u32,
    pub module: u32,
}

/// The lookup structure over modules.alias (built while modules.dep is read).
#[derive(Debug, Default)]
struct AliasLookup {
    /// Patterns without glob characters: (hash of the pattern, index in
    /// `aliases`), sorted (so by hash, then in file order).
    exact: Vec<(u64, u32)>,
    /// Patterns with glob characters, by the first byte of their literal
    /// prefix (slot 256: no literal prefix): (index in `aliases`, literal
    /// prefix length), in file order.
    globs: Vec<Vec<(u32, usize)>>,
}

/// An `alias PATTERN MODULE` file (modules.alias, modules.symbols), indexed.
#[derive(Debug, Default)]
pub struct AliasTable {
    /// Every `alias` line, in file order. `module` is [`crate::plan::NONE`]
    /// when modules.dep does not know the module (such an alias cannot be
    /// loaded and is never used).
    pub entries: Vec<AliasEntry>,
    /// The file with its patterns and module names normalised in place
    /// (`-` to `_` never changes a length): the entries point into it.
    pub text: String,
    lookup: AliasLookup,
}

#[derive(Debug, Default)]
pub struct KmodIndex {
    /// `lib/modules/$KVER`.
    pub dir: PathBuf,
    pub modules: Vec<ModuleEntry>,
    pub by_name: FastMap<String, u32>,
    /// modules.alias.
    pub aliases: AliasTable,
    /// modules.symbols (`alias symbol:NAME MODULE`).
    pub symbols: AliasTable,
    /// Canonical names of built-in modules (modules.builtin).
    pub builtin: FastSet<String>,
    /// Aliases of built-in modules (modules.builtin.modinfo): (pattern, name).
    pub builtin_aliases: Vec<(String, String)>,
    /// Whether the kernel has a modules.dep (a kernel may have only built-ins).
    pub has_dep: bool,
    /// How module paths resolve.
    pub paths: DepPaths,
}

/// kmod's canonical module name of a path: the basename without `.ko[.xz|.zst|.gz]`,
/// `-` turned into `_`.
pub fn modname_from_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|suf| base.strip_suffix(suf))
        .unwrap_or(base);
    canonical(stem)
}

/// `-` and `_` are the same in module names: kmod writes `_`.
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// kmod's alias_normalize/underscores: `-` becomes `_` except inside `[...]`.
pub fn normalize_alias(s: &str) -> String {
    if !s.contains('-') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut in_class = false;
    for c in s.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            '-' if !in_class => {
                out.push('_');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

fn str_hash(s: &str) -> u64 {
    use std::hash::BuildHasher;
    BuildHasherDefault::<FastHasher>::default().hash_one(s)
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn literal_prefix(s: &str) -> usize {
    s.find(['*', '?', '[', '\\']).unwrap_or(s.len())
}

/// Where modules.dep paths resolve: the root and the module directory's
/// place under it (`lib/modules/KVER`).
#[derive(Clone, Debug, Default)]
pub struct DepPaths {
    /// The root as given (`--root`), and in absolute form.
    pub root: PathBuf,
    pub root_abs: PathBuf,
    /// `lib/modules/KVER/`, relative to the root.
    pub module_dir_rel: String,
}

impl DepPaths {
    pub fn new(root: &Path, kver: &str) -> Self {
        let root_abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        DepPaths { root: root.to_path_buf(), root_abs, module_dir_rel: std::format!("lib/modules/{kver}/") }
    }

    /// A modules.dep path as the plan stores it: (path, relative to the root?),
    /// or None when it is unsafe (see the module documentation).
    pub fn resolve(&self, p: &str) -> Option<(String, bool)> {
        if !p.starts_with('/') {
            return is_safe_relative_path(p.as_bytes()).then(|| (p.to_string(), false));
        }
        // depmod -b ROOT writes the host path of an external directory that
        // was given as ROOT/...: that is inside the root too.
        let mut rel = p;
        if self.root_abs != Path::new("/") {
            if let Some(r) = self.root_abs.to_str().and_then(|r| p.strip_prefix(r)).filter(|r| r.starts_with('/')) {
                rel = r;
            }
        }
        let rel = rel.trim_start_matches('/');
        if !is_safe_relative_path(rel.as_bytes()) {
            return None;
        }
        match rel.strip_prefix(self.module_dir_rel.as_str()) {
            Some(inner) if !inner.is_empty() => Some((inner.to_string(), false)),
            _ => Some((rel.to_string(), true)),
        }
    }
}

/// The contents of a kernel's index files, for [`KmodIndex::from_texts`]
/// (None: the file is missing).
#[derive(Clone, Debug, Default)]
pub struct IndexTexts {
    pub dep: Option<Vec<u8>>,
    pub alias: Option<Vec<u8>>,
    pub symbols: Option<Vec<u8>>,
    pub builtin: Option<Vec<u8>>,
    pub builtin_modinfo: Option<Vec<u8>>,
}

impl KmodIndex {
    /// The index of the files' contents `texts`, as [`Self::load`] reads
    /// them from `dir` (which messages name).
    pub fn from_texts(dir: &Path, texts: IndexTexts, paths: &DepPaths) -> Result<Self> {
        let mut idx = KmodIndex { dir: dir.to_path_buf(), paths: paths.clone(), ..Default::default() };
        idx.has_dep = texts.dep.is_some();
        if let Some(t) = &texts.dep {
            idx.load_dep_text(&dir.join("modules.dep"), t, paths)?;
        }
        let parse = |t: Option<Vec<u8>>, name: &str| match t {
            Some(t) => parse_alias_text(&dir.join(name), t),
            None => Ok(RawAliases::default()),
        };
        idx.aliases = AliasTable::new(parse(texts.alias, "modules.alias")?, &idx.by_name);
        idx.symbols = AliasTable::new(parse(texts.symbols, "modules.symbols")?, &idx.by_name);
        if let Some(t) = &texts.builtin {
            idx.add_builtin(t);
        }
        if let Some(t) = &texts.builtin_modinfo {
            idx.add_builtin_modinfo(t);
        }
        Ok(idx)
    }

    /// Load the index files of `dir` (`lib/modules/$KVER`) for module paths
    /// resolved by `paths`. All files are optional, as they are for kmod; a
    /// kernel without modules.dep has only built-in modules.
    pub fn load(dir: &Path, paths: &DepPaths) -> Result<Self> {
        let mut idx = KmodIndex { dir: dir.to_path_buf(), paths: paths.clone(), ..Default::default() };
        let alias_path = dir.join("modules.alias");
        let symbols_path = dir.join("modules.symbols");
        let dep_path = dir.join("modules.dep");
        idx.has_dep = dep_path.exists();
        // modules.alias and modules.symbols are the biggest files: parse them
        // in other threads.
        let (raw_aliases, raw_symbols) = std::thread::scope(|s| -> Result<(RawAliases, RawAliases)> {
            let a = s.spawn(|| parse_alias_file(&alias_path));
            let y = s.spawn(|| parse_alias_file(&symbols_path));
            if idx.has_dep {
                idx.load_dep(&dep_path, paths)?;
            }
            let panicked = |what: &str| Err(Error::Other(std::format!("{what} parser panicked")));
            Ok((
                a.join().unwrap_or_else(|_| panicked("modules.alias"))?,
                y.join().unwrap_or_else(|_| panicked("modules.symbols"))?,
            ))
        })?;
        idx.aliases = AliasTable::new(raw_aliases, &idx.by_name);
        idx.symbols = AliasTable::new(raw_symbols, &idx.by_name);
        let builtin_path = dir.join("modules.builtin");
        if builtin_path.exists() {
            idx.add_builtin(&read(&builtin_path)?);
        }
        let modinfo = dir.join("modules.builtin.modinfo");
        if modinfo.exists() {
            idx.add_builtin_modinfo(&read(&modinfo)?);
        }
        Ok(idx)
    }

    /// modules.builtin: one module path a line.
    fn add_builtin(&mut self, text: &[u8]) {
        for line in text.split(|&c| c == b'\n') {
            let line = String::from_utf8_lossy(line);
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                self.builtin.insert(modname_from_path(line));
            }
        }
    }

    /// modules.builtin.modinfo: NUL-separated `NAME.KEY=VALUE`; the `alias` keys.
    fn add_builtin_modinfo(&mut self, data: &[u8]) {
        for rec in data.split(|&c| c == 0) {
            let rec = String::from_utf8_lossy(rec);
            if let Some((name, alias)) = rec.split_once(".alias=") {
                if !name.contains('=') && !alias.is_empty() {
                    self.builtin_aliases.push((normalize_alias(alias), canonical(name)));
                }
            }
        }
    }

    /// The module of a modules.dep path (line `line` of `file`), added when new.
    fn intern(&mut self, file: &Path, line: usize, raw: &str, paths: &DepPaths) -> Result<u32> {
        let name = modname_from_path(raw);
        if let Some(&i) = self.by_name.get(&name) {
            return Ok(i);
        }
        let Some((path, root_path)) = paths.resolve(raw) else {
            return Err(Error::UnsafePath { path: file.to_path_buf(), line, module_path: raw.to_string() });
        };
        let i = self.modules.len() as u32;
        self.modules.push(ModuleEntry { name: name.clone(), path, root_path, deps: vec![] });
        self.by_name.insert(name, i);
        Ok(i)
    }

    fn load_dep(&mut self, path: &Path, paths: &DepPaths) -> Result<()> {
        self.load_dep_text(path, &read(path)?, paths)
    }

    /// modules.dep's contents `text`, read from `path` (for messages).
    fn load_dep_text(&mut self, path: &Path, text: &[u8], paths: &DepPaths) -> Result<()> {
        let text = String::from_utf8_lossy(text);
        // First pass: every module that has a line, so indices follow the file.
        let mut lines: Vec<(usize, u32, &str)> = Vec::with_capacity(text.len() / 64);
        let estimate = text.len() / 100;
        self.modules.reserve(estimate);
        self.by_name.reserve(estimate);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((module, deps)) = line.split_once(':') else {
                return Err(Error::Config {
                    path: path.to_path_buf(),
                    line: n + 1,
                    msg: "not a modules.dep line ('path: deps...'); regenerate it with depmod".into(),
                });
            };
            let module = module.trim();
            let i = self.intern(path, n + 1, module, paths)?;
            lines.push((n + 1, i, deps));
        }
        let mut by_path: FastMap<&str, u32> = FastMap::default();
        by_path.reserve(self.modules.len());
        for (n, i, deps) in lines {
            let mut list = Vec::new();
            for d in deps.split_ascii_whitespace() {
                let di = match by_path.get(d) {
                    Some(&di) => di,
                    None => {
                        let di = self.intern(path, n, d, paths)?;
                        by_path.insert(d, di);
                        di
                    }
                };
                if di != i && !list.contains(&di) {
                    list.push(di);
                }
            }
            self.modules[i as usize].deps = list;
        }
        Ok(())
    }

    /// Modules whose modules.alias pattern matches `name` (already
    /// normalised), each once, in modules.alias order.
    pub fn lookup_alias(&self, name: &str) -> Vec<u32> {
        self.aliases.lookup(name)
    }

    /// Modules exporting `symbol:NAME` (modules.symbols), each once.
    pub fn lookup_symbol(&self, name: &str) -> Vec<u32> {
        self.symbols.lookup(name)
    }

    /// Whether `name` (canonical) is a module of modules.dep or a built-in.
    pub fn knows(&self, name: &str) -> bool {
        self.by_name.contains_key(name) || self.builtin.contains(name)
    }

    /// Built-in modules one of whose modinfo aliases matches `name`.
    pub fn lookup_builtin_alias(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (pat, m) in &self.builtin_aliases {
            if glob_match(pat.as_bytes(), name.as_bytes()) && !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }
}

impl AliasTable {
    fn new(raw: RawAliases, by_name: &FastMap<String, u32>) -> Self {
        let RawAliases { text, lines, lookup } = raw;
        let mut entries = Vec::with_capacity(lines.len());
        for (ps, pl, ms, ml) in lines {
            let m = by_name.get(&text[ms as usize..(ms + ml) as usize]).copied().unwrap_or(NONE);
            entries.push(AliasEntry { start: ps, len: pl, module: m });
        }
        AliasTable { entries, text, lookup }
    }

    /// The pattern of an entry.
    pub fn pattern(&self, e: &AliasEntry) -> &str {
        self.text.get(e.start as usize..(e.start + e.len) as usize).unwrap_or("")
    }

    /// Modules whose pattern matches `name` (already normalised), each once,
    /// in file order.
    pub fn lookup(&self, name: &str) -> Vec<u32> {
        let l = &self.lookup;
        let mut hits: Vec<u32> = Vec::new();
        let h = str_hash(name);
        let first = l.exact.partition_point(|&(x, _)| x < h);
        for &(x, e) in &l.exact[first..] {
            if x != h {
                break;
            }
            if self.pattern(&self.entries[e as usize]) == name {
                hits.push(e);
            }
        }
        let first = name.as_bytes().first().map_or(256, |&c| c as usize);
        let slot = |i: usize| l.globs.get(i).map_or(&[][..], Vec::as_slice);
        let candidates = slot(first).iter().chain(if first == 256 { &[][..] } else { slot(256) });
        for &(e, plen) in candidates {
            let pat = self.pattern(&self.entries[e as usize]);
            if name.as_bytes().starts_with(&pat.as_bytes()[..plen]) && glob_match(pat.as_bytes(), name.as_bytes()) {
                hits.push(e);
            }
        }
        hits.sort_unstable();
        let mut out: Vec<u32> = Vec::with_capacity(hits.len());
        for e in hits {
            let m = self.entries[e as usize].module;
            if m != NONE && !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }
}

/// modules.alias, normalised in place, and the byte ranges of each `alias`
/// line's (pattern, module): `(pattern start, len, module start, len)`.
#[derive(Debug, Default)]
struct RawAliases {
    text: String,
    lines: Vec<(u32, u32, u32, u32)>,
    lookup: AliasLookup,
}

impl AliasLookup {
    /// Index the patterns of `lines` (entry `e` = line `e`).
    fn build(text: &str, lines: &[(u32, u32, u32, u32)]) -> Self {
        let mut l = AliasLookup { exact: Vec::new(), globs: vec![Vec::new(); 257] };
        for (e, &(ps, pl, _, _)) in lines.iter().enumerate() {
            let pattern = &text[ps as usize..(ps + pl) as usize];
            if is_glob(pattern) {
                let plen = literal_prefix(pattern);
                let slot = if plen == 0 { 256 } else { pattern.as_bytes()[0] as usize };
                l.globs[slot].push((e as u32, plen));
            } else {
                l.exact.push((str_hash(pattern), e as u32));
            }
        }
        l.exact.sort_unstable();
        l
    }
}

/// Read modules.alias (a missing file has no aliases) without a copy or an
/// allocation per line: patterns get kmod's alias normalisation and module
/// names their canonical form in place, both of which keep every length.
fn parse_alias_file(path: &Path) -> Result<RawAliases> {
    if !path.exists() {
        return Ok(RawAliases::default());
    }
    parse_alias_text(path, read(path)?)
}

/// [`parse_alias_file`] of the file's contents `text`, read from `path`.
fn parse_alias_text(path: &Path, mut text: Vec<u8>) -> Result<RawAliases> {
    if std::str::from_utf8(&text).is_err() {
        text = String::from_utf8_lossy(&text).into_owned().into_bytes();
    }
    if text.len() > u32::MAX as usize {
        return Err(Error::Other(std::format!("{}: too large", path.display())));
    }
    let mut lines = Vec::with_capacity(text.len() / 48);
    {
        let s = std::str::from_utf8(&text).map_err(|_| Error::Other(std::format!("{}: not UTF-8", path.display())))?;
        let base = s.as_ptr() as usize;
        let at = |w: &str| (w.as_ptr() as usize - base) as u32;
        for line in s.lines() {
            let mut it = line.split_ascii_whitespace();
            if it.next() != Some("alias") {
                continue;
            }
            let (Some(pattern), Some(module)) = (it.next(), it.next()) else { continue };
            lines.push((at(pattern), pattern.len() as u32, at(module), module.len() as u32));
        }
    }
    for &(ps, pl, ms, ml) in &lines {
        let pat = &mut text[ps as usize..(ps + pl) as usize];
        if pat.contains(&b'-') {
            normalize_alias_bytes(pat);
        }
        for c in &mut text[ms as usize..(ms + ml) as usize] {
            if *c == b'-' {
                *c = b'_';
            }
        }
    }
    // Only ASCII '-' became ASCII '_': still UTF-8.
    let text = String::from_utf8(text).map_err(|_| Error::Other(std::format!("{}: not UTF-8", path.display())))?;
    let lookup = AliasLookup::build(&text, &lines);
    Ok(RawAliases { text, lines, lookup })
}

/// [`normalize_alias`] in place.
fn normalize_alias_bytes(s: &mut [u8]) {
    crate::plan::normalize_alias_in_place(s)
}

/// Compare kernel versions the way `sort -V` does for them: runs of digits
/// numerically, everything else bytewise.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].iter().skip_while(|&&c| c == b'0').count();
            let nb = b[sj..j].iter().skip_while(|&&c| c == b'0').count();
            let ord = na.cmp(&nb).then_with(|| {
                a[i - na..i].cmp(&b[j - nb..j])
            });
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// Whether `dir` holds a kernel's module indexes: a modules.dep, or at
/// least the built-in lists of a kernel without loadable modules.
pub fn is_kernel_dir(dir: &Path) -> bool {
    ["modules.dep", "modules.builtin", "modules.builtin.modinfo"].iter().any(|f| dir.join(f).is_file())
}

/// The kernel version to use under `root/lib/modules`: the only directory
/// holding a modules.dep (or only built-in lists, see [`is_kernel_dir`]), or
/// the newest of several.
pub fn default_kver(modules_root: &Path) -> Result<String> {
    let rd = std::fs::read_dir(modules_root).map_err(|_| Error::NoKernel { dir: modules_root.to_path_buf() })?;
    let mut best: Option<String> = None;
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else { continue };
        if !is_kernel_dir(&e.path()) {
            continue;
        }
        if best.as_deref().is_none_or(|b| version_cmp(&name, b).is_gt()) {
            best = Some(name);
        }
    }
    best.ok_or_else(|| Error::NoKernel { dir: modules_root.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(modname_from_path("kernel/a/snd-hda-intel.ko.xz"), "snd_hda_intel");
        assert_eq!(modname_from_path("x.ko"), "x");
        assert_eq!(normalize_alias("pci:v*d-x[a-z]"), "pci:v*d_x[a-z]");
        let mut b = *b"pci:v*d-x[a-z]-";
        normalize_alias_bytes(&mut b);
        assert_eq!(&b, b"pci:v*d_x[a-z]_");
    }

    #[test]
    fn versions() {
        use std::cmp::Ordering::*;
        assert_eq!(version_cmp("6.1.0-56-amd64", "6.1.0-9-amd64"), Greater);
        assert_eq!(version_cmp("6.10.1", "6.9.12"), Greater);
        assert_eq!(version_cmp("5.4", "5.4"), Equal);
        assert_eq!(version_cmp("5.4", "5.4.1"), Less);
    }
}
