//! GPT and MBR partition tables, numbered as the kernel numbers them (see
//! the module documentation of [`super`] for the rules).

use super::{bytes, crc32, field, le16, le32, le64, read_full, uuid_text, IdError, ReadAt, Root, Text, CRC32_IEEE};

/// The kernel's partition numbers stop below DISK_MAX_PARTS (256).
const MAX_PARTITION: u32 = 255;
/// The largest GPT entry array the kernel reads (its kmalloc limit).
const GPT_ARRAY_MAX: u64 = 4 << 20;
const GPT_ENTRY: u64 = 128;

/// What the caller knows of a whole disk (from sysfs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disk {
    /// `queue/logical_block_size`: 512, 1024, 2048 or 4096.
    pub sector_size: u32,
    /// The size in bytes (`size` × 512).
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    Gpt,
    Mbr,
}

/// A partition table found on a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    pub kind: TableKind,
    /// PTUUID as blkid prints it: the disk GUID, or the MBR signature as 8
    /// hex digits (empty when zero).
    pub id: Text,
}

/// One partition, as the kernel creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The kernel's number: `vda` + 1 → `vda1` ([`partition_node`]).
    pub number: u32,
    /// Start and length in bytes (cut at the end of the disk, as the kernel).
    pub start: u64,
    pub size: u64,
    /// PARTUUID as the kernel forms it (empty for an extended partition).
    pub uuid: Text,
    /// PARTLABEL: the GPT name as UTF-8 (empty on MBR).
    pub name: Text,
}

/// Read the partition table of a whole disk and call `visit` with each
/// partition (in table order, which is not always number order) until it
/// returns false. None when the disk has no table parmod reads (the kernel
/// then creates no partitions either).
pub fn read_partitions(
    dev: &mut dyn ReadAt,
    disk: Disk,
    visit: &mut dyn FnMut(&Partition) -> bool,
) -> Result<Option<Table>, IdError> {
    if !matches!(disk.sector_size, 512 | 1024 | 2048 | 4096) {
        return Err(IdError::SectorSize(disk.sector_size));
    }
    let mut mbr = [0u8; 512];
    if disk.size < disk.sector_size as u64 || !read_full(dev, 0, &mut mbr)? || field(&mbr, 510, 2) != [0x55, 0xaa] {
        return Ok(None);
    }
    if protective(&mbr) {
        // A protective MBR whose GPT is invalid: no partitions (the kernel's
        // MBR parser refuses a table with a 0xee entry).
        return gpt(dev, disk, visit);
    }
    mbr_table(dev, disk, &mbr, visit)
}

/// The partition number that `root` (PARTUUID, with its PARTNROFF, or
/// PARTLABEL) names on this disk, when the kernel has such a partition.
pub fn find_partition(dev: &mut dyn ReadAt, disk: Disk, root: &Root) -> Result<Option<u32>, IdError> {
    let offset = match root {
        Root::PartUuid { offset, .. } => *offset,
        Root::PartLabel(_) => 0,
        _ => return Ok(None),
    };
    let mut present = [0u64; 4];
    let mut found = None;
    read_partitions(dev, disk, &mut |p| {
        if let Some(w) = present.get_mut((p.number / 64) as usize) {
            *w |= 1 << (p.number % 64);
        }
        if found.is_none() && root.names_partition(p) {
            found = Some(p.number);
        }
        // The offset may point at any partition: see them all.
        found.is_none() || offset != 0
    })?;
    let Some(n) = found else { return Ok(None) };
    let target = n as i64 + offset as i64;
    let exists = |t: i64| {
        (1..=MAX_PARTITION as i64).contains(&t) && present.get(t as usize / 64).is_some_and(|w| w >> (t % 64) & 1 == 1)
    };
    Ok(exists(target).then_some(target as u32))
}

/// The kernel's name for partition `n` of `disk` (`disk_name()`: a `p`
/// between two digits), written to `out`; None when it does not fit.
pub fn partition_node(disk: &[u8], n: u32, out: &mut [u8]) -> Option<usize> {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        *digits.get_mut(i)? = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let p: &[u8] = if disk.last().is_some_and(u8::is_ascii_digit) { b"p" } else { b"" };
    let mut len = 0;
    for part in [disk, p, digits.get(i..)?] {
        out.get_mut(len..len + part.len())?.copy_from_slice(part);
        len += part.len();
    }
    Some(len)
}

