//! Helpers shared by the runtime integration tests: plan generation, running
//! the real static `parmod` binary, reading its trace back and checking the
//! properties every run must have ([`Check`]: modules and device waits).
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parmod::plan::trace::{self, kind, result, TraceHeader, TraceRecord, NO_CAUSE, NO_WORKER};
use parmod::plan::{ModuleSpec, Plan, PlanBuilder};

#[path = "../harness/mod.rs"]
mod harness;
#[allow(unused_imports)] // each test crate uses its own part
pub use harness::{required, skip, Scratch};

pub const ENODEV: i32 = 19;

/// The runtime under test: `$PARMOD_BIN`, else the musl release build.
pub fn parmod_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PARMOD_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "PARMOD_BIN={} does not exist", p.display());
        return p;
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/x86_64-unknown-linux-musl/release/parmod");
    assert!(
        p.is_file(),
        "the parmod runtime binary {} is missing: build it with `make` \
         (or `cargo build --release --target x86_64-unknown-linux-musl --no-default-features \
         --features runtime --bin parmod`), or point PARMOD_BIN at it",
        p.display()
    );
    p
}

// ---------------------------------------------------------------- plans

pub fn module(name: &str, weight_us: u32, deps: &[(u32, bool)]) -> ModuleSpec {
    ModuleSpec {
        name: name.into(),
        path: Some(format!("kernel/test/{name}.ko")),
        weight_us,
        deps: deps.to_vec(),
        ..ModuleSpec::default()
    }
}

pub fn builtin(name: &str, deps: &[(u32, bool)]) -> ModuleSpec {
    ModuleSpec {
        name: name.into(),
        path: None,
        deps: deps.to_vec(),
        ..ModuleSpec::default()
    }
}

pub fn plan_of(modules: Vec<ModuleSpec>) -> PlanBuilder {
    PlanBuilder {
        kernel_release: "0.0.0-parmod-test".into(),
        modules,
        ..PlanBuilder::default()
    }
}

/// Hard edge / soft edge shorthands.
pub fn h(i: u32) -> (u32, bool) {
    (i, true)
}
pub fn s(i: u32) -> (u32, bool) {
    (i, false)
}

/// A tiny deterministic PRNG (64-bit LCG, Knuth's MMIX constants; high bits out).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        let mut l = Lcg(seed ^ 0x9e37_79b9_7f4a_7c15);
        l.next_u32();
        l
    }
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u32) -> u32 {
        ((self.next_u32() as u64 * n as u64) >> 32) as u32
    }
    pub fn range(&mut self, lo: u32, hi_inclusive: u32) -> u32 {
        lo + self.below(hi_inclusive - lo + 1)
    }
    /// True with probability num/den.
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den) < num
    }
}

/// Shape of a random DAG.
#[derive(Clone, Copy)]
pub struct DagShape {
    pub modules: u32,
    pub max_deps: u32,
    /// Dependencies are drawn from the `window` modules before each one.
    pub window: u32,
    pub weight_lo: u32,
    pub weight_hi: u32,
    /// Percent of edges that are hard.
    pub hard_pct: u32,
    /// Percent of modules that are built in (always leaves: no deps).
    pub builtin_pct: u32,
}

/// A random DAG in a valid load order; deterministic for a seed.
pub fn random_dag(seed: u64, shape: DagShape) -> PlanBuilder {
    let mut rng = Lcg::new(seed);
    let mut modules = Vec::with_capacity(shape.modules as usize);
    for i in 0..shape.modules {
        let name = format!("r{seed}_{i}");
        if rng.chance(shape.builtin_pct, 100) {
            modules.push(builtin(&name, &[]));
            continue;
        }
        let mut deps = Vec::new();
        if i > 0 {
            for _ in 0..rng.below(shape.max_deps + 1) {
                let back = 1 + rng.below(shape.window.min(i));
                deps.push((i - back, rng.chance(shape.hard_pct, 100)));
            }
        }
        modules.push(module(
            &name,
            rng.range(shape.weight_lo, shape.weight_hi),
            &deps,
        ));
    }
    plan_of(modules)
}

/// The normalised dependency lists as the plan stores them (deduplicated, a
/// hard edge wins over a soft one to the same module).
pub fn deps_of(pb: &PlanBuilder) -> Vec<Vec<(usize, bool)>> {
    pb.modules
        .iter()
        .map(|m| {
            let mut map: HashMap<usize, bool> = HashMap::new();
            for &(d, hard) in &m.deps {
                *map.entry(d as usize).or_insert(false) |= hard;
            }
            let mut v: Vec<(usize, bool)> = map.into_iter().collect();
            v.sort();
            v
        })
        .collect()
}

