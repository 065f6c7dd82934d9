//! The main task while a run goes on: it starts the device waits of loaded
//! modules, releases their dependents once the devices are there, reports
//! stuck loads and starts replacement workers, and stops at the deadline.
//! It sleeps in [`Kernel::sleep`] in between: woken by workers (a module
//! with device waits loaded, a load to time, the last module done), by
//! watched paths and uevents, or by the next timeout.
//!
//! The device-wait check ([`Waiter::pass`]) is shared with `parmod wait`.

use core::sync::atomic::Ordering::Relaxed;

use super::clock::{earliest, MS};
use super::kernel::real::is_sys;
use super::kernel::{Kernel, Seen, Wake};
use super::out::{emit, Out, Show};
use super::sched::Sched;
use super::state::*;

/// Something the main task does during a run that keeps it open (held):
/// coldplug, waiting for the root device.
pub trait Hook {
    /// Look at what arrived; returns when to be asked again by itself.
    fn step(&mut self, s: &Sched) -> Option<u64>;
    /// Whether the run may end for this hook (asked after every `step`).
    fn done(&mut self, s: &Sched, now: u64) -> bool;
}

/// A list of paths that must appear, each with its state (WAIT_*).
pub trait WaitList {
    fn count(&self) -> u32;
    fn path(&self, i: u32) -> &[u8];
    fn state(&self, i: u32) -> u32;
    /// When wait `i` gives up by itself (ns), if it has its own timeout.
    fn limit(&self, i: u32) -> Option<u64>;
    /// Wait `i` ended at `now` as `state` (satisfied or timed out).
    fn decide(&self, i: u32, state: u32, now: u64);
}

const BACKOFF_FIRST_NS: u64 = 5 * MS;
const BACKOFF_MAX_NS: u64 = 50 * MS;

/// Checks device waits. /sys (kernfs) raises no events for new attributes:
/// while a /sys path is pending it is looked at again after every uevent
/// and on a bounded back-off in between (5 ms doubling to 50 ms, restarted
/// by every uevent). So is any path no watch could be set for (no inotify).
pub struct Waiter {
    recheck_at: u64,
    step: u64,
}

impl Default for Waiter {
    fn default() -> Self {
        Self::new()
    }
}

impl Waiter {
    pub const fn new() -> Self {
        Waiter { recheck_at: u64::MAX, step: BACKOFF_FIRST_NS }
    }

    fn restart_backoff(&mut self, now: u64) {
        self.step = BACKOFF_FIRST_NS;
        self.recheck_at = now + self.step;
    }

    /// One look at every active wait: the ones whose path is there are
    /// satisfied, the ones past their own timeout have timed out, the
    /// others are watched. Returns when to look again by itself (the next
    /// timeout or /sys re-check), if ever.
    pub fn pass(&mut self, k: &dyn Kernel, list: &dyn WaitList, now: u64) -> Option<u64> {
        let mut next = None;
        let mut recheck = false;
        for i in 0..list.count() {
            if list.state(i) != WAIT_ACTIVE {
                continue;
            }
            let path = list.path(i);
            let limit = list.limit(i);
            let seen = k.path_exists(path, true);
            if seen == Seen::Exists {
                list.decide(i, WAIT_SATISFIED, now);
            } else if limit.is_some_and(|l| now >= l) {
                list.decide(i, WAIT_TIMED_OUT, now);
            } else {
                recheck |= is_sys(path) || seen == Seen::Unwatched;
                next = earliest(next, limit);
            }
        }
        if recheck {
            if self.recheck_at == u64::MAX {
                self.restart_backoff(now);
            } else if now >= self.recheck_at {
                self.step = (self.step * 2).min(BACKOFF_MAX_NS);
                self.recheck_at = now + self.step;
            }
            next = earliest(next, Some(self.recheck_at));
        } else {
            self.recheck_at = u64::MAX;
        }
        next
    }

    /// What woke the main task: a uevent restarts the /sys back-off.
    pub fn woke(&mut self, w: Wake, now: u64) {
        if w.has(Wake::UEVENT) && self.recheck_at != u64::MAX {
            self.restart_backoff(now);
        }
    }
}

/// The plan's device-wait records, with their state in the run's state.
struct PlanWaits<'a>(&'a Sched);

