//! The real kernel: system calls through rustix.
//!
//! Device waits without polling loops:
//! * `/dev` (devtmpfs) and any other ordinary directory: inotify on the
//!   nearest existing ancestor of each path, re-armed as directories such as
//!   `/dev/snd` appear; every event means "look again".
//! * `/sys` (kernfs) raises no inotify events for new entries: the
//!   NETLINK_KOBJECT_UEVENT socket is the wake-up signal (the supervisor adds
//!   a bounded back-off re-check for attributes added after their uevent).
//!
//! The main task's wake-ups from workers come through an eventfd.

use core::ffi::CStr;
use core::mem::MaybeUninit;
use core::sync::atomic::AtomicU32;

use crate::plan::glob_match;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{inotify, Mode, OFlags, RawDir};
use rustix::io::Errno;
use rustix::net::{self, netlink, AddressFamily, SocketFlags, SocketType};

use super::{Kernel, LoadCall, Seen, UnpackCall, Wake, Work};
use crate::runtime::mapping::Buffer;
use crate::runtime::unpack;
use crate::runtime::clock;
use crate::runtime::out::{emit, Out, Sys, KMSG};
use crate::runtime::sync::SetOnce;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use crate::runtime::thread;

/// Longest path a device wait may name.
pub const PATH_MAX: usize = 256;

pub struct Real {
    /// The main task's wake-up channel (opened by `open`), and whether
    /// opening it failed (the main task then looks at the run every
    /// [`NO_WAKE_POLL_NS`]; a process without workers, `parmod wait`,
    /// never opens one and needs none).
    wake_fd: SetOnce<OwnedFd>,
    wake_failed: AtomicBool,
    /// Opened the first time a path outside /sys is watched.
    inotify: SetOnce<OwnedFd>,
    /// Opened the first time a /sys path is watched.
    uevents: SetOnce<OwnedFd>,
    /// Whether opening them was tried (and failed, said once).
    inotify_tried: AtomicBool,
    uevents_tried: AtomicBool,
    /// Coldplug reads the uevents: the main task's sleep leaves them.
    keep_uevents: AtomicBool,
    /// The plan file, opened for its lock: the modprobe personality holds a
    /// shared `flock` on it while it loads (`mark_request`); a run that
    /// watches (`watch_requests`) tries an exclusive one to tell.
    requests: SetOnce<OwnedFd>,
}

/// The uevent socket's receive buffer for coldplug (Alpine's nlplug-findfs
/// needed 4 MB after "No buffer space available"; a machine's whole
/// coldplug is well below this, and unread space costs nothing).
const UEVENT_RCVBUF: usize = 16 << 20;

/// Without a wake-up channel the main task looks at the run this often.
const NO_WAKE_POLL_NS: u64 = 10 * clock::MS;

/// The one real kernel of the process.
pub static REAL: Real = Real::new();

impl Default for Real {
    fn default() -> Self {
        Self::new()
    }
}

impl Real {
    pub const fn new() -> Self {
        Real {
            wake_fd: SetOnce::new(),
            wake_failed: AtomicBool::new(false),
            inotify: SetOnce::new(),
            uevents: SetOnce::new(),
            inotify_tried: AtomicBool::new(false),
            uevents_tried: AtomicBool::new(false),
            keep_uevents: AtomicBool::new(false),
            requests: SetOnce::new(),
        }
    }

    /// The descriptor in `cell`, opened on first use; a failure is said
    /// once (the waits then fall back to looking again on a back-off).
    fn fd<'a>(cell: &'a SetOnce<OwnedFd>, tried: &AtomicBool, what: &str, open: impl FnOnce() -> Result<OwnedFd, Errno>) -> Option<BorrowedFd<'a>> {
        if cell.get().is_none() && !tried.swap(true, Relaxed) {
            match open() {
                Ok(fd) => {
                    let _ = cell.set(fd);
                }
                Err(e) => emit!(Out::stderr(), "parmod: cannot open ", what, ": ", Sys::from(e), "; device waits look again every 5 to 50 ms instead\n"),
            }
        }
        cell.get().map(|f| f.as_fd())
    }

    fn inotify_fd(&self) -> Option<BorrowedFd<'_>> {
        Self::fd(&self.inotify, &self.inotify_tried, "inotify", || {
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
        })
    }

    fn uevent_fd(&self) -> Option<BorrowedFd<'_>> {
        Self::fd(&self.uevents, &self.uevents_tried, "the uevent socket", open_uevents)
    }
}

