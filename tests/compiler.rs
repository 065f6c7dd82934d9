//! The plan compiler against the checked-in fixture trees in tests/fixtures,
//! through the real `parmod-plan` binary and the library API.
#![cfg(feature = "host")]

use std::path::{Path, PathBuf};

use parmod::plan::{module_flags, trace, Compression, Plan};
use serde_json::Value;

mod plan_tool;

use plan_tool::run;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn basic() -> String {
    fixture("basic").display().to_string()
}

/// A fresh, empty scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    plan_tool::scratch("compiler", test)
}

/// Compile with `--root basic` and `args`; returns (plan json, stderr).
fn compile_ok(test: &str, args: &[&str]) -> (Value, String, PathBuf) {
    let dir = scratch(test);
    let plan = dir.join("out.plan");
    let root = basic();
    // The fixture's module files are placeholders, not ELF objects: their
    // firmware cannot be checked (tests/kmod_compat.rs checks it on real ones).
    let mut a = vec!["compile", "--root", &root, "--no-firmware-check", "-o", plan.to_str().unwrap()];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(r.code, 0, "compile {args:?} failed: {}", r.stderr);
    let bytes = std::fs::read(&plan).unwrap();
    Plan::parse(&bytes).expect("the plan parses");
    let s = run(&["show", "--json", plan.to_str().unwrap()]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    (serde_json::from_str(&s.stdout).expect("show --json is JSON"), r.stderr, plan)
}

fn names(plan: &Value) -> Vec<String> {
    plan["modules"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
}

fn module<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in plan {:?}", names(plan)))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A failing compile: exit status 1, nothing written.
fn compile_err(test: &str, root: &str, args: &[&str]) -> String {
    let dir = scratch(test);
    let plan = dir.join("out.plan");
    let mut a = vec!["compile", "--root", root, "-o", plan.to_str().unwrap()];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(r.code, 1, "expected failure for {args:?}; stderr: {}", r.stderr);
    assert!(!plan.exists(), "a failed compile wrote a plan");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "a failed compile left files behind");
    assert!(r.stderr.starts_with("parmod-plan: "), "{}", r.stderr);
    r.stderr
}

#[test]
fn closure_order_weights_and_priorities() {
    let (p, _, _) = compile_ok("closure", &["c_top"]);
    assert_eq!(names(&p), ["a_core", "b_mid", "c_top"]);
    assert_eq!(p["kernel"], "5.10.0-test");
    let c = module(&p, "c_top");
    assert_eq!(c["path"], "kernel/drv/c_top.ko");
    assert_eq!(sorted(strs(&c["deps"])), ["a_core", "b_mid"]);
    assert_eq!(c["requested"], true);
    assert_eq!(module(&p, "a_core")["requested"], false);
    // Weights: 200 + size / 8.
    assert_eq!(module(&p, "a_core")["weight"], 300);
    assert_eq!(module(&p, "b_mid")["weight"], 400);
    assert_eq!(c["weight"], 1200);
    assert_eq!(c["file_size"], 8000);
    // Priority = the longest path to the end: a_core -> b_mid -> c_top.
    assert_eq!(module(&p, "a_core")["priority"], 1900);
    assert_eq!(module(&p, "b_mid")["priority"], 1600);
    assert_eq!(c["priority"], 1200);
    // Every hard edge is marked hard, and dependents mirror deps.
    for w in c["dep_edges"].as_array().unwrap() {
        assert_eq!(w["hard"], true);
    }
    assert_eq!(strs(&module(&p, "b_mid")["dependents"].as_array().unwrap().iter().map(|d| d["name"].clone()).collect()), ["c_top"]);
}

#[test]
fn dash_and_underscore_are_the_same_and_options_accumulate() {
    let (p, _, _) = compile_ok("dash", &["c-top", "b-mid"]);
    assert_eq!(names(&p), ["a_core", "b_mid", "c_top"]);
    // a.conf then b.conf (a continued line); lib/modprobe.d/a.conf is hidden.
    assert_eq!(module(&p, "c_top")["params"], "x=1 y=\"a b\" z=3");
    assert_eq!(module(&p, "b_mid")["requested"], true);
}

#[test]
fn modprobe_d_alias_beats_modules_alias() {
    let (p, _, _) = compile_ok("alias-precedence", &["myalias"]);
    assert_eq!(names(&p), ["f_drv"]);
    let aliases = p["aliases"].as_array().unwrap();
    assert!(aliases.iter().any(|a| a["pattern"] == "myalias" && a["module"] == "f_drv"));
    // e_drv is not in the plan, so its modules.alias entry is not stored.
    assert!(!aliases.iter().any(|a| a["module"] == "e_drv"));
}

#[test]
fn alias_matching_several_modules_loads_all() {
    let (p, _, _) = compile_ok("alias-many", &["crypto_crcx"]);
    assert_eq!(sorted(names(&p)), ["crc_x", "crc_y"]);
    for m in ["crc_x", "crc_y"] {
        assert_eq!(module(&p, m)["requested"], true);
    }
    let aliases = p["aliases"].as_array().unwrap();
    assert_eq!(aliases.iter().filter(|a| a["pattern"] == "crypto_crcx").count(), 2);
    // modprobe.d glob alias
    let (p, _, _) = compile_ok("alias-glob-conf", &["shadow-thing"]);
    assert_eq!(names(&p), ["crc_x"]);
}

#[test]
fn blacklist_applies_to_aliases_only() {
    // The glob alias matches bl_mod and ok_mod; bl_mod is blacklisted.
    let (p, err, _) = compile_ok("bl-alias", &["pci:v0000ABCDd00000012sv00sd00bc02sc00i00"]);
    assert_eq!(names(&p), ["ok_mod"]);
    assert!(err.contains("blacklisted module 'bl_mod'"), "{err}");
    // Named explicitly: loaded.
    let (p, _, _) = compile_ok("bl-explicit", &["bl_mod"]);
    assert_eq!(names(&p), ["bl_mod"]);
    // As a dependency: loaded, with a hard edge.
    let (p, _, _) = compile_ok("bl-dep", &["i_needs_bl"]);
    assert!(names(&p).contains(&"bl_mod".to_string()));
    assert_eq!(strs(&module(&p, "i_needs_bl")["deps"]), ["bl_mod"]);
    // Every module of an alias blacklisted: a warning, an empty plan, no error.
    let (p, err, _) = compile_ok("bl-all", &["pci:v0000ABCDd00000099sv00sd00bc02sc00i00"]);
    assert!(names(&p).is_empty());
    assert!(err.contains("nothing loaded"), "{err}");
}

#[test]
fn soft_dependencies() {
    let (p, err, _) = compile_ok("softdeps", &["j_soft"]);
    // Only the first matching softdep line counts (kmod): f_drv is not pulled in.
    assert_eq!(sorted(names(&p)), ["crc_x", "crc_y", "e_drv", "j_soft"]);
    let j = module(&p, "j_soft");
    assert_eq!(sorted(strs(&j["softdeps_pre"])), ["crc_x", "crc_y"]);
    assert_eq!(strs(&j["softdeps_post"]), ["e_drv"]);
    assert!(strs(&j["deps"]).is_empty());
    let soft_waits: Vec<_> = j["dep_edges"].as_array().unwrap().iter().map(|w| (w["name"].clone(), w["hard"].clone())).collect();
    assert_eq!(soft_waits.len(), 2);
    assert!(soft_waits.iter().all(|(_, h)| h == false));
    // post: e_drv waits for j_soft (soft).
    let e = module(&p, "e_drv");
    assert_eq!(e["dep_edges"][0]["name"], "j_soft");
    assert_eq!(e["dep_edges"][0]["hard"], false);
    assert_eq!(e["soft_only"], true);
    assert_eq!(j["soft_only"], false);
    // The unresolvable one is a warning naming file and line.
    assert!(err.contains("modules.softdep:2: soft dependency 'platform:missing-thing' of 'j_soft'"), "{err}");
    // Order: pre before, post after.
    let order = names(&p);
    let at = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert!(at("crc_x") < at("j_soft") && at("crc_y") < at("j_soft") && at("j_soft") < at("e_drv"));
}

#[test]
fn softdep_tokens_before_pre_are_ignored() {
    let (p, _, _) = compile_ok("soft-token", &["k_soft"]);
    assert_eq!(names(&p), ["f_drv", "k_soft"]);
    assert_eq!(strs(&module(&p, "k_soft")["softdeps_pre"]), ["f_drv"]);
}

#[test]
fn post_softdep_on_a_module_that_depends_back() {
    let (p, err, _) = compile_ok("soft-post", &["platform:g-net"]);
    assert_eq!(names(&p), ["g_net", "h_post"]);
    assert_eq!(strs(&module(&p, "g_net")["softdeps_post"]), ["h_post"]);
    let h = module(&p, "h_post");
    // The hard edge from modules.dep wins over the soft one to the same module.
    assert_eq!(h["dep_edges"].as_array().unwrap().len(), 1);
    assert_eq!(h["dep_edges"][0]["hard"], true);
    assert!(!err.contains("cycle"), "{err}");
}

#[test]
fn builtins_are_satisfied_not_loaded() {
    let (p, _, _) = compile_ok("builtin", &["builtin-lib", "crypto-bcrc", "i_needs_bl"]);
    let b = module(&p, "builtin_lib");
    assert_eq!(b["builtin"], true);
    assert!(b["path"].is_null());
    assert_eq!(b["weight"], 0);
    // Found through a modules.builtin.modinfo alias, and a softdep of i_needs_bl.
    let c = module(&p, "builtin_crc");
    assert_eq!(c["builtin"], true);
    assert_eq!(c["requested"], true);
    assert_eq!(strs(&module(&p, "i_needs_bl")["softdeps_pre"]), ["builtin_crc"]);
}

#[test]
fn compressed_modules_and_sizes() {
    let (p, _, plan) = compile_ok("compressed", &["d_drv", "e_drv", "f_drv"]);
    for (name, comp, path, size) in [
        ("d_drv", "xz", "kernel/drv/d_drv.ko.xz", 2400),
        ("e_drv", "zstd", "kernel/drv/e_drv.ko.zst", 400),
        ("f_drv", "gzip", "kernel/drv/f_drv.ko.gz", 160),
    ] {
        let m = module(&p, name);
        assert_eq!(m["compression"], comp);
        assert_eq!(m["path"], path);
        assert_eq!(m["file_size"], size);
        assert_eq!(m["weight"], 200 + size / 8);
    }
    // lib/modprobe.d/c.conf is read (no etc/modprobe.d/c.conf hides it).
    assert_eq!(module(&p, "d_drv")["params"], "from_lib=1");
    // Checked through the reader too.
    let bytes = std::fs::read(plan).unwrap();
    let plan = Plan::parse(&bytes).unwrap();
    let d = plan.find_module(b"d-drv").unwrap();
    assert_eq!(d.compression(), Compression::Xz);
    assert!(!Path::new(std::str::from_utf8(d.path().unwrap()).unwrap()).is_absolute());
}

#[test]
fn install_true_disables_and_remove_is_ignored() {
    let cmds = fixture("basic/extra/cmds.conf");
    let (p, err, _) = compile_ok("install", &["--config", cmds.to_str().unwrap(), "e_drv"]);
    // `install e_drv /bin/true` (line 3): in the plan, never loaded.
    assert_eq!(names(&p), ["e_drv"]);
    let e = module(&p, "e_drv");
    assert_eq!(e["disabled"], true);
    assert!(strs(&e["flags"]).contains(&"disabled".to_string()));
    assert_eq!(e["weight"], 0);
    let f = cmds.display();
    // `remove` (line 4) only matters for unloading: silently ignored.
    assert!(!err.contains(":4:") && !err.contains("remove"), "{err}");
    assert!(err.contains(&format!("{f}:5: 'include' is deprecated")), "{err}");
    assert!(!err.contains("weakdep"), "{err}");
    // --ignore-install: loaded as a plain module.
    let (p, _, _) = compile_ok("install-ignored", &["--config", cmds.to_str().unwrap(), "--ignore-install", "e_drv"]);
    assert_eq!(module(&p, "e_drv")["disabled"], false);
    // --config replaces the default directories: c_top has no options now.
    let (p, _, _) = compile_ok("config-replaces", &["--config", cmds.to_str().unwrap(), "c_top"]);
    assert_eq!(module(&p, "c_top")["params"], "");
}

#[test]
fn soft_edge_closing_a_cycle_is_dropped() {
    let conf = fixture("basic/extra/soft-cycle.conf");
    let (p, err, _) = compile_ok("soft-cycle", &["--config", conf.to_str().unwrap(), "a_core"]);
    assert!(err.contains("soft dependency 'a_core' pre: 'c_top' would close a dependency cycle; dropped"), "{err}");
    assert_eq!(names(&p), ["a_core", "b_mid", "c_top"]);
    assert!(strs(&module(&p, "a_core")["softdeps_pre"]).is_empty());
}

#[test]
fn hard_cycle_is_an_error_naming_it() {
    let err = compile_err("hard-cycle", fixture("cycle").to_str().unwrap(), &["ca"]);
    assert!(err.contains("dependency cycle in modules.dep: ca -> cb -> cc -> ca"), "{err}");
}

#[test]
fn unknown_module_is_an_error() {
    let root = basic();
    let err = compile_err("unknown", &root, &["e_drv", "nosuch"]);
    assert!(err.contains("unknown module or alias 'nosuch'"), "{err}");
    assert!(err.contains("5.10.0-test/modules.dep, modules.alias, modules.builtin or modprobe.d aliases"), "{err}");
    assert!(err.contains("check the name or the --kver"), "{err}");
    // A modules.alias entry whose module is not in modules.dep resolves to nothing.
    let err = compile_err("unknown-orphan", &root, &["orphan-alias"]);
    assert!(err.contains("'orphan-alias'"), "{err}");
    // --skip-missing: a warning, and the known names are planned.
    let (p, err, _) = compile_ok("unknown-skip", &["--skip-missing", "e_drv", "nosuch"]);
    assert_eq!(names(&p), ["e_drv"]);
    assert!(err.contains("warning: unknown module or alias 'nosuch'") && err.contains("skipped (--skip-missing)"), "{err}");
    // From modules-load.d: a warning naming the file and line, as
    // systemd-modules-load logs and goes on.
    let f = fixture("basic/extra/load-unknown.conf");
    let (p, err, _) = compile_ok("unknown-load", &["--modules-load", f.to_str().unwrap()]);
    assert_eq!(names(&p), ["e_drv"]);
    assert!(err.contains(&format!("warning: {}:2: unknown module or alias 'nosuch_module'", f.display())), "{err}");
}

#[test]
fn missing_module_file_is_an_error() {
    let err = compile_err("missing", &basic(), &["ghost"]);
    assert!(err.contains("kernel/misc/ghost.ko does not exist"), "{err}");
    assert!(err.contains("depmod"), "{err}");
}

#[test]
fn config_errors() {
    let root = basic();
    let err = compile_err("no-config", &root, &["--config", "/nonexistent/parmod.conf", "e_drv"]);
    assert!(err.contains("cannot read /nonexistent/parmod.conf"), "{err}");
    // kmod skips unknown keywords and malformed lines with a message: a
    // warning naming file and line; --strict makes it an error.
    let f = fixture("basic/extra/bad-keyword.conf");
    let (p, err, _) = compile_ok("bad-keyword", &["--config", f.to_str().unwrap(), "c_top"]);
    assert!(err.contains(&format!("warning: {}:3: unknown keyword 'frobnicate'", f.display())), "{err}");
    assert!(err.contains("line ignored"), "{err}");
    // The line before it still counts.
    assert_eq!(module(&p, "c_top")["params"], "x=1");
    let err = compile_err("bad-keyword-strict", &root, &["--strict", "--no-firmware-check", "--config", f.to_str().unwrap(), "e_drv"]);
    assert!(err.contains(&format!("error: {}:3: unknown keyword 'frobnicate'", f.display())), "{err}");
    assert!(err.contains("--strict: 1 warning treated as error; no plan written"), "{err}");
    let f = fixture("basic/extra/bad-syntax.conf");
    let (_, err, _) = compile_ok("bad-syntax", &["--config", f.to_str().unwrap(), "e_drv"]);
    assert!(err.contains(&format!("warning: {}:1: 'alias' needs", f.display())), "{err}");
    let err = compile_err("no-modules-load", &root, &["--modules-load", "/nonexistent/m.conf"]);
    assert!(err.contains("cannot read /nonexistent/m.conf"), "{err}");
}

#[test]
fn unsafe_module_paths_are_refused() {
    let err = compile_err("unsafe", fixture("unsafe").to_str().unwrap(), &["fine"]);
    assert!(err.contains("modules.dep:2: module path '../../../etc/evil.ko' is absolute or leaves the module directory"), "{err}");
    // An absolute path is read under the root (depmod writes them for its
    // external directories): here the file is missing, and named.
    let root = fixture("absolute");
    let err = compile_err("absolute", root.to_str().unwrap(), &["fine"]);
    assert!(err.contains(&format!("module 'evil': file {}/lib/evil.ko does not exist", root.display())), "{err}");
}

#[test]
fn kernel_version_selection() {
    let err = compile_err("nokernel", fixture("nokernel").to_str().unwrap(), &["x"]);
    assert!(err.contains("no kernel version found under"), "{err}");
    // 5.10.0-test is newer than 5.9.9-old (version order, not byte order);
    // 9.9.9-nodep has no modules.dep.
    let (p, _, _) = compile_ok("kver-default", &["e_drv"]);
    assert_eq!(p["kernel"], "5.10.0-test");
    let (p, _, _) = compile_ok("kver-given", &["--kver", "5.9.9-old", "old_only"]);
    assert_eq!(p["kernel"], "5.9.9-old");
    assert_eq!(names(&p), ["old_only"]);
    let err = compile_err("kver-missing", &basic(), &["--kver", "9.9.9-nodep", "e_drv"]);
    assert!(err.contains("modules.dep not found"), "{err}");
}

#[test]
fn modules_load_d_defaults_and_overrides() {
    // No names, no --modules-load: the root's modules-load.d directories.
    // etc/.../boot.conf hides lib/.../boot.conf (which names ghost).
    let (p, _, _) = compile_ok("mload-default", &[]);
    assert_eq!(sorted(names(&p)), ["crc_x", "e_drv", "f_drv"]);
    assert!(p["modules"].as_array().unwrap().iter().all(|m| m["requested"] == true));
    // Names given: modules-load.d is not read.
    let (p, _, _) = compile_ok("mload-names", &["k_soft"]);
    assert_eq!(names(&p), ["f_drv", "k_soft"]);
    // --modules-load DIR plus a name.
    let d = fixture("basic/extra/load");
    let (p, _, _) = compile_ok("mload-dir", &["--modules-load", d.to_str().unwrap(), "c_top"]);
    assert_eq!(sorted(names(&p)), ["a_core", "b_mid", "c_top", "f_drv", "g_net", "h_post", "k_soft"]);
}

#[test]
fn header_fields() {
    let (p, _, _) = compile_ok("header-default", &["e_drv"]);
    assert_eq!(p["jobs"], 0);
    assert_eq!(p["module_timeout_ms"], 10000);
    assert_eq!(p["deadline_ms"], 60000);
    let (p, _, plan) = compile_ok("header-set", &["--jobs", "3", "--module-timeout=500", "--deadline", "9000", "c_top"]);
    assert_eq!(p["jobs"], 3);
    assert_eq!(p["module_timeout_ms"], 500);
    assert_eq!(p["deadline_ms"], 9000);
    assert_eq!(p["total_weight_us"], 1900);
    let s = run(&["show", plan.to_str().unwrap()]);
    assert_eq!(s.code, 0);
    for want in ["kernel:         5.10.0-test", "jobs:           3", "module timeout: 500 ms", "deadline:       9000 ms", "total weight:   1900 us", "deps: a_core b_mid", "options: x=1 y=\"a b\" z=3"] {
        assert!(s.stdout.contains(want), "missing {want:?} in\n{}", s.stdout);
    }
    let a = s.stdout.find("a_core").unwrap();
    let c = s.stdout.find("c_top [requested]").unwrap();
    assert!(a < c);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["compile", "e_drv"],
        vec!["compile", "--frob", "-o", "/tmp/x"],
        vec!["compile", "--jobs", "many", "-o", "/tmp/x"],
        vec!["compile", "-o"],
        vec!["show"],
        vec!["frobnicate"],
        vec![],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("parmod-plan --help"), "{}", r.stderr);
    }
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("parmod-plan compile"));
}

