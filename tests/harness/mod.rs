//! What every integration test shares, whichever binary it runs: a scratch
//! directory per test, and what a test does when something it needs is
//! missing (skip visibly, or fail when the matching `PARMOD_REQUIRE_*`
//! variable is 1).
//!
//! Included by `tests/common` and `tests/plan_tool` (`#[path]`), so a test
//! crate gets it through whichever of the two it uses.
#![allow(dead_code)] // each test crate uses its own part

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh, empty, private directory under the system temp dir, removed on
/// drop unless the test panicked (then it is kept and its path printed, for
/// post-mortems).
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    /// `tag` names the test; the directory name also holds the process id
    /// and a counter, so no two scratch dirs (of this run or another) meet.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "parmod-test-{}-{}-{nanos}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Give up the clean-up: the directory stays after the test.
    pub fn keep(self) -> PathBuf {
        let mut this = std::mem::ManuallyDrop::new(self);
        std::mem::take(&mut this.dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept scratch dir {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether `$VAR` is 1: the test must not skip for want of what `VAR` covers.
pub fn required(var: &str) -> bool {
    std::env::var(var).as_deref() == Ok("1")
}

/// A precondition of `what` is missing (`why`): fail when `$VAR` is 1,
/// otherwise say so with a line starting "SKIP" and let the caller return.
/// `how` tells what would make it run. The line goes to the process's
/// stderr itself, past the test harness's capture, so that it shows in the
/// output of a passing run too.
pub fn skip(var: &str, what: &str, why: &str, how: &str) {
    assert!(
        !required(var),
        "{what}: {why}, and {var}=1 requires it to run ({how})"
    );
    let line = format!("SKIP {what}: {why} ({how}; {var}=1 makes this a failure)\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}
