//! `compile --decompress DIR`: decompress the plan's compressed module files
//! for a kernel that cannot decompress modules itself (no
//! `/sys/module/compression`, or another algorithm).
//!
//! Every compressed module file of the plan (`.ko.xz`, `.ko.zst`, `.ko.gz`) is
//! decompressed to `DIR` at the same path relative to the module directory,
//! without the compression suffix (`kernel/fs/xfs/xfs.ko.xz` →
//! `DIR/kernel/fs/xfs/xfs.ko`), and the plan names the uncompressed path.
//! Uncompressed modules are not copied: `DIR` is meant to be layered over
//! `lib/modules/KVER` when the image is assembled. `DIR` may be the module
//! directory itself; the `.ko` files then land beside the compressed ones.
//!
//! Each file is written to a temporary file in its target directory and
//! renamed into place, so `DIR` never holds a partial module. The files are
//! decompressed by a few threads (xz, the usual kernel packaging, decodes
//! at a few tens of MB/s per core).
//!
//! Decoders: gzip with `flate2` (miniz_oxide, pure Rust), zstd with `zstd`
//! (the reference libzstd), xz with `liblzma` (the reference liblzma, built
//! from its bundled source). Concatenated streams, as `xz`, `zstd` and `gzip`
//! may write them, are decoded in full.

use std::format;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::prelude::rust_2021::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::error::{Error, Result};
use crate::plan::Compression;

/// The plan path of a module file once decompressed: `path` without its
/// compression suffix (unchanged for an uncompressed `.ko`).
pub fn plan_path(path: &str) -> &str {
    match Compression::from_path(path.as_bytes()) {
        Some(Compression::Xz) => &path[..path.len() - 3],
        Some(Compression::Zstd) => &path[..path.len() - 4],
        Some(Compression::Gzip) => &path[..path.len() - 3],
        _ => path,
    }
}

/// Decompress the compressed files among `files` (paths relative to
/// `module_dir`, with the caller's tags) into `out_dir`. Returns the size of
/// each file as the plan sees it, in input order: the decompressed size for
/// a compressed file, the file's own size otherwise, `None` for a file that is
/// missing or not a regular file (then nothing is decompressed: the caller
/// reports the missing file).
pub fn decompress_all(module_dir: &Path, out_dir: &Path, files: &[(usize, &str)]) -> Result<Vec<(usize, Option<u64>)>> {
    let mut sizes: Vec<(usize, Option<u64>)> = files
        .iter()
        .map(|&(n, p)| (n, std::fs::metadata(module_dir.join(p)).ok().filter(|m| m.is_file()).map(|m| m.len())))
        .collect();
    if sizes.iter().any(|s| s.1.is_none()) {
        return Ok(sizes);
    }
    let work: Vec<(usize, &str, Compression)> = files
        .iter()
        .enumerate()
        .filter_map(|(i, &(_, p))| match Compression::from_path(p.as_bytes()) {
            Some(Compression::None) | None => None,
            Some(c) => Some((i, p, c)),
        })
        .collect();
    if work.is_empty() {
        return Ok(sizes);
    }
    std::fs::create_dir_all(out_dir).map_err(|e| {
        Error::Other(format!(
            "--decompress: cannot create directory {}: {e}; pass a directory you can write to",
            out_dir.display()
        ))
    })?;

    // Threads take the next file from a shared counter (module sizes vary by
    // three orders of magnitude); the first error (in plan order) wins and
    // stops the others.
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_err: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8).min(work.len());
    let worker = || {
        let mut done: Vec<(usize, u64)> = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(i, p, c)) = work.get(k) else { break };
            match decompress_one(module_dir, out_dir, p, c) {
                Ok(len) => done.push((i, len)),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    let mut slot = first_err.lock().unwrap_or_else(|e| e.into_inner());
                    if slot.as_ref().is_none_or(|(j, _)| i < *j) {
                        *slot = Some((i, e));
                    }
                    break;
                }
            }
        }
        done
    };
    let results: Vec<Vec<(usize, u64)>> = if threads < 2 {
        std::vec![worker()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        })
    };
    if let Some((_, e)) = first_err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut count = 0;
    for (i, len) in results.into_iter().flatten() {
        sizes[i].1 = Some(len);
        count += 1;
    }
    if count != work.len() {
        return Err(Error::Other("internal error: a decompression thread failed".into()));
    }
    Ok(sizes)
}

