//! The kernel command line as /init and the modprobe personality read it:
//! `parmod.KEY=VALUE` settings, `modprobe.blacklist=a,b` and
//! `MODULE.PARAM=VALUE` module options. A view over the bytes of
//! `/proc/cmdline`; no allocation.

use crate::plan::same_name;

#[derive(Clone, Copy)]
pub struct Cmdline<'a>(pub &'a [u8]);

/// A whole decimal number of 1 to 9 digits (so it fits a u32), as parmod
/// reads them from its command line and the kernel's.
pub fn decimal(v: &[u8]) -> Option<u32> {
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u32, |n, &c| n * 10 + (c - b'0') as u32))
}

impl<'a> Cmdline<'a> {
    /// Tokens separated by blanks; double quotes group (`tag="a b"`) and
    /// stay in the token (the kernel's module parameter parser removes them).
    pub fn tokens(self) -> impl Iterator<Item = &'a [u8]> {
        let b = self.0;
        let mut i = 0;
        core::iter::from_fn(move || {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == 0) {
                i += 1;
            }
            if i >= b.len() {
                return None;
            }
            let start = i;
            let mut quoted = false;
            while i < b.len() && b[i] != 0 && (quoted || !b[i].is_ascii_whitespace()) {
                if b[i] == b'"' {
                    quoted = !quoted;
                }
                i += 1;
            }
            Some(&b[start..i])
        })
    }

    /// The value of the last `key=value`.
    pub fn get(self, key: &[u8]) -> Option<&'a [u8]> {
        self.tokens().filter_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix(b"="))).last()
    }

    /// The last `key=N` as a number (None when absent or not a number).
    pub fn number(self, key: &[u8]) -> Option<u32> {
        decimal(self.get(key)?)
    }

    /// Whether `modprobe.blacklist=a,b` (given any number of times) names `module`.
    pub fn blacklists(self, module: &[u8]) -> bool {
        self.tokens()
            .filter_map(|t| t.strip_prefix(b"modprobe.blacklist="))
            .any(|list| list.split(|&c| c == b',').any(|n| same_name(n, module)))
    }

    /// Each `param=value` given as `module.param=value`, in order.
    pub fn module_params(self, module: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.tokens().filter_map(move |t| {
            let dot = t.iter().position(|&c| c == b'.')?;
            if t[..dot].contains(&b'=') || !same_name(&t[..dot], module) || dot + 1 >= t.len() {
                return None;
            }
            Some(&t[dot + 1..])
        })
    }
}

/// Room for the kernel command line (COMMAND_LINE_SIZE is 2048 on x86 and
/// 4096 on some other architectures).
pub const CMDLINE_MAX: usize = 4096;

/// The kernel command line, read once and kept (in the run context, without
/// a heap).
pub struct CmdlineBuf {
    buf: [u8; CMDLINE_MAX],
    len: usize,
}

impl CmdlineBuf {
    pub const fn empty() -> Self {
        CmdlineBuf { buf: [0; CMDLINE_MAX], len: 0 }
    }

    /// Fill the buffer with `read`, which returns how many bytes it wrote.
    pub fn read_with(read: impl FnOnce(&mut [u8]) -> usize) -> Self {
        let mut c = CmdlineBuf::empty();
        c.len = read(&mut c.buf).min(CMDLINE_MAX);
        c
    }

    pub fn view(&self) -> Cmdline<'_> {
        Cmdline(&self.buf[..self.len])
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Cmdline;
    use std::vec::Vec;

    const LINE: &[u8] = b"BOOT_IMAGE=/vmlinuz console=ttyS0 parmod.jobs=4 pm_params.level=7 \
pm-params.tag=\"two words\" modprobe.blacklist=floppy,pcspkr parmod.next=/bin/sh \
modprobe.blacklist=snd-pcsp parmod.jobs=x8 e1000.debug=1\n";

    #[test]
    fn settings() {
        let c = Cmdline(LINE);
        assert_eq!(c.get(b"parmod.next"), Some(&b"/bin/sh"[..]));
        assert_eq!(c.get(b"console"), Some(&b"ttyS0"[..]));
        assert_eq!(c.get(b"parmod.plan"), None);
        // The last one wins, and it is not a number.
        assert_eq!(c.number(b"parmod.jobs"), None);
        assert_eq!(Cmdline(b"parmod.jobs=4").number(b"parmod.jobs"), Some(4));
        assert_eq!(Cmdline(b"parmod.jobs=").number(b"parmod.jobs"), None);
        // A key is matched whole, not as a prefix of a longer key.
        assert_eq!(Cmdline(b"parmod.jobsx=3").get(b"parmod.jobs"), None);
    }

    #[test]
    fn blacklist_treats_dash_and_underscore_alike() {
        let c = Cmdline(LINE);
        assert!(c.blacklists(b"floppy"));
        assert!(c.blacklists(b"pcspkr"));
        assert!(c.blacklists(b"snd_pcsp"));
        assert!(!c.blacklists(b"e1000"));
        assert!(!Cmdline(b"").blacklists(b"floppy"));
    }

    #[test]
    fn module_parameters() {
        let c = Cmdline(LINE);
        let p: Vec<&[u8]> = c.module_params(b"pm_params").collect();
        assert_eq!(p, [&b"level=7"[..], &b"tag=\"two words\""[..]]);
        let e: Vec<&[u8]> = c.module_params(b"e1000").collect();
        assert_eq!(e, [&b"debug=1"[..]]);
        // `parmod.*` belongs to parmod itself, not to a module called "parmod"
        // in practice, but BOOT_IMAGE=/vmlinuz must never count as a parameter.
        assert_eq!(c.module_params(b"BOOT_IMAGE=/vmlinuz").count(), 0);
        assert_eq!(c.module_params(b"console").count(), 0);
    }

    #[test]
    fn quotes_group_blanks() {
        let toks: Vec<&[u8]> = Cmdline(b" a=\"x y\"  b\tc ").tokens().collect();
        assert_eq!(toks, [&b"a=\"x y\""[..], &b"b"[..], &b"c"[..]]);
    }
}
