//! The runtime in-process, on the fake kernel: scheduler order and
//! overlap, failure propagation, stuck loads, deadlines, device waits, the
//! kernel command line, worker start failures. Time is virtual
//! (`kernel::fake`), so every figure below is exact and every run
//! deterministic.

use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use crate::cmdline::CmdlineBuf;
use crate::plan::trace::result;
use crate::plan::{ModuleSpec, Plan, PlanBuilder, DeviceWaitSpec};

use super::kernel::fake::{Behaviour, Call, Fake, T0};
use super::report::outcome;
use super::run::{self, Run, Setup};
use super::sched::Sched;

const MS: u64 = 1_000_000;

fn module(name: &str, weight_us: u32, deps: &[(u32, bool)]) -> ModuleSpec {
    ModuleSpec {
        name: name.into(),
        path: Some(format!("kernel/test/{name}.ko")),
        weight_us,
        deps: deps.to_vec(),
        ..ModuleSpec::default()
    }
}

fn plan_of(modules: Vec<ModuleSpec>) -> PlanBuilder {
    PlanBuilder { kernel_release: "6.1.0-test".into(), modules, ..PlanBuilder::default() }
}

/// Run options of a test.
#[derive(Clone, Copy)]
struct Opts<'a> {
    jobs: u32,
    deadline_ms: u32,
    module_timeout_ms: Option<u32>,
    cmdline: &'a [u8],
    wanted: &'a [u32],
}

const OPTS: Opts<'static> = Opts { jobs: 2, deadline_ms: 60_000, module_timeout_ms: None, cmdline: b"", wanted: &[] };

struct Done {
    fake: &'static Fake,
    s: &'static Sched,
    status: i32,
    t0: u64,
}

impl Done {
    fn call(&self, name: &str) -> Call {
        self.fake.calls().into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name} was never loaded"))
    }
    /// The modules loaded, in the order their loads started.
    fn names(&self) -> Vec<String> {
        self.fake.calls().into_iter().map(|c| c.name).collect()
    }
    fn loaded(&self, name: &str) -> bool {
        self.fake.calls().iter().any(|c| c.name == name)
    }
    fn result(&self, name: &str) -> u8 {
        let m = self.s.plan.find_module(name.as_bytes()).unwrap_or_else(|| panic!("{name} not in plan"));
        outcome(self.s, m.index())
    }
    /// Start and end of a load, in ms after the run started.
    fn span(&self, name: &str) -> (u64, u64) {
        let c = self.call(name);
        ((c.start - self.t0) / MS, (c.end.expect("load ended") - self.t0) / MS)
    }
}

fn run_with(pb: &PlanBuilder, fake: &'static Fake, o: Opts<'_>) -> Done {
    let bytes: &'static [u8] = Vec::leak(pb.build().expect("plan builds"));
    let plan = Plan::parse(bytes).expect("plan parses");
    let cl = o.cmdline.to_vec();
    let setup = Setup {
        plan_path: b"test.plan",
        force: false,
        module_dir: Some(b"/lib/modules/6.1.0-test"),
        module_timeout_ms: o.module_timeout_ms,
        cmdline: CmdlineBuf::read_with(|b| {
            b[..cl.len()].copy_from_slice(&cl);
            cl.len()
        }),
    };
    let s: &'static Sched = std::boxed::Box::leak(std::boxed::Box::new(run::prepare(plan, fake, setup).expect("prepare")));
    let t0 = fake.time();
    let r = Run { wanted: o.wanted, blacklist: true, jobs: Some(o.jobs), deadline_ms: Some(o.deadline_ms), quiet: true, summary: false, coldplug: None, hook: None, trace: None, unpack: true };
    let status = run::execute(s, t0, r);
    Done { fake, s, status, t0 }
}

fn run_plan(pb: &PlanBuilder, fake: &'static Fake, jobs: u32) -> Done {
    run_with(pb, fake, Opts { jobs, ..OPTS })
}

// ------------------------------------------------------------------ order

#[test]
fn one_worker_takes_the_longest_remaining_path_first() {
    // Three independent chains; priorities are the remaining path lengths:
    // c0 (30 ms to go) before b0 (20) before a0 (10).
    let pb = plan_of(vec![
        module("a0", 10_000, &[]),
        module("b0", 10_000, &[]),
        module("b1", 10_000, &[(1, true)]),
        module("c0", 10_000, &[]),
        module("c1", 10_000, &[(3, true)]),
        module("c2", 10_000, &[(4, true)]),
    ]);
    let fake = Fake::new().leak();
    for m in &pb.modules {
        fake.script(&m.name, Behaviour::Load(m.weight_us as u64 * 1000));
    }
    let d = run_plan(&pb, fake, 1);
    assert_eq!(d.status, 0);
    let order = d.names();
    // After c0, c1 (20 to go) ties with b0 (20): the earlier record wins;
    // then a0, b1 and c2 (10 each) in record order.
    assert_eq!(order, ["c0", "b0", "c1", "a0", "b1", "c2"]);
    assert_eq!(d.span("a0"), (30, 40), "one worker: back to back, 10 ms each");
}

#[test]
fn dependents_start_when_their_last_dependency_ends() {
    // A diamond: top waits for left and right, which wait for bottom.
    let pb = plan_of(vec![
        module("bottom", 0, &[]),
        module("left", 0, &[(0, true)]),
        module("right", 0, &[(0, true)]),
        module("top", 0, &[(1, true), (2, true)]),
    ]);
    let fake = Fake::new().leak();
    fake.script("bottom", Behaviour::Load(100 * MS))
        .script("left", Behaviour::Load(150 * MS))
        .script("right", Behaviour::Load(40 * MS))
        .script("top", Behaviour::Load(10 * MS));
    let d = run_plan(&pb, fake, 4);
    assert_eq!(d.status, 0);
    assert_eq!(d.span("bottom"), (0, 100));
    assert_eq!(d.span("left"), (100, 250), "left and right run side by side");
    assert_eq!(d.span("right"), (100, 140));
    assert_eq!(d.span("top"), (250, 260), "top starts the moment left, its last dependency, ends");
}

#[test]
fn loads_overlap_up_to_the_worker_count() {
    let pb = plan_of((0..8).map(|i| module(&format!("m{i}"), 0, &[])).collect());
    let fake = Fake::new().leak();
    for i in 0..8 {
        fake.script(&format!("m{i}"), Behaviour::Load(100 * MS));
    }
    let d = run_plan(&pb, fake, 4);
    assert_eq!(d.status, 0);
    assert_eq!(d.fake.spawns(), 4);
    let calls = d.fake.calls();
    // At every start, count the loads in flight.
    let most = calls
        .iter()
        .map(|c| calls.iter().filter(|o| o.start <= c.start && o.end.unwrap_or(u64::MAX) > c.start).count())
        .max();
    assert_eq!(most, Some(4), "never more loads at once than workers, and all of them used");
    let end = calls.iter().filter_map(|c| c.end).max().unwrap_or(0);
    assert_eq!((end - d.t0) / MS, 200, "8 loads of 100 ms on 4 workers take 200 ms");
}

#[test]
fn a_subset_loads_only_what_it_needs() {
    // The modprobe personality's partial run: wanted = c, which needs b.
    let pb = plan_of(vec![module("a", 0, &[]), module("b", 0, &[]), module("c", 0, &[(1, true)])]);
    let fake = Fake::new().leak();
    let d = run_with(&pb, fake, Opts { wanted: &[2], ..OPTS });
    assert_eq!(d.status, 0);
    assert_eq!(d.names(), ["b", "c"]);
}

#[test]
fn on_request_modules_load_only_when_asked_for() {
    // r (on request) needs shared (in the run) and own (only for r).
    use crate::plan::module_flags::ON_REQUEST;
    let mut pb = plan_of(vec![
        module("shared", 0, &[]),
        module("a", 0, &[(0, true)]),
        module("own", 0, &[]),
        module("r", 0, &[(0, true), (2, true)]),
    ]);
    pb.modules[2].flags |= ON_REQUEST;
    pb.modules[3].flags |= ON_REQUEST;
    let fake = Fake::new().leak();
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    assert_eq!(d.names(), ["shared", "a"], "a run of the whole plan leaves them out");
    for m in [2, 3] {
        let st = super::state::at(d.s.st.status, m).load(core::sync::atomic::Ordering::Relaxed);
        assert_eq!(st, super::state::NOT_WANTED, "module {m}: out of the run, not skipped or failed");
    }
    // The modprobe personality asks for r: it loads with what it needs.
    let fake = Fake::new().leak();
    let d = run_with(&pb, fake, Opts { wanted: &[3], ..OPTS });
    assert_eq!(d.status, 0);
    // shared and own start at the same instant (two workers): either order.
    let mut names = d.names();
    assert_eq!(names.pop().as_deref(), Some("r"), "r after what it needs");
    names.sort();
    assert_eq!(names, ["own", "shared"]);
}

