//! The kernel command line as /init and the modprobe personality read it:
//! `parmod.KEY=VALUE` settings, `modprobe.blacklist=a,b` and
//! `MODULE.PARAM=VALUE` module options. A view over the bytes of
//! `/proc/cmdline`; no allocation.
//!
//! Two readers, as on a real system:
//! * [`Cmdline::args`] splits and unquotes like the kernel's own parser
//!   (`next_arg()` in lib/cmdline.c, used by `parse_args()`): blanks
//!   separate arguments, a double quote toggles quoting anywhere, a leading
//!   quote and its closing one are dropped, and so are the quotes around a
//!   value. parmod's own settings are read this way.
//! * [`Cmdline::module_options`] finds `MODULE.PARAM[=VALUE]` the way kmod
//!   does (`kmod_config_parse_kcmdline()` in libkmod-config.c), since on a
//!   real system modprobe is what hands these to a loadable module: the
//!   module name is what comes before the first `.`; an argument with a
//!   quote or a blank outside its value, a second `.` before the `=`, or an
//!   `=` before any `.` is no module option; an argument quoted as a whole
//!   (`"parport.dyndbg=file x +p"`, as boot loaders pass it) becomes
//!   `dyndbg="file x +p"`, which the kernel's parser then unquotes when the
//!   module loads.
//!
//! `tests` below holds the table of cases, each with what the kernel and
//! what kmod make of it.

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

/// The blanks of kmod's command-line reader (its `switch`: ASCII only).
fn blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The kernel's `isspace()` (lib/ctype.c): kmod's blanks and 0xa0, the
/// Latin-1 no-break space, which the kernel's table marks as space too.
fn kernel_blank(c: u8) -> bool {
    blank(c) || c == 0xa0
}

/// One argument as the kernel's `next_arg()` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arg<'a> {
    pub param: &'a [u8],
    /// After the first `=` (a `=` in first position does not count, as in
    /// the kernel); None without one.
    pub value: Option<&'a [u8]>,
}

/// A module option from the command line, as kmod builds it: the text is
/// `head`, then a `"` when `requote`, then `tail` (see [`Self::parts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModParam<'a> {
    /// The module name as written (`-` and `_` alike when matched).
    pub module: &'a [u8],
    head: &'a [u8],
    requote: bool,
    tail: &'a [u8],
}

impl<'a> ModParam<'a> {
    /// The option's text in three pieces, to be written one after the other.
    pub fn parts(&self) -> [&'a [u8]; 3] {
        [self.head, if self.requote { b"\"" } else { b"" }, self.tail]
    }

    /// The option as one slice of the command line, when it is one (every
    /// option but a re-quoted one).
    pub fn contiguous(&self) -> Option<&'a [u8]> {
        (!self.requote && self.tail.is_empty()).then_some(self.head)
    }

    /// The parameter name: the text before its `=`, or all of it.
    pub fn key(&self) -> &'a [u8] {
        match self.head.iter().position(|&c| c == b'=') {
            Some(eq) => &self.head[..eq],
            None => self.head,
        }
    }

    /// The value, without kmod's re-quoting (None: a flag without `=`).
    pub fn value(&self) -> Option<&'a [u8]> {
        let eq = self.head.iter().position(|&c| c == b'=')?;
        Some(if self.requote {
            // head is `key=`, tail the value and the closing quote.
            self.tail.strip_suffix(b"\"").unwrap_or(self.tail)
        } else {
            &self.head[eq + 1..]
        })
    }

    /// Length of the text.
    pub fn len(&self) -> usize {
        self.head.len() + self.requote as usize + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write the text at the start of `out`; None when it does not fit.
    pub fn write_to(&self, out: &mut [u8]) -> Option<usize> {
        let mut at = 0;
        for p in self.parts() {
            out.get_mut(at..at + p.len())?.copy_from_slice(p);
            at += p.len();
        }
        Some(at)
    }
}

