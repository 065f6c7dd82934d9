//! The scheduler: run-time state of every module, the priority-ordered ready
//! queue, and the worker loop. A module becomes ready the moment its last
//! dependency is done; workers take the ready module with the longest
//! remaining path. All shared state is atomics in one mapping; the queue and
//! the counters change under one futex lock, and idle workers sleep on a
//! futex sequence word (no polling).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

use crate::plan::trace::result;
use crate::plan::{Compression, Plan};
use rustix::io::Errno;
use rustix::thread::futex;

use super::kernel::{self, Outcome};
use super::mapping;

/// Most worker tasks over a run, replacements of stuck ones included.
pub const MAX_WORKERS: usize = 128;
/// Most workers running at once.
pub const MAX_JOBS: u32 = 64;
/// "No module" in a worker slot.
pub const IDLE: u32 = u32::MAX;

/// Module status words: before a result, then the trace result codes
/// (`result::LOADED`..`result::SKIPPED`), with `result::STUCK_FLAG` or-ed in
/// once a load outlived its timeout.
pub const WAITING: u32 = 0;
pub const READY: u32 = 0x40;
pub const RUNNING: u32 = 0x41;
pub const STUCK: u32 = result::STUCK_FLAG as u32;
/// Not part of this run (the modprobe personality loads a subset).
pub const NOT_WANTED: u32 = 0x42;
const WANTED: u32 = 0x43;

/// Worker slot flags.
pub const SLOT_RETIRED: u32 = 1;
pub const SLOT_STUCK: u32 = 2;

/// Wait states.
pub const WAIT_IDLE: u32 = 0;
pub const WAIT_ACTIVE: u32 = 1;
pub const WAIT_SATISFIED: u32 = 2;
pub const WAIT_TIMED_OUT: u32 = 3;

/// Simulation flags per module.
pub const SIM_FAIL: u32 = 1;
pub const SIM_HANG: u32 = 2;

// Control words.
const LOCK: usize = 0;
const READY_SEQ: usize = 1;
const AWAIT_LEN: usize = 2;
const IDLE_COUNT: usize = 3;
const DONE: usize = 4;
const HEAP_LEN: usize = 5;
const SPAWNED: usize = 6;
const CONTROL_WORDS: usize = 8;

pub struct State {
    ctl: &'static [AtomicU32],
    pub status: &'static [AtomicU32],
    pending: &'static [AtomicU32],
    pub cause: &'static [AtomicU32],
    pub errno: &'static [AtomicU32],
    pub worker: &'static [AtomicU32],
    pub sim: &'static [AtomicU32],
    heap: &'static [AtomicU32],
    skip: &'static [AtomicU32],
    pub slot_tid: &'static [AtomicU32],
    pub slot_module: &'static [AtomicU32],
    pub slot_flags: &'static [AtomicU32],
    pub start: &'static [AtomicU64],
    pub end: &'static [AtomicU64],
    pub slot_start: &'static [AtomicU64],
    /// Modules loaded whose waits the main task has not yet seen (a stack).
    awaiting: &'static [AtomicU32],
    /// Per module: 1 while its dependents wait for its device waits.
    pub await_flag: &'static [AtomicU32],
    /// Per wait record: WAIT_* state, start and end (ns).
    pub wstatus: &'static [AtomicU32],
    pub wstart: &'static [AtomicU64],
    pub wend: &'static [AtomicU64],
    /// When the main task will next look for stuck loads on its own (ns).
    main_until: &'static AtomicU64,
}

/// An element of a state array; a stray index reads and writes a dummy
/// instead of panicking (indices come from a validated plan, so this never
/// happens; it just keeps a panic path out of every access).
#[inline(always)]
pub fn at<T: Slot>(s: &[T], i: usize) -> &T {
    match s.get(i) {
        Some(x) => x,
        None => T::dummy(),
    }
}

pub trait Slot: 'static {
    fn dummy() -> &'static Self;
}

impl Slot for AtomicU32 {
    fn dummy() -> &'static Self {
        static D: AtomicU32 = AtomicU32::new(0);
        &D
    }
}

impl Slot for AtomicU64 {
    fn dummy() -> &'static Self {
        static D: AtomicU64 = AtomicU64::new(0);
        &D
    }
}

