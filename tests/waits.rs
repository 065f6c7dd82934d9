//! Device and sysfs waits: the stand-alone `parmod wait` command on ordinary
//! directories (inotify) and /sys (uevents and back-off re-checks), its CPU
//! use while waiting, and plan waits in `--simulate` mode.
//!
//! Runs the real static runtime (`$PARMOD_BIN`, else the musl release build;
//! `make build`). Timing bounds are generous: lower bounds only where a wait
//! must really have waited, upper bounds far below the timeouts.
//!
//! Three plan-wait tests create paths under /dev and so need write access
//! there (root). Without it they print a line starting "SKIP" and pass, or
//! fail when PARMOD_REQUIRE_DEV_WRITABLE=1.
#![cfg(feature = "host")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::WantWait::{NotStarted, Satisfied, TimedOut, Unfinished};
use common::*;
use parmod::plan::trace::{result, NO_CAUSE};
use parmod::plan::{PlanBuilder, DeviceWaitSpec};

// ------------------------------------------------------------ helpers

/// `parmod wait ARGS...`, killed by the test after 60 s.
fn wait_cmd(scratch: &Scratch, args: &[&str]) -> Outcome {
    let v: Vec<String> = std::iter::once("wait".to_string())
        .chain(args.iter().map(|s| s.to_string()))
        .collect();
    let out = run_raw(scratch, &parmod_bin(), &v, Duration::from_secs(60), None);
    assert!(
        !out.timed_out,
        "parmod wait did not exit within 60 s\n{}",
        out.describe()
    );
    out
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// Do `f` after `ms` milliseconds on another thread.
fn later(ms: u64, f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(ms));
        f();
    })
}

fn touch(path: &Path) {
    fs::write(path, b"x").unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
}

fn mkdir(path: &Path) {
    fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

/// The `parmod wait: PATH did not appear within N ms` lines, as paths.
fn missing_named(out: &Outcome) -> Vec<String> {
    out.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("parmod wait: "))
        .filter_map(|l| {
            l.split_once(" did not appear within ")
                .map(|(a, _)| a.to_string())
        })
        .collect()
}

/// A path name no test (and no other run) uses.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("parmod-test-missing-{}-{nanos}-{tag}", std::process::id())
}

// ------------------------------------------------------------ parmod wait

#[test]
fn wait_path_already_there() {
    let sc = Scratch::new("w-there");
    let f = sc.path("node");
    touch(&f);
    let out = wait_cmd(&sc, &["--timeout", "20000", &p(&f)]);
    out.assert_exit(0);
    assert!(
        out.wall < Duration::from_secs(2),
        "an existing path took {:?}\n{}",
        out.wall,
        out.describe()
    );
    assert!(
        out.stderr.is_empty(),
        "nothing to say on success\n{}",
        out.describe()
    );
    // Directories count too, and a path with several components.
    let out = wait_cmd(&sc, &["--timeout", "20000", &p(&sc.dir), "/dev/null"]);
    out.assert_exit(0);
}

#[test]
fn wait_path_appears_during_the_wait() {
    let sc = Scratch::new("w-appear");
    let f = sc.path("node");
    let g = f.clone();
    let t = later(200, move || touch(&g));
    let out = wait_cmd(&sc, &["--timeout", "20000", &p(&f)]);
    t.join().unwrap();
    out.assert_exit(0);
    assert!(
        out.wall >= Duration::from_millis(150),
        "returned after {:?}, before the path was created at ~200 ms\n{}",
        out.wall,
        out.describe()
    );
    assert!(
        out.wall < Duration::from_secs(5),
        "took {:?} to notice a path created at ~200 ms (timeout 20 s)\n{}",
        out.wall,
        out.describe()
    );
}

#[test]
fn wait_nested_directories_appear_later() {
    let sc = Scratch::new("w-nested");
    let node = sc.path("a/b/c/node");
    let base = sc.dir.clone();
    let t = thread::spawn(move || {
        for (ms, rel) in [(150, "a"), (150, "a/b"), (150, "a/b/c")] {
            thread::sleep(Duration::from_millis(ms));
            mkdir(&base.join(rel));
        }
        thread::sleep(Duration::from_millis(150));
        touch(&base.join("a/b/c/node"));
    });
    let out = wait_cmd(&sc, &["--timeout", "20000", &p(&node)]);
    t.join().unwrap();
    out.assert_exit(0);
    assert!(
        out.wall >= Duration::from_millis(500),
        "returned after {:?}, before the node was created at ~600 ms\n{}",
        out.wall,
        out.describe()
    );
    assert!(
        out.wall < Duration::from_secs(5),
        "took {:?} to follow a/b/c/node into existence (timeout 20 s)\n{}",
        out.wall,
        out.describe()
    );
}

