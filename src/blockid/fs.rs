//! File-system superblocks: ext2/3/4, xfs, btrfs, vfat (see the module
//! documentation of [`super`] for what each check is).

use super::{be16, be32, be64, crc32, field, le16, le32, le64, read_full, uuid_text, IdError, ReadAt, Text, CRC32C};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsType {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Btrfs,
    Vfat,
}

impl FsType {
    /// The type name for mount(2), as blkid's TYPE.
    pub fn name(self) -> &'static [u8] {
        match self {
            FsType::Ext2 => b"ext2",
            FsType::Ext3 => b"ext3",
            FsType::Ext4 => b"ext4",
            FsType::Xfs => b"xfs",
            FsType::Btrfs => b"btrfs",
            FsType::Vfat => b"vfat",
        }
    }

    /// The kernel module that registers the type (ext4 also mounts ext2
    /// and ext3 where, as on Debian, CONFIG_EXT4_USE_FOR_EXT2 is set).
    pub fn module(self) -> &'static [u8] {
        match self {
            FsType::Ext2 | FsType::Ext3 => b"ext4",
            other => other.name(),
        }
    }
}

/// A file system found on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsInfo {
    pub kind: FsType,
    /// As blkid prints it (empty when the file system has none).
    pub uuid: Text,
    /// As blkid reports it (empty when none).
    pub label: Text,
}

type Probe = fn(&mut dyn ReadAt) -> Result<Option<FsInfo>, IdError>;

/// The file system on a device (a partition or a whole disk): None when it
/// has none of the four, an error when it has two.
pub fn probe_fs(dev: &mut dyn ReadAt) -> Result<Option<FsInfo>, IdError> {
    let mut found: Option<FsInfo> = None;
    for probe in [ext as Probe, xfs, btrfs, vfat] {
        if let Some(fs) = probe(dev)? {
            if let Some(first) = &found {
                return Err(IdError::Ambivalent(first.kind, fs.kind));
            }
            found = Some(fs);
        }
    }
    Ok(found)
}

fn info(kind: FsType, uuid: Option<Text>, label: &[u8]) -> Option<FsInfo> {
    Some(FsInfo { kind, uuid: uuid.unwrap_or_default(), label: Text::label(label) })
}

/// A file system's UUID: none when all zero, as blkid.
pub(super) fn fs_uuid(b: &[u8]) -> Option<Text> {
    b.iter().any(|&c| c != 0).then(|| uuid_text(b, false))
}

fn ext(dev: &mut dyn ReadAt) -> Result<Option<FsInfo>, IdError> {
    const HAS_JOURNAL: u32 = 0x4;
    const JOURNAL_DEV: u32 = 0x8;
    const METADATA_CSUM: u32 = 0x400;
    // Features ext2 and ext3 know: sparse_super, large_file, btree_dir
    // (ro_compat); filetype, meta_bg and for ext3 needs_recovery (incompat).
    const RO_OLD: u32 = 0x1 | 0x2 | 0x4;
    const INCOMPAT_EXT2: u32 = 0x2 | 0x10;
    const INCOMPAT_EXT3: u32 = INCOMPAT_EXT2 | 0x4;
    let mut sb = [0u8; 1024];
    if !read_full(dev, 1024, &mut sb)? || field(&sb, 0x38, 2) != [0x53, 0xef] {
        return Ok(None);
    }
    let (compat, incompat, ro_compat) = (le32(&sb, 0x5c), le32(&sb, 0x60), le32(&sb, 0x64));
    if ro_compat & METADATA_CSUM != 0 {
        if le32(&sb, 0x3fc) != !crc32(&CRC32C, 0, field(&sb, 0, 0x3fc)) {
            return Ok(None);
        }
    } else if le32(&sb, 0x18) >= 256 {
        return Ok(None);
    }
    let kind = if incompat & JOURNAL_DEV != 0 {
        return Ok(None);
    } else if ro_compat & !RO_OLD != 0 || incompat & !INCOMPAT_EXT3 != 0 {
        FsType::Ext4
    } else if compat & HAS_JOURNAL != 0 {
        FsType::Ext3
    } else if incompat & !INCOMPAT_EXT2 == 0 {
        FsType::Ext2
    } else {
        return Ok(None);
    };
    Ok(info(kind, fs_uuid(field(&sb, 0x68, 16)), field(&sb, 0x78, 16)))
}

