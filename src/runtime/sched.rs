//! The scheduler: run-time state of every module, the priority-ordered ready
//! queue, and the worker loop. A module becomes ready the moment its last
//! dependency is done; workers take the ready module with the longest
//! remaining path. All shared state is atomics in one mapping; the queue and
//! the counters change under one futex lock, and idle workers sleep on a
//! futex sequence word (no polling).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

use parmod::plan::trace::result;
use parmod::plan::{Compression, Plan};
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

/// Simulation flags per module.
pub const SIM_FAIL: u32 = 1;
pub const SIM_HANG: u32 = 2;

// Control words.
const LOCK: usize = 0;
const READY_SEQ: usize = 1;
const EVENT: usize = 2;
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
    /// When the main task will next look for stuck loads on its own (ns).
    main_until: &'static AtomicU64,
}

fn take<T>(s: &mut &'static [T], n: usize) -> &'static [T] {
    let (a, b) = s.split_at(n);
    *s = b;
    a
}

impl State {
    /// All state for `n` modules in one anonymous mapping.
    pub fn new(n: usize) -> Result<State, Errno> {
        let (mut w64, mut w32) = mapping::map_state(2 * n + MAX_WORKERS + 1, CONTROL_WORDS + 8 * n + 3 * MAX_WORKERS)?;
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
        })
    }

    pub fn done(&self) -> u32 {
        self.ctl[DONE].load(Acquire)
    }
    pub fn spawned(&self) -> usize {
        self.ctl[SPAWNED].load(Acquire) as usize
    }
    pub fn event(&self) -> &AtomicU32 {
        &self.ctl[EVENT]
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
}