// ---------------------------------------------------------------- running

pub struct Outcome {
    /// The command line, for failure messages.
    pub cmd: String,
    /// Exit code; None if killed by a signal or by our own timeout.
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
    /// The trace file, if `--trace` was given and the file exists.
    pub trace_bytes: Option<Vec<u8>>,
}

impl Outcome {
    pub fn describe(&self) -> String {
        format!(
            "command: {}\nexit: {:?}{}\nwall: {:?}\nstderr:\n{}",
            self.cmd,
            self.code,
            if self.timed_out {
                " (killed by the test: timed out)"
            } else {
                ""
            },
            self.wall,
            truncate(&self.stderr, 4000)
        )
    }

    pub fn assert_exit(&self, want: i32) {
        assert_eq!(
            self.code,
            Some(want),
            "wrong exit status, expected {want}\n{}",
            self.describe()
        );
    }

    /// The parsed trace; panics with context when missing or malformed.
    pub fn trace(&self) -> (TraceHeader, Vec<TraceRecord>) {
        let bytes = self
            .trace_bytes
            .as_ref()
            .unwrap_or_else(|| panic!("no trace file was written\n{}", self.describe()));
        let (hdr, recs) = trace::parse(bytes)
            .unwrap_or_else(|e| panic!("trace does not parse: {e}\n{}", self.describe()));
        (hdr, recs.collect())
    }

    /// Lines of stderr starting with `parmod: KIND: `.
    pub fn lines(&self, kind: &str) -> Vec<&str> {
        let p = format!("parmod: {kind}: ");
        self.stderr.lines().filter(|l| l.starts_with(&p)).collect()
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Run `program args...`, stdout and stderr to files (so a leftover task
/// holding them open can never stall us), killing it after `limit`.
pub fn run_raw(
    scratch: &Scratch,
    program: &Path,
    args: &[String],
    limit: Duration,
    trace: Option<&Path>,
) -> Outcome {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let out_path = scratch.path(&format!("stdout.{n}"));
    let err_path = scratch.path(&format!("stderr.{n}"));
    let out = fs::File::create(&out_path).expect("create stdout file");
    let err = fs::File::create(&err_path).expect("create stderr file");
    let cmd = std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let t0 = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if t0.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = t0.elapsed();
    Outcome {
        cmd,
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned(),
        wall,
        trace_bytes: trace.and_then(|t| fs::read(t).ok()),
    }
}

/// Write `plan` into the scratch dir and return its path and bytes.
pub fn write_plan(scratch: &Scratch, pb: &PlanBuilder) -> (PathBuf, Vec<u8>) {
    let bytes = pb
        .build()
        .unwrap_or_else(|e| panic!("test plan does not build: {e}"));
    let path = scratch.path("plan.bin");
    fs::write(&path, &bytes).expect("write plan");
    (path, bytes)
}

/// `parmod --simulate --trace T [args...] PLAN` with a fresh scratch dir.
pub struct SimRun {
    pub scratch: Scratch,
    pub plan_bytes: Vec<u8>,
    pub out: Outcome,
}

pub fn simulate(tag: &str, pb: &PlanBuilder, args: &[&str]) -> SimRun {
    let scratch = Scratch::new(tag);
    let (plan_path, plan_bytes) = write_plan(&scratch, pb);
    let trace_path = scratch.path("trace.bin");
    let mut v: Vec<String> = vec![
        "--simulate".into(),
        "--trace".into(),
        trace_path.display().to_string(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v.push(plan_path.display().to_string());
    let out = run_raw(
        &scratch,
        &parmod_bin(),
        &v,
        Duration::from_secs(60),
        Some(&trace_path),
    );
    assert!(
        !out.timed_out,
        "parmod did not exit within 60 s\n{}",
        out.describe()
    );
    SimRun {
        scratch,
        plan_bytes,
        out,
    }
}

// ---------------------------------------------------------------- expectations

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    Loaded,
    Builtin,
    Failed,
    /// Skipped; the trace cause must be one of these root failures.
    Skipped(BTreeSet<usize>),
}

/// What each module must end as when the modules in `fail` fail, computed
/// from the plan alone: a module with a failed or skipped hard dependency is
/// skipped (cause: a root failure reachable through hard edges), a failing
/// module otherwise fails, everything else loads. Soft edges never skip.
pub fn expected(pb: &PlanBuilder, fail: &BTreeSet<usize>) -> Vec<Want> {
    expected_with_waits(pb, fail, &BTreeSet::new())
}

/// The same when a device wait after each module in `waits_failed` times
/// out: such a module loads, but its hard dependents are skipped as if it
/// had failed (the skip cause is that module).
pub fn expected_with_waits(
    pb: &PlanBuilder,
    fail: &BTreeSet<usize>,
    waits_failed: &BTreeSet<usize>,
) -> Vec<Want> {
    let deps = deps_of(pb);
    let mut want: Vec<Want> = Vec::with_capacity(pb.modules.len());
    for (i, m) in pb.modules.iter().enumerate() {
        let mut roots = BTreeSet::new();
        for &(d, hard) in &deps[i] {
            if !hard {
                continue;
            }
            match &want[d] {
                Want::Failed => {
                    roots.insert(d);
                }
                Want::Skipped(r) => roots.extend(r.iter().copied()),
                Want::Loaded if waits_failed.contains(&d) => {
                    roots.insert(d);
                }
                _ => {}
            }
        }
        want.push(if !roots.is_empty() {
            Want::Skipped(roots)
        } else if fail.contains(&i) {
            Want::Failed
        } else if m.path.is_none() {
            Want::Builtin
        } else {
            Want::Loaded
        });
    }
    want
}

/// How a device wait must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WantWait {
    /// Its path was there, or appeared, in time.
    Satisfied,
    /// Its own timeout passed first: its module's hard dependents are skipped.
    TimedOut,
    /// Still waiting when the deadline ended the run (trace: blocked, with a
    /// start and no end).
    Unfinished,
    /// Never started (trace: blocked, no times): its module did not load,
    /// or the deadline came first.
    NotStarted,
}

/// The summary line's numbers, keyed by the word after each number
/// (`loaded`, `already`, `built`, `failed`, `skipped`, `stuck`, `blocked`,
/// `waits`, `ms`).
pub fn summary(stderr: &str) -> Option<HashMap<String, u64>> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("parmod: ") && l.contains(" loaded ("))?;
    let toks: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|t| !t.is_empty())
        .collect();
    let mut map = HashMap::new();
    for w in toks.windows(2) {
        if let Ok(n) = w[0].parse::<u64>() {
            map.insert(w[1].to_string(), n);
        }
    }
    Some(map)
}

