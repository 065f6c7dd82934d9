//! Plans: what must hold of every plan the reader accepts, and a run of it
//! on the runtime's fake kernel (virtual time, scripted loads) that must
//! end, in an order its dependencies allow.

use std::collections::HashMap;

use parmod::cmdline::CmdlineBuf;
use parmod::plan::trace::result;
use parmod::plan::{glob_match, is_safe_relative_path, is_token, literal_prefix, Compression, Edge, Plan};
use parmod::runtime::kernel::fake::{Behaviour, Fake};
use parmod::runtime::report::outcome;
use parmod::runtime::run::{self, Run, Setup};
use parmod::runtime::sched::Sched;

use crate::input::Bytes;

/// Every property of an accepted plan that its users rely on: indices in
/// range, dependencies before their dependents (so the record order is a
/// load order and the graph is acyclic), dependents the exact mirror of
/// dependencies, device waits and their modules pointing at each other,
/// the kernel's aliases sorted by literal prefix, and the prefix search
/// over them finding exactly what a linear glob scan finds.
pub fn check_plan(p: &Plan<'_>) {
    let n = p.module_count();
    assert!(is_token(p.kernel_release()), "kernel release {:?}", p.kernel_release());
    let mut deps_total = 0usize;
    let mut dependents_total = 0usize;
    for m in p.modules() {
        let i = m.index();
        assert!(is_token(m.name()), "module {i}: name {:?}", m.name());
        assert!(!m.params().contains(&0), "module {i}: NUL in its parameters");
        assert_eq!(m.params_with_nul().last(), Some(&0));
        match m.path() {
            None => assert!(m.is_builtin() || m.is_disabled(), "module {i}: no path"),
            Some(path) => {
                assert!(!m.is_builtin());
                assert!(is_safe_relative_path(path), "module {i}: path {path:?}");
                assert_eq!(Compression::from_path(path), Some(m.compression()), "module {i}: compression");
                assert_eq!(m.path_with_nul().map(|p| p.len()), Some(path.len() + 1));
            }
        }
        assert!(!(m.is_builtin() && m.is_disabled()), "module {i}: built in and disabled");
        let mut prev: Option<u32> = None;
        for e in m.deps() {
            assert!(e.module < i, "module {i}: dependency {} is not before it", e.module);
            assert!(prev.is_none_or(|p| p < e.module), "module {i}: dependencies out of order");
            assert!(!(e.hard && e.post), "module {i}: a hard post edge");
            prev = Some(e.module);
            let d = p.module(e.module).expect("dependency in range");
            assert!(
                d.dependents().any(|x| x == Edge { module: i, ..e }),
                "module {i}: its dependency {} does not list it as a dependent",
                e.module
            );
            deps_total += 1;
        }
        let mut prev: Option<u32> = None;
        for e in m.dependents() {
            assert!(e.module > i && e.module < n, "module {i}: dependent {} out of range", e.module);
            assert!(prev.is_none_or(|p| p < e.module), "module {i}: dependents out of order");
            prev = Some(e.module);
            let d = p.module(e.module).expect("dependent in range");
            assert!(d.deps().any(|x| x == Edge { module: i, ..e }), "module {i}: dependent {} does not depend on it", e.module);
            dependents_total += 1;
        }
        for e in m.soft_pre().chain(m.soft_post()) {
            assert!(e.module < n && e.module != i && !e.hard && !e.post, "module {i}: soft dependency {e:?}");
        }
        for w in m.dev_waits() {
            let w = p.wait(w).expect("device wait in range");
            assert_eq!(w.module(), Some(i), "module {i}: device wait {} belongs to another module", w.index());
        }
    }
    assert_eq!(deps_total, dependents_total, "dependents do not mirror dependencies");
    for w in p.waits() {
        let rest = w.path().strip_prefix(b"/dev/").or_else(|| w.path().strip_prefix(b"/sys/"));
        assert!(rest.is_some_and(is_safe_relative_path), "wait {}: path {:?}", w.index(), w.path());
        if let Some(m) = w.module() {
            let m = p.module(m).expect("wait's module in range");
            assert!(m.dev_waits().contains(&w.index()), "wait {} is not among its module's", w.index());
        }
    }
    let cfg = p.config_alias_count();
    assert!(cfg <= p.alias_count());
    let mut prev: Option<&[u8]> = None;
    for (k, a) in p.aliases().enumerate() {
        assert!(a.module < n, "alias {k}: module {}", a.module);
        assert!(!a.pattern.is_empty(), "alias {k}: empty pattern");
        if k as u32 >= cfg {
            let lp = literal_prefix(a.pattern);
            assert!(prev.is_none_or(|p| p <= lp), "alias {k}: not sorted by literal prefix");
            prev = Some(lp);
        }
    }
    for q in alias_queries(p) {
        let fast: Vec<&[u8]> = p.kernel_aliases_matching(&q).map(|a| a.pattern).collect();
        let slow: Vec<&[u8]> = p.aliases().skip(cfg as usize).filter(|a| glob_match(a.pattern, &q)).map(|a| a.pattern).collect();
        let (mut f, mut s) = (fast.clone(), slow);
        f.sort();
        s.sort();
        assert_eq!(f, s, "kernel aliases matching {:?}: prefix search and linear scan differ", String::from_utf8_lossy(&q));
    }
}

