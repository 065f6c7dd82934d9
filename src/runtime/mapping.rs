//! The memory parmod uses, all from `mmap`: the plan (mapped, or copied), the one
//! anonymous mapping that holds every piece of run-time state (as atomics),
//! worker stacks with guard pages, unpacked module images ([`Buffer`]), and
//! the process arguments; and the
//! standard descriptors. The unsafe conversions from raw mappings and
//! numbers to Rust references live here, each with the reason it is sound.
#![allow(unsafe_code)]

use core::ffi::{c_char, CStr};
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, MprotectFlags, ProtFlags};

/// Map `len` bytes of `fd` read-only and private for the rest of the
/// process. The pages stay the file's: truncating the file while it is
/// mapped makes the next access to a page past its new end fail with
/// SIGBUS (see [`copy_file`]).
pub fn map_file(fd: BorrowedFd<'_>, len: usize) -> Result<&'static [u8], Errno> {
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: a fresh private read-only mapping; it is never unmapped, so the
    // slice is valid for 'static.
    unsafe {
        let p = mm::mmap(ptr::null_mut(), len, ProtFlags::READ, MapFlags::PRIVATE, fd.as_fd(), 0)?;
        Ok(core::slice::from_raw_parts(p as *const u8, len))
    }
}

/// Read `len` bytes of `fd` into memory of our own (an anonymous mapping,
/// made read-only once filled). Nothing another process does to the file
/// afterwards can reach us: no SIGBUS, which PID 1 would not survive.
/// EIO when the file is shorter than `len` by the time it is read.
pub fn copy_file(fd: BorrowedFd<'_>, len: usize) -> Result<&'static [u8], Errno> {
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: a fresh anonymous mapping of `len` bytes that nothing else
    // refers to: we fill it through the only reference, then make it
    // read-only and hand out a shared view for 'static (never unmapped).
    unsafe {
        let p = mm::mmap_anonymous(ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)?;
        read_exact(fd, core::slice::from_raw_parts_mut(p as *mut u8, len))?;
        mm::mprotect(p, len, MprotectFlags::READ)?;
        Ok(core::slice::from_raw_parts(p as *const u8, len))
    }
}

/// Fill `buf` from `fd`'s current offset; EIO when the file ends first.
pub fn read_exact(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(), Errno> {
    let mut at = 0;
    while at < buf.len() {
        match rustix::io::read(fd, &mut buf[at..]) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => at += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One anonymous mapping holding `n64` `AtomicU64` followed by `n32`
/// `AtomicU32`, all zero. Never unmapped.
pub fn map_state(n64: usize, n32: usize) -> Result<(&'static [AtomicU64], &'static [AtomicU32]), Errno> {
    let len = n64
        .checked_mul(8)
        .and_then(|a| n32.checked_mul(4).and_then(|b| a.checked_add(b)))
        .ok_or(Errno::NOMEM)?
        .max(1);
    // SAFETY: a fresh anonymous mapping is zero-filled and page aligned, and
    // zero is a valid value of every atomic integer; the two slices do not
    // overlap (u64 part first, so it is 8-byte aligned). Atomics may be
    // shared by every task of the address space. Never unmapped.
    unsafe {
        let p = mm::mmap_anonymous(ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)?;
        let a = core::slice::from_raw_parts(p as *const AtomicU64, n64);
        let b = core::slice::from_raw_parts((p as *const u8).add(n64 * 8) as *const AtomicU32, n32);
        Ok((a, b))
    }
}

/// Give back a mapping of [`map_state`] whose `AtomicU64` part starts at
/// `base`: for a process that runs many plans one after the other (the
/// fake kernel's callers); the runtime itself never unmaps its state.
///
/// # Safety
/// `base`, `n64` and `n32` are those of one `map_state` call, and nothing
/// uses any part of that mapping any more (no task runs on it; every
/// reference into it is dead).
#[cfg(any(test, feature = "fake"))]
pub unsafe fn unmap_state(base: *const AtomicU64, n64: usize, n32: usize) {
    let len = (n64 * 8 + n32 * 4).max(1);
    // SAFETY: by the contract above, the range is one mapping of ours that
    // nothing refers to.
    let _ = unsafe { mm::munmap(base as *mut core::ffi::c_void, len) };
}

/// A worker stack: `size` usable bytes above one inaccessible guard page.
/// Returns the 16-byte aligned top. Never unmapped (a stuck worker keeps
/// using its stack after parmod has reported it).
pub fn map_stack(size: usize) -> Result<*mut u8, Errno> {
    const GUARD: usize = 4096;
    let size = (size + 4095) & !4095;
    // SAFETY: a fresh anonymous mapping; the lowest page is then made
    // inaccessible so an overflow faults instead of corrupting memory.
    unsafe {
        let p = mm::mmap_anonymous(
            ptr::null_mut(),
            size + GUARD,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE | MapFlags::NORESERVE | MapFlags::STACK,
        )?;
        mm::mprotect(p, GUARD, MprotectFlags::empty())?;
        Ok((p as *mut u8).add(size + GUARD))
    }
}

/// Memory of our own that is given back: an unpacked module's image, or a
/// decoder's dictionary. An anonymous mapping of `len` bytes, reserved
/// (NORESERVE) and zero until written; pages cost memory once touched.
pub struct Buffer {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a Buffer owns its mapping alone (nothing else refers to it), so it
// may move to another task of the address space.
unsafe impl Send for Buffer {}

impl Buffer {
    pub fn new(len: usize) -> Result<Buffer, Errno> {
        if len == 0 {
            return Err(Errno::INVAL);
        }
        // SAFETY: a fresh anonymous mapping that only this Buffer refers to.
        let p = unsafe {
            mm::mmap_anonymous(ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE | MapFlags::NORESERVE)?
        };
        Ok(Buffer { ptr: p as *mut u8, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes owned by
        // self; the borrow ends before the mapping can (Drop).
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the view unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Hand the buffer to another task through a slot of two words (see
    /// [`claim`]); the slot must be empty (address 0).
    pub fn offer(self, addr: &AtomicU64, len: &AtomicU64) {
        len.store(self.len as u64, SeqCst);
        addr.store(self.ptr as u64, SeqCst);
        core::mem::forget(self);
    }
}

/// Take the buffer offered in a slot, if any; the slot is empty afterwards.
pub fn claim(addr: &AtomicU64, len: &AtomicU64) -> Option<Buffer> {
    let p = addr.swap(0, SeqCst);
    // SAFETY: a nonzero address was stored by `Buffer::offer`, which gave up
    // that Buffer (forget); the swap hands it to exactly one claimer, and
    // the length was stored before the address.
    (p != 0).then(|| Buffer { ptr: p as *mut u8, len: len.load(SeqCst) as usize })
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: our own mapping, and no view of it outlives `self`.
        let _ = unsafe { mm::munmap(self.ptr as *mut core::ffi::c_void, self.len) };
    }
}

/// The process arguments as C strings.
#[derive(Clone, Copy)]
pub struct Args {
    argc: usize,
    argv: *const *const c_char,
}

impl Args {
    /// # Safety
    /// `argv` must hold `argc` valid NUL-terminated strings that live as long
    /// as the process (as the C runtime passes them to `main`).
    pub unsafe fn new(argc: i32, argv: *const *const c_char) -> Self {
        Args { argc: argc.max(0) as usize, argv }
    }

    pub fn get(&self, i: usize) -> Option<&'static CStr> {
        if i >= self.argc || self.argv.is_null() {
            return None;
        }
        // SAFETY: by the contract of `new`, argv[0..argc] are valid strings
        // for the life of the process.
        unsafe {
            let p = *self.argv.add(i);
            (!p.is_null()).then(|| CStr::from_ptr(p))
        }
    }
}

/// Standard output or standard error.
pub enum Stdio {
    Out = 1,
    Err = 2,
}

/// Descriptor 1 or 2. The runtime's entry (`runtime::run`) opens /dev/null
/// on any of 0-2 that is closed before anything else, and nothing closes
/// them, so they stay valid for the whole run.
pub fn stdio(which: Stdio) -> BorrowedFd<'static> {
    // SAFETY: see above; the worst case (called before that, e.g. by the
    // panic handler of a process started with fd 2 closed) is a write that
    // fails with EBADF, since a borrowed descriptor is never closed.
    unsafe { BorrowedFd::borrow_raw(which as i32) }
}

/// Whether descriptor `fd` is open.
pub fn fd_is_open(fd: i32) -> bool {
    // SAFETY: only used to ask the kernel about the descriptor number; an
    // invalid number gives EBADF, nothing is read or closed.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(b).is_ok()
}
