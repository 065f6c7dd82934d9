//! The scheduler: the priority-ordered ready queue and the worker loop. A
//! module becomes ready the moment its last dependency is done; workers take
//! the ready module with the longest remaining path. The queue and the
//! counters change under one futex lock, and idle workers park on a
//! sequence word (no polling). Everything here reaches the kernel through
//! [`Sched::kernel`].
//!
//! Around the kernel's serial phase (the part of a load under its
//! module-wide `ftrace_lock`, the plan's `serial_us`; no load completes
//! while another holds that lock): loads beyond the CPUs run at the lowest
//! priority ([`Sched::retier`]), so that they use a CPU only while the
//! loads at normal priority are parked (on that lock, or sleeping in a
//! probe) and never slow the critical chain; and a module's own serial part
//! does not count toward its priority ([`Sched::prio`]): serial parts run
//! one at a time whatever the order, and a long one started early leaves
//! the other CPUs with nothing to do but loads that park behind it.
//!
//! And around the kernel's own requests (a module's init calling
//! `request_module()`, as crypto self-tests do): while the modprobe
//! personality loads what the kernel asked for, a load with a long serial
//! part waits ([`Sched::hold_for_requests`]), so that the requested
//! modules' short serial parts do not park behind it while the init that
//! asked waits.

use core::sync::atomic::Ordering::*;

use crate::cmdline::CmdlineBuf;
use crate::plan::trace::result;
use crate::plan::Plan;
use rustix::io::Errno;

use super::clock::MS;
use super::kernel::{self, Kernel, LoadCall, Outcome, Work};
use super::state::*;
use super::sync::lock;

const MAX_JOBS_USIZE: usize = MAX_JOBS as usize;

/// A load that outlived its timeout is stuck only when its task has used no
/// CPU for this long (and no other load in flight has either: it may wait
/// for a lock one of them holds). Its CPU clock is sampled every half of
/// this from this long before the timeout on.
pub const QUIET_NS: u64 = 1000 * MS;

/// Timeouts that scale: a module without its own timeout gets this many
/// times its expected load time (the plan's weight: the size estimate or a
/// profile's measurement), at least the plan's module timeout and at most
/// `TIMEOUT_CEILING` times that.
pub const TIMEOUT_SCALE: u32 = 20;
pub const TIMEOUT_CEILING: u32 = 12;

/// A load whose serial part (the plan's `serial_us`) is at least this long
/// is held back while the kernel is loading modules it asked for itself
/// ([`Sched::hold_for_requests`]). Ten times the model's fixed cost of any
/// load: in the plan's own units, so it holds wherever the plan's
/// estimates (or a profile's measurements) are calibrated. On the
/// benchmark's Debian kernels: amdgpu, i915, nouveau, xfs.
pub const HOLD_SERIAL_US: u32 = 100_000;

/// While it holds a load back, a worker looks again this often (a lock has
/// no timed wait; two system calls a look).
pub const HOLD_POLL_NS: u64 = 2 * MS;

/// The nice value of the loads beyond the CPUs: the lowest (the kernel
/// gives a nice-19 task about 1.5 % of a CPU beside a nice-0 one).
pub const LOW_NICE: i32 = 19;

/// A run: the plan, its state, the kernel, and what a load needs. Built by
/// `run::prepare`, then shared by the main task and every worker.
pub struct Sched {
    pub plan: Plan<'static>,
    pub st: State,
    pub kernel: &'static dyn Kernel,
    /// Directory holding the module files, without a trailing slash.
    pub module_dir: heapless::Vec<u8, 512>,
    /// Stuck timeout (ms) for modules without their own; 0: none.
    pub module_timeout_ms: u32,
    /// The command line's --module-timeout overrides per-module values.
    pub timeout_forced: bool,
    /// The kernel command line in /init mode (module parameters, blacklist).
    pub cmdline: CmdlineBuf,
}

impl Work for Sched {
    fn work(&self, id: usize) {
        if id == UNPACKER {
            self.unpack_loop()
        } else {
            self.worker_loop(id)
        }
    }
}

impl Sched {
    /// The stuck timeout of module `m` (ms; 0: none): `--module-timeout`
    /// when given, else the module's own from the plan, else its expected
    /// load time scaled ([`TIMEOUT_SCALE`]) between the plan's module
    /// timeout and [`TIMEOUT_CEILING`] times that.
    pub fn timeout_ms(&self, m: u32) -> u32 {
        let module = self.plan.module(m);
        let own = module.map_or(0, |x| x.timeout_ms());
        let floor = self.module_timeout_ms;
        if self.timeout_forced || floor == 0 {
            return floor;
        }
        if own != 0 {
            return own;
        }
        let scaled = (module.map_or(0, |x| x.weight_us()) / 1000).saturating_mul(TIMEOUT_SCALE);
        scaled.clamp(floor, floor.saturating_mul(TIMEOUT_CEILING))
    }