/// An MBR entry of type 0xee starting at LBA 1 (protective or hybrid MBR).
fn protective(mbr: &[u8]) -> bool {
    (0..4).any(|i| {
        let e = field(mbr, 446 + 16 * i, 16);
        e.get(4) == Some(&0xee) && le32(e, 8) == 1
    })
}

fn gpt(dev: &mut dyn ReadAt, disk: Disk, visit: &mut dyn FnMut(&Partition) -> bool) -> Result<Option<Table>, IdError> {
    let ssz = disk.sector_size as u64;
    let Some(last_lba) = disk.size.checked_div(ssz).and_then(|n| n.checked_sub(1)) else { return Ok(None) };
    let mut hdr = [0u8; 4096];
    let hdr = hdr.get_mut(..ssz as usize).unwrap_or(&mut []);
    if !read_full(dev, ssz, hdr)? || field(hdr, 0, 8) != b"EFI PART" {
        return Ok(None);
    }
    let size = le32(hdr, 12) as usize;
    let crc = le32(hdr, 16);
    let (first_usable, last_usable) = (le64(hdr, 40), le64(hdr, 48));
    let (array_lba, entries, entry_size) = (le64(hdr, 72), le32(hdr, 80) as u64, le32(hdr, 84) as u64);
    let array_crc = le32(hdr, 88);
    let array_len = entries * entry_size;
    let disk_guid: [u8; 16] = bytes(hdr, 56);
    if let Some(c) = hdr.get_mut(16..20) {
        c.fill(0);
    }
    if !(92..=hdr.len()).contains(&size)
        || crc32(&CRC32_IEEE, 0, field(hdr, 0, size)) != crc
        || le64(hdr, 24) != 1
        || first_usable > last_lba
        || last_usable > last_lba
        || last_usable < first_usable
        || entry_size != GPT_ENTRY
        || array_len == 0
        || array_len > GPT_ARRAY_MAX
        || array_lba > last_lba
    {
        return Ok(None);
    }
    let array = array_lba * ssz;
    let mut chunk = [0u8; 512];
    let mut c = 0;
    let mut done = 0;
    while done < array_len {
        let piece = chunk.get_mut(..(array_len - done).min(512) as usize).unwrap_or(&mut []);
        if !read_full(dev, array + done, piece)? {
            return Ok(None);
        }
        c = crc32(&CRC32_IEEE, c, piece);
        done += piece.len() as u64;
    }
    if c != array_crc {
        return Ok(None);
    }
    for i in 0..entries.min(MAX_PARTITION as u64) {
        let mut e = [0u8; GPT_ENTRY as usize];
        if !read_full(dev, array + i * GPT_ENTRY, &mut e)? {
            return Ok(None);
        }
        let (first, last) = (le64(&e, 32), le64(&e, 40));
        // The kernel's length wraps when the end is before the start: 0
        // (no partition) for one block before, else cut at the disk's end.
        let blocks = last.wrapping_sub(first).wrapping_add(1);
        if field(&e, 0, 16).iter().all(|&b| b == 0) || first > last_lba || last > last_lba || blocks == 0 {
            continue;
        }
        let p = Partition {
            number: i as u32 + 1,
            start: first * ssz,
            size: blocks.saturating_mul(ssz).min(disk.size - first * ssz),
            uuid: uuid_text(field(&e, 16, 16), true),
            name: utf16_name(field(&e, 56, 72)),
        };
        if !visit(&p) {
            break;
        }
    }
    Ok(Some(Table { kind: TableKind::Gpt, id: uuid_text(&disk_guid, true) }))
}

/// A GPT name, UTF-16LE, as blkid's UTF-8 (an unpaired surrogate is encoded
/// as it stands), up to the first NUL, trailing blanks dropped.
pub(super) fn utf16_name(raw: &[u8]) -> Text {
    let mut out = [0u8; 108];
    let mut len = 0;
    let mut i = 0;
    while i + 1 < raw.len() {
        let mut c = le16(raw, i) as u32;
        i += 2;
        if (0xd800..0xdc00).contains(&c) && i + 1 < raw.len() {
            let low = le16(raw, i) as u32;
            if (0xdc00..0xe000).contains(&low) {
                c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
                i += 2;
            }
        }
        if c == 0 {
            break;
        }
        let (n, lead) = match c {
            0..=0x7f => (1, 0),
            0x80..=0x7ff => (2, 0xc0),
            0x800..=0xffff => (3, 0xe0),
            _ => (4, 0xf0),
        };
        for k in 0..n {
            let shift = 6 * (n - 1 - k);
            let bits = (c >> shift) as u8;
            let byte = if k == 0 {
                if n == 1 {
                    bits
                } else {
                    lead | bits
                }
            } else {
                0x80 | (bits & 0x3f)
            };
            if let Some(slot) = out.get_mut(len) {
                *slot = byte;
                len += 1;
            }
        }
    }
    Text::label(out.get(..len).unwrap_or(&[]))
}