pub fn rname(r: u8) -> String {
    if r & result::STUCK_FLAG != 0 {
        format!("{}+stuck-flag", result::name(r))
    } else {
        result::name(r).to_string()
    }
}

/// Checks that hold for every run: the header; one record per module in
/// plan order, then one per device wait in plan order; module results as
/// `want` (with `stuck`, `blocked` and the device waits' outcomes), wait
/// results as said by [`Check::waits`]; dependency order (a dependent starts only once its
/// dependency ended and that one's device waits were decided); when device
/// waits start; per-worker exclusivity; the concurrency bound; the stderr
/// lines, the summary counts and the exit status.
pub struct Check<'a> {
    pub pb: &'a PlanBuilder,
    pub run: &'a SimRun,
    plan: Plan<'a>,
    /// Worker threads parmod was asked to use.
    pub jobs: usize,
    pub want: Vec<Want>,
    /// Modules expected to fail (`--fail`).
    fail: BTreeSet<usize>,
    /// How each device wait ends, in the plan's order (set by [`Check::waits`]).
    wait_want: Vec<WantWait>,
    /// Modules expected stuck (hung at exit) and blocked (never started).
    pub stuck: BTreeSet<usize>,
    pub blocked: BTreeSet<usize>,
    /// `--quiet` was given.
    pub quiet: bool,
}

/// A checked run: its records, for the test's own checks.
pub struct Checked<'a> {
    pub pb: &'a PlanBuilder,
    pub run: &'a SimRun,
    /// Module records, in plan order.
    pub mods: Vec<TraceRecord>,
    /// Device-wait records with the path each one names, in the plan's order
    /// (which groups them by module).
    pub waits: Vec<(String, TraceRecord)>,
}

impl Checked<'_> {
    pub fn describe(&self) -> String {
        format!(
            "{}\nmodules: {:#?}\nwaits: {:#?}",
            self.run.out.describe(),
            self.mods,
            self.waits
        )
    }

    pub fn module(&self, name: &str) -> &TraceRecord {
        let i = self
            .pb
            .modules
            .iter()
            .position(|m| m.name == name)
            .unwrap_or_else(|| panic!("no module {name} in the plan"));
        &self.mods[i]
    }

    pub fn wait(&self, path: &str) -> &TraceRecord {
        &self
            .waits
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("no device-wait record for {path}\n{}", self.describe()))
            .1
    }

    pub fn summary(&self) -> HashMap<String, u64> {
        summary(&self.run.out.stderr)
            .unwrap_or_else(|| panic!("no summary line\n{}", self.describe()))
    }

    /// The first stderr line starting with `prefix`.
    pub fn line_with(&self, prefix: &str) -> &str {
        self.run
            .out
            .stderr
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no stderr line starting {prefix:?}\n{}", self.describe()))
    }
}

