//! The kernel command line, against two reference readings written from
//! the sources they follow (not from parmod's): the kernel's `next_arg()`
//! (lib/cmdline.c, Linux 6.1; `isspace()` of lib/ctype.c), and kmod's
//! `kmod_config_parse_kcmdline()` (libkmod/libkmod-config.c, kmod 30), each
//! a byte-by-byte state machine over a NUL-terminated copy, as they are.

use parmod::cmdline::Cmdline;
use parmod::plan::same_name;
use parmod::runtime::kernel::merge_params;

/// The kernel's `isspace()` (lib/ctype.c: `_S` is set for 9-13, 32 and 160).
pub fn kernel_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0)
}

/// A NUL-terminated C string starting at `at`.
fn c_str(b: &[u8], at: usize) -> Vec<u8> {
    let end = b[at..].iter().position(|&c| c == 0).map_or(b.len(), |e| at + e);
    b[at..end].to_vec()
}

/// `parse_args()`'s loop over `next_arg()`: each argument's param and value.
pub fn kernel_args(line: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut a: Vec<u8> = line.to_vec();
    a.push(0);
    let mut out = Vec::new();
    let mut args = 0;
    while kernel_space(a[args]) {
        args += 1;
    }
    while a[args] != 0 {
        let (mut in_quote, mut quoted) = (false, false);
        if a[args] == b'"' {
            args += 1;
            in_quote = true;
            quoted = true;
        }
        let (mut i, mut equals) = (0usize, 0usize);
        while a[args + i] != 0 {
            if kernel_space(a[args + i]) && !in_quote {
                break;
            }
            if equals == 0 && a[args + i] == b'=' {
                equals = i;
            }
            if a[args + i] == b'"' {
                in_quote = !in_quote;
            }
            i += 1;
        }
        let param = args;
        let mut val = None;
        if equals != 0 {
            a[args + equals] = 0;
            let mut v = args + equals + 1;
            if a[v] == b'"' {
                v += 1;
                if a[args + i - 1] == b'"' {
                    a[args + i - 1] = 0;
                }
            }
            val = Some(v);
        }
        if quoted && i > 0 && a[args + i - 1] == b'"' {
            a[args + i - 1] = 0;
        }
        let next = if a[args + i] != 0 {
            a[args + i] = 0;
            args + i + 1
        } else {
            args + i
        };
        out.push((c_str(&a, param), val.map(|v| c_str(&a, v))));
        args = next;
        while kernel_space(a[args]) {
            args += 1;
        }
    }
    out
}

/// What kmod takes from the command line: `(module, option text)` pairs in
/// order, and the names `modprobe.blacklist=` gives.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KmodReading {
    pub options: Vec<(Vec<u8>, Vec<u8>)>,
    /// Each `modprobe.blacklist=` list (kmod blacklists every name between
    /// its commas), and whether kmod re-quoted it (given as
    /// `"modprobe.blacklist=a,b"`, it reads `"a,b"`).
    pub blacklists: Vec<(Vec<u8>, bool)>,
}

/// kmod's `underscores()` (shared/util.c): `-` to `_` outside `[...]`;
/// None for a `]` without `[` or an unterminated `[`.
pub(crate) fn underscores(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = s.to_vec();
    let mut i = 0;
    while i < out.len() {
        match out[i] {
            b'-' => out[i] = b'_',
            b']' => return None,
            b'[' => {
                i += out[i..].iter().position(|&c| c == b']')?;
            }
            _ => {}
        }
        i += 1;
    }
    Some(out)
}

pub fn kmod_reading(line: &[u8]) -> KmodReading {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Ignore,
        Modname,
        Param,
        Value,
        Complete,
    }
    let mut b: Vec<u8> = line.to_vec();
    b.push(0);
    let mut out = KmodReading::default();
    let mut st = St::Modname;
    let (mut modname, mut param, mut value) = (0usize, None::<usize>, None::<usize>);
    let mut quote_start: Option<usize> = None;
    let mut is_quoted = false;
    let mut p = 0usize;
    let mut iter = true;
    while iter {
        match b[p] {
            b'"' => {
                is_quoted = !is_quoted;
                if is_quoted && st == St::Modname && p == modname {
                    quote_start = Some(p);
                    modname = p + 1;
                } else if st != St::Value {
                    st = St::Ignore;
                }
            }
            c @ (0 | b' ' | b'\n' | b'\t' | 0x0b | 0x0c | b'\r') => {
                if c == 0 {
                    iter = false;
                }
                if is_quoted && st == St::Value {
                } else if is_quoted {
                    st = St::Ignore;
                } else if st == St::Value || st == St::Param {
                    b[p] = 0;
                    st = St::Complete;
                } else {
                    modname = p + 1;
                    st = St::Modname;
                    quote_start = None;
                }
            }
            b'.' => {
                if st == St::Modname {
                    b[p] = 0;
                    param = Some(p + 1);
                    st = St::Param;
                } else if st == St::Param {
                    st = St::Ignore;
                }
            }
            b'=' => {
                if st == St::Param {
                    value = Some(p + 1);
                    st = St::Value;
                } else if st == St::Modname {
                    st = St::Ignore;
                }
            }
            _ => {}
        }
        if st == St::Complete {
            let (mut m, mut pa, mut v) = (modname, param.unwrap_or(0), value.unwrap_or(0));
            let requote = quote_start.filter(|&q| q < modname && value.is_some_and(|v| v > modname));
            if let Some(q) = requote {
                // Move "modname\0param=" one to the left over the quote
                // and put the quote back before the value.
                b.copy_within(m..v, q);
                v -= 1;
                m -= 1;
                pa -= 1;
                b[v] = b'"';
            }
            let name = c_str(&b, m);
            let text = c_str(&b, pa);
            if name == b"modprobe" && text.starts_with(b"blacklist=") {
                out.blacklists.push((c_str(&b, v), requote.is_some()));
            } else if let Some(n) = underscores(&name) {
                let text = text.iter().map(|&c| if c == b'\t' { b' ' } else { c }).collect();
                out.options.push((n, text));
            }
            modname = p + 1;
            st = St::Modname;
            quote_start = None;
        }
        p += 1;
    }
    out
}