// ------------------------------------------- around the kernel's serial phase

fn with_serial(name: &str, weight_us: u32, serial_us: u32) -> ModuleSpec {
    ModuleSpec { serial_us, ..module(name, weight_us, &[]) }
}

/// The nice value each module's load had when the load started and, for
/// each later change, (ms after the start of the run, module, nice).
fn nices_of(d: &Done) -> Vec<(u64, String, i32)> {
    let calls = d.fake.calls();
    d.fake
        .nices()
        .into_iter()
        .map(|(t, tid, nice)| {
            // The load of that task in progress then (or starting then).
            let c = calls
                .iter()
                .find(|c| c.tid == tid && c.start <= t && c.end.is_none_or(|e| e > t))
                .unwrap_or_else(|| panic!("nice {nice} set on task {tid} at {t} with no load"));
            ((t - d.t0) / MS, c.name.clone(), nice)
        })
        .collect()
}

#[test]
fn loads_beyond_the_cpus_run_lowered_and_the_best_are_raised_as_places_free() {
    // Priorities a > b > ... > f (their weights: no dependencies); the
    // loads end in the same order, 10 ms apart.
    let names = ["a", "b", "c", "d", "e", "f"];
    let pb = plan_of(names.iter().enumerate().map(|(i, n)| module(n, 60_000 - 10_000 * i as u32, &[])).collect());
    let fake = Fake::new().leak();
    fake.cpus(2);
    for (i, n) in names.iter().enumerate() {
        fake.script(n, Behaviour::Load((i as u64 + 1) * 10 * MS));
    }
    let d = run_plan(&pb, fake, 6);
    assert_eq!(d.status, 0);
    assert!(names.iter().all(|n| d.span(n).0 == 0), "all six start at once");
    // a and b keep the normal priority; c..f start lowered, and each is
    // raised when a load at normal priority ends.
    let s = |t: u64, n: &str, nice: i32| (t, n.to_string(), nice);
    assert_eq!(
        nices_of(&d),
        [s(0, "c", 19), s(0, "d", 19), s(0, "e", 19), s(0, "f", 19), s(10, "c", 0), s(20, "d", 0), s(30, "e", 0), s(40, "f", 0)]
    );
}

#[test]
fn a_module_of_higher_priority_takes_a_place_at_normal_priority() {
    // low1 and low2 run at normal priority until top, which waits for dep,
    // becomes ready: then the lower of them is lowered.
    let pb = plan_of(vec![
        module("dep", 1_000, &[]),
        module("low1", 900_000, &[]),
        module("low2", 800_000, &[]),
        module("top", 5_000_000, &[(0, true)]),
    ]);
    let fake = Fake::new().leak();
    fake.cpus(2).script("dep", Behaviour::Load(5 * MS)).script("low1", Behaviour::Load(100 * MS)).script("low2", Behaviour::Load(100 * MS));
    fake.script("top", Behaviour::Load(50 * MS));
    let d = run_plan(&pb, fake, 3);
    assert_eq!(d.status, 0);
    let s = |t: u64, n: &str, nice: i32| (t, n.to_string(), nice);
    // dep (top's chain, highest priority) and low1 first; low2 lowered; at
    // 5 ms dep ends: low2 is raised, then top starts and low2 is lowered again.
    assert_eq!(nices_of(&d), [s(0, "low2", 19), s(5, "low2", 0), s(5, "low2", 19), s(55, "low2", 0)]);
}

#[test]
fn no_priorities_change_with_no_more_workers_than_cpus() {
    let pb = plan_of((0..6).map(|i| module(&format!("m{i}"), 1_000 * (i + 1), &[])).collect());
    let fake = Fake::new().leak();
    fake.cpus(2);
    for i in 0..6 {
        fake.script(&format!("m{i}"), Behaviour::Load(10 * MS));
    }
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    assert!(d.fake.nices().is_empty(), "{:?}", d.fake.nices());
}

#[test]
fn without_the_right_to_raise_a_task_again_tiers_end() {
    let names = ["a", "b", "c", "d"];
    let pb = plan_of(names.iter().enumerate().map(|(i, n)| module(n, 40_000 - 10_000 * i as u32, &[])).collect());
    let fake = Fake::new().leak();
    fake.cpus(1).refuse_raise();
    for (i, n) in names.iter().enumerate() {
        fake.script(n, Behaviour::Load((i as u64 + 1) * 10 * MS));
    }
    let d = run_plan(&pb, fake, 4);
    assert_eq!(d.status, 0, "everything loads");
    let s = |t: u64, n: &str, nice: i32| (t, n.to_string(), nice);
    // b, c, d lowered; raising b at 10 ms is refused: nothing changes after.
    assert_eq!(nices_of(&d), [s(0, "b", 19), s(0, "c", 19), s(0, "d", 19)]);
}

#[test]
fn a_modules_own_serial_part_does_not_count_toward_its_priority() {
    // One worker. long: 1500 ms, 1200 of them serial (300 left); base: 400
    // ms without a serial part, needed by after (500 ms): its chain is
    // 900 ms. By whole weights long (1500) would go first; without its own
    // serial part (300) it comes after base's chain (900) and after (500).
    let pb = plan_of(vec![with_serial("long", 1_500_000, 1_200_000), module("base", 400_000, &[]), module("after", 500_000, &[(1, true)])]);
    let fake = Fake::new().leak();
    fake.script("long", Behaviour::Load(1500 * MS)).script("base", Behaviour::Load(400 * MS)).script("after", Behaviour::Load(500 * MS));
    let d = run_plan(&pb, fake, 1);
    assert_eq!(d.status, 0);
    assert_eq!(d.names(), ["base", "after", "long"]);
    // The serial parts of what comes after still count: first's chain
    // leads to long (1500 ms with its serial part) and goes before base.
    let pb = plan_of(vec![
        module("first", 10_000, &[]),
        ModuleSpec { serial_us: 1_200_000, ..module("long", 1_500_000, &[(0, true)]) },
        module("base", 400_000, &[]),
        module("after", 500_000, &[(2, true)]),
    ]);
    let d = run_plan(&pb, Fake::new().leak(), 1);
    assert_eq!(d.names(), ["first", "base", "after", "long"], "first (1510 ms to go) first, then base's chain (900) before long (300)");
}

// ------------------------------------------- around the kernel's own requests

/// The run's count of loads held back and their time in all (ms).
fn holds_of(d: &Done) -> (u32, u32) {
    use super::state::{at, HELD_MS, HOLDS};
    use core::sync::atomic::Ordering::Relaxed;
    (at(d.s.st.ctl, HOLDS).load(Relaxed), at(d.s.st.ctl, HELD_MS).load(Relaxed))
}

/// big: 900 ms, 500 of them serial (over the hold threshold); two small
/// loads of 50 ms without a serial part.
fn big_and_small() -> (PlanBuilder, &'static Fake) {
    let pb = plan_of(vec![with_serial("big", 900_000, 500_000), module("small1", 50_000, &[]), module("small2", 40_000, &[])]);
    let fake = Fake::new().leak();
    fake.cpus(2).script("big", Behaviour::Load(900 * MS)).script("small1", Behaviour::Load(50 * MS)).script("small2", Behaviour::Load(40 * MS));
    (pb, fake)
}

#[test]
fn a_long_serial_part_waits_while_the_kernel_loads_what_it_requested() {
    // The kernel loads a module it asked for during the first 130 ms: big
    // (taken first) waits for it; the small loads go on meanwhile.
    let (pb, fake) = big_and_small();
    fake.request_between(T0, T0 + 130 * MS);
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    assert_eq!(d.span("big"), (130, 1030), "held until the request is loaded");
    assert_eq!((d.span("small1"), d.span("small2")), ((0, 50), (50, 90)));
    assert_eq!(holds_of(&d), (1, 130));
    // The same run without a request: big starts at once, nothing held.
    let (pb, fake) = big_and_small();
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.span("big"), (0, 900));
    assert_eq!(holds_of(&d), (0, 0));
    assert!(d.fake.request_checks() > 0, "asked, and told no");
}

#[test]
fn loads_without_a_long_serial_part_never_wait_for_requests() {
    let pb = plan_of(vec![with_serial("mid", 200_000, 90_000), module("plain", 300_000, &[])]);
    let fake = Fake::new().leak();
    fake.script("mid", Behaviour::Load(200 * MS)).script("plain", Behaviour::Load(300 * MS)).request_between(T0, T0 + 1000 * MS);
    let d = run_plan(&pb, fake, 2);
    assert_eq!((d.span("mid"), d.span("plain")), ((0, 200), (0, 300)));
    assert_eq!(d.fake.request_checks(), 0, "the kernel is not even asked");
}

