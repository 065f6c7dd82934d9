//! A module file's ELF section headers: what the compiler reads from a
//! module (its `.modinfo`, and the sizes the cost model uses: `__mcount_loc`,
//! `.symtab`).
//!
//! An uncompressed file is read in three small pieces (the ELF header, the
//! section header table, the section name table) and a section's contents
//! only when asked for; a compressed one (`.ko.xz`, `.ko.zst`, `.ko.gz`) is
//! decompressed whole, as the kernel does before it looks at it. Every
//! offset is checked against the file's size, so a file that is no ELF
//! object, or whose tables point outside it, gives a message naming what is
//! wrong; nothing panics.

use std::format;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::prelude::rust_2021::*;

use super::error::{Error, Result};
use crate::plan::Compression;

/// Section types (`sh_type`) the compiler looks at.
pub const SHT_SYMTAB: u32 = 2;

/// One section header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: Vec<u8>,
    pub kind: u32,
    pub offset: u64,
    pub size: u64,
    /// `sh_entsize`: the size of one entry of a table section (0: none given).
    pub entsize: u64,
}

/// Where the bytes of an open module file come from.
enum Source {
    File(std::fs::File),
    Whole(Vec<u8>),
}

/// A module file, its section headers read.
pub struct Elf {
    path: PathBuf,
    source: Source,
    /// The size of the ELF object (decompressed, for a compressed file).
    pub size: u64,
    /// ELFCLASS64 (else ELFCLASS32).
    pub wide: bool,
    pub sections: Vec<Section>,
}

impl Elf {
    /// Open the module file at `path` (decompressing it when its name ends
    /// in `.ko.xz`, `.ko.zst` or `.ko.gz`) and read its section headers.
    pub fn open(path: &Path) -> Result<Elf> {
        let c = Compression::from_path(path.as_os_str().as_encoded_bytes()).unwrap_or(Compression::None);
        let (source, size) = if c == Compression::None {
            let file = std::fs::File::open(path).map_err(|err| Error::Read { path: path.to_path_buf(), err })?;
            let size = file.metadata().map_err(|err| Error::Read { path: path.to_path_buf(), err })?.len();
            (Source::File(file), size)
        } else {
            let whole = super::decompress::decompress_file(path, c)?;
            let size = whole.len() as u64;
            (Source::Whole(whole), size)
        };
        let mut elf = Elf { path: path.to_path_buf(), source, size, wide: true, sections: Vec::new() };
        elf.read_headers().map_err(|m| elf.damaged(m))?;
        Ok(elf)
    }

    /// From the bytes of an uncompressed ELF object (`name` in messages).
    pub fn from_bytes(name: &Path, bytes: Vec<u8>) -> Result<Elf> {
        let size = bytes.len() as u64;
        let mut elf = Elf { path: name.to_path_buf(), source: Source::Whole(bytes), size, wide: true, sections: Vec::new() };
        elf.read_headers().map_err(|m| elf.damaged(m))?;
        Ok(elf)
    }

    fn damaged(&self, m: String) -> Error {
        Error::Other(format!("{}: {m}; the module file is damaged: reinstall the kernel's modules", self.path.display()))
    }

    /// `len` bytes at `off`, checked against the object's size.
    fn bytes(&self, off: u64, len: u64) -> std::result::Result<Vec<u8>, String> {
        let end = off.checked_add(len).filter(|&e| e <= self.size && len <= 1 << 30);
        let Some(end) = end else {
            return Err(format!("{len} bytes at offset {off} lie outside the file ({} bytes)", self.size));
        };
        match &self.source {
            Source::Whole(b) => Ok(b[off as usize..end as usize].to_vec()),
            Source::File(f) => {
                let mut buf = std::vec![0u8; len as usize];
                f.read_exact_at(&mut buf, off).map_err(|e| format!("cannot read {len} bytes at {off}: {e}"))?;
                Ok(buf)
            }
        }
    }

    fn read_headers(&mut self) -> std::result::Result<(), String> {
        if self.size < 52 {
            return Err("not an ELF file (too short)".into());
        }
        let head = self.bytes(0, 52.max(64.min(self.size)))?;
        if &head[..4] != b"\x7fELF" {
            return Err("not an ELF file".into());
        }
        self.wide = match head[4] {
            1 => false,
            2 => true,
            c => return Err(format!("unknown ELF class {c}")),
        };
        let big = match head[5] {
            1 => false,
            2 => true,
            d => return Err(format!("unknown ELF data encoding {d}")),
        };
        if self.wide && head.len() < 64 {
            return Err("not an ELF file (too short)".into());
        }
        let num = |b: &[u8], at: usize, size: usize| -> u64 {
            let b = &b[at..at + size];
            (0..size).fold(0u64, |v, i| (v << 8) | if big { b[i] } else { b[size - 1 - i] } as u64)
        };
        // e_shoff, e_shentsize, e_shnum, e_shstrndx.
        let (shoff, shentsize, shnum, shstrndx) = if self.wide {
            (num(&head, 0x28, 8), num(&head, 0x3a, 2), num(&head, 0x3c, 2), num(&head, 0x3e, 2))
        } else {
            (num(&head, 0x20, 4), num(&head, 0x2e, 2), num(&head, 0x30, 2), num(&head, 0x32, 2))
        };
        if shentsize != if self.wide { 64 } else { 40 } {
            return Err(format!("section header size {shentsize}"));
        }
        if shstrndx >= shnum {
            return Err("no section name table".into());
        }
        let table = self.bytes(shoff, shnum * shentsize)?;
        // (sh_name, sh_type, sh_offset, sh_size, sh_entsize) of section i.
        let wide = self.wide;
        let header = |i: u64| -> (u64, u32, u64, u64, u64) {
            let at = (i * shentsize) as usize;
            if wide {
                (num(&table, at, 4), num(&table, at + 4, 4) as u32, num(&table, at + 0x18, 8), num(&table, at + 0x20, 8), num(&table, at + 0x38, 8))
            } else {
                (num(&table, at, 4), num(&table, at + 4, 4) as u32, num(&table, at + 0x10, 4), num(&table, at + 0x14, 4), num(&table, at + 0x24, 4))
            }
        };
        let (_, _, stroff, strsize, _) = header(shstrndx);
        let names = self.bytes(stroff, strsize)?;
        let mut sections = Vec::with_capacity(shnum as usize);
        for i in 1..shnum {
            let (n, kind, offset, size, entsize) = header(i);
            let name = names.get(n as usize..).map_or(&[][..], |t| &t[..t.iter().position(|&c| c == 0).unwrap_or(t.len())]);
            sections.push(Section { name: name.to_vec(), kind, offset, size, entsize });
        }
        self.sections = sections;
        Ok(())
    }