fn loaded(r: u8) -> bool {
    matches!(
        r & !result::STUCK_FLAG,
        result::LOADED | result::PRESENT | result::BUILTIN
    )
}

impl<'a> Check<'a> {
    pub fn new(pb: &'a PlanBuilder, run: &'a SimRun, jobs: usize) -> Self {
        let want = expected(pb, &BTreeSet::new());
        let plan = Plan::parse(&run.plan_bytes).expect("plan parses");
        Check {
            pb,
            run,
            plan,
            jobs,
            want,
            fail: BTreeSet::new(),
            wait_want: Vec::new(),
            stuck: BTreeSet::new(),
            blocked: BTreeSet::new(),
            quiet: false,
        }
    }

    pub fn failing(mut self, fail: &BTreeSet<usize>) -> Self {
        self.fail = fail.clone();
        self.rewant();
        self
    }

    /// How each device wait of the plan ends, by path (each path once).
    pub fn waits(mut self, want: &[(&str, WantWait)]) -> Self {
        let paths: Vec<String> = self
            .plan
            .waits()
            .map(|w| String::from_utf8_lossy(w.path()).into_owned())
            .collect();
        for (p, _) in want {
            assert_eq!(
                paths.iter().filter(|q| q == p).count(),
                1,
                "Check::waits: {p} must name exactly one of the plan's waits {paths:?}"
            );
        }
        self.wait_want = paths
            .iter()
            .map(|p| {
                want.iter()
                    .find(|(q, _)| q == p)
                    .unwrap_or_else(|| panic!("Check::waits: say how the wait for {p} ends"))
                    .1
            })
            .collect();
        self.rewant();
        self
    }

    fn rewant(&mut self) {
        let waits_failed: BTreeSet<usize> = self
            .plan
            .waits()
            .zip(&self.wait_want)
            .filter(|(_, &w)| w == WantWait::TimedOut)
            .filter_map(|(w, _)| w.module().map(|m| m as usize))
            .collect();
        self.want = expected_with_waits(self.pb, &self.fail, &waits_failed);
    }

    /// Run every check; returns the module records for further
    /// test-specific checks.
    pub fn run(&self) -> Vec<TraceRecord> {
        self.check().mods
    }

    /// Run every check; returns the module and device-wait records.
    pub fn check(&self) -> Checked<'a> {
        let out = &self.run.out;
        let ctx = || out.describe();
        let (hdr, recs) = out.trace();
        let plan = &self.plan;
        let n = self.pb.modules.len();
        let nw = self.pb.waits.len();
        let name = |i: usize| self.pb.modules[i].name.as_str();

        assert_eq!(plan.wait_count() as usize, nw, "device waits in the plan");
        assert_eq!(
            self.wait_want.len(),
            nw,
            "the test must say how each of the plan's {nw} device waits ends (Check::waits)"
        );
        assert_eq!(
            hdr.plan_checksum,
            plan.checksum(),
            "trace header: plan checksum\n{}",
            ctx()
        );
        assert!(
            hdr.simulated,
            "trace header: simulated bit not set\n{}",
            ctx()
        );
        assert_eq!(
            hdr.jobs as usize,
            self.jobs,
            "trace header: jobs\n{}",
            ctx()
        );
        assert_eq!(
            hdr.record_count as usize,
            n + nw,
            "trace header: record_count = modules + device waits\n{}",
            ctx()
        );
        assert_eq!(
            recs.len(),
            n + nw,
            "one trace record per module, then one per device wait\n{}",
            ctx()
        );
        assert!(hdr.t0_ns > 0, "trace header: t0_ns is 0\n{}", ctx());
        let (mods, wrecs) = recs.split_at(n);

