//! parmod-plan against kmod, case by case: each test writes a small module
//! tree of its own (tests/kmod_tree), compiles it and checks the plan it
//! expects; when kmod is installed it also asks Debian's modprobe
//! (`--show-depends`, on a copy indexed by depmod) and checks that both load
//! the same modules with the same options. Without kmod that comparison is
//! skipped with a message (and fails under PARMOD_REQUIRE_DEBIAN=1).
#![cfg(feature = "host")]

use std::collections::BTreeSet;

use serde_json::Value;

mod kmod_tree;
mod plan_tool;

use kmod_tree::{module, Tree};
use plan_tool::run;

const KVER: &str = "1.0.0-kc";

fn tree(case: &str) -> Tree {
    Tree::new(plan_tool::scratch("kmod-compat", case).join("root"), KVER)
}

/// `parmod-plan compile --root ROOT --config ROOT/etc/modprobe.d ARGS`:
/// (exit status, plan as JSON when written, stderr).
fn compile(t: &Tree, args: &[&str]) -> (i32, Option<Value>, String) {
    let out = t.root.with_extension("plan");
    let _ = std::fs::remove_file(&out);
    let root = t.root.to_str().unwrap().to_string();
    let conf = t.root.join("etc/modprobe.d").to_str().unwrap().to_string();
    let mut a = vec!["compile", "--root", &root, "--config", &conf, "-o", out.to_str().unwrap()];
    a.extend_from_slice(args);
    let r = run(&a);
    let plan = (r.code == 0).then(|| {
        let s = run(&["show", "--json", out.to_str().unwrap()]);
        assert_eq!(s.code, 0, "{}", s.stderr);
        serde_json::from_str(&s.stdout).unwrap()
    });
    (r.code, plan, r.stderr)
}

fn compile_ok(t: &Tree, args: &[&str]) -> (Value, String) {
    let (code, plan, err) = compile(t, args);
    assert_eq!(code, 0, "compile {args:?}: {err}");
    (plan.unwrap(), err)
}

fn modules(p: &Value) -> &Vec<Value> {
    p["modules"].as_array().unwrap()
}

fn names(p: &Value) -> Vec<String> {
    modules(p).iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
}

fn module_of<'a>(p: &'a Value, name: &str) -> &'a Value {
    modules(p).iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("{name} not in {:?}", names(p)))
}

