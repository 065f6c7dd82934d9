//! /init mode: what parmod does when the kernel starts it as PID 1 of an
//! initramfs. Mount the kernel file systems, read the kernel command line,
//! and after loading exec the next stage. PID 1 must never exit: every
//! failure here ends in the rescue program or in a clear message and an
//! endless sleep, never in a return.

use core::ffi::CStr;

use crate::cmdline::CmdlineBuf;
use rustix::fs::{Mode, OFlags};
use rustix::mount::{mount, MountFlags};

use crate::blockid::RootSpec;

use super::arch::{self, Env};
use super::kernel::Kernel;
use super::out::{emit, Out, Show, Sys, KMSG};
use super::root::{self, RootWait};
use super::run;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Mount /dev, /proc and /sys unless they already are, and make sure fds
/// 0-2 are the console (else /dev/null). What fails is said (on the
/// console once it is there, and in the kernel log) and the boot goes on:
/// without /proc there is no kernel command line, without /sys no check
/// for modules loaded already (loads then say EEXIST, which counts too).
pub fn setup() {
    // f_type is i64 on x86_64 and aarch64 but 32 bits on arm.
    #[allow(clippy::unnecessary_cast)]
    let is = |path: &CStr, magic: i64| rustix::fs::statfs(path).is_ok_and(|s| s.f_type as i64 == magic);
    let mut failed: [(&str, Option<rustix::io::Errno>); 3] = [("/dev", None), ("/proc", None), ("/sys", None)];
    for (dir, mode) in [(c"/dev", 0o755), (c"/proc", 0o555), (c"/sys", 0o555)] {
        let _ = rustix::fs::mkdir(dir, Mode::from_raw_mode(mode));
    }
    // devtmpfs is one kernel-wide instance: mounting it again where it is
    // already mounted is harmless (EBUSY when /dev is that very mount).
    if rustix::fs::access(c"/dev/kmsg", rustix::fs::Access::EXISTS).is_err() {
        failed[0].1 = mount(c"devtmpfs", c"/dev", c"devtmpfs", MountFlags::NOSUID, Some(c"mode=0755")).err();
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
        let _ = KMSG.set(k);
    }
    let nodev = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
    // /run as systemd wants it from an initramfs (moved into the real root):
    // a tmpfs mount of its own. The initramfs itself is a tmpfs when the
    // kernel command line has no root= (the root then comes from the
    // image's /etc/parmod.cmdline), so its type alone does not tell.
    let _ = rustix::fs::mkdir(c"/run", Mode::from_raw_mode(0o755));
    let own_mount = match (rustix::fs::stat(c"/run"), rustix::fs::stat(c"/")) {
        (Ok(run), Ok(root)) => run.st_dev != root.st_dev,
        _ => false,
    };
    if !(own_mount && is(c"/run", TMPFS_MAGIC)) {
        let _ = mount(c"tmpfs", c"/run", c"tmpfs", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::STRICTATIME, Some(c"mode=0755"));
    }
    if !is(c"/proc", PROC_SUPER_MAGIC) {
        failed[1].1 = mount(c"proc", c"/proc", c"proc", nodev, None).err();
    }
    if !is(c"/sys", SYSFS_MAGIC) {
        failed[2].1 = mount(c"sysfs", c"/sys", c"sysfs", nodev, None).err();
    }
    for (dir, e) in failed {
        if let Some(e) = e {
            emit!(Out::stderr(), "parmod: cannot mount ", dir, ": ", Sys::from(e), "; going on without it\n");
        }
    }
}