#[test]
fn wait_glob_in_last_component() {
    let sc = Scratch::new("w-glob-last");
    touch(&sc.path("other0"));
    let pattern = sc.path("dev*");
    let d = sc.path("dev0");
    let t = later(200, move || touch(&d));
    let out = wait_cmd(&sc, &["--timeout", "20000", &p(&pattern)]);
    t.join().unwrap();
    out.assert_exit(0);
    assert!(
        out.wall >= Duration::from_millis(150) && out.wall < Duration::from_secs(5),
        "dev* matched by dev0 created at ~200 ms: returned after {:?}\n{}",
        out.wall,
        out.describe()
    );
    // Already matching: immediate. `?` and `[...]` work as well.
    for pat in ["dev*", "dev?", "de[uv]0"] {
        let out = wait_cmd(&sc, &["--timeout", "20000", &p(&sc.path(pat))]);
        out.assert_exit(0);
        assert!(
            out.wall < Duration::from_secs(2),
            "{pat}: {:?}\n{}",
            out.wall,
            out.describe()
        );
    }
    // A pattern nothing matches times out (other0 does not match dev*).
    let out = wait_cmd(&sc, &["--timeout", "200", &p(&sc.path("dev[5-9]"))]);
    out.assert_exit(1);
}

#[test]
fn wait_glob_in_middle_component_directory_with_file_moved_in() {
    // net/eth0 appears with its address already inside (renamed into place
    // as a whole directory).
    let sc = Scratch::new("w-glob-mid-dir");
    mkdir(&sc.path("net"));
    mkdir(&sc.path("staging"));
    mkdir(&sc.path("staging/eth0"));
    touch(&sc.path("staging/eth0/address"));
    let pattern = sc.path("net/eth*/address");
    let (from, to) = (sc.path("staging/eth0"), sc.path("net/eth0"));
    let t = later(200, move || {
        fs::rename(&from, &to).expect("rename eth0 into net")
    });
    let out = wait_cmd(&sc, &["--timeout", "20000", &p(&pattern)]);
    t.join().unwrap();
    out.assert_exit(0);
    assert!(
        out.wall >= Duration::from_millis(150) && out.wall < Duration::from_secs(5),
        "net/eth*/address: returned after {:?}\n{}",
        out.wall,
        out.describe()
    );
}

#[test]
fn wait_glob_in_middle_component_file_after_directory() {
    // The way devices appear: the directory first, its attribute later.
    let sc = Scratch::new("w-glob-mid");
    mkdir(&sc.path("net"));
    mkdir(&sc.path("net/lo"));
    touch(&sc.path("net/lo/mtu"));
    let pattern = sc.path("net/eth*/address");
    let base = sc.dir.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        mkdir(&base.join("net/eth0"));
        thread::sleep(Duration::from_millis(200));
        touch(&base.join("net/eth0/mtu"));
        thread::sleep(Duration::from_millis(200));
        touch(&base.join("net/eth0/address"));
    });
    let out = wait_cmd(&sc, &["--timeout", "10000", &p(&pattern)]);
    t.join().unwrap();
    out.assert_exit(0);
    assert!(
        out.wall >= Duration::from_millis(500) && out.wall < Duration::from_secs(5),
        "net/eth*/address, address created ~600 ms in: returned after {:?}\n{}",
        out.wall,
        out.describe()
    );
}

