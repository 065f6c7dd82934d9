//! The root file system as the kernel command line names it, with the
//! readings of the kernel (`block/early-lookup.c`, `init/do_mounts.c`) and
//! initramfs-tools (`init`, `scripts/local`, `scripts/functions`).
//!
//! * Each setting is the last one given (both read the line in order).
//! * `root=`: `PARTUUID=U[/PARTNROFF=N]` and `PARTLABEL=L` (the kernel's),
//!   `UUID=U` and `LABEL=L` (file systems: initramfs-tools and dracut,
//!   through blkid), `/dev/disk/by-{uuid,label,partuuid,partlabel}/X` (udev's
//!   links, which do not exist without udev: read as the forms above, with
//!   udev's `\xNN` escapes decoded), `/dev/block/MAJ:MIN` (also udev's),
//!   `MAJ:MIN` and the kernel's hexadecimal device number (`801` = 8:1),
//!   and any other `/dev/NAME`, a node devtmpfs creates. UUIDs match without
//!   regard to case (the kernel compares PARTUUIDs with `strncasecmp`, dracut
//!   lowercases). Unlike the kernel, a PARTUUID must be given whole: the
//!   kernel takes a prefix and picks whichever partition it lists first.
//!   PARTLABEL compares with the GPT name as UTF-8 (blkid's, so udev's
//!   by-partlabel); the kernel's own copy keeps 7-bit ASCII only, so for
//!   the kernel `PARTLABEL=café` names nothing, for parmod the partition.
//! * `rootfstype=` a comma list tried in order (`auto`: probe), `rootflags=`
//!   mount options, `ro` (the default of both) / `rw`, `init=`.
//! * `rootwait` waits for ever, `rootwait=N` N seconds (Linux 6.5+);
//!   `rootdelay=N` (seconds, fractions allowed as initramfs-tools does) is a
//!   pause before the search in both readings, and initramfs-tools waits for
//!   the device max(30 s, rootdelay). See [`RootSpec::wait_ms`].
//!
//! A malformed value is an error naming the argument (the kernel and
//! initramfs-tools ignore a malformed `rootdelay=`; a boot that then waits
//! 30 s instead of the 90 asked for is harder to understand than a message).

use crate::cmdline::{decimal, Cmdline};

/// A UUID or label from the command line, compared with what a device has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key<'a> {
    /// As written on the command line.
    pub raw: &'a [u8],
    /// From a `/dev/disk/by-*` path: udev writes bytes outside
    /// `[0-9A-Za-z#+-.:=@_]` (and non-UTF-8) as `\xNN`.
    pub escaped: bool,
}

impl Key<'_> {
    /// Whether `actual` is this key (ASCII case folded when `fold`).
    pub fn matches(&self, actual: &[u8], fold: bool) -> bool {
        let mut raw = self.raw;
        let mut actual = actual.iter();
        loop {
            let want = match raw {
                [] => return actual.next().is_none(),
                [b'\\', b'x', h, l, rest @ ..] if self.escaped && h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    raw = rest;
                    (hex_digit(*h) << 4) | hex_digit(*l)
                }
                [c, rest @ ..] => {
                    raw = rest;
                    *c
                }
            };
            match actual.next() {
                Some(&got) if got == want || (fold && got.eq_ignore_ascii_case(&want)) => {}
                _ => return false,
            }
        }
    }
}

