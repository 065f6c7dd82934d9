//! The kmod index files in `lib/modules/$KVER`: modules.dep, modules.alias,
//! modules.builtin and modules.builtin.modinfo (text forms; the `.bin`
//! indexes hold the same data).

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
    /// Path relative to the module directory, as modules.dep writes it.
    pub path: String,
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

#[derive(Debug, Default)]
pub struct KmodIndex {
    /// `lib/modules/$KVER`.
    pub dir: PathBuf,
    pub modules: Vec<ModuleEntry>,
    pub by_name: FastMap<String, u32>,
    /// Every modules.alias line, in file order. `module` is
    /// [`crate::plan::NONE`] when modules.dep does not know the module (such
    /// an alias cannot be loaded and is never used).
    pub aliases: Vec<AliasEntry>,
    /// modules.alias with its patterns and module names normalised in place
    /// (`-` to `_` never changes a length): the aliases point into it.
    pub alias_text: String,
    alias_lookup: AliasLookup,
    /// Canonical names of built-in modules.
    pub builtin: FastSet<String>,
    /// Aliases of built-in modules (modules.builtin.modinfo): (pattern, name).
    pub builtin_aliases: Vec<(String, String)>,
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

impl KmodIndex {
    /// Load the index files of `dir` (`lib/modules/$KVER`). modules.dep is
    /// required; the others are optional, as they are for kmod.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut idx = KmodIndex { dir: dir.to_path_buf(), ..Default::default() };
        let alias_path = dir.join("modules.alias");
        // modules.alias is the biggest file: parse it in a second thread.
        let raw_aliases = std::thread::scope(|s| -> Result<RawAliases> {
            let h = s.spawn(|| parse_alias_file(&alias_path));
            idx.load_dep(&dir.join("modules.dep"))?;
            h.join().unwrap_or_else(|_| Err(Error::Other("modules.alias parser panicked".into())))
        })?;
        idx.add_aliases(raw_aliases);
        let builtin_path = dir.join("modules.builtin");
        if builtin_path.exists() {
            let text = read(&builtin_path)?;
            for line in text.split(|&c| c == b'\n') {
                let line = String::from_utf8_lossy(line);
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    idx.builtin.insert(modname_from_path(line));
                }
            }
        }
        let modinfo = dir.join("modules.builtin.modinfo");
        if modinfo.exists() {
            let data = read(&modinfo)?;
            for rec in data.split(|&c| c == 0) {
                let rec = String::from_utf8_lossy(rec);
                if let Some((name, alias)) = rec.split_once(".alias=") {
                    if !name.contains('=') && !alias.is_empty() {
                        idx.builtin_aliases.push((normalize_alias(alias), canonical(name)));
                    }
                }
            }
        }
        Ok(idx)
    }

    fn intern(&mut self, path: &str) -> u32 {
        let name = modname_from_path(path);
        if let Some(&i) = self.by_name.get(&name) {
            return i;
        }
        let i = self.modules.len() as u32;
        self.modules.push(ModuleEntry { name: name.clone(), path: path.to_string(), deps: vec![] });
        self.by_name.insert(name, i);
        i
    }

    fn load_dep(&mut self, path: &Path) -> Result<()> {
        let text = read(path)?;
        let text = String::from_utf8_lossy(&text);
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
            self.check_path(path, n + 1, module)?;
            let i = self.intern(module);
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
                        self.check_path(path, n, d)?;
                        let di = self.intern(d);
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

    fn check_path(&self, file: &Path, line: usize, p: &str) -> Result<()> {
        if is_safe_relative_path(p.as_bytes()) {
            Ok(())
        } else {
            Err(Error::UnsafePath { path: file.to_path_buf(), line, module_path: p.to_string() })
        }
    }

    fn add_aliases(&mut self, raw: RawAliases) {
        let RawAliases { text, lines, lookup } = raw;
        self.aliases.reserve(lines.len());
        for (ps, pl, ms, ml) in lines {
            let m = self.by_name.get(&text[ms as usize..(ms + ml) as usize]).copied().unwrap_or(NONE);
            self.aliases.push(AliasEntry { start: ps, len: pl, module: m });
        }
        self.alias_text = text;
        self.alias_lookup = lookup;
    }

    /// The pattern of an alias entry.
    pub fn alias_pattern(&self, e: &AliasEntry) -> &str {
        self.alias_text.get(e.start as usize..(e.start + e.len) as usize).unwrap_or("")
    }

    /// Modules whose modules.alias pattern matches `name` (already
    /// normalised), each once, in modules.alias order.
    pub fn lookup_alias(&self, name: &str) -> Vec<u32> {
        let l = &self.alias_lookup;
        let mut hits: Vec<u32> = Vec::new();
        let h = str_hash(name);
        let first = l.exact.partition_point(|&(x, _)| x < h);
        for &(x, e) in &l.exact[first..] {
            if x != h {
                break;
            }
            if self.alias_pattern(&self.aliases[e as usize]) == name {
                hits.push(e);
            }
        }
        let first = name.as_bytes().first().map_or(256, |&c| c as usize);
        let slot = |i: usize| l.globs.get(i).map_or(&[][..], Vec::as_slice);
        let candidates = slot(first).iter().chain(if first == 256 { &[][..] } else { slot(256) });
        for &(e, plen) in candidates {
            let pat = self.alias_pattern(&self.aliases[e as usize]);
            if name.as_bytes().starts_with(&pat.as_bytes()[..plen])
                && glob_match(pat.as_bytes(), name.as_bytes())
            {
                hits.push(e);
            }
        }
        hits.sort_unstable();
        let mut out: Vec<u32> = Vec::with_capacity(hits.len());
        for e in hits {
            let m = self.aliases[e as usize].module;
            if m != NONE && !out.contains(&m) {
                out.push(m);
            }
        }
        out
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
    let mut text = read(path)?;
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
    let mut in_class = false;
    for c in s {
        match *c {
            b'[' => in_class = true,
            b']' => in_class = false,
            b'-' if !in_class => *c = b'_',
            _ => {}
        }
    }
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

/// The kernel version to use under `root/lib/modules`: the only directory
/// holding a modules.dep, or the newest of several.
pub fn default_kver(modules_root: &Path) -> Result<String> {
    let rd = std::fs::read_dir(modules_root).map_err(|_| Error::NoKernel { dir: modules_root.to_path_buf() })?;
    let mut best: Option<String> = None;
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else { continue };
        if !e.path().join("modules.dep").is_file() {
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
