//! /init mode: what parmod does when the kernel starts it as PID 1 of an
//! initramfs. Mount the kernel file systems, read the kernel command line,
//! and after loading exec the next stage. PID 1 must never exit: every
//! failure here ends in the rescue program or in a clear message and an
//! endless sleep, never in a return.

use core::ffi::CStr;
use super::out::emit;
use core::sync::atomic::{AtomicI32, Ordering::Relaxed};

use crate::cmdline::Cmdline;
use rustix::fs::{Mode, OFlags};
use rustix::mount::{mount, MountFlags};

use super::arch;
use super::engine;
use super::out::{Out, Show};

/// Descriptor of /dev/kmsg once opened (-1 before): messages on stderr are
/// copied there in /init mode so they land in the kernel log.
pub static KMSG: AtomicI32 = AtomicI32::new(-1);

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Mount /proc, /sys and /dev unless they already are, and make sure fds
/// 0-2 are the console.
pub fn setup() {
    // f_type is i64 on x86_64 and aarch64 but 32 bits on arm.
    #[allow(clippy::unnecessary_cast)]
    let is = |path: &CStr, magic: i64| rustix::fs::statfs(path).is_ok_and(|s| s.f_type as i64 == magic);
    let _ = rustix::fs::mkdir(c"/proc", Mode::from_raw_mode(0o555));
    let _ = rustix::fs::mkdir(c"/sys", Mode::from_raw_mode(0o555));
    let _ = rustix::fs::mkdir(c"/dev", Mode::from_raw_mode(0o755));
    let nodev = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
    if !is(c"/proc", PROC_SUPER_MAGIC) {
        let _ = mount(c"proc", c"/proc", c"proc", nodev, None);
    }
    if !is(c"/sys", SYSFS_MAGIC) {
        let _ = mount(c"sysfs", c"/sys", c"sysfs", nodev, None);
    }
    // devtmpfs is one kernel-wide instance: mounting it again where it is
    // already mounted is harmless (EBUSY when /dev is that very mount).
    if rustix::fs::access(c"/dev/kmsg", rustix::fs::Access::EXISTS).is_err() {
        let _ = mount(c"devtmpfs", c"/dev", c"devtmpfs", MountFlags::NOSUID, Some(c"mode=0755"));
    }
    for fd in 0..3 {
        if !super::mapping::fd_is_open(fd) {
            let f = rustix::fs::open(c"/dev/console", OFlags::RDWR | OFlags::NOCTTY, Mode::empty())
                .or_else(|_| rustix::fs::open(c"/dev/null", OFlags::RDWR, Mode::empty()));
            if let Ok(f) = f {
                // It took the lowest free descriptor, `fd`: keep it open.
                core::mem::forget(f);
            }
        }
    }
    if let Ok(k) = rustix::fs::open(c"/dev/kmsg", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()) {
        use rustix::fd::IntoRawFd;
        KMSG.store(k.into_raw_fd(), Relaxed);
    }
}

/// The kernel command line, read once (kept in the run context).
pub struct CmdlineBuf {
    buf: heapless::Vec<u8, 4096>,
}

impl CmdlineBuf {
    pub const fn empty() -> Self {
        CmdlineBuf { buf: heapless::Vec::new() }
    }

    pub fn read() -> Self {
        let mut c = CmdlineBuf::empty();
        if let Ok(fd) = rustix::fs::open(c"/proc/cmdline", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            let mut tmp = [0u8; 4096];
            if let Ok(n) = rustix::io::read(&fd, &mut tmp) {
                let _ = c.buf.extend_from_slice(&tmp[..n]);
            }
        }
        c
    }

    pub fn view(&self) -> Cmdline<'_> {
        Cmdline(&self.buf)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Copy `value` into `buf` with a NUL; None when it does not fit.
pub fn c_path<'b>(value: &[u8], buf: &'b mut [u8; 256]) -> Option<&'b CStr> {
    if value.len() >= buf.len() || value.contains(&0) {
        return None;
    }
    buf[..value.len()].copy_from_slice(value);
    buf[value.len()] = 0;
    CStr::from_bytes_with_nul(&buf[..=value.len()]).ok()
}

