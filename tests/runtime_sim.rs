//! Integration tests of the real static `parmod` runtime in `--simulate` mode.
//!
//! Each test writes a plan with `PlanBuilder`, runs the binary (from
//! `$PARMOD_BIN`, else `target/x86_64-unknown-linux-musl/release/parmod`;
//! build it with `make`), and checks the trace it writes. The checks are
//! structural (order, exclusivity, counts), never speed claims; the only
//! wall-clock assertions are the generous deadline bounds.
#![cfg(feature = "host")]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use common::*;
use parmod::plan::trace::{self, result, NO_WORKER};
use parmod::plan::PlanBuilder;

fn set(v: &[usize]) -> BTreeSet<usize> {
    v.iter().copied().collect()
}

/// The edge to the previous module (none for the first).
fn prev(i: u32, hard: bool) -> Vec<(u32, bool)> {
    if i == 0 {
        vec![]
    } else {
        vec![(i - 1, hard)]
    }
}

/// A hard edge to module 0 (none for module 0 itself).
fn first(i: u32) -> Vec<(u32, bool)> {
    if i == 0 {
        vec![]
    } else {
        vec![(0, true)]
    }
}

fn names(pb: &PlanBuilder, idx: &BTreeSet<usize>) -> String {
    idx.iter()
        .map(|&i| pb.modules[i].name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

// ------------------------------------------------------------ graph shapes

#[test]
fn chain_runs_strictly_in_order() {
    let n = 40u32;
    let mods = (0..n)
        .map(|i| module(&format!("chain{i}"), 500, &prev(i, true)))
        .collect::<Vec<_>>();
    let pb = plan_of(mods);
    let run = simulate("chain", &pb, &["--jobs", "4"]);
    let recs = Check::new(&pb, &run, 4).run();
    for w in recs.windows(2) {
        assert!(
            w[1].start_ns >= w[0].end_ns,
            "chain order broken: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    // Each module sleeps its weight: the chain cannot finish faster than the sum.
    let span = recs.last().unwrap().end_ns - recs[0].start_ns;
    assert!(
        span >= n as u64 * 500_000,
        "chain of {n} x 500 us took only {span} ns: the loads did not sleep their weight"
    );
}

#[test]
fn soft_chain_orders_too() {
    let mods = (0..30u32)
        .map(|i| module(&format!("soft{i}"), 300, &prev(i, false)))
        .collect::<Vec<_>>();
    let pb = plan_of(mods);
    let run = simulate("softchain", &pb, &["--jobs", "3"]);
    Check::new(&pb, &run, 3).run();
}

#[test]
fn diamond() {
    let pb = plan_of(vec![
        // Long enough that a worker task still starting up (a vCPU can
        // take milliseconds to wake) has joined before top ends.
        module("top", 20_000, &[]),
        module("left", 60_000, &[h(0)]),
        module("right", 30_000, &[h(0)]),
        module("bottom", 1000, &[h(1), h(2)]),
    ]);
    let run = simulate("diamond", &pb, &["--jobs", "2"]);
    let r = Check::new(&pb, &run, 2).run();
    // left and right are independent once top is done: with two workers they overlap.
    assert!(
        r[1].start_ns < r[2].end_ns && r[2].start_ns < r[1].end_ns,
        "left and right did not run in parallel with 2 jobs: {:?} {:?}\n{}",
        r[1],
        r[2],
        run.out.describe()
    );
}

#[test]
fn wide_fan_out_fan_in() {
    // 200 leaves of 1-3 ms: every worker finds work even if it started late.
    let width = 200u32;
    let mut mods = vec![module("root", 5000, &[])];
    for i in 0..width {
        mods.push(module(
            &format!("leaf{i}"),
            1000 + (i * 37) % 2000,
            &[(0, i % 3 != 0)],
        ));
    }
    let all: Vec<(u32, bool)> = (1..=width).map(|i| (i, i % 2 == 0)).collect();
    mods.push(module("sink", 1000, &all));
    let pb = plan_of(mods);
    for jobs in [1usize, 3, 8] {
        let j = jobs.to_string();
        let run = simulate("fan", &pb, &["--jobs", &j]);
        let recs = Check::new(&pb, &run, jobs).run();
        let workers: BTreeSet<u16> = recs.iter().map(|r| r.worker).collect();
        assert_eq!(
            workers.len(),
            jobs,
            "with {jobs} jobs and {width} ready leaves every worker works\n{}",
            run.out.describe()
        );
    }
}

#[test]
fn thousands_of_modules() {
    let shape = DagShape {
        modules: 1500,
        max_deps: 4,
        window: 200,
        weight_lo: 0,
        weight_hi: 200,
        hard_pct: 70,
        builtin_pct: 5,
    };
    let pb = random_dag(1500, shape);
    let run = simulate("big", &pb, &["--jobs", "4"]);
    Check::new(&pb, &run, 4).run();
}

#[test]
fn random_dags() {
    let cases: [(u64, u32, usize); 6] = [
        (1, 60, 1),
        (2, 120, 2),
        (3, 200, 3),
        (4, 250, 4),
        (5, 300, 8),
        (6, 400, 5),
    ];
    for (seed, n, jobs) in cases {
        let shape = DagShape {
            modules: n,
            max_deps: 3,
            window: 30,
            weight_lo: 0,
            weight_hi: 2000,
            hard_pct: 60,
            builtin_pct: 8,
        };
        let pb = random_dag(seed, shape);
        let j = jobs.to_string();
        let run = simulate(&format!("dag{seed}"), &pb, &["--jobs", &j]);
        Check::new(&pb, &run, jobs).run();
    }
}

#[test]
fn builtins_complete_and_satisfy_dependents() {
    let pb = plan_of(vec![
        builtin("bi_a", &[]),
        builtin("bi_b", &[]),
        module("uses_a", 1000, &[h(0)]),
        module("uses_both", 500, &[h(0), h(1)]),
        module("slow", 3000, &[]),
        // A built-in module that is ordered after a loadable one (softdep).
        builtin("bi_after_slow", &[s(4)]),
        module("after_bi", 200, &[h(5), h(2)]),
    ]);
    let run = simulate("builtin", &pb, &["--jobs", "2"]);
    let r = Check::new(&pb, &run, 2).run();
    for i in [0usize, 1, 5] {
        assert_eq!(r[i].result, result::BUILTIN, "{:?}", r[i]);
    }
}

#[test]
fn only_builtins() {
    let pb = plan_of((0..20).map(|i| builtin(&format!("b{i}"), &[])).collect());
    let run = simulate("onlybuiltin", &pb, &["--jobs", "2"]);
    Check::new(&pb, &run, 2).run();
}

#[test]
fn empty_plan_succeeds() {
    let pb = plan_of(vec![]);
    let run = simulate("empty", &pb, &["--jobs", "2"]);
    Check::new(&pb, &run, 2).run();
}

// ------------------------------------------------------------ concurrency

/// Like u-root's TestParallelLoad: independent loads really do overlap.
#[test]
fn independent_loads_overlap() {
    let pb = plan_of(
        (0..4)
            .map(|i| module(&format!("par{i}"), 100_000, &[]))
            .collect(),
    );
    let run = simulate("overlap", &pb, &["--jobs", "4"]);
    let r = Check::new(&pb, &run, 4).run();
    let latest_start = r.iter().map(|x| x.start_ns).max().unwrap();
    let earliest_end = r.iter().map(|x| x.end_ns).min().unwrap();
    assert!(
        latest_start < earliest_end,
        "4 independent 100 ms loads with --jobs 4 were not all running at one instant \
         (latest start {latest_start} >= earliest end {earliest_end}): {r:?}\n{}",
        run.out.describe()
    );
    let workers: BTreeSet<u16> = r.iter().map(|x| x.worker).collect();
    assert_eq!(workers.len(), 4, "4 loads on 4 distinct workers: {r:?}");
}

#[test]
fn one_job_never_overlaps() {
    let pb = plan_of(
        (0..6)
            .map(|i| module(&format!("seq{i}"), 5_000, &[]))
            .collect(),
    );
    let run = simulate("onejob", &pb, &["--jobs", "1"]);
    let r = Check::new(&pb, &run, 1).run();
    let iv: Vec<(u64, u64)> = r.iter().map(|x| (x.start_ns, x.end_ns)).collect();
    assert_eq!(max_concurrency(&iv), 1);
}

#[test]
fn jobs_default_from_plan_then_affinity() {
    let mods: Vec<_> = (0..12)
        .map(|i| module(&format!("j{i}"), 1000, &[]))
        .collect();
    let mut pb = plan_of(mods);
    pb.jobs = 3;
    let run = simulate("jobsplan", &pb, &[]);
    Check::new(&pb, &run, 3).run();
    // --jobs overrides the plan.
    let run = simulate("jobsflag", &pb, &["--jobs", "2"]);
    Check::new(&pb, &run, 2).run();
    // Neither: eight per CPU in the affinity mask (at most 64).
    pb.jobs = 0;
    let run = simulate("jobsaff", &pb, &[]);
    Check::new(&pb, &run, (8 * affinity_cpus()).min(64)).run();
}

// ------------------------------------------------------------ failures

#[test]
fn failure_skips_exactly_the_hard_dependents() {
    // 0 fails; 1 hard on 0 (skipped); 2 soft on 0 (loads); 3 hard on 1
    // (skipped, cause 0); 4 hard on 2 (loads); 5 soft on 1 (loads);
    // 6 independent; 7 hard on 6 and 3 (skipped, cause 0).
    let pb = plan_of(vec![
        module("bad", 1000, &[]),
        module("needs_bad", 500, &[h(0)]),
        module("prefers_bad", 500, &[s(0)]),
        module("needs_needs_bad", 500, &[h(1)]),
        module("needs_prefers", 500, &[h(2)]),
        module("prefers_needs", 500, &[s(1)]),
        module("free", 500, &[]),
        module("mixed", 500, &[h(6), h(3)]),
    ]);
    let fail = set(&[0]);
    let run = simulate("fail1", &pb, &["--jobs", "2", "--fail", "bad"]);
    let r = Check::new(&pb, &run, 2).failing(&fail).run();
    for i in [1usize, 3, 7] {
        assert_eq!(r[i].cause, 0, "skip cause is the root failure: {:?}", r[i]);
    }
    let want = expected(&pb, &fail);
    assert_eq!(
        want.iter()
            .filter(|w| matches!(w, Want::Skipped(_)))
            .count(),
        3
    );
}

#[test]
fn soft_dependency_failure_blocks_nothing() {
    let pb = plan_of(vec![
        module("flaky", 2000, &[]),
        module("after_flaky", 500, &[s(0)]),
        module("after_after", 500, &[h(1)]),
        module("also_after", 500, &[s(0), h(1)]),
    ]);
    let run = simulate("softfail", &pb, &["--jobs", "2", "--fail", "flaky"]);
    let r = Check::new(&pb, &run, 2).failing(&set(&[0])).run();
    assert_eq!(r[0].result, result::FAILED);
    for x in &r[1..] {
        assert_eq!(x.result, result::LOADED, "{x:?}");
        assert!(
            x.start_ns >= r[0].end_ns,
            "soft dependent started before the failure ended: {x:?}"
        );
    }
}

#[test]
fn fail_list_forms() {
    let pb = plan_of(vec![
        module("a", 200, &[]),
        module("b", 200, &[]),
        module("c", 200, &[h(0)]),
        module("d", 200, &[h(1)]),
        module("e", 200, &[s(0), s(1)]),
    ]);
    let fail = set(&[0, 1]);
    // Comma list.
    let run = simulate("failcomma", &pb, &["--jobs", "2", "--fail", "a,b"]);
    Check::new(&pb, &run, 2).failing(&fail).run();
    // Repeated option.
    let run = simulate(
        "failrepeat",
        &pb,
        &["--jobs", "2", "--fail", "a", "--fail", "b"],
    );
    Check::new(&pb, &run, 2).failing(&fail).run();
    // --quiet: only failures and the summary.
    let run = simulate(
        "failquiet",
        &pb,
        &["--jobs", "2", "--quiet", "--fail", "a,b"],
    );
    let mut c = Check::new(&pb, &run, 2).failing(&fail);
    c.quiet = true;
    c.run();
}

#[test]
fn random_dag_failures_skip_transitive_hard_dependents() {
    for seed in [11u64, 12, 13, 14, 15] {
        let shape = DagShape {
            modules: 150,
            max_deps: 3,
            window: 25,
            weight_lo: 0,
            weight_hi: 1500,
            hard_pct: 55,
            builtin_pct: 5,
        };
        let pb = random_dag(seed, shape);
        let mut rng = Lcg::new(seed * 7919);
        let mut fail = BTreeSet::new();
        while fail.len() < 4 {
            let i = rng.below(shape.modules) as usize;
            if pb.modules[i].path.is_some() {
                fail.insert(i);
            }
        }
        let want = expected(&pb, &fail);
        let skipped = want
            .iter()
            .filter(|w| matches!(w, Want::Skipped(_)))
            .count();
        let list = names(&pb, &fail);
        let run = simulate(
            &format!("dagfail{seed}"),
            &pb,
            &["--jobs", "3", "--fail", &list],
        );
        Check::new(&pb, &run, 3).failing(&fail).run();
        eprintln!("seed {seed}: failing {list}: {skipped} skipped");
    }
}

// ------------------------------------------------------------ stuck loads

/// The stuck scenario: a hung module with hard, soft and transitive
/// dependents, plenty of independent work, and a late module after some of it.
fn stuck_plan() -> (PlanBuilder, BTreeSet<usize>) {
    let mut mods = vec![
        // Heaviest first: it starts before the independent work.
        module("hangs", 50_000, &[]),
        module("needs_hangs", 1000, &[h(0)]),
        module("prefers_hangs", 1000, &[s(0)]),
        module("needs_needs_hangs", 1000, &[h(1)]),
    ];
    let first = mods.len() as u32;
    for i in 0..40 {
        mods.push(module(&format!("ind{i}"), 20_000, &[]));
    }
    mods.push(module(
        "late",
        1000,
        &[h(first), h(first + 5), s(first + 39)],
    ));
    (plan_of(mods), set(&[1, 2, 3]))
}

fn check_stuck(
    run: &SimRun,
    pb: &PlanBuilder,
    blocked: BTreeSet<usize>,
    jobs: usize,
    deadline_ms: u64,
) {
    let out = &run.out;
    let mut c = Check::new(pb, run, jobs);
    c.stuck = set(&[0]);
    c.blocked = blocked;
    let r = c.run();
    assert!(
        out.wall >= Duration::from_millis(deadline_ms),
        "parmod exited after {:?}, before its {deadline_ms} ms deadline\n{}",
        out.wall,
        out.describe()
    );
    assert!(
        out.wall < Duration::from_millis(deadline_ms + 1500),
        "parmod took {:?} to exit with a {deadline_ms} ms deadline\n{}",
        out.wall,
        out.describe()
    );
    let hung = &r[0];
    let replacements: Vec<_> = r
        .iter()
        .filter(|x| x.worker != NO_WORKER && x.worker as usize >= jobs)
        .collect();
    assert!(
        !replacements.is_empty(),
        "no replacement worker (id >= {jobs}) did any work after 'hangs' got stuck\n{}",
        out.describe()
    );
    for x in &replacements {
        assert_eq!(x.result, result::LOADED, "{x:?}");
        assert!(
            x.start_ns >= hung.start_ns + 200_000_000,
            "replacement worker started work {x:?} before the hung load ({hung:?}) reached its 200 ms timeout"
        );
    }
    assert!(
        !out.lines("stuck").is_empty(),
        "no stuck line\n{}",
        out.describe()
    );
}

#[test]
fn stuck_module_is_replaced_and_dependents_blocked() {
    let (pb, blocked) = stuck_plan();
    let run = simulate(
        "stuck",
        &pb,
        &[
            "--jobs",
            "2",
            "--module-timeout",
            "200",
            "--deadline",
            "1500",
            "--hang",
            "hangs",
        ],
    );
    check_stuck(&run, &pb, blocked, 2, 1500);
}

#[test]
fn stuck_with_plan_default_timeout_and_deadline() {
    let (mut pb, blocked) = stuck_plan();
    // Timeouts scale with the expected load time (20 x, the plan's timeout
    // as the floor): 'hangs' (50 ms) times out after 1000 ms. 60 more
    // independent modules keep the other worker busy past that.
    pb.module_timeout_ms = 200;
    pb.deadline_ms = 2500;
    pb.jobs = 2;
    for i in 40..100 {
        pb.modules.push(module(&format!("ind{i}"), 20_000, &[]));
    }
    let run = simulate("stuckplan", &pb, &["--hang", "hangs"]);
    check_stuck(&run, &pb, blocked, 2, 2500);
    assert!(
        run.out.stderr.contains("parmod: stuck: hangs: still loading after 1000 ms"),
        "the scaled timeout: 20 x 50 ms\n{}",
        run.out.describe()
    );
}

#[test]
fn slow_load_outliving_timeout_is_flagged_but_counts() {
    // 600 ms against a 150 ms timeout: reported stuck, then it ends, gets the
    // flag, and its dependent still loads after it.
    let mut mods = vec![
        module("slow", 600_000, &[]),
        module("after_slow", 1000, &[h(0)]),
    ];
    for i in 0..10 {
        mods.push(module(&format!("w{i}"), 10_000, &[]));
    }
    let pb = plan_of(mods);
    // The deadline only bounds the run should the dependent never be released.
    let args = [
        "--jobs",
        "2",
        "--module-timeout",
        "150",
        "--deadline",
        "5000",
    ];
    let run = simulate("slowflag", &pb, &args);
    let out = &run.out;
    let (_, r) = out.trace();
    assert_eq!(
        r[0].result,
        result::LOADED | result::STUCK_FLAG,
        "slow: {:?}\n{}",
        r[0],
        out.describe()
    );
    assert_eq!(
        r[1].result,
        result::LOADED,
        "after_slow: {:?}\n{}",
        r[1],
        out.describe()
    );
    assert!(r[1].start_ns >= r[0].end_ns);
    for x in &r[2..] {
        assert_eq!(
            x.result & !result::STUCK_FLAG,
            result::LOADED,
            "{x:?}\n{}",
            out.describe()
        );
    }
    assert!(
        out.lines("stuck")
            .iter()
            .any(|l| l.starts_with("parmod: stuck: slow: ")),
        "no 'parmod: stuck: slow: ...' line\n{}",
        out.describe()
    );
    // Everything loaded in the end: nothing is stuck at exit, status 0.
    let sum = summary(&out.stderr).expect("summary line");
    assert_eq!(sum.get("loaded"), Some(&12), "{}", out.describe());
    assert_eq!(sum.get("stuck"), Some(&0), "{}", out.describe());
    out.assert_exit(0);
}

// ------------------------------------------------------------ exit status 2

fn small_plan() -> PlanBuilder {
    plan_of(
        (0..10)
            .map(|i| module(&format!("p{i}"), 100, &first(i)))
            .collect(),
    )
}

fn expect_plan_error(tag: &str, plan_bytes: Option<&[u8]>) {
    let scratch = Scratch::new(tag);
    let plan_path = scratch.path("plan.bin");
    if let Some(b) = plan_bytes {
        fs::write(&plan_path, b).unwrap();
    }
    let trace_path = scratch.path("trace.bin");
    let args: Vec<String> = vec![
        "--simulate".into(),
        "--trace".into(),
        trace_path.display().to_string(),
        plan_path.display().to_string(),
    ];
    let out = run_raw(
        &scratch,
        &parmod_bin(),
        &args,
        Duration::from_secs(20),
        Some(&trace_path),
    );
    out.assert_exit(2);
    assert!(
        out.stderr.contains("parmod"),
        "no error message ({tag})\n{}",
        out.describe()
    );
    assert!(
        summary(&out.stderr).is_none(),
        "a load summary after a plan error ({tag})\n{}",
        out.describe()
    );
    if let Some(t) = &out.trace_bytes {
        // Allowed: an empty trace; never records of loads.
        if !t.is_empty() {
            let (_, recs) = trace::parse(t)
                .unwrap_or_else(|e| panic!("({tag}) bad trace: {e}\n{}", out.describe()));
            assert_eq!(
                recs.count(),
                0,
                "({tag}) trace has records after a plan error\n{}",
                out.describe()
            );
        }
    }
}

#[test]
fn corrupt_plans_exit_2_and_load_nothing() {
    let good = small_plan().build().unwrap();
    // Flip one byte at a few places: header, checksum, module records, edges, strings, last byte.
    for at in [
        9usize,
        21,
        128 + 5,
        128 + 80 * 3 + 16,
        128 + 80 * 10 + 2,
        good.len() - 2,
        good.len() - 1,
    ] {
        let mut b = good.clone();
        b[at] ^= 0x10;
        expect_plan_error(&format!("flip{at}"), Some(&b));
    }
    expect_plan_error("truncated", Some(&good[..good.len() / 2]));
    expect_plan_error("short", Some(&good[..40]));
    expect_plan_error("empty", Some(&[]));
    let mut long = good.clone();
    long.push(0);
    expect_plan_error("trailing", Some(&long));
    let mut magic = good.clone();
    magic[0] = b'X';
    expect_plan_error("magic", Some(&magic));
    expect_plan_error("missing", None);
}

#[test]
fn usage_errors_exit_2() {
    let scratch = Scratch::new("usage");
    let (plan, _) = write_plan(&scratch, &small_plan());
    let plan = plan.display().to_string();
    let bin = parmod_bin();
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["--simulate"],
        vec!["--bogus", &plan],
        vec!["--simulate", "--jobs", &plan],
        vec!["--simulate", "--jobs", "many", &plan],
        vec!["--simulate", "--jobs", "-3", &plan],
        vec!["--simulate", "--module-timeout", "soon", &plan],
        vec!["--simulate", "--deadline", "", &plan],
        vec!["--simulate", &plan, &plan],
        // --fail and --hang only make sense with --simulate.
        vec!["--fail", "p1", &plan],
        vec!["--hang", "p1", &plan],
        // A --fail/--hang name the plan does not hold.
        vec!["--simulate", "--fail", "nosuch", &plan],
        vec!["--simulate", "--hang", "nosuch", &plan],
    ];
    for args in cases {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run_raw(&scratch, &bin, &v, Duration::from_secs(20), None);
        assert!(!out.timed_out, "{}", out.describe());
        out.assert_exit(2);
        assert!(
            !out.stderr.is_empty(),
            "usage error without a message\n{}",
            out.describe()
        );
    }
}

#[test]
fn exit_status_0_and_1() {
    let pb = small_plan();
    let run = simulate("exit0", &pb, &["--jobs", "2"]);
    run.out.assert_exit(0);
    assert!(run.out.lines("failed").is_empty() && run.out.lines("skipped").is_empty());
    let run = simulate("exit1", &pb, &["--jobs", "2", "--fail", "p9"]);
    run.out.assert_exit(1);
    let run = simulate("exit1skip", &pb, &["--jobs", "2", "--fail", "p0"]);
    run.out.assert_exit(1);
    Check::new(&pb, &run, 2).failing(&set(&[0])).run();
}

// ------------------------------------------------------------ no heap

fn strace_counts(scratch: &Scratch, plan: &std::path::Path, extra: &[String]) -> Option<[u64; 3]> {
    let report = scratch.path(&format!(
        "strace.{}.txt",
        plan.file_name().unwrap().to_string_lossy()
    ));
    let mut args: Vec<String> = vec![
        "-f".into(),
        "-c".into(),
        "-e".into(),
        "trace=mmap,brk,munmap".into(),
        "-o".into(),
    ];
    args.push(report.display().to_string());
    args.push(parmod_bin().display().to_string());
    args.extend(
        ["--simulate", "--quiet", "--jobs", "4"]
            .iter()
            .map(|s| s.to_string()),
    );
    args.extend(extra.iter().cloned());
    args.push(plan.display().to_string());
    let out = run_raw(
        scratch,
        std::path::Path::new("/usr/bin/strace"),
        &args,
        Duration::from_secs(60),
        None,
    );
    let text = fs::read_to_string(&report).ok()?;
    assert_eq!(
        out.code,
        Some(0),
        "parmod under strace failed\n{}",
        out.describe()
    );
    let mut counts = [0u64; 3];
    for line in text.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() < 5 {
            continue;
        }
        let slot = match *toks.last().unwrap() {
            "mmap" => 0,
            "brk" => 1,
            "munmap" => 2,
            _ => continue,
        };
        counts[slot] = toks[3]
            .parse()
            .unwrap_or_else(|_| panic!("strace line {line:?}"));
    }
    Some(counts)
}

/// Whether /usr/bin/strace exists; without it the strace tests print a
/// line starting "SKIP", or fail when PARMOD_REQUIRE_STRACE=1.
fn have_strace(what: &str) -> bool {
    if std::path::Path::new("/usr/bin/strace").exists() {
        return true;
    }
    skip("PARMOD_REQUIRE_STRACE", what, "/usr/bin/strace is not installed", "apt-get install strace");
    false
}

/// Each loadable module is "loaded" exactly once: a simulated load is one
/// absolute CLOCK_MONOTONIC sleep, so with weights of several ms the number
/// of clock_nanosleep calls equals the number of non-built-in modules.
#[test]
fn every_module_loads_exactly_once() {
    if !have_strace("the load count check") {
        return;
    }
    let scratch = Scratch::new("once");
    let shape = DagShape {
        modules: 80,
        max_deps: 3,
        window: 10,
        weight_lo: 3000,
        weight_hi: 6000,
        hard_pct: 60,
        builtin_pct: 10,
    };
    let pb = random_dag(41, shape);
    let loadable = pb.modules.iter().filter(|m| m.path.is_some()).count() as u64;
    let (plan, _) = write_plan(&scratch, &pb);
    let report = scratch.path("strace.txt");
    let args: Vec<String> = ["-f", "-c", "-e", "trace=clock_nanosleep", "-o"]
        .iter()
        .map(|s| s.to_string())
        .chain([
            report.display().to_string(),
            parmod_bin().display().to_string(),
        ])
        .chain(
            ["--simulate", "--quiet", "--jobs", "4"]
                .iter()
                .map(|s| s.to_string()),
        )
        .chain([plan.display().to_string()])
        .collect();
    let out = run_raw(
        &scratch,
        std::path::Path::new("/usr/bin/strace"),
        &args,
        Duration::from_secs(60),
        None,
    );
    out.assert_exit(0);
    let text = fs::read_to_string(&report).expect("strace report");
    let calls = text
        .lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            (t.len() >= 5 && t.last() == Some(&"clock_nanosleep"))
                .then(|| t[3].parse::<u64>().unwrap())
        })
        .next()
        .unwrap_or(0);
    assert_eq!(
        calls, loadable,
        "{loadable} loadable modules but {calls} simulated loads (clock_nanosleep calls)\n{text}\n{}",
        out.describe()
    );
}

