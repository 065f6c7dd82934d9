//! Integration tests of the plan writer and the validating reader.
//!
//! * a sample plan that uses every feature of the format round-trips field
//!   by field;
//! * every truncation and every single-bit flip of it is refused;
//! * every single-bit flip with the checksum recomputed (so only the
//!   structural checks stand in the way) is either refused or read back
//!   consistently by every accessor, without a panic;
//! * hand-made corruptions are refused with the right error;
//! * the writer refuses invalid input, naming the module;
//! * a large random DAG round-trips.
//!
//! Run with `cargo test --features host`.
#![cfg(feature = "host")]

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use parmod::plan::{
    crc32c, is_safe_relative_path, module_flags, wait_flags, Compression, ModuleSpec, Plan, PlanBuilder,
    PlanError, DeviceWaitSpec, EDGE_HARD, EDGE_POST, HEADER_SIZE, MAGIC, MODULE_RECORD_SIZE, NONE, VERSION,
};

// Byte offsets of the format, written out here on purpose: the tests pin the
// layout that docs/plan-format.md describes.
const H_VERSION: usize = 8;
const H_FILE_SIZE: usize = 16;
const H_CHECKSUM: usize = 20;
const H_CONFIG_ALIASES: usize = 104;
const H_RESERVED: usize = 108;
const R_WAITS_FOR: usize = 32;
const R_DEPENDENTS: usize = 40;

/// A named edit of a builder, for the writer tests.
type Edit = (&'static str, Box<dyn Fn(&mut PlanBuilder)>);

// ---------------------------------------------------------------- helpers

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Recompute the checksum: CRC-32C of the file with the checksum field zeroed.
fn fix_crc(b: &mut [u8]) {
    b[H_CHECKSUM..H_CHECKSUM + 4].fill(0);
    let c = crc32c(b);
    put_u32(b, H_CHECKSUM, c);
}

fn module_rec(i: u32) -> usize {
    HEADER_SIZE + i as usize * MODULE_RECORD_SIZE
}

fn m(name: &str, path: Option<&str>, deps: &[(u32, bool)]) -> ModuleSpec {
    ModuleSpec {
        name: name.into(),
        path: path.map(Into::into),
        deps: deps.to_vec(),
        ..Default::default()
    }
}

fn wait(path: &str, module: Option<u32>, timeout_ms: u32) -> DeviceWaitSpec {
    DeviceWaitSpec { path: path.into(), module, timeout_ms }
}

/// A plan that uses everything the format has.
fn sample() -> PlanBuilder {
    use module_flags::*;
    let mut mods = vec![
        // 0: built in, never loaded.
        m("crc32c_generic", None, &[]),
        // 1: hard on a builtin.
        m("libcrc32c", Some("kernel/lib/libcrc32c.ko.xz"), &[(0, true)]),
        // 2: root with parameters.
        m("snd", Some("kernel/sound/core/snd.ko.zst"), &[]),
        // 3, 4: diamond 2 -> 3 -> 4, 2 -> 4.
        m("snd-timer", Some("kernel/sound/core/snd-timer.ko.gz"), &[(2, true)]),
        m("snd-pcm", Some("kernel/sound/core/snd-pcm.ko"), &[(3, true), (2, true)]),
        // 5, 6, 7: diamond 4 -> 5 -> 6 -> 7, 4 -> 6 (soft), 5 -> 7.
        m("snd-hda-core", Some("kernel/sound/hda/snd-hda-core.ko.xz"), &[(4, true)]),
        m("snd_hda_codec", Some("kernel/sound/pci/hda/snd-hda-codec.ko.zst"), &[(5, true), (4, false)]),
        // 7: unsorted input, a soft edge (its soft pre-dependency 1).
        m(
            "snd-hda-intel",
            Some("kernel/sound/pci/hda/snd-hda-intel.ko.zst"),
            &[(6, true), (5, true), (2, true), (1, false)],
        ),
        // 8: two hops down from the builtin.
        m("xfs", Some("kernel/fs/xfs/xfs.ko.xz"), &[(1, true)]),
        // 9: duplicate edge soft + hard: the hard one wins.
        m(
            "snd-hda-codec-realtek",
            Some("kernel/sound/pci/hda/snd-hda-codec-realtek.ko"),
            &[(6, false), (6, true), (7, false)],
        ),
        // 10: independent, own timeout.
        m("e1000e", Some("kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.gz"), &[]),
        // 11: soft only on the builtin.
        m("dm-mod", Some("kernel/drivers/md/dm-mod.ko"), &[(0, false)]),
        // 12: disabled by configuration and blacklisted, with its file.
        m("pcspkr", Some("kernel/drivers/input/misc/pcspkr.ko"), &[(2, true)]),
        // 13: a disabled name without a module file.
        m("no-such-thing", None, &[]),
        // 14: outside the module directory (depmod's external directory).
        m("ext", Some("lib/modules/external/ext.ko.xz"), &[(2, true)]),
        // 15: a post soft dependency of snd-hda-intel only, and its
        // post-only dependency 16.
        m("snd-post-dep", Some("kernel/sound/snd-post-dep.ko"), &[(7, false)]),
        m("snd-post", Some("kernel/sound/snd-post.ko"), &[(7, false), (15, true)]),
    ];
    mods[2].params = "cards_limit=2 slots=snd-hda-intel".into();
    mods[7].params = "model=auto enable_msi=1 power_save=0".into();
    mods[7].flags = REQUESTED;
    mods[7].soft_pre = vec![1];
    mods[7].soft_post = vec![9, 11, 16];
    mods[8].flags = REQUESTED | IGNORE_MODVERSIONS;
    mods[9].flags = SOFT_ONLY;
    mods[10].flags = REQUESTED | IGNORE_VERMAGIC;
    mods[10].params = "InterruptThrottleRate=3000".into();
    mods[10].timeout_ms = 5000;
    mods[11].flags = IGNORE_MODVERSIONS | IGNORE_VERMAGIC;
    mods[11].soft_pre = vec![8];
    mods[12].flags = DISABLED | BLACKLISTED;
    mods[13].flags = DISABLED | REQUESTED;
    mods[14].flags = ROOT_PATH | REQUESTED;
    mods[15].flags = POST_ONLY;
    mods[15].post_deps = vec![7];
    mods[16].flags = POST_ONLY | SOFT_ONLY;
    mods[16].post_deps = vec![7];
    for (i, x) in mods.iter_mut().enumerate() {
        x.weight_us = 100 + 37 * i as u32 * (i as u32 % 5);
        if x.path.is_some() {
            x.file_size = 10_000 + 1234 * i as u32;
        }
    }
    PlanBuilder {
        kernel_release: "6.6.30-v8+".into(),
        jobs: 4,
        module_timeout_ms: 3000,
        deadline_ms: 20_000,
        modules: mods,
        // Deliberately not grouped: the writer groups per module, finals last.
        waits: vec![
            wait("/dev/sda", None, 10_000),
            wait("/dev/snd/controlC*", Some(7), 2000),
            wait("/sys/class/net/eth0", Some(10), 3000),
            wait("/dev/snd/pcmC0D0p", Some(7), 0),
            wait("/sys/module/xfs", None, 0),
            wait("/dev/mapper/control", Some(11), 500),
        ],
        aliases: vec![
            ("pci:v00008086d*sv*sd*bc04sc03i00*".into(), 7),
            ("fs-xfs".into(), 8),
            ("crypto-crc32c".into(), 0),
            ("pci:v00008086d000015B8sv*sd*bc*sc*i*".into(), 10),
            ("devname:mapper/control".into(), 11),
        ],
        config_alias_count: 2,
        flags: parmod::plan::plan_flags::ALL_MODULES,
    }
}

/// The smallest plans: nothing but a kernel release, and one builtin.
fn tiny_plans() -> Vec<PlanBuilder> {
    let empty = PlanBuilder { kernel_release: "6.1.0".into(), ..Default::default() };
    let one = PlanBuilder {
        kernel_release: "6.1.0".into(),
        modules: vec![m("a", Some("a.ko"), &[])],
        waits: vec![wait("/dev/a", None, 1)],
        aliases: vec![("x".into(), 0)],
        ..Default::default()
    };
    vec![empty, one]
}

/// The writer's normalisation, done independently: sorted by index, one
/// edge per module, hard winning over soft.
fn normalised(spec: &[(u32, bool)]) -> Vec<(u32, bool)> {
    let mut by: BTreeMap<u32, bool> = BTreeMap::new();
    for &(d, hard) in spec {
        *by.entry(d).or_insert(false) |= hard;
    }
    by.into_iter().collect()
}

fn edges(it: impl Iterator<Item = parmod::plan::Edge>) -> Vec<(u32, bool)> {
    it.map(|e| (e.module, e.hard)).collect()
}

/// The modules of a list whose edge carries the post bit.
fn post_edges(it: impl Iterator<Item = parmod::plan::Edge>) -> Vec<u32> {
    it.filter(|e| e.post).map(|e| e.module).collect()
}


fn is_wait_path(p: &[u8]) -> bool {
    match p.strip_prefix(b"/dev/").or_else(|| p.strip_prefix(b"/sys/")) {
        Some(rest) => is_safe_relative_path(rest),
        None => false,
    }
}

fn printable_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| c > b' ' && c < 0x7f && c != b'/')
}

