//! The end of a run: one line per module that did not load, the summary
//! line, the exit status, and the binary trace.

use core::fmt::Write;
use core::sync::atomic::Ordering::Relaxed;

use parmod::plan::trace::{self, result, TraceHeader, TraceRecord, NO_CAUSE, NO_WORKER};
use parmod::plan::Compression;
use rustix::fs::{Mode, OFlags};

use super::out::{errno_text, Out, Show};
use super::sched::{Ctx, NOT_WANTED, READY, RUNNING, STUCK, WAITING};

#[derive(Default)]
pub struct Counts {
    pub loaded: u32,
    pub present: u32,
    pub builtin: u32,
    pub failed: u32,
    pub skipped: u32,
    pub stuck: u32,
    pub blocked: u32,
}

fn name(ctx: &Ctx, m: u32) -> Show<'static> {
    Show(ctx.plan.module(m).map_or(b"?", |x| x.name()))
}

/// How a module ended (or stands, at the deadline), as a trace result.
pub fn outcome(ctx: &Ctx, m: u32) -> u8 {
    let s = ctx.st.status[m as usize].load(Relaxed);
    match s & !STUCK {
        WAITING | READY => result::BLOCKED,
        RUNNING => result::STUCK,
        code => (code as u8) | if s & STUCK != 0 { result::STUCK_FLAG } else { 0 },
    }
}

/// Print the per-module lines and the summary; return the exit status.
pub fn report(ctx: &Ctx, now: u64, elapsed_ms: u64, quiet: bool, summary: bool) -> i32 {
    let st = &ctx.st;
    let mut c = Counts::default();
    for m in 0..ctx.plan.module_count() {
        if st.status[m as usize].load(Relaxed) == NOT_WANTED {
            continue;
        }
        let r = outcome(ctx, m);
        let mut o = Out::stderr();
        match r & !result::STUCK_FLAG {
            result::LOADED => c.loaded += 1,
            result::PRESENT => c.present += 1,
            result::BUILTIN => c.builtin += 1,
            result::FAILED => {
                c.failed += 1;
                let e = st.errno[m as usize].load(Relaxed) as i32;
                let _ = write!(o, "parmod: failed: {}: ", name(ctx, m));
                let comp = ctx.plan.module(m).map_or(Compression::None, |x| x.compression());
                if e == 95 && comp != Compression::None {
                    let _ = writeln!(
                        o,
                        "compressed with {} but the kernel decompresses {}; put an uncompressed module in the image",
                        comp.kernel_name(),
                        ctx.kernel_decompress.map_or("nothing", |k| k.kernel_name())
                    );
                } else {
                    let _ = writeln!(o, "{} (errno {})", errno_text(e), e);
                }
            }
            result::SKIPPED => {
                c.skipped += 1;
                if !quiet {
                    let cause = st.cause[m as usize].load(Relaxed);
                    if cause == m {
                        let _ = writeln!(o, "parmod: skipped: {}: blacklisted on the kernel command line", name(ctx, m));
                    } else {
                        let _ = writeln!(o, "parmod: skipped: {}: dependency {} failed", name(ctx, m), name(ctx, cause));
                    }
                }
            }
            result::STUCK => {
                c.stuck += 1;
                let ms = now.saturating_sub(st.start[m as usize].load(Relaxed)) / 1_000_000;
                let _ = writeln!(
                    o,
                    "parmod: stuck: {}: still inside finit_module after {} ms (worker {}); left behind",
                    name(ctx, m),
                    ms,
                    st.worker[m as usize].load(Relaxed)
                );
            }
            _ => {
                c.blocked += 1;
                if !quiet {
                    let _ = write!(o, "parmod: blocked: {}: ", name(ctx, m));
                    match blocker(ctx, m) {
                        Some(d) => {
                            let why = if outcome(ctx, d) == result::STUCK { "stuck" } else { "not loaded" };
                            let _ = writeln!(o, "waiting for {} ({why}) at the deadline", name(ctx, d));
                        }
                        None => {
                            let _ = writeln!(o, "not started by the deadline");
                        }
                    }
                }
            }
        }
        if r & result::STUCK_FLAG != 0 && r != result::STUCK && !quiet {
            let ms = st.end[m as usize].load(Relaxed).saturating_sub(st.start[m as usize].load(Relaxed)) / 1_000_000;
            let _ = writeln!(o, "parmod: slow: {}: took {} ms, over its {} ms timeout", name(ctx, m), ms, ctx.timeout_ms(m));
        }
    }
    let bad = c.failed + c.skipped + c.stuck + c.blocked;
    if !summary && bad == 0 {
        return 0;
    }
    let mut o = Out::stderr();
    let _ = write!(
        o,
        "parmod: {} loaded ({} already present, {} built in), {} failed, {} skipped, {} stuck",
        c.loaded + c.present + c.builtin,
        c.present,
        c.builtin,
        c.failed,
        c.skipped,
        c.stuck
    );
    if c.blocked > 0 {
        let _ = write!(o, ", {} blocked", c.blocked);
    }
    let _ = writeln!(o, " in {} ms", elapsed_ms);
    if bad > 0 {
        1
    } else {
        0
    }
}