    /// The section called `name`, if there is one.
    pub fn section(&self, name: &[u8]) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The contents of section `s` (no contents for SHT_NOBITS sections such
    /// as `.bss`: callers ask for sections that have them).
    pub fn contents(&self, s: &Section) -> Result<Vec<u8>> {
        self.bytes(s.offset, s.size).map_err(|m| self.damaged(format!("section {}: {m}", String::from_utf8_lossy(&s.name))))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::vec;

    /// A little-endian ELF object of the given class with these sections
    /// ((name, type, contents, entsize)); the name table comes last.
    pub fn object(wide: bool, sections: &[(&str, u32, Vec<u8>, u64)]) -> Vec<u8> {
        let (eh, sh) = if wide { (64usize, 64usize) } else { (52, 40) };
        let mut names = vec![0u8];
        let mut name_at = Vec::new();
        for (n, ..) in sections.iter().map(|s| (s.0, ())).chain([(".shstrtab", ())]) {
            name_at.push(names.len() as u64);
            names.extend_from_slice(n.as_bytes());
            names.push(0);
        }
        let mut out = vec![0u8; eh];
        let mut at = Vec::new();
        for (_, _, data, _) in sections {
            at.push(out.len() as u64);
            out.extend_from_slice(data);
        }
        at.push(out.len() as u64);
        out.extend_from_slice(&names);
        let shoff = out.len() as u64;
        let put = |b: &mut Vec<u8>, v: u64, n: usize| b.extend_from_slice(&v.to_le_bytes()[..n]);
        out.extend_from_slice(&vec![0u8; sh]);
        let lens: Vec<u64> = sections.iter().map(|s| s.2.len() as u64).chain([names.len() as u64]).collect();
        for i in 0..=sections.len() {
            let (kind, entsize) = sections.get(i).map_or((3, 0), |s| (s.1, s.3));
            let w = if wide { 8 } else { 4 };
            put(&mut out, name_at[i], 4);
            put(&mut out, kind as u64, 4);
            put(&mut out, 0, w); // flags
            put(&mut out, 0, w); // addr
            put(&mut out, at[i], w);
            put(&mut out, lens[i], w);
            put(&mut out, 0, 4); // link
            put(&mut out, 0, 4); // info
            put(&mut out, 1, w); // addralign
            put(&mut out, entsize, w);
        }
        let n = sections.len() as u64 + 2;
        let h = &mut out[..eh];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = if wide { 2 } else { 1 };
        h[5] = 1;
        h[6] = 1;
        if wide {
            h[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
            h[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
            h[0x3c..0x3e].copy_from_slice(&(n as u16).to_le_bytes());
            h[0x3e..0x40].copy_from_slice(&((n - 1) as u16).to_le_bytes());
        } else {
            h[0x20..0x24].copy_from_slice(&(shoff as u32).to_le_bytes());
            h[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
            h[0x30..0x32].copy_from_slice(&(n as u16).to_le_bytes());
            h[0x32..0x34].copy_from_slice(&((n - 1) as u16).to_le_bytes());
        }
        out
    }

    #[test]
    fn sections_of_both_classes() {
        for wide in [true, false] {
            let obj = object(wide, &[(".text", 1, vec![0x90; 10], 0), (".symtab", SHT_SYMTAB, vec![0; 48], 24), ("__mcount_loc", 1, vec![0; 16], 0)]);
            let e = Elf::from_bytes(Path::new("x.ko"), obj).unwrap();
            assert_eq!(e.wide, wide);
            let names: Vec<&[u8]> = e.sections.iter().map(|s| &s.name[..]).collect();
            assert_eq!(names, [&b".text"[..], b".symtab", b"__mcount_loc", b".shstrtab"]);
            let st = e.section(b".symtab").unwrap();
            assert_eq!((st.kind, st.size, st.entsize), (SHT_SYMTAB, 48, 24));
            assert_eq!(e.contents(e.section(b".text").unwrap()).unwrap(), vec![0x90; 10]);
            assert!(e.section(b".modinfo").is_none());
        }
    }

    #[test]
    fn damaged_files_are_named() {
        let err = |b: Vec<u8>| Elf::from_bytes(Path::new("bad.ko"), b).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(b"hello".to_vec()).contains("bad.ko: not an ELF file (too short)"), "{}", err(b"hello".to_vec()));
        assert!(err(vec![0u8; 64]).contains("not an ELF file;"));
        let mut obj = object(true, &[(".text", 1, vec![1; 4], 0)]);
        // The section table beyond the end of the file.
        obj[0x28..0x30].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(err(obj).contains("lie outside the file"));
        let mut obj = object(true, &[(".text", 1, vec![1; 4], 0)]);
        obj[4] = 7;
        assert!(err(obj).contains("unknown ELF class 7"));
    }
}
