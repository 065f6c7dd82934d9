//! Finding the root device without udev or blkid: the kernel command line's
//! `root=` and friends ([`RootSpec`]), the partition tables (GPT and MBR,
//! [`read_partitions`]) and the superblocks of ext2/3/4, xfs, btrfs and vfat
//! ([`probe_fs`]). `no_std`, no heap, no I/O of its own: the caller reads the
//! device through [`ReadAt`] (`pread(2)` on the open block device), and every
//! buffer here is a fixed array on the stack (at most 4 KiB).
//!
//! # How /init uses it
//!
//! 1. `RootSpec::parse(cmdline)` once. [`Root`] says what to look for.
//! 2. For [`Root::Path`] wait for that node; for [`Root::DevNum`] for the block
//!    device with that number. Neither needs any reading.
//! 3. For [`Root::PartUuid`] / [`Root::PartLabel`]: for each whole disk as it
//!    appears (uevent `DEVTYPE=disk`), `find_partition(disk, geometry, root)`
//!    with the geometry from `/sys/class/block/NAME/queue/logical_block_size`
//!    and `/sys/class/block/NAME/size` (512-byte units); a hit is a partition
//!    number, and [`partition_node`] makes its name (`vda` 2 → `vda2`,
//!    `nvme0n1` 2 → `nvme0n1p2`): wait for that node.
//! 4. For [`Root::Uuid`] / [`Root::Label`]: `probe_fs` each block device (disk or
//!    partition) as it appears, and take the first whose [`FsInfo`] the root
//!    names ([`Root::names_fs`]).
//! 5. Mount with `rootfstype=` when given ([`RootSpec::fstypes`], tried in
//!    order), else with the probed [`FsType::name`] (load [`FsType::module`]
//!    first); `rootflags=` through [`mount_options`].
//!
//! The reads, in order: the partition tables read bytes 0..512, then (GPT)
//! one logical block at LBA 1 and the entry array twice (once for its CRC,
//! once entry by entry), or (MBR) 512 bytes at each extended boot record.
//! `probe_fs` reads 1024 bytes at 1024 (ext), 512 at 0 (xfs and vfat; xfs
//! v5 then its whole `sb_sectsize` for the CRC, vfat its root directory for
//! the label and the FAT32 FSInfo sector), 4096 at 65536 (btrfs).
//!
//! # Formats (checked against Linux `block/partitions/{efi,msdos}.c`,
//! `block/early-lookup.c` and util-linux `libblkid/src/{partitions,superblocks}`)
//!
//! * **GPT** (as the kernel's `efi_partition()`): a protective or hybrid MBR
//!   (`55 aa` at 510, an entry of type `0xee` starting at LBA 1); the header
//!   at LBA 1: `EFI PART`, 92 ≤ `header_size` ≤ logical block, CRC-32 (IEEE)
//!   of the header with its CRC field zeroed, `my_lba` = 1, usable LBAs
//!   within the disk and in order, entry size exactly 128, the entry array ≤
//!   4 MiB (the kernel's kmalloc limit), within the disk, with its CRC-32.
//!   Entry *i* is partition *i*+1 unless its type GUID is zero or it starts or
//!   ends past the last LBA. PARTUUID is the unique GUID (`%pUl`: the first
//!   three fields little-endian), PARTLABEL the UTF-16LE name as UTF-8 (as
//!   blkid: up to the first NUL, trailing blanks dropped). Only the primary
//!   header is read: the kernel reads the backup only with `gpt` on its
//!   command line, which is not followed here.
//! * **MBR** (as `msdos_partition()`): `55 aa` at 510, every boot indicator
//!   0 or 0x80 (else it is a FAT boot sector or nothing), no `0xee` entry;
//!   the disk signature is the LE u32 at 440, and PARTUUID `SSSSSSSS-PP` (hex
//!   signature, hex partition number), also for a zero signature as the
//!   kernel (blkid gives none then). Slots 1–4 are partitions 1–4; extended
//!   partitions (types 0x05, 0x0f, 0x85) chain EBRs whose data partitions are
//!   numbered from 5 on, with the kernel's rules (entries 3 and 4 of an EBR
//!   only when inside it, the first extended entry is the link, at most 100
//!   links without a data partition). The extended partition's own slot is
//!   visited too, with no PARTUUID (the kernel gives it none). BSD, Solaris,
//!   Minix and UnixWare tables nested in a slot, AIX, and other partition
//!   formats are not read. Partitions that start past the end of the disk
//!   are skipped as the kernel does; partition numbers stop at 255.
//! * **ext2/3/4** (as blkid): magic `53 ef` at 1024+0x38; with
//!   `metadata_csum` (ro_compat 0x400) the CRC-32C at 0x3fc (stored
//!   inverted) of bytes 0..0x3fc, else `s_log_block_size` < 256. A journal
//!   device (incompat 0x8) is not a file system. ext4 when a feature is
//!   beyond ext3's, else ext3 with a journal, ext2 with only ext2's
//!   features. UUID at 0x68, label 16 bytes at 0x78. (blkid calls a file
//!   system with the `test_fs` flag ext4dev; this calls it ext4.)
//! * **xfs** (as blkid `xfs_verify_sb()`): `XFSB` at 0, big-endian fields;
//!   agcount, sector, block and inode sizes and their logs consistent,
//!   realtime extent size 4 KiB–1 GiB, `imax_pct` ≤ 100, data blocks within
//!   what the allocation groups hold; a v5 superblock (version & 0xf = 5)
//!   needs the "more bits" and CRC feature bits and its CRC-32C over
//!   `sb_sectsize` bytes with the field at 224 zeroed (stored
//!   little-endian). UUID at 32, label 12 bytes at 108.
//! * **btrfs**: `_BHRfS_M` at 65536+0x40; `bytenr` (0x30) = 65536, as the
//!   kernel requires; checksum type 0 (CRC-32C at 0 over bytes 32..4096)
//!   verified; xxhash, sha256 and blake2 superblocks are accepted unverified
//!   (blkid verifies the first two: too much code for an initramfs);
//!   `sectorsize` ≠ 0. fsid (UUID) at 32, label 256 bytes at 0x12b. A
//!   file system spanning devices needs `btrfs device scan`, not done here.
//! * **vfat** (as blkid `probe_vfat()`): a FAT magic string at 0x36 or 0x52,
//!   or else `55 aa` at 510 and no JFS/HPFS name; then the BPB checks (FATs,
//!   reserved sectors, media byte, power-of-two cluster and 512–4096-byte
//!   sectors, cluster count within FAT12/16/32 limits). UUID is the serial
//!   (`%02X%02X-%02X%02X` of bytes 3..0, at 0x27, or 0x43 for FAT32); the
//!   label is the volume-label entry of the root directory (FAT32: its
//!   cluster chain, up to 99 clusters), not the boot sector's, as blkid; a
//!   FAT32 FSInfo sector must carry its signatures or zeros.
//!
//! Each checksum is switched on by a field outside it (ext4's
//! `metadata_csum` bit, the xfs version nibble, the btrfs checksum type):
//! changed there, a superblock reads as its unchecked variant, for blkid
//! too.
//!
//! Labels are as blkid reports them: up to the first NUL, trailing blanks
//! dropped. UUIDs are text as blkid prints them (lowercase, vfat uppercase);
//! [`Root`] compares UUIDs without regard to case. Two file-system
//! signatures on one device are refused ([`IdError::Ambivalent`]), as blkid
//! refuses them.

