//! /init's hand-over to the real root file system, as the kernel and
//! initramfs-tools define `root=` and friends (see [`crate::blockid`]).
//!
//! * While the plan runs, [`RootWait`] (a supervisor hook) looks for the
//!   root device each time something changes in /dev (inotify; a device
//!   that cannot be opened yet is read again on a short back-off):
//!   a node path directly; `MAJ:MIN` by `/sys/class/block/*/dev`;
//!   `PARTUUID=`/`PARTLABEL=` by reading the partition table of each whole
//!   disk; `UUID=`/`LABEL=` by reading the superblock of each block
//!   device. Once found, it wants the file system's module (when the plan
//!   has it) and holds the run until that is loaded.
//! * The run ends when every module is done, so no load is in flight when
//!   the root is switched: a module's init never sees the initramfs vanish
//!   under it. Loads still stuck at the deadline stay behind in their worker
//!   tasks; firmware the kernel loads for them later comes from the new
//!   root (the kernel looks it up through PID 1's root, which the chroot
//!   below changes). A module that requests firmware from work of its own
//!   after its init returned gets it from the real root too: its firmware
//!   belongs there.
//! * [`switch_root`] then mounts it on `/root`, moves /dev, /proc, /sys and
//!   /run into it, deletes the initramfs's files (only when / is a ramfs or
//!   tmpfs, never crossing into another file system), makes it the root
//!   (`mount --move . /`, `chroot .`) and execs `init=` (default
//!   `/sbin/init`) with a clean environment: HOME, TERM and
//!   `RD_TIMESTAMP` (when the initramfs started, dracut's old convention).
//!   systemd does not read RD_TIMESTAMP (252 has no such string; only its
//!   own initrd hands over an initrd time), so systemd-analyze counts the
//!   initramfs in "kernel" (docs/systemd.md).

use core::ffi::CStr;

use crate::blockid::{self, partition_node, probe_fs, Disk, FsType, ReadAt, Root, RootSpec};
use rustix::io::Errno;

use super::clock::MS;
use super::kernel::{join_c, Kernel, Seen};
use super::out::{decimal, emit, Out, Show, Sys};
use super::sched::Sched;
use super::supervisor::Hook;

/// Where the root is mounted before it becomes `/`.
pub const NEW_ROOT: &CStr = c"/root";

/// A block device read through the kernel seam.
struct Dev<'k> {
    k: &'k dyn Kernel,
    path: &'k CStr,
}

impl ReadAt for Dev<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, i32> {
        self.k.read_at(self.path, offset, buf).map_err(|e| e.raw_os_error())
    }
}

/// A device node path (`/dev/NAME`), NUL-terminated.
#[derive(Clone, Copy)]
pub struct Node {
    buf: [u8; 80],
}

impl Node {
    fn new(parts: &[&[u8]]) -> Option<Node> {
        let mut n = Node { buf: [0; 80] };
        join_c(&mut n.buf, parts)?;
        Some(n)
    }
    pub fn path(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

/// Block devices looked at already (hashes of their names).
const PROBED: usize = 64;

/// Looking for the root device during the run (a supervisor hook).
pub struct RootWait<'a> {
    pub spec: RootSpec<'a>,
    /// The device, once found, and its file system when probed.
    pub found: Option<(Node, Option<FsType>)>,
    /// A partition named by PARTUUID/PARTLABEL whose node is not there yet.
    partition: Option<Node>,
    probed: [u64; PROBED],
    /// When to give up (None: never) and when the device may be mounted
    /// (`rootdelay=`).
    limit: Option<u64>,
    not_before: u64,
    /// The file system's module, wanted once the device is found.
    module: Option<u32>,
    /// A block device that could not be read yet, and the back-off (ms)
    /// before the next look: the kernel creates a partition's node
    /// (device_add, the only inotify event) before it adds the block
    /// device (bdev_add), and an open in between fails (ENXIO), or waits
    /// for a `request_module("block-major-M-N")` where the kernel still has
    /// block-device autoloading (seen once here: "block device autoloading
    /// is deprecated"); no event comes when it can be read.
    unreadable: bool,
    backoff_ms: u32,
}

fn hash(s: &[u8]) -> u64 {
    s.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| (h ^ c as u64).wrapping_mul(0x100_0000_01b3)).max(1)
}

