//! Unpacking `.ko.xz` modules ahead of their loads, on CPU time nothing
//! else wants.
//!
//! A kernel that decompresses modules itself (`/sys/module/compression`)
//! does it inside `finit_module`, before the load's serial phase: on
//! Debian's 6.12 that is about a tenth of the CPU time of the benchmark's
//! real set. While one load holds the kernel's module-wide lock (amdgpu's
//! seconds under `ftrace_lock`), the loads parked behind it leave CPUs idle
//! with nothing ready to run. The unpacker, one task at the idle scheduling
//! class (`SCHED_IDLE`: it runs only on a CPU nothing else wants), decodes
//! the compressed modules not yet started into memory of its own, the
//! run's most urgent first; a worker that takes such a module hands the
//! image to `init_module` (as kmod does when it decompresses), and takes
//! the file with `MODULE_INIT_COMPRESSED_FILE` as before when the image is
//! not ready. The kernel checks the image as it checks the file (its
//! signature is inside the compressed stream).
//!
//! The decoder is `xz4rust` (no heap, no unsafe code); its dictionary is a
//! mapping of [`DICT_MAX`] bytes of which only what the stream's own
//! dictionary needs is touched (the kernel's `modules_install` writes
//! 1 MiB). zstd and gzip modules are left to the kernel.

use core::sync::atomic::Ordering::*;

use crate::plan::{module_flags, Compression};
use rustix::io::Errno;
use xz4rust::{XzDecoder, XzNextBlockResult};

use super::kernel::UnpackCall;
use super::mapping::{self, Buffer};
use super::sched::Sched;
use super::state::*;

/// The largest dictionary the unpacker decodes with (xz's `-9` preset
/// uses 64 MiB; the mapping is reserved, not used, beyond what a stream needs).
pub const DICT_MAX: usize = 64 << 20;

/// The decoder's output per call: how often it asks whether to go on.
const CHUNK: usize = 256 << 10;

/// The uncompressed size of an `.xz` file, from the index of its last
/// stream (a module file holds one). None when the footer or index does
/// not parse.
pub fn xz_size(file: &[u8]) -> Option<usize> {
    // Stream padding (multiples of four zero bytes) may follow the footer.
    let mut end = file.len();
    while end >= 4 && file[end - 4..end] == [0; 4] {
        end -= 4;
    }
    if end < 12 + 12 || &file[end - 2..end] != b"YZ" {
        return None;
    }
    let footer = &file[end - 12..end];
    let backward = u32::from_le_bytes([footer[4], footer[5], footer[6], footer[7]]) as usize;
    let index_len = backward.checked_add(1)?.checked_mul(4)?;
    let start = (end - 12).checked_sub(index_len)?;
    let index = &file[start..end - 12];
    let mut at = 0usize;
    if *index.first()? != 0 {
        return None;
    }
    at += 1;
    let records = vli(index, &mut at)?;
    let mut total = 0usize;
    for _ in 0..records {
        let _unpadded = vli(index, &mut at)?;
        total = total.checked_add(usize::try_from(vli(index, &mut at)?).ok()?)?;
    }
    Some(total)
}

