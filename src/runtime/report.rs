//! The end of a run: one line per module that did not load, the summary
//! line, the exit status, and the binary trace.

use core::sync::atomic::Ordering::Relaxed;

use crate::plan::trace::{self, result, TraceHeader, TraceRecord, NO_CAUSE, NO_WORKER};
use crate::plan::Compression;
use rustix::fd::AsFd;
use rustix::fs::{Mode, OFlags};

use super::out::{emit, write_all, Out, Show, Sys};
use super::sched::Sched;
use super::state::{at, HELD_MS, HOLDS, UNPACKED, UNPACK_USED, NOT_WANTED, READY, RUNNING, STUCK, WAITING, WAIT_ACTIVE, WAIT_IDLE, WAIT_SATISFIED, WAIT_TIMED_OUT};

#[derive(Default)]
pub struct Counts {
    pub loaded: u32,
    pub present: u32,
    pub builtin: u32,
    pub failed: u32,
    pub skipped: u32,
    pub stuck: u32,
    pub blocked: u32,
    pub waits_failed: u32,
    pub disabled: u32,
}

fn name(ctx: &Sched, m: u32) -> Show<'static> {
    Show(ctx.plan.module(m).map_or(b"?", |x| x.name()))
}

/// How a module ended (or stands, at the deadline), as a trace result.
pub fn outcome(ctx: &Sched, m: u32) -> u8 {
    let s = at(ctx.st.status, m as usize).load(Relaxed);
    match s & !STUCK {
        WAITING | READY => result::BLOCKED,
        RUNNING => result::STUCK,
        code => (code as u8) | if s & STUCK != 0 { result::STUCK_FLAG } else { 0 },
    }
}