#[test]
fn wait_several_paths_returns_when_all_exist() {
    let sc = Scratch::new("w-several");
    let paths: Vec<PathBuf> = ["one", "two", "three"].iter().map(|n| sc.path(n)).collect();
    let present = sc.path("present");
    touch(&present);
    let list = paths.clone();
    let t = thread::spawn(move || {
        for f in &list {
            thread::sleep(Duration::from_millis(150));
            touch(f);
        }
    });
    let mut args = vec!["--timeout".to_string(), "20000".to_string(), p(&present)];
    args.extend(paths.iter().map(|f| p(f)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = wait_cmd(&sc, &args);
    t.join().unwrap();
    out.assert_exit(0);
    assert!(
        out.wall >= Duration::from_millis(400),
        "returned after {:?}, before the last path was created at ~450 ms\n{}",
        out.wall,
        out.describe()
    );
    assert!(
        out.wall < Duration::from_secs(5),
        "took {:?}\n{}",
        out.wall,
        out.describe()
    );
}

#[test]
fn wait_timeout_names_exactly_the_missing_paths() {
    let sc = Scratch::new("w-timeout");
    let a = sc.path("here-a");
    let b = sc.path("here-b");
    touch(&a);
    touch(&b);
    let m1 = sc.path("gone-1");
    let m2 = sc.path("sub/gone-2");
    let m3 = format!("/sys/{}", unique("t"));
    let out = wait_cmd(
        &sc,
        &["--timeout", "500", &p(&a), &p(&m1), &p(&b), &p(&m2), &m3],
    );
    out.assert_exit(1);
    assert!(
        out.wall >= Duration::from_millis(500),
        "gave up after {:?}, before the 500 ms timeout\n{}",
        out.wall,
        out.describe()
    );
    assert!(
        out.wall < Duration::from_secs(10),
        "took {:?}\n{}",
        out.wall,
        out.describe()
    );
    let mut named = missing_named(&out);
    named.sort();
    let mut want = vec![p(&m1), p(&m2), m3.clone()];
    want.sort();
    assert_eq!(
        named,
        want,
        "the missing paths, each once, and nothing else\n{}",
        out.describe()
    );
    for l in out.stderr.lines() {
        assert!(
            l.starts_with("parmod wait: ") && l.ends_with(" did not appear within 500 ms"),
            "unexpected stderr line {l:?}\n{}",
            out.describe()
        );
    }
    for present in [&a, &b] {
        assert!(
            !out.stderr.contains(&p(present)),
            "a present path is named\n{}",
            out.describe()
        );
    }
}

#[test]
fn wait_default_timeout_is_long() {
    // Without --timeout the command waits (30 s by default): still waiting
    // after 1.5 s, and returns once the path appears.
    let sc = Scratch::new("w-default");
    let f = sc.path("late");
    let g = f.clone();
    let t = later(1500, move || touch(&g));
    let out = wait_cmd(&sc, &[&p(&f)]);
    t.join().unwrap();
    out.assert_exit(0);
    assert!(
        out.wall >= Duration::from_millis(1400) && out.wall < Duration::from_secs(10),
        "returned after {:?}\n{}",
        out.wall,
        out.describe()
    );
}

#[test]
fn wait_zero_timeout_checks_once() {
    let sc = Scratch::new("w-zero");
    let out = wait_cmd(&sc, &["--timeout", "0", "/dev/null"]);
    out.assert_exit(0);
    let out = wait_cmd(&sc, &["--timeout", "0", &p(&sc.path("nope"))]);
    out.assert_exit(1);
    assert!(
        out.wall < Duration::from_secs(2),
        "{:?}\n{}",
        out.wall,
        out.describe()
    );
    assert_eq!(
        missing_named(&out),
        vec![p(&sc.path("nope"))],
        "{}",
        out.describe()
    );
}

#[test]
fn wait_usage_errors() {
    let sc = Scratch::new("w-usage");
    let many: Vec<String> = (0..33).map(|i| format!("/dev/null{i}")).collect();
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "no paths"),
        (
            vec!["--timeout".into(), "100".into()],
            "a timeout but no paths",
        ),
        (vec!["relative/path".into()], "relative path"),
        (
            vec!["/dev/null".into(), "dev/null".into()],
            "relative path after an absolute one",
        ),
        (
            vec!["--timeout".into(), "abc".into(), "/dev/null".into()],
            "non-numeric timeout",
        ),
        (
            vec!["--timeout".into(), "-5".into(), "/dev/null".into()],
            "negative timeout",
        ),
        (
            vec!["--timeout".into(), "".into(), "/dev/null".into()],
            "empty timeout",
        ),
        (
            vec!["--timeout".into(), "99999999999".into(), "/dev/null".into()],
            "huge timeout",
        ),
        (
            vec!["/dev/null".into(), "--timeout".into()],
            "--timeout without a value",
        ),
        (many.clone(), "33 paths"),
    ];
    cases.push((
        vec![format!("/{}", "x".repeat(300))],
        "path longer than PATH_MAX",
    ));
    for (args, what) in &cases {
        let out = run_raw(
            &sc,
            &parmod_bin(),
            &std::iter::once("wait".to_string())
                .chain(args.iter().cloned())
                .collect::<Vec<_>>(),
            Duration::from_secs(60),
            None,
        );
        assert_eq!(
            out.code,
            Some(2),
            "{what}: expected exit 2\n{}",
            out.describe()
        );
        assert!(
            out.wall < Duration::from_secs(2),
            "{what}: a usage error waits {:?}\n{}",
            out.wall,
            out.describe()
        );
        assert!(
            !out.stderr.trim().is_empty(),
            "{what}: no message\n{}",
            out.describe()
        );
    }
    // 32 paths are fine.
    let ok: Vec<String> = (0..32).map(|_| "/dev/null".to_string()).collect();
    let out = run_raw(
        &sc,
        &parmod_bin(),
        &std::iter::once("wait".to_string())
            .chain(ok)
            .collect::<Vec<_>>(),
        Duration::from_secs(60),
        None,
    );
    out.assert_exit(0);
}

#[test]
fn wait_file_renamed_into_place() {
    // Written elsewhere, then renamed in: the watched directory sees only
    // IN_MOVED_TO (no IN_CREATE).
    let sc = Scratch::new("w-rename");
    mkdir(&sc.path("watched"));
    mkdir(&sc.path("elsewhere"));
    let tmp = sc.path("elsewhere/node.tmp");
    touch(&tmp);
    let dst = sc.path("watched/node");
    let d = dst.clone();
    let t = later(200, move || {
        fs::rename(&tmp, &d).expect("rename into place")
    });
    let out = wait_cmd(&sc, &["--timeout", "20000", &p(&dst)]);
    t.join().unwrap();
    out.assert_exit(0);
    assert!(
        out.wall >= Duration::from_millis(150) && out.wall < Duration::from_secs(5),
        "renamed into place at ~200 ms: returned after {:?}\n{}",
        out.wall,
        out.describe()
    );
}

#[test]
fn wait_sys_path_appearing_elsewhere_is_still_found() {
    // /sys/kernel exists; a /sys path is re-checked on its back-off even
    // though nothing is watched with inotify there.
    let sc = Scratch::new("w-sys");
    let out = wait_cmd(&sc, &["--timeout", "20000", "/sys/kernel", "/sys/devices"]);
    out.assert_exit(0);
    assert!(
        out.wall < Duration::from_secs(2),
        "{:?}\n{}",
        out.wall,
        out.describe()
    );
    let out = wait_cmd(&sc, &["--timeout", "20000", "/sys/class/*"]);
    out.assert_exit(0);
}

// ------------------------------------------------------------ CPU use