#[test]
fn a_hold_lasts_at_most_the_serial_part_it_defers() {
    // A request that takes 10 s: big (500 ms serial) waits 500 ms, then goes.
    let (pb, fake) = big_and_small();
    fake.request_between(T0, T0 + 10_000 * MS);
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    assert_eq!(d.span("big"), (500, 1400));
    assert_eq!(holds_of(&d), (1, 500));
}

#[test]
fn while_one_load_is_held_the_others_take_no_long_serial_part() {
    // Three workers. big1 is held; big2, next in line, is left in the queue
    // for small (which goes at once), and a third worker finds nothing it
    // may take. When the request is loaded at 200 ms both big ones start:
    // one hold, not two.
    let pb = plan_of(vec![with_serial("big1", 1_000_000, 500_000), with_serial("big2", 800_000, 400_000), module("small", 100_000, &[])]);
    let fake = Fake::new().leak();
    fake.cpus(2).script("big1", Behaviour::Load(1000 * MS)).script("big2", Behaviour::Load(800 * MS)).script("small", Behaviour::Load(100 * MS));
    fake.request_between(T0, T0 + 200 * MS);
    let d = run_plan(&pb, fake, 3);
    assert_eq!(d.status, 0);
    let names = d.names();
    assert_eq!(names[0], "small", "{names:?}");
    assert_eq!((d.span("small"), d.span("big1").0, d.span("big2").0), ((0, 100), 200, 200));
    assert_eq!(holds_of(&d), (1, 200));
}

#[test]
fn a_held_load_does_not_start_after_the_deadline() {
    let pb = plan_of(vec![with_serial("big", 20_000_000, 10_000_000), module("after", 0, &[(0, true)])]);
    let fake = Fake::new().leak();
    fake.request_between(T0, T0 + 60_000 * MS);
    let d = run_with(&pb, fake, Opts { deadline_ms: 1000, ..OPTS });
    assert_eq!(d.status, 1);
    assert_eq!((d.result("big"), d.result("after")), (result::BLOCKED, result::BLOCKED), "not started by the deadline");
    assert!(!d.loaded("big"));
    assert_eq!((d.fake.time() - d.t0) / MS, 1000);
}

// ------------------------------------------------------------- failures

#[test]
fn a_failure_skips_hard_dependents_and_releases_soft_ones() {
    let pb = plan_of(vec![
        module("base", 0, &[]),
        module("hard", 0, &[(0, true)]),
        module("soft", 0, &[(0, false)]),
        module("deeper", 0, &[(1, true)]),
    ]);
    let fake = Fake::new().leak();
    fake.script("base", Behaviour::Fail(19, 5 * MS));
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 1);
    assert_eq!(d.result("base"), result::FAILED);
    assert_eq!(d.result("hard"), result::SKIPPED);
    assert_eq!(d.result("deeper"), result::SKIPPED, "skips are transitive");
    assert_eq!(d.result("soft"), result::LOADED, "a soft dependency only orders");
    assert!(!d.loaded("hard") && !d.loaded("deeper"));
    assert!(d.span("soft").0 >= 5, "soft waited for base to end");
}

#[test]
fn present_and_builtin_modules_are_not_loaded() {
    let mut pb = plan_of(vec![module("live", 0, &[]), module("inside", 0, &[]), module("user", 0, &[(0, true), (1, true)])]);
    pb.modules[1].path = None; // built in
    let fake = Fake::new().leak();
    fake.file("/sys/module/live/initstate", b"live\n");
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    assert_eq!(d.result("live"), result::PRESENT);
    assert_eq!(d.result("inside"), result::BUILTIN);
    assert_eq!(d.names(), ["user"]);
}

#[test]
fn eexist_counts_as_present() {
    let pb = plan_of(vec![module("racy", 0, &[])]);
    let fake = Fake::new().leak();
    fake.script("racy", Behaviour::Fail(17, 0));
    let d = run_plan(&pb, fake, 1);
    assert_eq!(d.status, 0);
    assert_eq!(d.result("racy"), result::PRESENT);
}

// ----------------------------------------------------- stuck and deadline

#[test]
fn a_stuck_load_is_reported_replaced_and_left_behind() {
    // stuck hangs; its dependent is blocked at the deadline; the other
    // modules still load on the replacement worker. x sleeps (no CPU) past
    // its timeout while nothing else progresses: stuck too, then it loads.
    let pb = plan_of(vec![
        module("stuck", 0, &[]),
        module("after_stuck", 0, &[(0, true)]),
        module("x", 0, &[]),
        module("y", 0, &[(2, true)]),
    ]);
    let fake = Fake::new().leak();
    fake.script("stuck", Behaviour::Hang).script("x", Behaviour::Sleep(2000 * MS)).script("y", Behaviour::Load(100 * MS));
    let d = run_with(&pb, fake, Opts { jobs: 2, deadline_ms: 5000, module_timeout_ms: Some(1000), ..OPTS });
    assert_eq!(d.status, 1);
    assert_eq!(d.result("stuck"), result::STUCK);
    assert_eq!(d.result("after_stuck"), result::BLOCKED);
    assert_eq!(d.result("x"), result::LOADED | result::STUCK_FLAG, "x outlived its 1 s timeout, then loaded");
    assert_eq!(d.result("y"), result::LOADED);
    // Both first workers were retired at 1 s; two replacements started then.
    let ms: Vec<u64> = d.fake.spawn_times().iter().map(|t| (t - d.t0) / MS).collect();
    assert_eq!(ms, [0, 0, 1000, 1000]);
    assert_eq!(d.span("y"), (2000, 2100));
    assert_eq!((d.fake.time() - d.t0) / MS, 5000, "the run ends at the deadline");
}

#[test]
fn a_busy_load_past_its_timeout_is_not_stuck() {
    // It uses the CPU all along: slow, not stuck; no replacement worker.
    let pb = plan_of(vec![module("busy", 0, &[]), module("after", 0, &[(0, true)])]);
    let fake = Fake::new().leak();
    fake.script("busy", Behaviour::Load(3500 * MS));
    let d = run_with(&pb, fake, Opts { module_timeout_ms: Some(1000), ..OPTS });
    assert_eq!(d.status, 0);
    assert_eq!(d.result("busy"), result::LOADED, "no stuck flag");
    assert_eq!(d.fake.spawns(), 2);
    assert_eq!(d.span("after"), (3500, 3500));
}

#[test]
fn a_load_parked_beside_a_progressing_one_is_not_stuck() {
    // big uses the CPU for 5 s; small waits without CPU (as beside a kernel
    // lock big holds) for 4 s, past its 1 s timeout.
    let pb = plan_of(vec![module("big", 0, &[]), module("small", 0, &[])]);
    let fake = Fake::new().leak();
    fake.script("big", Behaviour::Load(5000 * MS)).script("small", Behaviour::Sleep(4000 * MS));
    let d = run_with(&pb, fake, Opts { module_timeout_ms: Some(1000), ..OPTS });
    assert_eq!(d.status, 0);
    assert_eq!(d.result("small"), result::LOADED);
    assert_eq!(d.result("big"), result::LOADED);
    assert_eq!(d.fake.spawns(), 2, "no replacement worker");
}

#[test]
fn a_load_that_sleeps_for_ever_is_stuck_at_its_timeout() {
    let pb = plan_of(vec![module("sleeper", 0, &[]), module("other", 0, &[])]);
    let fake = Fake::new().leak();
    fake.script("sleeper", Behaviour::Hang).script("other", Behaviour::Load(300 * MS));
    let d = run_with(&pb, fake, Opts { jobs: 2, deadline_ms: 4000, module_timeout_ms: Some(2000), ..OPTS });
    assert_eq!(d.status, 1);
    assert_eq!(d.result("sleeper"), result::STUCK);
    let ms: Vec<u64> = d.fake.spawn_times().iter().map(|t| (t - d.t0) / MS).collect();
    assert_eq!(ms, [0, 0, 2000], "replaced at exactly its timeout");
}

#[test]
fn a_load_spinning_for_ever_is_not_replaced_but_the_deadline_ends_the_run() {
    let pb = plan_of(vec![module("spin", 0, &[]), module("next", 0, &[(0, true)])]);
    let fake = Fake::new().leak();
    fake.script("spin", Behaviour::Spin);
    let d = run_with(&pb, fake, Opts { deadline_ms: 3000, module_timeout_ms: Some(1000), ..OPTS });
    assert_eq!(d.status, 1);
    assert_eq!(d.result("spin"), result::STUCK, "still inside its load at the deadline");
    assert_eq!(d.result("next"), result::BLOCKED);
    let ms: Vec<u64> = d.fake.spawn_times().iter().map(|t| (t - d.t0) / MS).collect();
    assert_eq!(ms, [0, 0], "no replacement worker");
    assert_eq!((d.fake.time() - d.t0) / MS, 3000);
}

