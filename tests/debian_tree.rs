//! Compare the compiler with kmod's own resolver on the machine's real kernel
//! tree: for each module, the set of modules in a one-module plan must be the
//! set `modprobe -S VERSION --show-depends NAME` prints (insmod lines and
//! builtin lines; kmod 30 includes soft dependencies there), and the plan
//! order must respect every dependency.
//!
//! Needs a kernel under /lib/modules and kmod's modprobe. Without them the
//! test prints a SKIP line to stderr and passes, unless
//! PARMOD_REQUIRE_DEBIAN=1 is set, in which case it fails.
#![cfg(feature = "host")]

#[path = "harness/mod.rs"]
mod harness;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use parmod::compiler::{self, kmod, Options, Request};
use parmod::plan::Plan;

fn skip_or_fail(why: &str) {
    harness::skip("PARMOD_REQUIRE_DEBIAN", "the real Debian tree", why, "install linux-image-amd64 and kmod");
}

fn modprobe() -> Option<PathBuf> {
    ["/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe", "/bin/modprobe"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Module names kmod would load (or find built in) for `name`.
fn kmod_set(modprobe: &Path, kver: &str, name: &str) -> BTreeSet<String> {
    let out = Command::new(modprobe)
        .args(["-S", kver, "--show-depends", name])
        .output()
        .expect("run modprobe");
    assert!(out.status.success(), "modprobe --show-depends {name}: {}", String::from_utf8_lossy(&out.stderr));
    let mut set = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next()) {
            (Some("insmod"), Some(path)) => {
                set.insert(kmod::modname_from_path(path));
            }
            (Some("builtin"), Some(n)) => {
                set.insert(kmod::canonical(n));
            }
            _ => {}
        }
    }
    set
}

#[test]
fn plans_match_modprobe_show_depends() {
    let root = Path::new("/lib/modules");
    let Ok(kver) = kmod::default_kver(root) else {
        return skip_or_fail("no kernel with modules.dep under /lib/modules");
    };
    let Some(modprobe) = modprobe() else {
        return skip_or_fail("modprobe (kmod) is not installed");
    };
    let dir = root.join(&kver);
    let dep = std::fs::read_to_string(dir.join("modules.dep")).unwrap();
    let all: Vec<String> =
        dep.lines().filter_map(|l| l.split_once(':')).map(|(p, _)| kmod::modname_from_path(p)).collect();
    // Every module named in modules.softdep (as subject or dependency, when
    // it is a module name), then every 8th module of modules.dep.
    let mut names: BTreeSet<String> = BTreeSet::new();
    let soft = std::fs::read_to_string(dir.join("modules.softdep")).unwrap_or_default();
    for line in soft.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.first() == Some(&"softdep") && w.len() > 1 {
            names.insert(kmod::canonical(w[1]));
        }
    }
    let soft_subjects = names.len();
    for (i, n) in all.iter().enumerate() {
        if i % 8 == 0 {
            names.insert(n.clone());
        }
    }
    names.retain(|n| all.contains(n));
    assert!(names.len() >= 200 || names.len() == all.len(), "only {} modules to compare", names.len());
    eprintln!("comparing {} modules ({} with soft dependencies) of {kver}", names.len(), soft_subjects);

    // modprobe runs in a second thread while this one compiles.
    let kmod_sets = {
        let (names, kver) = (names.clone(), kver.clone());
        std::thread::spawn(move || names.iter().map(|n| kmod_set(&modprobe, &kver, n)).collect::<Vec<_>>())
    };
    let opts = Options { root: "/".into(), kver: Some(kver.clone()), ..Default::default() };
    let inputs = compiler::load_inputs(&opts, &mut |_| {}).expect("load the kernel's index files");
    let mut plans = Vec::new();
    for name in &names {
        let req = [Request { name: name.clone(), source: None, on_request: false }];
        let b = compiler::compile_requests(&opts, &inputs, &req, &mut |_| {})
            .unwrap_or_else(|e| panic!("compile {name}: {e}"));
        plans.push(b.build().expect("build"));
    }
    let kmod_sets = kmod_sets.join().expect("modprobe thread");
    let mut mismatches = Vec::new();
    for ((name, bytes), theirs) in names.iter().zip(&plans).zip(kmod_sets) {
        let plan = Plan::parse(bytes).expect("parse");
        let ours: BTreeSet<String> =
            plan.modules().map(|m| String::from_utf8_lossy(m.name()).into_owned()).collect();
        if ours != theirs {
            mismatches.push(format!(
                "{name}: only parmod {:?}, only modprobe {:?}",
                ours.difference(&theirs).collect::<Vec<_>>(),
                theirs.difference(&ours).collect::<Vec<_>>()
            ));
        }
        // The order respects every hard and soft edge.
        for m in plan.modules() {
            for e in m.deps() {
                assert!(e.module < m.index(), "{name}: order broken at {:?}", String::from_utf8_lossy(m.name()));
            }
        }
        // Every modules.dep dependency of every planned module comes first.
        for m in plan.modules() {
            let Some(p) = m.path() else { continue };
            let p = String::from_utf8_lossy(p);
            let line = dep.lines().find(|l| l.split_once(':').is_some_and(|(a, _)| a == p)).unwrap();
            for d in line.split_once(':').unwrap().1.split_whitespace() {
                let dn = kmod::modname_from_path(d);
                let di = plan.find_module(dn.as_bytes()).expect("dependency in plan").index();
                assert!(di < m.index(), "{name}: {dn} after {p}");
            }
        }
    }
    assert!(mismatches.is_empty(), "{} of {} differ:\n{}", mismatches.len(), names.len(), mismatches.join("\n"));
}