impl<'a> RootWait<'a> {
    pub fn new(spec: RootSpec<'a>, now: u64) -> Self {
        RootWait {
            spec,
            found: None,
            partition: None,
            probed: [0; PROBED],
            limit: spec.wait_ms().map(|ms| now + ms as u64 * MS),
            not_before: now + spec.delay_ms as u64 * MS,
            module: None,
            unreadable: false,
            backoff_ms: 0,
        }
    }

    fn seen_before(&mut self, name: &[u8]) -> bool {
        let h = hash(name);
        if self.probed.contains(&h) {
            return true;
        }
        if let Some(slot) = self.probed.iter_mut().find(|x| **x == 0) {
            *slot = h;
        }
        false
    }

    /// Look at the block devices there are now.
    fn look(&mut self, k: &dyn Kernel) {
        self.unreadable = false;
        if let Root::Path(p) = self.spec.root {
            if k.path_exists(p, true) == Seen::Exists {
                self.found = Node::new(&[p]).map(|n| (n, None));
            }
            return;
        }
        if let Some(node) = self.partition {
            if k.path_exists(node.path().to_bytes(), true) == Seen::Exists {
                self.found = Some((node, None));
            }
            return;
        }
        // Wake up on anything new in /dev.
        let _ = k.path_exists(b"/dev/.parmod-root", true);
        let mut names = [[0u8; 32]; 16];
        let mut count = 0;
        k.list_block_devices(&mut |name| {
            if let Some(slot) = names.get_mut(count).filter(|_| name.len() < 32) {
                slot[..name.len()].copy_from_slice(name);
                count += 1;
            }
        });
        for slot in names.iter().take(count) {
            let name = slot.split(|&c| c == 0).next().unwrap_or(b"");
            if self.found.is_some() || self.partition.is_some() {
                break;
            }
            self.probe(k, name);
        }
    }

    /// Whether block device `name` is (or holds) the root.
    fn probe(&mut self, k: &dyn Kernel, name: &[u8]) {
        let Some(node) = Node::new(&[b"/dev/", name]) else { return };
        let mut sys = [0u8; 128];
        let mut small = [0u8; 32];
        let mut read_sys = |what: &[u8], small: &mut [u8; 32]| -> Option<usize> {
            let p = join_c(&mut sys, &[b"/sys/class/block/", name, what])?;
            k.read_small(p, small).ok()
        };
        match self.spec.root {
            Root::DevNum { major, minor } => {
                let Some(n) = read_sys(b"/dev", &mut small) else { return };
                let text = small.get(..n).unwrap_or(b"");
                let text = text.strip_suffix(b"\n").unwrap_or(text);
                let mut num = [0u8; 24];
                let want = fmt_devnum(&mut num, major, minor);
                if text == want {
                    self.found = Some((node, None));
                }
            }
            Root::PartUuid { .. } | Root::PartLabel(_) => {
                // Whole disks only: their tables name the partitions.
                if read_sys(b"/partition", &mut small).is_some() {
                    return;
                }
                let number = |n: Option<usize>, small: &[u8; 32]| {
                    n.and_then(|n| crate::cmdline::decimal(small.get(..n)?.strip_suffix(b"\n")?))
                };
                let Some(sectors) = number(read_sys(b"/size", &mut small), &small) else { return };
                let lbs = number(read_sys(b"/queue/logical_block_size", &mut small), &small).unwrap_or(512);
                let disk = Disk { sector_size: lbs, size: sectors as u64 * 512 };
                match blockid::find_partition(&mut Dev { k, path: node.path() }, disk, &self.spec.root) {
                    Ok(found) => {
                        self.seen_before(name);
                        if let Some(n) = found {
                            let mut part = [0u8; 40];
                            if let Some(len) = partition_node(name, n, &mut part) {
                                self.partition = Node::new(&[b"/dev/", part.get(..len).unwrap_or(b"")]);
                                self.look(k);
                            }
                        }
                    }
                    // Not readable yet (the node may not be there): later.
                    Err(blockid::IdError::Read { .. }) => self.unreadable = true,
                    Err(e) => {
                        self.seen_before(name);
                        emit!(Out::stderr(), "parmod: ", Show(name), ": ", e.describe(), "\n");
                    }
                }
            }
            Root::Uuid(_) | Root::Label(_) => match probe_fs(&mut Dev { k, path: node.path() }) {
                Ok(fs) => {
                    self.seen_before(name);
                    if let Some(fs) = fs.filter(|fs| self.spec.root.names_fs(fs)) {
                        self.found = Some((node, Some(fs.kind)));
                    }
                }
                Err(blockid::IdError::Read { .. }) => self.unreadable = true,
                Err(e) => {
                    self.seen_before(name);
                    emit!(Out::stderr(), "parmod: ", Show(name), ": ", e.describe(), "\n");
                }
            },
            Root::Path(_) => {}
        }
    }
}