// Untrusted bytes, in PID 1: no indexing that can panic, no unwrap.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod fs;
mod part;
mod root;

pub use fs::{probe_fs, FsInfo, FsType};
pub use part::{find_partition, partition_node, read_partitions, Disk, Partition, Table, TableKind};
pub use root::{mount_options, Key, Root, RootError, RootSpec, RootWait};

#[cfg(test)]
mod tests;

/// The device, read as `pread(2)` does: fill `buf` from byte `offset` and
/// return how many bytes were read (fewer than `buf.len()` only at the end
/// of the device), or the errno of a failed read.
pub trait ReadAt {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, i32>;
}

/// A device image in memory.
impl ReadAt for &[u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, i32> {
        let from = usize::try_from(offset).ok().and_then(|o| self.get(o..)).unwrap_or(&[]);
        let n = from.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), from.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }
}

/// Why a device could not be identified (an unknown format is no error:
/// the probes answer `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdError {
    /// A read at this byte offset failed with this errno.
    Read { offset: u64, errno: i32 },
    /// Two file systems' superblocks on one device; blkid refuses such a
    /// device too ("ambivalent result"): wipe the stale one (`wipefs`).
    Ambivalent(FsType, FsType),
    /// A logical block size other than 512, 1024, 2048 or 4096 bytes.
    SectorSize(u32),
}