/// kmod's reading of one argument (with its quotes) as `MODULE.PARAM[=VALUE]`.
fn module_option(t: &[u8]) -> Option<ModParam<'_>> {
    #[derive(PartialEq)]
    enum State {
        Module,
        Param,
        Value,
    }
    let quoted_start = t.first() == Some(&b'"');
    let start = quoted_start as usize;
    let mut quoted = quoted_start;
    let mut state = State::Module;
    let (mut dot, mut eq) = (0, 0);
    for (i, &c) in t.iter().enumerate().skip(start) {
        match c {
            b'"' => {
                quoted = !quoted;
                if state != State::Value {
                    return None;
                }
            }
            // Inside quotes (an argument ends at the first blank outside):
            // blanks belong to a value only.
            c if blank(c) && state != State::Value => return None,
            b'.' if state == State::Module => {
                dot = i;
                state = State::Param;
            }
            b'.' if state == State::Param => return None,
            b'=' if state == State::Param => {
                eq = i;
                state = State::Value;
            }
            b'=' if state == State::Module => return None,
            _ => {}
        }
    }
    // A quote still open at the end of the line: kmod never completes it.
    if quoted || state == State::Module || dot + 1 >= t.len() {
        return None;
    }
    let module = &t[start..dot];
    Some(if quoted_start {
        // Only a value can have been quoted this way (see above).
        ModParam { module, head: &t[dot + 1..=eq], requote: true, tail: &t[eq + 1..] }
    } else {
        ModParam { module, head: &t[dot + 1..], requote: false, tail: b"" }
    })
}