#[test]
fn the_deadline_comes_when_every_worker_is_stuck() {
    let pb = plan_of(vec![module("h1", 0, &[]), module("h2", 0, &[]), module("h3", 0, &[]), module("h4", 0, &[])]);
    let fake = Fake::new().leak();
    for h in ["h1", "h2", "h3", "h4"] {
        fake.script(h, Behaviour::Hang);
    }
    let d = run_with(&pb, fake, Opts { jobs: 2, deadline_ms: 2500, module_timeout_ms: Some(1000), ..OPTS });
    assert_eq!(d.status, 1);
    for h in ["h1", "h2", "h3", "h4"] {
        assert_eq!(d.result(h), result::STUCK, "{h}");
    }
    let ms: Vec<u64> = d.fake.spawn_times().iter().map(|t| (t - d.t0) / MS).collect();
    assert_eq!(ms, [0, 0, 1000, 1000, 2000, 2000], "each stuck worker replaced at the timeout, h3 and h4 too");
    assert_eq!((d.fake.time() - d.t0) / MS, 2500);
}

#[test]
fn timeouts_scale_with_the_expected_load_time() {
    let mut pb = plan_of(vec![module("tiny", 100, &[]), module("big", 2_000_000, &[]), module("huge", 100_000_000, &[]), module("own", 5, &[])]);
    pb.modules[3].timeout_ms = 777;
    pb.module_timeout_ms = 10_000;
    let bytes: &'static [u8] = Vec::leak(pb.build().expect("plan builds"));
    let plan = Plan::parse(bytes).expect("parses");
    let fake = Fake::new().leak();
    let prep = |t: Option<u32>| {
        let setup = Setup { plan_path: b"p", force: true, module_dir: None, module_timeout_ms: t, cmdline: CmdlineBuf::empty() };
        run::prepare(plan, fake, setup).expect("prepare")
    };
    let s = prep(None);
    let t = |m: u32| s.timeout_ms(m);
    assert_eq!(t(0), 10_000, "the floor: the plan's module timeout");
    assert_eq!(t(1), 40_000, "20 x a 2 s load");
    assert_eq!(t(2), 120_000, "the ceiling: 12 x the floor");
    assert_eq!(t(3), 777, "a module's own timeout");
    let forced = prep(Some(500));
    assert_eq!((0..4).map(|m| forced.timeout_ms(m)).collect::<Vec<_>>(), [500, 500, 500, 500], "--module-timeout wins");
    assert_eq!(prep(Some(0)).timeout_ms(1), 0, "0: no timeout");
}

#[test]
fn workers_are_named_after_the_module_they_load() {
    let pb = plan_of(vec![module("snd_hda_codec_realtek", 0, &[]), module("e1000", 0, &[(0, true)])]);
    let fake = Fake::new().leak();
    let d = run_plan(&pb, fake, 1);
    assert_eq!(d.status, 0);
    // 15 bytes at most (the kernel's task name).
    assert_eq!(d.fake.task_names(0), ["pm:snd_hda_code", "pm:e1000"]);
    // With two workers, one parks (idle, named so) while the other loads
    // both: it takes e1000 itself when snd_hda_codec_realtek is done.
    let fake = Fake::new().leak();
    fake.script("snd_hda_codec_realtek", Behaviour::Load(10 * MS));
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    let mut names: Vec<Vec<String>> = (0..2).map(|w| d.fake.task_names(w)).collect();
    names.sort();
    assert_eq!(names, [vec!["pm:idle".to_string()], vec!["pm:snd_hda_code".to_string(), "pm:e1000".to_string()]]);
}

#[test]
fn a_slow_load_under_its_timeout_is_not_stuck() {
    let pb = plan_of(vec![module("slow", 0, &[])]);
    let fake = Fake::new().leak();
    fake.script("slow", Behaviour::Load(900 * MS));
    let d = run_with(&pb, fake, Opts { module_timeout_ms: Some(1000), ..OPTS });
    assert_eq!(d.status, 0);
    assert_eq!(d.result("slow"), result::LOADED);
    assert_eq!(d.fake.spawns(), 1, "one module: one worker, no replacement");
}

#[test]
fn the_deadline_blocks_what_never_started() {
    let pb = plan_of(vec![module("long", 0, &[]), module("next", 0, &[(0, true)])]);
    let fake = Fake::new().leak();
    fake.script("long", Behaviour::Load(3000 * MS));
    let d = run_with(&pb, fake, Opts { deadline_ms: 1000, ..OPTS });
    assert_eq!(d.status, 1);
    assert_eq!(d.result("long"), result::STUCK, "still loading at the deadline");
    assert_eq!(d.result("next"), result::BLOCKED);
    assert_eq!((d.fake.time() - d.t0) / MS, 1000);
}

// --------------------------------------------------------- device waits

fn with_wait(path: &str, after: Option<u32>, timeout_ms: u32) -> PlanBuilder {
    let mut pb = plan_of(vec![module("drv", 0, &[]), module("user", 0, &[(0, true)])]);
    pb.waits.push(DeviceWaitSpec { path: path.into(), module: after, timeout_ms });
    pb
}

#[test]
fn a_device_wait_holds_dependents_until_the_node_appears() {
    let pb = with_wait("/dev/pm_node", Some(0), 2000);
    let fake = Fake::new().leak();
    fake.script("drv", Behaviour::Load(50 * MS)).appear_after("/dev/pm_node", "drv", 300 * MS);
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    assert_eq!(d.span("drv"), (0, 50));
    assert_eq!(d.span("user").0, 350, "user starts when /dev/pm_node appears, 300 ms after drv");
}

#[test]
fn a_sysfs_wait_is_seen_on_its_uevent() {
    let pb = with_wait("/sys/class/pm/ready", Some(0), 2000);
    let fake = Fake::new().leak();
    fake.appear_after("/sys/class/pm/ready", "drv", 123 * MS);
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    assert_eq!(d.span("user").0, 123);
}

#[test]
fn a_device_wait_that_times_out_skips_dependents() {
    let pb = with_wait("/dev/never", Some(0), 700);
    let fake = Fake::new().leak();
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 1);
    assert_eq!(d.result("drv"), result::LOADED);
    assert_eq!(d.result("user"), result::SKIPPED);
    assert!(!d.loaded("user"));
    assert_eq!((d.fake.time() - d.t0) / MS, 700);
}

#[test]
fn a_wait_before_success_ends_the_run_when_met() {
    let pb = with_wait("/dev/vd[a-z]", None, 5000);
    let fake = Fake::new().leak();
    fake.appear_at("/dev/vdb", T0 + 1234 * MS);
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    assert_eq!((d.fake.time() - d.t0) / MS, 1234, "the run ends the moment the glob matches");
}

// ---------------------------------------------- kernel command line, files

#[test]
fn command_line_parameters_follow_the_plan_options() {
    let mut pb = plan_of(vec![module("pm_params", 0, &[]), module("other", 0, &[])]);
    pb.modules[0].params = "level=7 tag=hello".into();
    let fake = Fake::new().leak();
    let d = run_with(&pb, fake, Opts { cmdline: b"console=ttyS0 pm-params.level=9 other.x=1 pm_params.tag=\"a b\"\n", ..OPTS });
    assert_eq!(d.status, 0);
    assert_eq!(d.call("pm_params").params, "level=7 tag=hello level=9 tag=\"a b\"");
    assert_eq!(d.call("other").params, "x=1");
    assert_eq!(d.call("pm_params").path, "/lib/modules/6.1.0-test/kernel/test/pm_params.ko");
}

#[test]
fn a_command_line_blacklist_skips_the_module_and_its_dependents() {
    let pb = plan_of(vec![module("floppy", 0, &[]), module("needs_floppy", 0, &[(0, true)]), module("fine", 0, &[])]);
    let fake = Fake::new().leak();
    let d = run_with(&pb, fake, Opts { cmdline: b"modprobe.blacklist=floppy", ..OPTS });
    assert_eq!(d.status, 1);
    assert_eq!(d.result("floppy"), result::SKIPPED);
    assert_eq!(d.result("needs_floppy"), result::SKIPPED);
    assert_eq!(d.names(), ["fine"]);
}

#[test]
fn a_blacklisted_module_stays_skipped_when_a_blacklisted_soft_dependency_is_skipped_first() {
    // Found by fuzzing the plan reader and a run of each plan: skipping m0
    // released m1, its soft dependent, into the ready queue before m1's
    // own blacklisting was looked at, and m1 was loaded.
    let pb = plan_of(vec![module("m0", 0, &[]), module("m1", 0, &[(0, false)]), module("m2", 0, &[(1, false)])]);
    let fake = Fake::new().leak();
    let d = run_with(&pb, fake, Opts { cmdline: b"modprobe.blacklist=m1 modprobe.blacklist=m0", ..OPTS });
    assert_eq!(d.result("m0"), result::SKIPPED);
    assert_eq!(d.result("m1"), result::SKIPPED);
    assert_eq!(d.names(), ["m2"], "only the module nothing blacklists loads");
}