    /// The order of ready modules: the plan's priority (the heaviest
    /// remaining path) without the module's own serial part; among equals
    /// the earlier module (stable order). The serial parts of the modules
    /// after it still count: a long one makes the chain to it urgent, not
    /// itself. Measured on the benchmark's real set, where amdgpu's serial
    /// part alone is 2.2 s: docs/BENCHMARKS.md.
    pub(super) fn prio(&self, m: u32) -> (u64, u32) {
        let key = self.plan.module(m).map_or(0, |x| x.priority_us().saturating_sub(x.serial_us() as u64));
        (key, u32::MAX - m)
    }

    /// Prepare the run and put every module whose dependencies are all done
    /// in the ready queue. `wanted` limits the run to those modules and what
    /// they need (see [`Self::want`]); None: the whole plan but its
    /// on-request modules (see [`crate::plan::module_flags::ON_REQUEST`]). With
    /// `blacklist`, modules the kernel command line blacklists are skipped,
    /// with everything that needs them. Called once, before the workers
    /// start. Returns how many modules take part.
    pub fn seed(&self, wanted: Option<&[u32]>, blacklist: bool) -> u32 {
        let st = &self.st;
        let n = self.plan.module_count();
        let _g = lock(at(st.ctl, LOCK));
        let mut newly = 0;
        // A whole-plan run of a plan with on-request modules is a run of
        // every other module.
        let partial = wanted.is_some() || self.plan.modules().any(|m| m.is_on_request());
        if partial {
            for i in 0..n as usize {
                at(st.status, i).store(NOT_WANTED, Relaxed);
            }
            at(st.ctl, DONE).store(n, Relaxed);
            if blacklist {
                self.skip_blacklisted(&mut newly);
            }
            match wanted {
                Some(list) => {
                    for &w in list {
                        self.want_locked(w, &mut newly);
                    }
                }
                None => {
                    for m in self.plan.modules().filter(|m| !m.is_on_request()) {
                        self.want_locked(m.index(), &mut newly);
                    }
                }
            }
        } else {
            for m in self.plan.modules() {
                at(st.pending, m.index() as usize).store(m.deps().len() as u32, Relaxed);
            }
            if blacklist {
                self.skip_blacklisted(&mut newly);
            }
            for m in self.plan.modules() {
                let i = m.index() as usize;
                if at(st.pending, i).load(Relaxed) == 0 && at(st.status, i).load(Relaxed) == WAITING {
                    at(st.status, i).store(READY, Relaxed);
                    self.push(m.index());
                }
            }
        }
        n - at(st.ctl, DONE).load(Relaxed)
    }

    /// Skip what the kernel command line blacklists (itself the cause:
    /// "blacklisted"), with everything that needs it. From the last record
    /// to the first: a skip releases soft dependents, which come later in
    /// the plan, so every blacklisted one among them is skipped already and
    /// none becomes ready.
    fn skip_blacklisted(&self, newly: &mut u32) {
        if self.cmdline.is_empty() {
            return;
        }
        for m in (0..self.plan.module_count()).rev().filter_map(|i| self.plan.module(i)) {
            if self.cmdline.view().blacklists(m.name()) {
                let s = at(self.st.status, m.index() as usize);
                if s.load(Relaxed) == NOT_WANTED {
                    // Out of the run but marked, so that wanting it later
                    // finds it skipped.
                    s.store(WAITING, Relaxed);
                    at(self.st.ctl, DONE).fetch_sub(1, Relaxed);
                }
                self.skip_from(m.index(), m.index(), newly);
            }
        }
    }

    /// Add module `m` to a run that does not load the whole plan (the
    /// modprobe personality, coldplug), with what it needs: its
    /// dependencies (hard and soft) and its `post:` soft dependencies, as
    /// kmod loads them. Modules already in the run are left as they are.
    /// Returns how many modules became ready (the caller wakes workers).
    pub fn want(&self, m: u32) -> u32 {
        let st = &self.st;
        let g = lock(at(st.ctl, LOCK));
        let mut newly = 0;
        self.want_locked(m, &mut newly);
        let idle = at(st.ctl, IDLE_COUNT).load(Relaxed);
        if newly.min(idle) > 0 {
            self.wake_workers(g, newly.min(idle));
        }
        newly
    }

