//! Block-device images for the partition and superblock probes: a sparse
//! image read from fuzz input (pieces at offsets, zeros between), and the
//! checksums the probes verify, made right on request so that the fields
//! behind them are reached.

use parmod::blockid::ReadAt;
use parmod::plan::crc32c;

use crate::input::Bytes;

/// A device of `size` bytes: `pieces` (offset, bytes), zeros elsewhere.
pub struct Image {
    pub size: u64,
    pub pieces: Vec<(u64, Vec<u8>)>,
}

impl Image {
    /// Input layout: a u32 size in 512-byte units, then pieces as (u32
    /// offset in bytes, u16 length, bytes).
    pub fn read(b: &mut Bytes<'_>) -> Image {
        let size = (b.u32() as u64 % (1 << 24)) * 512;
        let mut pieces = Vec::new();
        while !b.0.is_empty() && pieces.len() < 64 {
            let at = b.u32() as u64;
            let len = (b.u16() as usize).min(b.0.len());
            let (data, rest) = b.0.split_at(len);
            b.0 = rest;
            pieces.push((at, data.to_vec()));
        }
        Image { size, pieces }
    }

    /// Write `data` at `at` (a new piece over the others).
    pub fn put(&mut self, at: u64, data: &[u8]) {
        self.pieces.push((at, data.to_vec()));
    }

    /// `len` bytes at `at` as the device holds them.
    pub fn get(&self, at: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let end = (at + len as u64).min(self.size);
        for (off, data) in &self.pieces {
            let (from, to) = ((*off).max(at), (off + data.len() as u64).min(end));
            if from < to {
                out[(from - at) as usize..(to - at) as usize].copy_from_slice(&data[(from - off) as usize..(to - off) as usize]);
            }
        }
        out
    }
}

/// A view of an image from `start`, `len` bytes long (a partition).
pub struct View<'a> {
    pub image: &'a Image,
    pub start: u64,
    pub len: u64,
    /// Fail reads at or past this offset of the view (an I/O error).
    pub fail_at: Option<u64>,
}

impl ReadAt for View<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, i32> {
        if self.fail_at.is_some_and(|f| offset + buf.len() as u64 > f) {
            return Err(5);
        }
        if offset >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        let data = self.image.get(self.start + offset, n);
        buf[..n].copy_from_slice(&data);
        Ok(n)
    }
}

/// CRC-32 (IEEE 802.3, reflected), as GPT uses it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
        }
    }
    !c
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Make the GPT header at LBA 1 and its entry array checksum right.
pub fn fix_gpt(img: &mut Image, sector: u64) {
    let mut hdr = img.get(sector, sector as usize);
    let (array_lba, entries, entry_size) = (le64(&hdr, 72), le32(&hdr, 80) as u64, le32(&hdr, 84) as u64);
    let array_len = entries.saturating_mul(entry_size);
    if array_len > 0 && array_len <= 4 << 20 && array_lba.checked_mul(sector).is_some() {
        let sum = crc32(&img.get(array_lba * sector, array_len as usize));
        hdr[88..92].copy_from_slice(&sum.to_le_bytes());
    }
    let size = (le32(&hdr, 12) as usize).min(hdr.len());
    hdr[16..20].fill(0);
    let sum = crc32(&hdr[..size]);
    hdr[16..20].copy_from_slice(&sum.to_le_bytes());
    img.put(sector, &hdr);
}

/// Make an ext4 superblock's metadata_csum right (CRC-32C of bytes 0..0x3fc, stored inverted).
pub fn fix_ext4(img: &mut Image) {
    let mut sb = img.get(1024, 1024);
    let sum = !crc32c(&sb[..0x3fc]);
    sb[0x3fc..].copy_from_slice(&sum.to_le_bytes());
    img.put(1024, &sb);
}

/// Make an xfs v5 superblock's CRC right (CRC-32C of its sector, the field at 224 zeroed).
pub fn fix_xfs(img: &mut Image) {
    let sectsize = u16::from_be_bytes([img.get(102, 1)[0], img.get(103, 1)[0]]).clamp(512, 32768) as usize;
    let mut sb = img.get(0, sectsize);
    sb[224..228].fill(0);
    let sum = crc32c(&sb);
    sb[224..228].copy_from_slice(&sum.to_le_bytes());
    img.put(0, &sb[..512]);
}

/// Make a btrfs superblock's CRC-32C right (bytes 32..4096 of the block at 64 KiB).
pub fn fix_btrfs(img: &mut Image) {
    let mut sb = img.get(65536, 4096);
    let sum = crc32c(&sb[32..]);
    sb[..4].copy_from_slice(&sum.to_le_bytes());
    img.put(65536, &sb[..4]);
}
