//! Coldplug: load what the devices present need, and what the devices that
//! appear while it runs need, without udev.
//!
//! * The uevent socket (NETLINK_KOBJECT_UEVENT, the kernel's group 1) is
//!   opened with a large receive buffer *before* /sys is scanned, so no
//!   device can appear unseen in between; when the buffer overflowed
//!   anyway (ENOBUFS), /sys is scanned again.
//! * The scan reads every `/sys/devices/**/uevent` for its `MODALIAS=`
//!   line (some buses have no `modalias` file).
//! * Each modalias is resolved once ([`super::lookup::resolve`]: modprobe.d
//!   aliases, module names, the plan's sorted kernel aliases, blacklists),
//!   and every module it names joins the same scheduler run, with its
//!   dependencies ([`Sched::want`]). Devices that only appear once a bus
//!   driver binds (virtio, USB interfaces, SCSI disks, HDA codecs) arrive
//!   as `add` uevents and are handled alike.
//! * It is settled when nothing is loading or ready and no new device has
//!   appeared for the settle time (see [`DEFAULT_SETTLE_MS`]).

use core::sync::atomic::Ordering::Relaxed;

use rustix::io::Errno;

use super::clock::MS;
use super::lookup::{names_have_colons, resolve, resolve_modalias, Lookup};
use super::out::{emit, Out, Show, Sys};
use super::sched::Sched;
use super::supervisor::Hook;

/// Default settle time. A module's probe adds its devices before its load
/// returns, so their uevents come while parmod still sees the load in
/// flight; what comes later is bus enumeration that runs on its own (USB
/// hubs, SCSI scans, HDA codecs), which in QEMU arrived within tens of
/// milliseconds of the load that started it (docs/BENCHMARKS.md). USB-heavy
/// machines may want more (`--settle`, `parmod.settle=`).
pub const DEFAULT_SETTLE_MS: u32 = 200;

/// Room for modalias hashes (each modalias resolved once). Beyond what
/// [`Coldplug::remember`] fills a new modalias is not remembered, and
/// resolved again when it comes again, which costs time but loads nothing
/// twice.
const SEEN: usize = 2048;
const SEEN_MAX: u32 = SEEN as u32 / 4 * 3;

/// The longest uevent message read (the kernel's limit is 2048 bytes of
/// environment plus the header).
pub const UEVENT_MAX: usize = 8192;

/// One uevent as the kernel sends it: `ACTION@DEVPATH`, then `KEY=VALUE`
/// strings, all NUL-separated.
#[derive(Debug, PartialEq, Eq)]
pub struct Uevent<'a> {
    pub action: &'a [u8],
    pub devpath: &'a [u8],
    pub modalias: Option<&'a [u8]>,
}

/// Parse a kernel uevent message; None when it is not one (libudev's
/// messages, which start with "libudev", or garbage).
pub fn parse_uevent(msg: &[u8]) -> Option<Uevent<'_>> {
    let mut fields = msg.split(|&c| c == 0);
    let head = fields.next()?;
    let at = head.iter().position(|&c| c == b'@')?;
    let (action, devpath) = (head.get(..at)?, head.get(at + 1..)?);
    if action.is_empty() || devpath.first() != Some(&b'/') {
        return None;
    }
    let modalias = fields.filter_map(|f| f.strip_prefix(b"MODALIAS=")).find(|v| !v.is_empty());
    Some(Uevent { action, devpath, modalias })
}

/// FNV-1a: a modalias's key in the set of those resolved.
fn hash(s: &[u8]) -> u64 {
    s.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| (h ^ c as u64).wrapping_mul(0x100_0000_01b3)).max(1)
}

pub struct Coldplug {
    settle_ns: u64,
    /// When the last device (one with a modalias not seen before) appeared.
    last_device: u64,
    seen: [u64; SEEN],
    remembered: u32,
    /// Devices with a modalias seen, and how many of them named a module.
    pub devices: u32,
    pub matched: u32,
    /// Whether uevents arrive (the socket opened).
    hotplug: bool,
    /// [`names_have_colons`] of the plan.
    colon_names: bool,
}

impl Coldplug {
    /// Open the uevent socket, then scan /sys; want what the devices
    /// present need, and what the plan and the kernel command line name
    /// (`modules_load=`, `rd.modules_load=`).
    pub fn start(s: &Sched, settle_ms: u32) -> Coldplug {
        let k = s.kernel;
        let now = k.now();
        let colon_names = names_have_colons(&s.plan);
        let mut c =
            Coldplug { settle_ns: settle_ms as u64 * MS, last_device: now, seen: [0; SEEN], remembered: 0, devices: 0, matched: 0, hotplug: true, colon_names };
        if let Err(e) = k.open_uevents() {
            emit!(Out::stderr(), "parmod: cannot open the uevent socket: ", Sys::from(e), "; coldplug sees only the devices present now\n");
            c.hotplug = false;
        }
        for m in s.plan.modules().filter(|m| m.flags() & crate::plan::module_flags::REQUESTED != 0) {
            s.want(m.index());
        }
        let cl = s.cmdline.view();
        for name in cl.list(b"modules_load").chain(cl.list(b"rd.modules_load")) {
            if resolve(&s.plan, cl, name, &mut |m| {
                s.want(m);
            }) == Lookup::Unknown
            {
                emit!(Out::stderr(), "parmod: modules_load=", Show(name), ": no such module or alias in the plan\n");
            }
        }
        c.scan(s);
        c
    }

    fn scan(&mut self, s: &Sched) {
        s.kernel.scan_modaliases(&mut |ma| self.device(s, ma));
    }

