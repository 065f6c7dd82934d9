//! The machine failing under the real `parmod` binary (in `--simulate`
//! mode, so nothing is loaded): few descriptors, no processes to spare,
//! little address space, the plan file truncated while parmod runs. Each
//! must give a message naming what failed, the right exit status, and no
//! crash or hang. The limits are set with the shell's `ulimit` before the
//! binary starts (bash's ulimit). The process-count case needs an unprivileged user
//! (RLIMIT_NPROC does not bind root): it runs as `nobody` through
//! `setpriv` when that exists, else it is skipped with a message (and fails
//! under PARMOD_REQUIRE_SETPRIV=1).
#![cfg(feature = "host")]

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// `bash -c "LIMIT && exec parmod ARGS"` in `scratch`.
fn limited(scratch: &Scratch, limit: &str, args: &[String]) -> Outcome {
    let mut script = format!("{limit} && exec {}", parmod_bin().display());
    for a in args {
        script.push_str(&format!(" '{a}'"));
    }
    run_raw(scratch, Path::new("/bin/bash"), &["-c".into(), script], Duration::from_secs(60), None)
}

fn chain(n: u32, weight_us: u32) -> Vec<parmod::plan::ModuleSpec> {
    (0..n).map(|i| module(&format!("m{i}"), weight_us, &if i == 0 { vec![] } else { vec![h(i - 1)] })).collect()
}

#[test]
fn too_few_descriptors_for_the_plan_names_emfile_without_the_compile_hint() {
    let s = Scratch::new("nofile3");
    let (plan, _) = write_plan(&s, &plan_of(chain(3, 100)));
    let out = limited(&s, "ulimit -n 3", &["--simulate".into(), plan.display().to_string()]);
    out.assert_exit(2);
    assert!(
        out.stderr.contains("cannot open plan") && out.stderr.contains("EMFILE (too many open files: RLIMIT_NOFILE?) (errno 24)"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("parmod-plan compile"), "the hint is for a missing plan only\n{}", out.describe());
}

#[test]
fn without_a_descriptor_for_inotify_device_waits_fall_back_to_looking_again() {
    let s = Scratch::new("nofile3wait");
    // A directory of the test's own stands for /dev (any path outside /sys
    // is watched with inotify); `parmod wait` needs no other descriptor,
    // so with 0-2 taken there is none left for inotify.
    let dir = s.path("devdir");
    fs::create_dir(&dir).expect("mkdir");
    let node = dir.join("pm_node");
    let writer = std::thread::spawn({
        let node = node.clone();
        move || {
            std::thread::sleep(Duration::from_millis(400));
            fs::write(&node, b"").expect("create the awaited file");
        }
    });
    let t0 = Instant::now();
    let out = limited(&s, "ulimit -n 3", &["wait".into(), "--timeout".into(), "5000".into(), node.display().to_string()]);
    writer.join().expect("writer");
    out.assert_exit(0);
    assert!(out.stderr.contains("cannot open inotify: EMFILE"), "{}", out.describe());
    assert!(t0.elapsed() < Duration::from_secs(3), "found on the back-off, long before the timeout\n{}", out.describe());
}

#[test]
fn the_plan_file_truncated_while_parmod_runs_cannot_reach_it() {
    // parmod keeps a copy of the plan: truncating the file under a run
    // (which would make a mapping's pages vanish: SIGBUS) changes nothing.
    let s = Scratch::new("truncate");
    let (plan, bytes) = write_plan(&s, &plan_of(chain(20, 50_000)));
    let cutter = std::thread::spawn({
        let plan = plan.clone();
        move || {
            std::thread::sleep(Duration::from_millis(300));
            fs::write(&plan, b"").expect("truncate the plan");
        }
    });
    let trace = s.path("trace.bin");
    let args = ["--simulate".to_string(), "--trace".into(), trace.display().to_string(), plan.display().to_string()];
    let out = run_raw(&s, &parmod_bin(), &args, Duration::from_secs(30), Some(&trace));
    cutter.join().expect("cutter");
    assert_eq!(fs::metadata(&plan).map(|m| m.len()).ok(), Some(0), "the file was truncated during the run");
    out.assert_exit(0);
    assert!(out.wall >= Duration::from_millis(900), "the run (20 x 50 ms) outlasted the truncation\n{}", out.describe());
    let (_, recs) = out.trace();
    assert_eq!(recs.len(), 20);
    assert!(!bytes.is_empty());
}

#[test]
fn too_little_address_space_for_the_state_says_so() {
    let s = Scratch::new("as");
    let (plan, _) = write_plan(&s, &plan_of(chain(60_000, 1)));
    // Enough for the binary and the plan's copy, not for the run's state.
    let out = limited(&s, "ulimit -v 9000", &["--simulate".into(), plan.display().to_string()]);
    out.assert_exit(2);
    assert!(
        out.stderr.contains("ENOMEM (out of memory)") && out.stderr.contains("nothing loaded"),
        "{}",
        out.describe()
    );
}

#[test]
fn with_no_process_to_spare_the_main_task_loads_one_at_a_time() {
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().find(|p| Path::new(p).exists());
    let Some(setpriv) = setpriv else {
        skip("PARMOD_REQUIRE_SETPRIV", "the RLIMIT_NPROC case", "no setpriv to run parmod as an unprivileged user (RLIMIT_NPROC does not bind root)", "install util-linux");
        return;
    };
    let s = Scratch::new("nproc");
    let (plan, _) = write_plan(&s, &plan_of(chain(4, 20_000)));
    // Readable by nobody.
    let shared = std::env::temp_dir().join(format!("parmod-nproc-{}.plan", std::process::id()));
    fs::copy(&plan, &shared).expect("copy plan");
    let bin = std::env::temp_dir().join(format!("parmod-nproc-{}", std::process::id()));
    fs::copy(parmod_bin(), &bin).expect("copy binary");
    let script = format!(
        "ulimit -u 1 && exec {setpriv} --reuid=65534 --regid=65534 --clear-groups {} --simulate -j 4 {}",
        bin.display(),
        shared.display()
    );
    let out = run_raw(&s, Path::new("/bin/bash"), &["-c".into(), script], Duration::from_secs(30), None);
    let _ = fs::remove_file(&shared);
    let _ = fs::remove_file(&bin);
    out.assert_exit(0);
    assert!(out.stderr.contains("cannot start worker 0: EAGAIN"), "{}", out.describe());
    assert!(out.stderr.contains("no worker could start: loading one module at a time"), "{}", out.describe());
    assert!(out.stderr.contains("4 loaded") && out.stderr.contains("; one at a time: no worker could start"), "{}", out.describe());
}