    fn want_locked(&self, m: u32, newly: &mut u32) {
        let st = &self.st;
        let final_status = |x: u32| {
            let s = at(st.status, x as usize).load(Relaxed) & !STUCK;
            !matches!(s, WAITING | READY | RUNNING | WANTED | NOT_WANTED)
        };
        // The modules to add, breadth first, in `st.want`.
        let mut len = 0usize;
        let add = |x: u32, len: &mut usize| {
            let s = at(st.status, x as usize);
            if s.load(Relaxed) == NOT_WANTED {
                s.store(WANTED, Relaxed);
                at(st.ctl, DONE).fetch_sub(1, Relaxed);
                at(st.want, *len).store(x, Relaxed);
                *len += 1;
            }
        };
        add(m, &mut len);
        let mut i = 0;
        while i < len {
            let x = at(st.want, i).load(Relaxed);
            i += 1;
            if let Some(module) = self.plan.module(x) {
                for e in module.deps() {
                    add(e.module, &mut len);
                }
                for p in module.soft_post() {
                    add(p.module, &mut len);
                }
            }
        }
        // Dependencies not done yet hold each back; all of them are in the
        // run now, so each will release it.
        for i in 0..len {
            let x = at(st.want, i).load(Relaxed);
            let left = self.plan.module(x).map_or(0, |module| module.deps().filter(|e| !final_status(e.module)).count());
            at(st.pending, x as usize).store(left as u32, Relaxed);
            at(st.status, x as usize).store(WAITING, Relaxed);
        }
        for i in 0..len {
            let x = at(st.want, i).load(Relaxed);
            if at(st.status, x as usize).load(Relaxed) != WAITING {
                continue; // skipped meanwhile
            }
            let failed = self.plan.module(x).and_then(|module| {
                module.deps().find(|e| {
                    let s = at(st.status, e.module as usize).load(Relaxed) & !STUCK;
                    e.hard && (s == result::FAILED as u32 || s == result::SKIPPED as u32)
                })
            });
            if let Some(e) = failed {
                let cause = if at(st.status, e.module as usize).load(Relaxed) & !STUCK == result::SKIPPED as u32 {
                    at(st.cause, e.module as usize).load(Relaxed)
                } else {
                    e.module
                };
                self.skip_from(x, cause, newly);
            } else if at(st.pending, x as usize).load(Relaxed) == 0 {
                if let Some(cause) = self.post_parents_failed(x) {
                    self.skip_from(x, cause, newly);
                } else {
                    at(st.status, x as usize).store(READY, Relaxed);
                    self.push(x);
                    *newly += 1;
                }
            }
        }
    }

    /// Keep the run open for modules wanted later ([`Self::want`]): it does
    /// not end when everything wanted so far is done.
    pub fn hold(&self) {
        at(self.st.ctl, HOLD).store(1, Release);
    }

    /// No more modules will be wanted: end the run once what is wanted is
    /// done (wakes idle workers so they can see it).
    pub fn release_hold(&self) {
        let g = lock(at(self.st.ctl, LOCK));
        at(self.st.ctl, HOLD).store(0, Release);
        self.wake_workers(g, i32::MAX as u32);
    }

    /// Whether anything is loading or ready to load (coldplug's settle).
    pub fn busy(&self) -> bool {
        let _g = lock(at(self.st.ctl, LOCK));
        at(self.st.ctl, HEAP_LEN).load(Relaxed) > 0
            || at(self.st.ctl, HOLDING).load(Relaxed) > 0
            || (0..self.st.spawned()).any(|id| at(self.st.slot_module, id).load(Relaxed) != IDLE)
    }

    /// The worker pool: `jobs` loads in flight at most, of which `cpus`
    /// keep the normal priority. Called once, before the workers start.
    pub fn set_pool(&self, jobs: u32, cpus: u32) {
        let st = &self.st;
        at(st.ctl, NORMAL_CAP).store(if jobs > cpus { cpus.max(1) } else { 0 }, Relaxed);
        at(st.ctl, NICE_BASE).store((self.kernel.nice() + 20).clamp(0, 39) as u32, Relaxed);
    }

    /// Give the `NORMAL_CAP` loads in flight with the highest priority the
    /// normal nice value and the others [`LOW_NICE`] (under the lock, after
    /// a load started or ended). The kernel then runs the lowered ones only
    /// on CPUs the others leave idle, while they are parked. Where the kernel
    /// refuses to raise a task again (no CAP_SYS_NICE), tiers end for the run.
    fn retier(&self) {
        let st = &self.st;
        let cap = at(st.ctl, NORMAL_CAP).load(Relaxed) as usize;
        if cap == 0 {
            return;
        }
        let n = st.spawned();
        let busy = |id: usize| {
            let m = at(st.slot_module, id).load(Relaxed);
            (m != IDLE && at(st.slot_flags, id).load(Relaxed) & SLOT_STUCK == 0).then_some(m)
        };
        let mut normal = heapless::Vec::<usize, MAX_JOBS_USIZE>::new();
        while normal.len() < cap {
            let best = (0..n)
                .filter(|id| !normal.contains(id))
                .filter_map(|id| busy(id).map(|m| (self.prio(m), id)))
                .max();
            match best {
                Some((_, id)) if normal.push(id).is_ok() => {}
                _ => break,
            }
        }
        let base = at(st.ctl, NICE_BASE).load(Relaxed) as i32 - 20;
        for id in 0..n {
            if busy(id).is_none() {
                continue;
            }
            let want = if normal.contains(&id) { TIER_NORMAL } else { TIER_LOW };
            let tier = at(st.slot_tier, id);
            if tier.load(Relaxed) == want || (want == TIER_NORMAL && tier.load(Relaxed) == TIER_UNSET) {
                continue;
            }
            let nice = if want == TIER_NORMAL { base } else { LOW_NICE.max(base) };
            if self.kernel.set_nice(at(st.slot_tid, id).load(Relaxed), nice) {
                tier.store(want, Relaxed);
            } else if want == TIER_NORMAL {
                at(st.ctl, NORMAL_CAP).store(0, Relaxed);
                return;
            }
        }
    }