/// `MAJ:MIN` as sysfs writes it.
fn fmt_devnum(buf: &mut [u8; 24], major: u32, minor: u32) -> &[u8] {
    let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
    let (ma, mi) = (decimal(&mut a, major as u64), decimal(&mut b, minor as u64));
    let len = ma.len() + 1 + mi.len();
    buf[..ma.len()].copy_from_slice(ma);
    buf[ma.len()] = b':';
    buf[ma.len() + 1..len].copy_from_slice(mi);
    &buf[..len]
}

impl Hook for RootWait<'_> {
    fn step(&mut self, s: &Sched) -> Option<u64> {
        let k = s.kernel;
        if self.found.is_none() {
            self.look(k);
        } else {
            self.unreadable = false;
        }
        if let Some((node, fs)) = self.found {
            if fs.is_none() && self.module.is_none() {
                // Its file system, for the module and the mount: wait until
                // it can be read, unless rootfstype= names it.
                match probe_fs(&mut Dev { k, path: node.path() }) {
                    Ok(probed) => self.found = Some((node, probed.map(|f| f.kind))),
                    Err(blockid::IdError::Read { .. }) if self.spec.fstype.is_none() => self.unreadable = true,
                    Err(_) => {}
                }
            }
            if self.module.is_none() && !self.unreadable {
                let name = match (self.spec.fstypes().next(), self.found.and_then(|f| f.1)) {
                    (Some(t), _) => Some(t),
                    (None, Some(kind)) => Some(kind.module()),
                    (None, None) => None,
                };
                self.module = Some(name.and_then(|n| s.plan.find_module(n)).map_or(u32::MAX, |m| m.index()));
                if let Some(m) = self.module.filter(|&m| m != u32::MAX) {
                    s.want(m);
                }
            }
        }
        let now = k.now();
        let retry = if self.unreadable && self.module.is_none() {
            self.backoff_ms = (self.backoff_ms * 2).clamp(5, 100);
            Some(now + self.backoff_ms as u64 * MS)
        } else {
            self.backoff_ms = 0;
            None
        };
        [self.limit, Some(self.not_before), retry].into_iter().flatten().filter(|&t| t > now).min()
    }

    fn done(&mut self, _s: &Sched, now: u64) -> bool {
        if self.limit.is_some_and(|l| now >= l) {
            return true;
        }
        // Once wanted, the file system's module is the run's: the run ends
        // only after it (waiting here for it instead would not wake: a
        // worker wakes the main task for a finished load only when the run
        // is over or the module has device waits).
        self.found.is_some() && now >= self.not_before && self.module.is_some()
    }
}