fn take<T>(s: &mut &'static [T], n: usize) -> &'static [T] {
    let (a, b) = s.split_at(n);
    *s = b;
    a
}

impl State {
    /// All state for `n` modules in one anonymous mapping.
    pub fn new(n: usize, waits: usize) -> Result<State, Errno> {
        let (mut w64, mut w32) =
            mapping::map_state(2 * n + MAX_WORKERS + 1 + 2 * waits, CONTROL_WORDS + 10 * n + 3 * MAX_WORKERS + waits)?;
        Ok(State {
            ctl: take(&mut w32, CONTROL_WORDS),
            status: take(&mut w32, n),
            pending: take(&mut w32, n),
            cause: take(&mut w32, n),
            errno: take(&mut w32, n),
            worker: take(&mut w32, n),
            sim: take(&mut w32, n),
            heap: take(&mut w32, n),
            skip: take(&mut w32, n),
            slot_tid: take(&mut w32, MAX_WORKERS),
            slot_module: take(&mut w32, MAX_WORKERS),
            slot_flags: take(&mut w32, MAX_WORKERS),
            start: take(&mut w64, n),
            end: take(&mut w64, n),
            slot_start: take(&mut w64, MAX_WORKERS),
            main_until: &take(&mut w64, 1)[0],
            awaiting: take(&mut w32, n),
            await_flag: take(&mut w32, n),
            wstatus: take(&mut w32, waits),
            wstart: take(&mut w64, waits),
            wend: take(&mut w64, waits),
        })
    }

    pub fn done(&self) -> u32 {
        at(self.ctl, DONE).load(Acquire)
    }
    pub fn spawned(&self) -> usize {
        at(self.ctl, SPAWNED).load(Acquire) as usize
    }
}

/// Everything a worker needs, set once by the main task before any worker.
pub struct Ctx {
    pub plan: Plan<'static>,
    pub st: State,
    pub simulate: bool,
    /// Directory holding the module files, without a trailing slash.
    pub module_dir: heapless::Vec<u8, 512>,
    /// The compression the kernel can undo itself (`/sys/module/compression`).
    pub kernel_decompress: Option<Compression>,
    /// Stuck timeout (ms) for modules without their own; 0: none.
    pub module_timeout_ms: u32,
    /// The command line's --module-timeout overrides per-module values.
    pub timeout_forced: bool,
    /// The kernel command line in /init mode (module parameters, blacklist).
    pub cmdline: super::init::CmdlineBuf,
    /// eventfd on which workers wake the main task.
    pub wake_fd: Option<rustix::fd::OwnedFd>,
}

pub static CTX: mapping::SetOnce<Ctx> = mapping::SetOnce::new();

/// `ns` nanoseconds as a timespec (an absolute time or a duration).
pub fn timespec(ns: u64) -> rustix::time::Timespec {
    rustix::time::Timespec { tv_sec: (ns / 1_000_000_000) as _, tv_nsec: (ns % 1_000_000_000) as _ }
}

/// CLOCK_MONOTONIC, ns (the clock of the trace and of the kernel's ktime).
#[cfg(target_arch = "x86_64")]
pub fn now_ns() -> u64 {
    super::arch::x86_64::monotonic_ns()
}

#[cfg(not(target_arch = "x86_64"))]
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The one lock: a three-state futex mutex (0 free, 1 held, 2 contended).
pub struct Guard<'a>(&'a AtomicU32);

pub fn lock(w: &AtomicU32) -> Guard<'_> {
    if w.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
        while w.swap(2, Acquire) != 0 {
            let _ = futex::wait(w, futex::Flags::PRIVATE, 2, None);
        }
    }
    Guard(w)
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.0.swap(0, Release) == 2 {
            let _ = futex::wake(self.0, futex::Flags::PRIVATE, 1);
        }
    }
}

impl Ctx {
    pub fn timeout_ms(&self, m: u32) -> u32 {
        let own = self.plan.module(m).map_or(0, |x| x.timeout_ms());
        if own != 0 && !self.timeout_forced {
            own
        } else {
            self.module_timeout_ms
        }
    }

    fn prio(&self, m: u32) -> (u64, u32) {
        // Higher priority first; among equals the earlier module (stable order).
        (self.plan.module(m).map_or(0, |x| x.priority_us()), u32::MAX - m)
    }

