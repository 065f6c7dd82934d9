//! Formatted output without allocation: a line buffer on the stack that is
//! written with one `write(2)` per line, so lines from different tasks never
//! interleave. In /init mode messages on stderr are copied to /dev/kmsg too.

use crate::plan::{MessageSink, PlanError};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

use super::mapping::{stdio, Stdio};
use super::sync::SetOnce;

/// /dev/kmsg once opened (/init mode): messages on stderr are copied there
/// so they land in the kernel log.
pub static KMSG: SetOnce<OwnedFd> = SetOnce::new();

/// Write the pieces to an [`Out`]: `emit!(o, "text", number, Show(bytes), ...)`.
/// Plain calls instead of `core::fmt` keep the binary small.
macro_rules! emit {
    ($o:expr $(, $part:expr)* $(,)?) => {{
        let out: &mut $crate::runtime::out::Out = &mut $o;
        $( $crate::runtime::out::Part::put(&$part, out); )*
    }};
}
pub(crate) use emit;

pub struct Out {
    fd: BorrowedFd<'static>,
    buf: [u8; 512],
    len: usize,
    /// Copy each flush to /dev/kmsg too (messages on stderr in /init mode).
    kmsg: bool,
}

impl Out {
    pub fn new(fd: BorrowedFd<'static>) -> Self {
        Out { fd, buf: [0; 512], len: 0, kmsg: false }
    }

    pub fn stderr() -> Self {
        let mut o = Out::new(stdio(Stdio::Err));
        o.kmsg = true;
        o
    }

    pub fn stdout() -> Self {
        Out::new(stdio(Stdio::Out))
    }

    #[inline(never)]
    pub fn bytes(&mut self, b: &[u8]) {
        for &c in b {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = if c == 0 { b'?' } else { c };
            self.len += 1;
        }
    }

    #[inline(never)]
    pub fn flush(&mut self) {
        if let Some(k) = KMSG.get().filter(|_| self.kmsg && self.len > 0) {
            // One record per write; "<5>" is KERN_NOTICE.
            let mut rec = [0u8; 516];
            rec[..3].copy_from_slice(b"<5>");
            rec[3..3 + self.len].copy_from_slice(&self.buf[..self.len]);
            let _ = rustix::io::write(k.as_fd(), &rec[..3 + self.len]);
        }
        // A failed write has nowhere left to complain to.
        let _ = write_all(self.fd, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl Out {
    #[inline(never)]
    pub fn num(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        self.bytes(decimal(&mut digits, n));
    }
}

/// `n` in decimal, in the tail of `buf`.
#[inline(never)]
pub fn decimal(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

impl MessageSink for Out {
    fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn number(&mut self, n: u64) {
        self.num(n);
    }
}

/// One piece of a message.
pub trait Part {
    fn put(&self, o: &mut Out);
}

impl Part for &str {
    #[inline(always)]
    fn put(&self, o: &mut Out) {
        o.bytes(self.as_bytes());
    }
}

macro_rules! unsigned_part {
    ($($t:ty),*) => {$(
        impl Part for $t {
            #[inline(always)]
            fn put(&self, o: &mut Out) {
                o.num(*self as u64);
            }
        }
    )*};
}
unsigned_part!(u8, u16, u32, u64, usize);

impl Part for i32 {
    fn put(&self, o: &mut Out) {
        if *self < 0 {
            o.bytes(b"-");
        }
        o.num(self.unsigned_abs() as u64);
    }
}

impl Part for PlanError {
    fn put(&self, o: &mut Out) {
        self.explain(o);
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Write all of `b`, retrying after signals; an error or a zero-length
/// write ends it with an error.
pub fn write_all(fd: BorrowedFd<'_>, mut b: &[u8]) -> Result<(), rustix::io::Errno> {
    while !b.is_empty() {
        match rustix::io::write(fd, b) {
            Ok(0) => return Err(rustix::io::Errno::IO),
            Ok(n) => b = &b[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Bytes shown as text (names and paths from the plan are ASCII).
pub struct Show<'a>(pub &'a [u8]);

impl Part for Show<'_> {
    #[inline(never)]
    fn put(&self, o: &mut Out) {
        for &c in self.0 {
            o.bytes(&[if (b' '..0x7f).contains(&c) { c } else { b'?' }]);
        }
    }
}

/// An errno value as a message part: its name (and hint), then "(errno N)".
pub struct Sys(pub i32);

impl Part for Sys {
    fn put(&self, o: &mut Out) {
        o.bytes(errno_text(self.0).as_bytes());
        o.bytes(b" (errno ");
        o.num(self.0 as u64);
        o.bytes(b")");
    }
}

impl From<rustix::io::Errno> for Sys {
    fn from(e: rustix::io::Errno) -> Sys {
        Sys(e.raw_os_error())
    }
}

/// The name of an errno value (every one the system calls here can
/// return), with a hint where the name alone says little.
pub fn errno_text(e: i32) -> &'static str {
    match e {
        1 => "EPERM (need CAP_SYS_MODULE, or loading is locked)",
        2 => "ENOENT (file or needed symbol missing)",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO (read error)",
        6 => "ENXIO",
        7 => "E2BIG (too long)",
        8 => "ENOEXEC (not a module for this kernel)",
        9 => "EBADF",
        10 => "ECHILD",
        11 => "EAGAIN (out of processes or memory: RLIMIT_NPROC?)",
        12 => "ENOMEM (out of memory)",
        13 => "EACCES (permission denied)",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        19 => "ENODEV (no such device)",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL (bad parameter or module)",
        23 => "ENFILE (the system's file table is full)",
        24 => "EMFILE (too many open files: RLIMIT_NOFILE?)",
        26 => "ETXTBSY (module file is being written)",
        27 => "EFBIG",
        28 => "ENOSPC",
        30 => "EROFS",
        34 => "ERANGE",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS (not supported by this kernel)",
        40 => "ELOOP",
        61 => "ENODATA",
        62 => "ETIME",
        74 => "EBADMSG (module signature or format)",
        75 => "EOVERFLOW",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        105 => "ENOBUFS",
        110 => "ETIMEDOUT",
        123 => "ENOMEDIUM",
        126 => "ENOKEY (module signature: key not found)",
        127 => "EKEYEXPIRED (module signature)",
        128 => "EKEYREVOKED (module signature)",
        129 => "EKEYREJECTED (module signature)",
        _ => "error",
    }
}