    // ---- the ready queue: a binary max-heap of module indices (under the lock) ----

    fn push(&self, m: u32) {
        let h = self.st.heap;
        let mut i = at(self.st.ctl, HEAP_LEN).load(Relaxed) as usize;
        at(self.st.ctl, HEAP_LEN).store(i as u32 + 1, Relaxed);
        let key = self.prio(m);
        while i > 0 {
            let parent = (i - 1) / 2;
            let pm = at(h, parent).load(Relaxed);
            if self.prio(pm) >= key {
                break;
            }
            at(h, i).store(pm, Relaxed);
            i = parent;
        }
        at(h, i).store(m, Relaxed);
    }

    fn pop(&self) -> Option<u32> {
        let h = self.st.heap;
        let len = at(self.st.ctl, HEAP_LEN).load(Relaxed) as usize;
        if len == 0 {
            return None;
        }
        let top = at(h, 0).load(Relaxed);
        let last = at(h, len - 1).load(Relaxed);
        let len = len - 1;
        at(self.st.ctl, HEAP_LEN).store(len as u32, Relaxed);
        if len > 0 {
            let key = self.prio(last);
            let mut i = 0;
            loop {
                let l = 2 * i + 1;
                if l >= len {
                    break;
                }
                let r = l + 1;
                let mut c = l;
                if r < len && self.prio(at(h, r).load(Relaxed)) > self.prio(at(h, l).load(Relaxed)) {
                    c = r;
                }
                let cm = at(h, c).load(Relaxed);
                if self.prio(cm) <= key {
                    break;
                }
                at(h, i).store(cm, Relaxed);
                i = c;
            }
            at(h, i).store(last, Relaxed);
        }
        Some(top)
    }

    /// Whether module `m` has a serial part long enough to be held back
    /// while the kernel loads what it requested ([`HOLD_SERIAL_US`]).
    fn long_serial(&self, m: u32) -> bool {
        self.plan.module(m).is_some_and(|x| x.serial_us() >= HOLD_SERIAL_US)
    }

    /// The best ready module; while another worker holds a load back for
    /// the kernel's requests, the best one without a long serial part (the
    /// long ones stay in the queue, behind the held one).
    fn take(&self) -> Option<u32> {
        if at(self.st.ctl, HOLDING).load(Relaxed) == 0 {
            return self.pop();
        }
        let mut back = heapless::Vec::<u32, 8>::new();
        let got = loop {
            match self.pop() {
                Some(m) if self.long_serial(m) => {
                    if let Err(m) = back.push(m) {
                        // More long ones than put aside: this one may
                        // be held back too.
                        break Some(m);
                    }
                }
                other => break other,
            }
        };
        for &m in back.iter() {
            self.push(m);
        }
        got
    }