/// Run `parmod wait ARGS` and return (user+system CPU time, wall time, exit
/// code). The child's CPU time is read from /proc/PID/stat while it is a
/// zombie (waitid with WNOWAIT leaves it unreaped), so nothing races its
/// exit; /proc/PID/sched gives the same figure in ns when the kernel keeps it.
/// The CPU time task `pid` has had so far (`/proc/PID/schedstat`, ns).
fn schedstat_ns(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?.split_whitespace().next()?.parse().ok()
}

/// What a `parmod wait` used: CPU time over its whole life (ticks, and the
/// scheduler's precise sum), its wall time, its exit code, and the CPU time
/// of its waiting alone: from 500 ms after its start (past exec, page
/// faults of a cold binary, setting up the watches) to 2800 ms, when
/// `--timeout 3000` has not ended it yet (None where schedstat is missing).
struct WaitCpu {
    cpu: Duration,
    precise: Option<Duration>,
    wall: Duration,
    code: Option<i32>,
    window: Option<(Duration, Duration)>,
}

fn cpu_of_wait(args: &[&str]) -> WaitCpu {
    use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};
    let t0 = Instant::now();
    let mut child = Command::new(parmod_bin())
        .arg("wait")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn parmod wait");
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    let sample_at = |ms: u64| {
        let at = t0 + Duration::from_millis(ms);
        thread::sleep(at.saturating_duration_since(Instant::now()));
        (Instant::now(), schedstat_ns(child.id()))
    };
    let (a_t, a) = sample_at(500);
    let (b_t, b) = sample_at(2800);
    let window = match (a, b) {
        (Some(a), Some(b)) => Some((Duration::from_nanos(b.saturating_sub(a)), b_t - a_t)),
        _ => None,
    };
    loop {
        let st = waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG,
        )
        .expect("waitid");
        if st.is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("parmod wait {args:?} did not exit within 60 s");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let wall = t0.elapsed();
    let stat =
        fs::read_to_string(format!("/proc/{}/stat", child.id())).expect("read the zombie's stat");
    let sched = fs::read_to_string(format!("/proc/{}/sched", child.id())).ok();
    let code = child.wait().expect("reap").code();
    // Fields after the ")" of the command name: state is field 3; utime and
    // stime are fields 14 and 15, in clock ticks.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    assert_eq!(f[0], "Z", "expected a zombie: {stat}");
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(100);
    let cpu = Duration::from_nanos(ticks * 1_000_000_000 / hz);
    let precise = sched.and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("se.sum_exec_runtime"))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|&ms| ms > 0.0)
            .map(|ms| Duration::from_nanos((ms * 1e6) as u64))
    });
    WaitCpu { cpu, precise, wall, code, window }
}

#[test]
fn waiting_uses_almost_no_cpu() {
    let sc = Scratch::new("w-cpu");
    let tmp_missing = p(&sc.path("never"));
    let sys_missing = format!("/sys/does/not/exist/{}", unique("cpu"));
    for (what, path) in [
        ("tmp (inotify)", tmp_missing.as_str()),
        ("/sys (uevents + back-off)", sys_missing.as_str()),
    ] {
        let WaitCpu { cpu, precise, wall, code, window } = cpu_of_wait(&["--timeout", "3000", path]);
        eprintln!(
            "parmod wait --timeout 3000 {what}: wall {:.1} ms, CPU (utime+stime) {:.1} ms, \
             sum_exec_runtime {}, CPU/wall {:.3}%; while waiting (0.5-2.8 s): {}",
            wall.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3,
            precise.map_or("n/a".to_string(), |d| format!(
                "{:.3} ms",
                d.as_secs_f64() * 1e3
            )),
            precise.unwrap_or(cpu).as_secs_f64() / wall.as_secs_f64() * 100.0,
            window.map_or("n/a (no /proc/PID/schedstat)".to_string(), |(c, w)| format!(
                "{:.3} ms of CPU in {:.0} ms",
                c.as_secs_f64() * 1e3,
                w.as_secs_f64() * 1e3
            )),
        );
        assert_eq!(code, Some(1), "{what}: the path is missing: exit 1");
        assert!(
            wall >= Duration::from_millis(3000),
            "{what}: gave up after {wall:?}"
        );
        assert!(wall < Duration::from_secs(20), "{what}: took {wall:?}");
        match window {
            // The waiting itself: at most 1 % of a CPU (the /sys wait's
            // back-off re-checks included).
            Some((c, w)) => assert!(
                c * 100 < w,
                "{what}: {c:?} of CPU in {w:?} of waiting (limit 1 %)"
            ),
            None => {
                if std::env::var_os("PARMOD_REQUIRE_SCHEDSTAT").is_some() {
                    panic!("{what}: no /proc/PID/schedstat (PARMOD_REQUIRE_SCHEDSTAT is set)");
                }
                eprintln!("SKIP {what}: the waiting window's CPU time (no /proc/PID/schedstat); the whole life's is checked");
            }
        }
        // The whole life, start-up and exit included: 1 % too.
        let life = precise.unwrap_or(cpu);
        assert!(
            life < Duration::from_millis(30),
            "{what}: {life:?} of CPU in all, waiting {wall:?} (limit 30 ms, 1 %)"
        );
    }
}

// ------------------------------------------------------------ plan waits

fn wait_after(path: &str, module: u32, timeout_ms: u32) -> DeviceWaitSpec {
    DeviceWaitSpec {
        path: path.into(),
        module: Some(module),
        timeout_ms,
    }
}