/// One variable-length integer of the xz format at `*at`.
fn vli(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decode the `.xz` file `file` into `out` (exactly its size: see
/// [`xz_size`]) with the dictionary `dict`, asking `go_on` between chunks.
/// EINVAL when the stream is corrupt or does not fill `out` exactly,
/// ENOMEM when it needs a larger dictionary, ECANCELED when `go_on` said no.
pub fn xz_decode(file: &[u8], out: &mut [u8], dict: &mut [u8], go_on: &dyn Fn() -> bool) -> Result<(), Errno> {
    let mut dec = XzDecoder::with_fixed_size_dict(dict);
    let (mut inp, mut outp) = (0usize, 0usize);
    loop {
        if !go_on() {
            return Err(Errno::CANCELED);
        }
        let end = out.len().min(outp + CHUNK);
        let r = dec.decode(&file[inp..], &mut out[outp..end]).map_err(|e| match e {
            xz4rust::XzError::DictionaryTooLarge(_) => Errno::NOMEM,
            _ => Errno::INVAL,
        })?;
        inp += r.input_consumed();
        outp += r.output_produced();
        match r {
            XzNextBlockResult::EndOfStream(..) => {
                return if outp == out.len() { Ok(()) } else { Err(Errno::INVAL) };
            }
            XzNextBlockResult::NeedMoreData(..) if !r.made_progress() => {
                // Input used up, or output full before the stream ended.
                return Err(Errno::INVAL);
            }
            XzNextBlockResult::NeedMoreData(..) => {}
        }
    }
}

// ---- the unpacker task ----

/// KiB of memory an image of `len` bytes takes.
fn kib(len: usize) -> u32 {
    len.div_ceil(1024).min(u32::MAX as usize) as u32
}

/// What the unpacker does next.
enum Next {
    Module(u32),
    /// The images not yet loaded take the whole budget.
    Wait(u32),
    Done,
}

impl Sched {
    /// Start the unpacker for this run, when there is something for it: a
    /// module in `.ko.xz` that the kernel decompresses itself, and memory
    /// to spare (`Kernel::unpack_budget`). Whether it started.
    pub fn start_unpacker(&'static self) -> bool {
        let k = self.kernel;
        let xz = self.plan.modules().any(|m| m.compression() == Compression::Xz);
        if !xz || !k.decompresses(Compression::Xz) {
            return false;
        }
        let budget = (k.unpack_budget() / 1024).min(u32::MAX as u64) as u32;
        if budget == 0 {
            return false;
        }
        at(self.st.ctl, UNPACK_BUDGET_KIB).store(budget, Relaxed);
        k.spawn(self, UNPACKER, at(self.st.ctl, UNPACK_TID)).is_ok()
    }

    /// End the unpacker (it stops within one chunk of its decode) and give
    /// back the images no load took (modules skipped or not reached).
    pub fn stop_unpacker(&self) {
        let st = &self.st;
        at(st.ctl, UNPACK_STOP).store(1, SeqCst);
        self.kernel.unpark(at(st.ctl, UNPACK_KIB), 1);
        let gone = self.join_word(at(st.ctl, UNPACK_TID), 1000);
        if !gone {
            // Still decoding (it runs only on idle CPUs): its image stays.
            return;
        }
        for m in 0..self.plan.module_count() as usize {
            if let Some(b) = mapping::claim(at(st.unpack_addr, m), at(st.unpack_len, m)) {
                self.image_done(b);
            }
        }
    }

    /// A worker takes module `m`: its image, if the unpacker has made it;
    /// the unpacker leaves `m` alone from now on.
    pub fn claim_image(&self, m: u32) -> Option<Buffer> {
        let st = &self.st;
        let m = m as usize;
        if at(st.unpack, m).swap(UNPACK_GONE, SeqCst) != UNPACK_BUSY {
            return None;
        }
        let b = mapping::claim(at(st.unpack_addr, m), at(st.unpack_len, m))?;
        at(st.ctl, UNPACK_USED).fetch_add(1, Relaxed);
        Some(b)
    }

    /// A load is done with an image: its memory is back in the budget.
    pub fn image_done(&self, b: Buffer) {
        let w = at(self.st.ctl, UNPACK_KIB);
        w.fetch_sub(kib(b.len()), SeqCst);
        drop(b);
        self.kernel.unpark(w, 1);
    }

    fn unpack_stopped(&self) -> bool {
        at(self.st.ctl, UNPACK_STOP).load(Relaxed) != 0 || self.st.finished(self.plan.module_count())
    }

    /// The module to unpack next: of those not started yet, in `.ko.xz`,
    /// not tried, the one the run needs soonest (the scheduler's order).
    fn next_to_unpack(&self) -> Next {
        let st = &self.st;
        let mut best: Option<(u32, (u64, u32))> = None;
        for (i, module) in self.plan.modules().enumerate() {
            let s = at(st.status, i).load(Acquire);
            if !(s == WAITING || s == READY) || at(st.unpack, i).load(Relaxed) != UNPACK_NONE {
                continue;
            }
            let flags = module.flags();
            if module.compression() != Compression::Xz
                || module.is_builtin()
                || module.is_disabled()
                || flags & (module_flags::IGNORE_MODVERSIONS | module_flags::IGNORE_VERMAGIC) != 0
            {
                continue;
            }
            let key = self.prio(i as u32);
            if best.is_none_or(|(_, b)| key > b) {
                best = Some((i as u32, key));
            }
        }
        let Some((m, _)) = best else { return Next::Done };
        let used = at(st.ctl, UNPACK_KIB).load(SeqCst);
        if used >= at(st.ctl, UNPACK_BUDGET_KIB).load(Relaxed) {
            return Next::Wait(used);
        }
        Next::Module(m)
    }

    /// The unpacker's task: images for the modules not started yet, until
    /// none is left or the run ends. Only in the idle scheduling class: at
    /// any other priority it would take CPU time from the loads.
    pub fn unpack_loop(&self) {
        let k = self.kernel;
        if !k.idle_class() {
            return;
        }
        self.name_worker(b"pm:unpack", b"");
        // Reserved, not used (NORESERVE), unless strict overcommit counts
        // it: then a smaller one (the kernel's modules_install writes 1 MiB).
        let Some(mut dict) = [DICT_MAX, 8 << 20, 1 << 20].into_iter().find_map(|n| Buffer::new(n).ok()) else { return };
        while !self.unpack_stopped() {
            match self.next_to_unpack() {
                Next::Module(m) => self.unpack_one(m, dict.bytes_mut()),
                Next::Wait(used) => k.park(at(self.st.ctl, UNPACK_KIB), used),
                Next::Done => break,
            }
        }
    }

    fn unpack_one(&self, m: u32, dict: &mut [u8]) {
        let st = &self.st;
        let k = self.kernel;
        let i = m as usize;
        let state = at(st.unpack, i);
        if state.compare_exchange(UNPACK_NONE, UNPACK_BUSY, SeqCst, Relaxed).is_err() {
            return;
        }
        let Some(module) = self.plan.module(m) else { return };
        let mut path = [0u8; 1024];
        let Ok(path) = self.file_of(module, &mut path) else {
            let _ = state.compare_exchange(UNPACK_BUSY, UNPACK_FAILED, SeqCst, Relaxed);
            return;
        };
        self.name_worker(b"pm:u:", module.name());
        let go_on = || state.load(Relaxed) == UNPACK_BUSY && !self.unpack_stopped();
        let mut call = UnpackCall { module: m, name: module.name(), path, dict, go_on: &go_on };
        match k.unpack(&mut call) {
            Ok(b) => {
                let size = kib(b.len());
                at(st.ctl, UNPACK_KIB).fetch_add(size, SeqCst);
                at(st.ctl, UNPACKED).fetch_add(1, Relaxed);
                b.offer(at(st.unpack_addr, i), at(st.unpack_len, i));
                if state.load(SeqCst) != UNPACK_BUSY {
                    // A worker took the module meanwhile, from its file.
                    if let Some(b) = mapping::claim(at(st.unpack_addr, i), at(st.unpack_len, i)) {
                        at(st.ctl, UNPACKED).fetch_sub(1, Relaxed);
                        self.image_done(b);
                    }
                }
            }
            Err(_) => {
                let _ = state.compare_exchange(UNPACK_BUSY, UNPACK_FAILED, SeqCst, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn xz(data: &[u8], dict: u32) -> Vec<u8> {
        use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
        let mut opts = LzmaOptions::new_preset(1).unwrap();
        opts.dict_size(dict);
        let mut filters = Filters::new();
        filters.lzma2(&opts);
        let stream = Stream::new_stream_encoder(&filters, Check::Crc32).unwrap();
        let mut out = Vec::new();
        let mut enc = liblzma::read::XzEncoder::new_stream(data, stream);
        std::io::Read::read_to_end(&mut enc, &mut out).unwrap();
        out
    }

    /// Something module-like: text and repeats over more than one chunk.
    fn sample(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut x = 12345u32;
        while v.len() < n {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            if x.is_multiple_of(7) {
                v.extend_from_slice(b"\x7fELF module_layout __this_module ");
            } else {
                v.push((x >> 16) as u8 & 0x3f);
            }
        }
        v.truncate(n);
        v
    }

    #[test]
    fn decodes_what_xz_writes() {
        let data = sample(600_000);
        let file = xz(&data, 1 << 20);
        assert_eq!(xz_size(&file), Some(data.len()));
        let mut out = vec![0u8; data.len()];
        let mut dict = vec![0u8; 1 << 20];
        xz_decode(&file, &mut out, &mut dict, &|| true).unwrap();
        assert!(out == data);
        // With stream padding after the footer.
        let mut padded = file.clone();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(xz_size(&padded), Some(data.len()));
    }

    #[test]
    fn refuses_what_does_not_decode() {
        let data = sample(200_000);
        let file = xz(&data, 1 << 20);
        let mut dict = vec![0u8; 1 << 20];
        // Truncated: the index is gone, and the stream ends early.
        assert_eq!(xz_size(&file[..file.len() / 2]), None);
        let mut out = vec![0u8; data.len()];
        assert_eq!(xz_decode(&file[..file.len() / 2], &mut out, &mut dict, &|| true), Err(Errno::INVAL));
        // A corrupt byte in the compressed data.
        let mut bad = file.clone();
        bad[file.len() / 3] ^= 0x55;
        assert!(xz_decode(&bad, &mut out, &mut dict, &|| true).is_err());
        // An output of the wrong size.
        let mut short = vec![0u8; data.len() - 1];
        assert_eq!(xz_decode(&file, &mut short, &mut dict, &|| true), Err(Errno::INVAL));
        let mut long = vec![0u8; data.len() + 1];
        assert_eq!(xz_decode(&file, &mut long, &mut dict, &|| true), Err(Errno::INVAL));
        // Not xz at all.
        assert_eq!(xz_size(b"\x7fELF"), None);
        assert_eq!(xz_size(&[0u8; 64]), None);
    }

    #[test]
    fn needs_the_streams_dictionary_and_stops_when_asked() {
        let data = sample(800_000);
        let file = xz(&data, 4 << 20);
        let mut out = vec![0u8; data.len()];
        let mut small = vec![0u8; 1 << 20];
        assert_eq!(xz_decode(&file, &mut out, &mut small, &|| true), Err(Errno::NOMEM));
        let mut dict = vec![0u8; 4 << 20];
        let calls = std::cell::Cell::new(0);
        let go_on = || {
            calls.set(calls.get() + 1);
            calls.get() < 3
        };
        assert_eq!(xz_decode(&file, &mut out, &mut dict, &go_on), Err(Errno::CANCELED));
        assert_eq!(calls.get(), 3);
    }
}