    /// A device with modalias `ma`: want what it needs (once per modalias).
    fn device(&mut self, s: &Sched, ma: &[u8]) {
        let h = hash(ma);
        let Some(slot) = self.unseen(h) else { return };
        self.devices += 1;
        self.last_device = s.kernel.now();
        let mut any = false;
        resolve_modalias(&s.plan, s.cmdline.view(), ma, self.colon_names, &mut |m| {
            any = true;
            s.want(m);
        });
        self.matched += any as u32;
        self.remember(slot, h, any);
    }

    /// The free slot for hash `h`, or None when it was seen. The table is
    /// never filled beyond [`SEEN_MAX`], so a probe ends after a few steps
    /// however many devices a flood brings.
    fn unseen(&self, h: u64) -> Option<usize> {
        let mut slot = (h as usize) % SEEN;
        for _ in 0..SEEN {
            match self.seen.get(slot).copied() {
                Some(x) if x == h => return None,
                Some(0) | None => break,
                _ => slot = (slot + 1) % SEEN,
            }
        }
        Some(slot)
    }

    /// Remember `h` in the free `slot`, while there is room: half the table
    /// for modaliases no module has (a flood of those cannot crowd out the
    /// ones that load something), three quarters for those that matched.
    fn remember(&mut self, slot: usize, h: u64, matched: bool) {
        if self.remembered < if matched { SEEN_MAX } else { SEEN as u32 / 2 } {
            if let Some(x) = self.seen.get_mut(slot) {
                *x = h;
                self.remembered += 1;
            }
        }
    }
}

impl Hook for Coldplug {
    /// Handle the uevents that arrived; returns when to look again by
    /// itself (when it would be settled).
    fn step(&mut self, s: &Sched) -> Option<u64> {
        let mut buf = [0u8; UEVENT_MAX];
        while self.hotplug {
            match s.kernel.recv_uevent(&mut buf) {
                Ok(n) => {
                    if let Some(ev) = buf.get(..n).and_then(parse_uevent) {
                        if ev.action == b"add" {
                            if let Some(ma) = ev.modalias {
                                self.device(s, ma);
                            }
                        }
                    }
                }
                Err(Errno::NOBUFS) => {
                    // Uevents were lost: the devices are still in /sys.
                    emit!(Out::stderr(), "parmod: uevents were lost (ENOBUFS); scanning /sys again\n");
                    self.scan(s);
                }
                Err(_) => break,
            }
        }
        Some(self.quiet_since(s) + self.settle_ns)
    }

    /// Settled: nothing loading or ready, and no device or load end for
    /// the settle time.
    fn done(&mut self, s: &Sched, now: u64) -> bool {
        !s.busy() && now >= self.quiet_since(s) + self.settle_ns
    }
}

impl Coldplug {
    /// Since when nothing has happened: no new device, no load ended.
    fn quiet_since(&self, s: &Sched) -> u64 {
        self.last_device.max(s.st.last_end.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn uevents() {
        let m = b"add@/devices/pci0000:00/0000:00:03.0\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:03.0\0SUBSYSTEM=pci\0MODALIAS=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\0SEQNUM=1234\0";
        let ev = parse_uevent(m).expect("parses");
        assert_eq!(ev.action, b"add");
        assert_eq!(ev.devpath, b"/devices/pci0000:00/0000:00:03.0");
        assert_eq!(ev.modalias, Some(&b"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"[..]));
        let no_alias = parse_uevent(b"remove@/devices/virtual/net/lo\0ACTION=remove\0").expect("parses");
        assert_eq!((no_alias.action, no_alias.modalias), (&b"remove"[..], None));
        assert_eq!(parse_uevent(b"libudev\0\xfe\xed\xca\xfe"), None, "udev's own messages are not kernel uevents");
        assert_eq!(parse_uevent(b""), None);
        assert_eq!(parse_uevent(b"@/x\0"), None);
        assert_eq!(parse_uevent(b"add@relative\0"), None);
        assert_eq!(parse_uevent(b"add@/x\0MODALIAS=\0").map(|e| e.modalias), Some(None), "an empty modalias is none");
    }

    #[test]
    fn modaliases_are_remembered_while_there_is_room() {
        let mut c = Coldplug { settle_ns: 0, last_device: 0, seen: [0; SEEN], remembered: 0, devices: 0, matched: 0, hotplug: false, colon_names: false };
        let h = |i: u32| hash(format!("platform:pmf{i}").as_bytes());
        let see = |c: &mut Coldplug, i: u32, matched: bool| match c.unseen(h(i)) {
            Some(slot) => {
                c.remember(slot, h(i), matched);
                true
            }
            None => false,
        };
        // A flood of modaliases that match nothing fills half the table.
        for i in 0..10_000 {
            assert!(see(&mut c, i, false), "pmf{i} is new");
        }
        assert_eq!(c.remembered, SEEN as u32 / 2);
        assert!(!see(&mut c, 0, false) && !see(&mut c, SEEN as u32 / 2 - 1, false), "the first half were remembered");
        assert!(see(&mut c, SEEN as u32 / 2, false), "the next one was not");
        // Those that load something are remembered still, up to three quarters.
        for i in 20_000..30_000 {
            assert!(see(&mut c, i, true), "pmf{i} is new");
        }
        assert_eq!(c.remembered, SEEN_MAX);
        assert_eq!(c.seen.iter().filter(|&&x| x == 0).count(), SEEN - SEEN_MAX as usize, "a quarter stays free");
        assert!(!see(&mut c, 20_000, true) && see(&mut c, 29_999, true));
    }
}
