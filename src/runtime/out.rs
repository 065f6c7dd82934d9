//! Formatted output without allocation: a line buffer on the stack that is
//! written with one `write(2)` per line, so lines from different tasks never
//! interleave.

use core::fmt;

use rustix::fd::BorrowedFd;

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
        let mut o = Out::new(super::mapping::stderr());
        o.kmsg = true;
        o
    }

    pub fn stdout() -> Self {
        Out::new(super::mapping::stdout())
    }

    pub fn bytes(&mut self, b: &[u8]) {
        for &c in b {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = if c == 0 { b'?' } else { c };
            self.len += 1;
        }
    }

    pub fn flush(&mut self) {
        if self.kmsg && self.len > 0 {
            let k = super::init::KMSG.load(core::sync::atomic::Ordering::Relaxed);
            if k >= 0 {
                let kfd = super::mapping::static_fd(k);
                // One record per write; "<5>" is KERN_NOTICE.
                let mut rec = [0u8; 516];
                rec[..3].copy_from_slice(b"<5>");
                rec[3..3 + self.len].copy_from_slice(&self.buf[..self.len]);
                let _ = rustix::io::write(kfd, &rec[..3 + self.len]);
            }
        }
        let mut rest = &self.buf[..self.len];
        while !rest.is_empty() {
            match rustix::io::write(self.fd, rest) {
                Ok(0) => break,
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break, // nowhere left to complain
            }
        }
        self.len = 0;
    }
}

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Bytes shown as text (names and paths from the plan are ASCII).
pub struct Show<'a>(pub &'a [u8]);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &c in self.0 {
            let c = if (b' '..0x7f).contains(&c) { c as char } else { '?' };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

/// A short description of an errno value as finit_module reports them.
pub fn errno_text(e: i32) -> &'static str {
    match e {
        1 => "operation not permitted (need CAP_SYS_MODULE, or module loading is locked)",
        2 => "no such file (module file missing from the image, or a symbol provider missing)",
        5 => "input/output error",
        8 => "exec format error (not a valid module for this kernel)",
        11 => "resource temporarily unavailable",
        12 => "out of memory",
        13 => "permission denied",
        14 => "bad address",
        16 => "device or resource busy",
        17 => "already loaded",
        19 => "no such device (the driver found no hardware)",
        22 => "invalid argument (bad parameter or module)",
        28 => "no space left",
        38 => "function not implemented",
        61 => "no data available",
        62 => "timer expired",
        95 => "operation not supported",
        110 => "timed out",
        126 => "required key not available (module signature)",
        129 => "key rejected (module signature)",
        _ => "error",
    }
}