    /// Prepare the run and put every module whose dependencies are all done
    /// in the ready queue. `wanted` limits the run to those modules and what
    /// they wait for (empty: the whole plan). Modules the kernel command line
    /// blacklists are skipped, with everything that needs them. Called once,
    /// before the workers start. Returns how many modules take part.
    pub fn seed(&self, wanted: &[u32]) -> u32 {
        let st = &self.st;
        let n = self.plan.module_count();
        let _g = lock(at(st.ctl, LOCK));
        if !wanted.is_empty() {
            for &w in wanted {
                at(st.status, w as usize).store(WANTED, Relaxed);
            }
            // Dependencies come before their dependents: one backward pass.
            for i in (0..n).rev() {
                if at(st.status, i as usize).load(Relaxed) != WANTED {
                    at(st.status, i as usize).store(NOT_WANTED, Relaxed);
                    at(st.ctl, DONE).fetch_add(1, Relaxed);
                    continue;
                }
                at(st.status, i as usize).store(WAITING, Relaxed);
                for e in self.plan.module(i).into_iter().flat_map(|m| m.waits_for()) {
                    at(st.status, e.module as usize).store(WANTED, Relaxed);
                }
            }
        }
        for m in self.plan.modules() {
            at(st.pending, m.index() as usize).store(m.waits_for().len() as u32, Relaxed);
        }
        if !self.cmdline.is_empty() {
            let mut newly = 0;
            for m in self.plan.modules() {
                if self.cmdline.view().blacklists(m.name()) {
                    // Skipped with itself as the cause: "blacklisted".
                    self.skip_from(m.index(), m.index(), &mut newly);
                }
            }
        }
        for m in self.plan.modules() {
            let i = m.index() as usize;
            if at(st.pending, i).load(Relaxed) == 0 && at(st.status, i).load(Relaxed) == WAITING {
                at(st.status, i).store(READY, Relaxed);
                self.push(m.index());
            }
        }
        n - at(st.ctl, DONE).load(Relaxed)
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

    // ---- completion (under the lock) ----

    /// One dependency of `w` is done: ready it when it was the last one.
    fn release(&self, w: u32, newly: &mut u32) {
        let i = w as usize;
        let left = at(self.st.pending, i).load(Relaxed).saturating_sub(1);
        at(self.st.pending, i).store(left, Relaxed);
        if left == 0 && at(self.st.status, i).load(Relaxed) == WAITING {
            at(self.st.status, i).store(READY, Relaxed);
            self.push(w);
            *newly += 1;
        }
    }

    /// Mark `w` skipped because `root` failed, and everything that hard-depends
    /// on it, transitively; release soft dependents. Explicit stack, no recursion.
    fn skip_from(&self, w: u32, root: u32, newly: &mut u32) {
        let st = &self.st;
        let mut top = 0usize;
        let mark = |x: u32, top: &mut usize| {
            let s = at(st.status, x as usize);
            if s.load(Relaxed) == WAITING {
                s.store(result::SKIPPED as u32, Relaxed);
                at(st.cause, x as usize).store(root, Relaxed);
                at(st.ctl, DONE).fetch_add(1, Relaxed);
                at(st.skip, *top).store(x, Relaxed);
                *top += 1;
            }
        };
        mark(w, &mut top);
        while top > 0 {
            top -= 1;
            let x = at(st.skip, top).load(Relaxed);
            let Some(m) = self.plan.module(x) else { continue };
            for e in m.dependents() {
                if e.hard {
                    mark(e.module, &mut top);
                } else {
                    self.release(e.module, newly);
                }
            }
        }
    }

    /// Record the outcome of `m` and release what waited for it.
    /// Returns how many modules became ready.
    fn finish(&self, m: u32, outcome: Outcome, end: u64) -> u32 {
        let st = &self.st;
        let i = m as usize;
        let stuck = at(st.status, i).load(Relaxed) & STUCK;
        let (code, errno) = match outcome {
            Outcome::Loaded => (result::LOADED, 0),
            Outcome::Present => (result::PRESENT, 0),
            Outcome::Builtin => (result::BUILTIN, 0),
            Outcome::Failed(e) => (result::FAILED, e),
        };
        at(st.status, i).store(code as u32 | stuck, Relaxed);
        at(st.errno, i).store(errno as u32, Relaxed);
        at(st.end, i).store(end, Relaxed);
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
    /// what waits for it. Under the lock. Returns how many became ready.
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

    // ---- workers ----

    /// The loop of worker `id`: take the best ready module, load it, release
    /// its dependents; sleep on the futex when nothing is ready.
    pub fn work(&self, id: usize) {
        let st = &self.st;
        let n = self.plan.module_count();
        let mut g = lock(at(st.ctl, LOCK));
        loop {
            if at(st.slot_flags, id).load(Relaxed) & SLOT_RETIRED != 0 {
                break;
            }
            if let Some(m) = self.pop() {
                let t = now_ns();
                at(st.status, m as usize).store(RUNNING, Relaxed);
                at(st.start, m as usize).store(t, Relaxed);
                at(st.worker, m as usize).store(id as u32, Relaxed);
                at(st.slot_start, id).store(t, Relaxed);
                at(st.slot_module, id).store(m, SeqCst);
                drop(g);
                // The main task times loads out; wake it when it sleeps past
                // the moment this one would count as stuck.
                let timeout = self.timeout_ms(m) as u64 * 1_000_000;
                if timeout > 0 && t + timeout < st.main_until.load(SeqCst) {
                    self.wake_main();
                }

                let outcome = kernel::load(self, m, t);

                g = lock(at(st.ctl, LOCK));
                at(st.slot_module, id).store(IDLE, Release);
                let newly = self.finish(m, outcome, now_ns());
                if at(st.ctl, DONE).load(Relaxed) >= n {
                    // Everything is done: wake every idle worker and the main task.
                    at(st.ctl, READY_SEQ).fetch_add(1, Relaxed);
                    drop(g);
                    let _ = futex::wake(at(st.ctl, READY_SEQ), futex::Flags::PRIVATE, i32::MAX as u32);
                    self.wake_main();
                    g = lock(at(st.ctl, LOCK));
                } else if at(st.await_flag, m as usize).load(Relaxed) != 0 {
                    // Its devices are the main task's to watch.
                    drop(g);
                    self.wake_main();
                    g = lock(at(st.ctl, LOCK));
                } else {
                    let idle = at(st.ctl, IDLE_COUNT).load(Relaxed);
                    // This worker takes one of the new modules itself, unless
                    // it was retired (replaced while its load was stuck).
                    let retired = at(st.slot_flags, id).load(Relaxed) & SLOT_RETIRED != 0;
                    let wake = if retired { newly } else { newly.saturating_sub(1) }.min(idle);
                    if wake > 0 {
                        at(st.ctl, READY_SEQ).fetch_add(1, Relaxed);
                        drop(g);
                        let _ = futex::wake(at(st.ctl, READY_SEQ), futex::Flags::PRIVATE, wake);
                        g = lock(at(st.ctl, LOCK));
                    }
                }
                continue;
            }
            if at(st.ctl, DONE).load(Relaxed) >= n {
                break;
            }
            // Nothing ready: sleep until the sequence word moves.
            let seq = at(st.ctl, READY_SEQ).load(Relaxed);
            at(st.ctl, IDLE_COUNT).fetch_add(1, Relaxed);
            drop(g);
            let _ = futex::wait(at(st.ctl, READY_SEQ), futex::Flags::PRIVATE, seq, None);
            g = lock(at(st.ctl, LOCK));
            at(st.ctl, IDLE_COUNT).fetch_sub(1, Relaxed);
        }
        drop(g);
    }

    /// Reserve the next worker slot (main task only).
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

    /// Main task: mark loads that outlived their timeout as stuck and retire
    /// their workers. Fills `out` with (worker, module) pairs newly stuck and
    /// returns the earliest time a running load will time out.
    pub fn check_stuck(&self, now: u64, out: &mut heapless::Vec<(usize, u32), MAX_WORKERS>) -> Option<u64> {
        let st = &self.st;
        let _g = lock(at(st.ctl, LOCK));
        let mut next: Option<u64> = None;
        for id in 0..self.st.spawned() {
            let m = at(st.slot_module, id).load(Acquire);
            if m == IDLE || at(st.slot_flags, id).load(Relaxed) & SLOT_STUCK != 0 {
                continue;
            }
            let t = self.timeout_ms(m) as u64 * 1_000_000;
            if t == 0 {
                continue;
            }
            let due = at(st.slot_start, id).load(Relaxed) + t;
            if now >= due {
                at(st.slot_flags, id).fetch_or(SLOT_STUCK | SLOT_RETIRED, Relaxed);
                at(st.status, m as usize).fetch_or(STUCK, Relaxed);
                let _ = out.push((id, m));
            } else {
                next = Some(next.map_or(due, |x: u64| x.min(due)));
            }
        }
        next
    }

    /// Ask every worker to stop taking work (main task, at the deadline).
    pub fn retire_all(&self) {
        let st = &self.st;
        let g = lock(at(st.ctl, LOCK));
        for id in 0..st.spawned() {
            at(st.slot_flags, id).fetch_or(SLOT_RETIRED, Relaxed);
        }
        at(st.ctl, READY_SEQ).fetch_add(1, Relaxed);
        drop(g);
        let _ = futex::wake(at(st.ctl, READY_SEQ), futex::Flags::PRIVATE, i32::MAX as u32);
    }

    /// Wait until worker `id` has exited (its tid word cleared by the kernel),
    /// at most `timeout_ms`.
    pub fn join(&self, id: usize, timeout_ms: u64) -> bool {
        let w = at(self.st.slot_tid, id);
        let end = now_ns() + timeout_ms * 1_000_000;
        loop {
            let tid = w.load(Acquire);
            if tid == 0 {
                return true;
            }
            let now = now_ns();
            if now >= end {
                return false;
            }
            let ts = timespec(end - now);
            // The kernel's wake at task exit is a shared futex wake: wait
            // without the PRIVATE flag to match it.
            let _ = futex::wait(w, futex::Flags::empty(), tid, Some(&ts));
        }
    }

    /// Main task, before it looks at the workers: any load that starts from
    /// now on wakes it until it says when it will wake by itself.
    pub fn begin_check(&self) {
        self.st.main_until.store(u64::MAX, SeqCst);
    }

    /// Wake the main task (a worker finished the last module, started a
    /// load the main task must time, or loaded a module with waits).
    pub fn wake_main(&self) {
        if let Some(fd) = &self.wake_fd {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }

    /// Main task: forget earlier wake-ups (they are about to be looked at).
    pub fn clear_wakeups(&self) {
        if let Some(fd) = &self.wake_fd {
            let mut b = [0u8; 8];
            let _ = rustix::io::read(fd, &mut b);
        }
    }

    /// Main task: modules whose waits it has not seen yet.
    pub fn take_awaiting(&self, mut each: impl FnMut(u32)) {
        let st = &self.st;
        let _g = lock(at(st.ctl, LOCK));
        let len = at(st.ctl, AWAIT_LEN).swap(0, Relaxed) as usize;
        for i in 0..len {
            each(at(st.awaiting, i).load(Relaxed));
        }
    }

    /// Main task: the waits of `m` are over (all satisfied: `ok`); release
    /// or skip its dependents and wake workers for what became ready.
    pub fn release_after_waits(&self, m: u32, ok: bool) {
        let st = &self.st;
        let g = lock(at(st.ctl, LOCK));
        at(st.await_flag, m as usize).store(0, Relaxed);
        let newly = self.release_dependents(m, ok);
        let idle = at(st.ctl, IDLE_COUNT).load(Relaxed);
        let all = at(st.ctl, DONE).load(Relaxed) >= self.plan.module_count();
        let wake = if all { i32::MAX as u32 } else { newly.min(idle) };
        if wake > 0 {
            at(st.ctl, READY_SEQ).fetch_add(1, Relaxed);
        }
        drop(g);
        if wake > 0 {
            let _ = futex::wake(at(st.ctl, READY_SEQ), futex::Flags::PRIVATE, wake);
        }
    }

    /// Sleep until a worker wakes the main task, a watched descriptor has
    /// something, or `until` (ns) passes.
    pub fn wait_event(&self, until: Option<u64>, watched: [Option<rustix::fd::BorrowedFd<'_>>; 2]) {
        use rustix::fd::AsFd;
        self.st.main_until.store(until.unwrap_or(u64::MAX), SeqCst);
        let [a, b] = watched;
        super::waits::poll_until(&[self.wake_fd.as_ref().map(|f| f.as_fd()), a, b], until);
    }

}