#[test]
fn memory_use_does_not_grow_with_the_plan() {
    if !have_strace("the no-heap check") {
        return;
    }
    let scratch = Scratch::new("noheap");
    let shape = |n| DagShape {
        modules: n,
        max_deps: 3,
        window: 50,
        weight_lo: 0,
        weight_hi: 0,
        hard_pct: 60,
        builtin_pct: 3,
    };
    let small = scratch.path("small.plan");
    let big = scratch.path("big.plan");
    fs::write(&small, random_dag(21, shape(10)).build().unwrap()).unwrap();
    fs::write(&big, random_dag(22, shape(5000)).build().unwrap()).unwrap();
    let trace_small = scratch.path("small.trace").display().to_string();
    let trace_big = scratch.path("big.trace").display().to_string();
    for (extra_small, extra_big) in [
        (vec![], vec![]),
        (
            vec!["--trace".to_string(), trace_small],
            vec!["--trace".to_string(), trace_big],
        ),
    ] {
        let (Some(a), Some(b)) = (
            strace_counts(&scratch, &small, &extra_small),
            strace_counts(&scratch, &big, &extra_big),
        ) else {
            skip(
                "PARMOD_REQUIRE_STRACE",
                "the no-heap check",
                "strace produced no report",
                "allow ptrace (strace -f) here",
            );
            return;
        };
        assert_eq!(
            a, b,
            "[mmap, brk, munmap] calls differ between a 10-module and a 5000-module plan {extra_small:?}: \
             {a:?} vs {b:?}; the runtime allocates per module"
        );
        eprintln!("[mmap, brk, munmap] = {a:?} for 10 and 5000 modules {extra_small:?}");
    }
}