fn hex_digit(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// What `root=` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root<'a> {
    /// A device node path (`/dev/vda1`): wait for it to exist.
    Path(&'a [u8]),
    /// The block device with this number (`/sys/dev/block/MAJ:MIN`).
    DevNum { major: u32, minor: u32 },
    /// A partition by its table's unique id, then `offset` partitions on
    /// (`/PARTNROFF=`). Hex digits and dashes: 11 (MBR) or 36 (GPT).
    PartUuid { uuid: &'a [u8], offset: i32 },
    /// A GPT partition by its name.
    PartLabel(Key<'a>),
    /// A file system by its UUID.
    Uuid(Key<'a>),
    /// A file system by its label.
    Label(Key<'a>),
}

impl Root<'_> {
    /// Whether partition `p` is the one named (PARTUUID before its offset,
    /// PARTLABEL); see [`super::find_partition`].
    pub fn names_partition(&self, p: &super::Partition) -> bool {
        match self {
            Root::PartUuid { uuid, .. } => Key { raw: uuid, escaped: false }.matches(p.uuid.as_bytes(), true),
            Root::PartLabel(k) => !p.name.is_empty() && k.matches(p.name.as_bytes(), false),
            _ => false,
        }
    }

    /// Whether the file system `fs` is the one named (UUID, LABEL).
    pub fn names_fs(&self, fs: &super::FsInfo) -> bool {
        match self {
            Root::Uuid(k) => !fs.uuid.is_empty() && k.matches(fs.uuid.as_bytes(), true),
            Root::Label(k) => !fs.label.is_empty() && k.matches(fs.label.as_bytes(), false),
            _ => false,
        }
    }
}

/// `rootwait` as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootWait {
    /// Not given.
    Default,
    /// `rootwait`: wait for ever.
    Forever,
    /// `rootwait=N`.
    Seconds(u32),
}

/// A command-line argument parmod cannot use, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootError<'a> {
    /// The argument's name (`root`, `rootdelay`, ...).
    pub param: &'a [u8],
    /// Its value.
    pub value: &'a [u8],
    /// What is wrong, and what to write instead.
    pub why: &'static str,
}

/// The root file system as the command line describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootSpec<'a> {
    pub root: Root<'a>,
    /// `rootfstype=` (None when absent, empty or `auto`).
    pub fstype: Option<&'a [u8]>,
    /// `rootflags=` (see [`mount_options`]).
    pub flags: Option<&'a [u8]>,
    /// `ro` (the default) or `rw`.
    pub read_only: bool,
    pub wait: RootWait,
    /// `rootdelay=` in milliseconds (0 without).
    pub delay_ms: u32,
    /// `init=` (None when absent or empty: `/sbin/init`).
    pub init: Option<&'a [u8]>,
}

impl<'a> RootSpec<'a> {
    pub fn parse(line: Cmdline<'a>) -> Result<RootSpec<'a>, RootError<'a>> {
        let mut spec = RootSpec {
            root: Root::Path(b""),
            fstype: None,
            flags: None,
            read_only: true,
            wait: RootWait::Default,
            delay_ms: 0,
            init: None,
        };
        let mut root = None;
        const PARAMS: [&[u8]; 7] = [b"root", b"rootfstype", b"rootflags", b"rootwait", b"rootdelay", b"init", b"ro"];
        for a in line.args() {
            let Some(i) = PARAMS.iter().position(|p| *p == a.param) else {
                if a.param == b"rw" && a.value.is_none() {
                    spec.read_only = false;
                }
                continue;
            };
            let Some(v) = a.value else {
                match i {
                    3 => spec.wait = RootWait::Forever,
                    6 => spec.read_only = true,
                    _ => {}
                }
                continue;
            };
            let bad = |why| RootError { param: a.param, value: v, why };
            match i {
                0 => root = Some(v),
                1 => spec.fstype = Some(v).filter(|v| !v.is_empty() && *v != b"auto"),
                2 => spec.flags = Some(v),
                3 => spec.wait = RootWait::Seconds(decimal(v).ok_or(bad("expected whole seconds (rootwait=30)"))?),
                4 => spec.delay_ms = millis(v).ok_or(bad("expected seconds (rootdelay=5 or rootdelay=0.5)"))?,
                5 => spec.init = Some(v).filter(|v| !v.is_empty()),
                _ => {}
            }
        }
        let v = root.ok_or(RootError {
            param: b"root",
            value: b"",
            why: "no root= on the kernel command line: add root=UUID=..., PARTUUID=..., LABEL=..., PARTLABEL=... or /dev/NAME",
        })?;
        spec.root = parse_root(v).map_err(|why| RootError { param: b"root", value: v, why })?;
        Ok(spec)
    }

    /// The `rootfstype=` types to try, in order (empty: use the probed one).
    pub fn fstypes(&self) -> impl Iterator<Item = &'a [u8]> {
        self.fstype.unwrap_or(b"").split(|&c| c == b',').filter(|t| !t.is_empty())
    }

    /// How long to wait for the root device (None: for ever): `rootwait` as
    /// the kernel, else initramfs-tools' max(30 s, rootdelay).
    pub fn wait_ms(&self) -> Option<u32> {
        match self.wait {
            RootWait::Forever => None,
            RootWait::Seconds(s) => Some(s.saturating_mul(1000)),
            RootWait::Default => Some(self.delay_ms.max(30_000)),
        }
    }
}