impl Kernel for Real {
    fn open(&self) -> Result<(), Errno> {
        if self.wake_fd.get().is_none() {
            let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK)
                .inspect_err(|_| self.wake_failed.store(true, Relaxed))?;
            let _ = self.wake_fd.set(fd);
        }
        Ok(())
    }

    fn now(&self) -> u64 {
        clock::monotonic_ns()
    }

    fn watch_requests(&self, plan: &CStr) {
        // Without it (the file gone, no locks on its file system) the run
        // just never holds a load back.
        if let Ok(fd) = rustix::fs::open(plan, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            let _ = self.requests.set(fd);
        }
    }

    fn requests_loading(&self) -> bool {
        use rustix::fs::{flock, FlockOperation};
        let Some(fd) = self.requests.get() else { return false };
        // The exclusive lock is taken only when no personality holds its
        // shared one, and given back at once (a personality starting
        // meanwhile waits those few microseconds).
        match flock(fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                let _ = flock(fd, FlockOperation::Unlock);
                false
            }
            Err(e) => e == Errno::WOULDBLOCK,
        }
    }

    fn mark_request(&self, plan: &CStr) {
        use rustix::fs::{flock, FlockOperation};
        let Ok(fd) = rustix::fs::open(plan, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else { return };
        // A run's exclusive lock lasts two system calls; anyone else's
        // (a tool that locks the file to rewrite it) must not make the
        // kernel's request wait: after 20 ms of tries, load unmarked.
        for _ in 0..200 {
            match flock(&fd, FlockOperation::NonBlockingLockShared) {
                Ok(()) => {
                    // Kept until the process exits, which gives the lock back.
                    let _ = self.requests.set(fd);
                    return;
                }
                Err(Errno::WOULDBLOCK | Errno::INTR) => {
                    self.pause(100_000);
                }
                Err(_) => return,
            }
        }
    }

    fn cpus(&self) -> u32 {
        rustix::thread::sched_getaffinity(None).map_or(1, |s| s.count().max(1))
    }

    fn release(&self, buf: &mut [u8; 65]) -> usize {
        let uts = rustix::system::uname();
        let r = uts.release().to_bytes();
        let n = r.len().min(buf.len());
        buf[..n].copy_from_slice(&r[..n]);
        n
    }

    fn read_small(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        rustix::io::read(&fd, buf)
    }

    fn load(&self, call: &LoadCall<'_>) -> Result<(), Errno> {
        if let Some(image) = call.image {
            match rustix::system::init_module(image, call.params) {
                // A policy that wants modules from files (LoadPin, IMA,
                // an LSM): the file, as without the image.
                Err(Errno::PERM | Errno::ACCESS | Errno::NOSYS) => {}
                r => return r,
            }
        }
        let fd = rustix::fs::open(call.path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        rustix::system::finit_module(&fd, call.params, call.flags as i32)
        // fd closes here.
    }

    fn unpack_budget(&self) -> u64 {
        // A quarter of the memory free now: images live only until their
        // load, and the boot needs the rest.
        let si = rustix::system::sysinfo();
        (si.freeram as u64).saturating_mul(si.mem_unit.max(1) as u64) / 4
    }

    fn unpack(&self, call: &mut UnpackCall<'_>) -> Result<Buffer, Errno> {
        let fd = rustix::fs::open(call.path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        let len = rustix::fs::fstat(&fd)?.st_size as usize;
        let mut file = Buffer::new(len)?;
        crate::runtime::mapping::read_exact(fd.as_fd(), file.bytes_mut())?;
        drop(fd);
        let size = unpack::xz_size(file.bytes()).ok_or(Errno::INVAL)?;
        let mut image = Buffer::new(size)?;
        unpack::xz_decode(file.bytes(), image.bytes_mut(), call.dict, call.go_on)?;
        Ok(image)
    }

    fn idle_class(&self) -> bool {
        crate::runtime::arch::sched_idle()
    }

    fn spawn(&'static self, work: &'static dyn Work, id: usize, tid: &'static AtomicU32) -> Result<(), Errno> {
        thread::spawn_worker(work, id, tid, false)
    }

    fn task_cpu_ns(&self, tid: u32) -> Option<u64> {
        crate::runtime::arch::task_cpu_ns(tid)
    }

    fn nice(&self) -> i32 {
        rustix::process::getpriority_process(None).unwrap_or(0)
    }

    fn set_nice(&self, tid: u32, nice: i32) -> bool {
        let pid = rustix::process::Pid::from_raw(tid as i32);
        pid.is_some() && rustix::process::setpriority_process(pid, nice).is_ok()
    }

    fn path_exists(&self, path: &[u8], watch: bool) -> Seen {
        let seen = |there: bool, watched: bool| match (there, watched) {
            (true, _) => Seen::Exists,
            (false, true) => Seen::Watched,
            (false, false) => Seen::Unwatched,
        };
        let there = walk(None, b"", path);
        if there || !watch {
            return seen(there, false);
        }
        if is_sys(path) {
            // kernfs raises no inotify events: uevents are the signal. Open
            // the socket, then look again.
            let fd = self.uevent_fd();
            return seen(walk(None, b"", path), fd.is_some());
        }
        let fd = self.inotify_fd();
        seen(walk(fd.as_ref(), b"", path), fd.is_some())
    }

    fn open_uevents(&self) -> Result<(), Errno> {
        let fd = match self.uevents.get() {
            Some(fd) => fd.as_fd(),
            None => {
                let fd = open_uevents()?;
                let _ = self.uevents.set(fd);
                self.uevents.get().map(|f| f.as_fd()).ok_or(Errno::BADF)?
            }
        };
        // Without CAP_NET_ADMIN only the plain option (capped by rmem_max).
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(fd, UEVENT_RCVBUF).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(fd, UEVENT_RCVBUF);
        }
        self.keep_uevents.store(true, Relaxed);
        Ok(())
    }

    fn recv_uevent(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let fd = self.uevents.get().ok_or(Errno::AGAIN)?;
        let room = buf.len();
        net::recv(fd, buf, net::RecvFlags::DONTWAIT).map(|(n, _)| n.min(room))
    }

    fn scan_modaliases(&self, f: &mut dyn FnMut(&[u8])) {
        if let Ok(fd) = rustix::fs::open(c"/sys/devices", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
            scan_dir(fd, 0, f);
        }
    }

    fn list_block_devices(&self, f: &mut dyn FnMut(&[u8])) {
        let Ok(fd) = rustix::fs::open(c"/sys/class/block", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
            return;
        };
        let mut space = [MaybeUninit::<u8>::uninit(); 2048];
        let mut entries = RawDir::new(fd, &mut space);
        while let Some(Ok(e)) = entries.next() {
            let name = e.file_name().to_bytes();
            if name.first() != Some(&b'.') {
                f(name);
            }
        }
    }

    fn read_at(&self, path: &CStr, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        rustix::io::pread(&fd, buf, offset)
    }

    fn make_dir(&self, path: &CStr, mode: u32) -> Result<(), Errno> {
        rustix::fs::mkdir(path, Mode::from_raw_mode(mode))
    }

    fn mount(&self, source: &CStr, target: &CStr, fstype: &CStr, flags: u64, data: Option<&CStr>) -> Result<(), Errno> {
        let flags = rustix::mount::MountFlags::from_bits_retain(flags as _);
        rustix::mount::mount(source, target, fstype, flags, data)
    }

    fn exists_in_root(&self, root: &CStr, path: &[u8]) -> bool {
        let Ok(dir) = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else { return false };
        let mut buf = [0u8; 512];
        let rel = path.strip_prefix(b"/").unwrap_or(path);
        let Some(rel) = super::join_c(&mut buf, &[rel]) else { return false };
        rustix::fs::openat2(&dir, rel, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), rustix::fs::ResolveFlags::IN_ROOT).is_ok()
    }

    fn move_mount(&self, from: &CStr, to: &CStr) -> Result<(), Errno> {
        rustix::mount::mount_move(from, to)
    }

    fn remove_initramfs(&self, keep: &CStr) {
        const RAMFS_MAGIC: i64 = 0x8584_58f6;
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        // f_type is i64 on x86_64 and aarch64 but 32 bits on arm.
        #[allow(clippy::unnecessary_cast)]
        let ramfs = rustix::fs::statfs(c"/").is_ok_and(|s| matches!(s.f_type as i64, RAMFS_MAGIC | TMPFS_MAGIC));
        if !ramfs || !rustix::process::getpid().is_init() {
            return;
        }
        let Ok(root) = rustix::fs::open(c"/", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else { return };
        let Ok(st) = rustix::fs::fstat(&root) else { return };
        let keep = keep.to_bytes().strip_prefix(b"/").unwrap_or(b"");
        remove_tree(&root, st.st_dev, keep, 0);
    }

    fn enter_root(&self, dir: &CStr) -> Result<(), Errno> {
        rustix::process::chdir(dir)?;
        rustix::mount::mount_move(c".", c"/")?;
        rustix::process::chroot(c".")?;
        rustix::process::chdir(c"/")
    }

    fn exec(&self, path: &CStr, args: &[&CStr], env: &[&CStr]) -> Errno {
        crate::runtime::arch::exec_with(path, args, env)
    }

    fn log_to_kmsg(&self) {
        if KMSG.get().is_none() {
            if let Ok(k) = rustix::fs::open(c"/dev/kmsg", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()) {
                let _ = KMSG.set(k);
            }
        }
    }

    fn sleep(&self, until: Option<u64>) -> Wake {
        let until = match self.wake_failed.load(Relaxed) {
            false => until,
            true => Some(until.unwrap_or(u64::MAX).min(clock::monotonic_ns() + NO_WAKE_POLL_NS)),
        };
        let ts;
        let timeout = match until {
            Some(u) => {
                ts = clock::timespec(u.saturating_sub(clock::monotonic_ns()).max(1));
                Some(&ts)
            }
            None => None,
        };
        let fds = [self.wake_fd.get(), self.inotify.get(), self.uevents.get()];
        let mut list: heapless::Vec<PollFd<'_>, 3> = heapless::Vec::new();
        for fd in fds.iter().flatten() {
            let _ = list.push(PollFd::new(*fd, PollFlags::IN));
        }
        let _ = rustix::event::poll(&mut list, timeout);
        // Take what arrived: each wake is reported once.
        let mut wake = Wake::default();
        let mut buf = [0u8; 4096];
        if let Some(fd) = fds[0] {
            if rustix::io::read(fd, &mut buf[..8]).is_ok() {
                wake.0 |= Wake::WORKER;
            }
        }
        if let Some(fd) = fds[1] {
            while let Ok(n) = rustix::io::read(fd, &mut buf) {
                if n == 0 {
                    break;
                }
                wake.0 |= Wake::FILES;
            }
        }
        if let Some(fd) = fds[2] {
            if self.keep_uevents.load(Relaxed) {
                if list.iter().any(|p| p.as_fd().as_raw_fd() == fd.as_fd().as_raw_fd() && !p.revents().is_empty()) {
                    wake.0 |= Wake::UEVENT;
                }
            } else {
                while net::recv(fd, &mut buf, net::RecvFlags::DONTWAIT).is_ok() {
                    wake.0 |= Wake::UEVENT;
                }
            }
        }
        wake
    }

    fn wake(&self) {
        if let Some(fd) = self.wake_fd.get() {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }
}

pub fn is_sys(path: &[u8]) -> bool {
    path.starts_with(b"/sys/")
}

fn open_uevents() -> Result<OwnedFd, Errno> {
    let fd = net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        Some(netlink::KOBJECT_UEVENT),
    )?;
    // Group 1: the kernel's own uevents (udev re-broadcasts on group 2).
    net::bind(&fd, &netlink::SocketAddrNetlink::new(0, 1))?;
    Ok(fd)
}

/// Delete the entries of `dir` that are on file system `dev` (directories
/// after their contents), but `keep` (a name in the top directory).
fn remove_tree(dir: &OwnedFd, dev: u64, keep: &[u8], depth: u32) {
    let mut space = [MaybeUninit::<u8>::uninit(); 2048];
    let Ok(listing) = rustix::fs::openat(dir, c".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else { return };
    let mut entries = RawDir::new(listing, &mut space);
    while let Some(Ok(e)) = entries.next() {
        let name = e.file_name();
        let n = name.to_bytes();
        if n == b"." || n == b".." || (depth == 0 && n == keep) {
            continue;
        }
        let Ok(st) = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) else { continue };
        #[allow(clippy::unnecessary_cast)] // u32 on some architectures
        if (st.st_dev as u64) != dev {
            continue; // a mount point of another file system
        }
        if e.file_type() == rustix::fs::FileType::Directory {
            if depth < SCAN_DEPTH {
                if let Ok(sub) = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
                    remove_tree(&sub, dev, keep, depth + 1);
                }
            }
            let _ = rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::REMOVEDIR);
        } else {
            let _ = rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty());
        }
    }
}

