//! The `.modinfo` section of a module file: the `key=value` strings that
//! `modinfo` prints (`firmware=`, `depends=`, `name=`, ...).
//!
//! The file is read through [`super::elf`]: its section headers, then
//! `.modinfo` alone.

use std::path::Path;
use std::prelude::rust_2021::*;

use super::elf::Elf;
use super::error::Result;

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
    of(&Elf::open(path)?, key)
}

/// The values of `key` in the `.modinfo` of an open module file.
pub fn of(elf: &Elf, key: &str) -> Result<Vec<String>> {
    match elf.section(b".modinfo") {
        Some(s) => Ok(values(&elf.contents(s)?, key.as_bytes())),
        None => Ok(Vec::new()),
    }
}