/// Walk every accessor of a plan the reader accepted and check every
/// invariant the runtime relies on.
fn check_consistent(p: &Plan<'_>) -> Result<(), String> {
    macro_rules! ensure {
        ($c:expr, $($t:tt)*) => { if !$c { return Err(format!($($t)*)); } };
    }
    let n = p.module_count();
    let nw = p.wait_count();
    let na = p.alias_count();
    ensure!(printable_token(p.kernel_release()), "kernel_release {:?}", p.kernel_release());
    ensure!(p.jobs() <= 4096, "jobs {}", p.jobs());
    ensure!(p.bytes().len() == u32_at(p.bytes(), H_FILE_SIZE) as usize, "file size");
    let _ = (p.checksum(), p.module_timeout_ms(), p.deadline_ms(), p.total_weight_us(), p.edge_count());
    ensure!(p.module(n).is_none() && p.wait(nw).is_none() && p.alias(na).is_none(), "out of range accessor");
    ensure!(p.modules().count() == n as usize, "modules() count");
    ensure!(p.waits().count() == nw as usize, "waits() count");
    ensure!(p.aliases().count() == na as usize, "aliases() count");

    let mut waits_total = 0usize;
    let mut deps_total = 0usize;
    for (i, md) in p.modules().enumerate() {
        let i = i as u32;
        ensure!(md.index() == i, "module {i}: index {}", md.index());
        ensure!(printable_token(md.name()), "module {i}: name {:?}", md.name());
        if n <= 100 || i.is_multiple_of(97) {
            ensure!(p.find_module(md.name()).is_some(), "module {i}: find_module");
        }
        let flags = md.flags();
        ensure!(flags & !module_flags::KNOWN == 0, "module {i}: flags {flags:#x}");
        let bits = (flags & module_flags::COMPRESSION_MASK) >> module_flags::COMPRESSION_SHIFT;
        ensure!(
            Compression::from_bits(bits) == Some(md.compression()),
            "module {i}: compression bits {bits}"
        );
        let _ = md.compression().kernel_name();
        ensure!(!(md.is_builtin() && md.is_disabled()), "module {i}: built in and disabled");
        let _ = (md.is_blacklisted(), md.is_post_only());
        if md.is_builtin() || (md.is_disabled() && md.path().is_none()) {
            ensure!(md.path().is_none() && md.path_with_nul().is_none(), "module {i}: builtin with path");
            ensure!(md.compression() == Compression::None, "module {i}: builtin compressed");
            ensure!(!md.is_root_path(), "module {i}: root path without a path");
        } else {
            let path = md.path().ok_or(format!("module {i}: no path"))?;
            ensure!(is_safe_relative_path(path), "module {i}: unsafe path {path:?}");
            ensure!(
                Compression::from_path(path) == Some(md.compression()),
                "module {i}: compression vs path"
            );
            let pn = md.path_with_nul().ok_or(format!("module {i}: no path_with_nul"))?;
            ensure!(
                pn.len() == path.len() + 1 && pn.starts_with(path) && pn.last() == Some(&0),
                "module {i}: path_with_nul"
            );
        }
        let params = md.params();
        let pn = md.params_with_nul();
        ensure!(!params.contains(&0), "module {i}: NUL in params");
        ensure!(
            pn.len() == params.len() + 1 && pn.starts_with(params) && pn.last() == Some(&0),
            "module {i}: params_with_nul"
        );
        let _ = (md.weight_us(), md.timeout_ms(), md.priority_us(), md.file_size());

        let w = md.deps();
        ensure!(w.len() == w.clone().count(), "module {i}: deps len");
        for e in w.clone().chain(md.dependents()) {
            ensure!(!(e.hard && e.post), "module {i}: edge {e:?} is hard and post");
        }
        let posts = post_edges(w.clone());
        for &j in &posts {
            ensure!(
                post_edges(p.module(j).unwrap().dependents()).contains(&i),
                "module {i}: post edge to {j} not mirrored"
            );
        }
        let w = edges(w);
        waits_total += w.len();
        for (k, &(j, hard)) in w.iter().enumerate() {
            ensure!(j < n, "module {i}: deps {j} >= module_count");
            ensure!(j < i, "module {i}: deps {j} not before it");
            ensure!(k == 0 || w[k - 1].0 < j, "module {i}: deps not strictly increasing");
            let theirs = edges(p.module(j).unwrap().dependents());
            ensure!(theirs.contains(&(i, hard)), "module {i}: deps ({j}, {hard}) not mirrored");
        }
        let d = md.dependents();
        ensure!(d.len() == d.clone().count(), "module {i}: dependents len");
        let d = edges(d);
        deps_total += d.len();
        for (k, &(j, hard)) in d.iter().enumerate() {
            ensure!(j < n, "module {i}: dependent {j} >= module_count");
            ensure!(j > i, "module {i}: dependent {j} not after it");
            ensure!(k == 0 || d[k - 1].0 < j, "module {i}: dependents not strictly increasing");
            let theirs = edges(p.module(j).unwrap().deps());
            ensure!(theirs.contains(&(i, hard)), "module {i}: dependent ({j}, {hard}) not mirrored");
        }
        for (what, list) in [("soft_pre", md.soft_pre()), ("soft_post", md.soft_post())] {
            for e in list {
                ensure!(!e.hard && !e.post && e.module < n && e.module != i, "module {i}: {what} entry {e:?}");
            }
        }
        let dw = md.dev_waits();
        ensure!(dw.start <= dw.end && dw.end <= nw, "module {i}: dev_waits {dw:?} of {nw}");
        for wi in dw {
            let wr = p.wait(wi).ok_or(format!("module {i}: dev_wait {wi} missing"))?;
            ensure!(wr.module() == Some(i), "module {i}: dev_wait {wi} follows {:?}", wr.module());
        }
    }
    ensure!(waits_total == deps_total, "deps total {waits_total} != dependents total {deps_total}");

    for (wi, wr) in p.waits().enumerate() {
        let wi = wi as u32;
        ensure!(wr.index() == wi, "wait {wi}: index");
        let path = wr.path();
        ensure!(is_wait_path(path), "wait {wi}: path {path:?}");
        let pn = wr.path_with_nul();
        ensure!(
            pn.len() == path.len() + 1 && pn.starts_with(path) && pn.last() == Some(&0),
            "wait {wi}: path_with_nul"
        );
        ensure!(wr.flags() & !wait_flags::KNOWN == 0, "wait {wi}: flags");
        let _ = (wr.is_glob(), wr.timeout_ms());
        if let Some(mi) = wr.module() {
            ensure!(mi < n, "wait {wi}: module {mi}");
            ensure!(
                p.module(mi).unwrap().dev_waits().contains(&wi),
                "wait {wi}: not in module {mi}'s dev_waits"
            );
        }
    }
    for (ai, a) in p.aliases().enumerate() {
        ensure!(!a.pattern.is_empty() && !a.pattern.contains(&0), "alias {ai}: pattern {:?}", a.pattern);
        ensure!(a.module < n, "alias {ai}: module {}", a.module);
    }
    ensure!(p.config_alias_count() <= na, "config_alias_count {} of {na}", p.config_alias_count());
    Ok(())
}

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