#[test]
fn failed_compile_keeps_the_old_plan() {
    let dir = scratch("keep-old");
    let plan = dir.join("out.plan");
    std::fs::write(&plan, b"old").unwrap();
    let r = run(&["compile", "--root", &basic(), "-o", plan.to_str().unwrap(), "nosuch"]);
    assert_eq!(r.code, 1);
    assert_eq!(std::fs::read(&plan).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn library_api_whole_tree_is_a_valid_order() {
    let opts = parmod::compiler::Options {
        root: fixture("basic"),
        names: ["a_core", "b-mid", "c_top", "d_drv", "e_drv", "f_drv", "crc_x", "crc_y", "g_net", "h_post", "bl_mod", "ok_mod", "i_needs_bl", "j_soft", "k_soft"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..Default::default()
    };
    let mut warnings = Vec::new();
    let b = parmod::compiler::compile(&opts, &mut |w| warnings.push(w)).unwrap();
    let bytes = b.build().unwrap();
    let plan = Plan::parse(&bytes).unwrap();
    assert_eq!(plan.module_count(), 16); // 15 modules + builtin_crc
    for m in plan.modules() {
        for e in m.deps() {
            assert!(e.module < m.index());
        }
        let want = if m.is_builtin() { 0 } else { 200 + m.file_size() / 8 };
        assert_eq!(m.weight_us(), want);
    }
    // Among ready modules, higher priority first: the first module has the
    // highest priority of all modules that wait for nothing.
    let first = plan.module(0).unwrap();
    let roots_max = plan.modules().filter(|m| m.deps().len() == 0).map(|m| m.priority_us()).max().unwrap();
    assert_eq!(first.priority_us(), roots_max);
    assert!(plan.find_module(b"h_post").unwrap().flags() & module_flags::REQUESTED != 0);
    assert!(warnings.iter().any(|w| w.contains("platform:missing-thing")));
}

#[test]
fn show_trace() {
    let (_, _, plan_path) = compile_ok("trace", &["c_top"]);
    let bytes = std::fs::read(&plan_path).unwrap();
    let plan = Plan::parse(&bytes).unwrap();
    let h = trace::TraceHeader { plan_checksum: plan.checksum(), record_count: 3, t0_ns: 1_000_000_000, jobs: 2, simulated: false };
    let recs = [
        trace::TraceRecord { start_ns: 1_001_000_000, end_ns: 1_003_500_000, index: 0, errno: 0, cause: trace::NO_CAUSE, worker: 0, kind: trace::kind::MODULE, result: trace::result::LOADED },
        trace::TraceRecord { start_ns: 1_004_000_000, end_ns: 1_005_000_000, index: 1, errno: 22, cause: trace::NO_CAUSE, worker: 1, kind: trace::kind::MODULE, result: trace::result::FAILED },
        trace::TraceRecord { start_ns: 0, end_ns: 0, index: 2, errno: 0, cause: 1, worker: trace::NO_WORKER, kind: trace::kind::MODULE, result: trace::result::SKIPPED },
    ];
    let mut t = h.encode().to_vec();
    for r in &recs {
        t.extend_from_slice(&r.encode());
    }
    let tp = plan_path.with_extension("trace");
    std::fs::write(&tp, &t).unwrap();
    let r = run(&["show", "--trace", tp.to_str().unwrap(), plan_path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("a_core loaded 0 1.000 3.500 0 -"), "{}", r.stdout);
    assert!(r.stdout.contains("b_mid failed 1 4.000 5.000 22 -"), "{}", r.stdout);
    assert!(r.stdout.contains("c_top skipped - - - 0 b_mid"), "{}", r.stdout);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let r = run(&["show", "--json", "--trace", tp.to_str().unwrap(), plan_path.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["plan_matches"], true);
    assert_eq!(v["records"][1]["module"], "b_mid");
    assert_eq!(v["records"][1]["errno"], 22);
    assert_eq!(v["records"][2]["cause"], "b_mid");
    // A trace from another plan: a warning.
    let mut other = h;
    other.plan_checksum ^= 1;
    let mut t2 = other.encode().to_vec();
    t2.extend_from_slice(&recs[0].encode());
    t2[20..24].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&tp, &t2).unwrap();
    let r = run(&["show", "--trace", tp.to_str().unwrap(), plan_path.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("warning: trace was made with plan checksum"), "{}", r.stderr);
    // Not a trace at all.
    std::fs::write(&tp, b"garbage").unwrap();
    let r = run(&["show", "--trace", tp.to_str().unwrap(), plan_path.to_str().unwrap()]);
    assert_eq!(r.code, 1);
}

/// A trace of `plan_path` with one record per (module name, result, µs).
fn write_trace(plan_path: &Path, recs: &[(&str, u8, u64)], checksum_xor: u32) -> PathBuf {
    let bytes = std::fs::read(plan_path).unwrap();
    let plan = Plan::parse(&bytes).unwrap();
    let index = |n: &str| plan.modules().find(|m| m.name() == n.as_bytes()).unwrap_or_else(|| panic!("{n}")).index();
    let h = trace::TraceHeader {
        plan_checksum: plan.checksum() ^ checksum_xor,
        record_count: recs.len() as u32,
        t0_ns: 5_000_000,
        jobs: 2,
        simulated: false,
    };
    let mut t = h.encode().to_vec();
    let mut now = 6_000_000u64;
    for &(name, result, us) in recs {
        let r = trace::TraceRecord {
            start_ns: now,
            end_ns: now + us * 1000,
            index: index(name),
            errno: if result == trace::result::FAILED { 19 } else { 0 },
            cause: trace::NO_CAUSE,
            worker: 0,
            kind: trace::kind::MODULE,
            result,
        };
        now += us * 1000 + 10_000;
        t.extend_from_slice(&r.encode());
    }
    let tp = plan_path.with_extension("trace");
    std::fs::write(&tp, &t).unwrap();
    tp
}

#[test]
fn profile_replaces_estimates_with_measured_times() {
    use trace::result::*;
    let (_, _, old) = compile_ok("profile-old", &["c_top", "h_post"]);
    // Estimates (200 + size / 8): a_core 300, b_mid 400, c_top 1200.
    // Ratios measured / estimate: 3.0, 4.0, 0.5: the median is 3.0.
    let tp = write_trace(
        &old,
        &[
            ("a_core", LOADED, 900),
            ("b_mid", LOADED | STUCK_FLAG, 1600),
            ("c_top", PRESENT, 600),
            ("g_net", FAILED, 50_000),
            ("h_post", SKIPPED, 0),
        ],
        0,
    );
    let (p, _, _) = compile_ok(
        "profile-new",
        &["--profile", tp.to_str().unwrap(), "--profile-plan", old.to_str().unwrap(), "c_top", "h_post", "d_drv"],
    );
    assert_eq!(module(&p, "a_core")["weight"], 900);
    assert_eq!(module(&p, "b_mid")["weight"], 1600);
    assert_eq!(module(&p, "c_top")["weight"], 600);
    // Failed and skipped modules have no measurement: estimate x 3.
    assert_eq!(module(&p, "g_net")["weight"], 350 * 3);
    assert_eq!(module(&p, "h_post")["weight"], 250 * 3);
    // Not in the old plan at all: estimate x 3.
    assert_eq!(module(&p, "d_drv")["weight"], 500 * 3);
    // Priorities follow the new weights: a_core -> b_mid -> c_top.
    assert_eq!(module(&p, "c_top")["priority"], 600);
    assert_eq!(module(&p, "b_mid")["priority"], 2200);
    assert_eq!(module(&p, "a_core")["priority"], 900 + 2200);
}

#[test]
fn profile_without_measurements_keeps_the_estimates() {
    let (_, _, old) = compile_ok("profile-none-old", &["c_top"]);
    let tp = write_trace(&old, &[("a_core", trace::result::FAILED, 10)], 0);
    let (p, _, _) = compile_ok(
        "profile-none-new",
        &["--profile", tp.to_str().unwrap(), "--profile-plan", old.to_str().unwrap(), "c_top"],
    );
    assert_eq!(module(&p, "a_core")["weight"], 300);
    assert_eq!(module(&p, "c_top")["weight"], 1200);
}

#[test]
fn profile_errors() {
    let (_, _, old) = compile_ok("profile-err-old", &["c_top"]);
    let root = basic();
    // A trace made with another plan.
    let tp = write_trace(&old, &[("a_core", trace::result::LOADED, 10)], 1);
    let e = compile_err(
        "profile-mismatch",
        &root,
        &["--profile", tp.to_str().unwrap(), "--profile-plan", old.to_str().unwrap(), "c_top"],
    );
    assert!(e.contains("the trace was made with plan checksum"), "{e}");
    assert!(e.contains(tp.to_str().unwrap()), "{e}");
    // Not a trace; not a plan.
    let junk = scratch("profile-junk").join("junk");
    std::fs::write(&junk, b"junk").unwrap();
    let e = compile_err("profile-junk-trace", &root, &["--profile", junk.to_str().unwrap(), "--profile-plan", old.to_str().unwrap(), "c_top"]);
    assert!(e.contains(&format!("{}: truncated trace file", junk.display())), "{e}");
    let e = compile_err("profile-junk-plan", &root, &["--profile", tp.to_str().unwrap(), "--profile-plan", junk.to_str().unwrap(), "c_top"]);
    assert!(e.contains(&format!("{}: ", junk.display())) && e.contains("rebuild"), "{e}");
    // One without the other is a usage error.
    let dir = scratch("profile-usage");
    let out = dir.join("p");
    for args in [["--profile", tp.to_str().unwrap()], ["--profile-plan", old.to_str().unwrap()]] {
        let mut a = vec!["compile", "--root", &root, "-o", out.to_str().unwrap(), "c_top"];
        a.extend_from_slice(&args);
        let r = run(&a);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("--profile"), "{}", r.stderr);
    }
}
