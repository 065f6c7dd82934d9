//! The kernel seam: everything a run asks of the kernel goes through the
//! [`Kernel`] trait. Three implementations:
//!
//! * [`real::Real`]: system calls through rustix (`finit_module`, inotify,
//!   the uevent socket, futexes, raw `clone` tasks);
//! * [`sim::Sim`]: the real kernel, except that a load sleeps the module's
//!   planned weight (`parmod --simulate`, with `--fail`/`--hang`);
//! * `fake::Fake` (tests, and the fuzz targets through the `fake` feature):
//!   answers from a script, records every call, and runs on a virtual
//!   clock, so that scheduler, stuck and deadline tests are deterministic.
//!
//! The pure parts of a load (the module's path, its parameters merged with
//! the kernel command line's, the `finit_module` flags, the refusal of a
//! compressed file the kernel cannot take) are plain functions here, used
//! by the scheduler before it calls [`Kernel::load`].

use core::ffi::CStr;
use core::sync::atomic::AtomicU32;

use crate::cmdline::ModParam;
use crate::plan::{module_flags, Compression};
use rustix::io::Errno;

#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod real;
pub mod sim;

/// What a worker task runs: the scheduler's worker loop.
pub trait Work: Sync {
    fn work(&self, id: usize);
}

/// Why [`Kernel::sleep`] returned (bits).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Wake(pub u8);

impl Wake {
    /// A worker called [`Kernel::wake`].
    pub const WORKER: u8 = 1;
    /// A watched directory changed (inotify).
    pub const FILES: u8 = 2;
    /// A kernel uevent arrived.
    pub const UEVENT: u8 = 4;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// What [`Kernel::path_exists`] found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Seen {
    Exists,
    /// Not there; the main task is woken when it may have appeared.
    Watched,
    /// Not there, and nothing will say when it appears.
    Unwatched,
}

/// One `finit_module` call, prepared.
pub struct LoadCall<'a> {
    /// The module's index in the plan and its name.
    pub module: u32,
    pub name: &'a [u8],
    /// The file: the module directory and the plan's relative path.
    pub path: &'a CStr,
    /// The parameters: the plan's options, then the kernel command line's.
    pub params: &'a CStr,
    /// `finit_module` flags ([`finit_flags`]).
    pub flags: u32,
    /// The module's image, unpacked by parmod (see `runtime::unpack`): load
    /// it with `init_module`, and the file with `flags` only if the kernel
    /// refuses images (EPERM, EACCES, ENOSYS: a policy that wants files).
    pub image: Option<&'a [u8]>,
    /// The plan's expected load time (the simulator sleeps it).
    pub weight_us: u32,
    /// When the worker took the module (the clock of [`Kernel::now`]).
    pub start_ns: u64,
}

/// One module to unpack (see `runtime::unpack`).
pub struct UnpackCall<'a> {
    pub module: u32,
    pub name: &'a [u8],
    /// The compressed file.
    pub path: &'a CStr,
    /// The decoder's dictionary.
    pub dict: &'a mut [u8],
    /// Asked between chunks: false once the image is not wanted any more.
    pub go_on: &'a dyn Fn() -> bool,
}