/// The modules the plan loads or finds built in (not the disabled ones).
fn loaded(p: &Value) -> BTreeSet<String> {
    modules(p).iter().filter(|m| m["disabled"] == false).map(|m| m["name"].as_str().unwrap().to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn dependencies_symbols_and_aliases_match_kmod() {
    let t = tree("basic")
        .add(module("kernel/a/pm_base.ko", &["pm_base_fn"], &[]))
        .add(module("kernel/a/pm-mid.ko", &["pm_mid_fn"], &["pm_base_fn"]).alias("pm-mid-alias"))
        .add(module("kernel/b/pm_top.ko", &[], &["pm_mid_fn"]))
        .conf("a.conf", "options pm_top x=1\n");
    t.write();
    for (name, want) in [
        ("pm_top", &["pm_base", "pm_mid", "pm_top"][..]),
        ("pm-mid-alias", &["pm_base", "pm_mid"]),
        ("symbol:pm_mid_fn", &["pm_base", "pm_mid"]),
    ] {
        let (p, _) = compile_ok(&t, &[name]);
        assert_eq!(loaded(&p), set(want), "{name}");
    }
    if let Some(k) = t.kmod(&["pm_top", "pm-mid-alias", "symbol:pm_mid_fn"]) {
        for a in &k {
            let (p, _) = compile_ok(&t, &[&a.name]);
            assert!(a.ok, "{a:?}");
            assert_eq!(a.modules(), loaded(&p), "{}", a.name);
        }
        assert_eq!(k[0].insmod.last().unwrap(), &("pm_top".to_string(), "x=1".to_string()));
    }
}

/// For each name: kmod's modules (loaded or built in) are the plan's
/// (disabled ones excluded), and kmod's options for each are the plan's.
/// Returns kmod's answers, or None when kmod is not installed.
fn same_as_kmod(t: &Tree, names: &[&str], args: &[&str]) -> Option<Vec<kmod_tree::KmodAnswer>> {
    let answers = t.kmod(names)?;
    for a in &answers {
        let mut all = args.to_vec();
        all.push(&a.name);
        let (p, err) = compile_ok(t, &all);
        assert_eq!(a.modules(), loaded(&p), "{}: kmod {a:?}\nparmod stderr: {err}", a.name);
        for (m, opts) in &a.insmod {
            assert_eq!(module_of(&p, m)["params"], opts.as_str(), "{}: options of {m}", a.name);
        }
    }
    Some(answers)
}

/// Item: an alias to a module that does not exist. kmod's lookup stops at
/// the modprobe.d alias and finds nothing to load (its dry run prints
/// nothing; a real `modprobe` fails); an alias naming another alias is not
/// followed. parmod: an error on the command line, naming the alias line,
/// unless --skip-missing; never the module of the same name.
#[test]
fn alias_to_a_missing_module_loads_nothing() {
    let t = tree("alias-missing")
        .add(module("kernel/pm-simple.ko", &[], &[]))
        .add(module("kernel/pm_pcspkr.ko", &[], &[]).alias("platform:pm-pcspkr"))
        .add(module("kernel/pm_user.ko", &[], &[]).softdep("pre: pm-simple"))
        .conf("a.conf", "alias pm-simple deaddood\nalias pm-chain platform:pm-pcspkr\n");
    t.write();
    let conf = t.root.join("etc/modprobe.d/a.conf");
    let (code, _, err) = compile(&t, &["pm-simple"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{}:1: alias 'pm_simple' (matching 'pm-simple') names 'deaddood', which is no module of {KVER}", conf.display())),
        "{err}"
    );
    let (code, _, err) = compile(&t, &["pm-chain"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(":2: alias 'pm_chain'") && err.contains("names 'platform:pm_pcspkr'"), "{err}");
    let (p, err) = compile_ok(&t, &["--skip-missing", "pm-simple", "pm-chain"]);
    assert!(names(&p).is_empty(), "{:?}", names(&p));
    assert!(err.contains("skipped (--skip-missing)"), "{err}");
    // As a soft dependency: a warning, and the module itself loads.
    let (p, err) = compile_ok(&t, &["pm_user"]);
    assert_eq!(names(&p), ["pm_user"]);
    assert!(err.contains("soft dependency 'pm-simple' of 'pm_user' resolves through alias 'pm_simple'"), "{err}");
    if let Some(k) = t.kmod(&["pm-simple", "pm-chain", "pm_user"]) {
        assert!(k[0].ok && k[0].modules().is_empty(), "{:?}", k[0]);
        assert!(k[1].ok && k[1].modules().is_empty(), "{:?}", k[1]);
        assert_eq!(k[2].modules(), set(&["pm_user"]));
    }
}

/// Item: absolute paths in modules.dep (depmod's `external` directive).
/// The tree is accepted; a module outside lib/modules/KVER is planned
/// relative to the root (ROOT_PATH), one under it relative to the module
/// directory; `..` is still refused.
#[test]
fn external_modules_with_absolute_paths() {
    let t = tree("external")
        .add(module("/lib/modules/external/pm_ext.ko", &["pm_ext_fn"], &[]))
        .add(module("kernel/pm_uses_ext.ko", &[], &["pm_ext_fn"]))
        .add(module("kernel/pm_plain.ko", &[], &[]));
    let t = Tree { depmod_conf: format!("search external built-in\nexternal {KVER} ROOT/lib/modules/external\n"), ..t };
    t.write();
    let (p, _) = compile_ok(&t, &["pm_plain"]);
    assert_eq!(names(&p), ["pm_plain"]);
    let (p, _) = compile_ok(&t, &["pm_uses_ext"]);
    assert_eq!(names(&p), ["pm_ext", "pm_uses_ext"]);
    let ext = module_of(&p, "pm_ext");
    assert_eq!(ext["path"], "/lib/modules/external/pm_ext.ko");
    assert!(ext["flags"].as_array().unwrap().contains(&Value::from("root-path")));
    assert_eq!(module_of(&p, "pm_uses_ext")["path"], "kernel/pm_uses_ext.ko");
    // The plan itself: root-relative, flagged.
    let bytes = std::fs::read(t.root.with_extension("plan")).unwrap();
    let plan = parmod::plan::Plan::parse(&bytes).unwrap();
    let m = plan.find_module(b"pm_ext").unwrap();
    assert!(m.is_root_path());
    assert_eq!(m.path(), Some(&b"lib/modules/external/pm_ext.ko"[..]));
    if let Some(k) = same_as_kmod(&t, &["pm_uses_ext", "pm_plain"], &[]) {
        assert_eq!(k[0].insmod.len(), 2);
        // The kmod copy's modules.dep holds the host path of the copy (depmod
        // -b): parmod reads it inside that root too.
        let copy = t.root.with_extension("kmod");
        let dep = std::fs::read_to_string(copy.join(format!("lib/modules/{KVER}/modules.dep"))).unwrap();
        assert!(dep.contains(&format!("{}/lib/modules/external/pm_ext.ko", std::fs::canonicalize(&copy).unwrap().display())), "{dep}");
        let out = copy.with_extension("plan");
        let r = run(&["compile", "--root", copy.to_str().unwrap(), "-o", out.to_str().unwrap(), "pm_uses_ext"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let bytes = std::fs::read(&out).unwrap();
        let plan = parmod::plan::Plan::parse(&bytes).unwrap();
        assert_eq!(plan.find_module(b"pm_ext").unwrap().path(), Some(&b"lib/modules/external/pm_ext.ko"[..]));
    }
    // Absolute paths under the module directory are planned relative to it;
    // a path that leaves the root is refused, naming the line.
    let md = format!("lib/modules/{KVER}");
    let t2 = tree("external-paths")
        .add(module("kernel/pm_a.ko", &[], &[]))
        .file(&format!("{md}/modules.dep"), format!("/{md}/kernel/pm_a.ko:\n/lib/../../pm_evil.ko:\n").as_bytes());
    t2.write();
    let (code, _, err) = compile(&t2, &["pm_a"]);
    assert_eq!(code, 1);
    assert!(err.contains("modules.dep:2: module path '/lib/../../pm_evil.ko' is absolute or leaves the module directory"), "{err}");
    let t3 = tree("external-inside")
        .add(module("kernel/pm_a.ko", &[], &[]))
        .file(&format!("{md}/modules.dep"), format!("/{md}/kernel/pm_a.ko:\n").as_bytes());
    t3.write();
    let (p, _) = compile_ok(&t3, &["pm_a"]);
    assert_eq!(module_of(&p, "pm_a")["path"], "kernel/pm_a.ko");
    assert!(!module_of(&p, "pm_a")["flags"].as_array().unwrap().contains(&Value::from("root-path")));
}

/// Item: `install NAME /bin/true` and the other no-op commands disable a
/// module: in the plan (shown), never loaded; its dependencies still load,
/// as kmod loads them before running the command. Any other command is an
/// error naming file and line, unless --ignore-install. kmod ignores the
/// command of a module that has soft dependencies: so does parmod.
#[test]
fn install_no_op_commands_disable_modules() {
    let mut t = tree("install")
        .add(module("kernel/pm_dep.ko", &["pm_dep_fn"], &[]))
        .add(module("kernel/pm_soft.ko", &[], &[]))
        .add(module("kernel/pm_with_soft.ko", &[], &[]).softdep("pre: pm_soft"))
        .add(module("kernel/pm_cmd.ko", &[], &[]))
        .add(module("kernel/pm_needs_off.ko", &[], &["pm_off0_fn"]));
    let forms = ["/bin/true", "/bin/false", "/usr/bin/true", "/usr/bin/false", "true", "false", ":", "/bin/true # disabled"];
    let mut conf = String::new();
    for (i, f) in forms.iter().enumerate() {
        t = t.add(module(&format!("kernel/pm_off{i}.ko"), &[&format!("pm_off{i}_fn")], &["pm_dep_fn"]));
        conf.push_str(&format!("install pm_off{i} {f}\n"));
    }
    conf.push_str("install pm_with_soft /bin/true\ninstall pm_cmd /sbin/modprobe --ignore-install pm_cmd; echo loaded\ninstall pm-nomodule /bin/true\n");
    let t = t.conf("a.conf", &conf);
    t.write();
    let conf_path = t.root.join("etc/modprobe.d/a.conf");
    for (i, form) in forms.iter().enumerate() {
        let name = format!("pm_off{i}");
        let (p, err) = compile_ok(&t, &[&name]);
        assert_eq!(names(&p), ["pm_dep", name.as_str()], "{form}");
        let m = module_of(&p, &name);
        assert_eq!(m["disabled"], true, "{form}");
        assert_eq!(m["weight"], 0);
        assert_eq!(module_of(&p, "pm_dep")["disabled"], false);
        assert!(!err.contains("warning"), "{err}");
    }
    // Shown as disabled.
    let out = t.root.with_extension("plan");
    let s = run(&["show", out.to_str().unwrap()]);
    assert!(s.stdout.contains("[requested, disabled]") && s.stdout.contains("disabled by configuration: never loaded"), "{}", s.stdout);
    assert!(s.stdout.contains("1 disabled"), "{}", s.stdout);
    // A module that needs a disabled one: a warning that it will likely fail.
    let (p, err) = compile_ok(&t, &["pm_needs_off"]);
    assert_eq!(module_of(&p, "pm_off0")["disabled"], true);
    assert!(err.contains(&format!("module 'pm_needs_off' needs 'pm_off0', which {}:1 disables", conf_path.display())), "{err}");
    // Soft dependencies: the command is ignored, the module loads.
    let (p, _) = compile_ok(&t, &["pm_with_soft"]);
    assert_eq!(module_of(&p, "pm_with_soft")["disabled"], false);
    // A name that is no module but has a no-op command: a disabled entry without a file.
    let (p, _) = compile_ok(&t, &["pm-nomodule"]);
    let m = module_of(&p, "pm_nomodule");
    assert_eq!((m["disabled"].clone(), m["path"].clone(), m["builtin"].clone()), (Value::from(true), Value::Null, Value::from(false)));
    // A real command: an error naming the line; --ignore-install loads the module.
    let (code, _, err) = compile(&t, &["pm_cmd"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{}:{}: install pm_cmd /sbin/modprobe --ignore-install pm_cmd; echo loaded: module 'pm_cmd' is in the plan (requested) and parmod runs no commands", conf_path.display(), forms.len() + 2)),
        "{err}"
    );
    assert!(err.contains("--ignore-install"), "{err}");
    let (p, _) = compile_ok(&t, &["--ignore-install", "pm_cmd", "pm_off0"]);
    assert!(modules(&p).iter().all(|m| m["disabled"] == false));
    if let Some(k) = same_as_kmod(&t, &["pm_off0", "pm_off6", "pm_with_soft", "pm-nomodule", "pm_needs_off"], &[]) {
        assert_eq!(k[0].install, ["/bin/true"]);
        assert_eq!(k[1].install, [":"]);
        assert!(k[2].install.is_empty());
        assert_eq!(k[3].install, ["/bin/true"]);
        assert_eq!(k[4].insmod.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["pm_dep", "pm_needs_off"]);
    }
}

/// Item: `options ALIAS k=v` apply to the module reached through that
/// alias, in file order with the module's own (kmod_module_get_options).
#[test]
fn options_given_for_an_alias() {
    let t = tree("alias-options")
        .add(module("kernel/pm_net.ko", &[], &[]).alias("pci:v00001234d*"))
        .add(module("kernel/pm_other.ko", &[], &[]))
        .conf("a.conf", "alias pm-eth0 pm_net\noptions pm-eth0 debug=1\noptions pm_net x=2\noptions pci:v00001234d00005678 irq=5\n");
    t.write();
    let (p, _) = compile_ok(&t, &["pm-eth0"]);
    assert_eq!(module_of(&p, "pm_net")["params"], "debug=1 x=2");
    let (p, _) = compile_ok(&t, &["pci:v00001234d00005678"]);
    assert_eq!(module_of(&p, "pm_net")["params"], "x=2 irq=5");
    let (p, _) = compile_ok(&t, &["pm_net"]);
    assert_eq!(module_of(&p, "pm_net")["params"], "x=2");
    same_as_kmod(&t, &["pm-eth0", "pci:v00001234d00005678", "pm_net"], &[]);
}

/// A modprobe.d alias named like a module takes that name over (kmod looks
/// up the configuration's aliases first), and the options given for the
/// name go with it to the alias's module (found by `make fuzz`, config).
#[test]
fn an_alias_named_like_a_module_takes_its_name_and_options() {
    let t = tree("alias-over-module")
        .add(module("kernel/pm_net.ko", &[], &[]))
        .add(module("kernel/pm_other.ko", &[], &[]))
        .conf("a.conf", "alias pm-other pm_net\noptions pm_other debug=1\noptions pm_net x=2\n");
    t.write();
    let (p, _) = compile_ok(&t, &["pm_other"]);
    assert_eq!(names(&p), ["pm_net"], "the alias, not the module of that name");
    assert_eq!(module_of(&p, "pm_net")["params"], "debug=1 x=2");
    same_as_kmod(&t, &["pm_other", "pm_net"], &[]);
}

/// An `install` line with a no-op command disables the name it gives, which
/// the plan then lists; a name that no module can have (not printable ASCII)
/// is not planned but unknown (found by `make fuzz`, config: the plan
/// writer refused such a plan).
#[test]
fn a_disabled_name_that_no_module_can_have_is_unknown() {
    let t = tree("install-odd-name")
        .add(module("kernel/pm_net.ko", &[], &[]))
        .conf("a.conf", "install p\u{e5} /bin/true\nalias pm-odd p\u{e5}\ninstall pm-off /bin/true\n");
    t.write();
    for name in ["p\u{e5}", "pm-odd"] {
        let (code, _, err) = compile(&t, &[name]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains(name) || err.contains("p\u{e5}"), "{name}: {err}");
        let (p, err) = compile_ok(&t, &["--skip-missing", name, "pm_net"]);
        assert_eq!(names(&p), ["pm_net"], "{name}: {err}");
    }
    let (p, _) = compile_ok(&t, &["pm-off"]);
    assert_eq!(module_of(&p, "pm_off")["disabled"], true);
}

/// Item: `symbol:NAME`, what request_module("symbol:...") asks for,
/// resolves through modules.symbols; the plan keeps those aliases for the
/// modprobe personality.
#[test]
fn symbol_names_resolve_through_modules_symbols() {
    let t = tree("symbols")
        .add(module("kernel/pm_lib.ko", &["pm_lib_crc", "pm_lib_other"], &[]))
        .add(module("kernel/pm_user.ko", &[], &["pm_lib_crc"]));
    t.write();
    let (p, _) = compile_ok(&t, &["symbol:pm_lib_crc"]);
    assert_eq!(names(&p), ["pm_lib"]);
    assert_eq!(module_of(&p, "pm_lib")["requested"], true);
    let pats: Vec<&str> = p["aliases"].as_array().unwrap().iter().map(|a| a["pattern"].as_str().unwrap()).collect();
    assert!(pats.contains(&"symbol:pm_lib_crc") && pats.contains(&"symbol:pm_lib_other"), "{pats:?}");
    let (code, _, err) = compile(&t, &["symbol:pm_nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown module or alias 'symbol:pm_nosuch'"), "{err}");
    same_as_kmod(&t, &["symbol:pm_lib_crc", "pm_user"], &[]);
}

/// Item: an unknown keyword (or a malformed line) in modprobe.d: kmod skips
/// the line with a message, parmod warns with file and line; --strict makes
/// every warning an error.
#[test]
fn unknown_keywords_are_warnings() {
    let t = tree("keywords")
        .add(module("kernel/pm_a.ko", &[], &[]))
        .conf("a.conf", "frobnicate pm_a\noptions pm_a x=1\nalias lonely\n")
        .conf("b.alias", "options pm_a from_alias_file=1\n");
    t.write();
    let f = t.root.join("etc/modprobe.d/a.conf");
    let (p, err) = compile_ok(&t, &["pm_a"]);
    // kmod reads *.alias files of modprobe.d too.
    assert_eq!(module_of(&p, "pm_a")["params"], "x=1 from_alias_file=1");
    assert!(err.contains(&format!("warning: {}:1: unknown keyword 'frobnicate'", f.display())), "{err}");
    assert!(err.contains(&format!("warning: {}:3: 'alias' needs a pattern and a module name; line ignored", f.display())), "{err}");
    let (code, plan, err) = compile(&t, &["--strict", "pm_a"]);
    assert_eq!(code, 1);
    assert!(plan.is_none() && !t.root.with_extension("plan").exists());
    assert!(err.contains(&format!("error: {}:1: unknown keyword", f.display())) && err.contains("--strict: 2 warnings treated as errors"), "{err}");
    if let Some(k) = same_as_kmod(&t, &["pm_a"], &[]) {
        assert!(k[0].stderr.contains("ignoring bad line starting with 'frobnicate'"), "{}", k[0].stderr);
    }
}

/// Item: built-ins: names from modules.builtin and aliases from
/// modules.builtin.modinfo, with or without a modules.dep. (kmod 30 finds a
/// built-in by name only in modules.builtin: a name known only from
/// modules.builtin.modinfo is unknown to it, and to parmod.)
#[test]
fn builtin_modules_and_kernels_without_modules_dep() {
    for (case, no_dep) in [("builtins", false), ("builtins-only", true)] {
        let md = format!("lib/modules/{KVER}");
        let mut t = tree(case)
            .file(&format!("{md}/modules.builtin"), b"kernel/fs/pm_bi.ko\n")
            .file(&format!("{md}/modules.builtin.modinfo"), b"pm_bi.license=GPL\0pm_bi2.alias=pm-bi2-alias\0pm_bi2.license=GPL\0");
        t.no_dep = no_dep;
        t.write();
        if no_dep {
            assert!(!t.module_dir().join("modules.dep").exists());
        }
        let (p, _) = compile_ok(&t, &["pm_bi", "pm-bi2-alias"]);
        assert_eq!(names(&p).into_iter().collect::<BTreeSet<_>>(), set(&["pm_bi", "pm_bi2"]), "{case}");
        assert!(modules(&p).iter().all(|m| m["builtin"] == true));
        let (code, _, err) = compile(&t, &["pm_bi2"]);
        assert_eq!(code, 1, "{case}: {err}");
        if let Some(k) = same_as_kmod(&t, &["pm_bi", "pm-bi2-alias"], &[]) {
            assert_eq!(k[0].builtin, ["pm_bi"]);
            assert_eq!(k[1].builtin, ["pm_bi2"]);
            let by_name = t.kmod(&["pm_bi2"]).unwrap();
            assert!(!by_name[0].ok, "{case}: {:?}", by_name[0]);
        }
    }
}

/// Item: post soft dependencies. kmod's probe list of X is [pre softdeps,
/// deps, X, post softdeps] and a failure stops it: a post softdep in the
/// plan only for X is POST_ONLY, and it and its own dependencies (if they
/// are there for nothing else) wait for X with post edges. A module that is
/// also requested is not POST_ONLY; pre softdeps carry no post bit.
#[test]
fn post_soft_dependencies_wait_for_their_module() {
    let t = tree("post")
        .add(module("kernel/pm_x.ko", &["pm_x_fn"], &[]).softdep("pre: pm_pre post: pm_post"))
        .add(module("kernel/pm_pre.ko", &[], &[]))
        .add(module("kernel/pm_postdep.ko", &["pm_postdep_fn"], &[]))
        .add(module("kernel/pm_post.ko", &[], &["pm_postdep_fn"]))
        .add(module("kernel/pm_y.ko", &[], &["pm_x_fn"]));
    t.write();
    let (p, _) = compile_ok(&t, &["pm_y"]);
    let flags = |n: &str| -> Vec<String> {
        module_of(&p, n)["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
    };
    assert!(flags("pm_post").contains(&"post-only".to_string()));
    assert!(flags("pm_postdep").contains(&"post-only".to_string()));
    for n in ["pm_x", "pm_pre", "pm_y"] {
        assert!(!flags(n).contains(&"post-only".to_string()), "{n}");
    }
    let post_edges = |n: &str| -> Vec<String> {
        module_of(&p, n)["dep_edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["post"] == true)
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(post_edges("pm_post"), ["pm_x"]);
    // pm_postdep is there only for pm_post: it waits for pm_x too.
    assert_eq!(post_edges("pm_postdep"), ["pm_x"]);
    assert!(post_edges("pm_x").is_empty() && post_edges("pm_y").is_empty());
    // pm_pre: a soft edge without the post bit.
    let x = module_of(&p, "pm_x");
    assert!(x["dep_edges"].as_array().unwrap().iter().any(|e| e["name"] == "pm_pre" && e["hard"] == false && e["post"] == false));
    // Order: kmod's list is pre, X, then the post list (its deps first).
    let order = names(&p);
    let at = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert!(at("pm_pre") < at("pm_x") && at("pm_x") < at("pm_postdep") && at("pm_postdep") < at("pm_post"));
    // Requested too: not post-only, the edge keeps its post bit.
    let (p, _) = compile_ok(&t, &["pm_y", "pm_post"]);
    let post = module_of(&p, "pm_post");
    assert!(!post["flags"].as_array().unwrap().contains(&Value::from("post-only")));
    assert!(post["dep_edges"].as_array().unwrap().iter().any(|e| e["name"] == "pm_x" && e["post"] == true));
    assert!(!module_of(&p, "pm_postdep")["flags"].as_array().unwrap().contains(&Value::from("post-only")));
    if let Some(k) = same_as_kmod(&t, &["pm_y", "pm_x"], &[]) {
        let seq: Vec<&str> = k[1].insmod.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(seq, ["pm_pre", "pm_x", "pm_postdep", "pm_post"]);
    }
}

/// `--on-request`: modules the kernel asks for by itself (the crypto
/// manager's `crypto-stdrng`) are planned with what they need, flagged
/// ON_REQUEST, their aliases kept; what the run needs anyway is not flagged;
/// they add nothing to the run's priorities or total weight.
#[test]
fn on_request_modules_are_planned_not_run() {
    let t = tree("on-request")
        .add(module("kernel/pm_ecdh.ko", &[], &["pm_shared_fn"]))
        .add(module("kernel/pm_shared.ko", &["pm_shared_fn"], &[]))
        .add(module("kernel/pm_drbg.ko", &[], &["pm_shared_fn", "pm_rngdep_fn"]).alias("crypto-stdrng"))
        .add(module("kernel/pm_rngdep.ko", &["pm_rngdep_fn"], &[]))
        .add(module("kernel/pm_cprng.ko", &[], &[]).alias("crypto-stdrng"));
    t.write();
    let (base, _) = compile_ok(&t, &["pm_ecdh"]);
    let (p, _) = compile_ok(&t, &["pm_ecdh", "--on-request", "crypto-stdrng"]);
    let flags = |n: &str| -> Vec<String> {
        module_of(&p, n)["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
    };
    // The alias matches two modules: both planned, as kmod loads both.
    for n in ["pm_drbg", "pm_rngdep", "pm_cprng"] {
        assert!(flags(n).contains(&"on-request".to_string()), "{n}: {:?}", flags(n));
        assert_eq!(module_of(&p, n)["on_request"], true);
        assert!(!flags(n).contains(&"requested".to_string()) && !flags(n).contains(&"soft-only".to_string()), "{n}: {:?}", flags(n));
    }
    for n in ["pm_ecdh", "pm_shared"] {
        assert!(!flags(n).contains(&"on-request".to_string()), "{n}: {:?}", flags(n));
        // The run's modules keep the priorities of the plan without them.
        assert_eq!(module_of(&p, n)["priority"], module_of(&base, n)["priority"], "{n}");
    }
    assert_eq!(p["total_weight_us"], base["total_weight_us"]);
    assert_eq!(p["total_serial_us"], base["total_serial_us"]);
    let aliases: Vec<&str> = p["aliases"].as_array().unwrap().iter().filter(|a| a["pattern"] == "crypto_stdrng").map(|a| a["module"].as_str().unwrap()).collect();
    assert_eq!(sorted(aliases.iter().map(|s| s.to_string()).collect()), ["pm_cprng", "pm_drbg"]);
    // Named as well: loaded by the run, not on request.
    let (p, _) = compile_ok(&t, &["pm_ecdh", "pm_drbg", "--on-request=crypto-stdrng"]);
    assert_eq!(module_of(&p, "pm_drbg")["on_request"], false);
    assert_eq!(module_of(&p, "pm_rngdep")["on_request"], false);
    assert_eq!(module_of(&p, "pm_cprng")["on_request"], true);
    // An unknown on-request name fails like an unknown name.
    let (code, _, err) = compile(&t, &["pm_ecdh", "--on-request", "pm_nothing"]);
    assert_ne!(code, 0);
    assert!(err.contains("pm_nothing"), "{err}");
    // A plan of every module has nothing to keep on request.
    let (code, _, err) = compile(&t, &["--all", "--on-request", "crypto-stdrng"]);
    assert_ne!(code, 0);
    assert!(err.contains("--on-request with --all"), "{err}");
    let (code, _, err) = compile(&t, &["pm_ecdh", "--on-request", "pm_drbg,"]);
    assert_ne!(code, 0);
    assert!(err.contains("an empty name"), "{err}");
}

/// Item: blacklist and aliases. A request through an alias skips the
/// blacklisted module (kmod picks the other one); a blacklisted module in the
/// plan for another reason carries BLACKLISTED, so that the runtime can skip
/// it where it resolves the plan's aliases.
#[test]
fn blacklisted_modules_behind_aliases() {
    let t = tree("blacklist")
        .add(module("kernel/pm_pcspkr.ko", &[], &[]).alias("platform:pm-pcspkr"))
        .add(module("kernel/pm_snd_pcsp.ko", &[], &[]).alias("platform:pm-pcspkr"))
        .conf("a.conf", "blacklist pm_pcspkr\n");
    t.write();
    let (p, err) = compile_ok(&t, &["platform:pm-pcspkr"]);
    assert_eq!(names(&p), ["pm_snd_pcsp"]);
    assert!(err.contains("resolves to blacklisted module 'pm_pcspkr'"), "{err}");
    let (p, _) = compile_ok(&t, &["pm_pcspkr", "platform:pm-pcspkr"]);
    let m = module_of(&p, "pm_pcspkr");
    assert_eq!(m["blacklisted"], true);
    assert_eq!(module_of(&p, "pm_snd_pcsp")["blacklisted"], false);
    let targets: BTreeSet<&str> = p["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["pattern"] == "platform:pm_pcspkr")
        .map(|a| a["module"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["pm_pcspkr", "pm_snd_pcsp"].into_iter().collect());
    same_as_kmod(&t, &["platform:pm-pcspkr", "pm_pcspkr"], &[]);
}

/// The firmware check: each planned module's `firmware=` files missing from
/// ROOT/lib/firmware (plain, .xz or .zst, also in updates/ and KVER/) are a
/// warning naming them; --strict makes it an error.
#[test]
fn missing_firmware_is_a_warning() {
    let t = tree("firmware")
        .add(
            module("kernel/pm_fw.ko", &[], &[])
                .firmware("pm/a.bin")
                .firmware("pm/b.bin")
                .firmware("pm/c.bin")
                .firmware("pm/d.bin")
                .firmware("pm/e.bin"),
        )
        .add(module("kernel/pm_nofw.ko", &[], &[]))
        .add(module("kernel/pm_fwxz.ko.xz", &[], &[]).firmware("pm/a.bin").firmware("pm/xz-only.bin"))
        .file("lib/firmware/pm/a.bin", b"a")
        .file("lib/firmware/pm/b.bin.xz", b"b")
        .file("lib/firmware/pm/c.bin.zst", b"c")
        .file(&format!("lib/firmware/updates/{KVER}/pm/d.bin"), b"d");
    t.write();
    let (_, err) = compile_ok(&t, &["pm_fw", "pm_nofw"]);
    let fw = t.root.join("lib/firmware");
    assert!(
        err.contains(&format!("warning: module 'pm_fw' names firmware that is not under {} (plain, .xz or .zst): pm/e.bin (1 of its 5 firmware files)", fw.display())),
        "{err}"
    );
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    // A compressed module is read decompressed; with --decompress, from its copy.
    for args in [&["pm_fwxz"][..], &["--decompress", t.root.with_extension("ko").to_str().unwrap(), "pm_fwxz"]] {
        let (p, err) = compile_ok(&t, args);
        assert_eq!(names(&p), ["pm_fwxz"]);
        assert!(err.contains("module 'pm_fwxz' names firmware") && err.contains(": pm/xz-only.bin (1 of its 2 firmware files)"), "{err}");
    }
    let (code, _, err) = compile(&t, &["--strict", "pm_fw"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error: module 'pm_fw' names firmware"), "{err}");
    let (_, err) = compile_ok(&t, &["--no-firmware-check", "pm_fw"]);
    assert!(!err.contains("firmware"), "{err}");
    std::fs::write(fw.join("pm/e.bin"), b"e").unwrap();
    let (_, err) = compile_ok(&t, &["--strict", "pm_fw"]);
    assert!(err.is_empty(), "{err}");
}

/// Unknown names: on the command line among known ones an error (an image
/// build should fail loudly) unless --skip-missing; in modules-load.d a
/// warning, as systemd-modules-load logs and goes on.
#[test]
fn unknown_names_on_the_command_line_and_in_modules_load_d() {
    let t = tree("unknown")
        .add(module("kernel/pm_a.ko", &[], &[]))
        .file("etc/modules-load.d/x.conf", b"pm_a\npm_nosuch\n");
    t.write();
    let (code, _, err) = compile(&t, &["pm_a", "pm_nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown module or alias 'pm_nosuch'"), "{err}");
    let (p, err) = compile_ok(&t, &["--skip-missing", "pm_a", "pm_nosuch"]);
    assert_eq!(names(&p), ["pm_a"]);
    assert!(err.contains("'pm_nosuch'") && err.contains("--skip-missing"), "{err}");
    let ml = t.root.join("etc/modules-load.d");
    let (p, err) = compile_ok(&t, &["--modules-load", ml.to_str().unwrap()]);
    assert_eq!(names(&p), ["pm_a"]);
    assert!(err.contains(&format!("{}:2: unknown module or alias 'pm_nosuch'", ml.join("x.conf").display())), "{err}");
    assert!(err.contains("as systemd-modules-load skips it"), "{err}");
    if let Some(k) = t.kmod(&["pm_nosuch"]) {
        assert!(!k[0].ok, "{:?}", k[0]);
    }
}

/// A module file given by its path (kmod 31 and later accept
/// `modprobe /path/x.ko`): the file with its modinfo `depends=`; a file of
/// modules.dep is that module; a file outside the root is refused. (kmod 30,
/// Debian 12's, has no such form: no comparison.)
#[test]
fn module_files_given_by_path() {
    let t = tree("by-path")
        .add(module("kernel/pm_base.ko", &["pm_base_fn"], &[]))
        .add(module("kernel/pm_user.ko", &[], &["pm_base_fn"]))
        .loose("opt/extra/pm_file.ko", module("pm_file.ko", &[], &["pm_base_fn"]).depends("pm_base"))
        .loose("opt/extra/pm_lost.ko", module("pm_lost.ko", &[], &[]).depends("pm_nosuch"))
        .loose(&format!("lib/modules/{KVER}/updates/pm_new.ko"), module("pm_new.ko", &[], &[]))
        .conf("a.conf", "options pm_file x=1\n");
    t.write();
    let root = std::fs::canonicalize(&t.root).unwrap();
    let file = root.join("opt/extra/pm_file.ko");
    let (p, _) = compile_ok(&t, &[file.to_str().unwrap()]);
    assert_eq!(names(&p), ["pm_base", "pm_file"]);
    let m = module_of(&p, "pm_file");
    assert_eq!(m["path"], "/opt/extra/pm_file.ko");
    assert_eq!(m["requested"], true);
    assert_eq!(m["params"], "x=1");
    assert_eq!(m["deps"], serde_json::json!(["pm_base"]));
    // Under the module directory but not in modules.dep: planned relative to it.
    let (p, _) = compile_ok(&t, &[root.join(format!("lib/modules/{KVER}/updates/pm_new.ko")).to_str().unwrap()]);
    assert_eq!(module_of(&p, "pm_new")["path"], "updates/pm_new.ko");
    // A file modules.dep lists is that module, with its dependencies from there.
    let (p, _) = compile_ok(&t, &[root.join(format!("lib/modules/{KVER}/kernel/pm_user.ko")).to_str().unwrap(), "pm_user"]);
    assert_eq!(names(&p), ["pm_base", "pm_user"]);
    // depends= naming no module: a warning.
    let (p, err) = compile_ok(&t, &[root.join("opt/extra/pm_lost.ko").to_str().unwrap()]);
    assert_eq!(names(&p), ["pm_lost"]);
    assert!(err.contains("depends on 'pm_nosuch' (modinfo depends=), which is no module of this kernel"), "{err}");
    // Outside the root, missing, or no module file: errors naming it.
    let outside = t.root.parent().unwrap().join("pm_outside.ko");
    std::fs::write(&outside, kmod_tree::elf_module(&module("pm_outside.ko", &[], &[]), KVER)).unwrap();
    let (code, _, err) = compile(&t, &[outside.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("outside the root") && err.contains("run depmod"), "{err}");
    let (code, _, err) = compile(&t, &[root.join("opt/extra/none.ko").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read") && err.contains("none.ko"), "{err}");
    // Two modules of one name in a plan: refused.
    let dup = root.join(format!("lib/modules/{KVER}/updates/pm_user.ko"));
    std::fs::write(&dup, kmod_tree::elf_module(&module("pm_user.ko", &[], &[]), KVER)).unwrap();
    let (code, _, err) = compile(&t, &[dup.to_str().unwrap(), "pm_user"]);
    assert_eq!(code, 1);
    assert!(err.contains("two modules named 'pm_user' in the plan"), "{err}");
}