/// Print the per-module lines and the summary; return the exit status.
/// `workers`: how many worker tasks started, of how many asked for.
pub fn report(ctx: &Sched, now: u64, elapsed_ms: u64, quiet: bool, summary: bool, workers: (u32, u32)) -> i32 {
    let st = &ctx.st;
    let mut c = Counts::default();
    for m in 0..ctx.plan.module_count() {
        if at(st.status, m as usize).load(Relaxed) == NOT_WANTED {
            continue;
        }
        let r = outcome(ctx, m);
        let mut o = Out::stderr();
        match r & !result::STUCK_FLAG {
            result::LOADED => c.loaded += 1,
            result::PRESENT => c.present += 1,
            result::BUILTIN => c.builtin += 1,
            result::DISABLED => {
                c.disabled += 1;
                if !quiet {
                    emit!(o, "parmod: disabled: ", name(ctx, m), ": by configuration (an install command that does nothing)\n");
                }
            }
            result::FAILED => {
                c.failed += 1;
                let e = at(st.errno, m as usize).load(Relaxed) as i32;
                emit!(o, "parmod: failed: ", name(ctx, m), ": ");
                let comp = ctx.plan.module(m).map_or(Compression::None, |x| x.compression());
                if e == 95 && comp != Compression::None {
                    let mut buf = [0u8; 32];
                    let n = ctx.kernel.read_small(c"/sys/module/compression", &mut buf).unwrap_or(0);
                    let has = super::kernel::kernel_compression(&buf[..n]).map_or("nothing", |k| k.kernel_name());
                    emit!(o, "compressed with ", comp.kernel_name(), " but the kernel decompresses ", has, "; put an uncompressed module in the image\n");
                } else {
                    emit!(o, Sys(e), "\n");
                }
            }
            result::SKIPPED => {
                c.skipped += 1;
                if !quiet {
                    let cause = at(st.cause, m as usize).load(Relaxed);
                    if cause == m {
                        emit!(o, "parmod: skipped: ", name(ctx, m), ": blacklisted on the kernel command line\n");
                    } else if matches!(outcome(ctx, cause) & !result::STUCK_FLAG, result::LOADED | result::PRESENT | result::BUILTIN) {
                        emit!(o, "parmod: skipped: ", name(ctx, m), ": a wait after ", name(ctx, cause), " timed out\n");
                    } else if ctx.plan.module(m).is_some_and(|x| x.is_post_only() && x.deps().any(|e| e.post && e.module == cause)) {
                        emit!(o, "parmod: skipped: ", name(ctx, m), ": a post: soft dependency of ", name(ctx, cause), ", which did not load (kmod stops there too)\n");
                    } else if at(st.cause, cause as usize).load(Relaxed) == cause && outcome(ctx, cause) == result::SKIPPED {
                        emit!(o, "parmod: skipped: ", name(ctx, m), ": dependency ", name(ctx, cause), " is blacklisted\n");
                    } else {
                        emit!(o, "parmod: skipped: ", name(ctx, m), ": dependency ", name(ctx, cause), " failed\n");
                    }
                }
            }
            result::STUCK => {
                c.stuck += 1;
                let ms = now.saturating_sub(at(st.start, m as usize).load(Relaxed)) / 1_000_000;
                emit!(o, "parmod: stuck: ", name(ctx, m), ": still inside finit_module after ", ms, " ms (worker ", at(st.worker, m as usize).load(Relaxed), "); left behind\n");
            }
            _ => {
                c.blocked += 1;
                if !quiet {
                    emit!(o, "parmod: blocked: ", name(ctx, m), ": ");
                    match blocker(ctx, m) {
                        Some(d) => {
                            let why = if outcome(ctx, d) == result::STUCK { "stuck" } else { "not loaded" };
                            emit!(o, "its dependency ", name(ctx, d), " was ", why, " at the deadline\n");
                        }
                        None => {
                            emit!(o, "not started by the deadline\n");
                        }
                    }
                }
            }
        }
        if r & result::STUCK_FLAG != 0 && r != result::STUCK && !quiet {
            let ms = at(st.end, m as usize).load(Relaxed).saturating_sub(at(st.start, m as usize).load(Relaxed)) / 1_000_000;
            emit!(o, "parmod: slow: ", name(ctx, m), ": took ", ms, " ms, over its ", ctx.timeout_ms(m), " ms timeout\n");
        }
    }
    for w in ctx.plan.waits() {
        let i = w.index() as usize;
        let state = at(st.wstatus, i).load(Relaxed);
        if state == WAIT_SATISFIED || (state == WAIT_IDLE && w.module().is_none_or(|m| outcome(ctx, m) != result::LOADED)) {
            // Satisfied, or never started because its module did not load
            // (that module's own line says why).
            continue;
        }
        c.waits_failed += 1;
        let mut o = Out::stderr();
        emit!(o, "parmod: wait ");
        let waited = now.saturating_sub(at(st.wstart, i).load(Relaxed)) / 1_000_000;
        match state {
            WAIT_TIMED_OUT => {
                let ms = at(st.wend, i).load(Relaxed).saturating_sub(at(st.wstart, i).load(Relaxed)) / 1_000_000;
                emit!(o, "timed out: ", Show(w.path()), " not there after ", ms, " ms");
            }
            WAIT_ACTIVE => {
                emit!(o, "unfinished: ", Show(w.path()), " not there after ", waited, " ms at the deadline");
            }
            _ => {
                emit!(o, "not started: ", Show(w.path()));
            }
        }
        match w.module() {
            Some(m) => {
                emit!(o, " (after ", name(ctx, m));
                let mut held = 0;
                for d in ctx.plan.module(m).into_iter().flat_map(|x| x.dependents()).filter(|e| e.hard) {
                    if held < 8 {
                        emit!(o, if held == 0 { "; held back:" } else { "," }, " ", name(ctx, d.module));
                    }
                    held += 1;
                }
                if held > 8 {
                    emit!(o, " and ", held - 8, " more");
                }
                emit!(o, ")\n");
            }
            None => {
                emit!(o, " (needed before success)\n");
            }
        }
    }
    let bad = c.failed + c.skipped + c.stuck + c.blocked + c.waits_failed;
    if !summary && bad == 0 {
        return 0;
    }
    let mut o = Out::stderr();
    emit!(o, "parmod: ", c.loaded + c.present + c.builtin, " loaded (", c.present, " already present, ", c.builtin, " built in), ", c.failed, " failed, ", c.skipped, " skipped, ", c.stuck, " stuck");
    if c.blocked > 0 {
        emit!(o, ", ", c.blocked, " blocked");
    }
    if c.waits_failed > 0 {
        emit!(o, ", ", c.waits_failed, " waits failed");
    }
    if c.disabled > 0 {
        emit!(o, ", ", c.disabled, " disabled by configuration");
    }
    emit!(o, " in ", elapsed_ms, " ms");
    match workers {
        (0, asked) if asked > 0 => emit!(o, "; one at a time: no worker could start"),
        (started, asked) if started < asked => emit!(o, "; ", started, " of ", asked, " workers could start"),
        _ => {}
    }
    let holds = at(st.ctl, HOLDS).load(Relaxed);
    if holds > 0 {
        let ms = at(st.ctl, HELD_MS).load(Relaxed);
        emit!(o, "; ", holds, if holds == 1 { " load" } else { " loads" }, " held back ", ms, " ms while the kernel loaded what it requested");
    }
    let used = at(st.ctl, UNPACK_USED).load(Relaxed);
    if used > 0 {
        let made = at(st.ctl, UNPACKED).load(Relaxed);
        emit!(o, "; ", used, if used == 1 { " load" } else { " loads" }, " from images unpacked on idle CPUs (", made, " unpacked)");
    }
    emit!(o, "\n");
    if bad > 0 {
        1
    } else {
        0
    }
}