/// `N` or `N.fff` seconds as milliseconds (finer digits are dropped).
fn millis(v: &[u8]) -> Option<u32> {
    let (whole, frac) = match v.iter().position(|&c| c == b'.') {
        Some(dot) => (v.get(..dot)?, v.get(dot + 1..)?),
        None => (v, &b""[..]),
    };
    if !frac.iter().all(u8::is_ascii_digit) || (whole.is_empty() && frac.is_empty()) {
        return None;
    }
    let secs = if whole.is_empty() { 0 } else { decimal(whole)? };
    let mut ms = 0;
    for i in 0..3 {
        ms = ms * 10 + frac.get(i).map_or(0, |c| (c - b'0') as u32);
    }
    Some(secs.saturating_mul(1000).saturating_add(ms))
}

fn parse_root(v: &[u8]) -> Result<Root<'_>, &'static str> {
    const BY: &[(&[u8], u8)] = &[
        (b"/dev/disk/by-uuid/", b'U'),
        (b"/dev/disk/by-label/", b'L'),
        (b"/dev/disk/by-partuuid/", b'P'),
        (b"/dev/disk/by-partlabel/", b'N'),
        (b"UUID=", b'u'),
        (b"LABEL=", b'l'),
        (b"PARTUUID=", b'p'),
        (b"PARTLABEL=", b'n'),
    ];
    for &(prefix, kind) in BY {
        let Some(rest) = v.strip_prefix(prefix) else { continue };
        if rest.is_empty() {
            return Err("names nothing after its prefix");
        }
        let key = Key { raw: rest, escaped: kind.is_ascii_uppercase() };
        return match kind.to_ascii_lowercase() {
            b'u' => Ok(Root::Uuid(key)),
            b'l' => Ok(Root::Label(key)),
            b'n' => Ok(Root::PartLabel(key)),
            _ => part_uuid(rest),
        };
    }
    if v.starts_with(b"/dev/disk/") {
        return Err(
            "a udev link this initramfs cannot resolve (no udev): use root=UUID=, LABEL=, PARTUUID= or PARTLABEL=",
        );
    }
    if v == b"/dev/nfs" {
        return Err("an NFS root is not supported: use a local block device");
    }
    if let Some(num) = v.strip_prefix(b"/dev/block/") {
        return dev_num(num, false).ok_or("expected /dev/block/MAJ:MIN");
    }
    if let Some(name) = v.strip_prefix(b"/dev/") {
        return if name.is_empty() || name.contains(&0) { Err("names no device") } else { Ok(Root::Path(v)) };
    }
    dev_num(v, true)
        .ok_or("expected UUID=, LABEL=, PARTUUID=, PARTLABEL=, /dev/NAME, MAJ:MIN or a hexadecimal device number")
}

