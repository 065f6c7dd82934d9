//! The kernel seam: the one place a module is loaded. `finit_module` for
//! real runs; under `--simulate`, a sleep of the module's planned weight
//! (with injected failures and hangs for tests).

use super::sched::at;
use crate::plan::{module_flags, Compression};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::time::ClockId;

use super::sched::{Ctx, SIM_FAIL, SIM_HANG};

/// finit_module flags (include/uapi/linux/module.h); rustix has no names.
const MODULE_INIT_IGNORE_MODVERSIONS: i32 = 1;
const MODULE_INIT_IGNORE_VERMAGIC: i32 = 2;
const MODULE_INIT_COMPRESSED_FILE: i32 = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Loaded,
    Present,
    Builtin,
    Failed(i32),
}

pub fn load(ctx: &Ctx, m: u32, start_ns: u64) -> Outcome {
    let Some(module) = ctx.plan.module(m) else { return Outcome::Failed(Errno::INVAL.raw_os_error()) };
    if module.is_builtin() {
        return Outcome::Builtin;
    }
    if ctx.simulate {
        return simulate(ctx, m, start_ns, module.weight_us());
    }
    if is_live(module.name()) {
        // finit_module would read and check the whole file before saying
        // EEXIST; kmod looks here first for the same reason.
        return Outcome::Present;
    }
    let mut flags = 0;
    if module.flags() & module_flags::IGNORE_MODVERSIONS != 0 {
        flags |= MODULE_INIT_IGNORE_MODVERSIONS;
    }
    if module.flags() & module_flags::IGNORE_VERMAGIC != 0 {
        flags |= MODULE_INIT_IGNORE_VERMAGIC;
    }
    let comp = module.compression();
    if comp != Compression::None {
        if ctx.kernel_decompress != Some(comp) {
            return Outcome::Failed(Errno::OPNOTSUPP.raw_os_error());
        }
        flags |= MODULE_INIT_COMPRESSED_FILE;
    }
    // "<module_dir>/<relative path>\0" in a stack buffer.
    let mut path = [0u8; 1024];
    let dir = &ctx.module_dir[..];
    let rel = module.path_with_nul().unwrap_or(b"\0");
    let len = dir.len() + 1 + rel.len();
    if len > path.len() {
        return Outcome::Failed(Errno::NAMETOOLONG.raw_os_error());
    }
    path[..dir.len()].copy_from_slice(dir);
    path[dir.len()] = b'/';
    path[dir.len() + 1..len].copy_from_slice(rel);
    let Ok(path) = core::ffi::CStr::from_bytes_with_nul(&path[..len]) else {
        return Outcome::Failed(Errno::INVAL.raw_os_error());
    };
    // The plan's options, then any `module.param=value` of the kernel
    // command line (/init mode), as modprobe does.
    let mut merged = [0u8; 2048];
    let mut params = core::ffi::CStr::from_bytes_with_nul(module.params_with_nul()).unwrap_or(c"");
    if ctx.cmdline.view().module_params(module.name()).next().is_some() {
        let mut len = 0;
        let mut add = |part: &[u8]| {
            if len > 0 && len < merged.len() {
                merged[len] = b' ';
                len += 1;
            }
            let end = (len + part.len()).min(merged.len());
            merged[len..end].copy_from_slice(&part[..end - len]);
            len = end;
        };
        if !module.params().is_empty() {
            add(module.params());
        }
        for p in ctx.cmdline.view().module_params(module.name()) {
            add(p);
        }
        if len >= merged.len() {
            return Outcome::Failed(Errno::TOOBIG.raw_os_error());
        }
        match core::ffi::CStr::from_bytes_with_nul(&merged[..=len]) {
            Ok(c) => params = c,
            Err(_) => return Outcome::Failed(Errno::INVAL.raw_os_error()),
        }
    }
    let fd = match rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return Outcome::Failed(e.raw_os_error()),
    };
    match rustix::system::finit_module(&fd, params, flags) {
        Ok(()) => Outcome::Loaded,
        Err(Errno::EXIST) => Outcome::Present,
        Err(e) => Outcome::Failed(e.raw_os_error()),
    }
    // fd closes here.
}

/// Whether `/sys/module/NAME/initstate` says "live".
fn is_live(name: &[u8]) -> bool {
    let mut buf = [0u8; 160];
    let (a, b) = (&b"/sys/module/"[..], &b"/initstate\0"[..]);
    let len = a.len() + name.len() + b.len();
    if len > buf.len() {
        return false;
    }
    buf[..a.len()].copy_from_slice(a);
    buf[a.len()..a.len() + name.len()].copy_from_slice(name);
    buf[a.len() + name.len()..len].copy_from_slice(b);
    let Ok(path) = core::ffi::CStr::from_bytes_with_nul(&buf[..len]) else { return false };
    let Ok(fd) = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else { return false };
    let mut state = [0u8; 8];
    matches!(rustix::io::read(&fd, &mut state), Ok(n) if state[..n].starts_with(b"live"))
}

fn simulate(ctx: &Ctx, m: u32, start_ns: u64, weight_us: u32) -> Outcome {
    let sim = at(ctx.st.sim, m as usize).load(core::sync::atomic::Ordering::Relaxed);
    let until = if sim & SIM_HANG != 0 { start_ns + 3600 * 1_000_000_000 } else { start_ns + weight_us as u64 * 1000 };
    if until <= super::sched::now_ns() {
        // Nothing left to wait (weight 0): no system call at all.
        return if sim & SIM_FAIL != 0 { Outcome::Failed(Errno::NODEV.raw_os_error()) } else { Outcome::Loaded };
    }
    let ts = super::sched::timespec(until);
    while let Err(Errno::INTR) = rustix::thread::clock_nanosleep_absolute(ClockId::Monotonic, &ts) {}
    if sim & SIM_FAIL != 0 {
        Outcome::Failed(Errno::NODEV.raw_os_error())
    } else {
        Outcome::Loaded
    }
}
