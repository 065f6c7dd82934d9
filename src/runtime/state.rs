//! The run-time state of a run: every module's status, the ready heap, the
//! worker slots and the device waits, as atomics in one anonymous mapping
//! (no heap). The layout is fixed by the plan's counts when the run starts.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

use crate::plan::trace::result;
use rustix::io::Errno;

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
/// Part of a partial run (only while it is being set up).
pub const WANTED: u32 = 0x43;

/// Worker slot flags.
pub const SLOT_RETIRED: u32 = 1;
pub const SLOT_STUCK: u32 = 2;

/// A worker task's scheduling tier (`State::slot_tier`): not set yet, the
/// run's normal priority, or lowered (see `Sched::retier`).
pub const TIER_UNSET: u32 = 0;
pub const TIER_NORMAL: u32 = 1;
pub const TIER_LOW: u32 = 2;

/// Device wait states.
pub const WAIT_IDLE: u32 = 0;
pub const WAIT_ACTIVE: u32 = 1;
pub const WAIT_SATISFIED: u32 = 2;
pub const WAIT_TIMED_OUT: u32 = 3;

// Control words.
pub const LOCK: usize = 0;
pub const READY_SEQ: usize = 1;
pub const AWAIT_LEN: usize = 2;
pub const IDLE_COUNT: usize = 3;
pub const DONE: usize = 4;
pub const HEAP_LEN: usize = 5;
pub const SPAWNED: usize = 6;
/// Nonzero while the run stays open for modules wanted later (coldplug):
/// workers and the main task do not end when everything wanted so far is done.
pub const HOLD: usize = 7;
/// How many loads in flight keep the normal priority (the CPUs); the others
/// run lowered. 0: no tiers (no more workers than CPUs, or lowering failed).
pub const NORMAL_CAP: usize = 8;
/// The nice value loads run at normally, plus 20 (the process's own at the start).
pub const NICE_BASE: usize = 9;
/// Workers holding a load back while the kernel loads what it requested
/// (see `Sched::hold_for_requests`); while nonzero, the others take no
/// load with a long serial part.
pub const HOLDING: usize = 10;
/// Loads held back so far, and for how long in all (ms).
pub const HOLDS: usize = 11;
pub const HELD_MS: usize = 12;
/// The unpacker (see `runtime::unpack`): its task id while it runs (the
/// kernel clears it), nonzero once it must stop, the images it made and
/// how many of them a load used, and the memory (KiB) of the images made
/// but not yet loaded.
pub const UNPACK_TID: usize = 13;
pub const UNPACK_STOP: usize = 14;
pub const UNPACKED: usize = 15;
pub const UNPACK_USED: usize = 16;
pub const UNPACK_KIB: usize = 17;
/// How much memory (KiB) the images not yet loaded may take.
pub const UNPACK_BUDGET_KIB: usize = 18;
const CONTROL_WORDS: usize = 19;

/// Per-module unpack states (`State::unpack`).
pub const UNPACK_NONE: u32 = 0;
/// The unpacker is decoding it, or has offered its image.
pub const UNPACK_BUSY: u32 = 1;
/// A worker took the module (with or without the image): hands off.
pub const UNPACK_GONE: u32 = 2;
/// It did not decode; the file is loaded as it is.
pub const UNPACK_FAILED: u32 = 3;

/// The worker slot id of the unpacker's task (not a worker slot).
pub const UNPACKER: usize = MAX_WORKERS;