/// Everything a run asks of the kernel. Workers call `load`, `park`,
/// `unpark` and `wake` (and must make raw system calls only); the rest is
/// the main task's.
pub trait Kernel: Sync {
    /// Get ready for a run (the main task's wake-up channel); before any worker.
    fn open(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// CLOCK_MONOTONIC, ns.
    fn now(&self) -> u64;

    /// CPUs this process may run on (at least 1).
    fn cpus(&self) -> u32;

    /// The running kernel's release (`uname -r`) into `buf`; its length.
    fn release(&self, buf: &mut [u8; 65]) -> usize;

    /// Read a small file (sysfs, procfs) into `buf`; the length read.
    fn read_small(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno>;

    /// Whether module `name` is loaded already (`/sys/module/NAME/initstate`
    /// says "live"). `finit_module` would read and check the whole file
    /// before saying EEXIST; kmod looks here first for the same reason.
    fn is_live(&self, name: &[u8]) -> bool {
        let mut path = [0u8; 160];
        let Some(p) = join_c(&mut path, &[b"/sys/module/", name, b"/initstate"]) else { return false };
        let mut state = [0u8; 8];
        matches!(self.read_small(p, &mut state), Ok(n) if state[..n].starts_with(b"live"))
    }

    /// Whether the kernel decompresses `c` itself (`/sys/module/compression`).
    fn decompresses(&self, c: Compression) -> bool {
        let mut buf = [0u8; 32];
        match self.read_small(c"/sys/module/compression", &mut buf) {
            Ok(n) => kernel_compression(&buf[..n]) == Some(c),
            Err(_) => false,
        }
    }

    /// Load a module: `Ok` when it loaded, `Err(EEXIST)` when it already was.
    fn load(&self, call: &LoadCall<'_>) -> Result<(), Errno>;

    /// How much memory (bytes) unpacked images may take at once; 0: parmod
    /// unpacks nothing (the simulator: its loads read no file).
    fn unpack_budget(&self) -> u64 {
        0
    }

    /// Decode a compressed module file into an image of its own (the
    /// unpacker's task; raw system calls only).
    fn unpack(&self, _call: &mut UnpackCall<'_>) -> Result<super::mapping::Buffer, Errno> {
        Err(Errno::OPNOTSUPP)
    }

    /// Put the calling task in the idle scheduling class (`SCHED_IDLE`);
    /// whether it is.
    fn idle_class(&self) -> bool {
        false
    }

    /// Start worker `id` running `work.work(id)`. `tid` is nonzero while the
    /// task runs and is cleared (with a futex wake) when it has exited.
    fn spawn(&'static self, work: &'static dyn Work, id: usize, tid: &'static AtomicU32) -> Result<(), Errno>;

    /// The CPU time task `tid` (a worker) has used so far, ns; None where
    /// the kernel cannot tell (then stuck loads are told by time alone).
    fn task_cpu_ns(&self, tid: u32) -> Option<u64>;

    /// The nice value this process runs at (`getpriority`).
    fn nice(&self) -> i32 {
        0
    }

    /// Set the nice value of worker task `tid`; false when the kernel
    /// refused (raising it again needs CAP_SYS_NICE). Any task may call it.
    fn set_nice(&self, _tid: u32, _nice: i32) -> bool {
        true
    }

    /// Workers: name the calling task (`pm:MODULE` while it loads, for ps,
    /// top and the kernel's hung-task reports).
    fn name_task(&self, name: &CStr) {
        let _ = rustix::thread::set_name(name);
    }

    /// Sleep while `word` holds `expected` (a futex wait; may return early).
    fn park(&self, word: &AtomicU32, expected: u32) {
        let _ = rustix::thread::futex::wait(word, rustix::thread::futex::Flags::PRIVATE, expected, None);
    }

    /// Wake up to `n` tasks parked on `word` (after changing it).
    fn unpark(&self, word: &AtomicU32, n: u32) {
        let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::PRIVATE, n);
    }

    /// Workers: sleep for about `ns` (a hold, see `Sched::hold_for_requests`).
    fn pause(&self, ns: u64) {
        let ts = crate::runtime::clock::timespec(ns);
        let _ = rustix::thread::nanosleep(&ts);
    }

    // ---- the kernel's own requests (request_module) ----

    /// The main task of a run that lasts (a command, /init), before the
    /// workers start: from now on [`Kernel::requests_loading`] tells when a
    /// modprobe personality of the plan at `plan` is loading what the
    /// kernel asked for. Never in the personality itself (it would see its
    /// own mark).
    fn watch_requests(&self, _plan: &CStr) {}

    /// Whether the kernel is waiting for modules it asked for itself (a
    /// module's init in `request_module()`, the modprobe personality
    /// loading them): see [`Kernel::mark_request`]. Workers may call it.
    fn requests_loading(&self) -> bool {
        false
    }

    /// The modprobe personality, before its loads: mark, until this process
    /// exits, that a request of the plan at `plan` is loading.
    fn mark_request(&self, _plan: &CStr) {}

    /// Whether `path` exists; one or more components may be globs (`*`,
    /// `?`, `[...]`). With `watch`, the main task is also woken (see
    /// [`Kernel::sleep`]) when something that could make it exist changes;
    /// the answer is given after the watch is in place, so nothing created
    /// in between is missed. [`Seen::Unwatched`]: it does not exist and no
    /// watch could be set (the caller must look again by itself).
    fn path_exists(&self, path: &[u8], watch: bool) -> Seen;

    /// From now on, copy messages to the kernel log too (/dev/kmsg).
    fn log_to_kmsg(&self) {}

    /// Coldplug: open the uevent socket (with a large receive buffer) and
    /// keep every uevent from now on for [`Kernel::recv_uevent`] (the main
    /// task's sleep then only reports that some arrived).
    fn open_uevents(&self) -> Result<(), Errno>;

    /// The next kept uevent message into `buf`, its length; EAGAIN when
    /// none is there, ENOBUFS when some were lost.
    fn recv_uevent(&self, buf: &mut [u8]) -> Result<usize, Errno>;

    /// Call `f` with the modalias of every device there is now (the
    /// `MODALIAS=` line of each `/sys/devices/**/uevent`).
    fn scan_modaliases(&self, f: &mut dyn FnMut(&[u8]));

    // ---- /init's hand-over to the real root (see `root`) ----

    /// Call `f` with the name of every block device (`/sys/class/block`).
    fn list_block_devices(&self, f: &mut dyn FnMut(&[u8]));

    /// Read `buf` from byte `offset` of the file (a block device) `path`.
    fn read_at(&self, path: &CStr, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;

    fn make_dir(&self, path: &CStr, mode: u32) -> Result<(), Errno>;

    /// mount(2) with MS_* `flags` and file-system `data`.
    fn mount(&self, source: &CStr, target: &CStr, fstype: &CStr, flags: u64, data: Option<&CStr>) -> Result<(), Errno>;

    /// Whether `path` (absolute) exists inside the tree at `root`, its
    /// symlinks resolved as they will be once `root` is `/` (an absolute
    /// link such as Debian's `/sbin/init -> /lib/systemd/systemd` points
    /// into `root`, not into the initramfs).
    fn exists_in_root(&self, root: &CStr, path: &[u8]) -> bool {
        let mut buf = [0u8; 512];
        join_c(&mut buf, &[root.to_bytes(), path]).is_some_and(|p| self.path_exists(p.to_bytes(), false) == Seen::Exists)
    }

    /// Move the mount at `from` to `to` (MS_MOVE).
    fn move_mount(&self, from: &CStr, to: &CStr) -> Result<(), Errno>;

    /// Delete the initramfs's files: everything on the file system of `/`,
    /// when it is a ramfs or tmpfs and we are PID 1, but `keep` and never
    /// crossing into another file system.
    fn remove_initramfs(&self, keep: &CStr);

    /// Make the mount at `dir` the root: chdir there, move it onto `/`,
    /// chroot to it.
    fn enter_root(&self, dir: &CStr) -> Result<(), Errno>;

    /// Replace this process with `path`, arguments `args`, environment
    /// `env`; returns only on failure.
    fn exec(&self, path: &CStr, args: &[&CStr], env: &[&CStr]) -> Errno;

    /// Main task: sleep until a worker calls [`Kernel::wake`], a watched
    /// path may have changed, a uevent arrives (once a `/sys` path was
    /// watched), or `until` passes. A wake that came before the call makes
    /// it return at once; each wake is reported once.
    fn sleep(&self, until: Option<u64>) -> Wake;

    /// Workers: wake the main task.
    fn wake(&self);

    /// Whether loads are simulated (for the trace header).
    fn simulated(&self) -> bool {
        false
    }
}

/// How a module ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Loaded,
    Present,
    Builtin,
    /// Disabled by configuration (`install NAME /bin/true`): not loaded.
    Disabled,
    Failed(i32),
}

/// finit_module flags (include/uapi/linux/module.h); rustix has no names.
pub const MODULE_INIT_IGNORE_MODVERSIONS: u32 = 1;
pub const MODULE_INIT_IGNORE_VERMAGIC: u32 = 2;
pub const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// The `finit_module` flags for a module with plan flags `flags` stored
/// with compression `comp`. A compressed file is refused (EOPNOTSUPP) unless
/// the kernel decompresses that algorithm itself.
pub fn finit_flags(flags: u32, comp: Compression, kernel_decompresses: bool) -> Result<u32, Errno> {
    let mut f = 0;
    if flags & module_flags::IGNORE_MODVERSIONS != 0 {
        f |= MODULE_INIT_IGNORE_MODVERSIONS;
    }
    if flags & module_flags::IGNORE_VERMAGIC != 0 {
        f |= MODULE_INIT_IGNORE_VERMAGIC;
    }
    if comp != Compression::None {
        if !kernel_decompresses {
            return Err(Errno::OPNOTSUPP);
        }
        f |= MODULE_INIT_COMPRESSED_FILE;
    }
    Ok(f)
}

/// What `/sys/module/compression` names.
pub fn kernel_compression(contents: &[u8]) -> Option<Compression> {
    match contents.strip_suffix(b"\n").unwrap_or(contents) {
        b"xz" => Some(Compression::Xz),
        b"zstd" => Some(Compression::Zstd),
        b"gzip" => Some(Compression::Gzip),
        _ => None,
    }
}

/// `parts` concatenated into `buf` as a C string; None when it does not fit
/// or a part holds a NUL.
pub fn join_c<'b>(buf: &'b mut [u8], parts: &[&[u8]]) -> Option<&'b CStr> {
    let mut len = 0;
    for p in parts {
        let end = len + p.len();
        if end >= buf.len() || p.contains(&0) {
            return None;
        }
        buf[len..end].copy_from_slice(p);
        len = end;
    }
    buf[len] = 0;
    CStr::from_bytes_with_nul(&buf[..=len]).ok()
}

/// `DIR/RELATIVE` of a module file in `buf` (ENAMETOOLONG when it does not fit).
pub fn module_path<'b>(buf: &'b mut [u8], dir: &[u8], relative: &[u8]) -> Result<&'b CStr, Errno> {
    join_c(buf, &[dir, b"/", relative]).ok_or(Errno::NAMETOOLONG)
}

