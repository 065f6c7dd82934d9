//! The kernel's index files: the input is modules.dep, modules.alias,
//! modules.symbols, modules.builtin, modules.builtin.modinfo and
//! modules.softdep (separated by 0xff bytes). What is accepted must be a
//! consistent index, and its alias lookup must find exactly what matching
//! every pattern one by one finds; a refusal names the file and line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parmod::compiler::config::{parse_modprobe_text, ModprobeConfig};
use parmod::compiler::kmod::{canonical, modname_from_path, normalize_alias, AliasTable, DepPaths, IndexTexts, KmodIndex};
use parmod::plan::{glob_match, is_safe_relative_path, NONE};
use parmod_fuzz::input::parts;
use std::path::Path;

/// What a linear scan of the table finds for `name`: each module once, in
/// the order of its first matching line. As in kmod's index, a pattern is
/// a glob (fnmatch) only with a `*`, `?` or `[` in it; else it is the name.
fn scan(t: &AliasTable, name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in &t.entries {
        let p = t.pattern(e);
        let hit = if p.contains(['*', '?', '[']) { glob_match(p.as_bytes(), name.as_bytes()) } else { p == name };
        if e.module != NONE && hit && !out.contains(&e.module) {
            out.push(e.module);
        }
    }
    out
}

fn queries(t: &AliasTable) -> Vec<String> {
    let mut q = vec![String::new(), "x".to_string()];
    for e in t.entries.iter().take(64) {
        let p = t.pattern(e);
        let lit = p.find(['*', '?', '[', '\\']).map_or(p, |i| &p[..i]);
        q.push(lit.to_string());
        q.push(format!("{lit}0"));
        q.push(p.replace(['*', '?', '[', ']', '\\'], "a"));
        q.push(p.to_string());
    }
    q
}

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 6);
    let some = |b: &[u8]| (!b.is_empty()).then(|| b.to_vec());
    let texts = IndexTexts {
        dep: some(p[0]),
        alias: some(p[1]),
        symbols: some(p[2]),
        builtin: some(p[3]),
        builtin_modinfo: some(p[4]),
    };
    let dir = Path::new("/lib/modules/6.1.0-fuzz");
    let paths = DepPaths::new(Path::new("/nonexistent-root"), "6.1.0-fuzz");
    let idx = match KmodIndex::from_texts(dir, texts, &paths) {
        Ok(i) => i,
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains("/lib/modules/6.1.0-fuzz/modules."), "an index error must name its file: {m}");
            return;
        }
    };
    assert_eq!(idx.by_name.len(), idx.modules.len(), "one module per name");
    for (i, m) in idx.modules.iter().enumerate() {
        assert_eq!(idx.by_name.get(&m.name), Some(&(i as u32)), "module {}: by_name", m.name);
        assert_eq!(m.name, modname_from_path(&m.path), "module {}: name of its path", m.name);
        assert!(is_safe_relative_path(m.path.as_bytes()), "module {}: path {:?}", m.name, m.path);
        assert!(!m.deps.contains(&(i as u32)), "module {} depends on itself", m.name);
        let mut d = m.deps.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), m.deps.len(), "module {}: a dependency listed twice", m.name);
        assert!(m.deps.iter().all(|&x| (x as usize) < idx.modules.len()));
    }
    for n in &idx.builtin {
        assert_eq!(*n, canonical(n), "built-in names are canonical");
    }
    for (pat, name) in &idx.builtin_aliases {
        assert_eq!(*pat, normalize_alias(pat));
        assert_eq!(*name, canonical(name));
        let _ = idx.lookup_builtin_alias(pat);
    }
    for t in [&idx.aliases, &idx.symbols] {
        for e in &t.entries {
            let pat = t.pattern(e);
            assert!(!pat.is_empty() && pat == normalize_alias(pat), "alias pattern {pat:?} as stored");
        }
        for q in queries(t) {
            assert_eq!(t.lookup(&q), scan(t, &q), "alias lookup of {q:?}");
        }
    }
    // modules.softdep is read as a modprobe.d file.
    let mut cfg = ModprobeConfig::default();
    let mut warnings = Vec::new();
    let softdep = dir.join("modules.softdep");
    match parse_modprobe_text(&mut cfg, &softdep, &String::from_utf8_lossy(p[5]), &mut |w| warnings.push(w)) {
        Ok(()) => {
            for w in &warnings {
                assert!(w.starts_with("/lib/modules/6.1.0-fuzz/modules.softdep:"), "{w}");
            }
            for s in &cfg.softdeps {
                assert_eq!(s.pattern, normalize_alias(&s.pattern));
            }
        }
        Err(e) => assert!(e.to_string().starts_with("/lib/modules/6.1.0-fuzz/modules.softdep:")),
    }
});