/// `readelf -SW FILE`: (name, size) of every section.
fn readelf_sections(file: &Path) -> Vec<(String, u64)> {
    let out = Command::new("readelf").arg("-SW").arg(file).output().expect("run readelf (binutils, which gcc needs)");
    assert!(out.status.success(), "readelf -SW {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "  [12] __mcount_loc      PROGBITS   0000000000000000 0b1c40 0056f0 00   A  0   0  8"
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix('[')?.split_once(']')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            (f.len() >= 5).then(|| (f[0].to_string(), u64::from_str_radix(f[4], 16).unwrap_or(0)))
        })
        .collect()
}

#[test]
fn the_cost_model_reads_every_installed_kernels_modules_as_readelf_does() {
    let root = Path::new("/lib/modules");
    let kvers: Vec<String> = std::fs::read_dir(root)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let mut checked = 0;
    for kver in kvers.iter().filter(|k| root.join(k).join("modules.dep").exists()) {
        let dep = std::fs::read_to_string(root.join(kver).join("modules.dep")).unwrap();
        // xfs: large, traced, and in every Debian kernel (plain .ko on 6.1, .ko.xz on 6.12).
        let Some(rel) = dep.lines().filter_map(|l| l.split_once(':')).map(|(p, _)| p).find(|p| kmod::modname_from_path(p) == "xfs")
        else {
            continue;
        };
        let file = root.join(kver).join(rel);
        let elf = compiler::elf::Elf::open(&file).unwrap_or_else(|e| panic!("{e}"));
        let f = compiler::cost::Features::of(&elf);
        // The oracle reads the decompressed object.
        let scratch = harness::Scratch::new("cost-model");
        let plain = if rel.ends_with(".ko") {
            file.clone()
        } else {
            let out = scratch.path("xfs.ko");
            let tool = if rel.ends_with(".xz") { "xz" } else if rel.ends_with(".zst") { "zstd" } else { "gzip" };
            let data = Command::new(tool).arg("-dc").arg(&file).output().expect("run the decompressor");
            assert!(data.status.success(), "{tool} -dc {}", file.display());
            std::fs::write(&out, &data.stdout).unwrap();
            out
        };
        let secs = readelf_sections(&plain);
        let size = |n: &str| secs.iter().filter(|s| s.0 == n).map(|s| s.1).sum::<u64>();
        assert_eq!(f.call_sites, size("__mcount_loc") / 8, "{kver} xfs: call sites");
        assert_eq!(f.symbols, size(".symtab") / 24, "{kver} xfs: symbols");
        assert_eq!(f.size, std::fs::metadata(&plain).unwrap().len(), "{kver} xfs: decompressed size");
        assert!(f.call_sites > 1000 && f.symbols > 1000, "{kver} xfs: {f:?}");
        let c = compiler::cost::Cost::estimate(&f);
        assert!(c.serial_us > 0 && c.serial_us < c.weight_us, "{kver} xfs: {c:?}");
        eprintln!("{kver} xfs: {f:?} -> {c:?}");
        checked += 1;
    }
    if checked == 0 {
        skip_or_fail("no kernel under /lib/modules with xfs");
    }
}