// ------------------------------------------------------------ scheduling order

/// With one worker the order is fully determined: every time the worker
/// takes a module, it is one of the highest plan priority (longest remaining
/// path) among the modules ready at that moment.
#[test]
fn one_worker_picks_the_highest_priority_ready_module() {
    for seed in [31u64, 32, 33] {
        let shape = DagShape {
            modules: 150,
            max_deps: 3,
            window: 20,
            weight_lo: 50,
            weight_hi: 1000,
            hard_pct: 60,
            builtin_pct: 5,
        };
        let pb = random_dag(seed, shape);
        let run = simulate(&format!("prio{seed}"), &pb, &["--jobs", "1"]);
        let r = Check::new(&pb, &run, 1).run();
        let prio = pb.priorities();
        let deps = deps_of(&pb);
        let mut order: Vec<usize> = (0..r.len())
            .filter(|&i| r[i].result == result::LOADED)
            .collect();
        order.sort_by_key(|&i| r[i].start_ns);
        let mut started = vec![false; r.len()];
        for &k in &order {
            let t = r[k].start_ns;
            let best = order
                .iter()
                .copied()
                .filter(|&m| !started[m] && deps[m].iter().all(|&(d, _)| r[d].end_ns <= t))
                .map(|m| prio[m])
                .max()
                .unwrap();
            assert_eq!(
                prio[k],
                best,
                "seed {seed}: at {t} the worker took {} (priority {}) while a ready module had priority {best}\n{}",
                pb.modules[k].name,
                prio[k],
                run.out.describe()
            );
            started[k] = true;
        }
    }
}