pub static CTX: mapping::SetOnce<Ctx> = mapping::SetOnce::new();

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
        let _g = lock(&st.ctl[LOCK]);
        if !wanted.is_empty() {
            for &w in wanted {
                st.status[w as usize].store(WANTED, Relaxed);
            }
            // Dependencies come before their dependents: one backward pass.
            for i in (0..n).rev() {
                if st.status[i as usize].load(Relaxed) != WANTED {
                    st.status[i as usize].store(NOT_WANTED, Relaxed);
                    st.ctl[DONE].fetch_add(1, Relaxed);
                    continue;
                }
                st.status[i as usize].store(WAITING, Relaxed);
                for e in self.plan.module(i).into_iter().flat_map(|m| m.waits_for()) {
                    st.status[e.module as usize].store(WANTED, Relaxed);
                }
            }
        }
        for m in self.plan.modules() {
            st.pending[m.index() as usize].store(m.waits_for().len() as u32, Relaxed);
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
            if st.pending[i].load(Relaxed) == 0 && st.status[i].load(Relaxed) == WAITING {
                st.status[i].store(READY, Relaxed);
                self.push(m.index());
            }
        }
        n - st.ctl[DONE].load(Relaxed)
    }

    // ---- the ready queue: a binary max-heap of module indices (under the lock) ----

    fn push(&self, m: u32) {
        let h = self.st.heap;
        let mut i = self.st.ctl[HEAP_LEN].load(Relaxed) as usize;
        self.st.ctl[HEAP_LEN].store(i as u32 + 1, Relaxed);
        let key = self.prio(m);
        while i > 0 {
            let parent = (i - 1) / 2;
            let pm = h[parent].load(Relaxed);
            if self.prio(pm) >= key {
                break;
            }
            h[i].store(pm, Relaxed);
            i = parent;
        }
        h[i].store(m, Relaxed);
    }

    fn pop(&self) -> Option<u32> {
        let h = self.st.heap;
        let len = self.st.ctl[HEAP_LEN].load(Relaxed) as usize;
        if len == 0 {
            return None;
        }
        let top = h[0].load(Relaxed);
        let last = h[len - 1].load(Relaxed);
        let len = len - 1;
        self.st.ctl[HEAP_LEN].store(len as u32, Relaxed);
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
                if r < len && self.prio(h[r].load(Relaxed)) > self.prio(h[l].load(Relaxed)) {
                    c = r;
                }
                let cm = h[c].load(Relaxed);
                if self.prio(cm) <= key {
                    break;
                }
                h[i].store(cm, Relaxed);
                i = c;
            }
            h[i].store(last, Relaxed);
        }
        Some(top)
    }

    // ---- completion (under the lock) ----

    /// One dependency of `w` is done: ready it when it was the last one.
    fn release(&self, w: u32, newly: &mut u32) {
        let i = w as usize;
        let left = self.st.pending[i].load(Relaxed).saturating_sub(1);
        self.st.pending[i].store(left, Relaxed);
        if left == 0 && self.st.status[i].load(Relaxed) == WAITING {
            self.st.status[i].store(READY, Relaxed);
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
            let s = &st.status[x as usize];
            if s.load(Relaxed) == WAITING {
                s.store(result::SKIPPED as u32, Relaxed);
                st.cause[x as usize].store(root, Relaxed);
                st.ctl[DONE].fetch_add(1, Relaxed);
                st.skip[*top].store(x, Relaxed);
                *top += 1;
            }
        };
        mark(w, &mut top);
        while top > 0 {
            top -= 1;
            let x = st.skip[top].load(Relaxed);
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
        let stuck = st.status[i].load(Relaxed) & STUCK;
        let (code, errno) = match outcome {
            Outcome::Loaded => (result::LOADED, 0),
            Outcome::Present => (result::PRESENT, 0),
            Outcome::Builtin => (result::BUILTIN, 0),
            Outcome::Failed(e) => (result::FAILED, e),
        };
        st.status[i].store(code as u32 | stuck, Relaxed);
        st.errno[i].store(errno as u32, Relaxed);
        st.end[i].store(end, Relaxed);
        st.ctl[DONE].fetch_add(1, Relaxed);
        let ok = !matches!(outcome, Outcome::Failed(_));
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
        let mut g = lock(&st.ctl[LOCK]);
        loop {
            if st.slot_flags[id].load(Relaxed) & SLOT_RETIRED != 0 {
                break;
            }
            if let Some(m) = self.pop() {
                let t = now_ns();
                st.status[m as usize].store(RUNNING, Relaxed);
                st.start[m as usize].store(t, Relaxed);
                st.worker[m as usize].store(id as u32, Relaxed);
                st.slot_start[id].store(t, Relaxed);
                st.slot_module[id].store(m, SeqCst);
                drop(g);
                // The main task times loads out; wake it when it sleeps past
                // the moment this one would count as stuck.
                let timeout = self.timeout_ms(m) as u64 * 1_000_000;
                if timeout > 0 && t + timeout < st.main_until.load(SeqCst) {
                    st.ctl[EVENT].fetch_add(1, Release);
                    let _ = futex::wake(&st.ctl[EVENT], futex::Flags::PRIVATE, 1);
                }

                let outcome = kernel::load(self, m, t);

                g = lock(&st.ctl[LOCK]);
                st.slot_module[id].store(IDLE, Release);
                let newly = self.finish(m, outcome, now_ns());
                if st.ctl[DONE].load(Relaxed) >= n {
                    // Everything is done: wake every idle worker and the main task.
                    st.ctl[READY_SEQ].fetch_add(1, Relaxed);
                    drop(g);
                    let _ = futex::wake(&st.ctl[READY_SEQ], futex::Flags::PRIVATE, i32::MAX as u32);
                    st.ctl[EVENT].fetch_add(1, Release);
                    let _ = futex::wake(&st.ctl[EVENT], futex::Flags::PRIVATE, 1);
                    g = lock(&st.ctl[LOCK]);
                } else {
                    let idle = st.ctl[IDLE_COUNT].load(Relaxed);
                    // This worker takes one of the new modules itself, unless
                    // it was retired (replaced while its load was stuck).
                    let retired = st.slot_flags[id].load(Relaxed) & SLOT_RETIRED != 0;
                    let wake = if retired { newly } else { newly.saturating_sub(1) }.min(idle);
                    if wake > 0 {
                        st.ctl[READY_SEQ].fetch_add(1, Relaxed);
                        drop(g);
                        let _ = futex::wake(&st.ctl[READY_SEQ], futex::Flags::PRIVATE, wake);
                        g = lock(&st.ctl[LOCK]);
                    }
                }
                continue;
            }
            if st.ctl[DONE].load(Relaxed) >= n {
                break;
            }
            // Nothing ready: sleep until the sequence word moves.
            let seq = st.ctl[READY_SEQ].load(Relaxed);
            st.ctl[IDLE_COUNT].fetch_add(1, Relaxed);
            drop(g);
            let _ = futex::wait(&st.ctl[READY_SEQ], futex::Flags::PRIVATE, seq, None);
            g = lock(&st.ctl[LOCK]);
            st.ctl[IDLE_COUNT].fetch_sub(1, Relaxed);
        }
        drop(g);
    }

    /// Reserve the next worker slot (main task only).
    pub fn new_slot(&self) -> Option<usize> {
        let id = self.st.ctl[SPAWNED].load(Relaxed) as usize;
        if id >= MAX_WORKERS {
            return None;
        }
        self.st.slot_module[id].store(IDLE, Relaxed);
        self.st.slot_flags[id].store(0, Relaxed);
        self.st.ctl[SPAWNED].store(id as u32 + 1, Release);
        Some(id)
    }

    /// Main task: mark loads that outlived their timeout as stuck and retire
    /// their workers. Fills `out` with (worker, module) pairs newly stuck and
    /// returns the earliest time a running load will time out.
    pub fn check_stuck(&self, now: u64, out: &mut heapless::Vec<(usize, u32), MAX_WORKERS>) -> Option<u64> {
        let st = &self.st;
        let _g = lock(&st.ctl[LOCK]);
        let mut next: Option<u64> = None;
        for id in 0..self.st.spawned() {
            let m = st.slot_module[id].load(Acquire);
            if m == IDLE || st.slot_flags[id].load(Relaxed) & SLOT_STUCK != 0 {
                continue;
            }
            let t = self.timeout_ms(m) as u64 * 1_000_000;
            if t == 0 {
                continue;
            }
            let due = st.slot_start[id].load(Relaxed) + t;
            if now >= due {
                st.slot_flags[id].fetch_or(SLOT_STUCK | SLOT_RETIRED, Relaxed);
                st.status[m as usize].fetch_or(STUCK, Relaxed);
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
        let g = lock(&st.ctl[LOCK]);
        for id in 0..st.spawned() {
            st.slot_flags[id].fetch_or(SLOT_RETIRED, Relaxed);
        }
        st.ctl[READY_SEQ].fetch_add(1, Relaxed);
        drop(g);
        let _ = futex::wake(&st.ctl[READY_SEQ], futex::Flags::PRIVATE, i32::MAX as u32);
    }

    /// Wait until worker `id` has exited (its tid word cleared by the kernel),
    /// at most `timeout_ms`.
    pub fn join(&self, id: usize, timeout_ms: u64) -> bool {
        let w = &self.st.slot_tid[id];
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
            let left = end - now;
            let ts = rustix::time::Timespec { tv_sec: (left / 1_000_000_000) as _, tv_nsec: (left % 1_000_000_000) as _ };
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

    /// Sleep until a worker signals the main task or `until` (ns) passes.
    pub fn wait_event(&self, seen: u32, until: Option<u64>) {
        self.st.main_until.store(until.unwrap_or(u64::MAX), SeqCst);
        let ts;
        let timeout = match until {
            Some(u) => {
                let left = u.saturating_sub(now_ns()).max(1);
                ts = rustix::time::Timespec { tv_sec: (left / 1_000_000_000) as _, tv_nsec: (left % 1_000_000_000) as _ };
                Some(&ts)
            }
            None => None,
        };
        let _ = futex::wait(&self.st.ctl[EVENT], futex::Flags::PRIVATE, seen, timeout);
    }
}