/// Check the reader's read-back against the builder, field by field.
fn check_round_trip(b: &PlanBuilder, bytes: &[u8]) {
    let p = Plan::parse(bytes).expect("writer output parses");
    check_consistent(&p).unwrap();
    let n = b.modules.len();
    assert_eq!(p.module_count() as usize, n);
    assert_eq!(p.kernel_release(), b.kernel_release.as_bytes());
    assert_eq!(p.jobs(), b.jobs);
    assert_eq!(p.module_timeout_ms(), b.module_timeout_ms);
    assert_eq!(p.deadline_ms(), b.deadline_ms);
    assert_eq!(p.total_weight_us(), b.modules.iter().map(|x| x.weight_us as u64).sum::<u64>());
    assert_eq!(p.checksum(), u32_at(bytes, H_CHECKSUM));
    assert_eq!(p.bytes(), bytes);
    assert_eq!(&bytes[..8], &MAGIC);
    assert_eq!(u32_at(bytes, H_VERSION), VERSION);
    assert_eq!(p.config_alias_count(), b.config_alias_count);
    assert_eq!(u32_at(bytes, H_CONFIG_ALIASES), b.config_alias_count);

    // Expected edges, computed independently of the writer.
    let waits: Vec<Vec<(u32, bool)>> = b.modules.iter().map(|x| normalised(&x.deps)).collect();
    let mut deps: Vec<Vec<(u32, bool)>> = vec![Vec::new(); n];
    for (i, w) in waits.iter().enumerate() {
        for &(d, hard) in w {
            deps[d as usize].push((i as u32, hard));
        }
    }
    // priority = weight + max over dependents' priorities (hard or soft).
    let mut prio = vec![0u64; n];
    for i in (0..n).rev() {
        let best = deps[i].iter().map(|&(d, _)| prio[d as usize]).max().unwrap_or(0);
        prio[i] = b.modules[i].weight_us as u64 + best;
    }
    assert_eq!(prio, b.priorities());
    let soft_total: usize = b.modules.iter().map(|x| x.soft_pre.len() + x.soft_post.len()).sum();
    assert_eq!(p.edge_count() as usize, 2 * waits.iter().map(Vec::len).sum::<usize>() + soft_total);

    // Waits: per-module groups in module order (stable), then finals in order.
    let mut order: Vec<usize> = (0..b.waits.len()).collect();
    order.sort_by_key(|&w| (b.waits[w].module.map_or(u64::MAX, u64::from), w));
    assert_eq!(p.wait_count() as usize, order.len());

    for (i, spec) in b.modules.iter().enumerate() {
        let md = p.module(i as u32).unwrap();
        assert_eq!(md.index(), i as u32);
        assert_eq!(md.name(), spec.name.as_bytes(), "module {i}");
        assert_eq!(md.path(), spec.path.as_deref().map(str::as_bytes), "module {i}");
        let disabled = spec.flags & module_flags::DISABLED != 0;
        assert_eq!(md.is_builtin(), spec.path.is_none() && !disabled, "module {i}");
        let comp =
            spec.path.as_ref().map_or(Compression::None, |x| Compression::from_path(x.as_bytes()).unwrap());
        assert_eq!(md.compression(), comp, "module {i}");
        let mut flags = spec.flags | ((comp as u32) << module_flags::COMPRESSION_SHIFT);
        if spec.path.is_none() && !disabled {
            flags |= module_flags::BUILTIN;
        }
        assert_eq!(md.flags(), flags, "module {i}");
        assert_eq!(md.params(), spec.params.as_bytes(), "module {i}");
        assert_eq!(md.params_with_nul(), format!("{}\0", spec.params).as_bytes(), "module {i}");
        assert_eq!(md.weight_us(), spec.weight_us, "module {i}");
        assert_eq!(md.timeout_ms(), spec.timeout_ms, "module {i}");
        assert_eq!(md.file_size(), spec.file_size, "module {i}");
        assert_eq!(md.priority_us(), prio[i], "module {i}");
        assert_eq!(edges(md.deps()), waits[i], "module {i} deps");
        assert_eq!(edges(md.dependents()), deps[i], "module {i} dependents");
        // Post bits: on the soft edges named by post_deps (a hard edge wins).
        let want_post: Vec<u32> =
            waits[i].iter().filter(|&&(d, hard)| !hard && spec.post_deps.contains(&d)).map(|&(d, _)| d).collect();
        assert_eq!(post_edges(md.deps()), want_post, "module {i} post edges");
        let want_post_deps: Vec<u32> = (0..n as u32)
            .filter(|&j| {
                let other = &b.modules[j as usize];
                waits[j as usize].iter().any(|&(d, hard)| d == i as u32 && !hard && other.post_deps.contains(&d))
            })
            .collect();
        assert_eq!(post_edges(md.dependents()), want_post_deps, "module {i} post dependents");
        let soft = |v: &[u32]| v.iter().map(|&d| (d, false)).collect::<Vec<_>>();
        assert_eq!(edges(md.soft_pre()), soft(&spec.soft_pre), "module {i} soft_pre");
        assert_eq!(edges(md.soft_post()), soft(&spec.soft_post), "module {i} soft_post");
        let mine: Vec<u32> = (0..order.len() as u32)
            .filter(|&pos| b.waits[order[pos as usize]].module == Some(i as u32))
            .collect();
        let dw: Vec<u32> = md.dev_waits().collect();
        assert_eq!(dw, mine, "module {i} dev_waits");
        // find_module is linear: spot-check it on large plans.
        if n <= 100 || i % 97 == 0 {
            let found = p.find_module(spec.name.replace('-', "_").as_bytes());
            assert_eq!(found.map(|f| f.index()), Some(i as u32), "module {i} find_module");
        }
    }
    // Records are in a valid load order: everything waited for comes first.
    let mut done = vec![false; n];
    for md in p.modules() {
        assert!(md.deps().all(|e| done[e.module as usize]));
        done[md.index() as usize] = true;
    }
    for (pos, &w) in order.iter().enumerate() {
        let spec = &b.waits[w];
        let wr = p.wait(pos as u32).unwrap();
        assert_eq!(wr.path(), spec.path.as_bytes(), "wait {pos}");
        assert_eq!(wr.module(), spec.module, "wait {pos}");
        assert_eq!(wr.timeout_ms(), spec.timeout_ms, "wait {pos}");
        let glob = spec.path.rsplit('/').next().unwrap().contains(['*', '?', '[']);
        assert_eq!(wr.is_glob(), glob, "wait {pos}");
        assert_eq!(wr.flags(), if glob { wait_flags::GLOB } else { 0 });
    }
    assert_eq!(p.alias_count() as usize, b.aliases.len());
    // modprobe.d aliases in their order, the kernel's sorted by literal
    // prefix (then pattern, then module) for the prefix search.
    let cfg = b.config_alias_count as usize;
    let mut want = b.aliases.clone();
    want[cfg..].sort_by(|x, y| {
        let key = |a: &(String, u32)| (parmod::plan::literal_prefix(a.0.as_bytes()).to_vec(), a.0.clone(), a.1);
        key(x).cmp(&key(y))
    });
    for (i, (pat, mi)) in want.iter().enumerate() {
        let a = p.alias(i as u32).unwrap();
        assert_eq!(a.pattern, pat.as_bytes(), "alias {i}");
        assert_eq!(a.module, *mi, "alias {i}");
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn catch_unwind_works_in_tests() {
    // Cargo.toml sets panic = "abort" for the dev profile, but test targets
    // are built with unwinding, so the exhaustive tests can report the byte.
    let r = catch_unwind(|| panic!("expected"));
    assert!(r.is_err());
}

#[test]
fn sample_round_trips() {
    let b = sample();
    let bytes = b.build().unwrap();
    check_round_trip(&b, &bytes);
    // Exercise everything the sample is meant to hold.
    let p = Plan::parse(&bytes).unwrap();
    assert_eq!(p.module_count(), 17);
    assert!(p.modules().any(|x| x.is_builtin()));
    assert!(p.modules().any(|x| x.is_disabled() && x.path().is_some()));
    assert!(p.modules().any(|x| x.is_disabled() && x.path().is_none() && !x.is_builtin()));
    assert!(p.modules().any(|x| x.is_root_path() && x.path() == Some(&b"lib/modules/external/ext.ko.xz"[..])));
    assert!(p.modules().any(|x| x.is_blacklisted()));
    assert!(p.modules().any(|x| x.is_post_only()));
    assert_eq!(post_edges(p.module(7).unwrap().dependents()), vec![15, 16]);
    assert_eq!(p.config_alias_count(), 2);
    for c in [Compression::None, Compression::Xz, Compression::Zstd, Compression::Gzip] {
        assert!(p.modules().any(|x| !x.is_builtin() && x.compression() == c), "{c:?}");
    }
    assert!(p.modules().flat_map(|x| x.deps()).any(|e| e.hard));
    assert!(p.modules().flat_map(|x| x.deps()).any(|e| !e.hard));
    assert!(p.waits().any(|w| w.is_glob() && w.path() == b"/dev/snd/controlC*"));
    assert!(p.waits().any(|w| w.module().is_none()));
    // Finals come last.
    let finals: Vec<u32> = p.waits().filter(|w| w.module().is_none()).map(|w| w.index()).collect();
    assert_eq!(finals, vec![p.wait_count() - 2, p.wait_count() - 1]);
    // The duplicate soft+hard edge became one hard edge.
    assert_eq!(edges(p.module(9).unwrap().deps()), vec![(6, true), (7, false)]);
    // The two diamonds.
    assert_eq!(edges(p.module(2).unwrap().dependents()), vec![(3, true), (4, true), (7, true), (12, true), (14, true)]);
    assert_eq!(edges(p.module(4).unwrap().dependents()), vec![(5, true), (6, false)]);
    // Writing is deterministic.
    assert_eq!(b.build().unwrap(), bytes);
    for t in tiny_plans() {
        let bytes = t.build().unwrap();
        check_round_trip(&t, &bytes);
    }
}

#[test]
fn every_truncation_is_refused() {
    let mut files = vec![sample().build().unwrap()];
    files.extend(tiny_plans().iter().map(|t| t.build().unwrap()));
    for bytes in &files {
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            let r = catch_unwind(|| (Plan::parse(cut).err(), Plan::parse_structure(cut).err()));
            let (full, structure) =
                r.unwrap_or_else(|e| panic!("truncation to {len}: panic {}", panic_text(e)));
            match full {
                Some(PlanError::Truncated { len: l, need }) => {
                    assert_eq!(l, len);
                    assert!(need > len);
                }
                other => panic!("truncation to {len}: {other:?}"),
            }
            assert!(structure.is_some(), "truncation to {len} passes parse_structure");
            // Even with the header saying the short size and a good checksum,
            // the sections no longer fit.
            if len >= HEADER_SIZE {
                let mut v = cut.to_vec();
                put_u32(&mut v, H_FILE_SIZE, len as u32);
                fix_crc(&mut v);
                let r = catch_unwind(|| Plan::parse(&v).err());
                let e = r.unwrap_or_else(|e| panic!("truncation to {len} (fixed): panic {}", panic_text(e)));
                assert!(e.is_some(), "truncation to {len} with fixed size and checksum accepted");
            }
        }
    }
}

#[test]
fn every_bit_flip_is_refused_by_the_checksum() {
    let mut files = vec![sample().build().unwrap()];
    files.extend(tiny_plans().iter().map(|t| t.build().unwrap()));
    for bytes in &files {
        let mut v = bytes.clone();
        for byte in 0..v.len() {
            for bit in 0..8 {
                v[byte] ^= 1 << bit;
                let r = catch_unwind(AssertUnwindSafe(|| Plan::parse(&v).err()));
                v[byte] ^= 1 << bit;
                let e = r.unwrap_or_else(|e| panic!("byte {byte} bit {bit}: panic {}", panic_text(e)));
                assert!(e.is_some(), "byte {byte} bit {bit}: flipped plan accepted");
            }
        }
        assert_eq!(&v, bytes);
    }
}

/// Every single-bit flip with the checksum made valid again: only the
/// structural validation stands between the flip and the reader.
#[test]
fn every_bit_flip_past_the_checksum_is_refused_or_consistent() {
    let mut files = vec![sample().build().unwrap()];
    files.extend(tiny_plans().iter().map(|t| t.build().unwrap()));
    let mut failures = Vec::new();
    let mut accepted = 0usize;
    let mut total = 0usize;
    for bytes in &files {
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                total += 1;
                let mut flipped = bytes.clone();
                flipped[byte] ^= 1 << bit;
                let mut fixed = flipped.clone();
                fix_crc(&mut fixed);
                let r = catch_unwind(AssertUnwindSafe(|| {
                    let full = Plan::parse(&fixed);
                    // parse_structure on the unfixed flip must agree: it ignores the checksum.
                    let structure = Plan::parse_structure(&flipped);
                    if full.is_ok() != structure.is_ok() {
                        return Err(format!(
                            "parse {:?} vs parse_structure {:?}",
                            full.err(),
                            structure.err()
                        ));
                    }
                    match (full, structure) {
                        (Ok(a), Ok(b)) => {
                            check_consistent(&a)?;
                            check_consistent(&b)?;
                            // Every error message is printable on the way.
                            Ok(true)
                        }
                        (Err(e), _) => {
                            let _ = e.to_string();
                            Ok(false)
                        }
                        _ => unreachable!(),
                    }
                }));
                match r {
                    Ok(Ok(true)) => accepted += 1,
                    Ok(Ok(false)) => {}
                    Ok(Err(msg)) => {
                        failures.push(format!("file of {} bytes, byte {byte} bit {bit}: {msg}", bytes.len()))
                    }
                    Err(p) => failures.push(format!(
                        "file of {} bytes, byte {byte} bit {bit}: panic {}",
                        bytes.len(),
                        panic_text(p)
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} flips broke the reader:\n{}",
        failures.len(),
        failures[..failures.len().min(30)].join("\n")
    );
    // Flips in weights, timeouts, priorities, string bytes and the like are
    // legitimately accepted; structural fields are not.
    eprintln!("{total} single-bit flips with the checksum fixed: {accepted} accepted (and consistent)");
    assert!(accepted > 0 && accepted < total, "{accepted} of {total}");
}

/// Beyond single bits: overwrite random aligned u32 fields with values that
/// are likely to matter (indices, counts, NONE, the hard bit), checksum fixed.
#[test]
fn random_field_overwrites_past_the_checksum_are_refused_or_consistent() {
    let bytes = sample().build().unwrap();
    let p = Plan::parse(&bytes).unwrap();
    let interesting: Vec<u32> = {
        let mut v = vec![0, 1, 2, 3, 7, 11, 12, 13, 0x7fff_ffff, 0x3fff_ffff, NONE, NONE - 1, EDGE_HARD, EDGE_POST, 128, 24, 80];
        for k in 0..16 {
            v.push(k | EDGE_HARD);
            v.push(k | EDGE_POST);
            v.push(k | EDGE_HARD | EDGE_POST);
            v.push(p.edge_count().wrapping_sub(k));
            v.push(p.wait_count().wrapping_sub(k % 4));
        }
        v.push(bytes.len() as u32);
        v
    };
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    let mut failures = Vec::new();
    let mut accepted = 0usize;
    for iter in 0..20_000 {
        let mut v = bytes.clone();
        let edits = 1 + next() % 3;
        let mut log = Vec::new();
        for _ in 0..edits {
            let at = (next() as usize % (v.len() / 4)) * 4;
            let val = interesting[next() as usize % interesting.len()];
            put_u32(&mut v, at, val);
            log.push((at, val));
        }
        fix_crc(&mut v);
        let r = catch_unwind(AssertUnwindSafe(|| match Plan::parse(&v) {
            Ok(p) => {
                accepted += 1;
                check_consistent(&p)
            }
            Err(e) => {
                let _ = e.to_string();
                Ok(())
            }
        }));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => failures.push(format!("iteration {iter} {log:?}: {msg}")),
            Err(p) => failures.push(format!("iteration {iter} {log:?}: panic {}", panic_text(p))),
        }
    }
    eprintln!("20000 random overwrites: {accepted} accepted (and consistent)");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures[..failures.len().min(30)].join("\n")
    );
}

#[test]
fn wrong_magic() {
    let mut v = sample().build().unwrap();
    v[0] = b'X';
    assert_eq!(Plan::parse(&v).err(), Some(PlanError::BadMagic));
    fix_crc(&mut v);
    assert_eq!(Plan::parse(&v).err(), Some(PlanError::BadMagic));
    assert_eq!(Plan::parse_structure(&v).err(), Some(PlanError::BadMagic));
    // Short files: bad magic when there are eight bytes to judge.
    assert_eq!(Plan::parse(b"ELF\x7fxxxxxxxx").err(), Some(PlanError::BadMagic));
    assert!(matches!(Plan::parse(b"PARMODPLxxxx"), Err(PlanError::Truncated { len: 12, need: 128 })));
    assert!(matches!(Plan::parse(b""), Err(PlanError::Truncated { len: 0, .. })));
}

#[test]
fn wrong_version() {
    let mut v = sample().build().unwrap();
    for version in [0, 1, VERSION + 1, u32::MAX] {
        put_u32(&mut v, H_VERSION, version);
        fix_crc(&mut v);
        assert_eq!(Plan::parse(&v).err(), Some(PlanError::Version { found: version }));
        assert_eq!(Plan::parse_structure(&v).err(), Some(PlanError::Version { found: version }));
    }
    let msg = PlanError::Version { found: 3 }.to_string();
    assert_eq!(msg, "plan format version 3, this parmod reads version 4; rebuild the plan with a matching parmod-plan");
}

#[test]
fn trailing_bytes() {
    let mut v = sample().build().unwrap();
    let len = v.len();
    v.push(0);
    assert_eq!(Plan::parse(&v).err(), Some(PlanError::TrailingBytes { len: len + 1, declared: len }));
    // Declared too: the sections do not cover the file.
    put_u32(&mut v, H_FILE_SIZE, len as u32 + 1);
    fix_crc(&mut v);
    assert!(matches!(Plan::parse(&v), Err(PlanError::Header { .. })), "{:?}", Plan::parse(&v).err());
}

#[test]
fn checksum_mismatch() {
    let mut v = sample().build().unwrap();
    let stored = u32_at(&v, H_CHECKSUM);
    put_u32(&mut v, H_CHECKSUM, stored ^ 1);
    assert_eq!(Plan::parse(&v).err(), Some(PlanError::Checksum { stored: stored ^ 1, computed: stored }));
    // parse_structure does not look at it.
    assert!(Plan::parse_structure(&v).is_ok());
}

#[test]
fn nonzero_header_reserved_bytes() {
    let good = sample().build().unwrap();
    for at in H_RESERVED..HEADER_SIZE {
        let mut v = good.clone();
        v[at] = 0x40;
        fix_crc(&mut v);
        assert_eq!(Plan::parse(&v).err(), Some(PlanError::Header { field: "reserved" }), "byte {at}");
    }
}

#[test]
fn unknown_flag_bits_are_refused() {
    let good = sample().build().unwrap();
    // Header flags (offset 24) outside KNOWN (ALL_MODULES).
    for bit in (0..32).filter(|b| parmod::plan::plan_flags::KNOWN & (1 << b) == 0) {
        let mut v = good.clone();
        put_u32(&mut v, 24, 1 << bit);
        fix_crc(&mut v);
        assert_eq!(Plan::parse(&v).err(), Some(PlanError::Header { field: "flags" }), "bit {bit}");
    }
    // Module flags (record offset 12) outside KNOWN.
    for bit in (0..32).filter(|b| module_flags::KNOWN & (1 << b) == 0) {
        let mut v = good.clone();
        let at = module_rec(3) + 12;
        let f = u32_at(&v, at);
        put_u32(&mut v, at, f | 1 << bit);
        fix_crc(&mut v);
        assert_eq!(Plan::parse(&v).err(), Some(PlanError::Module { index: 3, field: "flags" }), "bit {bit}");
    }
}

#[test]
fn deps_pointing_forward_are_refused() {
    let b = sample();
    let good = b.build().unwrap();
    let p = Plan::parse(&good).unwrap();
    // Module 2 (snd) waits for nothing; its dependents list starts with 3.
    // Point its deps at that entry: "snd waits for snd-timer", a cycle.
    let snd = p.module(2).unwrap();
    assert_eq!(snd.deps().len(), 0);
    assert_eq!(snd.dependents().next().map(|e| e.module), Some(3));
    let mut v = good.clone();
    let dep_start = u32_at(&v, module_rec(2) + R_DEPENDENTS);
    put_u32(&mut v, module_rec(2) + R_WAITS_FOR, dep_start);
    put_u32(&mut v, module_rec(2) + R_WAITS_FOR + 4, 1);
    fix_crc(&mut v);
    assert_eq!(Plan::parse(&v).err(), Some(PlanError::Module { index: 2, field: "deps" }));

    // Rewrite an edge entry in place: xfs (8) waits for libcrc32c (1); make
    // it wait for 9 instead. The mirror in module 1 no longer matches.
    let xfs = p.module(8).unwrap();
    assert_eq!(edges(xfs.deps()), vec![(1, true)]);
    let mut v = good.clone();
    let start = u32_at(&v, module_rec(8) + R_WAITS_FOR) as usize;
    let edges_off = u32_at(&v, 40) as usize;
    let at = edges_off + start * 4;
    assert_eq!(u32_at(&v, at), 1 | EDGE_HARD);
    put_u32(&mut v, at, 9 | EDGE_HARD);
    fix_crc(&mut v);
    assert!(matches!(Plan::parse(&v), Err(PlanError::Module { .. })), "{:?}", Plan::parse(&v).err());

    // And a self-loop.
    put_u32(&mut v, at, 8 | EDGE_HARD);
    fix_crc(&mut v);
    assert!(matches!(Plan::parse(&v), Err(PlanError::Module { .. })), "{:?}", Plan::parse(&v).err());
}

#[test]
fn error_messages_say_what_to_do() {
    let all = [
        PlanError::Truncated { len: 3, need: 128 },
        PlanError::BadMagic,
        PlanError::Version { found: 9 },
        PlanError::TrailingBytes { len: 200, declared: 100 },
        PlanError::Checksum { stored: 1, computed: 2 },
        PlanError::Header { field: "jobs" },
        PlanError::Module { index: 4, field: "path" },
        PlanError::DeviceWait { index: 5, field: "module" },
        PlanError::Alias { index: 6, field: "pattern" },
    ];
    for e in all {
        let s = e.to_string();
        if e == PlanError::BadMagic {
            assert!(s.contains("parmod-plan compile"), "{s}");
        } else {
            assert!(s.contains("rebuild"), "{s}");
        }
    }
    assert!(PlanError::Module { index: 4, field: "path" }.to_string().contains("module record 4"));
    assert!(PlanError::Module { index: 4, field: "path" }.to_string().contains("path"));
    assert!(PlanError::Truncated { len: 3, need: 128 }.to_string().contains("128"));
}

#[test]
fn writer_refuses_bad_input_naming_the_module() {
    let base = sample();
    let cases: Vec<Edit> = vec![
        ("later module", Box::new(|b| b.modules[3].deps.push((5, true)))),
        ("itself", Box::new(|b| b.modules[3].deps.push((3, false)))),
        ("dotdot", Box::new(|b| b.modules[3].path = Some("kernel/../../etc/evil.ko".into()))),
        ("absolute", Box::new(|b| b.modules[3].path = Some("/lib/modules/x/snd-timer.ko".into()))),
        ("not a .ko", Box::new(|b| b.modules[3].path = Some("kernel/sound/core/snd-timer.o".into()))),
        ("empty component", Box::new(|b| b.modules[3].path = Some("kernel//snd-timer.ko".into()))),
        ("bz2", Box::new(|b| b.modules[3].path = Some("kernel/snd-timer.ko.bz2".into()))),
    ];
    for (what, edit) in cases {
        let mut b = base.clone();
        edit(&mut b);
        let e = b.build().expect_err(what);
        assert!(e.contains("snd-timer"), "{what}: {e}");
    }
    // A wait that names a module not in the plan.
    let mut b = base.clone();
    b.waits.push(wait("/dev/null", Some(99), 0));
    assert!(b.build().unwrap_err().contains("99"));
}

#[test]
fn large_random_plan_round_trips() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    let n = 5000u32;
    let exts = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];
    let mut b = PlanBuilder { kernel_release: "6.12.0-1-arm64".into(), jobs: 8, ..Default::default() };
    for i in 0..n {
        let mut spec = ModuleSpec {
            name: format!("mod{i}"),
            path: if next() % 20 == 0 {
                None
            } else {
                Some(format!("kernel/d{}/mod{i}{}", i % 37, exts[next() as usize % 4]))
            },
            weight_us: next() % 50_000,
            timeout_ms: if next() % 10 == 0 { next() % 10_000 } else { 0 },
            file_size: next() % 1_000_000,
            params: if next() % 8 == 0 { format!("p{i}=1") } else { String::new() },
            ..Default::default()
        };
        if i > 0 {
            let k = next() % 5;
            for _ in 0..k {
                // Mostly recent modules, sometimes far back: deep and wide.
                let back = if next() % 4 == 0 { next() % i } else { next() % i.min(30) };
                spec.deps.push((i - 1 - back, next() % 3 != 0));
            }
            if next() % 10 == 0 {
                spec.soft_pre.push(next() % i);
            }
        }
        if i + 1 < n && next() % 15 == 0 {
            spec.soft_post.push(i + 1 + next() % (n - i - 1));
        }
        b.modules.push(spec);
    }
    for k in 0..300 {
        let module = if k % 7 == 0 { None } else { Some(next() % n) };
        b.waits.push(wait(&format!("/dev/d{k}"), module, next() % 5000));
    }
    for k in 0..1000 {
        b.aliases.push((format!("alias{k}*"), next() % n));
    }
    let bytes = b.build().unwrap();
    check_round_trip(&b, &bytes);
    let p = Plan::parse(&bytes).unwrap();
    assert_eq!(p.module_count(), n);
    assert!(p.edge_count() > n);
}