/// Sysfs nests devices about a dozen deep; this is far beyond.
const SCAN_DEPTH: u32 = 40;

/// The modalias in the `uevent` file of the device directory `dir`, if it
/// has one, to `f`; and the same for every subdirectory (not following
/// symlinks: sysfs links back up the tree). Entries that vanish while we
/// read are skipped (ENOENT is normal there).
fn scan_dir(dir: OwnedFd, depth: u32, f: &mut dyn FnMut(&[u8])) {
    let mut space = [MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(&dir, &mut space);
    while let Some(Ok(e)) = entries.next() {
        let name = e.file_name();
        if name.to_bytes() == b"uevent" {
            if let Ok(ue) = rustix::fs::openat(&dir, c"uevent", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
                let mut buf = [0u8; 4096];
                if let Ok(n) = rustix::io::read(&ue, &mut buf) {
                    let text = buf.get(..n).unwrap_or(b"");
                    if let Some(ma) = text.split(|&c| c == b'\n').filter_map(|l| l.strip_prefix(b"MODALIAS=")).find(|v| !v.is_empty()) {
                        f(ma);
                    }
                }
            }
            continue;
        }
        if depth >= SCAN_DEPTH || e.file_type() != rustix::fs::FileType::Directory || name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        if let Ok(sub) = rustix::fs::openat(&dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
            scan_dir(sub, depth + 1, f);
        }
    }
}

/// Walk `prefix` + `rest` ("/a/b*/c"), expanding glob components. With an
/// inotify descriptor, watch what can change the answer on the way: the
/// nearest existing ancestor of each plain part, and every directory a glob
/// matched so far (a file that arrives inside a directory matched by `eth*`
/// is seen). Returns whether the path exists.
fn walk(watch: Option<&BorrowedFd<'_>>, prefix: &[u8], rest: &[u8]) -> bool {
    let mut buf = [0u8; PATH_MAX];
    // The first glob component, if any: rest[dir_end + 1 .. comp_end].
    let glob = rest.iter().position(|&c| matches!(c, b'*' | b'?' | b'['));
    let plain = &rest[..glob.unwrap_or(rest.len())];
    let dir_end = plain.iter().rposition(|&c| c == b'/').unwrap_or(0);
    if let Some(fd) = watch {
        // Watch the nearest existing ancestor of the plain part's directory.
        let mask = inotify::WatchFlags::CREATE | inotify::WatchFlags::MOVED_TO | inotify::WatchFlags::ATTRIB;
        let mut end = dir_end;
        loop {
            let dir = if end == 0 && prefix.is_empty() { &b"/"[..] } else { &rest[..end] };
            if super::join_c(&mut buf, &[prefix, dir]).is_some_and(|c| inotify::add_watch(fd, c, mask).is_ok()) || end == 0 {
                break;
            }
            end = rest[..end].iter().rposition(|&c| c == b'/').unwrap_or(0);
        }
    }
    let Some(g) = glob else {
        return super::join_c(&mut buf, &[prefix, rest])
            .is_some_and(|p| rustix::fs::access(p, rustix::fs::Access::EXISTS).is_ok());
    };
    let comp_end = rest[g..].iter().position(|&c| c == b'/').map_or(rest.len(), |i| g + i);
    let (dir, pattern, tail) = (&rest[..dir_end + 1], &rest[dir_end + 1..comp_end], &rest[comp_end..]);
    let Some(dirc) = super::join_c(&mut buf, &[prefix, dir]) else { return false };
    let Ok(fd) = rustix::fs::open(dirc, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    let mut space = [MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(fd, &mut space);
    let mut sub = [0u8; PATH_MAX];
    let mut found = false;
    while let Some(Ok(e)) = entries.next() {
        let name = e.file_name().to_bytes();
        let plen = prefix.len() + dir.len() + name.len();
        if name == b"." || name == b".." || !glob_match(pattern, name) || plen >= PATH_MAX {
            continue;
        }
        if tail.is_empty() {
            return true;
        }
        sub[..prefix.len()].copy_from_slice(prefix);
        sub[prefix.len()..prefix.len() + dir.len()].copy_from_slice(dir);
        sub[prefix.len() + dir.len()..plen].copy_from_slice(name);
        // When watching, keep going: every matching directory gets a watch.
        found |= walk(watch, &sub[..plen], tail);
        if found && watch.is_none() {
            return true;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn a_personality_loading_is_seen_by_a_run_of_the_same_plan() {
        // flock(2) locks belong to open files: two kernels of one process
        // stand for a run and a modprobe personality.
        let dir = std::env::temp_dir().join(std::format!("parmod-requests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (plan, other) = (dir.join("a.plan"), dir.join("b.plan"));
        std::fs::write(&plan, b"plan").expect("write");
        std::fs::write(&other, b"plan").expect("write");
        let c = |p: &std::path::Path| std::ffi::CString::new(p.to_str().expect("utf-8")).expect("no NUL");
        let (plan, other) = (c(&plan), c(&other));

        let run = Real::new();
        assert!(!run.requests_loading(), "not watching: never");
        run.watch_requests(&plan);
        assert!(!run.requests_loading(), "no personality yet");
        assert!(!run.requests_loading(), "and looking took nothing it kept");
        // What a personality holds, as an open file that can be closed here
        // (a personality's own goes when its process exits).
        let hold = |p: &std::ffi::CStr| {
            let fd = rustix::fs::open(p, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).expect("open");
            rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockShared).expect("flock");
            fd
        };
        let first = hold(&plan);
        assert!(run.requests_loading());
        let nested = hold(&plan);
        drop(first);
        assert!(run.requests_loading(), "the nested one still loads");
        drop(nested);
        assert!(!run.requests_loading(), "both gone: their locks with them");
        let elsewhere = Real::new();
        elsewhere.watch_requests(&other);
        let missing = Real::new();
        missing.watch_requests(c"/nonexistent/parmod.plan");
        // Someone else's exclusive lock: the personality does not wait for
        // it (it loads unmarked).
        let writer = rustix::fs::open(other.as_c_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).expect("open");
        rustix::fs::flock(&writer, rustix::fs::FlockOperation::LockExclusive).expect("flock");
        let blocked = Real::new();
        blocked.mark_request(&other);
        drop(writer);
        assert!(!elsewhere.requests_loading(), "the blocked personality left no mark");
        // The personality's own mark (kept until the process exits).
        let personality = Real::new();
        personality.mark_request(&plan);
        assert!(run.requests_loading());
        assert!(!elsewhere.requests_loading(), "a run of another plan");
        assert!(!missing.requests_loading(), "a run whose plan could not be opened");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