/// Check parmod's readings of `line` against the reference ones.
pub fn check(line: &[u8]) {
    // /proc/cmdline holds no NUL; kmod reads at most 4095 bytes of it.
    let line = &line[..line.iter().position(|&c| c == 0).unwrap_or(line.len()).min(4095)];
    let c = Cmdline(line);

    let ours: Vec<(Vec<u8>, Option<Vec<u8>>)> = c.args().map(|a| (a.param.to_vec(), a.value.map(<[u8]>::to_vec))).collect();
    assert_eq!(ours, kernel_args(line), "arguments (the kernel's next_arg)");

    let kmod = kmod_reading(line);
    // Module names to ask for: every name either reading found, without
    // the brackets no module name has.
    let mut names: Vec<Vec<u8>> = kmod.options.iter().map(|o| o.0.clone()).collect();
    names.extend(c.tokens().filter_map(|t| {
        let t = t.strip_prefix(b"\"").unwrap_or(t);
        Some(t[..t.iter().position(|&x| x == b'.')?].to_vec())
    }));
    names.retain(|n| !n.is_empty() && n != b"modprobe" && !n.contains(&b'[') && !n.contains(&b']'));
    names.sort();
    names.dedup();
    for name in &names {
        let mut ours: Vec<Vec<u8>> = Vec::new();
        for o in c.module_options(name) {
            let mut buf = vec![0u8; o.len()];
            assert_eq!(o.write_to(&mut buf), Some(o.len()));
            assert_eq!(buf, o.parts().concat());
            assert_eq!(o.key(), &buf[..buf.iter().position(|&x| x == b'=').unwrap_or(buf.len())]);
            ours.push(buf);
        }
        // kmod keeps an empty option ("mod." alone); parmod drops it, which
        // hands the module the same parameters.
        let theirs: Vec<Vec<u8>> =
            kmod.options.iter().filter(|o| same_name(&o.0, name) && !o.1.is_empty()).map(|o| o.1.clone()).collect();
        let untabbed: Vec<Vec<u8>> = ours.iter().map(|o| o.iter().map(|&c| if c == b'\t' { b' ' } else { c }).collect()).collect();
        assert_eq!(untabbed, theirs, "options for module {:?} (kmod's reading)", String::from_utf8_lossy(name));
        // What the module is given: kmod's options one after the other.
        let mut buf = vec![0u8; 2 * line.len() + 2];
        let merged = merge_params(&mut buf, b"", c.module_options(name)).expect("room for every option");
        assert_eq!(merged.to_bytes(), theirs.join(&b' '), "parameters of module {:?}", String::from_utf8_lossy(name));
    }
    let ours: Vec<Vec<u8>> = c
        .module_options(b"modprobe")
        .filter(|o| o.key() == b"blacklist")
        .filter_map(|o| o.value().map(<[u8]>::to_vec))
        .flat_map(|v| v.split(|&x| x == b',').map(<[u8]>::to_vec).collect::<Vec<_>>())
        .collect();
    // kmod's names; where kmod re-quoted a list, it takes the quotes for
    // part of its first and last names: parmod reads the list as written.
    let theirs: Vec<Vec<u8>> = kmod
        .blacklists
        .iter()
        .map(|(l, requoted)| match requoted {
            true => l.strip_prefix(b"\"").map(|x| x.strip_suffix(b"\"").unwrap_or(x)).unwrap_or(l),
            false => &l[..],
        })
        .flat_map(|l| l.split(|&x| x == b',').map(<[u8]>::to_vec).collect::<Vec<_>>())
        .collect();
    assert_eq!(ours, theirs, "modprobe.blacklist= names (kmod's reading)");
    for n in ours.iter().chain(&names) {
        let listed = c.list(b"module_blacklist").chain(c.list(b"rd.driver.blacklist")).any(|x| same_name(x, n))
            || theirs.iter().any(|x| same_name(x, n));
        assert_eq!(c.blacklists(n), listed, "blacklists({:?})", String::from_utf8_lossy(n));
    }

    // list(): the comma-separated names of every key=value, in order.
    for key in [&b"modules_load"[..], b"rd.driver.blacklist", b"module_blacklist"] {
        let ours: Vec<&[u8]> = c.list(key).collect();
        let args = kernel_args(line);
        let theirs: Vec<&[u8]> = args
            .iter()
            .filter(|a| a.0 == key)
            .filter_map(|a| a.1.as_deref())
            .flat_map(|v| v.split(|&x| x == b','))
            .filter(|n| !n.is_empty())
            .collect();
        assert_eq!(ours, theirs, "list({:?})", String::from_utf8_lossy(key));
    }

    // root= and its companions: an error names one of them and says why.
    match parmod::blockid::RootSpec::parse(c) {
        Ok(spec) => {
            let _ = spec.fstypes().count();
            let _ = spec.wait_ms();
            if let Some(flags) = spec.flags {
                let mut data = [0u8; 256];
                if let Some((_, len)) = parmod::blockid::mount_options(flags, 0, &mut data) {
                    assert!(len <= data.len());
                }
            }
        }
        Err(e) => {
            assert!(!e.why.is_empty());
            assert!([&b"root"[..], b"rootwait", b"rootdelay"].contains(&e.param), "error names {:?}", e.param);
        }
    }
}