/// `U` or `U/PARTNROFF=N`, as the kernel, with the UUID given whole.
fn part_uuid(v: &[u8]) -> Result<Root<'_>, &'static str> {
    let (uuid, offset) = match v.iter().position(|&c| c == b'/') {
        None => (v, 0),
        Some(slash) => {
            let n = v.get(slash + 1..).and_then(|s| s.strip_prefix(b"PARTNROFF="));
            let offset = n.and_then(signed).ok_or("expected PARTUUID=<uuid>/PARTNROFF=<number>")?;
            (v.get(..slash).unwrap_or(b""), offset)
        }
    };
    let hex = |s: &[u8]| s.iter().all(|c| c.is_ascii_hexdigit());
    let mbr = uuid.len() == 11
        && uuid.get(8) == Some(&b'-')
        && hex(uuid.get(..8).unwrap_or(b"-"))
        && hex(uuid.get(9..).unwrap_or(b"-"));
    let gpt = uuid.len() == 36
        && uuid
            .iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() });
    if !(mbr || gpt) {
        return Err("expected a whole PARTUUID: SSSSSSSS-PP (MBR) or a GUID of 36 characters (GPT)");
    }
    Ok(Root::PartUuid { uuid, offset })
}

fn signed(v: &[u8]) -> Option<i32> {
    match v.strip_prefix(b"-") {
        Some(n) => decimal(n).map(|n| -(n as i32)),
        None => decimal(v.strip_prefix(b"+").unwrap_or(v)).map(|n| n as i32),
    }
}

/// `MAJ:MIN` (decimal), or (`hex`) the kernel's hexadecimal
/// `new_decode_dev()` form.
fn dev_num(v: &[u8], hex: bool) -> Option<Root<'_>> {
    let (major, minor) = match v.iter().position(|&c| c == b':') {
        Some(colon) => (decimal(v.get(..colon)?)?, decimal(v.get(colon + 1..)?)?),
        None => {
            if !hex || v.is_empty() || v.len() > 8 || !v.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let n = v.iter().fold(0u32, |n, &c| (n << 4) | hex_digit(c) as u32);
            ((n >> 8) & 0xfff, (n & 0xff) | ((n >> 12) & 0xfff00))
        }
    };
    // The kernel's dev_t: 12 bits of major, 20 of minor.
    (major < 1 << 12 && minor < 1 << 20).then_some(Root::DevNum { major, minor })
}