fn wait_final(path: &str, timeout_ms: u32) -> DeviceWaitSpec {
    DeviceWaitSpec {
        path: path.into(),
        module: None,
        timeout_ms,
    }
}

/// N in a "parmod: wait ...: PATH not there after N ms ..." line.
fn ms_waited(line: &str) -> u64 {
    line.split(" not there after ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no ms in {line:?}"))
}

fn with_waits(mut pb: PlanBuilder, waits: Vec<DeviceWaitSpec>) -> PlanBuilder {
    pb.waits = waits;
    pb
}

#[test]
fn plan_wait_satisfied_releases_dependents_after_it() {
    let pb = with_waits(
        plan_of(vec![
            module("base", 2000, &[]),
            module("hard_dep", 500, &[h(0)]),
            module("soft_dep", 500, &[s(0)]),
            module("indep", 500, &[]),
        ]),
        vec![
            wait_after("/dev/null", 0, 5000),
            wait_after("/sys/kernel", 0, 5000),
        ],
    );
    let run = simulate("pw-ok", &pb, &["--jobs", "2"]);
    let r = Check::new(&pb, &run, 2)
        .waits(&[("/dev/null", Satisfied), ("/sys/kernel", Satisfied)])
        .check();
    r.run.out.assert_exit(0);
    for name in ["base", "hard_dep", "soft_dep", "indep"] {
        assert_eq!(
            r.module(name).result,
            result::LOADED,
            "{name}\n{}",
            r.describe()
        );
    }
    let mut last_wait_end = 0;
    for path in ["/dev/null", "/sys/kernel"] {
        let w = r.wait(path);
        assert_eq!(w.result, result::SATISFIED, "{path}\n{}", r.describe());
        assert_eq!(w.cause, 0, "{path}: after module base\n{}", r.describe());
        assert!(
            w.start_ns >= r.module("base").end_ns,
            "{path}: started before base loaded\n{}",
            r.describe()
        );
        last_wait_end = last_wait_end.max(w.end_ns);
    }
    for name in ["hard_dep", "soft_dep"] {
        assert!(
            r.module(name).start_ns >= last_wait_end,
            "{name} started at {} before base's waits ended at {last_wait_end}\n{}",
            r.module(name).start_ns,
            r.describe()
        );
    }
    assert!(
        !r.run.out.stderr.contains("wait"),
        "nothing failed\n{}",
        r.describe()
    );
    let sum = r.summary();
    assert_eq!(sum.get("loaded"), Some(&4), "{}", r.describe());
    assert_eq!(
        sum.get("waits"),
        None,
        "no 'waits failed' in the summary\n{}",
        r.describe()
    );
}

#[test]
fn plan_wait_timed_out_skips_hard_dependents_only() {
    let missing = format!("/dev/{}", unique("XYZ"));
    let pb = with_waits(
        plan_of(vec![
            module("has_wait", 1000, &[]),
            module("hard_a", 500, &[h(0)]),
            module("hard_b", 500, &[h(0), s(1)]),
            module("hard_via_a", 500, &[h(1)]),
            module("soft_dep", 500, &[s(0)]),
            module("indep", 500, &[]),
        ]),
        vec![wait_after(&missing, 0, 300)],
    );
    let t0 = Instant::now();
    let run = simulate("pw-timeout", &pb, &["--jobs", "2"]);
    let wall = t0.elapsed();
    let r = Check::new(&pb, &run, 2)
        .waits(&[(&missing, TimedOut)])
        .check();
    r.run.out.assert_exit(1);
    let w = r.wait(&missing);
    assert_eq!(w.result, result::TIMED_OUT, "{}", r.describe());
    let waited = w.end_ns - w.start_ns;
    assert!(
        (300_000_000..5_000_000_000).contains(&waited),
        "the 300 ms wait lasted {waited} ns\n{}",
        r.describe()
    );
    assert!(wall < Duration::from_secs(10), "run took {wall:?}");
    // The module itself loaded; its hard dependents (also through another
    // skipped one) are skipped with the cause = that module.
    assert_eq!(
        r.module("has_wait").result,
        result::LOADED,
        "{}",
        r.describe()
    );
    for name in ["hard_a", "hard_b", "hard_via_a"] {
        let m = r.module(name);
        assert_eq!(m.result, result::SKIPPED, "{name}\n{}", r.describe());
        assert_eq!(
            m.cause,
            0,
            "{name}: skip cause is has_wait\n{}",
            r.describe()
        );
        assert_eq!(
            (m.start_ns, m.end_ns),
            (0, 0),
            "{name} never started\n{}",
            r.describe()
        );
        r.line_with(&format!(
            "parmod: skipped: {name}: a wait after has_wait timed out"
        ));
    }
    for name in ["soft_dep", "indep"] {
        assert_eq!(
            r.module(name).result,
            result::LOADED,
            "{name}\n{}",
            r.describe()
        );
    }
    assert!(
        r.module("soft_dep").start_ns >= w.end_ns,
        "the soft dependent is held back until the wait is decided\n{}",
        r.describe()
    );
    let line = r.line_with(&format!(
        "parmod: wait timed out: {missing} not there after "
    ));
    let ms = ms_waited(line);
    assert!((300..5000).contains(&ms), "{line}");
    assert!(
        line.ends_with(" ms (after has_wait; held back: hard_a, hard_b)"),
        "names the module and its direct hard dependents: {line:?}\n{}",
        r.describe()
    );
    assert_eq!(
        r.run.out.lines("wait timed out").len(),
        1,
        "{}",
        r.describe()
    );
    let sum = r.summary();
    let g = |k: &str| sum.get(k).copied().unwrap_or(0);
    assert_eq!(
        (g("loaded"), g("failed"), g("skipped"), g("waits")),
        (3, 0, 3, 1),
        "summary\n{}",
        r.describe()
    );
    assert!(
        r.run.out.stderr.contains(", 1 waits failed in "),
        "{}",
        r.describe()
    );
}

