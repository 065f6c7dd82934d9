//! Waiting for device nodes and sysfs attributes without polling loops.
//!
//! * `/dev` (devtmpfs) and any other ordinary directory: inotify on the
//!   nearest existing ancestor of each path, re-armed as directories such as
//!   `/dev/snd` appear; every event means "look again".
//! * `/sys` (kernfs) raises no inotify events for new entries: a
//!   NETLINK_KOBJECT_UEVENT socket is the wake-up signal, and a bounded
//!   back-off re-check (5 ms doubling to 50 ms, restarted by every uevent)
//!   covers attributes drivers add after their uevent, or without one.
//!
//! A glob (`*`, `?`, `[...]`) may stand in any one or more components.

use core::ffi::CStr;
use core::mem::MaybeUninit;

use crate::plan::glob_match;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{inotify, Mode, OFlags, RawDir};
use rustix::net::{self, netlink, AddressFamily, SocketFlags, SocketType};

/// Longest path a wait may name.
pub const PATH_MAX: usize = 256;

const BACKOFF_FIRST_NS: u64 = 5_000_000;
const BACKOFF_MAX_NS: u64 = 50_000_000;

pub struct Watcher {
    inotify: Option<OwnedFd>,
    uevents: Option<OwnedFd>,
    /// Next back-off re-check of /sys paths (ns), and the current step.
    recheck_at: u64,
    step: u64,
}

pub fn is_sys(path: &[u8]) -> bool {
    path.starts_with(b"/sys/")
}

/// Copy `parts` into `buf` as a C string.
fn cpath<'b>(buf: &'b mut [u8; PATH_MAX], parts: &[&[u8]]) -> Option<&'b CStr> {
    let mut len = 0;
    for p in parts {
        if len + p.len() >= PATH_MAX {
            return None;
        }
        buf[len..len + p.len()].copy_from_slice(p);
        len += p.len();
    }
    buf[len] = 0;
    CStr::from_bytes_with_nul(&buf[..=len]).ok()
}

/// Whether `path` exists; a glob component matches any entry of its directory.
pub fn exists(path: &[u8]) -> bool {
    walk(None, b"", path)
}

/// Walk `prefix` + `rest` ("/a/b*/c"), expanding glob components. With an
/// inotify descriptor, watch what can change the answer on the way: the
/// nearest existing ancestor of each plain part, and every directory a glob
/// matched so far (a file that arrives inside a directory matched by `eth*`
/// is seen). Returns whether the path exists.
fn walk(watch: Option<&OwnedFd>, prefix: &[u8], rest: &[u8]) -> bool {
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
            if cpath(&mut buf, &[prefix, dir]).is_some_and(|c| inotify::add_watch(fd, c, mask).is_ok()) || end == 0 {
                break;
            }
            end = rest[..end].iter().rposition(|&c| c == b'/').unwrap_or(0);
        }
    }
    let Some(g) = glob else {
        return cpath(&mut buf, &[prefix, rest])
            .is_some_and(|p| rustix::fs::access(p, rustix::fs::Access::EXISTS).is_ok());
    };
    let comp_end = rest[g..].iter().position(|&c| c == b'/').map_or(rest.len(), |i| g + i);
    let (dir, pattern, tail) = (&rest[..dir_end + 1], &rest[dir_end + 1..comp_end], &rest[comp_end..]);
    let Some(dirc) = cpath(&mut buf, &[prefix, dir]) else { return false };
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

impl Watcher {
    /// Open what the waits need: inotify for ordinary paths, the uevent
    /// socket for /sys paths.
    pub fn new(want_inotify: bool, want_uevents: bool) -> Watcher {
        let inotify = if want_inotify {
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()
        } else {
            None
        };
        let uevents = if want_uevents { open_uevents() } else { None };
        Watcher { inotify, uevents, recheck_at: u64::MAX, step: BACKOFF_FIRST_NS }
    }

    /// Watch what can change whether `path` exists (see [`walk`]) and
    /// look again: returns whether it exists now. Adding the same directory
    /// again is harmless (inotify returns the same watch).
    pub fn arm(&self, path: &[u8]) -> bool {
        walk(self.inotify.as_ref(), b"", path)
    }

    /// Start (or restart) the /sys back-off re-checks at `now`.
    pub fn restart_backoff(&mut self, now: u64) {
        self.step = BACKOFF_FIRST_NS;
        self.recheck_at = now + self.step;
    }

    /// When the next /sys re-check is due (ns), if /sys paths are pending.
    pub fn recheck_at(&self) -> u64 {
        self.recheck_at
    }

    /// A re-check happened at `now`: schedule the next one, further away.
    pub fn backoff(&mut self, now: u64) {
        self.step = (self.step * 2).min(BACKOFF_MAX_NS);
        self.recheck_at = now + self.step;
    }