fn xfs(dev: &mut dyn ReadAt) -> Result<Option<FsInfo>, IdError> {
    let mut sb = [0u8; 512];
    if !read_full(dev, 0, &mut sb)? || field(&sb, 0, 4) != b"XFSB" {
        return Ok(None);
    }
    let byte = |at: usize| sb.get(at).copied().unwrap_or(0) as u32;
    let (blocksize, dblocks, rextsize) = (be32(&sb, 4), be64(&sb, 8), be32(&sb, 80));
    let (agblocks, agcount) = (be32(&sb, 84) as u64, be32(&sb, 88) as u64);
    let (version, sectsize, inodesize) = (be16(&sb, 100), be16(&sb, 102) as u32, be16(&sb, 104) as u32);
    let (blocklog, sectlog, inodelog, inopblog) = (byte(120), byte(121), byte(122), byte(123));
    let sane = agcount > 0
        && (9..=15).contains(&sectlog)
        && sectsize == 1 << sectlog
        && (9..=16).contains(&blocklog)
        && blocksize == 1 << blocklog
        && (8..=11).contains(&inodelog)
        && inodesize == 1 << inodelog
        && blocklog as i32 - inodelog as i32 == inopblog as i32
        && (4096..=1 << 30).contains(&rextsize.wrapping_mul(blocksize))
        && byte(127) <= 100
        && dblocks != 0
        && dblocks <= agcount * agblocks
        && dblocks >= (agcount - 1) * agblocks + 64;
    if !sane {
        return Ok(None);
    }
    if version & 0xf == 5 {
        // A v5 superblock: the "more bits" version bit, the CRC feature,
        // and the CRC-32C of the whole sector with its own field zeroed.
        if version & 0x8000 == 0 || be32(&sb, 200) & 0x100 == 0 {
            return Ok(None);
        }
        let stored = le32(&sb, 224);
        let mut chunk = sb;
        if let Some(c) = chunk.get_mut(224..228) {
            c.fill(0);
        }
        let mut c = crc32(&CRC32C, 0, &chunk);
        let mut at = 512;
        while at < sectsize as u64 {
            if !read_full(dev, at, &mut chunk)? {
                return Ok(None);
            }
            c = crc32(&CRC32C, c, &chunk);
            at += 512;
        }
        if c != stored {
            return Ok(None);
        }
    }
    Ok(info(FsType::Xfs, fs_uuid(field(&sb, 32, 16)), field(&sb, 108, 12)))
}

fn btrfs(dev: &mut dyn ReadAt) -> Result<Option<FsInfo>, IdError> {
    const AT: u64 = 65536;
    let mut sb = [0u8; 4096];
    if !read_full(dev, AT, &mut sb)? || field(&sb, 0x40, 8) != b"_BHRfS_M" || le64(&sb, 0x30) != AT {
        return Ok(None);
    }
    // Checksum type 0 is CRC-32C; the others are accepted unverified.
    if le16(&sb, 0xc4) == 0 && le32(&sb, 0) != crc32(&CRC32C, 0, field(&sb, 32, 4096 - 32)) {
        return Ok(None);
    }
    if le32(&sb, 0x90) == 0 {
        return Ok(None);
    }
    Ok(info(FsType::Btrfs, fs_uuid(field(&sb, 32, 16)), field(&sb, 0x12b, 256)))
}