impl IdError {
    /// What went wrong, for a message after the device's name.
    pub fn describe(&self) -> &'static str {
        match self {
            IdError::Read { .. } => "read failed",
            IdError::Ambivalent(..) => "two file-system signatures (wipe the stale one with wipefs)",
            IdError::SectorSize(_) => "logical block size not 512, 1024, 2048 or 4096",
        }
    }
}

/// Fill all of `buf` from `offset`: Ok(false) when the device ends first.
fn read_full(dev: &mut dyn ReadAt, offset: u64, buf: &mut [u8]) -> Result<bool, IdError> {
    let mut done = 0;
    while done < buf.len() {
        let at = offset.saturating_add(done as u64);
        let rest = buf.get_mut(done..).unwrap_or(&mut []);
        let want = rest.len();
        match dev.read_at(at, rest) {
            Ok(0) => return Ok(false),
            Ok(n) => done += n.min(want),
            Err(errno) => return Err(IdError::Read { offset: at, errno }),
        }
    }
    Ok(true)
}

/// Text of up to 256 bytes (an identifier, a label), without a heap. One
/// size for all: one copy of its code in the binary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text {
    buf: [u8; 256],
    len: usize,
}

impl Text {
    pub const fn new() -> Self {
        Text { buf: [0; 256], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append a byte (dropped when full: no text here is longer).
    fn push(&mut self, c: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = c;
            self.len += 1;
        }
    }

    fn hex(&mut self, b: u8, upper: bool) {
        let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
        for nibble in [b >> 4, b & 0xf] {
            self.push(digits.get(nibble as usize).copied().unwrap_or(b'?'));
        }
    }

    /// A label field as blkid reports it: up to the first NUL, trailing
    /// blanks dropped.
    fn label(field: &[u8]) -> Self {
        let mut t = Text::new();
        let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
        let mut s = field.get(..end).unwrap_or(&[]);
        while let [rest @ .., last] = s {
            if !matches!(last, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
                break;
            }
            s = rest;
        }
        for &c in s {
            t.push(c);
        }
        t
    }
}

impl Default for Text {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Text {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", core::str::from_utf8(self.as_bytes()).unwrap_or("<not UTF-8>"))
    }
}

/// A 16-byte UUID as text (`8-4-4-4-12`, lowercase); `guid` reads the first
/// three fields little-endian (GPT), else the bytes are in order (file
/// systems).
fn uuid_text(b: &[u8], guid: bool) -> Text {
    const GUID: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut t = Text::new();
    for (i, &g) in GUID.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            t.push(b'-');
        }
        t.hex(b.get(if guid { g } else { i }).copied().unwrap_or(0), false);
    }
    t
}

fn bytes<const K: usize>(b: &[u8], at: usize) -> [u8; K] {
    let mut out = [0u8; K];
    if let Some(s) = b.get(at..).and_then(|s| s.get(..K)) {
        out.copy_from_slice(s);
    }
    out
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes(b, at))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes(b, at))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes(b, at))
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(bytes(b, at))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes(b, at))
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes(b, at))
}

fn field(b: &[u8], at: usize, len: usize) -> &[u8] {
    b.get(at..).and_then(|s| s.get(..len)).unwrap_or(&[])
}

/// CRC-32 (reflected), four bits per step from a 16-entry table: GPT's
/// polynomial (IEEE 802.3) and the file systems' (Castagnoli). 64 bytes of
/// table each; a device needs at most a few tens of KiB checked.
struct Crc([u32; 16]);

// Evaluated while compiling: an index out of range would not build.
#[allow(clippy::indexing_slicing)]
const fn crc_table(poly: u32) -> Crc {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    Crc(t)
}

const CRC32_IEEE: Crc = crc_table(0xedb8_8320);
const CRC32C: Crc = crc_table(0x82f6_3b78);

/// Continue a CRC-32 (start with 0) over `data`.
fn crc32(table: &Crc, crc: u32, data: &[u8]) -> u32 {
    let step = |c: u32| (c >> 4) ^ table.0.get((c & 0xf) as usize).copied().unwrap_or(0);
    !data.iter().fold(!crc, |c, &b| step(step(c ^ b as u32)))
}