#[test]
fn plan_final_wait_timed_out_after_all_modules() {
    let missing = format!("/sys/{}", unique("final"));
    let pb = with_waits(
        plan_of(vec![
            module("a", 1000, &[]),
            module("b", 20_000, &[h(0)]),
            module("c", 3000, &[]),
        ]),
        vec![wait_final(&missing, 300), wait_final("/dev/null", 300)],
    );
    let run = simulate("pw-final", &pb, &["--jobs", "2"]);
    let r = Check::new(&pb, &run, 2)
        .waits(&[(&missing, TimedOut), ("/dev/null", Satisfied)])
        .check();
    r.run.out.assert_exit(1);
    let last_end = r.mods.iter().map(|m| m.end_ns).max().unwrap();
    for m in &r.mods {
        assert_eq!(m.result, result::LOADED, "{}", r.describe());
    }
    let w = r.wait(&missing);
    assert_eq!(w.result, result::TIMED_OUT, "{}", r.describe());
    assert_eq!(w.cause, NO_CAUSE, "{}", r.describe());
    assert!(
        w.start_ns >= last_end,
        "final wait started before the last module ended\n{}",
        r.describe()
    );
    assert!(w.end_ns - w.start_ns >= 300_000_000, "{}", r.describe());
    let ok = r.wait("/dev/null");
    assert_eq!(ok.result, result::SATISFIED, "{}", r.describe());
    assert!(ok.start_ns >= last_end, "{}", r.describe());
    let line = r.line_with(&format!(
        "parmod: wait timed out: {missing} not there after "
    ));
    assert!(
        line.ends_with(" ms (needed before success)"),
        "{line:?}\n{}",
        r.describe()
    );
    assert!(
        !r.run.out.stderr.contains("/dev/null"),
        "a satisfied wait is not reported\n{}",
        r.describe()
    );
    let sum = r.summary();
    assert_eq!(
        sum.get("waits"),
        Some(&1),
        "summary: 1 waits failed\n{}",
        r.describe()
    );
    assert_eq!(sum.get("loaded"), Some(&3), "{}", r.describe());
}

#[test]
fn plan_final_waits_satisfied_exit_zero() {
    let pb = with_waits(
        plan_of(vec![module("a", 500, &[]), module("b", 500, &[h(0)])]),
        vec![
            wait_final("/sys/kernel", 2000),
            wait_final("/dev/nul*", 2000),
            wait_final("/dev/null", 0),
        ],
    );
    let run = simulate("pw-final-ok", &pb, &["--jobs", "2"]);
    let r = Check::new(&pb, &run, 2)
        .waits(&[
            ("/sys/kernel", Satisfied),
            ("/dev/nul*", Satisfied),
            ("/dev/null", Satisfied),
        ])
        .check();
    r.run.out.assert_exit(0);
    let last_end = r.mods.iter().map(|m| m.end_ns).max().unwrap();
    for path in ["/sys/kernel", "/dev/nul*", "/dev/null"] {
        let w = r.wait(path);
        assert_eq!(w.result, result::SATISFIED, "{path}\n{}", r.describe());
        assert!(w.start_ns >= last_end, "{path}\n{}", r.describe());
    }
    assert!(
        !r.run.out.stderr.contains("waits failed"),
        "{}",
        r.describe()
    );
}

#[test]
fn plan_glob_waits() {
    // Per-module and final waits with globs in the last and a middle component.
    let missing = format!("/dev/{}*", unique("glob"));
    let pb = with_waits(
        plan_of(vec![module("a", 500, &[]), module("b", 500, &[h(0)])]),
        vec![
            wait_after("/dev/nul*", 0, 2000),
            wait_after("/sys/*/kernel", 0, 2000),
            wait_final("/sys/kernel/*", 2000),
            wait_final(&missing, 200),
        ],
    );
    let run = simulate("pw-glob", &pb, &["--jobs", "2"]);
    let r = Check::new(&pb, &run, 2)
        .waits(&[
            ("/dev/nul*", Satisfied),
            ("/sys/*/kernel", Satisfied),
            ("/sys/kernel/*", Satisfied),
            (&missing, TimedOut),
        ])
        .check();
    r.run.out.assert_exit(1);
    for path in ["/dev/nul*", "/sys/*/kernel", "/sys/kernel/*"] {
        assert_eq!(
            r.wait(path).result,
            result::SATISFIED,
            "{path}\n{}",
            r.describe()
        );
    }
    assert_eq!(
        r.wait(&missing).result,
        result::TIMED_OUT,
        "{}",
        r.describe()
    );
    assert_eq!(r.module("b").result, result::LOADED, "{}", r.describe());
    assert_eq!(r.summary().get("waits"), Some(&1), "{}", r.describe());
}