/// Input the reader would refuse: the writer must refuse it too, naming the item.
fn invalid_edits() -> Vec<Edit> {
    vec![
        ("soft_pre on itself", Box::new(|b| b.modules[3].soft_pre.push(3))),
        ("soft_post out of range", Box::new(|b| b.modules[3].soft_post.push(99))),
        ("soft_pre with the hard bit", Box::new(|b| b.modules[3].soft_pre.push(EDGE_HARD | 1))),
        ("soft_post with the post bit", Box::new(|b| b.modules[3].soft_post.push(EDGE_POST | 1))),
        ("post edge it does not wait for", Box::new(|b| b.modules[3].post_deps.push(1))),
        ("root path without a path", Box::new(|b| {
            b.modules[3].path = None;
            b.modules[3].flags |= module_flags::ROOT_PATH;
        })),
        ("unknown flag", Box::new(|b| b.modules[3].flags |= 1 << 20)),
        ("space in name", Box::new(|b| b.modules[3].name = "snd-timer x".into())),
        ("wait outside /dev and /sys", Box::new(|b| b.waits.push(wait("/etc/passwd", Some(3), 0)))),
        ("alias out of range", Box::new(|b| b.aliases.push(("snd-timer-alias".into(), 99)))),
    ]
}

#[test]
fn writer_refuses_what_the_reader_would_refuse() {
    for (what, edit) in invalid_edits() {
        let mut b = sample();
        edit(&mut b);
        let r = catch_unwind(AssertUnwindSafe(|| b.build()));
        let r = r.unwrap_or_else(|e| panic!("{what}: panic {}", panic_text(e)));
        assert!(r.is_err(), "{what}: accepted");
    }
    let header_edits: Vec<Edit> = vec![
        ("empty kernel release", Box::new(|b| b.kernel_release.clear())),
        ("more modprobe.d aliases than aliases", Box::new(|b| b.config_alias_count = 99)),
        ("jobs", Box::new(|b| b.jobs = 5000)),
        ("empty name", Box::new(|b| b.modules[3].name.clear())),
    ];
    for (what, edit) in header_edits {
        let mut b = sample();
        edit(&mut b);
        assert!(b.build().is_err(), "{what}: accepted");
    }
}