/// The first dependency of `m` that has not loaded.
fn blocker(ctx: &Sched, m: u32) -> Option<u32> {
    let module = ctx.plan.module(m)?;
    // Prefer a dependency that is itself stuck or blocked over one merely pending.
    module.deps().map(|e| e.module).find(|&d| {
        matches!(outcome(ctx, d) & !result::STUCK_FLAG, result::STUCK | result::BLOCKED)
    })
}

/// Write the binary trace to `path`. Returns an errno on failure.
pub fn write_trace(ctx: &Sched, path: &core::ffi::CStr, t0: u64, jobs: u32) -> Result<(), rustix::io::Errno> {
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let n = ctx.plan.module_count();
    // Modules that were not part of the run (the modprobe personality,
    // coldplug) have no record.
    let in_run = |m: u32| at(ctx.st.status, m as usize).load(Relaxed) != NOT_WANTED;
    let header = TraceHeader {
        plan_checksum: ctx.plan.checksum(),
        record_count: (0..n).filter(|&m| in_run(m)).count() as u32 + ctx.plan.wait_count(),
        t0_ns: t0,
        jobs: jobs as u16,
        simulated: ctx.kernel.simulated(),
    };
    let mut out = TraceOut { fd: fd.as_fd(), buf: [0; 4096], len: 0 };
    out.put(&header.encode())?;
    for m in (0..n).filter(|&m| in_run(m)) {
        out.put(&module_record(ctx, m).encode())?;
    }
    for w in ctx.plan.waits() {
        out.put(&wait_record(ctx, w).encode())?;
    }
    write_all(out.fd, &out.buf[..out.len])
}

/// The trace file, written in blocks.
struct TraceOut<'a> {
    fd: rustix::fd::BorrowedFd<'a>,
    buf: [u8; 4096],
    len: usize,
}

impl TraceOut<'_> {
    #[inline(never)]
    fn put(&mut self, rec: &[u8]) -> Result<(), rustix::io::Errno> {
        if self.len + rec.len() > self.buf.len() {
            write_all(self.fd, &self.buf[..self.len])?;
            self.len = 0;
        }
        if let Some(dst) = self.buf.get_mut(self.len..self.len + rec.len()) {
            dst.copy_from_slice(rec);
            self.len += rec.len();
        }
        Ok(())
    }
}

/// The trace record of module `m` (never-started ones have no times or worker).
fn module_record(ctx: &Sched, m: u32) -> TraceRecord {
    let (st, i) = (&ctx.st, m as usize);
    let r = outcome(ctx, m);
    let started = !matches!(r, result::SKIPPED | result::BLOCKED);
    TraceRecord {
        start_ns: if started { at(st.start, i).load(Relaxed) } else { 0 },
        end_ns: if started && r != result::STUCK { at(st.end, i).load(Relaxed) } else { 0 },
        index: m,
        errno: at(st.errno, i).load(Relaxed) as i32,
        cause: if r == result::SKIPPED { at(st.cause, i).load(Relaxed) } else { NO_CAUSE },
        worker: if started { at(st.worker, i).load(Relaxed) as u16 } else { NO_WORKER },
        kind: trace::kind::MODULE,
        result: r,
    }
}

/// The trace record of a wait (cause: the module it follows).
fn wait_record(ctx: &Sched, w: crate::plan::DeviceWait<'_>) -> TraceRecord {
    let (st, i) = (&ctx.st, w.index() as usize);
    TraceRecord {
        start_ns: at(st.wstart, i).load(Relaxed),
        end_ns: at(st.wend, i).load(Relaxed),
        index: w.index(),
        errno: 0,
        cause: w.module().unwrap_or(NO_CAUSE),
        worker: NO_WORKER,
        kind: trace::kind::WAIT,
        result: match at(st.wstatus, i).load(Relaxed) {
            WAIT_SATISFIED => result::SATISFIED,
            WAIT_TIMED_OUT => result::TIMED_OUT,
            _ => result::BLOCKED,
        },
    }
}