    pub fn stop_backoff(&mut self) {
        self.recheck_at = u64::MAX;
    }

    /// The descriptors to poll (inotify, uevents).
    pub fn fds(&self) -> (Option<rustix::fd::BorrowedFd<'_>>, Option<rustix::fd::BorrowedFd<'_>>) {
        (self.inotify.as_ref().map(|f| f.as_fd()), self.uevents.as_ref().map(|f| f.as_fd()))
    }

    /// Read and discard pending events. Returns (inotify event, uevent).
    pub fn drain(&mut self, now: u64) -> (bool, bool) {
        let mut buf = [0u8; 4096];
        let mut dev = false;
        let mut sys = false;
        if let Some(fd) = &self.inotify {
            while let Ok(n) = rustix::io::read(fd, &mut buf) {
                if n == 0 {
                    break;
                }
                dev = true;
            }
        }
        if let Some(fd) = &self.uevents {
            while net::recv(fd, &mut buf, net::RecvFlags::DONTWAIT).is_ok() {
                sys = true;
            }
        }
        if sys {
            self.restart_backoff(now);
        }
        (dev, sys)
    }
}

fn open_uevents() -> Option<OwnedFd> {
    let fd = net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        Some(netlink::KOBJECT_UEVENT),
    )
    .ok()?;
    // Group 1: the kernel's own uevents (udev re-broadcasts on group 2).
    net::bind(&fd, &netlink::SocketAddrNetlink::new(0, 1)).ok()?;
    Some(fd)
}

/// Sleep until one of `fds` is readable or `until` (ns) passes.
pub fn poll_until(fds: &[Option<rustix::fd::BorrowedFd<'_>>], until: Option<u64>) {
    use rustix::event::{PollFd, PollFlags};
    let ts;
    let timeout = match until {
        Some(u) => {
            ts = super::sched::timespec(u.saturating_sub(super::sched::now_ns()).max(1));
            Some(&ts)
        }
        None => None,
    };
    let mut list: heapless::Vec<PollFd<'_>, 3> = heapless::Vec::new();
    for fd in fds.iter().flatten() {
        let _ = list.push(PollFd::from_borrowed_fd(*fd, PollFlags::IN));
    }
    let _ = rustix::event::poll(&mut list, timeout);
}

/// `parmod wait [--timeout MS] PATH...`: 0 once every path exists, 1 when
/// the timeout passes first (naming what is missing), 2 on a usage error.
pub fn wait_command(args: &super::mapping::Args) -> i32 {
    use super::out::{emit, Out, Show};
    let mut timeout_ms: u64 = 30_000;
    let mut paths = heapless::Vec::<&'static [u8], 32>::new();
    let mut i = 2;
    while let Some(a) = args.get(i) {
        i += 1;
        let a = a.to_bytes();
        if a == b"--timeout" || a == b"-t" {
            let v = args.get(i).map(|v| v.to_bytes()).unwrap_or(b"");
            i += 1;
            let Some(ms) = crate::cmdline::decimal(v) else {
                emit!(Out::stderr(), "parmod wait: --timeout takes milliseconds, not '", Show(v), "'\n");
                return 2;
            };
            timeout_ms = ms as u64;
        } else if a.first() != Some(&b'/') || a.len() >= PATH_MAX {
            emit!(Out::stderr(), "parmod wait: '", Show(a), "' is not an absolute path\n");
            return 2;
        } else if paths.push(a).is_err() {
            emit!(Out::stderr(), "parmod wait: at most 32 paths\n");
            return 2;
        }
    }
    if paths.is_empty() {
        emit!(Out::stderr(), "usage: parmod wait [--timeout MS] PATH...\n");
        return 2;
    }
    let start = super::sched::now_ns();
    let end = start + timeout_ms * 1_000_000;
    let mut w = Watcher::new(paths.iter().any(|p| !is_sys(p)), paths.iter().any(|p| is_sys(p)));
    w.restart_backoff(start);
    loop {
        let now = super::sched::now_ns();
        w.drain(now);
        let mut missing = 0;
        let mut sys = false;
        for p in paths.iter() {
            if exists(p) {
                continue;
            }
            if !is_sys(p) && w.arm(p) {
                continue;
            }
            sys |= is_sys(p);
            missing += 1;
        }
        if missing == 0 {
            return 0;
        }
        if now >= end {
            for p in paths.iter().filter(|p| !exists(p)) {
                emit!(Out::stderr(), "parmod wait: ", Show(p), " did not appear within ", timeout_ms, " ms\n");
            }
            return 1;
        }
        let mut until = end;
        if sys {
            if now >= w.recheck_at() {
                w.backoff(now);
            }
            until = until.min(w.recheck_at());
        }
        let (a, b) = w.fds();
        poll_until(&[a, b], Some(until));
    }
}
