//! The `.modinfo` section of a module file: the `key=value` strings that
//! `modinfo` prints (`firmware=`, `depends=`, `name=`, ...).
//!
//! Only what the compiler needs from an ELF file is read: the header, the
//! section headers, the section name table and `.modinfo` (four reads of an
//! uncompressed file; a compressed one is decompressed whole). Every offset
//! is checked against the file size; a file that is no ELF object, or whose
//! tables point outside it, gives a message naming what is wrong.

use std::format;
use std::path::Path;
use std::prelude::rust_2021::*;

use super::error::{Error, Result};
use crate::plan::Compression;

/// The values of the `key=value` entries of a `.modinfo` section whose key
/// is `key`, in order.
pub fn values(data: &[u8], key: &[u8]) -> Vec<String> {
    data.split(|&c| c == 0)
        .filter_map(|rec| {
            let v = rec.strip_prefix(key)?.strip_prefix(b"=")?;
            Some(String::from_utf8_lossy(v).into_owned())
        })
        .collect()
}

/// The values of `key` in the `.modinfo` of a module file (decompressing
/// `.ko.xz`, `.ko.zst`, `.ko.gz`). A file without `.modinfo` has none.
pub fn read(path: &Path, key: &str) -> Result<Vec<String>> {
    let c = Compression::from_path(path.as_os_str().as_encoded_bytes()).unwrap_or(Compression::None);
    let damaged =
        |m: String| Error::Other(format!("{}: {m}; the module file is damaged: reinstall the kernel's modules", path.display()));
    let data = if c == Compression::None {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(path).map_err(|err| Error::Read { path: path.to_path_buf(), err })?;
        let size = file.metadata().map_err(|err| Error::Read { path: path.to_path_buf(), err })?.len();
        let at = |off: u64, len: u64| -> std::result::Result<Vec<u8>, String> {
            let mut buf = std::vec![0u8; len as usize];
            file.read_exact_at(&mut buf, off).map_err(|e| format!("cannot read {len} bytes at {off}: {e}"))?;
            Ok(buf)
        };
        section(&Reader { size, at: &at }, b".modinfo").map_err(damaged)?
    } else {
        let whole = super::decompress::decompress_file(path, c)?;
        let at = |off: u64, len: u64| -> std::result::Result<Vec<u8>, String> {
            Ok(whole[off as usize..(off + len) as usize].to_vec())
        };
        section(&Reader { size: whole.len() as u64, at: &at }, b".modinfo").map_err(damaged)?
    };
    Ok(data.map(|d| values(&d, key.as_bytes())).unwrap_or_default())
}

/// Reads `len` bytes at an offset of a file of `size` bytes; callers check
/// the range against `size` first.
struct Reader<'a> {
    size: u64,
    at: &'a dyn Fn(u64, u64) -> std::result::Result<Vec<u8>, String>,
}

impl Reader<'_> {
    fn bytes(&self, off: u64, len: u64) -> std::result::Result<Vec<u8>, String> {
        match off.checked_add(len) {
            Some(end) if end <= self.size && len <= 1 << 30 => (self.at)(off, len),
            _ => Err(format!("{len} bytes at offset {off} lie outside the file ({} bytes)", self.size)),
        }
    }
}

/// The contents of the section called `name`, None when there is none.
fn section(file: &Reader<'_>, name: &[u8]) -> std::result::Result<Option<Vec<u8>>, String> {
    if file.size < 64 {
        return Err("not an ELF file (too short)".into());
    }
    let elf = file.bytes(0, 64)?;
    if &elf[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    let wide = match elf[4] {
        1 => false,
        2 => true,
        c => return Err(format!("unknown ELF class {c}")),
    };
    let big = match elf[5] {
        1 => false,
        2 => true,
        d => return Err(format!("unknown ELF data encoding {d}")),
    };
    let num = |b: &[u8], at: usize, size: usize| -> u64 {
        let b = &b[at..at + size];
        (0..size).fold(0u64, |v, i| (v << 8) | if big { b[i] } else { b[size - 1 - i] } as u64)
    };
    // e_shoff, e_shentsize, e_shnum, e_shstrndx.
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (num(&elf, 0x28, 8), num(&elf, 0x3a, 2), num(&elf, 0x3c, 2), num(&elf, 0x3e, 2))
    } else {
        (num(&elf, 0x20, 4), num(&elf, 0x2e, 2), num(&elf, 0x30, 2), num(&elf, 0x32, 2))
    };
    if shentsize != if wide { 64 } else { 40 } {
        return Err(format!("section header size {shentsize}"));
    }
    if shstrndx >= shnum {
        return Err("no section name table".into());
    }
    let table = file.bytes(shoff, shnum * shentsize)?;
    // (sh_name, sh_offset, sh_size) of section i.
    let header = |i: u64| -> (u64, u64, u64) {
        let at = (i * shentsize) as usize;
        if wide {
            (num(&table, at, 4), num(&table, at + 0x18, 8), num(&table, at + 0x20, 8))
        } else {
            (num(&table, at, 4), num(&table, at + 0x10, 4), num(&table, at + 0x14, 4))
        }
    };
    let (_, stroff, strsize) = header(shstrndx);
    let names = file.bytes(stroff, strsize)?;
    for i in 1..shnum {
        let (n, off, size) = header(i);
        let Some(tail) = names.get(n as usize..) else { continue };
        let end = tail.iter().position(|&c| c == 0).unwrap_or(tail.len());
        if &tail[..end] == name {
            return file.bytes(off, size).map(Some);
        }
    }
    Ok(None)
}