#[test]
fn compressed_modules_load_only_where_the_kernel_decompresses() {
    let mut pb = plan_of(vec![module("xzmod", 0, &[]), module("zstmod", 0, &[])]);
    pb.modules[0].path = Some("kernel/test/xzmod.ko.xz".into());
    pb.modules[1].path = Some("kernel/test/zstmod.ko.zst".into());
    let fake = Fake::new().leak();
    fake.file("/sys/module/compression", b"xz\n");
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 1);
    assert_eq!(d.call("xzmod").flags, super::kernel::MODULE_INIT_COMPRESSED_FILE);
    assert_eq!(d.result("zstmod"), result::FAILED);
    assert_eq!(super::state::at(d.s.st.errno, 1).load(core::sync::atomic::Ordering::Relaxed), 95);
    assert!(!d.loaded("zstmod"), "refused before any system call");
}

#[test]
fn a_plan_for_another_kernel_is_refused() {
    let pb = plan_of(vec![module("a", 0, &[])]);
    let bytes: &'static [u8] = Vec::leak(pb.build().expect("plan builds"));
    let plan = Plan::parse(bytes).expect("parses");
    let fake = Fake::new().leak();
    fake.release_name("6.12.0-other");
    let setup = |force| Setup { plan_path: b"p", force, module_dir: None, module_timeout_ms: None, cmdline: CmdlineBuf::empty() };
    assert!(run::prepare(plan, fake, setup(false)).is_err());
    let s = run::prepare(plan, fake, setup(true)).expect("--force takes it");
    assert_eq!(&s.module_dir[..], b"/lib/modules/6.1.0-test", "module files of the plan's kernel");
}

// ----------------------------------------------------------- workers

#[test]
fn fewer_workers_than_asked_still_load_everything() {
    let pb = plan_of((0..6).map(|i| module(&format!("m{i}"), 0, &[])).collect());
    let fake = Fake::new().leak();
    fake.spawn_limit(1);
    for i in 0..6 {
        fake.script(&format!("m{i}"), Behaviour::Load(10 * MS));
    }
    let d = run_plan(&pb, fake, 4);
    assert_eq!(d.status, 0);
    assert_eq!(d.fake.spawns(), 1);
    assert_eq!(d.fake.calls().len(), 6);
    assert_eq!((d.fake.time() - d.t0) / MS, 60, "one worker: one after another");
}

#[test]
fn with_no_worker_at_all_the_main_task_loads_one_at_a_time() {
    let pb = with_wait("/dev/pm_node", Some(0), 2000);
    let fake = Fake::new().leak();
    fake.spawn_limit(0).script("drv", Behaviour::Load(50 * MS)).script("user", Behaviour::Load(10 * MS));
    fake.appear_after("/dev/pm_node", "drv", 100 * MS);
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    assert_eq!(d.fake.spawns(), 0);
    assert_eq!(d.names(), ["drv", "user"]);
    assert_eq!(d.span("drv"), (0, 50));
    assert_eq!(d.span("user"), (150, 160), "its device wait still held it back");
}

#[test]
fn without_watches_device_waits_are_looked_at_on_a_back_off() {
    let pb = with_wait("/dev/pm_node", Some(0), 2000);
    let fake = Fake::new().leak();
    fake.no_watches().appear_after("/dev/pm_node", "drv", 300 * MS);
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    let (start, _) = d.span("user");
    // Looked at again at 5, 15, 35, 75, then every 50 ms (5 ms doubling to
    // at most 50 ms): 325 ms is the first look after 300 ms.
    assert_eq!(start, 325, "found on the back-off, not at the 2 s timeout");
}

#[test]
fn at_the_deadline_messages_go_to_the_kernel_log() {
    let pb = plan_of(vec![module("hangs", 0, &[])]);
    let fake = Fake::new().leak();
    fake.script("hangs", Behaviour::Hang);
    let d = run_with(&pb, fake, Opts { deadline_ms: 500, ..OPTS });
    assert_eq!(d.status, 1);
    assert!(d.fake.logged_to_kmsg());
    let calm = Fake::new().leak();
    let d = run_plan(&plan_of(vec![module("fine", 0, &[])]), calm, 1);
    assert_eq!(d.status, 0);
    assert!(!d.fake.logged_to_kmsg(), "only at the deadline");
}

#[test]
fn the_default_worker_count_is_eight_times_the_cpus() {
    let pb = plan_of((0..40).map(|i| module(&format!("m{i}"), 0, &[])).collect());
    let fake = Fake::new().leak();
    fake.cpus(3);
    let bytes: &'static [u8] = Vec::leak(pb.build().expect("plan builds"));
    let plan = Plan::parse(bytes).expect("parses");
    let setup = Setup { plan_path: b"p", force: true, module_dir: None, module_timeout_ms: None, cmdline: CmdlineBuf::empty() };
    let s: &'static Sched = std::boxed::Box::leak(std::boxed::Box::new(run::prepare(plan, fake, setup).expect("prepare")));
    let r = Run { wanted: &[], blacklist: true, jobs: None, deadline_ms: None, quiet: true, summary: false, coldplug: None, hook: None, trace: None, unpack: false };
    assert_eq!(run::execute(s, fake.time(), r), 0);
    assert_eq!(fake.spawns(), 24);
}

// ------------------------------------------------- kmod's configuration

#[test]
fn a_disabled_module_is_not_loaded_and_its_dependents_go_on() {
    use crate::plan::module_flags::DISABLED;
    let mut pb = plan_of(vec![module("pcspkr", 0, &[]), module("needs_it", 0, &[(0, true)])]);
    pb.modules[0].flags |= DISABLED;
    let fake = Fake::new().leak();
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0, "disabled on purpose: not a failure");
    assert_eq!(d.result("pcspkr"), result::DISABLED);
    assert_eq!(d.names(), ["needs_it"], "as kmod: /bin/true succeeded, the dependent is tried");
}

/// x has a `post:` soft dependency p that is in the plan only for it; p's
/// own dependency d is there only for p (edges marked post too).
fn post_plan() -> PlanBuilder {
    use crate::plan::module_flags::POST_ONLY;
    let mut pb = plan_of(vec![module("x", 0, &[]), module("d", 0, &[(0, false)]), module("p", 0, &[(0, false), (1, true)])]);
    pb.modules[1].post_deps = vec![0];
    pb.modules[1].flags |= POST_ONLY;
    pb.modules[2].post_deps = vec![0];
    pb.modules[2].flags |= POST_ONLY;
    pb
}

#[test]
fn post_soft_dependencies_of_a_failed_module_are_not_loaded() {
    let fake = Fake::new().leak();
    fake.script("x", Behaviour::Fail(19, 0));
    let d = run_plan(&post_plan(), fake, 2);
    assert_eq!(d.result("x"), result::FAILED);
    assert_eq!(d.result("d"), result::SKIPPED);
    assert_eq!(d.result("p"), result::SKIPPED);
    assert_eq!(d.names(), ["x"]);
    let ok = Fake::new().leak();
    let d = run_plan(&post_plan(), ok, 2);
    assert_eq!(d.status, 0);
    assert_eq!(d.names(), ["x", "d", "p"], "loaded after x when x loads");
}

#[test]
fn a_post_dependency_needed_otherwise_still_loads() {
    // p is also x2's post: soft dependency; x2 loads, so p does.
    use crate::plan::module_flags::POST_ONLY;
    let mut pb = plan_of(vec![module("x", 0, &[]), module("x2", 0, &[]), module("p", 0, &[(0, false), (1, false)])]);
    pb.modules[2].post_deps = vec![0, 1];
    pb.modules[2].flags |= POST_ONLY;
    let fake = Fake::new().leak();
    fake.script("x", Behaviour::Fail(19, 0));
    let d = run_plan(&pb, fake, 1);
    assert_eq!(d.result("p"), result::LOADED);
}

#[test]
fn root_paths_are_opened_from_the_root() {
    use crate::plan::module_flags::ROOT_PATH;
    let mut pb = plan_of(vec![module("ext", 0, &[]), module("inner", 0, &[])]);
    pb.modules[0].path = Some("lib/modules/external/ext.ko".into());
    pb.modules[0].flags |= ROOT_PATH;
    let fake = Fake::new().leak();
    let d = run_plan(&pb, fake, 1);
    assert_eq!(d.status, 0);
    assert_eq!(d.call("ext").path, "/lib/modules/external/ext.ko");
    assert_eq!(d.call("inner").path, "/lib/modules/6.1.0-test/kernel/test/inner.ko");
}