        let mut counts: HashMap<&str, u64> = HashMap::new();
        for (i, r) in mods.iter().enumerate() {
            let what = || format!("module {i} ({}): record {r:?}\n{}", name(i), ctx());
            assert_eq!(
                r.index as usize,
                i,
                "record order: record {i} names module {}\n{}",
                r.index,
                what()
            );
            assert_eq!(r.kind, kind::MODULE, "record kind\n{}", what());
            let base = r.result & !result::STUCK_FLAG;
            if self.stuck.contains(&i) {
                assert_eq!(
                    base,
                    result::STUCK,
                    "expected stuck, got {}\n{}",
                    rname(r.result),
                    what()
                );
                assert!(r.start_ns > 0, "a stuck module has started\n{}", what());
                assert!(
                    (r.worker as usize) < self.jobs,
                    "the hung load ran on an original worker\n{}",
                    what()
                );
                *counts.entry("stuck").or_default() += 1;
                continue;
            }
            if self.blocked.contains(&i) {
                assert_eq!(
                    r.result,
                    result::BLOCKED,
                    "expected blocked, got {}\n{}",
                    rname(r.result),
                    what()
                );
                assert_eq!(
                    (r.start_ns, r.end_ns),
                    (0, 0),
                    "a blocked module never started\n{}",
                    what()
                );
                assert_eq!(
                    r.worker,
                    NO_WORKER,
                    "a blocked module has no worker\n{}",
                    what()
                );
                *counts.entry("blocked").or_default() += 1;
                continue;
            }
            match &self.want[i] {
                Want::Loaded => {
                    assert_eq!(
                        r.result,
                        result::LOADED,
                        "expected loaded, got {}\n{}",
                        rname(r.result),
                        what()
                    );
                    assert!(
                        r.start_ns > 0 && r.end_ns >= r.start_ns,
                        "loaded: bad times\n{}",
                        what()
                    );
                    assert_ne!(r.worker, NO_WORKER, "loaded without a worker\n{}", what());
                    assert_eq!(r.errno, 0, "loaded with an errno\n{}", what());
                    *counts.entry("loaded").or_default() += 1;
                }
                Want::Builtin => {
                    assert_eq!(
                        r.result,
                        result::BUILTIN,
                        "expected builtin, got {}\n{}",
                        rname(r.result),
                        what()
                    );
                    assert!(r.end_ns >= r.start_ns, "builtin: bad times\n{}", what());
                    *counts.entry("loaded").or_default() += 1;
                    *counts.entry("builtin").or_default() += 1;
                }
                Want::Failed => {
                    assert_eq!(
                        r.result,
                        result::FAILED,
                        "expected failed, got {}\n{}",
                        rname(r.result),
                        what()
                    );
                    assert_eq!(r.errno, ENODEV, "simulated failure errno\n{}", what());
                    assert!(
                        r.start_ns > 0 && r.end_ns >= r.start_ns,
                        "failed: bad times\n{}",
                        what()
                    );
                    assert_ne!(r.worker, NO_WORKER, "failed without a worker\n{}", what());
                    *counts.entry("failed").or_default() += 1;
                }
                Want::Skipped(roots) => {
                    assert_eq!(
                        r.result,
                        result::SKIPPED,
                        "expected skipped, got {}\n{}",
                        rname(r.result),
                        what()
                    );
                    assert_eq!(
                        (r.start_ns, r.end_ns),
                        (0, 0),
                        "a skipped module never started\n{}",
                        what()
                    );
                    assert_eq!(
                        r.worker,
                        NO_WORKER,
                        "a skipped module has no worker\n{}",
                        what()
                    );
                    assert!(
                        roots.contains(&(r.cause as usize)),
                        "skip cause {} is not a root failure among {roots:?}\n{}",
                        r.cause,
                        what()
                    );
                    *counts.entry("skipped").or_default() += 1;
                }
            }
        }