fn deadline_plan(missing: &str) -> PlanBuilder {
    with_waits(
        plan_of(vec![
            module("has_wait", 1000, &[]),
            module("hard_dep", 500, &[h(0)]),
            module("soft_dep", 500, &[s(0)]),
            module("indep", 500, &[]),
        ]),
        vec![wait_after(missing, 0, 0)],
    )
}

#[test]
fn plan_wait_timeout_zero_lasts_until_the_deadline_and_blocks_all_dependents() {
    // A wait without a timeout of its own lasts until the deadline: it is
    // reported unfinished, and its module's dependents, hard and soft, are
    // blocked (never started), not skipped.
    let missing = format!("/dev/{}", unique("deadline"));
    let pb = deadline_plan(&missing);
    let t0 = Instant::now();
    let run = simulate("pw-deadline", &pb, &["--jobs", "2", "--deadline", "800"]);
    let wall = t0.elapsed();
    let mut c = Check::new(&pb, &run, 2).waits(&[(&missing, Unfinished)]);
    c.blocked = [1, 2].into();
    let r = c.check();
    r.run.out.assert_exit(1);
    assert!(
        wall >= Duration::from_millis(750),
        "a wait with timeout 0 lasts until the deadline: {wall:?}\n{}",
        r.describe()
    );
    assert!(wall < Duration::from_secs(10), "{wall:?}\n{}", r.describe());
    let (hdr, _) = r.run.out.trace();
    let deadline_ns = hdr.t0_ns + 800_000_000;
    let w = r.wait(&missing);
    assert_eq!(
        (w.result, w.end_ns),
        (result::BLOCKED, 0),
        "still waiting at the deadline: blocked, no end\n{}",
        r.describe()
    );
    assert!(
        w.start_ns > 0 && w.start_ns < deadline_ns,
        "the wait started before the deadline\n{}",
        r.describe()
    );
    for name in ["has_wait", "indep"] {
        assert_eq!(
            r.module(name).result,
            result::LOADED,
            "{name}\n{}",
            r.describe()
        );
    }
    r.line_with("parmod: deadline of 800 ms reached");
    for name in ["hard_dep", "soft_dep"] {
        let m = r.module(name);
        assert_eq!(
            m.result,
            result::BLOCKED,
            "{name}: held back at the deadline\n{}",
            r.describe()
        );
        assert_eq!(
            (m.start_ns, m.end_ns),
            (0, 0),
            "{name} never started\n{}",
            r.describe()
        );
        r.line_with(&format!("parmod: blocked: {name}: "));
    }
    let line = r.line_with(&format!(
        "parmod: wait unfinished: {missing} not there after "
    ));
    let ms = ms_waited(line);
    let least = (deadline_ns - w.start_ns) / 1_000_000;
    assert!(
        (least..10_000).contains(&ms),
        "waited from {} ms to the 800 ms deadline: {line:?}\n{}",
        (w.start_ns - hdr.t0_ns) / 1_000_000,
        r.describe()
    );
    assert!(
        line.ends_with(" ms at the deadline (after has_wait; held back: hard_dep)"),
        "names the module and its direct hard dependents: {line:?}\n{}",
        r.describe()
    );
    assert!(
        r.run.out.lines("wait timed out").is_empty(),
        "a wait without a timeout does not time out\n{}",
        r.describe()
    );
    assert!(
        r.run.out.lines("skipped").is_empty(),
        "nothing is skipped\n{}",
        r.describe()
    );
    assert!(
        r.run.out.lines("stuck").is_empty(),
        "nothing started after the deadline\n{}",
        r.describe()
    );
    let sum = r.summary();
    let g = |k: &str| sum.get(k).copied().unwrap_or(0);
    assert_eq!(
        (
            g("loaded"),
            g("blocked"),
            g("skipped"),
            g("stuck"),
            g("waits")
        ),
        (2, 2, 0, 0, 1),
        "summary\n{}",
        r.describe()
    );
}

#[test]
fn plan_wait_of_a_failed_module_never_starts() {
    let pb = with_waits(
        plan_of(vec![
            module("broken", 500, &[]),
            module("after", 500, &[h(0)]),
            module("ok", 500, &[]),
        ]),
        vec![wait_after("/dev/null", 0, 2000)],
    );
    let run = simulate("pw-failed", &pb, &["--jobs", "2", "--fail", "broken"]);
    let r = Check::new(&pb, &run, 2)
        .failing(&[0].into())
        .waits(&[("/dev/null", NotStarted)])
        .check();
    r.run.out.assert_exit(1);
    assert_eq!(
        r.module("broken").result,
        result::FAILED,
        "{}",
        r.describe()
    );
    assert_eq!(
        r.module("after").result,
        result::SKIPPED,
        "{}",
        r.describe()
    );
    r.line_with("parmod: skipped: after: dependency broken failed");
    let w = r.wait("/dev/null");
    assert_eq!(
        w.result,
        result::BLOCKED,
        "a wait whose module failed never starts\n{}",
        r.describe()
    );
    assert_eq!((w.start_ns, w.end_ns), (0, 0), "{}", r.describe());
    assert!(
        !r.run.out.stderr.contains("parmod: wait "),
        "{}",
        r.describe()
    );
    assert_eq!(r.summary().get("waits"), None, "{}", r.describe());
}