#[test]
fn the_modprobe_lookup_follows_kmod() {
    use super::lookup::{resolve, Lookup};
    use crate::cmdline::Cmdline;
    use crate::plan::module_flags::BLACKLISTED;
    let mut pb = plan_of(vec![
        module("snd_pcsp", 0, &[]),
        module("pcspkr", 0, &[]),
        module("crc32c_generic", 0, &[]),
        module("dm_mod", 0, &[]),
        module("via_config", 0, &[]),
    ]);
    pb.modules[1].flags |= BLACKLISTED;
    // modprobe.d aliases first (config_alias_count of them), then the kernel's.
    pb.aliases = vec![
        ("my_sound".into(), 4),
        ("platform:pcspkr".into(), 1),
        ("platform:pcspkr".into(), 0),
        ("symbol:crc32c".into(), 2),
        ("crc32c".into(), 2),
        ("dm_mod".into(), 4),
    ];
    pb.config_alias_count = 1;
    let bytes: &'static [u8] = Vec::leak(pb.build().expect("plan builds"));
    let plan = Plan::parse(bytes).expect("parses");
    let names = |q: &str, cl: &[u8]| {
        let mut w = Vec::new();
        let r = resolve(&plan, Cmdline(cl), q.as_bytes(), &mut |m| w.push(m));
        (r, w.iter().map(|&m| String::from_utf8_lossy(plan.module(m).map_or(b"?", |x| x.name())).into_owned()).collect::<Vec<_>>())
    };
    assert_eq!(names("my-sound", b""), (Lookup::Found, vec!["via_config".into()]), "a modprobe.d alias, - and _ alike");
    assert_eq!(names("platform:pcspkr", b""), (Lookup::Found, vec!["snd_pcsp".into()]), "the blacklisted module is left out");
    assert_eq!(names("pcspkr", b""), (Lookup::Found, vec!["pcspkr".into()]), "named: the blacklist does not apply");
    assert_eq!(names("platform:pcspkr", b"modprobe.blacklist=snd_pcsp"), (Lookup::Blacklisted, vec![]));
    assert_eq!(names("symbol:crc32c", b""), (Lookup::Found, vec!["crc32c_generic".into()]));
    assert_eq!(names("dm_mod", b""), (Lookup::Found, vec!["dm_mod".into()]), "a module name before the kernel's aliases");
    assert_eq!(names("symbol:nothing", b""), (Lookup::Unknown, vec![]));
    assert_eq!(names("crc32c", b""), (Lookup::Found, vec!["crc32c_generic".into()]), "not through the symbol: alias");
}

// ----------------------------------------------------------------- coldplug

fn coldplug_plan() -> PlanBuilder {
    let mut pb = plan_of(vec![
        module("virtio_pci", 0, &[]),
        module("virtio_blk", 0, &[(0, true)]),
        module("e1000e", 0, &[]),
        module("snd_hda_intel", 0, &[]),
        module("nouveau", 0, &[]),
        module("sd_mod", 0, &[]),
    ]);
    pb.aliases = vec![
        ("pci:v00001AF4d*sv*sd*bc*sc*i*".into(), 0),
        ("virtio:d00000002v*".into(), 1),
        ("pci:v00008086d000010D3sv*sd*bc*sc*i*".into(), 2),
        ("pci:v00008086d00002668sv*sd*bc*sc*i*".into(), 3),
        ("pci:v000010DEd*sv*sd*bc03sc*i00*".into(), 4),
        // Stored normalised, as the compiler writes them (- is _).
        ("scsi:t_0x00*".into(), 5),
    ];
    pb
}