/// Say what was awaited and which block devices there are.
pub fn not_found(k: &dyn Kernel, cmdline: &[u8]) {
    let mut o = Out::stderr();
    let root = crate::cmdline::Cmdline(cmdline).get(b"root").unwrap_or(b"");
    emit!(o, "parmod: the root device root=", Show(root), " did not appear; block devices:");
    let mut any = false;
    k.list_block_devices(&mut |name| {
        any = true;
        emit!(o, " ", Show(name));
    });
    emit!(o, if any { "\n" } else { " none\n" });
}

/// Mount the root found on [`NEW_ROOT`] and make it `/`; then exec its init.
/// Returns only on failure, having said what failed.
pub fn switch_root(k: &dyn Kernel, spec: &RootSpec<'_>, dev: &Node, fs: Option<FsType>, env: &[&CStr]) -> Errno {
    let _ = k.make_dir(NEW_ROOT, 0o755);
    let mut data = [0u8; 512];
    let base = if spec.read_only { 1 } else { 0 }; // MS_RDONLY
    let Some((flags, len)) = blockid::mount_options(spec.flags.unwrap_or(b""), base, &mut data[..511]) else {
        emit!(Out::stderr(), "parmod: rootflags= is too long\n");
        return Errno::TOOBIG;
    };
    let data = CStr::from_bytes_until_nul(&data[..=len]).ok().filter(|d| !d.is_empty());
    let mut last = Errno::NODEV;
    let mut mounted = false;
    let mut try_type = |t: &[u8]| {
        let mut buf = [0u8; 32];
        let Some(t) = join_c(&mut buf, &[t]) else { return false };
        match k.mount(dev.path(), NEW_ROOT, t, flags, data) {
            Ok(()) => true,
            Err(e) => {
                last = e;
                false
            }
        }
    };
    if spec.fstype.is_some() {
        for t in spec.fstypes() {
            if try_type(t) {
                mounted = true;
                break;
            }
        }
    } else if let Some(kind) = fs {
        mounted = try_type(kind.name());
    }
    if !mounted {
        emit!(Out::stderr(), "parmod: cannot mount ", Show(dev.path().to_bytes()), " on /root (rootfstype=", Show(spec.fstype.unwrap_or(fs.map_or(b"unknown", |f| f.name()))), "): ", Sys::from(last), "\n");
        return last;
    }
    let init = spec.init.unwrap_or(b"/sbin/init");
    if !k.exists_in_root(NEW_ROOT, init) {
        emit!(Out::stderr(), "parmod: ", Show(init), " is not on the root file system ", Show(dev.path().to_bytes()), "; set init=\n");
        return Errno::NOENT;
    }
    for (from, to) in [(c"/dev", c"/root/dev"), (c"/proc", c"/root/proc"), (c"/sys", c"/root/sys"), (c"/run", c"/root/run")] {
        if let Err(e) = k.move_mount(from, to) {
            emit!(Out::stderr(), "parmod: cannot move ", Show(from.to_bytes()), " to ", Show(to.to_bytes()), ": ", Sys::from(e), "\n");
        }
    }
    k.remove_initramfs(NEW_ROOT);
    if let Err(e) = k.enter_root(NEW_ROOT) {
        emit!(Out::stderr(), "parmod: cannot make /root the root: ", Sys::from(e), "\n");
        return e;
    }
    let mut path = [0u8; 256];
    let Some(init) = join_c(&mut path, &[init]) else { return Errno::NAMETOOLONG };
    let e = k.exec(init, &[init], env);
    emit!(Out::stderr(), "parmod: cannot run ", Show(init.to_bytes()), " on the new root: ", Sys::from(e), "\n");
    e
}