/// The kernel command line, read once.
pub fn read_cmdline(k: &dyn Kernel) -> CmdlineBuf {
    CmdlineBuf::read_with(|buf| k.read_small(c"/proc/cmdline", buf).unwrap_or(0))
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

/// Hand over to the next stage, or to the rescue program, or stop here with
/// a message. Never returns.
pub fn hand_over(next: &CStr, rescue: Option<&CStr>, env: Env) -> ! {
    let e = arch::exec(next, &[next], env);
    emit!(Out::stderr(), "parmod: cannot run the next stage ", Show(next.to_bytes()), ": ", Sys::from(e), "; set parmod.next= on the kernel command line\n");
    give_up(rescue, env)
}

/// The fallback of /init mode: exec the rescue program if any, else sleep
/// for ever (PID 1 must not exit; the kernel would panic).
pub fn give_up(rescue: Option<&CStr>, env: Env) -> ! {
    if let Some(r) = rescue {
        emit!(Out::stderr(), "parmod: starting rescue program ", Show(r.to_bytes()), "\n");
        let e = arch::exec(r, &[r], env);
        emit!(Out::stderr(), "parmod: cannot run rescue program ", Show(r.to_bytes()), ": ", Sys::from(e), "\n");
    }
    emit!(Out::stderr(), "parmod: PID 1 has nothing to run; waiting for ever (fix the image or set parmod.rescue=/bin/sh)\n");
    sleep_forever()
}

pub fn sleep_forever() -> ! {
    let day = super::clock::timespec(86_400 * 1_000_000_000);
    loop {
        let _ = rustix::thread::nanosleep(&day);
    }
}

/// PID 1: load the plan named on the kernel command line (or the default),
/// then become the next stage. Never returns.
pub fn main(opts: super::args::Options, t0: u64, env: Env) -> ! {
    let cmdline = read_cmdline(&super::kernel::real::REAL);
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
    let mut opts = opts;
    // parmod.coldplug=1: coldplug whatever the plan; =0: never.
    let cold_switch = cl.number(b"parmod.coldplug");
    opts.coldplug |= cold_switch == Some(1);
    opts.settle_ms = cl.number(b"parmod.settle").or(opts.settle_ms);
    let deadline_ms = cl.number(b"parmod.deadline").or(opts.deadline_ms);
    let timeout = cl.number(b"parmod.timeout").or(opts.module_timeout_ms);
    let Some(next) = next else {
        emit!(Out::stderr(), "parmod: parmod.next= is too long\n");
        give_up(rescue, env)
    };
    let Some(plan_path) = plan_path else {
        emit!(Out::stderr(), "parmod: parmod.plan= is too long\n");
        give_up(rescue, env)
    };
    let Ok(s) = super::prepare_run(&opts, plan_path, run::Keep::Copy, timeout, cmdline) else {
        // Nothing could be loaded: the rescue program when there is one,
        // else the next stage, which may still cope without the modules.
        if rescue.is_none() {
            emit!(Out::stderr(), "parmod: going on to ", Show(next.to_bytes()), " without loading any module\n");
        }
        match rescue {
            Some(_) => give_up(rescue, env),
            None => hand_over(next, None, env),
        }
    };
    let cold = if cold_switch == Some(0) { Ok(None) } else { super::coldplug_of(s, &opts, plan_path.to_bytes()) };
    let Ok(cold) = cold else {
        hand_over(next, rescue, env)
    };
    // root= on the command line (or baked into the image): find it while
    // the plan runs, then switch to it (else: exec parmod.next in the
    // initramfs).
    let k = &super::kernel::real::REAL;
    let mut line_buf = [0u8; BAKED_MAX + 1 + crate::cmdline::CMDLINE_MAX];
    let cl = crate::cmdline::Cmdline(root_line(k, s.cmdline.view().0, &mut line_buf));
    let spec = match cl.get(b"root").map(|_| RootSpec::parse(cl)) {
        None => None,
        Some(Ok(spec)) => Some(spec),
        Some(Err(e)) => {
            emit!(Out::stderr(), "parmod: ", Show(e.param), "=", Show(e.value), ": ", e.why, "\n");
            give_up(rescue, env)
        }
    };
    let unpack = !opts.no_unpack && cl.number(b"parmod.unpack") != Some(0);
    let mut wait = spec.map(|spec| RootWait::new(spec, k.now()));
    let hook = wait.as_mut().map(|w| w as &mut dyn super::supervisor::Hook);
    let r = run::Run { wanted: &[], blacklist: cold.is_none(), jobs, deadline_ms, quiet: opts.quiet, summary: true, coldplug: cold, hook, trace, unpack };
    let _ = run::execute(s, t0, r);
    let Some(wait) = wait else { hand_over(next, rescue, env) };
    let Some((node, fs)) = wait.found else {
        root::not_found(k, cl.0);
        give_up(rescue, env)
    };
    let mut stamp = [0u8; 64];
    let envs = [c"HOME=/", c"TERM=linux", rd_timestamp(&mut stamp, t0)];
    let _ = root::switch_root(k, &wait.spec, &node, fs, &envs);
    give_up(rescue, env)
}

/// Root parameters the image was built with (`make initramfs ROOT=...`,
/// `mkinitramfs.sh --cmdline`): defaults, which the kernel command line's
/// own `root=`, `rootfstype=`, ... override.
pub const BAKED_CMDLINE: &CStr = c"/etc/parmod.cmdline";
const BAKED_MAX: usize = 1024;

/// The baked root parameters (newlines read as blanks), then the kernel
/// command line: the later argument wins, as on the command line itself.
pub(super) fn root_line<'b>(k: &dyn Kernel, kernel: &[u8], buf: &'b mut [u8]) -> &'b [u8] {
    let baked = k.read_small(BAKED_CMDLINE, &mut buf[..BAKED_MAX]).unwrap_or(0).min(BAKED_MAX);
    for c in &mut buf[..baked] {
        if *c == b'\n' || *c == b'\t' || *c == b'\r' {
            *c = b' ';
        }
    }
    let Some(rest) = buf.get_mut(baked..baked + 1 + kernel.len()) else { return kernel_only(buf, kernel) };
    rest[0] = b' ';
    rest[1..].copy_from_slice(kernel);
    &buf[..baked + 1 + kernel.len()]
}

fn kernel_only<'b>(buf: &'b mut [u8], kernel: &[u8]) -> &'b [u8] {
    let n = kernel.len().min(buf.len());
    buf[..n].copy_from_slice(&kernel[..n]);
    &buf[..n]
}

/// `RD_TIMESTAMP=REALTIME MONOTONIC` (µs) of when parmod started (dracut's
/// convention for the start of the initramfs; systemd no longer reads it).
fn rd_timestamp(buf: &mut [u8; 64], t0: u64) -> &CStr {
    let mono = t0 / 1000;
    let now_mono = super::clock::monotonic_ns() / 1000;
    let real = super::arch::realtime_ns() / 1000 - (now_mono - mono);
    let mut len = 0;
    let mut put = |b: &[u8]| {
        if let Some(dst) = buf.get_mut(len..len + b.len()) {
            dst.copy_from_slice(b);
            len += b.len();
        }
    };
    put(b"RD_TIMESTAMP=");
    let mut digits = [0u8; 20];
    put(super::out::decimal(&mut digits, real));
    put(b" ");
    put(super::out::decimal(&mut digits, mono));
    put(b"\0");
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"HOME=/")
}