/// The first dependency of `m` that has not loaded.
fn blocker(ctx: &Ctx, m: u32) -> Option<u32> {
    let module = ctx.plan.module(m)?;
    // Prefer a dependency that is itself stuck or blocked over one merely pending.
    module.waits_for().map(|e| e.module).find(|&d| {
        matches!(outcome(ctx, d) & !result::STUCK_FLAG, result::STUCK | result::BLOCKED)
    })
}

/// Write the binary trace to `path`. Returns an errno on failure.
pub fn write_trace(ctx: &Ctx, path: &core::ffi::CStr, t0: u64, jobs: u32) -> Result<(), rustix::io::Errno> {
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let n = ctx.plan.module_count();
    let header = TraceHeader {
        plan_checksum: ctx.plan.checksum(),
        record_count: n,
        t0_ns: t0,
        jobs: jobs as u16,
        simulated: ctx.simulate,
    };
    let mut buf = [0u8; 4096];
    let mut len = 0;
    buf[..trace::TRACE_HEADER_SIZE].copy_from_slice(&header.encode());
    len += trace::TRACE_HEADER_SIZE;
    let st = &ctx.st;
    for m in 0..n {
        let i = m as usize;
        let r = outcome(ctx, m);
        let started = !matches!(r, result::SKIPPED | result::BLOCKED);
        let rec = TraceRecord {
            start_ns: if started { st.start[i].load(Relaxed) } else { 0 },
            end_ns: if started && r != result::STUCK { st.end[i].load(Relaxed) } else { 0 },
            index: m,
            errno: st.errno[i].load(Relaxed) as i32,
            cause: if r == result::SKIPPED { st.cause[i].load(Relaxed) } else { NO_CAUSE },
            worker: if started { st.worker[i].load(Relaxed) as u16 } else { NO_WORKER },
            kind: trace::kind::MODULE,
            result: r,
        };
        if len + trace::TRACE_RECORD_SIZE > buf.len() {
            write_all(&fd, &buf[..len])?;
            len = 0;
        }
        buf[len..len + trace::TRACE_RECORD_SIZE].copy_from_slice(&rec.encode());
        len += trace::TRACE_RECORD_SIZE;
    }
    write_all(&fd, &buf[..len])
}

fn write_all(fd: &rustix::fd::OwnedFd, mut b: &[u8]) -> Result<(), rustix::io::Errno> {
    while !b.is_empty() {
        match rustix::io::write(fd, b) {
            Ok(0) => return Err(rustix::io::Errno::IO),
            Ok(n) => b = &b[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