/// Replace PID 1 with `path` (argv = [path]). Returns only on failure, with the errno.
pub fn exec(path: &CStr, envp: *const *const u8) -> i32 {
    let argv: [*const u8; 2] = [path.as_ptr() as *const u8, core::ptr::null()];
    -(arch::execve(path, argv.as_ptr(), envp) as i32)
}

/// Hand over to the next stage, or to the rescue program, or stop here with
/// a message. Never returns.
pub fn hand_over(next: &CStr, rescue: Option<&CStr>, envp: *const *const u8) -> ! {
    let e = exec(next, envp);
    emit!(Out::stderr(), "parmod: cannot run the next stage ", Show(next.to_bytes()), ": errno ", e, "; set parmod.next= on the kernel command line\n");
    give_up(rescue, envp)
}

/// The fallback of /init mode: exec the rescue program if any, else sleep
/// for ever (PID 1 must not exit; the kernel would panic).
pub fn give_up(rescue: Option<&CStr>, envp: *const *const u8) -> ! {
    if let Some(r) = rescue {
        emit!(Out::stderr(), "parmod: starting rescue program ", Show(r.to_bytes()), "\n");
        let e = exec(r, envp);
        emit!(Out::stderr(), "parmod: cannot run rescue program ", Show(r.to_bytes()), ": errno ", e, "\n");
    }
    emit!(Out::stderr(), "parmod: PID 1 has nothing to run; waiting for ever (fix the image or set parmod.rescue=/bin/sh)\n");
    sleep_forever()
}

pub fn sleep_forever() -> ! {
    let day = super::sched::timespec(86_400 * 1_000_000_000);
    loop {
        let _ = rustix::thread::nanosleep(&day);
    }
}

/// PID 1: load the plan named on the kernel command line (or the default),
/// then become the next stage. Never returns.
pub fn main(opts: super::args::Options, t0: u64, envp: *const *const u8) -> ! {
    let cmdline = CmdlineBuf::read();
    let cl = cmdline.view();
    let mut plan_buf = [0u8; 256];
    let mut next_buf = [0u8; 256];
    let mut rescue_buf = [0u8; 256];
    let mut trace_buf = [0u8; 256];
    let plan_path = match cl.get(b"parmod.plan") {
        Some(p) => c_path(p, &mut plan_buf),
        None => Some(opts.plan.unwrap_or(c"/etc/parmod.plan")),
    };
    let next = cl.get(b"parmod.next").map_or(Some(c"/sbin/init"), |p| c_path(p, &mut next_buf));
    let rescue = cl.get(b"parmod.rescue").and_then(|p| c_path(p, &mut rescue_buf));
    let trace = match cl.get(b"parmod.trace") {
        Some(p) => c_path(p, &mut trace_buf),
        None => opts.trace,
    };
    let jobs = cl.number(b"parmod.jobs").or(opts.jobs);
    let deadline_ms = cl.number(b"parmod.deadline").or(opts.deadline_ms);
    let timeout = cl.number(b"parmod.timeout").or(opts.module_timeout_ms);
    let Some(next) = next else {
        emit!(Out::stderr(), "parmod: parmod.next= is too long\n");
        give_up(rescue, envp)
    };
    let Some(plan_path) = plan_path else {
        emit!(Out::stderr(), "parmod: parmod.plan= is too long\n");
        give_up(rescue, envp)
    };
    let setup = engine::Setup {
        plan_path,
        simulate: opts.simulate,
        force: opts.force,
        module_dir: opts.module_dir,
        fail: &opts.fail,
        hang: &opts.hang,
        module_timeout_ms: timeout,
        cmdline,
    };
    let Ok(ctx) = engine::prepare(setup) else {
        give_up(rescue, envp)
    };
    let run = engine::Run { wanted: &[], jobs, deadline_ms, quiet: opts.quiet, summary: true, trace };
    let _ = engine::execute(ctx, t0, run);
    hand_over(next, rescue, envp)
}

