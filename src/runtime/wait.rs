//! `parmod wait [--timeout MS] PATH...`: wait for device nodes or sysfs
//! attributes with the device-wait machinery of a run (inotify for /dev,
//! uevents and a back-off for /sys), instead of `udevadm settle` or sleep
//! loops. 0 once every path exists, 1 when the timeout passes first (naming
//! what is missing), 2 on a usage error.

use core::cell::Cell;

use super::args::{Arg, ArgCursor, ArgError};
use super::clock::MS;
use super::kernel::real::PATH_MAX;
use super::kernel::Kernel;
use super::mapping::Args;
use super::out::{emit, Out, Show};
use super::state::{WAIT_ACTIVE, WAIT_SATISFIED, WAIT_TIMED_OUT};
use super::supervisor::{WaitList, Waiter};

/// Most paths one `parmod wait` takes.
const MAX_PATHS: usize = 32;

struct Paths {
    paths: heapless::Vec<&'static [u8], MAX_PATHS>,
    state: [Cell<u32>; MAX_PATHS],
    end: u64,
}

impl WaitList for Paths {
    fn count(&self) -> u32 {
        self.paths.len() as u32
    }
    fn path(&self, i: u32) -> &[u8] {
        self.paths.get(i as usize).copied().unwrap_or(b"")
    }
    fn state(&self, i: u32) -> u32 {
        self.state.get(i as usize).map_or(WAIT_SATISFIED, Cell::get)
    }
    fn limit(&self, _i: u32) -> Option<u64> {
        Some(self.end)
    }
    fn decide(&self, i: u32, state: u32, _now: u64) {
        if let Some(c) = self.state.get(i as usize) {
            c.set(state);
        }
    }
}

fn usage(e: ArgError) -> i32 {
    let mut o = Out::stderr();
    match e {
        ArgError::Number(_, v) => emit!(o, "parmod wait: --timeout takes milliseconds, not '", Show(v), "'\n"),
        ArgError::Missing(f) => emit!(o, "parmod wait: ", f, " needs a value\n"),
        ArgError::Unknown(a) => emit!(o, "parmod wait: unknown option '", Show(a), "'\n"),
        _ => emit!(o, "usage: parmod wait [--timeout MS] PATH...\n"),
    }
    2
}

/// `args` from index 2 on (after `parmod wait`).
pub fn main(k: &dyn Kernel, args: &Args) -> i32 {
    let mut timeout_ms: u64 = 30_000;
    let mut paths = heapless::Vec::<&'static [u8], MAX_PATHS>::new();
    let mut c = ArgCursor::new(args, 2);
    while let Some(a) = c.next() {
        match a {
            Arg::Flag(b"--timeout" | b"-t", inline) => match c.number("--timeout", inline) {
                Ok(ms) => timeout_ms = ms as u64,
                Err(e) => return usage(e),
            },
            Arg::Flag(f, _) => return usage(ArgError::Unknown(f)),
            Arg::Word(w) => {
                let p = w.to_bytes();
                if p.first() != Some(&b'/') || p.len() >= PATH_MAX {
                    emit!(Out::stderr(), "parmod wait: '", Show(p), "' is not an absolute path\n");
                    return 2;
                }
                if paths.push(p).is_err() {
                    emit!(Out::stderr(), "parmod wait: at most ", MAX_PATHS, " paths\n");
                    return 2;
                }
            }
        }
    }
    if paths.is_empty() {
        return usage(ArgError::NoPlan);
    }
    // (No eventfd is needed: nothing but the paths wakes this command.)
    let start = k.now();
    let list = Paths { paths, state: core::array::from_fn(|_| Cell::new(WAIT_ACTIVE)), end: start + timeout_ms * MS };
    let mut w = Waiter::new();
    loop {
        let now = k.now();
        let next = w.pass(k, &list, now);
        let states = (0..list.count()).map(|i| list.state(i));
        if states.clone().all(|s| s == WAIT_SATISFIED) {
            return 0;
        }
        if states.clone().all(|s| s != WAIT_ACTIVE) {
            for i in (0..list.count()).filter(|&i| list.state(i) == WAIT_TIMED_OUT) {
                emit!(Out::stderr(), "parmod wait: ", Show(list.path(i)), " did not appear within ", timeout_ms, " ms\n");
            }
            return 1;
        }
        let wake = k.sleep(next);
        w.woke(wake, k.now());
    }
}