/// Decompress `module_dir/rel` into `out_dir/plan_path(rel)` (atomically);
/// returns the decompressed size.
fn decompress_one(module_dir: &Path, out_dir: &Path, rel: &str, c: Compression) -> Result<u64> {
    let src = module_dir.join(rel);
    let dest = out_dir.join(plan_path(rel));
    let data = decompress_file(&src, c)?;
    write_atomic(&dest, &data).map_err(|(what, e)| {
        Error::Other(format!(
            "--decompress: cannot {what} {} (decompressing {}): {e}; pass a directory you can write to",
            dest.display(),
            src.display()
        ))
    })?;
    Ok(data.len() as u64)
}

/// The decompressed contents of the module file `src`, compressed with `c`.
pub fn decompress_file(src: &Path, c: Compression) -> Result<Vec<u8>> {
    let src = src.to_path_buf();
    let file = std::fs::File::open(&src).map_err(|err| Error::Read { path: src.clone(), err })?;
    let hint = file.metadata().map_or(0, |m| m.len()).saturating_mul(4).min(64 << 20) as usize;
    let mut data = Vec::with_capacity(hint);
    let input = io::BufReader::with_capacity(64 << 10, file);
    let res = match c {
        Compression::Xz => liblzma::read::XzDecoder::new_multi_decoder(input).read_to_end(&mut data),
        Compression::Zstd => zstd::stream::read::Decoder::with_buffer(input).and_then(|mut d| d.read_to_end(&mut data)),
        Compression::Gzip => flate2::bufread::MultiGzDecoder::new(input).read_to_end(&mut data),
        Compression::None => return Err(Error::Other(format!("internal error: {} is not compressed", src.display()))),
    };
    if let Err(e) = res {
        return Err(Error::Other(corrupt_message(&src, c, &e)));
    }
    if data.is_empty() {
        return Err(Error::Other(format!(
            "cannot decompress {}: it holds no data (an empty {} stream); the file is damaged: reinstall the kernel's modules or replace the file, then compile again",
            src.display(),
            c.kernel_name()
        )));
    }
    Ok(data)
}

fn corrupt_message(src: &Path, c: Compression, e: &io::Error) -> String {
    let tool = match c {
        Compression::Xz => "xz -t",
        Compression::Zstd => "zstd -t",
        _ => "gzip -t",
    };
    if matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof)
        || e.raw_os_error().is_none()
    {
        format!(
            "cannot decompress {}: not valid {} data ({e}); the file is damaged or truncated (`{tool}` checks it): reinstall the kernel's modules or replace the file, then compile again",
            src.display(),
            c.kernel_name()
        )
    } else {
        format!("cannot read {}: {e}", src.display())
    }
}

/// Write `data` to `dest` through a temporary file in the same directory
/// and a rename. On failure: (what failed, the error).
fn write_atomic(dest: &Path, data: &[u8]) -> std::result::Result<(), (&'static str, io::Error)> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| ("create the directory for", e))?;
    let fname = dest.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{fname}.tmp.{}", std::process::id()));
    let res = std::fs::write(&tmp, data)
        .map_err(|e| ("write", e))
        .and_then(|()| std::fs::rename(&tmp, dest).map_err(|e| ("rename a temporary file to", e)));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::plan_path;

    #[test]
    fn plan_paths() {
        assert_eq!(plan_path("kernel/fs/xfs/xfs.ko.xz"), "kernel/fs/xfs/xfs.ko");
        assert_eq!(plan_path("a.ko.zst"), "a.ko");
        assert_eq!(plan_path("a.ko.gz"), "a.ko");
        assert_eq!(plan_path("a.ko"), "a.ko");
    }
}