/// Split mount options as mount(8) does with initramfs-tools' `-o
/// ${rootflags}`: the VFS flags (`ro`, `nosuid`, `noatime`, ...) change
/// `flags` (MS_* bits, applied in order), mount(8)'s own (`defaults`,
/// `auto`, `nofail`, `x-*`, ...) are dropped, and the rest is the data
/// string for the file system, written comma-separated into `data`.
/// Returns the flags and the data's length, or None when it does not fit.
pub fn mount_options(opts: &[u8], mut flags: u64, data: &mut [u8]) -> Option<(u64, usize)> {
    const RDONLY: u64 = 1;
    const NOSUID: u64 = 2;
    const NODEV: u64 = 4;
    const NOEXEC: u64 = 8;
    const SYNC: u64 = 16;
    const MANDLOCK: u64 = 64;
    const DIRSYNC: u64 = 128;
    const NOSYMFOLLOW: u64 = 256;
    const NOATIME: u64 = 1024;
    const NODIRATIME: u64 = 2048;
    const RELATIME: u64 = 1 << 21;
    const STRICTATIME: u64 = 1 << 24;
    const LAZYTIME: u64 = 1 << 25;
    const ATIME: u64 = NOATIME | RELATIME | STRICTATIME;
    // (option, bits it clears, bits it sets)
    const FLAGS: &[(&[u8], u64, u64)] = &[
        (b"ro", 0, RDONLY),
        (b"rw", RDONLY, 0),
        (b"nosuid", 0, NOSUID),
        (b"suid", NOSUID, 0),
        (b"nodev", 0, NODEV),
        (b"dev", NODEV, 0),
        (b"noexec", 0, NOEXEC),
        (b"exec", NOEXEC, 0),
        (b"sync", 0, SYNC),
        (b"async", SYNC, 0),
        (b"dirsync", 0, DIRSYNC),
        (b"mand", 0, MANDLOCK),
        (b"nomand", MANDLOCK, 0),
        (b"nosymfollow", 0, NOSYMFOLLOW),
        (b"symfollow", NOSYMFOLLOW, 0),
        (b"noatime", ATIME, NOATIME),
        (b"atime", NOATIME, 0),
        (b"relatime", ATIME, RELATIME),
        (b"norelatime", RELATIME, 0),
        (b"strictatime", ATIME, STRICTATIME),
        (b"nostrictatime", STRICTATIME, 0),
        (b"nodiratime", 0, NODIRATIME),
        (b"diratime", NODIRATIME, 0),
        (b"lazytime", 0, LAZYTIME),
        (b"nolazytime", LAZYTIME, 0),
    ];
    const MOUNT8: &[&[u8]] =
        &[b"defaults", b"auto", b"noauto", b"nofail", b"user", b"nouser", b"users", b"owner", b"group", b"_netdev"];
    let mut len = 0;
    for o in opts.split(|&c| c == b',').filter(|o| !o.is_empty()) {
        if let Some(&(_, clear, set)) = FLAGS.iter().find(|f| f.0 == o) {
            flags = (flags & !clear) | set;
        } else if !MOUNT8.contains(&o) && !o.starts_with(b"x-") && !o.starts_with(b"comment=") {
            let sep = (len > 0) as usize;
            let dst = data.get_mut(len..len + sep + o.len())?;
            let (comma, text) = dst.split_at_mut(sep);
            comma.fill(b',');
            text.copy_from_slice(o);
            len += sep + o.len();
        }
    }
    Some((flags, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(line: &str) -> Result<Root<'_>, &'static str> {
        RootSpec::parse(Cmdline(line.as_bytes())).map(|s| s.root).map_err(|e| e.why)
    }

    fn key(raw: &str, escaped: bool) -> Key<'_> {
        Key { raw: raw.as_bytes(), escaped }
    }

    #[test]
    fn root_forms() {
        let gpt = "0fc63daf-8483-4772-8e79-3d69d8477de4";
        assert_eq!(root("root=/dev/vda1"), Ok(Root::Path(b"/dev/vda1")));
        assert_eq!(root("root=/dev/mmcblk0p2 ro"), Ok(Root::Path(b"/dev/mmcblk0p2")));
        assert_eq!(root("root=UUID=ABCD-1234"), Ok(Root::Uuid(key("ABCD-1234", false))));
        assert_eq!(root("root=LABEL=root"), Ok(Root::Label(key("root", false))));
        assert_eq!(root("root=PARTLABEL=Linux\\x20root"), Ok(Root::PartLabel(key("Linux\\x20root", false))));
        assert_eq!(root(&std::format!("root=PARTUUID={gpt}")), Ok(Root::PartUuid { uuid: gpt.as_bytes(), offset: 0 }));
        assert_eq!(root("root=PARTUUID=1234abcd-01"), Ok(Root::PartUuid { uuid: b"1234abcd-01", offset: 0 }));
        assert_eq!(
            root("root=PARTUUID=1234ABCD-02/PARTNROFF=-1"),
            Ok(Root::PartUuid { uuid: b"1234ABCD-02", offset: -1 })
        );
        assert_eq!(
            root("root=PARTUUID=1234abcd-01/PARTNROFF=3"),
            Ok(Root::PartUuid { uuid: b"1234abcd-01", offset: 3 })
        );
        // udev's links, which do not exist without udev.
        assert_eq!(root("root=/dev/disk/by-uuid/abc"), Ok(Root::Uuid(key("abc", true))));
        assert_eq!(root("root=/dev/disk/by-label/my\\x20root"), Ok(Root::Label(key("my\\x20root", true))));
        assert_eq!(root("root=/dev/disk/by-partlabel/esp"), Ok(Root::PartLabel(key("esp", true))));
        assert_eq!(
            root("root=/dev/disk/by-partuuid/1234abcd-05"),
            Ok(Root::PartUuid { uuid: b"1234abcd-05", offset: 0 })
        );
        assert_eq!(root("root=/dev/block/8:1"), Ok(Root::DevNum { major: 8, minor: 1 }));
        // Device numbers: MAJ:MIN and the kernel's hexadecimal form.
        assert_eq!(root("root=254:3"), Ok(Root::DevNum { major: 254, minor: 3 }));
        assert_eq!(root("root=801"), Ok(Root::DevNum { major: 8, minor: 1 }));
        assert_eq!(root("root=0fe01"), Ok(Root::DevNum { major: 254, minor: 1 }));
        assert_eq!(root("root=103100"), Ok(Root::DevNum { major: 0x31, minor: 0x100 }));
        // Quoted as the kernel unquotes it.
        assert_eq!(root("\"root=LABEL=my root\""), Ok(Root::Label(key("my root", false))));
        // The last root= wins, as for the kernel and initramfs-tools.
        assert_eq!(root("root=/dev/sda1 quiet root=LABEL=b"), Ok(Root::Label(key("b", false))));
        // `root` without a value is no root= (the kernel passes it on to init).
        assert_eq!(root("root=/dev/vda root"), Ok(Root::Path(b"/dev/vda")));
    }

    #[test]
    fn bad_root_values_are_refused_with_a_reason() {
        for line in [
            "quiet",
            "root=",
            "root=UUID=",
            "root=PARTUUID=abcd",
            "root=PARTUUID=1234abcd-01/PARTNROFF=",
            "root=PARTUUID=1234abcd-01/PARTNROFF=1x",
            "root=PARTUUID=1234abcd-01/OFFSET=1",
            "root=PARTUUID=0fc63daf-8483-4772-8e79-3d69d8477dez",
            "root=/dev/disk/by-id/virtio-abc-part1",
            "root=/dev/disk/by-path/pci-0000:00:04.0",
            "root=/dev/nfs",
            "root=/dev/",
            "root=/dev/block/8",
            "root=sda1",
            "root=8:1:2",
            "root=4096:0",
            "root=1:1048576",
        ] {
            let e = RootSpec::parse(Cmdline(line.as_bytes())).expect_err(line);
            assert_eq!(e.param, b"root", "{line}");
            assert!(!e.why.is_empty());
        }
        let e = RootSpec::parse(Cmdline(b"root=sda1")).unwrap_err();
        assert_eq!(e.value, b"sda1");
    }

    #[test]
    fn settings_and_their_defaults() {
        let s = RootSpec::parse(Cmdline(b"root=/dev/vda")).unwrap();
        assert_eq!(
            (s.fstype, s.flags, s.read_only, s.wait, s.delay_ms, s.init),
            (None, None, true, RootWait::Default, 0, None)
        );
        assert_eq!(s.wait_ms(), Some(30_000));
        assert_eq!(s.fstypes().count(), 0);

        let s = RootSpec::parse(Cmdline(
            b"rw root=/dev/vda rootfstype=xfs,,ext4 rootflags=subvol=@,noatime init=/bin/sh rootdelay=2.5 ro rw",
        ))
        .unwrap();
        assert!(!s.read_only);
        assert_eq!(s.fstypes().collect::<std::vec::Vec<_>>(), [&b"xfs"[..], b"ext4"]);
        assert_eq!(s.flags, Some(&b"subvol=@,noatime"[..]));
        assert_eq!(s.init, Some(&b"/bin/sh"[..]));
        assert_eq!(s.delay_ms, 2500);
        assert_eq!(s.wait_ms(), Some(30_000));

        let s = RootSpec::parse(Cmdline(b"root=/dev/vda rootdelay=45 rootfstype=auto init=")).unwrap();
        assert_eq!((s.delay_ms, s.wait_ms(), s.fstype, s.init), (45_000, Some(45_000), None, None));
        assert_eq!(RootSpec::parse(Cmdline(b"root=/dev/vda rootdelay=.5")).unwrap().delay_ms, 500);
        assert_eq!(RootSpec::parse(Cmdline(b"root=/dev/vda rootdelay=1.2345")).unwrap().delay_ms, 1234);
        assert_eq!(RootSpec::parse(Cmdline(b"root=/dev/vda rootdelay=0")).unwrap().delay_ms, 0);

        let s = RootSpec::parse(Cmdline(b"root=/dev/vda rootwait=5 rootwait")).unwrap();
        assert_eq!((s.wait, s.wait_ms()), (RootWait::Forever, None));
        let s = RootSpec::parse(Cmdline(b"root=/dev/vda rootwait rootwait=7 rootdelay=60")).unwrap();
        assert_eq!((s.wait, s.wait_ms()), (RootWait::Seconds(7), Some(7000)));

        for (line, param) in [
            (&b"root=/dev/vda rootdelay=abc"[..], &b"rootdelay"[..]),
            (b"root=/dev/vda rootdelay=", b"rootdelay"),
            (b"root=/dev/vda rootdelay=.", b"rootdelay"),
            (b"root=/dev/vda rootdelay=1.x", b"rootdelay"),
            (b"root=/dev/vda rootwait=-1", b"rootwait"),
            (b"root=/dev/vda rootwait=", b"rootwait"),
        ] {
            assert_eq!(RootSpec::parse(Cmdline(line)).unwrap_err().param, param);
        }
    }

    #[test]
    fn keys_fold_case_and_decode_udev_escapes() {
        assert!(key("ABCD-12ef", false).matches(b"abcd-12EF", true));
        assert!(!key("ABCD-12ef", false).matches(b"abcd-12EF", false));
        assert!(!key("abcd", false).matches(b"abcd-1", true));
        assert!(!key("abcd-1", false).matches(b"abcd", true));
        assert!(key("my\\x20root\\x2fa", true).matches(b"my root/a", false));
        // Not from a udev path: a backslash is a backslash.
        assert!(key("a\\x20b", false).matches(b"a\\x20b", false));
        assert!(!key("a\\x20b", false).matches(b"a b", false));
        // A malformed escape is literal text.
        assert!(key("a\\x2", true).matches(b"a\\x2", false));
    }

    #[test]
    fn mount_options_split_flags_from_data() {
        let mut data = [0u8; 64];
        let (flags, n) =
            mount_options(b"noatime,subvol=@,defaults,,ro,x-systemd.device-timeout=5,compress=zstd", 0, &mut data)
                .unwrap();
        assert_eq!(flags, 1024 | 1);
        assert_eq!(&data[..n], b"subvol=@,compress=zstd");
        // rw clears the default ro; relatime replaces noatime.
        let (flags, n) = mount_options(b"rw,noatime,relatime", 1, &mut data).unwrap();
        assert_eq!((flags, n), (1 << 21, 0));
        // Each flag and its opposite; mount(8)'s own options are dropped.
        let (flags, n) =
            mount_options(b"nosuid,nodev,noexec,sync,dirsync,mand,nosymfollow,nodiratime,lazytime", 0, &mut data)
                .unwrap();
        assert_eq!((flags, n), (2 | 4 | 8 | 16 | 128 | 64 | 256 | 2048 | 1 << 25, 0));
        let (flags, n) = mount_options(
            b"suid,dev,exec,async,nomand,symfollow,diratime,nolazytime,noauto,nofail,user,_netdev",
            flags,
            &mut data,
        )
        .unwrap();
        assert_eq!((flags, n), (128, 0));
        assert_eq!(mount_options(b"strictatime,atime", 1 << 10, &mut data), Some((1 << 24, 0)));
        assert_eq!(mount_options(b"relatime,norelatime,nostrictatime", 0, &mut data), Some((0, 0)));
        // Data that does not fit: refused, not cut.
        assert_eq!(mount_options(b"data=journal", 0, &mut data[..11]), None);
        assert_eq!(mount_options(b"data=journal", 0, &mut data[..12]).map(|r| r.1), Some(12));
    }
}