#[test]
fn plan_wait_appearing_during_the_run() {
    // /sys cannot be written at all, /dev only by root: the appearing case
    // needs write access to /dev.
    let name = unique("appear");
    let dev_path = format!("/dev/{name}");
    let probe = format!("/dev/{name}.probe");
    if let Err(e) = fs::write(&probe, b"") {
        skip_dev("plan_wait_appearing_during_the_run", &probe, &e);
        return;
    }
    let _ = fs::remove_file(&probe);
    let pb = with_waits(
        plan_of(vec![
            module("has_wait", 500, &[]),
            module("dep", 500, &[h(0)]),
        ]),
        vec![wait_after(&dev_path, 0, 10_000)],
    );
    let created = dev_path.clone();
    let t = later(400, move || touch(Path::new(&created)));
    let run = simulate("pw-appear", &pb, &["--jobs", "2"]);
    t.join().unwrap();
    let _ = fs::remove_file(&dev_path);
    let r = Check::new(&pb, &run, 2)
        .waits(&[(&dev_path, Satisfied)])
        .check();
    r.run.out.assert_exit(0);
    let w = r.wait(&dev_path);
    assert_eq!(w.result, result::SATISFIED, "{}", r.describe());
    let waited = w.end_ns - w.start_ns;
    assert!(
        (200_000_000..5_000_000_000).contains(&waited),
        "the wait lasted {waited} ns for a path created ~400 ms in\n{}",
        r.describe()
    );
    assert!(r.module("dep").start_ns >= w.end_ns, "{}", r.describe());
    assert_eq!(r.module("dep").result, result::LOADED, "{}", r.describe());
}

/// Without write access to /dev: skip `test` visibly, or fail under
/// PARMOD_REQUIRE_DEV_WRITABLE=1.
fn skip_dev(test: &str, tried: &str, e: &std::io::Error) {
    skip(
        "PARMOD_REQUIRE_DEV_WRITABLE",
        test,
        &format!("cannot write to /dev ({tried}: {e})"),
        "run the tests as root",
    );
}

/// A directory under /dev for `test`, removed on drop; None (the test
/// skipped, see [`skip_dev`]) without write access to /dev.
struct DevDir(PathBuf);

impl DevDir {
    fn new(test: &str, tag: &str) -> Option<DevDir> {
        let d = PathBuf::from(format!("/dev/{}", unique(tag)));
        match fs::create_dir(&d) {
            Ok(()) => Some(DevDir(d)),
            Err(e) => {
                skip_dev(test, &d.display().to_string(), &e);
                None
            }
        }
    }
}

impl Drop for DevDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn plan_wait_nested_dev_directories_appear_later() {
    let Some(dd) = DevDir::new("plan_wait_nested_dev_directories_appear_later", "nested") else {
        return;
    };
    let node = format!("{}/snd/by-path/controlC0", dd.0.display());
    let pb = with_waits(
        plan_of(vec![
            module("has_wait", 500, &[]),
            module("dep", 500, &[h(0)]),
        ]),
        vec![wait_after(&node, 0, 10_000)],
    );
    let base = dd.0.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        mkdir(&base.join("snd"));
        thread::sleep(Duration::from_millis(150));
        mkdir(&base.join("snd/by-path"));
        thread::sleep(Duration::from_millis(150));
        touch(&base.join("snd/by-path/controlC0"));
    });
    let run = simulate("pw-nested", &pb, &["--jobs", "2"]);
    t.join().unwrap();
    let r = Check::new(&pb, &run, 2)
        .waits(&[(&node, Satisfied)])
        .check();
    r.run.out.assert_exit(0);
    let w = r.wait(&node);
    assert_eq!(w.result, result::SATISFIED, "{}", r.describe());
    let waited = w.end_ns - w.start_ns;
    assert!(
        (100_000_000..5_000_000_000).contains(&waited),
        "the wait lasted {waited} ns for a node created ~600 ms in (timeout 10 s)\n{}",
        r.describe()
    );
    assert!(r.module("dep").start_ns >= w.end_ns, "{}", r.describe());
}

#[test]
fn plan_wait_glob_in_middle_component_file_after_directory() {
    let Some(dd) = DevDir::new(
        "plan_wait_glob_in_middle_component_file_after_directory",
        "midglob",
    ) else {
        return;
    };
    let pattern = format!("{}/card*/status", dd.0.display());
    let pb = with_waits(
        plan_of(vec![
            module("has_wait", 500, &[]),
            module("dep", 500, &[h(0)]),
        ]),
        vec![wait_after(&pattern, 0, 10_000)],
    );
    let base = dd.0.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        mkdir(&base.join("card0"));
        thread::sleep(Duration::from_millis(300));
        touch(&base.join("card0/status"));
    });
    let run = simulate("pw-midglob", &pb, &["--jobs", "2"]);
    t.join().unwrap();
    let r = Check::new(&pb, &run, 2)
        .waits(&[(&pattern, Satisfied)])
        .check();
    r.run.out.assert_exit(0);
    let w = r.wait(&pattern);
    assert_eq!(w.result, result::SATISFIED, "{}", r.describe());
    let waited = w.end_ns - w.start_ns;
    assert!(
        waited < 5_000_000_000,
        "the wait lasted {} ms for card0/status created ~600 ms in (timeout 10 s)\n{}",
        waited / 1_000_000,
        r.describe()
    );
}