        // Device waits: results as wanted, and when they start. A wait
        // after a module starts once that module loaded; the waits before
        // success once every module is done (which, for a module with
        // device waits, is when they were decided).
        let module_waits_end: Vec<u64> = wrecs
            .iter()
            .zip(plan.waits())
            .filter(|(_, w)| w.module().is_some())
            .map(|(r, _)| r.end_ns)
            .collect();
        let mut waits = Vec::with_capacity(nw);
        let mut wait_lines = Vec::new();
        for (i, r) in wrecs.iter().enumerate() {
            let w = plan.wait(i as u32).expect("wait in plan");
            let path = String::from_utf8_lossy(w.path()).into_owned();
            let what = || format!("wait {i} ({path}): record {r:?}\n{}", ctx());
            assert_eq!(
                (r.kind, r.index as usize),
                (kind::WAIT, i),
                "device-wait record {i}: kind and index\n{}",
                what()
            );
            assert_eq!(
                r.cause,
                w.module().unwrap_or(NO_CAUSE),
                "device-wait record {i}: cause is its module\n{}",
                what()
            );
            assert_eq!(
                r.worker,
                NO_WORKER,
                "device-wait record {i}: no worker\n{}",
                what()
            );
            assert_eq!(r.errno, 0, "device-wait record {i}: no errno\n{}", what());
            assert!(
                matches!(
                    r.result,
                    result::SATISFIED | result::TIMED_OUT | result::BLOCKED
                ),
                "device-wait record {i}: result {}\n{}",
                rname(r.result),
                what()
            );
            if r.result != result::BLOCKED {
                assert!(
                    r.start_ns > 0 && r.end_ns >= r.start_ns,
                    "device-wait record {i}: times\n{}",
                    what()
                );
            }
            match self.wait_want[i] {
                WantWait::Satisfied => assert_eq!(
                    r.result,
                    result::SATISFIED,
                    "expected satisfied, got {}\n{}",
                    rname(r.result),
                    what()
                ),
                WantWait::TimedOut => {
                    assert_eq!(
                        r.result,
                        result::TIMED_OUT,
                        "expected timed out, got {}\n{}",
                        rname(r.result),
                        what()
                    );
                    let limit = w.timeout_ms() as u64 * 1_000_000;
                    assert!(
                        limit > 0 && r.end_ns - r.start_ns >= limit,
                        "timed out after {} ns, its timeout is {} ms\n{}",
                        r.end_ns - r.start_ns,
                        w.timeout_ms(),
                        what()
                    );
                }
                WantWait::Unfinished => {
                    assert_eq!(
                        (r.result, r.end_ns),
                        (result::BLOCKED, 0),
                        "expected unfinished at the deadline (blocked, no end), got {}\n{}",
                        rname(r.result),
                        what()
                    );
                    assert!(r.start_ns > 0, "an unfinished wait has started\n{}", what());
                }
                WantWait::NotStarted => assert_eq!(
                    (r.result, r.start_ns, r.end_ns),
                    (result::BLOCKED, 0, 0),
                    "expected never started (blocked, no times), got {}\n{}",
                    rname(r.result),
                    what()
                ),
            }
            if r.start_ns > 0 {
                match w.module() {
                    Some(m) => {
                        let mr = &mods[m as usize];
                        assert!(
                            mr.end_ns > 0 && r.start_ns >= mr.end_ns,
                            "wait {i} started at {} before its module {m} ended at {}\n{}",
                            r.start_ns,
                            mr.end_ns,
                            ctx()
                        );
                        assert!(
                            loaded(mr.result),
                            "wait {i} started after its module {m} ({}) ended {}\n{}",
                            name(m as usize),
                            rname(mr.result),
                            ctx()
                        );
                    }
                    None => {
                        for (m, mr) in mods.iter().enumerate() {
                            assert!(
                                !matches!(
                                    mr.result & !result::STUCK_FLAG,
                                    result::STUCK | result::BLOCKED
                                ) && mr.end_ns <= r.start_ns,
                                "wait {i} (before success) started at {} before module {m} ({}) \
                                 was done: {mr:?}\n{}",
                                r.start_ns,
                                name(m),
                                ctx()
                            );
                        }
                        for &e in &module_waits_end {
                            assert!(
                                e != 0 && e <= r.start_ns,
                                "wait {i} (before success) started at {} before a device wait \
                                 after a module was decided (at {e})\n{}",
                                r.start_ns,
                                ctx()
                            );
                        }
                    }
                }
            }
            // The waits that count as failed, and the line each one gets:
            // timed out, unfinished at the deadline, or never started after a
            // module that loaded.
            let head = match (r.result, r.start_ns, w.module()) {
                (result::TIMED_OUT, _, _) => Some(format!(
                    "parmod: wait timed out: {path} not there after {} ms",
                    (r.end_ns - r.start_ns) / 1_000_000
                )),
                (result::BLOCKED, s, _) if s > 0 => {
                    Some(format!("parmod: wait unfinished: {path} not there after "))
                }
                (result::BLOCKED, _, Some(m)) if mods[m as usize].result == result::LOADED => {
                    Some(format!("parmod: wait not started: {path}"))
                }
                _ => None,
            };
            if let Some(head) = head {
                let tail = match w.module() {
                    Some(m) => {
                        let held: Vec<String> = plan
                            .module(m)
                            .expect("module in plan")
                            .dependents()
                            .filter(|e| e.hard)
                            .map(|e| name(e.module as usize).to_string())
                            .collect();
                        let mut t = format!(" (after {}", name(m as usize));
                        if !held.is_empty() {
                            t += &format!("; held back: {}", held[..held.len().min(8)].join(", "));
                        }
                        if held.len() > 8 {
                            t += &format!(" and {} more", held.len() - 8);
                        }
                        t + ")"
                    }
                    None => " (needed before success)".to_string(),
                };
                let unfinished = r.result == result::BLOCKED && r.start_ns > 0;
                assert!(
                    out.stderr.lines().any(|l| l.starts_with(&head)
                        && l.ends_with(&tail)
                        && (!unfinished || l.ends_with(&format!(" ms at the deadline{tail}")))
                        && (r.result != result::TIMED_OUT || l == format!("{head}{tail}"))),
                    "no line '{head}...{tail}'\n{}",
                    what()
                );
                wait_lines.push(head);
            }
            waits.push((path, *r));
        }
        let waits_failed = wait_lines.len() as u64;
        assert_eq!(
            out.stderr
                .lines()
                .filter(|l| l.starts_with("parmod: wait "))
                .count() as u64,
            waits_failed,
            "number of 'parmod: wait ...' lines: one per failed device wait\n{}",
            ctx()
        );