/// Names to look up: each module name, and for the first aliases their
/// literal prefix alone, with one byte more, and the pattern with its glob
/// characters read literally.
fn alias_queries(p: &Plan<'_>) -> Vec<Vec<u8>> {
    let mut q: Vec<Vec<u8>> = p.modules().take(32).map(|m| m.name().to_vec()).collect();
    for a in p.aliases().take(32) {
        let lp = literal_prefix(a.pattern);
        q.push(lp.to_vec());
        q.push([lp, b"x"].concat());
        q.push(a.pattern.iter().map(|&c| if matches!(c, b'*' | b'?' | b'[' | b']' | b'\\') { b'a' } else { c }).collect());
        q.push(a.pattern.to_vec());
    }
    q.push(Vec::new());
    q
}

/// How a simulated run goes, read from fuzz input.
pub struct Script {
    /// By module index (missing: loads at once).
    pub loads: Vec<Behaviour>,
    pub jobs: u32,
    /// Overrides the plan's module timeouts (ms).
    pub module_timeout_ms: Option<u32>,
    /// A partial run (the modprobe personality's): these modules and what they need.
    pub wanted: Vec<u32>,
    /// Modules the kernel command line blacklists (`modprobe.blacklist=`).
    pub blacklist: Vec<u32>,
    /// The kernel decompresses xz modules itself.
    pub decompresses: bool,
}

const MS: u64 = 1_000_000;
/// The longest simulated run (virtual time).
const MAX_DEADLINE_MS: u64 = 120_000;

impl Script {
    /// A script for `plan` from the bytes `b`.
    pub fn read(plan: &Plan<'_>, b: &[u8]) -> Script {
        let mut b = Bytes(b);
        let flags = b.u8();
        let n = plan.module_count();
        let jobs = 1 + (flags & 3) as u32;
        let module_timeout_ms = (flags & 4 != 0).then(|| 100 + (b.u8() as u32) * 20);
        let decompresses = flags & 8 != 0;
        let pick = |b: &mut Bytes<'_>| (n > 0).then(|| b.u16() as u32 % n);
        let wanted = if flags & 16 != 0 { (0..1 + b.u8() % 3).filter_map(|_| pick(&mut b)).collect() } else { Vec::new() };
        let blacklist = if flags & 32 != 0 { (0..1 + b.u8() % 2).filter_map(|_| pick(&mut b)).collect() } else { Vec::new() };
        let loads = (0..n.min(256))
            .map(|_| {
                let x = b.u8();
                let ms = (x >> 2) as u64 * 50 * MS;
                match x & 3 {
                    0 => Behaviour::Load(ms),
                    1 => Behaviour::Sleep(ms),
                    2 => Behaviour::Fail([2, 19, 22][(x as usize >> 2) % 3], ms / 4),
                    _ => Behaviour::Load(0),
                }
            })
            .collect();
        Script { loads, jobs, module_timeout_ms, wanted, blacklist, decompresses }
    }
}

/// What a simulated run did.
pub struct Ran {
    pub status: i32,
    /// Per module, the trace result it ended with.
    pub results: Vec<u8>,
}