impl WaitList for PlanWaits<'_> {
    fn count(&self) -> u32 {
        self.0.plan.wait_count()
    }
    fn path(&self, i: u32) -> &[u8] {
        self.0.plan.wait(i).map_or(b"", |w| w.path())
    }
    fn state(&self, i: u32) -> u32 {
        at(self.0.st.wstatus, i as usize).load(Relaxed)
    }
    fn limit(&self, i: u32) -> Option<u64> {
        let t = self.0.plan.wait(i).map_or(0, |w| w.timeout_ms());
        // (A wait without its own timeout stays active: the deadline
        // reports it as unfinished and its dependents as blocked.)
        (t > 0).then(|| at(self.0.st.wstart, i as usize).load(Relaxed) + t as u64 * MS)
    }
    fn decide(&self, i: u32, state: u32, now: u64) {
        at(self.0.st.wstatus, i as usize).store(state, Relaxed);
        at(self.0.st.wend, i as usize).store(now, Relaxed);
    }
}

fn activate(s: &Sched, w: u32, now: u64) {
    at(s.st.wstatus, w as usize).store(WAIT_ACTIVE, Relaxed);
    at(s.st.wstart, w as usize).store(now, Relaxed);
}

/// Supervise the run until every module and wait is done, or `deadline`
/// (ns) passes. With `inline` (a worker slot), the main task loads the
/// ready modules itself in between (no worker could start). With `hooks`
/// (coldplug, the root device), the run stays open (held) until every hook
/// is done. Returns whether the deadline ended it.
pub fn supervise(s: &'static Sched, deadline: Option<u64>, inline: Option<usize>, hooks: &mut [&mut dyn Hook]) -> bool {
    let (k, plan, st) = (s.kernel, s.plan, &s.st);
    let n = plan.module_count();
    let waits = PlanWaits(s);
    let mut waiter = Waiter::new();
    let mut finals_started = false;
    let mut held = !hooks.is_empty();
    loop {
        if let Some(slot) = inline {
            s.load_inline(slot);
        }
        let mut cold_next = None;
        if held {
            let mut all_done = true;
            for h in hooks.iter_mut() {
                let next = h.step(s);
                if !h.done(s, k.now()) {
                    all_done = false;
                    cold_next = earliest(cold_next, next);
                }
            }
            if all_done {
                s.release_hold();
                held = false;
                cold_next = None;
            }
        }
        s.begin_check();
        // (The clock is read after each module is seen done: a wait never
        // starts before its module ended.)
        s.take_awaiting(|m| {
            let now = k.now();
            for w in plan.module(m).map_or(0..0, |x| x.dev_waits()) {
                activate(s, w, now);
            }
        });
        if !finals_started && st.finished(n) {
            // Waits before success start once every module is done.
            finals_started = true;
            let now = k.now();
            for w in plan.waits().filter(|w| w.module().is_none()) {
                activate(s, w.index(), now);
            }
        }
        let now = k.now();
        let mut next = earliest(waiter.pass(k, &waits, now), cold_next);
        // Modules whose waits are all decided: their dependents go on (or
        // are skipped when a wait timed out).
        let mut released = false;
        for m in plan.modules().filter(|m| at(st.await_flag, m.index() as usize).load(Relaxed) != 0) {
            let states = m.dev_waits().map(|w| waits.state(w));
            if states.clone().any(|s| s == WAIT_ACTIVE || s == WAIT_IDLE) {
                continue;
            }
            let ok = states.clone().all(|s| s == WAIT_SATISFIED);
            s.release_after_waits(m.index(), ok);
            released = true;
        }
        if released {
            continue;
        }
        let finals_pending = plan.waits().any(|w| w.module().is_none() && waits.state(w.index()) == WAIT_ACTIVE);
        if st.finished(n) && finals_started && !finals_pending {
            return false;
        }
        let now = k.now();
        if deadline.is_some_and(|d| now >= d) {
            return true;
        }
        let mut stuck = heapless::Vec::<(usize, u32), MAX_WORKERS>::new();
        next = earliest(next, s.check_stuck(now, &mut stuck));
        for &(worker, m) in stuck.iter() {
            let name = Show(plan.module(m).map_or(b"?", |x| x.name()));
            let mut o = Out::stderr();
            emit!(o, "parmod: stuck: ", name, ": still loading after ", s.timeout_ms(m), " ms (worker ", worker, "); ");
            match s.start_worker() {
                Ok(id) => emit!(o, "worker ", id, " takes its place\n"),
                Err(_) => emit!(o, "no replacement worker could start\n"),
            }
        }
        let until = earliest(next, deadline);
        s.will_wake_at(until);
        let wake = k.sleep(until);
        waiter.woke(wake, k.now());
    }
}