/// The module's parameters: the plan's options, then each option the
/// kernel command line gave as `module.param=value`, as modprobe merges
/// them (later ones win in the kernel's parser), tabs made spaces as kmod
/// makes them (a quoted value may hold one). E2BIG when they do not fit.
pub fn merge_params<'b, 'p>(
    buf: &'b mut [u8],
    plan: &'p [u8],
    cmdline: impl Iterator<Item = ModParam<'p>>,
) -> Result<&'b CStr, Errno> {
    let mut len = 0;
    let plan_parts = (!plan.is_empty()).then_some([plan, b"", b""]);
    for parts in plan_parts.into_iter().chain(cmdline.map(|o| o.parts())) {
        let sep = (len > 0) as usize;
        let end = len + sep + parts.iter().map(|p| p.len()).sum::<usize>();
        if end >= buf.len() {
            return Err(Errno::TOOBIG);
        }
        if sep == 1 {
            buf[len] = b' ';
        }
        len += sep;
        for p in parts {
            buf[len..len + p.len()].copy_from_slice(p);
            len += p.len();
        }
    }
    for c in &mut buf[..len] {
        if *c == b'\t' {
            *c = b' ';
        }
    }
    buf[len] = 0;
    CStr::from_bytes_with_nul(&buf[..=len]).map_err(|_| Errno::INVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_plan() {
        let both = module_flags::IGNORE_MODVERSIONS | module_flags::IGNORE_VERMAGIC;
        assert_eq!(finit_flags(0, Compression::None, false), Ok(0));
        assert_eq!(finit_flags(both, Compression::None, false), Ok(3));
        assert_eq!(finit_flags(module_flags::REQUESTED, Compression::None, true), Ok(0));
    }

    #[test]
    fn compressed_files_need_the_kernel() {
        assert_eq!(finit_flags(0, Compression::Xz, true), Ok(MODULE_INIT_COMPRESSED_FILE));
        assert_eq!(finit_flags(0, Compression::Zstd, false), Err(Errno::OPNOTSUPP));
        assert_eq!(kernel_compression(b"xz\n"), Some(Compression::Xz));
        assert_eq!(kernel_compression(b"zstd"), Some(Compression::Zstd));
        assert_eq!(kernel_compression(b"gzip\n"), Some(Compression::Gzip));
        assert_eq!(kernel_compression(b"none\n"), None);
        assert_eq!(kernel_compression(b""), None);
    }

    #[test]
    fn paths() {
        let mut b = [0u8; 64];
        assert_eq!(module_path(&mut b, b"/lib/modules/6.1", b"kernel/a.ko").unwrap().to_bytes(), b"/lib/modules/6.1/kernel/a.ko");
        let mut small = [0u8; 8];
        assert_eq!(module_path(&mut small, b"/lib", b"a.ko").map(|_| ()), Err(Errno::NAMETOOLONG));
        // Exactly full: 7 bytes and the NUL.
        assert!(module_path(&mut small, b"/ab", b"c.k").is_ok());
        assert!(join_c(&mut b, &[b"a\0b"]).is_none());
    }

    #[test]
    fn parameters_merge_plan_then_command_line() {
        use crate::cmdline::Cmdline;
        let line = Cmdline(b"pm.level=9 pm.tag=\"x y\" \"pm.dyndbg=file a +p\" other.z=1");
        let opts = || line.module_options(b"pm");
        let mut b = [0u8; 64];
        assert_eq!(merge_params(&mut b, b"level=7", opts()).unwrap().to_bytes(), b"level=7 level=9 tag=\"x y\" dyndbg=\"file a +p\"");
        assert_eq!(merge_params(&mut b, b"", opts()).unwrap().to_bytes(), b"level=9 tag=\"x y\" dyndbg=\"file a +p\"");
        assert_eq!(merge_params(&mut b, b"a=1", line.module_options(b"none")).unwrap().to_bytes(), b"a=1");
        assert_eq!(merge_params(&mut b, b"", line.module_options(b"none")).unwrap().to_bytes(), b"");
        let mut small = [0u8; 8];
        assert_eq!(merge_params(&mut small, b"a=1", Cmdline(b"m.bb=22").module_options(b"m")).map(|_| ()), Err(Errno::TOOBIG));
        assert_eq!(merge_params(&mut small, b"a=1", Cmdline(b"m.b=2").module_options(b"m")).unwrap().to_bytes(), b"a=1 b=2");
    }

    #[test]
    fn parameters_from_the_command_line_have_no_tabs() {
        // kmod_config_add_options() makes every tab a space: a quoted value
        // on the command line may hold one.
        use crate::cmdline::Cmdline;
        let mut b = [0u8; 64];
        let line = Cmdline(b"m.q=\"\tz\" \"m.r=a\tb\"");
        assert_eq!(merge_params(&mut b, b"", line.module_options(b"m")).unwrap().to_bytes(), b"q=\" z\" r=\"a b\"");
    }
}