    /// Hold module `m` (just taken by worker `id`; the lock `g` held) back
    /// while the kernel is loading modules it asked for itself, when its
    /// serial part is long: such a request comes from a module's init,
    /// which waits for it, and each of the requested modules needs the
    /// kernel's serial phase for a moment; behind `m`'s phase it would wait
    /// all of it. The worker looks again every [`HOLD_POLL_NS`], at most
    /// for as long as `m`'s serial part is expected to take (holding it
    /// longer would idle the phase for longer than the wait it saves),
    /// and not past a retirement. Meanwhile the other workers take loads
    /// without a long serial part. Returns the lock, and whether `m` may
    /// load now (else it is back in the queue: the worker was retired).
    fn hold_for_requests<'a>(&'a self, id: usize, m: u32, g: super::sync::Guard<'a>) -> (bool, super::sync::Guard<'a>) {
        let st = &self.st;
        let k = self.kernel;
        if !self.long_serial(m) || !k.requests_loading() {
            return (true, g);
        }
        at(st.ctl, HOLDING).fetch_add(1, Relaxed);
        drop(g);
        let module = self.plan.module(m);
        self.name_worker(b"pm:hold:", module.map_or(b"?", |x| x.name()));
        let start = k.now();
        let until = start + module.map_or(0, |x| x.serial_us() as u64) * 1000;
        let retired = || at(st.slot_flags, id).load(Relaxed) & SLOT_RETIRED != 0;
        loop {
            let now = k.now();
            if now >= until || retired() || !k.requests_loading() {
                break;
            }
            k.pause(HOLD_POLL_NS.min(until - now));
        }
        let held_ms = (k.now() - start) / MS;
        let g = lock(at(st.ctl, LOCK));
        at(st.ctl, HOLDING).fetch_sub(1, Relaxed);
        at(st.ctl, HOLDS).fetch_add(1, Relaxed);
        at(st.ctl, HELD_MS).fetch_add(held_ms.min(u32::MAX as u64) as u32, Relaxed);
        if retired() {
            self.push(m);
            return (false, g);
        }
        // The long ones the others left in the queue may go now.
        let wake = at(st.ctl, HEAP_LEN).load(Relaxed).min(at(st.ctl, IDLE_COUNT).load(Relaxed));
        if wake > 0 {
            self.wake_workers(g, wake);
            return (true, lock(at(st.ctl, LOCK)));
        }
        (true, g)
    }

    // ---- completion (under the lock) ----

    /// One dependency of `w` is done: ready it when it was the last one,
    /// unless it is in the plan only as a `post:` soft dependency of
    /// modules that all failed (then, as kmod stops there, it is skipped).
    fn release(&self, w: u32, newly: &mut u32) {
        if let Some(cause) = self.release_one(w, newly) {
            self.skip_from(w, cause, newly);
        }
    }

    /// [`Self::release`] without the skip: returns the module whose failure
    /// skips `w` instead of readying it, for the caller to skip it.
    fn release_one(&self, w: u32, newly: &mut u32) -> Option<u32> {
        let i = w as usize;
        let left = at(self.st.pending, i).load(Relaxed).saturating_sub(1);
        at(self.st.pending, i).store(left, Relaxed);
        if left == 0 && at(self.st.status, i).load(Relaxed) == WAITING {
            if let Some(cause) = self.post_parents_failed(w) {
                return Some(cause);
            }
            at(self.st.status, i).store(READY, Relaxed);
            self.push(w);
            *newly += 1;
        }
        None
    }

    /// For a POST_ONLY module whose every post edge comes from a module
    /// that failed or was skipped: one of those modules.
    fn post_parents_failed(&self, w: u32) -> Option<u32> {
        let m = self.plan.module(w).filter(|m| m.is_post_only())?;
        let mut cause = None;
        for e in m.deps().filter(|e| e.post) {
            let s = at(self.st.status, e.module as usize).load(Relaxed) & !STUCK;
            if s != result::FAILED as u32 && s != result::SKIPPED as u32 {
                return None;
            }
            cause = Some(e.module);
        }
        cause
    }

    /// Mark `w` skipped because `root` failed, and everything that hard-depends
    /// on it, transitively; release soft dependents, skipping (with their
    /// own cause) the post-only ones whose post parents all failed. One
    /// explicit stack, no recursion: a nested walk would reuse the stack
    /// under the entries of this one.
    fn skip_from(&self, w: u32, root: u32, newly: &mut u32) {
        let st = &self.st;
        let mut top = 0usize;
        let mark = |x: u32, cause: u32, top: &mut usize| {
            let s = at(st.status, x as usize);
            if s.load(Relaxed) == WAITING {
                s.store(result::SKIPPED as u32, Relaxed);
                at(st.cause, x as usize).store(cause, Relaxed);
                at(st.ctl, DONE).fetch_add(1, Relaxed);
                at(st.skip, *top).store(x, Relaxed);
                *top += 1;
            }
        };
        mark(w, root, &mut top);
        while top > 0 {
            top -= 1;
            let x = at(st.skip, top).load(Relaxed);
            let cause = at(st.cause, x as usize).load(Relaxed);
            let Some(m) = self.plan.module(x) else { continue };
            for e in m.dependents() {
                if e.hard {
                    mark(e.module, cause, &mut top);
                } else if let Some(c) = self.release_one(e.module, newly) {
                    mark(e.module, c, &mut top);
                }
            }
        }
    }

    /// Record the outcome of `m` and release what depends on it.
    /// Returns how many modules became ready.
    fn finish(&self, m: u32, outcome: Outcome, end: u64) -> u32 {
        let st = &self.st;
        let i = m as usize;
        let stuck = at(st.status, i).load(Relaxed) & STUCK;
        let (code, errno) = match outcome {
            Outcome::Loaded => (result::LOADED, 0),
            Outcome::Present => (result::PRESENT, 0),
            Outcome::Builtin => (result::BUILTIN, 0),
            Outcome::Disabled => (result::DISABLED, 0),
            Outcome::Failed(e) => (result::FAILED, e),
        };
        at(st.status, i).store(code as u32 | stuck, Relaxed);
        at(st.errno, i).store(errno as u32, Relaxed);
        at(st.end, i).store(end, Relaxed);
        st.last_end.fetch_max(end, Relaxed);
        let ok = !matches!(outcome, Outcome::Failed(_));
        let Some(module) = self.plan.module(m) else { return 0 };
        if ok && !module.dev_waits().is_empty() {
            // Its dependents start once its devices are there: the main
            // task watches for them and calls `release_after_waits`.
            at(st.await_flag, i).store(1, Relaxed);
            let top = at(st.ctl, AWAIT_LEN).fetch_add(1, Relaxed) as usize;
            at(st.awaiting, top).store(m, Relaxed);
            return 0;
        }
        self.release_dependents(m, ok)
    }

    /// `m` is done for good: release (or, when it did not succeed, skip)
    /// what depends on it. Under the lock. Returns how many became ready.
    fn release_dependents(&self, m: u32, ok: bool) -> u32 {
        let st = &self.st;
        at(st.ctl, DONE).fetch_add(1, Relaxed);
        let mut newly = 0;
        let Some(module) = self.plan.module(m) else { return 0 };
        for e in module.dependents() {
            if e.hard && !ok {
                self.skip_from(e.module, m, &mut newly);
            }
            self.release(e.module, &mut newly);
        }
        newly
    }

    /// Move the sequence word and wake `n` parked workers, outside the
    /// lock (whose guard this takes).
    fn wake_workers(&self, g: super::sync::Guard<'_>, n: u32) {
        at(self.st.ctl, READY_SEQ).fetch_add(1, Relaxed);
        drop(g);
        self.kernel.unpark(at(self.st.ctl, READY_SEQ), n);
    }

    // ---- workers ----

    /// Load module `m` (taken at `start`): the plan's file (or the image the
    /// unpacker made of it) and options, the kernel command line's
    /// parameters, through the kernel.
    fn load(&self, m: u32, start: u64) -> Outcome {
        let Some(module) = self.plan.module(m) else { return Outcome::Failed(Errno::INVAL.raw_os_error()) };
        // Taken even when not loaded: the unpacker stops, the memory is freed.
        let image = self.claim_image(m);
        let outcome = self.load_with(m, module, image.as_ref().map(|b| b.bytes()), start);
        if let Some(b) = image {
            self.image_done(b);
        }
        outcome
    }

    /// The path of `module`'s file in `buf`: under the module directory, or
    /// from the root for ROOT_PATH (depmod's `external` directories).
    pub(super) fn file_of<'b>(&self, module: crate::plan::Module<'_>, buf: &'b mut [u8]) -> Result<&'b core::ffi::CStr, Errno> {
        let dir: &[u8] = if module.is_root_path() { b"" } else { &self.module_dir };
        kernel::module_path(buf, dir, module.path().unwrap_or(b""))
    }

    fn load_with(&self, m: u32, module: crate::plan::Module<'_>, image: Option<&[u8]>, start: u64) -> Outcome {
        if module.is_builtin() {
            return Outcome::Builtin;
        }
        if module.is_disabled() {
            return Outcome::Disabled;
        }
        let k = self.kernel;
        if k.is_live(module.name()) {
            return Outcome::Present;
        }
        let failed = |e: Errno| Outcome::Failed(e.raw_os_error());
        let comp = module.compression();
        let flags = match kernel::finit_flags(module.flags(), comp, comp == crate::plan::Compression::None || k.decompresses(comp)) {
            Ok(f) => f,
            Err(e) => return failed(e),
        };
        let mut path = [0u8; 1024];
        let path = match self.file_of(module, &mut path) {
            Ok(p) => p,
            Err(e) => return failed(e),
        };
        let mut merged = [0u8; 2048];
        let cl = self.cmdline.view();
        let params = if cl.module_options(module.name()).next().is_none() {
            core::ffi::CStr::from_bytes_with_nul(module.params_with_nul()).unwrap_or(c"")
        } else {
            match kernel::merge_params(&mut merged, module.params(), cl.module_options(module.name())) {
                Ok(p) => p,
                Err(e) => return failed(e),
            }
        };
        let call = LoadCall { module: m, name: module.name(), path, params, flags, image, weight_us: module.weight_us(), start_ns: start };
        match k.load(&call) {
            Ok(()) => Outcome::Loaded,
            Err(Errno::EXIST) => Outcome::Present,
            Err(e) => failed(e),
        }
    }

    /// Name the worker's task `prefix` + `name` (the kernel keeps 15 bytes).
    pub(super) fn name_worker(&self, prefix: &[u8], name: &[u8]) {
        let mut buf = [0u8; 16];
        let p = prefix.len().min(15);
        buf[..p].copy_from_slice(&prefix[..p]);
        let n = name.len().min(15 - p);
        buf[p..p + n].copy_from_slice(&name[..n]);
        if let Ok(c) = core::ffi::CStr::from_bytes_until_nul(&buf) {
            self.kernel.name_task(c);
        }
    }

    /// Take the best ready module (under the lock `g`), load it as worker
    /// `id`, record the outcome and wake workers for what became ready.
    /// Returns the lock again, or None (with the lock) when nothing is ready.
    fn step<'a>(&'a self, id: usize, mut g: super::sync::Guard<'a>) -> (bool, super::sync::Guard<'a>) {
        let st = &self.st;
        let k = self.kernel;
        let Some(m) = self.take() else { return (false, g) };
        let (go, guard) = self.hold_for_requests(id, m, g);
        g = guard;
        if !go {
            return (true, g);
        }
        let t = k.now();
        at(st.status, m as usize).store(RUNNING, Relaxed);
        at(st.start, m as usize).store(t, Relaxed);
        at(st.worker, m as usize).store(id as u32, Relaxed);
        at(st.slot_start, id).store(t, Relaxed);
        at(st.slot_cpu_at, id).store(0, Relaxed);
        at(st.slot_module, id).store(m, SeqCst);
        self.retier();
        drop(g);
        self.name_worker(b"pm:", self.plan.module(m).map_or(b"?", |x| x.name()));
        // The main task times loads out; wake it when it sleeps past the
        // moment it must start watching this one.
        let timeout = self.timeout_ms(m) as u64 * MS;
        if timeout > 0 && t + timeout.saturating_sub(QUIET_NS) < st.main_until.load(SeqCst) {
            k.wake();
        }

        let outcome = self.load(m, t);

        g = lock(at(st.ctl, LOCK));
        at(st.slot_module, id).store(IDLE, Release);
        self.retier();
        let newly = self.finish(m, outcome, k.now());
        if st.finished(self.plan.module_count()) {
            // Everything is done: wake every idle worker and the main task.
            self.wake_workers(g, i32::MAX as u32);
            k.wake();
            g = lock(at(st.ctl, LOCK));
        } else if at(st.await_flag, m as usize).load(Relaxed) != 0 {
            // Its devices are the main task's to watch.
            drop(g);
            k.wake();
            g = lock(at(st.ctl, LOCK));
        } else {
            let idle = at(st.ctl, IDLE_COUNT).load(Relaxed);
            // This worker takes one of the new modules itself, unless it was
            // retired (replaced while its load was stuck).
            let retired = at(st.slot_flags, id).load(Relaxed) & SLOT_RETIRED != 0;
            let wake = if retired { newly } else { newly.saturating_sub(1) }.min(idle);
            if wake > 0 {
                self.wake_workers(g, wake);
                g = lock(at(st.ctl, LOCK));
            }
        }
        (true, g)
    }

    /// The loop of worker `id`: take the best ready module, load it, release
    /// its dependents; park when nothing is ready.
    fn worker_loop(&self, id: usize) {
        let st = &self.st;
        let n = self.plan.module_count();
        let mut g = lock(at(st.ctl, LOCK));
        loop {
            if at(st.slot_flags, id).load(Relaxed) & SLOT_RETIRED != 0 {
                break;
            }
            let (took, guard) = self.step(id, g);
            g = guard;
            if took {
                continue;
            }
            if st.finished(n) {
                break;
            }
            // Nothing ready: park until the sequence word moves.
            let seq = at(st.ctl, READY_SEQ).load(Relaxed);
            at(st.ctl, IDLE_COUNT).fetch_add(1, Relaxed);
            drop(g);
            self.name_worker(b"pm:idle", b"");
            self.kernel.park(at(st.ctl, READY_SEQ), seq);
            g = lock(at(st.ctl, LOCK));
            at(st.ctl, IDLE_COUNT).fetch_sub(1, Relaxed);
        }
        drop(g);
    }

    /// The main task loads every ready module itself, one at a time, in
    /// slot `id` (when no worker task could start). Returns whether it
    /// loaded any.
    pub fn load_inline(&self, id: usize) -> bool {
        let mut any = false;
        let mut g = lock(at(self.st.ctl, LOCK));
        loop {
            let (took, guard) = self.step(id, g);
            g = guard;
            if !took {
                return any;
            }
            any = true;
        }
    }

    // ---- the main task's side ----

    /// Reserve the next worker slot.
    pub fn new_slot(&self) -> Option<usize> {
        let id = at(self.st.ctl, SPAWNED).load(Relaxed) as usize;
        if id >= MAX_WORKERS {
            return None;
        }
        at(self.st.slot_module, id).store(IDLE, Relaxed);
        at(self.st.slot_flags, id).store(0, Relaxed);
        at(self.st.ctl, SPAWNED).store(id as u32 + 1, Release);
        Some(id)
    }

    /// Start a worker in a new slot; the slot on success (a slot whose
    /// task could not start is given back).
    pub fn start_worker(&'static self) -> Result<usize, Errno> {
        let id = self.new_slot().ok_or(Errno::AGAIN)?;
        match self.kernel.spawn(self, id, at(self.st.slot_tid, id)) {
            Ok(()) => Ok(id),
            Err(e) => {
                at(self.st.ctl, SPAWNED).store(id as u32, Release);
                Err(e)
            }
        }
    }

    /// Mark loads that are stuck and retire their workers: a load is stuck
    /// once it has outlived its timeout while its task used no CPU for
    /// [`QUIET_NS`] and no other load in flight used any either (it may be
    /// waiting for a lock a progressing load holds); where the kernel cannot
    /// tell a task's CPU time, once it has outlived its timeout. Fills `out`
    /// with (worker, module) pairs newly stuck and returns when to look
    /// again (the next timeout, or the next CPU sample).
    pub fn check_stuck(&self, now: u64, out: &mut heapless::Vec<(usize, u32), MAX_WORKERS>) -> Option<u64> {
        let st = &self.st;
        let _g = lock(at(st.ctl, LOCK));
        let n = st.spawned();
        let busy = |id: usize| {
            let m = at(st.slot_module, id).load(Acquire);
            (m != IDLE && at(st.slot_flags, id).load(Relaxed) & SLOT_STUCK == 0).then_some(m)
        };
        let due = |id: usize, m: u32| {
            let t = self.timeout_ms(m) as u64 * MS;
            (t > 0).then(|| at(st.slot_start, id).load(Relaxed) + t)
        };
        // Sample every busy task's CPU clock once any load is near its timeout.
        let near = (0..n).any(|id| busy(id).and_then(|m| due(id, m)).is_some_and(|d| now + QUIET_NS >= d));
        let mut cpu_known = false;
        if near {
            for id in 0..n {
                if busy(id).is_none() {
                    continue;
                }
                let Some(c) = self.kernel.task_cpu_ns(at(st.slot_tid, id).load(Relaxed)) else { continue };
                cpu_known = true;
                if at(st.slot_cpu_at, id).load(Relaxed) == 0 || at(st.slot_cpu, id).load(Relaxed) != c {
                    at(st.slot_cpu, id).store(c, Relaxed);
                    at(st.slot_cpu_at, id).store(now, Relaxed);
                }
            }
        }
        let progressed = |id: usize| {
            let t = at(st.slot_cpu_at, id).load(Relaxed);
            t != 0 && now - t < QUIET_NS
        };
        let mut next: Option<u64> = None;
        let mut soon = |t: u64| next = Some(next.map_or(t, |x: u64| x.min(t)));
        for id in 0..n {
            let Some(m) = busy(id) else { continue };
            let Some(d) = due(id, m) else { continue };
            if now + QUIET_NS < d {
                soon(d - QUIET_NS);
                continue;
            }
            if now < d {
                soon(d.min(now + QUIET_NS / 2));
                continue;
            }
            let others = (0..n).any(|j| j != id && busy(j).is_some() && progressed(j));
            if cpu_known && (progressed(id) || others) {
                // Slow, not stuck: look again after the next sample.
                soon(now + QUIET_NS / 2);
                continue;
            }
            at(st.slot_flags, id).fetch_or(SLOT_STUCK | SLOT_RETIRED, Relaxed);
            at(st.status, m as usize).fetch_or(STUCK, Relaxed);
            let _ = out.push((id, m));
        }
        if !out.is_empty() {
            // A stuck load keeps no place at normal priority.
            self.retier();
        }
        next
    }

    /// Ask every worker to stop taking work (at the deadline).
    pub fn retire_all(&self) {
        let st = &self.st;
        let g = lock(at(st.ctl, LOCK));
        for id in 0..st.spawned() {
            at(st.slot_flags, id).fetch_or(SLOT_RETIRED, Relaxed);
        }
        self.wake_workers(g, i32::MAX as u32);
    }

    /// Wait until worker `id` has exited (its tid word cleared), at most
    /// `timeout_ms` of real time.
    pub fn join(&self, id: usize, timeout_ms: u64) -> bool {
        self.join_word(at(self.st.slot_tid, id), timeout_ms)
    }

    /// Wait until the task whose tid word is `w` has exited, at most
    /// `timeout_ms` of real time.
    pub fn join_word(&self, w: &core::sync::atomic::AtomicU32, timeout_ms: u64) -> bool {
        let end = super::clock::monotonic_ns() + timeout_ms * MS;
        loop {
            let tid = w.load(Acquire);
            if tid == 0 {
                return true;
            }
            let now = super::clock::monotonic_ns();
            if now >= end {
                return false;
            }
            let ts = super::clock::timespec(end - now);
            // The kernel's wake at task exit is a shared futex wake: wait
            // without the PRIVATE flag to match it.
            let _ = rustix::thread::futex::wait(w, rustix::thread::futex::Flags::empty(), tid, Some(&ts));
        }
    }

    /// Before the main task looks at the workers: any load that starts from
    /// now on wakes it until it says when it will wake by itself.
    pub fn begin_check(&self) {
        self.st.main_until.store(u64::MAX, SeqCst);
    }

    /// The main task will look again by itself at `until` (ns).
    pub fn will_wake_at(&self, until: Option<u64>) {
        self.st.main_until.store(until.unwrap_or(u64::MAX), SeqCst);
    }

    /// Modules whose device waits the main task has not seen yet.
    pub fn take_awaiting(&self, mut each: impl FnMut(u32)) {
        let st = &self.st;
        let _g = lock(at(st.ctl, LOCK));
        let len = at(st.ctl, AWAIT_LEN).swap(0, Relaxed) as usize;
        for i in 0..len {
            each(at(st.awaiting, i).load(Relaxed));
        }
    }

    /// The device waits of `m` are over (all satisfied: `ok`); release or
    /// skip its dependents and wake workers for what became ready.
    pub fn release_after_waits(&self, m: u32, ok: bool) {
        let st = &self.st;
        let g = lock(at(st.ctl, LOCK));
        at(st.await_flag, m as usize).store(0, Relaxed);
        let newly = self.release_dependents(m, ok);
        let idle = at(st.ctl, IDLE_COUNT).load(Relaxed);
        let all = st.finished(self.plan.module_count());
        let wake = if all { i32::MAX as u32 } else { newly.min(idle) };
        if wake > 0 {
            self.wake_workers(g, wake);
        }
    }
}