/// The hung load is a separate task: parmod exits at its deadline and the
/// task does not stay behind (it dies with parmod).
#[test]
fn hung_worker_does_not_outlive_parmod() {
    let scratch = Scratch::new("linger");
    let bin = scratch.path("parmod-linger");
    fs::copy(parmod_bin(), &bin).expect("copy the binary");
    let pb = plan_of(vec![
        module("hangs", 50_000, &[]),
        module("after", 1000, &[h(0)]),
        module("x", 1000, &[]),
        module("y", 1000, &[]),
    ]);
    let (plan, _) = write_plan(&scratch, &pb);
    let trace_path = scratch.path("trace.bin");
    let args: Vec<String> = [
        "--simulate",
        "--jobs",
        "2",
        "--module-timeout",
        "100",
        "--deadline",
        "400",
        "--hang",
        "hangs",
        "--trace",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([trace_path.display().to_string(), plan.display().to_string()])
    .collect();
    let out = run_raw(
        &scratch,
        &bin,
        &args,
        Duration::from_secs(20),
        Some(&trace_path),
    );
    out.assert_exit(1);
    assert!(out.wall >= Duration::from_millis(400), "{}", out.describe());
    let (_, r) = out.trace();
    assert_eq!(
        r[0].result & !result::STUCK_FLAG,
        result::STUCK,
        "{}",
        out.describe()
    );
    assert_eq!(r[1].result, result::BLOCKED, "{}", out.describe());
    let left = || -> Vec<String> {
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|c| c.is_ascii_digit())
            })
            .filter(|e| fs::read_link(e.path().join("exe")).is_ok_and(|p| p == bin))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let t0 = std::time::Instant::now();
    let mut pids = left();
    while !pids.is_empty() && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
        pids = left();
    }
    assert!(
        pids.is_empty(),
        "tasks of parmod still alive 2 s after it exited: {pids:?}\n{}",
        out.describe()
    );
}

#[test]
fn coldplug_with_a_plan_without_aliases_says_so_and_exits_2() {
    let scratch = Scratch::new("coldplug-no-aliases");
    let (plan_path, _) = write_plan(&scratch, &small_plan());
    let args: Vec<String> = vec!["coldplug".into(), "--simulate".into(), plan_path.display().to_string()];
    let out = run_raw(&scratch, &parmod_bin(), &args, Duration::from_secs(20), None);
    out.assert_exit(2);
    assert!(
        out.stderr.contains("has no aliases to match devices with; compile one with parmod-plan compile --all"),
        "no message naming the missing aliases\n{}",
        out.describe()
    );
    assert!(summary(&out.stderr).is_none(), "nothing may load\n{}", out.describe());
}