/// Run the plan `bytes` (already accepted by the reader) on the fake kernel
/// with `script`, and check the run: it ends (with every module finished
/// unless the deadline came first); nothing loads twice, before what it
/// depends on is done, or after a hard dependency failed; built-in and
/// disabled modules never load; a partial run loads only what its wanted
/// modules need; a blacklisted module never loads.
pub fn simulate(bytes: &[u8], script: &Script) -> Ran {
    // The run borrows its plan, kernel and context for 'static (workers may
    // outlive a real run); here they are given back once every worker
    // thread has been joined (Fake::end_run).
    let bytes: *mut [u8] = Box::into_raw(bytes.to_vec().into_boxed_slice());
    // SAFETY: freshly leaked above; freed only at the end of this function.
    let plan = Plan::parse(unsafe { &*bytes }).expect("simulate: the caller passes an accepted plan");
    let fake: *mut Fake = Box::into_raw(Box::new(Fake::new()));
    // SAFETY: as `bytes`.
    let fake_ref: &'static Fake = unsafe { &*fake };
    let n = plan.module_count();
    // The fake scripts loads by name (`-` and `_` alike): modules of one
    // name load alike, as the last of them was scripted.
    let mut by_name: HashMap<String, Behaviour> = HashMap::new();
    for m in plan.modules() {
        if let Some(&b) = script.loads.get(m.index() as usize) {
            let name = String::from_utf8_lossy(m.name()).into_owned();
            fake_ref.script(&name, b);
            by_name.insert(name.replace('-', "_"), b);
        }
    }
    let duration = |m: u32| match plan.module(m).and_then(|m| by_name.get(&String::from_utf8_lossy(m.name()).replace('-', "_"))) {
        Some(Behaviour::Load(ns) | Behaviour::Sleep(ns) | Behaviour::Fail(_, ns)) => *ns,
        _ => 0,
    };
    if script.decompresses {
        fake_ref.file("/sys/module/compression", b"xz\n");
    }
    // Names the command line can carry in a comma list.
    let listable = |m: u32| plan.module(m).is_some_and(|m| m.name().iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c)));
    let blacklist: Vec<u32> = script.blacklist.iter().copied().filter(|&m| listable(m)).collect();
    let mut line = Vec::new();
    for &b in &blacklist {
        line.extend_from_slice(b"modprobe.blacklist=");
        line.extend_from_slice(plan.module(b).map_or(&b""[..], |m| m.name()));
        line.push(b' ');
    }
    let cmdline = CmdlineBuf::read_with(|buf| {
        let k = line.len().min(buf.len());
        buf[..k].copy_from_slice(&line[..k]);
        k
    });
    let setup = Setup {
        plan_path: b"fuzz.plan",
        force: true,
        module_dir: Some(b"/lib/modules/fuzz"),
        module_timeout_ms: script.module_timeout_ms,
        cmdline,
    };
    let Ok(sched) = run::prepare(plan, fake_ref, setup) else {
        panic!("simulate: prepare refused an accepted plan");
    };
    let sched: *mut Sched = Box::into_raw(Box::new(sched));
    // SAFETY: as `bytes`.
    let s: &'static Sched = unsafe { &*sched };
    // Long enough for every load and every wait, when that fits the field.
    let bound_ms: u64 = (0..n).map(|m| duration(m) / MS).sum::<u64>()
        + plan.waits().map(|w| w.timeout_ms() as u64).sum::<u64>()
        + 1000;
    // A wait with no timeout of its own lasts until the deadline. Two
    // minutes at most: a /sys wait is looked at every 50 ms of virtual
    // time, each look a round of the fake kernel's clock.
    let fits = bound_ms <= MAX_DEADLINE_MS && plan.waits().all(|w| w.timeout_ms() > 0);
    let deadline_ms = bound_ms.min(MAX_DEADLINE_MS) as u32;
    let t0 = fake_ref.time();
    let r = Run {
        wanted: &script.wanted,
        blacklist: true,
        jobs: Some(script.jobs),
        deadline_ms: Some(deadline_ms),
        quiet: true,
        summary: false,
        coldplug: None,
        hook: None,
        trace: None,
        // The fake gives no budget unless asked: no unpacker here.
        unpack: true,
    };
    let status = run::execute(s, t0, r);
    let results: Vec<u8> = (0..n).map(|m| outcome(s, m)).collect();
    let calls = fake_ref.calls();
    let at_deadline = fake_ref.time() >= t0 + deadline_ms as u64 * MS;
    let ended = fake_ref.end_run();
    if std::env::var_os("PARMOD_FUZZ_DEBUG").is_some() {
        eprintln!("script: jobs {} timeout {:?} wanted {:?} blacklist {:?}", script.jobs, script.module_timeout_ms, script.wanted, script.blacklist);
        for m in plan.modules() {
            eprintln!(
                "module {} {:?}: {:?} timeout {} deps {:?} -> {}",
                m.index(),
                String::from_utf8_lossy(m.name()),
                script.loads.get(m.index() as usize),
                m.timeout_ms(),
                m.deps().map(|e| (e.module, e.hard)).collect::<Vec<_>>(),
                result::name(results[m.index() as usize])
            );
        }
        for c in &calls {
            eprintln!("call {} {}: {} .. {:?}", c.module, c.name, (c.start - t0) / MS, c.end.map(|e| (e - t0) / MS));
        }
    }

    assert!(ended, "simulate: a worker never returned");
    assert!(status == 0 || status == 1, "run ended with status {status}");
    if fits {
        assert!(!at_deadline, "the run reached its deadline of {deadline_ms} ms, longer than all its loads and waits");
    }
    let mut loads: HashMap<u32, (u64, Option<u64>)> = HashMap::new();
    for c in &calls {
        assert!(loads.insert(c.module, (c.start, c.end)).is_none(), "module {} ({}) loaded twice", c.module, c.name);
    }
    let ok = |r: u8| matches!(r & !result::STUCK_FLAG, result::LOADED | result::PRESENT | result::BUILTIN | result::DISABLED);
    // A run of the whole plan is a run of its modules but the on-request ones.
    let roots: Vec<u32> = if script.wanted.is_empty() {
        plan.modules().filter(|m| !m.is_on_request()).map(|m| m.index()).collect()
    } else {
        script.wanted.clone()
    };
    let wanted_closure = closure(&plan, &roots);
    for m in plan.modules() {
        let i = m.index();
        let r = results[i as usize];
        if !at_deadline {
            assert!(
                !matches!(r, result::BLOCKED | result::STUCK),
                "module {i} ended {} though the run finished",
                result::name(r)
            );
        }
        let Some(&(start, _)) = loads.get(&i) else { continue };
        assert!(!m.is_builtin() && !m.is_disabled(), "module {i}: built in or disabled, yet loaded");
        assert!(
            !blacklist.contains(&i),
            "module {i} ({:?}): blacklisted on the command line ({:?}), yet loaded",
            String::from_utf8_lossy(m.name()),
            String::from_utf8_lossy(&line)
        );
        assert!(wanted_closure[i as usize], "module {i}: loaded in a run that does not need it (a partial run, or on request only)");
        for e in m.deps() {
            let rd = results[e.module as usize];
            if e.hard {
                assert!(ok(rd), "module {i} loaded though its hard dependency {} ended {}", e.module, result::name(rd));
            }
            if let Some(&(_, end)) = loads.get(&e.module) {
                let end = end.unwrap_or(u64::MAX);
                assert!(end <= start, "module {i} started at {start} before its dependency {} ended at {end}", e.module);
            }
        }
    }
    // SAFETY: every worker thread has exited (end_run), the run has
    // returned, and nothing borrowed from these is used below.
    unsafe {
        let sched = Box::from_raw(sched);
        sched.st.unmap();
        drop(Box::from_raw(fake));
        drop(Box::from_raw(bytes));
    }
    Ran { status, results }
}

/// The modules `wanted` need: themselves and everything they depend on.
fn closure(plan: &Plan<'_>, wanted: &[u32]) -> Vec<bool> {
    let mut need = vec![false; plan.module_count() as usize];
    let mut stack: Vec<u32> = wanted.to_vec();
    while let Some(m) = stack.pop() {
        if std::mem::replace(&mut need[m as usize], true) {
            continue;
        }
        if let Some(md) = plan.module(m) {
            stack.extend(md.deps().map(|e| e.module));
            stack.extend(md.soft_pre().map(|e| e.module));
            stack.extend(md.soft_post().map(|e| e.module));
        }
    }
    need
}