pub struct State {
    pub ctl: &'static [AtomicU32],
    pub status: &'static [AtomicU32],
    /// Per module: dependencies not yet done.
    pub pending: &'static [AtomicU32],
    /// Per skipped module: the module whose failure (or blacklisting) skipped it.
    pub cause: &'static [AtomicU32],
    pub errno: &'static [AtomicU32],
    pub worker: &'static [AtomicU32],
    /// The ready queue: a binary max-heap of module indices.
    pub heap: &'static [AtomicU32],
    /// Scratch stack for skipping dependents transitively.
    pub skip: &'static [AtomicU32],
    /// Scratch list of the modules a `want` adds to the run.
    pub want: &'static [AtomicU32],
    pub slot_tid: &'static [AtomicU32],
    pub slot_module: &'static [AtomicU32],
    pub slot_flags: &'static [AtomicU32],
    /// Per worker slot: its task's tier (TIER_*).
    pub slot_tier: &'static [AtomicU32],
    pub start: &'static [AtomicU64],
    pub end: &'static [AtomicU64],
    pub slot_start: &'static [AtomicU64],
    /// Per worker slot: the CPU time its task had at the last sample that
    /// saw it change, and when that sample was taken (0: none this load).
    pub slot_cpu: &'static [AtomicU64],
    pub slot_cpu_at: &'static [AtomicU64],
    /// Modules loaded whose device waits the main task has not yet seen (a stack).
    pub awaiting: &'static [AtomicU32],
    /// Per module: 1 while its dependents wait for its device waits.
    pub await_flag: &'static [AtomicU32],
    /// Per module: its UNPACK_* state, and the slot of its unpacked image
    /// (`mapping::Buffer::offer`, `mapping::claim`).
    pub unpack: &'static [AtomicU32],
    pub unpack_addr: &'static [AtomicU64],
    pub unpack_len: &'static [AtomicU64],
    /// Per device-wait record: WAIT_* state, start and end (ns).
    pub wstatus: &'static [AtomicU32],
    pub wstart: &'static [AtomicU64],
    pub wend: &'static [AtomicU64],
    /// When the main task will next look for stuck loads on its own (ns).
    pub main_until: &'static AtomicU64,
    /// When the last load ended (ns; coldplug's settle).
    pub last_end: &'static AtomicU64,
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
    let (a, b) = s.split_at(n.min(s.len()));
    *s = b;
    a
}

/// The number of `AtomicU64` and `AtomicU32` words of the state of `n`
/// modules and `waits` device waits.
fn words(n: usize, waits: usize) -> (usize, usize) {
    (4 * n + 3 * MAX_WORKERS + 2 + 2 * waits, CONTROL_WORDS + 11 * n + 4 * MAX_WORKERS + waits)
}

impl State {
    /// All state for `n` modules and `waits` device waits in one anonymous mapping.
    pub fn new(n: usize, waits: usize) -> Result<State, Errno> {
        let (n64, n32) = words(n, waits);
        let (mut w64, mut w32) = mapping::map_state(n64, n32)?;
        Ok(State {
            ctl: take(&mut w32, CONTROL_WORDS),
            status: take(&mut w32, n),
            pending: take(&mut w32, n),
            cause: take(&mut w32, n),
            errno: take(&mut w32, n),
            worker: take(&mut w32, n),
            heap: take(&mut w32, n),
            skip: take(&mut w32, n),
            want: take(&mut w32, n),
            slot_tid: take(&mut w32, MAX_WORKERS),
            slot_module: take(&mut w32, MAX_WORKERS),
            slot_flags: take(&mut w32, MAX_WORKERS),
            slot_tier: take(&mut w32, MAX_WORKERS),
            start: take(&mut w64, n),
            end: take(&mut w64, n),
            slot_start: take(&mut w64, MAX_WORKERS),
            slot_cpu: take(&mut w64, MAX_WORKERS),
            slot_cpu_at: take(&mut w64, MAX_WORKERS),
            main_until: at(take(&mut w64, 1), 0),
            last_end: at(take(&mut w64, 1), 0),
            awaiting: take(&mut w32, n),
            await_flag: take(&mut w32, n),
            unpack: take(&mut w32, n),
            unpack_addr: take(&mut w64, n),
            unpack_len: take(&mut w64, n),
            wstatus: take(&mut w32, waits),
            wstart: take(&mut w64, waits),
            wend: take(&mut w64, waits),
        })
    }

    /// Give the mapping back (runs on the fake kernel, many in one process).
    ///
    /// # Safety
    /// No task uses this state any more: every worker of its run has exited.
    #[cfg(any(test, feature = "fake"))]
    #[allow(unsafe_code)]
    pub unsafe fn unmap(self) {
        let (n64, n32) = words(self.status.len(), self.wstatus.len());
        // SAFETY: `start` is the first slice taken from the mapping's
        // AtomicU64 part (see `new`), so its pointer is the mapping's start;
        // the caller vouches that nothing uses it.
        unsafe { mapping::unmap_state(self.start.as_ptr(), n64, n32) }
    }

    /// Modules done (or out of the run).
    pub fn done(&self) -> u32 {
        at(self.ctl, DONE).load(Acquire)
    }

    /// Whether the run is over: every module done (or out of it), and no
    /// more will be wanted.
    pub fn finished(&self, n: u32) -> bool {
        self.done() >= n && at(self.ctl, HOLD).load(Acquire) == 0
    }

    /// Worker slots used so far.
    pub fn spawned(&self) -> usize {
        at(self.ctl, SPAWNED).load(Acquire) as usize
    }
}
