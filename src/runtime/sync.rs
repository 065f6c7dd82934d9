//! Synchronisation without a runtime: the futex mutex that guards the ready
//! queue, and the set-once cell that publishes a value to every task.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering::*};

use rustix::thread::futex;

/// A three-state futex mutex over a word (0 free, 1 held, 2 contended).
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

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const SET: u8 = 2;

/// A value set at most once and then only read, by any task (std's
/// `OnceLock` without blocking: a second `set` fails instead of waiting).
/// The run context and the worker entry live in one, as statics, so they
/// stay valid while the main task exits or execs and a stuck worker is
/// still inside the kernel.
pub struct SetOnce<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written by exactly one caller of `set` (the one whose
// compare-and-swap moved EMPTY to WRITING) and published with Release; every
// reader observes SET with Acquire before it forms a shared reference, and
// nothing writes it again. Shared references cross tasks (T: Sync) and the
// value was made by whichever task called `set` (T: Send).
unsafe impl<T: Send + Sync> Sync for SetOnce<T> {}

impl<T> Default for SetOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SetOnce<T> {
    pub const fn new() -> Self {
        SetOnce { state: AtomicU8::new(EMPTY), value: UnsafeCell::new(MaybeUninit::uninit()) }
    }

    /// Store `v` and return a reference to it; if a value was set (or is
    /// being set) already, give `v` back.
    pub fn set(&self, v: T) -> Result<&T, T> {
        if self.state.compare_exchange(EMPTY, WRITING, Acquire, Relaxed).is_err() {
            return Err(v);
        }
        // SAFETY: the compare-and-swap above succeeded for this caller only,
        // and no reader touches the value before SET is published below.
        let r = unsafe { (*self.value.get()).write(v) };
        self.state.store(SET, Release);
        Ok(r)
    }

    pub fn get(&self) -> Option<&T> {
        if self.state.load(Acquire) != SET {
            return None;
        }
        // SAFETY: SET was published with Release after the only write.
        Some(unsafe { (*self.value.get()).assume_init_ref() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_once_keeps_the_first_value() {
        let c = SetOnce::new();
        assert_eq!(c.get(), None);
        assert_eq!(c.set(3).copied(), Ok(3));
        assert_eq!(c.set(4), Err(4));
        assert_eq!(c.get(), Some(&3));
    }

    #[test]
    fn racing_setters_see_one_winner() {
        let c: &'static SetOnce<usize> = std::boxed::Box::leak(std::boxed::Box::new(SetOnce::new()));
        let wins: std::vec::Vec<_> = (0..8)
            .map(|i| std::thread::spawn(move || c.set(i).is_ok()))
            .collect::<std::vec::Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .collect();
        assert_eq!(wins.iter().filter(|&&w| w).count(), 1);
        let v = *c.get().expect("set");
        assert!(wins[v], "the value is the winner's");
    }

    #[test]
    fn lock_excludes() {
        let w: &'static AtomicU32 = std::boxed::Box::leak(std::boxed::Box::new(AtomicU32::new(0)));
        let n: &'static AtomicU32 = std::boxed::Box::leak(std::boxed::Box::new(AtomicU32::new(0)));
        let hs: std::vec::Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let _g = lock(w);
                        // A non-atomic read-modify-write under the lock.
                        let v = n.load(Relaxed);
                        n.store(v + 1, Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("thread");
        }
        assert_eq!(n.load(Relaxed), 40_000);
    }
}