        // Dependency order: nothing starts before each of its deps was
        // decided: the dependency ended and, when it loaded, its device
        // waits ended too (a skipped dependency, only possible over a soft
        // edge, is decided when its root failure was).
        let decided = |x: usize| -> Option<u64> {
            let r = &mods[x];
            if r.end_ns == 0 {
                return None;
            }
            let mut t = r.end_ns;
            if loaded(r.result) {
                for wi in plan.module(x as u32).expect("module in plan").dev_waits() {
                    let e = wrecs[wi as usize].end_ns;
                    if e == 0 {
                        return None;
                    }
                    t = t.max(e);
                }
            }
            Some(t)
        };
        let deps = deps_of(self.pb);
        for (i, r) in mods.iter().enumerate() {
            if r.start_ns == 0 {
                continue;
            }
            for &(d, hard) in &deps[i] {
                let mut x = d;
                if mods[d].result == result::SKIPPED && (mods[d].cause as usize) < n {
                    x = mods[d].cause as usize;
                }
                let at = decided(x);
                assert!(
                    at.is_some_and(|t| t <= r.start_ns),
                    "module {i} ({}) started at {} before its {} dependency {d} ({}) was decided \
                     (at {at:?}; record that decided it: {:?})\n{}",
                    name(i),
                    r.start_ns,
                    if hard { "hard" } else { "soft" },
                    name(d),
                    mods[x],
                    ctx()
                );
            }
        }

        // Worker exclusivity and the concurrency bound (builtins excluded:
        // they are not loads).
        let runs: Vec<(usize, &TraceRecord)> = mods
            .iter()
            .enumerate()
            .filter(|(_, r)| r.start_ns != 0 && r.result != result::BUILTIN)
            .collect();
        let mut by_worker: HashMap<u16, Vec<(u64, u64, usize)>> = HashMap::new();
        for &(i, r) in &runs {
            let end = if self.stuck.contains(&i) {
                u64::MAX
            } else {
                r.end_ns
            };
            by_worker
                .entry(r.worker)
                .or_default()
                .push((r.start_ns, end, i));
        }
        for (w, list) in by_worker.iter_mut() {
            list.sort();
            for p in list.windows(2) {
                assert!(
                    p[1].0 >= p[0].1,
                    "worker {w} ran modules {} ({}) [{}, {}] and {} ({}) [{}, {}] at overlapping times\n{}",
                    p[0].2,
                    name(p[0].2),
                    p[0].0,
                    p[0].1,
                    p[1].2,
                    name(p[1].2),
                    p[1].0,
                    p[1].1,
                    ctx()
                );
            }
        }
        if self.stuck.is_empty() {
            for &w in by_worker.keys() {
                assert!(
                    (w as usize) < self.jobs,
                    "worker id {w} with --jobs {} and nothing stuck\n{}",
                    self.jobs,
                    ctx()
                );
            }
        }
        let live: Vec<(u64, u64)> = runs
            .iter()
            .filter(|(i, _)| !self.stuck.contains(i))
            .map(|(_, r)| (r.start_ns, r.end_ns))
            .collect();
        let max = max_concurrency(&live);
        assert!(
            max <= self.jobs,
            "{max} loads ran at once with {} jobs\n{}",
            self.jobs,
            ctx()
        );

