//! Shared by the tests that run the `parmod-plan` binary: a scratch
//! directory per test and a run that captures the exit status and output.
#![allow(dead_code)] // each test file uses its own part

use std::path::PathBuf;
use std::process::Command;

#[path = "../harness/mod.rs"]
mod harness;
#[allow(unused_imports)] // each test crate uses its own part
pub use harness::{required, skip, Scratch};

pub const BIN: &str = env!("CARGO_BIN_EXE_parmod-plan");

/// A fresh, empty scratch directory for test `test` of suite `suite`. It
/// stays after the test; a [`Scratch`] is removed when the test passes.
pub fn scratch(suite: &str, test: &str) -> PathBuf {
    Scratch::new(&format!("{suite}-{test}")).keep()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `parmod-plan ARGS`.
pub fn run(args: &[&str]) -> Run {
    let out = Command::new(BIN).args(args).output().expect("run parmod-plan");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