#[test]
fn writer_errors_name_the_module() {
    for (what, edit) in invalid_edits() {
        let mut b = sample();
        edit(&mut b);
        let e = b.build().unwrap_err();
        assert!(!e.contains("internal error"), "{what}: {e}");
        assert!(e.contains("snd-timer"), "{what}: {e}");
    }
}

#[test]
fn writer_refuses_nul_in_strings() {
    let edits: Vec<Edit> = vec![
        ("params", Box::new(|b| b.modules[3].params = "a=1\0b=2".into())),
        ("name", Box::new(|b| b.modules[3].name = "snd-timer\0x".into())),
        ("wait path", Box::new(|b| b.waits.push(wait("/dev/a\0/../../etc/x", Some(3), 0)))),
        ("alias", Box::new(|b| b.aliases.push(("snd\0x".into(), 3)))),
        ("kernel release", Box::new(|b| b.kernel_release = "6.6\0x".into())),
    ];
    for (what, edit) in edits {
        let mut b = sample();
        edit(&mut b);
        assert!(b.build().is_err(), "{what}: a string with NUL was accepted and will read back truncated");
    }
}

/// Version 4: ON_REQUEST is read back, and refused in a plan of every
/// module (there it would mean nothing) by the reader and the writer.
#[test]
fn on_request_is_refused_in_a_plan_of_every_module() {
    let mut pb = sample();
    pb.flags = 0;
    pb.modules[3].flags |= module_flags::ON_REQUEST;
    let bytes = pb.build().unwrap();
    let p = Plan::parse(&bytes).unwrap();
    assert!(p.module(3).unwrap().is_on_request());
    assert_eq!(p.modules().filter(|m| m.is_on_request()).count(), 1);
    pb.flags = parmod::plan::plan_flags::ALL_MODULES;
    let err = pb.build().unwrap_err();
    assert!(err.contains("ON_REQUEST in a plan of every module"), "{err}");
    let mut v = bytes.clone();
    put_u32(&mut v, 24, parmod::plan::plan_flags::ALL_MODULES);
    fix_crc(&mut v);
    assert_eq!(Plan::parse(&v).err(), Some(PlanError::Module { index: 3, field: "flags" }));
}