        // stderr lines and the summary.
        let failed = out.lines("failed");
        let skipped = out.lines("skipped");
        for (i, r) in mods.iter().enumerate() {
            let head_ok = |lines: &[&str]| {
                lines.iter().any(|l| {
                    l.starts_with(&format!("parmod: {}: {}: ", kind_word(r.result), name(i)))
                })
            };
            match r.result & !result::STUCK_FLAG {
                result::FAILED => assert!(
                    head_ok(&failed),
                    "no 'parmod: failed: {}: ...' line\n{}",
                    name(i),
                    ctx()
                ),
                result::SKIPPED if !self.quiet => {
                    let cause = r.cause as usize;
                    let line = if self.want[cause] == Want::Loaded {
                        format!(
                            "parmod: skipped: {}: a wait after {} timed out",
                            name(i),
                            name(cause)
                        )
                    } else {
                        format!(
                            "parmod: skipped: {}: dependency {} failed",
                            name(i),
                            name(cause)
                        )
                    };
                    assert!(
                        skipped.iter().any(|l| l.starts_with(&line)),
                        "no '{line}' line\n{}",
                        ctx()
                    );
                }
                result::STUCK => assert!(
                    out.lines("stuck")
                        .iter()
                        .any(|l| l.starts_with(&format!("parmod: stuck: {}: ", name(i)))),
                    "no 'parmod: stuck: {}: ...' line\n{}",
                    name(i),
                    ctx()
                ),
                result::BLOCKED if !self.quiet => assert!(
                    out.lines("blocked")
                        .iter()
                        .any(|l| l.starts_with(&format!("parmod: blocked: {}: ", name(i)))),
                    "no 'parmod: blocked: {}: ...' line\n{}",
                    name(i),
                    ctx()
                ),
                _ => {}
            }
        }
        let c = |k: &str| counts.get(k).copied().unwrap_or(0);
        assert_eq!(
            failed.len() as u64,
            c("failed"),
            "number of 'failed' lines\n{}",
            ctx()
        );
        // Only the deadline leaves modules stuck or blocked and waits
        // unfinished or not started after a module that loaded.
        let at_deadline = c("stuck") + c("blocked") > 0
            || wait_lines
                .iter()
                .any(|h| !h.starts_with("parmod: wait timed out: "));
        assert_eq!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("parmod: deadline of ")),
            at_deadline,
            "a 'parmod: deadline of ... reached' line exactly when the run ended at the deadline\n{}",
            ctx()
        );
        if self.quiet {
            assert!(skipped.is_empty(), "--quiet printed skip lines\n{}", ctx());
            for l in out.stderr.lines() {
                assert!(
                    l.starts_with("parmod: failed: ")
                        || l.starts_with("parmod: wait ")
                        || l.starts_with("parmod: deadline of ")
                        || l.contains(" loaded ("),
                    "--quiet printed more than failures, failed waits, the deadline and the summary: {l:?}\n{}",
                    ctx()
                );
            }
        } else {
            assert_eq!(
                skipped.len() as u64,
                c("skipped"),
                "number of 'skipped' lines\n{}",
                ctx()
            );
        }
        let sum = summary(&out.stderr).unwrap_or_else(|| panic!("no summary line\n{}", ctx()));
        let g = |k: &str| sum.get(k).copied().unwrap_or(0);
        let got = (
            g("loaded"),
            g("built"),
            g("failed"),
            g("skipped"),
            g("stuck"),
            g("blocked"),
            g("waits"),
        );
        let want = (
            c("loaded"),
            c("builtin"),
            c("failed"),
            c("skipped"),
            c("stuck"),
            c("blocked"),
            waits_failed,
        );
        assert_eq!(
            got, want,
            "summary (loaded, built in, failed, skipped, stuck, blocked, waits failed) does not match the trace\n{}",
            ctx()
        );
        assert_eq!(
            g("already"),
            0,
            "simulated modules are never 'already present'\n{}",
            ctx()
        );

        let ok = c("failed") + c("skipped") + c("stuck") + c("blocked") + waits_failed == 0;
        out.assert_exit(if ok { 0 } else { 1 });
        Checked {
            pb: self.pb,
            run: self.run,
            mods: mods.to_vec(),
            waits,
        }
    }
}

fn kind_word(r: u8) -> &'static str {
    match r & !result::STUCK_FLAG {
        result::FAILED => "failed",
        result::SKIPPED => "skipped",
        result::STUCK => "stuck",
        result::BLOCKED => "blocked",
        _ => "",
    }
}

/// Most half-open intervals [start, end) covering one instant.
pub fn max_concurrency(iv: &[(u64, u64)]) -> usize {
    let mut ev: Vec<(u64, i32)> = Vec::with_capacity(iv.len() * 2);
    for &(s, e) in iv {
        if e > s {
            ev.push((s, 1));
            ev.push((e, -1));
        }
    }
    // At equal times, ends before starts.
    ev.sort();
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in ev {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

/// CPUs in this process's affinity mask (what parmod defaults `--jobs` to).
pub fn affinity_cpus() -> usize {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim();
    list.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}