fn vfat(dev: &mut dyn ReadAt) -> Result<Option<FsInfo>, IdError> {
    const FAT12_MAX: u32 = 0xff4;
    const FAT16_MAX: u32 = 0xfff4;
    const FAT32_MAX: u32 = 0x0fff_fff6;
    const MAGICS: &[(usize, &[u8])] = &[
        (0x52, b"MSWIN"),
        (0x52, b"FAT32   "),
        (0x36, b"MSDOS"),
        (0x36, b"FAT16   "),
        (0x36, b"FAT12   "),
        (0x36, b"FAT     "),
    ];
    let mut bs = [0u8; 512];
    if !read_full(dev, 0, &mut bs)? {
        return Ok(None);
    }
    let byte = |at: usize| bs.get(at).copied().unwrap_or(0);
    if !MAGICS.iter().any(|&(at, m)| field(&bs, at, m.len()) == m) {
        // Only the weak signatures (a jump at 0, 55 aa at 510): 55 aa, and
        // not the FAT-like header OS/2 puts on JFS and HPFS.
        let name = field(&bs, 0x36, 8);
        if field(&bs, 510, 2) != [0x55, 0xaa] || name == b"JFS     " || name == b"HPFS    " {
            return Ok(None);
        }
    }
    let sector = le16(&bs, 0x0b) as u32;
    let cluster = byte(0x0d) as u32;
    let reserved = le16(&bs, 0x0e) as u32;
    let fats = byte(0x10) as u32;
    let dir_entries = le16(&bs, 0x11) as u32;
    let media = byte(0x15);
    let (fat16_len, fat32_len) = (le16(&bs, 0x16) as u32, le32(&bs, 0x24));
    if fats == 0
        || reserved == 0
        || !(media >= 0xf8 || media == 0xf0)
        || !cluster.is_power_of_two()
        || !sector.is_power_of_two()
        || !(512..=4096).contains(&sector)
    {
        return Ok(None);
    }
    let sectors = match le16(&bs, 0x13) {
        0 => le32(&bs, 0x20),
        n => n as u32,
    };
    let fat_size = if fat16_len != 0 { fat16_len } else { fat32_len }.wrapping_mul(fats);
    // (Divisors checked above; checked_div leaves no panic in the code.)
    let dir_size = (dir_entries * 32 + sector - 1).checked_div(sector).unwrap_or(0);
    // As blkid computes it, in 32 bits: a count that wraps is refused below.
    let used = reserved.wrapping_add(fat_size).wrapping_add(dir_size);
    let clusters = sectors.wrapping_sub(used).checked_div(cluster).unwrap_or(u32::MAX);
    let max = match () {
        _ if fat16_len == 0 && fat32_len != 0 => FAT32_MAX,
        _ if clusters > FAT12_MAX => FAT16_MAX,
        _ => FAT12_MAX,
    };
    if clusters > max {
        return Ok(None);
    }
    let mut label = None;
    let mut serial = None;
    let sector = sector as u64;
    if fat16_len != 0 {
        label = dir_label(dev, (reserved as u64 + fat_size as u64) * sector, dir_entries)?;
        if matches!(byte(0x26), 0x28 | 0x29) {
            serial = Some(0x27);
        }
    } else if fat32_len != 0 {
        // The root directory's cluster chain, as far as blkid follows it.
        let entries = (fat32_len as u64 * sector / 4) as u32;
        let data = reserved.wrapping_add(fat_size) as u64;
        let mut next = le32(&bs, 0x2c);
        let mut budget = 99;
        while next != 0 && next < entries && budget > 0 {
            budget -= 1;
            let at = (data + next.wrapping_sub(2).wrapping_mul(cluster) as u64) * sector;
            label = dir_label(dev, at, cluster * sector as u32 / 32)?;
            let mut fat = [0u8; 4];
            if label.is_some() || !read_full(dev, reserved as u64 * sector + next as u64 * 4, &mut fat)? {
                break;
            }
            next = u32::from_le_bytes(fat) & 0x0fff_ffff;
        }
        serial = Some(0x43);
        let fsinfo = le16(&bs, 0x30) as u64;
        if fsinfo != 0 {
            let mut s = [0u8; 512];
            if !read_full(dev, fsinfo * sector, &mut s)? {
                return Ok(None);
            }
            if !matches!(field(&s, 0, 4), b"RRaA" | b"RRdA" | [0, 0, 0, 0])
                || !matches!(field(&s, 484, 4), b"rrAa" | [0, 0, 0, 0])
            {
                return Ok(None);
            }
        }
    }
    let mut uuid = None;
    if let Some(at) = serial {
        let s = field(&bs, at, 4);
        if s.iter().any(|&b| b != 0) {
            let mut t = Text::new();
            for (i, &b) in s.iter().rev().enumerate() {
                if i == 2 {
                    t.push(b'-');
                }
                t.hex(b, true);
            }
            uuid = Some(t);
        }
    }
    Ok(info(FsType::Vfat, uuid, label.as_ref().map_or(&[][..], |l| &l[..])))
}

/// The volume-label entry of a FAT directory (`count` entries at `at`).
fn dir_label(dev: &mut dyn ReadAt, at: u64, count: u32) -> Result<Option<[u8; 11]>, IdError> {
    let mut chunk = [0u8; 512];
    let mut i = 0u32;
    while i < count {
        let n = (count - i).min(16) as usize;
        let buf = chunk.get_mut(..n * 32).unwrap_or(&mut []);
        if !read_full(dev, at + i as u64 * 32, buf)? {
            return Ok(None);
        }
        for e in buf.chunks_exact(32) {
            let attr = e.get(11).copied().unwrap_or(0);
            match e.first() {
                Some(0) | None => return Ok(None),
                Some(0xe5) => continue,
                _ => {}
            }
            if le16(e, 20) != 0 || le16(e, 26) != 0 || attr & 0x3f == 0x0f || attr & 0x18 != 0x08 {
                continue;
            }
            let mut name: [u8; 11] = super::bytes(e, 0);
            if name[0] == 0x05 {
                name[0] = 0xe5;
            }
            return Ok(Some(name));
        }
        i += n as u32;
    }
    Ok(None)
}