/// The version-2 additions, corrupted one at a time: each is refused with the
/// field named.
#[test]
fn version_2_fields_are_validated() {
    let good = sample().build().unwrap();
    let p = Plan::parse(&good).unwrap();
    let flags_at = |i: u32| module_rec(i) + 12;
    let refused = |v: &mut Vec<u8>| {
        fix_crc(v);
        Plan::parse(v).err()
    };
    // Built in and disabled at once.
    let mut v = good.clone();
    let f = u32_at(&v, flags_at(0));
    put_u32(&mut v, flags_at(0), f | module_flags::DISABLED);
    assert_eq!(refused(&mut v), Some(PlanError::Module { index: 0, field: "flags" }));
    // A root path on a module without a file.
    let mut v = good.clone();
    let f = u32_at(&v, flags_at(13));
    put_u32(&mut v, flags_at(13), f | module_flags::ROOT_PATH);
    assert_eq!(refused(&mut v), Some(PlanError::Module { index: 13, field: "path" }));
    // A disabled module without a file may not claim a compression.
    let mut v = good.clone();
    let f = u32_at(&v, flags_at(13));
    put_u32(&mut v, flags_at(13), f | (1 << module_flags::COMPRESSION_SHIFT));
    assert_eq!(refused(&mut v), Some(PlanError::Module { index: 13, field: "path" }));
    // An edge both hard and post; the post bit removed on one side only.
    let edges_off = u32_at(&good, 40) as usize;
    let w16 = u32_at(&good, module_rec(16) + R_WAITS_FOR) as usize;
    assert_eq!(u32_at(&good, edges_off + w16 * 4), 7 | EDGE_POST);
    let d7 = u32_at(&good, module_rec(7) + R_DEPENDENTS) as usize;
    let d7_16 = (0..p.module(7).unwrap().dependents().len()).map(|k| d7 + k).find(|&k| u32_at(&good, edges_off + k * 4) & 0xffff == 16).unwrap();
    assert_eq!(u32_at(&good, edges_off + d7_16 * 4), 16 | EDGE_POST);
    let mut v = good.clone();
    put_u32(&mut v, edges_off + w16 * 4, 7 | EDGE_POST | EDGE_HARD);
    put_u32(&mut v, edges_off + d7_16 * 4, 16 | EDGE_POST | EDGE_HARD);
    assert_eq!(refused(&mut v), Some(PlanError::Module { index: 16, field: "deps" }));
    let mut v = good.clone();
    put_u32(&mut v, edges_off + w16 * 4, 7);
    assert_eq!(refused(&mut v), Some(PlanError::Module { index: 7, field: "dependents" }));
    // The post bit in a soft_post list.
    let sp = u32_at(&good, module_rec(7) + 56) as usize;
    let mut v = good.clone();
    let e = u32_at(&v, edges_off + sp * 4);
    put_u32(&mut v, edges_off + sp * 4, e | EDGE_POST);
    assert_eq!(refused(&mut v), Some(PlanError::Module { index: 7, field: "soft_post" }));
    // More modprobe.d aliases than aliases.
    let mut v = good.clone();
    put_u32(&mut v, H_CONFIG_ALIASES, p.alias_count() + 1);
    assert_eq!(refused(&mut v), Some(PlanError::Header { field: "config_alias_count" }));
    let mut v = good.clone();
    put_u32(&mut v, H_CONFIG_ALIASES, p.alias_count());
    assert!(refused(&mut v).is_none());
}