impl<'a> Cmdline<'a> {
    /// Arguments as the kernel splits them: blanks separate, and a double
    /// quote (anywhere) groups until the next one. The quotes stay in the
    /// token. A NUL ends an argument too (none in /proc/cmdline).
    pub fn tokens(self) -> impl Iterator<Item = &'a [u8]> {
        self.split(kernel_blank)
    }

    /// [`Self::tokens`] with `blank` for the blanks (kmod's reader does not
    /// count 0xa0 as one).
    fn split(self, blank: fn(u8) -> bool) -> impl Iterator<Item = &'a [u8]> {
        let b = self.0;
        let mut i = 0;
        core::iter::from_fn(move || {
            while i < b.len() && (blank(b[i]) || b[i] == 0) {
                i += 1;
            }
            if i >= b.len() {
                return None;
            }
            let start = i;
            let mut quoted = false;
            while i < b.len() && b[i] != 0 && (quoted || !blank(b[i])) {
                if b[i] == b'"' {
                    quoted = !quoted;
                }
                i += 1;
            }
            Some(&b[start..i])
        })
    }

    /// Each argument as the kernel's `next_arg()` unquotes it.
    pub fn args(self) -> impl Iterator<Item = Arg<'a>> {
        self.tokens().map(|t| {
            let quoted = t.first() == Some(&b'"');
            let s = if quoted { &t[1..] } else { t };
            let mut stripped = false;
            let mut strip = |x: &'a [u8]| match x.strip_suffix(b"\"") {
                Some(y) if !stripped => {
                    stripped = true;
                    y
                }
                _ => x,
            };
            match s.iter().skip(1).position(|&c| c == b'=').map(|p| p + 1) {
                None => Arg { param: if quoted { strip(s) } else { s }, value: None },
                Some(eq) => {
                    let mut value = &s[eq + 1..];
                    if let Some(v) = value.strip_prefix(b"\"") {
                        value = strip(v);
                    }
                    if quoted {
                        value = strip(value);
                    }
                    Arg { param: &s[..eq], value: Some(value) }
                }
            }
        })
    }

    /// The value of the last `key=value` (unquoted as the kernel does).
    pub fn get(self, key: &[u8]) -> Option<&'a [u8]> {
        self.args().filter(|a| a.param == key).filter_map(|a| a.value).last()
    }

    /// The last `key=N` as a number (None when absent or not a number).
    pub fn number(self, key: &[u8]) -> Option<u32> {
        decimal(self.get(key)?)
    }

    /// Whether `modprobe.blacklist=a,b` (given any number of times) names
    /// `module`. As for kmod, it is a module option of "modprobe".
    pub fn blacklists(self, module: &[u8]) -> bool {
        self.module_options(b"modprobe")
            .filter(|o| o.key() == b"blacklist")
            .filter_map(|o| o.value())
            .any(|list| list.split(|&c| c == b',').any(|n| same_name(n, module)))
            || self.refuses(module)
            || self.list(b"rd.driver.blacklist").any(|n| same_name(n, module))
    }

    /// Whether the kernel's own `module_blacklist=a,b` names `module`: the
    /// kernel refuses to load it (EPERM), whoever asks.
    pub fn refuses(self, module: &[u8]) -> bool {
        self.list(b"module_blacklist").any(|n| same_name(n, module))
    }

    /// The names of every `key=a,b,c` on the line (systemd's
    /// `modules_load=`, dracut's `rd.driver.blacklist=`, ...), in order.
    pub fn list(self, key: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.args()
            .filter(move |a| a.param == key)
            .filter_map(|a| a.value)
            .flat_map(|v| v.split(|&c| c == b','))
            .filter(|n| !n.is_empty())
    }

    /// Each option `module.param[=value]` for `module` (`-` and `_` alike),
    /// in order, as kmod reads them (see the module documentation).
    pub fn module_options(self, module: &'a [u8]) -> impl Iterator<Item = ModParam<'a>> + 'a {
        self.split(blank).filter_map(module_option).filter(move |o| same_name(o.module, module))
    }

    /// The options of [`Self::module_options`] that are one slice of the
    /// command line. Loses the re-quoted ones (`"mod.p=a b"`): for callers
    /// that cannot assemble [`ModParam::parts`].
    pub fn module_params(self, module: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.module_options(module).filter_map(|o| o.contiguous())
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
    use super::{Arg, Cmdline};
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
        // Quoted values are unquoted, as the kernel does.
        assert_eq!(Cmdline(b"parmod.next=\"/sbin/my init\"").get(b"parmod.next"), Some(&b"/sbin/my init"[..]));
        assert_eq!(Cmdline(b"\"parmod.next=/x y\"").get(b"parmod.next"), Some(&b"/x y"[..]));
    }

    #[test]
    fn blacklist_treats_dash_and_underscore_alike() {
        let c = Cmdline(LINE);
        assert!(c.blacklists(b"floppy"));
        assert!(c.blacklists(b"pcspkr"));
        assert!(c.blacklists(b"snd_pcsp"));
        assert!(!c.blacklists(b"e1000"));
        assert!(!Cmdline(b"").blacklists(b"floppy"));
        // Quoted as a whole: the kernel's unquoting, not kmod's literal quotes.
        assert!(Cmdline(b"\"modprobe.blacklist=a,b\"").blacklists(b"a"));
        assert!(Cmdline(b"\"modprobe.blacklist=a,b\"").blacklists(b"b"));
    }

    #[test]
    fn the_kernel_splits_at_a_no_break_space_kmod_does_not() {
        // lib/ctype.c counts 0xa0 as space; kmod's reader knows ASCII blanks only.
        let c = Cmdline(b"a=1\xa0b=2 m.p=x\xa0y");
        assert_eq!(c.get(b"b"), Some(&b"2"[..]));
        assert_eq!(c.args().count(), 4);
        let p: Vec<&[u8]> = c.module_params(b"m").collect();
        assert_eq!(p, [&b"p=x\xa0y"[..]]);
    }

    #[test]
    fn the_other_blacklists_and_load_lists() {
        let c = Cmdline(b"module_blacklist=nouveau,radeon rd.driver.blacklist=pcspkr modules_load=a,b rd.modules_load=c modules_load=d,,e");
        assert!(c.refuses(b"nouveau") && c.refuses(b"radeon") && !c.refuses(b"pcspkr"));
        assert!(c.blacklists(b"nouveau"), "the kernel's list counts for parmod too");
        assert!(c.blacklists(b"pcspkr"), "dracut's");
        assert!(!c.blacklists(b"a"));
        let load: Vec<&[u8]> = c.list(b"modules_load").collect();
        assert_eq!(load, [&b"a"[..], b"b", b"d", b"e"]);
        assert_eq!(c.list(b"rd.modules_load").collect::<Vec<_>>(), [&b"c"[..]]);
    }

    #[test]
    fn module_parameters() {
        let c = Cmdline(LINE);
        let p: Vec<&[u8]> = c.module_params(b"pm_params").collect();
        assert_eq!(p, [&b"level=7"[..], &b"tag=\"two words\""[..]]);
        let e: Vec<&[u8]> = c.module_params(b"e1000").collect();
        assert_eq!(e, [&b"debug=1"[..]]);
        // BOOT_IMAGE=/vmlinuz (an `=` before any `.`) is no module option.
        assert_eq!(c.module_params(b"BOOT_IMAGE=/vmlinuz").count(), 0);
        assert_eq!(c.module_params(b"BOOT_IMAGE").count(), 0);
        assert_eq!(c.module_params(b"console").count(), 0);
    }

    #[test]
    fn quotes_group_blanks() {
        let toks: Vec<&[u8]> = Cmdline(b" a=\"x y\"  b\tc ").tokens().collect();
        assert_eq!(toks, [&b"a=\"x y\""[..], &b"b"[..], &b"c"[..]]);
    }

    /// What the kernel (`next_arg()`, for built-in parameters and parmod's
    /// own settings) and kmod (for loadable modules) make of an argument:
    /// (command line, kernel's param, kernel's value, module, kmod's option
    /// for that module or None when kmod drops it).
    #[allow(clippy::type_complexity)]
    const TABLE: &[(&[u8], &[u8], Option<&[u8]>, &[u8], Option<&[u8]>)] = &[
        (b"psmouse.proto=imps", b"psmouse.proto", Some(b"imps"), b"psmouse", Some(b"proto=imps")),
        // A quote outside the value: kmod drops it, the kernel keeps one odd parameter.
        (b"psmouse.\"invalid option\"", b"psmouse.\"invalid option\"", None, b"psmouse", None),
        // Quoted as a whole (GRUB writes it so): kmod re-quotes the value.
        (
            b"\"parport.dyndbg=file drivers/parport/ieee1284_ops.c +mpf\"",
            b"parport.dyndbg",
            Some(b"file drivers/parport/ieee1284_ops.c +mpf"),
            b"parport",
            Some(b"dyndbg=\"file drivers/parport/ieee1284_ops.c +mpf\""),
        ),
        // A quoted value: passed on with its quotes, the kernel removes them at load.
        (b"parport.dyndbg=\"file x +p\"", b"parport.dyndbg", Some(b"file x +p"), b"parport", Some(b"dyndbg=\"file x +p\"")),
        // A flag without a value.
        (b"mod.flag", b"mod.flag", None, b"mod", Some(b"flag")),
        // A second dot before the `=`: kmod drops it.
        (b"mod.a.b=1", b"mod.a.b", Some(b"1"), b"mod", None),
        // No dot: a kernel parameter, no module option.
        (b"mod=1", b"mod", Some(b"1"), b"mod", None),
        // `=` and `.` inside a value are part of it.
        (b"mod.p=a=b.c", b"mod.p", Some(b"a=b.c"), b"mod", Some(b"p=a=b.c")),
        // Quotes inside a value group blanks; the kernel keeps them (the value does not start with one).
        (b"mod.p=x\"y z\"", b"mod.p", Some(b"x\"y z\""), b"mod", Some(b"p=x\"y z\"")),
        // A quoted parameter name: kmod drops it.
        (b"mod.\"p\"=1", b"mod.\"p\"", Some(b"1"), b"mod", None),
        // `-` and `_` alike in the module name.
        (b"snd-hda-intel.model=auto", b"snd-hda-intel.model", Some(b"auto"), b"snd_hda_intel", Some(b"model=auto")),
        // An empty value.
        (b"mod.p=", b"mod.p", Some(b""), b"mod", Some(b"p=")),
        // An empty parameter name: nothing for kmod to pass.
        (b"mod.", b"mod.", None, b"mod", None),
        // A leading `=` is no separator for the kernel; kmod passes `=1` on as written.
        (b"mod.=1", b"mod.", Some(b"1"), b"mod", Some(b"=1")),
        // A quote left open to the end of the line: kmod never completes it.
        (b"\"mod.p=1 2", b"mod.p", Some(b"1 2"), b"mod", None),
    ];

    #[test]
    fn kernel_and_kmod_readings_of_each_case() {
        for &(line, param, value, module, kmod) in TABLE {
            let c = Cmdline(line);
            let args: Vec<Arg> = c.args().collect();
            assert_eq!(args, [Arg { param, value }], "kernel reading of {:?}", core::str::from_utf8(line));
            let opts: Vec<Vec<u8>> = c.module_options(module).map(|o| o.parts().concat()).collect();
            let want: Vec<Vec<u8>> = kmod.iter().map(|k| k.to_vec()).collect();
            assert_eq!(opts, want, "kmod reading of {:?}", core::str::from_utf8(line));
            for o in c.module_options(module) {
                let mut buf = [0u8; 128];
                let n = o.write_to(&mut buf).unwrap();
                assert_eq!(&buf[..n], &o.parts().concat()[..]);
                assert_eq!(n, o.len());
                assert!(o.write_to(&mut buf[..n - 1]).is_none());
            }
        }
    }

    #[test]
    fn options_in_a_whole_line() {
        let line = b"quiet \"parport.dyndbg=file x +p\" parport.irq=7\tpsmouse.\"bad one\" psmouse.rate=100\n";
        let c = Cmdline(line);
        let parport: Vec<Vec<u8>> = c.module_options(b"parport").map(|o| o.parts().concat()).collect();
        assert_eq!(parport, [&b"dyndbg=\"file x +p\""[..], &b"irq=7"[..]]);
        // The slice-only reader keeps what is one slice of the line.
        assert_eq!(c.module_params(b"parport").collect::<Vec<_>>(), [&b"irq=7"[..]]);
        let o = c.module_options(b"parport").next().unwrap();
        assert_eq!((o.key(), o.value()), (&b"dyndbg"[..], Some(&b"file x +p"[..])));
        assert_eq!(c.module_params(b"psmouse").collect::<Vec<_>>(), [&b"rate=100"[..]]);
        assert_eq!(c.args().count(), 5);
    }
}
