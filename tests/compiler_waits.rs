//! parmod's own configuration statements, `wait-for` (device and sysfs
//! readiness) and `module-timeout`, against the fixture tree
//! tests/fixtures/waits.
#![cfg(feature = "host")]

use std::path::{Path, PathBuf};

use parmod::plan::{wait_flags, Plan, NONE};
use serde_json::{json, Value};

mod plan_tool;

use plan_tool::run;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/waits")
}

fn root_s() -> String {
    root().display().to_string()
}

/// A fresh, empty scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    plan_tool::scratch("waits", test)
}

/// Compile with `--root waits` and `args`; returns (plan bytes, plan path).
fn compile(test: &str, args: &[&str]) -> (Vec<u8>, PathBuf) {
    let plan = scratch(test).join("out.plan");
    let root = root_s();
    let mut a = vec!["compile", "--root", &root, "-o", plan.to_str().unwrap()];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(r.code, 0, "compile {args:?} failed: {}", r.stderr);
    (std::fs::read(&plan).unwrap(), plan)
}

fn show_json(plan: &Path) -> Value {
    let s = run(&["show", "--json", plan.to_str().unwrap()]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    serde_json::from_str(&s.stdout).expect("show --json is JSON")
}

fn show_text(plan: &Path) -> String {
    let s = run(&["show", plan.to_str().unwrap()]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    s.stdout
}

/// (path, after module name, timeout, glob flag) of every device-wait record, in file order.
fn waits(bytes: &[u8]) -> Vec<(String, Option<String>, u32, bool)> {
    let p = Plan::parse(bytes).expect("the plan parses");
    p.waits()
        .map(|w| {
            let after = w.module().map(|m| String::from_utf8_lossy(p.module(m).unwrap().name()).into_owned());
            (String::from_utf8_lossy(w.path()).into_owned(), after, w.timeout_ms(), w.flags() & wait_flags::GLOB != 0)
        })
        .collect()
}

fn w(path: &str, after: Option<&str>, timeout: u32, glob: bool) -> (String, Option<String>, u32, bool) {
    (path.to_string(), after.map(str::to_string), timeout, glob)
}

#[test]
fn default_dirs_modprobe_d_and_parmod_d() {
    let (bytes, _) = compile("defaults", &["snd-hda", "e1000"]);
    // modprobe.d/sound.conf, then etc/parmod.d/10-net.conf (hiding
    // lib/parmod.d/10-net.conf, which names a module that does not exist),
    // then lib/parmod.d/20-final.conf. The writer groups waits by module in
    // load order, then the final waits in reading order.
    let p = Plan::parse(&bytes).unwrap();
    let order: Vec<String> = p.modules().map(|m| String::from_utf8_lossy(m.name()).into_owned()).collect();
    let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
    let mut expect = vec![
        (pos("snd_hda"), w("/dev/snd/controlC*", Some("snd_hda"), 2000, true)),
        (pos("e1000"), w("/sys/class/net/eth*/address", Some("e1000"), 5000, true)),
        (pos("snd"), w("/dev/snd/pcmC0D0p", Some("snd"), 250, false)),
    ];
    expect.sort_by_key(|e| e.0);
    let mut expect: Vec<_> = expect.into_iter().map(|e| e.1).collect();
    expect.push(w("/dev/ready", None, 5000, false));
    expect.push(w("/sys/devices/platform/final", None, 0, false));
    assert_eq!(waits(&bytes), expect);
    // Each module's dev_waits range names exactly its waits.
    for m in p.modules() {
        for wi in m.dev_waits() {
            assert_eq!(p.wait(wi).unwrap().module(), Some(m.index()));
        }
    }
    assert_eq!(p.modules().map(|m| m.dev_waits().count()).sum::<usize>(), 3);
}

#[test]
fn wait_after_a_dependency_and_after_a_builtin() {
    // snd is only pulled in by snd-hda; bi is built in: both are in the plan.
    let dir = scratch("dep-builtin");
    let conf = dir.join("w.conf");
    std::fs::write(&conf, "wait-for /dev/snd/seq after snd\nwait-for /dev/bi after bi timeout 10\n").unwrap();
    let (bytes, _) = compile("dep-builtin-out", &["--config", conf.to_str().unwrap(), "snd_hda", "bi"]);
    let got = waits(&bytes);
    assert!(got.contains(&w("/dev/snd/seq", Some("snd"), 5000, false)), "{got:?}");
    assert!(got.contains(&w("/dev/bi", Some("bi"), 10, false)), "{got:?}");
}

#[test]
fn config_replaces_every_default_directory() {
    // --config: neither modprobe.d nor parmod.d of the root is read.
    let conf = root().join("extra/explicit.conf");
    let (bytes, _) = compile("explicit", &["--config", conf.to_str().unwrap(), "bi", "e1000"]);
    assert_eq!(waits(&bytes), vec![w("/dev/only-this", Some("bi"), 7, false)]);
}

#[test]
fn globs_in_one_component_set_the_glob_flag() {
    let dir = scratch("globs");
    let conf = dir.join("g.conf");
    std::fs::write(
        &conf,
        "wait-for /dev/snd/controlC?\nwait-for /sys/class/net/eth[0-9]/address\nwait-for /dev/input/event*\nwait-for /dev/plain\n",
    )
    .unwrap();
    let (bytes, _) = compile("globs-out", &["--config", conf.to_str().unwrap(), "e1000"]);
    assert_eq!(
        waits(&bytes),
        vec![
            w("/dev/snd/controlC?", None, 5000, true),
            w("/sys/class/net/eth[0-9]/address", None, 5000, true),
            w("/dev/input/event*", None, 5000, true),
            w("/dev/plain", None, 5000, false),
        ]
    );
}

#[test]
fn show_json_lists_the_waits() {
    let (_, plan) = compile("json", &["snd-hda", "e1000"]);
    let v = show_json(&plan);
    let list = v["waits"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.contains(&json!({"path": "/dev/snd/controlC*", "after": "snd_hda", "timeout_ms": 2000, "glob": true})));
    assert!(list.contains(&json!({"path": "/sys/class/net/eth*/address", "after": "e1000", "timeout_ms": 5000, "glob": true})));
    assert!(list.contains(&json!({"path": "/dev/ready", "after": null, "timeout_ms": 5000, "glob": false})));
    assert!(list.contains(&json!({"path": "/sys/devices/platform/final", "after": null, "timeout_ms": 0, "glob": false})));
    let hda = v["modules"].as_array().unwrap().iter().find(|m| m["name"] == "snd_hda").unwrap();
    assert_eq!(hda["waits"], json!(["/dev/snd/controlC*"]));
}

#[test]
fn show_text_lists_the_waits_per_module_and_before_success() {
    let (_, plan) = compile("text", &["snd-hda", "e1000"]);
    let t = show_text(&plan);
    assert!(t.contains("waits:          5\n"), "{t}");
    // The lines under snd_hda's entry (indented by 8) hold its wait.
    let lines: Vec<&str> = t.lines().collect();
    let hda = lines.iter().position(|l| l.contains(" snd_hda [requested]")).expect(&t);
    let block: Vec<&str> = lines[hda + 1..].iter().take_while(|l| l.starts_with("        ")).copied().collect();
    assert!(block.contains(&"        then its device wait: /dev/snd/controlC* (glob, 2000 ms)"), "{t}");
    assert!(t.contains("then its device wait: /sys/class/net/eth*/address (glob, 5000 ms)"), "{t}");
    assert!(t.contains("then its device wait: /dev/snd/pcmC0D0p (250 ms)"), "{t}");
    let fin = t.find("\nwaits before success:\n").expect(&t);
    assert!(t[fin..].contains("/dev/ready (5000 ms)"), "{t}");
    assert!(t[fin..].contains("/sys/devices/platform/final (until the deadline)"), "{t}");
}

/// Compile with one error config; returns stderr.
fn compile_err(file: &str, names: &[&str]) -> String {
    let conf = root().join("extra/errors").join(file);
    let plan = scratch(&format!("err-{file}")).join("out.plan");
    let root = root_s();
    let mut a = vec!["compile", "--root", &root, "--config", conf.to_str().unwrap(), "-o", plan.to_str().unwrap()];
    a.extend_from_slice(names);
    let r = run(&a);
    assert_eq!(r.code, 1, "{file}: expected failure, got {} ({})", r.code, r.stderr);
    assert!(!plan.exists(), "{file}: a plan was written");
    r.stderr
}

#[test]
fn errors_name_file_and_line() {
    let cases: &[(&str, u32, &str)] = &[
        ("relative.conf", 1, "path 'dev/x' is not absolute"),
        ("outside.conf", 2, "path '/tmp/x' is not under /dev or /sys"),
        ("bare-dev.conf", 1, "path '/dev' is not under /dev or /sys"),
        ("dotdot.conf", 1, "'/dev/../etc/passwd' has an empty, '.' or '..' component"),
        ("dot.conf", 1, "'/dev/./x' has an empty, '.' or '..' component"),
        ("empty-component.conf", 1, "'/dev//x' has an empty, '.' or '..' component"),
        ("trailing-slash.conf", 1, "'/sys/class/net/' has an empty, '.' or '..' component"),
        ("two-globs.conf", 1, "in 2 components; at most one component may be a glob"),
        ("trailing-word.conf", 1, "unexpected 'now'"),
        ("bad-timeout.conf", 1, "timeout 'soon' is not a number of milliseconds"),
        ("negative-timeout.conf", 1, "timeout '-1' is not a number of milliseconds"),
        ("no-path.conf", 1, "wait-for: needs a path"),
        ("after-no-module.conf", 1, "'after' needs a module name"),
        ("timeout-no-value.conf", 1, "'timeout' needs a number of milliseconds"),
        ("timeout-twice.conf", 1, "'timeout' given twice"),
        ("after-twice.conf", 1, "'after' given twice"),
        (
            "not-in-plan.conf",
            1,
            "wait-for /dev/x after 'other': module 'other' is not in the plan: it is neither requested nor a dependency",
        ),
        ("unknown-module.conf", 1, "module 'no_such_module' is not in the plan: no such module"),
        ("mt-zero.conf", 1, "module-timeout: 0 ms: give a number of milliseconds from 1"),
        ("mt-glob.conf", 1, "module-timeout: 'snd_*' is a glob; module-timeout takes one module name"),
        ("mt-unknown.conf", 1, "module-timeout no_such_module 100: no such module in this kernel"),
        ("mt-no-ms.conf", 1, "module-timeout: needs milliseconds after 'snd'"),
        ("mt-extra.conf", 1, "module-timeout: unexpected '200' after the milliseconds"),
        ("mt-not-number.conf", 1, "module-timeout: 'soon' is not a number of milliseconds"),
        ("mt-empty.conf", 1, "module-timeout: needs a module name and milliseconds"),
    ];
    for (file, line, msg) in cases {
        let err = compile_err(file, &["snd_hda", "e1000"]);
        let at = format!("{}:{line}: ", root().join("extra/errors").join(file).display());
        assert!(err.contains(&at), "{file}: no {at:?} in {err}");
        assert!(err.contains(msg), "{file}: no {msg:?} in {err}");
    }
}

#[test]
fn library_api_fills_plan_builder_waits() {
    let opts = parmod::compiler::Options {
        root: root(),
        names: vec!["snd-hda".into(), "e1000".into()],
        ..Default::default()
    };
    let b = parmod::compiler::compile(&opts, &mut |_| {}).unwrap();
    assert_eq!(b.waits.len(), 5);
    let fin: Vec<_> = b.waits.iter().filter(|w| w.module.is_none()).map(|w| w.path.as_str()).collect();
    assert_eq!(fin, ["/dev/ready", "/sys/devices/platform/final"]);
    for w in b.waits.iter().filter(|w| w.module.is_some()) {
        let m = w.module.unwrap();
        assert_ne!(m, NONE);
        assert!((m as usize) < b.modules.len());
    }
}

#[test]
fn module_timeout_sets_a_module_s_own_timeout() {
    let conf = root().join("extra/module-timeout.conf");
    let (bytes, plan) = compile("module-timeout", &["--config", conf.to_str().unwrap(), "snd-hda", "e1000"]);
    let p = Plan::parse(&bytes).unwrap();
    let own: Vec<(String, u32)> = p.modules().map(|m| (String::from_utf8_lossy(m.name()).into_owned(), m.timeout_ms())).collect();
    let of = |n: &str| own.iter().find(|(m, _)| m == n).map(|x| x.1);
    assert_eq!(of("snd_hda"), Some(30000), "{own:?}");
    assert_eq!(of("e1000"), Some(200), "the later statement wins: {own:?}");
    assert_eq!(of("snd"), Some(0), "no statement: the runtime derives it: {own:?}");
    assert_eq!(of("other"), None, "not planned: {own:?}");
    let t = show_text(&plan);
    assert!(t.contains(", timeout 30000 ms"), "{t}");
    let j = show_json(&plan);
    let e1000 = j["modules"].as_array().unwrap().iter().find(|m| m["name"] == "e1000").expect("e1000 in show --json");
    assert_eq!(e1000["timeout_ms"], json!(200));
}