fn mbr_table(
    dev: &mut dyn ReadAt,
    disk: Disk,
    mbr: &[u8],
    visit: &mut dyn FnMut(&Partition) -> bool,
) -> Result<Option<Table>, IdError> {
    let entries = |s: &[u8]| -> [(u8, u8, u64, u64); 4] {
        let lbs = disk.sector_size as u64;
        core::array::from_fn(|i| {
            let e = field(s, 446 + 16 * i, 16);
            let (boot, kind) = (e.first().copied().unwrap_or(0), e.get(4).copied().unwrap_or(0));
            (boot, kind, le32(e, 8) as u64 * lbs, le32(e, 12) as u64 * lbs)
        })
    };
    let table = entries(mbr);
    // A FAT boot sector, or no table (the kernel creates no partitions).
    if table.iter().any(|e| e.0 != 0 && e.0 != 0x80) {
        return Ok(None);
    }
    // A 0xee entry not at LBA 1: the kernel's MBR parser leaves it to GPT.
    if table.iter().any(|e| e.1 == 0xee) {
        return Ok(None);
    }
    let sig = le32(mbr, 440);
    let mut id = Text::new();
    if sig != 0 {
        for b in sig.to_be_bytes() {
            id.hex(b, false);
        }
    }
    let mut out = Emit { disk, sig, visit, more: true };
    let mut next = 5;
    for (slot, &(_, kind, start, size)) in (1..).zip(table.iter()) {
        if size == 0 || !out.more {
            continue;
        }
        if extended(kind) {
            // The kernel's tiny partition over the EBR, for LILO.
            let ssz = disk.sector_size as u64;
            out.put(slot, start, size.min(ssz.max(1024)), false);
            let mut this = (start, size);
            let mut links = 0;
            while out.more && next <= MAX_PARTITION {
                links += 1;
                let mut ebr = [0u8; 512];
                if links > 100 || !read_full(dev, this.0, &mut ebr)? || field(&ebr, 510, 2) != [0x55, 0xaa] {
                    break;
                }
                let list = entries(&ebr);
                for (i, &(_, k, offs, len)) in list.iter().enumerate() {
                    let at = this.0 + offs;
                    if len == 0 || extended(k) {
                        continue;
                    }
                    // Entries 3 and 4 sometimes hold garbage: only inside.
                    if i >= 2 && (offs + len > this.1 || at < start || at + len > start + size) {
                        continue;
                    }
                    out.put(next, at, len, true);
                    links = 0;
                    next += 1;
                    if next > MAX_PARTITION || !out.more {
                        break;
                    }
                }
                // The first extended entry links to the next EBR, relative
                // to the start of the primary extended partition.
                match list.iter().find(|e| e.3 != 0 && extended(e.1)) {
                    Some(&(_, _, offs, len)) => this = (start + offs, len),
                    None => break,
                }
            }
        } else {
            out.put(slot, start, size, true);
        }
    }
    Ok(Some(Table { kind: TableKind::Mbr, id }))
}

fn extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f | 0x85)
}

struct Emit<'v> {
    disk: Disk,
    sig: u32,
    visit: &'v mut dyn FnMut(&Partition) -> bool,
    more: bool,
}

impl Emit<'_> {
    /// One MBR partition, unless it starts past the end of the disk (the
    /// kernel skips it, its number stays used).
    fn put(&mut self, number: u32, start: u64, size: u64, with_uuid: bool) {
        if start >= self.disk.size || !self.more {
            return;
        }
        let mut uuid = Text::new();
        if with_uuid {
            for b in self.sig.to_be_bytes() {
                uuid.hex(b, false);
            }
            uuid.push(b'-');
            uuid.hex(number as u8, false);
        }
        let p = Partition { number, start, size: size.min(self.disk.size - start), uuid, name: Text::new() };
        self.more = (self.visit)(&p);
    }
}