/// The run context of `pb` on `fake` with kernel command line `cmdline`.
fn prepared(pb: &PlanBuilder, fake: &'static Fake, cmdline: &[u8]) -> &'static Sched {
    let bytes: &'static [u8] = Vec::leak(pb.build().expect("plan builds"));
    let plan = Plan::parse(bytes).expect("plan parses");
    let setup = Setup {
        plan_path: b"test.plan",
        force: true,
        module_dir: None,
        module_timeout_ms: None,
        cmdline: CmdlineBuf::read_with(|b| {
            b[..cmdline.len()].copy_from_slice(cmdline);
            cmdline.len()
        }),
    };
    std::boxed::Box::leak(std::boxed::Box::new(run::prepare(plan, fake, setup).expect("prepare")))
}

fn run_coldplug(pb: &PlanBuilder, fake: &'static Fake, cmdline: &'static [u8]) -> Done {
    let s = prepared(pb, fake, cmdline);
    let t0 = fake.time();
    let r = Run { wanted: &[], blacklist: false, jobs: Some(2), deadline_ms: Some(30_000), quiet: true, summary: false, coldplug: Some(200), hook: None, trace: None, unpack: false };
    let status = run::execute(s, t0, r);
    Done { fake, s, status, t0 }
}

#[test]
fn coldplug_loads_what_the_devices_present_and_appearing_need() {
    let fake = Fake::new().leak();
    fake.device_at("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", T0)
        .device_at("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", T0)
        .device_at("pci:v00008086d00007000sv00000000sd00000000bc06sc01i00", T0) // no module
        // virtio_pci's child, announced by uevent 30 ms after it loaded
        .device_after("virtio:d00000002v00001AF4", "virtio_pci", 30 * MS)
        .script("virtio_pci", Behaviour::Load(40 * MS))
        .script("virtio_blk", Behaviour::Load(20 * MS))
        .script("e1000e", Behaviour::Load(50 * MS));
    let d = run_coldplug(&coldplug_plan(), fake, b"");
    assert_eq!(d.status, 0);
    let mut names = d.names();
    names.sort();
    assert_eq!(names, ["e1000e", "virtio_blk", "virtio_pci"], "nothing for absent hardware");
    assert_eq!(d.span("virtio_blk").0, 70, "loaded when its device's uevent came");
    // Settled 200 ms after the last load (virtio_blk, 90 ms).
    assert_eq!((d.fake.time() - d.t0) / MS, 290);
}

#[test]
fn coldplug_follows_blacklists_and_loads_the_command_lines_modules() {
    let fake = Fake::new().leak();
    fake.device_at("pci:v000010DEd00001234sv00000000sd00000000bc03sc00i00", T0)
        .device_at("pci:v00008086d00002668sv00000000sd00000000bc04sc03i00", T0);
    let d = run_coldplug(&coldplug_plan(), fake, b"rd.driver.blacklist=nouveau modules_load=sd_mod");
    assert_eq!(d.status, 0);
    let mut names = d.names();
    names.sort();
    assert_eq!(names, ["sd_mod", "snd_hda_intel"]);
}

#[test]
fn coldplug_rescans_when_uevents_were_lost() {
    // The socket overflows: the e1000e device's uevent is lost, the scan
    // after ENOBUFS finds it in /sys.
    let fake = Fake::new().leak();
    fake.device_after("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", "virtio_pci", 10 * MS)
        .device_at("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", T0)
        .script("virtio_pci", Behaviour::Load(40 * MS))
        .lose_uevents();
    let d = run_coldplug(&coldplug_plan(), fake, b"");
    assert_eq!(d.status, 0);
    assert!(d.loaded("e1000e"), "{:?}", d.names());
}

#[test]
fn coldplug_wants_each_module_once_and_resolves_each_modalias_once() {
    let fake = Fake::new().leak();
    for i in 0..50 {
        // Fifty disks: one sd_mod.
        fake.device_at("scsi:t-0x00", T0 + i * MS);
    }
    let d = run_coldplug(&coldplug_plan(), fake, b"");
    assert_eq!(d.status, 0);
    assert_eq!(d.names(), ["sd_mod"]);
}

#[test]
fn coldplug_looks_modaliases_up_by_module_name_as_kmod_does() {
    // kmod's lookup takes a module of that name after the modprobe.d
    // aliases. coldplug skips that step for modaliases with a `:` unless a
    // module's name has one too.
    let fake = Fake::new().leak();
    fake.device_at("e1000e", T0);
    let d = run_coldplug(&coldplug_plan(), fake, b"");
    assert_eq!(d.status, 0);
    assert_eq!(d.names(), ["e1000e"]);
    let mut pb = coldplug_plan();
    pb.modules.push(module("odd:name", 0, &[]));
    let fake = Fake::new().leak();
    fake.device_at("odd:name", T0);
    let d = run_coldplug(&pb, fake, b"");
    assert_eq!(d.status, 0);
    assert_eq!(d.names(), ["odd:name"]);
}

#[test]
fn coldplug_matches_a_cpu_modalias_of_every_feature_bit() {
    // An x86 CPU's modalias lists its feature bits: ~600 bytes in QEMU
    // with -cpu max, longer than any bus's. The CPU modules match it.
    let mut ma = String::from("cpu:type:x86,ven0002fam000Fmod006B:feature:");
    for bit in 0..0xA0 {
        ma.push_str(&format!(",{bit:04X}"));
    }
    assert!(ma.len() > 600);
    let mut pb = coldplug_plan();
    pb.modules.push(module("aesni_intel", 0, &[]));
    pb.aliases.push(("cpu:type:x86,ven*fam*mod*:feature:*0099*".into(), 6));
    let fake = Fake::new().leak();
    fake.device_at(&ma, T0);
    let d = run_coldplug(&pb, fake, b"");
    assert_eq!(d.status, 0);
    assert_eq!(d.names(), ["aesni_intel"]);
}

// ------------------------------------------------- the hand-over to the root

/// A file system image parmod's probes take for ext4 with this UUID.
fn ext4_image(uuid: [u8; 16]) -> Vec<u8> {
    let mut img = vec![0u8; 4096];
    let sb = 1024;
    img[sb + 0x38..sb + 0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
    // incompat: filetype, extents (beyond ext3: ext4).
    img[sb + 0x60..sb + 0x64].copy_from_slice(&0x42u32.to_le_bytes());
    img[sb + 0x68..sb + 0x78].copy_from_slice(&uuid);
    img[sb + 0x78..sb + 0x7e].copy_from_slice(b"rootfs");
    img
}

/// An MBR disk with signature 0x1234abcd and one Linux partition.
fn mbr_disk() -> Vec<u8> {
    let mut d = vec![0u8; 8 << 20];
    d[440..444].copy_from_slice(&0x1234_abcdu32.to_le_bytes());
    let e = 446;
    d[e + 4] = 0x83;
    d[e + 8..e + 12].copy_from_slice(&2048u32.to_le_bytes());
    d[e + 12..e + 16].copy_from_slice(&8192u32.to_le_bytes());
    d[510] = 0x55;
    d[511] = 0xaa;
    d
}

const ROOT_UUID: [u8; 16] = [0x3f, 0x1a, 0x2b, 0x4c, 0x5d, 0x6e, 0x47, 0x80, 0x91, 0xa2, 0xb3, 0xc4, 0xd5, 0xe6, 0xf7, 0x08];

/// Run a plan (ext4 and what it needs) with the root wait of `cmdline`.
fn run_root(fake: &'static Fake, cmdline: &'static [u8]) -> (Done, super::root::RootWait<'static>) {
    use crate::blockid::RootSpec;
    let pb = plan_of(vec![module("crc16", 0, &[]), module("ext4", 0, &[(0, true)]), module("virtio_blk", 0, &[])]);
    let s = prepared(&pb, fake, cmdline);
    let spec = RootSpec::parse(s.cmdline.view()).expect("root= parses");
    let t0 = fake.time();
    let mut wait = super::root::RootWait::new(spec, t0);
    let r = Run {
        wanted: &[],
        blacklist: true,
        jobs: Some(2),
        deadline_ms: Some(60_000),
        quiet: true,
        summary: false,
        coldplug: None,
        hook: Some(&mut wait),
        trace: None,
        unpack: false,
    };
    let status = run::execute(s, t0, r);
    (Done { fake, s, status, t0 }, wait)
}

#[test]
fn the_root_found_by_uuid_is_mounted_and_entered() {
    let fake = Fake::new().leak();
    fake.block_device("vda", vec![0; 8192], T0)
        .block_device("vdb", ext4_image(ROOT_UUID), T0 + 300 * MS)
        .script("ext4", Behaviour::Load(20 * MS));
    let (d, wait) = run_root(fake, b"root=UUID=3F1A2B4C-5D6E-4780-91A2-B3C4D5E6F708 rw");
    assert_eq!(d.status, 0);
    let (node, fs) = wait.found.expect("found");
    assert_eq!(node.path(), c"/dev/vdb");
    assert_eq!(fs, Some(crate::blockid::FsType::Ext4));
    assert_eq!((d.fake.time() - d.t0) / MS, 300, "the run held until the root appeared (ext4 loaded meanwhile)");
    let env = [c"HOME=/", c"TERM=linux"];
    let e = super::root::switch_root(fake, &wait.spec, &node, fs, &env);
    assert_eq!(e, rustix::io::Errno::NOEXEC, "the fake's exec");
    assert_eq!(
        d.fake.actions(),
        [
            "mkdir /root",
            "mount /dev/vdb /root ext4 0x0 ",
            "move /dev /root/dev",
            "move /proc /root/proc",
            "move /sys /root/sys",
            "move /run /root/run",
            "remove-initramfs keep /root",
            "enter /root",
            "exec /sbin/init [/sbin/init] [HOME=/ TERM=linux]",
        ]
    );
}

#[test]
fn the_root_found_by_partuuid_waits_for_its_partition() {
    let fake = Fake::new().leak();
    fake.block_device("vda", mbr_disk(), T0 + 100 * MS).block_device("vda1", ext4_image(ROOT_UUID), T0 + 150 * MS);
    let (d, wait) = run_root(fake, b"root=PARTUUID=1234abcd-01 rootflags=noatime,data=ordered");
    assert_eq!(d.status, 0);
    let (node, fs) = wait.found.expect("found");
    assert_eq!(node.path(), c"/dev/vda1");
    assert_eq!((d.fake.time() - d.t0) / MS, 150);
    let _ = super::root::switch_root(fake, &wait.spec, &node, fs, &[]);
    // ro (the default) and noatime as flags, data=ordered for ext4.
    assert!(d.fake.actions().contains(&"mount /dev/vda1 /root ext4 0x401 data=ordered".to_string()), "{:?}", d.fake.actions());
}

#[test]
fn a_root_node_that_cannot_be_opened_yet_is_read_again_without_an_event() {
    // A new partition's node comes (and with it the only inotify event) a
    // moment before the partition can be opened.
    for cmdline in [&b"root=LABEL=rootfs"[..], b"root=PARTUUID=1234abcd-01"] {
        let fake = Fake::new().leak();
        fake.block_device("vda", mbr_disk(), T0).block_device("vda1", ext4_image(ROOT_UUID), T0 + 100 * MS).openable_at("vda1", T0 + 130 * MS);
        let (d, wait) = run_root(fake, cmdline);
        let (node, fs) = wait.found.expect("found");
        assert_eq!((node.path(), fs), (c"/dev/vda1", Some(crate::blockid::FsType::Ext4)), "{}", String::from_utf8_lossy(cmdline));
        let waited = (d.fake.time() - d.t0) / MS;
        assert!((130..=240).contains(&waited), "found {waited} ms after the start, the partition was readable at 130 ms");
    }
}

#[test]
fn a_root_found_while_its_file_system_loads_ends_the_run_with_that_load() {
    let fake = Fake::new().leak();
    fake.block_device("vdb", ext4_image(ROOT_UUID), T0 + 50 * MS).script("ext4", Behaviour::Load(400 * MS));
    let (d, wait) = run_root(fake, b"root=UUID=3f1a2b4c-5d6e-4780-91a2-b3c4d5e6f708");
    assert!(wait.found.is_some());
    assert_eq!(d.status, 0);
    assert_eq!((d.fake.time() - d.t0) / MS, 400, "the run ended when ext4 was loaded, not at a later timer");
}

#[test]
fn a_root_that_never_appears_ends_the_wait_at_rootwait() {
    let fake = Fake::new().leak();
    fake.block_device("vda", vec![0; 8192], T0);
    let (d, wait) = run_root(fake, b"root=LABEL=nowhere rootwait=2");
    assert!(wait.found.is_none());
    assert_eq!((d.fake.time() - d.t0) / MS, 2000);
    assert_eq!(d.status, 0, "the modules loaded; the missing root is init's to report");
}

#[test]
fn mount_and_init_failures_come_back_to_init() {
    let fake = Fake::new().leak();
    fake.block_device("vdb", ext4_image(ROOT_UUID), T0);
    let (_, wait) = run_root(fake, b"root=/dev/vdb rootfstype=broken");
    let (node, fs) = wait.found.expect("found");
    assert_eq!(super::root::switch_root(fake, &wait.spec, &node, fs, &[]), rustix::io::Errno::INVAL);
    assert!(!fake.actions().iter().any(|a| a.starts_with("move")), "nothing moved after a failed mount");
    let fake = Fake::new().leak();
    fake.block_device("vdb", ext4_image(ROOT_UUID), T0);
    let (_, wait) = run_root(fake, b"root=/dev/vdb init=/no/such/init");
    let (node, fs) = wait.found.expect("found");
    assert_eq!(super::root::switch_root(fake, &wait.spec, &node, fs, &[]), rustix::io::Errno::NOENT);
    assert!(!fake.actions().iter().any(|a| a.starts_with("remove")), "the initramfs stays when the root has no init");
}

#[test]
fn root_parameters_built_into_the_image_are_defaults_the_command_line_overrides() {
    use crate::blockid::{Root, RootSpec};
    use crate::cmdline::Cmdline;
    let fake = Fake::new().leak();
    fake.file("/etc/parmod.cmdline", b"root=LABEL=pmroot\trootflags=noatime\ninit=/sbin/baked\n");
    let mut buf = [0u8; 6000];
    let line = Cmdline(super::init::root_line(fake, b"quiet init=/sbin/given", &mut buf));
    let spec = RootSpec::parse(line).expect("parses");
    assert!(matches!(spec.root, Root::Label(k) if k.raw == b"pmroot"), "{:?}", String::from_utf8_lossy(line.0));
    assert_eq!((spec.flags, spec.init), (Some(&b"noatime"[..]), Some(&b"/sbin/given"[..])));
    let line = Cmdline(super::init::root_line(fake, b"root=/dev/vdb", &mut buf));
    assert!(matches!(RootSpec::parse(line).expect("parses").root, Root::Path(b"/dev/vdb")));
    // No file: the command line alone.
    let bare = Fake::new().leak();
    let line = Cmdline(super::init::root_line(bare, b"ro", &mut buf));
    assert!(line.get(b"root").is_none());
}

#[test]
fn a_post_dependency_skipped_during_a_skip_does_not_cut_the_skip_short() {
    // Found by fuzzing runs of built plans: skipping blacklisted m0 skipped
    // m1 and m3; m3's skip released pm, post-only behind m3, whose own skip
    // reused the walk's stack under m1's entry, so m1's hard dependent m2 was
    // never skipped and the run waited for it until the deadline.
    use crate::plan::module_flags::POST_ONLY;
    let mut pb = plan_of(vec![
        module("m0", 0, &[]),
        module("m1", 0, &[(0, true)]),
        module("m2", 0, &[(0, false), (1, true)]),
        module("m3", 0, &[(0, true)]),
        module("pm", 0, &[(3, false)]),
    ]);
    pb.modules[4].post_deps = vec![3];
    pb.modules[4].flags |= POST_ONLY;
    let fake = Fake::new().leak();
    let d = run_with(&pb, fake, Opts { cmdline: b"modprobe.blacklist=m0", ..OPTS });
    for m in ["m0", "m1", "m2", "m3", "pm"] {
        assert_eq!(d.result(m), result::SKIPPED, "{m}");
    }
    assert!(d.names().is_empty(), "nothing loads: {:?}", d.names());
    assert_eq!(d.status, 1, "skipped modules are not loaded: status 1");
}

// ---- the unpacker (runtime::unpack) ----

fn xz_module(name: &str, deps: &[(u32, bool)]) -> ModuleSpec {
    ModuleSpec { path: Some(format!("kernel/test/{name}.ko.xz")), ..module(name, 0, deps) }
}

fn ctl(d: &Done, word: usize) -> u32 {
    super::state::at(d.s.st.ctl, word).load(core::sync::atomic::Ordering::SeqCst)
}

fn unpacking_fake(budget: u64) -> &'static Fake {
    let fake = Fake::new().leak();
    fake.file("/sys/module/compression", b"xz\n");
    fake.unpacking(budget);
    fake
}

#[test]
fn modules_unpacked_while_others_load_load_from_their_images() {
    use super::kernel::fake::Unpack;
    use super::state::{UNPACKED, UNPACK_KIB, UNPACK_USED};
    // One worker busy with `big` for 100 ms; the unpacker makes a's and
    // b's images meanwhile, the run's most urgent first.
    let pb = plan_of(vec![module("big", 0, &[]), xz_module("a", &[(0, false)]), xz_module("b", &[(0, false)])]);
    let fake = unpacking_fake(1 << 20);
    fake.script("big", Behaviour::Load(100 * MS));
    fake.unpack_script("a", Unpack::Image(10 * MS)).unpack_script("b", Unpack::Image(20 * MS));
    let d = run_plan(&pb, fake, 1);
    assert_eq!(d.status, 0);
    let u = fake.unpacks();
    let spans: Vec<(String, u64, u64, bool)> = u.iter().map(|r| (r.name.clone(), (r.start - d.t0) / MS, (r.end - d.t0) / MS, r.image)).collect();
    assert_eq!(spans, [("a".to_string(), 0, 10, true), ("b".to_string(), 10, 30, true)]);
    assert_eq!(u[0].path, "/lib/modules/6.1.0-test/kernel/test/a.ko.xz");
    for name in ["a", "b"] {
        let c = d.call(name);
        assert_eq!(c.image.as_deref(), Some(format!("image:{name}").as_bytes()), "{name} from its image");
        assert_eq!(c.flags, super::kernel::MODULE_INIT_COMPRESSED_FILE, "the file's flags stay, for a kernel that refuses images");
        assert!(c.start >= d.call("big").end.unwrap(), "{name} after its dependency");
    }
    assert_eq!((ctl(&d, UNPACKED), ctl(&d, UNPACK_USED), ctl(&d, UNPACK_KIB)), (2, 2, 0), "made, used, memory left");
    assert!(fake.task_names(super::state::UNPACKER).iter().any(|n| n == "pm:unpack"));
}

#[test]
fn a_module_taken_while_it_is_unpacked_loads_from_its_file() {
    use super::kernel::fake::Unpack;
    use super::state::{UNPACKED, UNPACK_KIB, UNPACK_USED};
    let pb = plan_of(vec![module("big", 0, &[]), xz_module("a", &[(0, false)])]);
    let fake = unpacking_fake(1 << 20);
    fake.script("big", Behaviour::Load(30 * MS));
    fake.unpack_script("a", Unpack::Image(100 * MS));
    let d = run_plan(&pb, fake, 1);
    assert_eq!(d.status, 0);
    let c = d.call("a");
    assert_eq!(((c.start - d.t0) / MS, c.image.is_none()), (30, true), "a at once, from its file");
    assert_eq!(c.flags, super::kernel::MODULE_INIT_COMPRESSED_FILE);
    let u = fake.unpacks();
    assert_eq!(u.len(), 1);
    assert!(!u[0].image, "the unpack is given up");
    assert_eq!((ctl(&d, UNPACKED), ctl(&d, UNPACK_USED), ctl(&d, UNPACK_KIB)), (0, 0, 0));
}

#[test]
fn a_module_that_does_not_unpack_loads_from_its_file() {
    use super::kernel::fake::Unpack;
    let pb = plan_of(vec![module("big", 0, &[]), xz_module("a", &[(0, false)])]);
    let fake = unpacking_fake(1 << 20);
    fake.script("big", Behaviour::Load(50 * MS));
    fake.unpack_script("a", Unpack::Fail(5 * MS));
    let d = run_plan(&pb, fake, 1);
    assert_eq!(d.status, 0);
    assert!(d.call("a").image.is_none());
    assert_eq!(fake.unpacks().len(), 1, "tried once");
}

#[test]
fn images_wait_for_memory_from_the_budget() {
    use super::kernel::fake::Unpack;
    // A budget of one image (1 KiB): b's unpack waits until a's load has
    // given a's image back.
    let pb = plan_of(vec![
        module("big", 0, &[]),
        module("x", 0, &[]),
        xz_module("a", &[(0, false)]),
        xz_module("b", &[(0, false), (1, false)]),
    ]);
    let fake = unpacking_fake(1024);
    fake.script("big", Behaviour::Load(100 * MS)).script("x", Behaviour::Load(200 * MS)).script("a", Behaviour::Load(10 * MS));
    fake.unpack_script("a", Unpack::Image(10 * MS)).unpack_script("b", Unpack::Image(10 * MS));
    let d = run_plan(&pb, fake, 2);
    assert_eq!(d.status, 0);
    let u = fake.unpacks();
    assert_eq!(u.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let a_end = d.call("a").end.unwrap();
    assert_eq!((u[1].start - d.t0) / MS, (a_end - d.t0) / MS, "b unpacked once a's image was given back");
    assert!(d.call("a").image.is_some() && d.call("b").image.is_some());
}

#[test]
fn no_unpacker_without_the_idle_class_a_budget_or_a_decompressing_kernel() {
    let pb = plan_of(vec![module("big", 0, &[]), xz_module("a", &[(0, false)])]);
    // The idle class refused: the unpacker ends at once (it would compete
    // with the loads).
    let fake = unpacking_fake(1 << 20);
    fake.refuse_idle();
    fake.script("big", Behaviour::Load(50 * MS));
    let d = run_plan(&pb, fake, 1);
    assert_eq!((d.status, fake.unpacks().len(), fake.spawns()), (0, 0, 2));
    assert!(d.call("a").image.is_none());
    // No budget: not started.
    let fake = unpacking_fake(0);
    fake.script("big", Behaviour::Load(50 * MS));
    let d = run_plan(&pb, fake, 1);
    assert_eq!((d.status, fake.unpacks().len(), fake.spawns()), (0, 0, 1));
    // A kernel that does not decompress xz: the load fails as before.
    let fake = Fake::new().leak();
    fake.unpacking(1 << 20);
    let d = run_plan(&pb, fake, 1);
    assert_eq!((d.result("a"), fake.unpacks().len(), fake.spawns()), (result::FAILED, 0, 1));
    // Uncompressed modules only: not started.
    let plain = plan_of(vec![module("big", 0, &[]), module("a", 0, &[(0, false)])]);
    let fake = unpacking_fake(1 << 20);
    let d = run_plan(&plain, fake, 1);
    assert_eq!((d.status, fake.spawns()), (0, 1));
}
