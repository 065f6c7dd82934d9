//! The binary load plan: constants and record layouts shared by the compiler
//! (which writes plans) and the runtime (which reads them without allocating).
//!
//! The layout is documented in `docs/plan-format.md`; every number here is
//! little-endian and every record has a fixed size.

mod crc;
#[cfg(feature = "host")]
pub mod fasthash;
mod reader;
pub mod trace;
#[cfg(feature = "host")]
mod writer;

pub use crc::crc32c;
pub use reader::{Alias, Edge, KernelAliases, MessageSink, Module, Plan, PlanError, DeviceWait};
#[cfg(feature = "host")]
pub use writer::{ModuleSpec, PlanBuilder, DeviceWaitSpec};

/// First eight bytes of every plan.
pub const MAGIC: [u8; 8] = *b"PARMODPL";
/// The only format version this code reads and writes.
pub const VERSION: u32 = 4;

pub const HEADER_SIZE: usize = 128;
pub const MODULE_RECORD_SIZE: usize = 80;
pub const WAIT_RECORD_SIZE: usize = 24;
pub const ALIAS_RECORD_SIZE: usize = 8;
pub const EDGE_SIZE: usize = 4;

/// "No string" / "no module" marker in u32 fields.
pub const NONE: u32 = u32::MAX;

/// Most worker tasks a plan may ask for.
pub const MAX_PLAN_JOBS: u32 = 4096;

/// Bit set in an entry of a `deps` or `dependents` list when the edge is
/// a hard dependency (from modules.dep): failure of the dependency skips the
/// dependent. Without it the edge is a soft dependency: it only orders.
pub const EDGE_HARD: u32 = 1 << 31;
/// Bit set on a soft edge "M depends on X" when M is in the plan because of
/// X's `post:` soft dependencies: M is one of them, or a dependency (hard or
/// `pre:`) of one that nothing else needs. Never together with `EDGE_HARD`.
/// See [`module_flags::POST_ONLY`].
pub const EDGE_POST: u32 = 1 << 30;
/// Both edge bits: what is left of an entry without them is a module index.
pub const EDGE_BITS: u32 = EDGE_HARD | EDGE_POST;
/// Largest module count a plan may hold (indices must fit beside the edge bits).
pub const MAX_MODULES: u32 = (1 << 30) - 1;

/// Module flags.
pub mod module_flags {
    /// Built into the kernel: satisfied, never loaded.
    pub const BUILTIN: u32 = 1 << 0;
    /// Named by the user (command line or modules-load.d), not only pulled in.
    pub const REQUESTED: u32 = 1 << 1;
    /// Pulled in only as a soft dependency of another module.
    pub const SOFT_ONLY: u32 = 1 << 2;
    /// Pass MODULE_INIT_IGNORE_MODVERSIONS to finit_module.
    pub const IGNORE_MODVERSIONS: u32 = 1 << 3;
    /// Pass MODULE_INIT_IGNORE_VERMAGIC to finit_module.
    pub const IGNORE_VERMAGIC: u32 = 1 << 4;
    /// Disabled by configuration (`install NAME /bin/true` and the other
    /// no-op commands): never loaded; counts as done for the modules that
    /// wait for it, as kmod's successful no-op command does. May have no
    /// file (path `NONE`) when NAME is no module of the kernel. Never
    /// together with `BUILTIN`.
    pub const DISABLED: u32 = 1 << 5;
    /// Named by a modprobe.d `blacklist` line. The compiler already left it
    /// out where a request reached it through an alias; the runtime skips it
    /// where it looks names up through the plan's aliases (modprobe, coldplug).
    pub const BLACKLISTED: u32 = 1 << 6;
    /// In the plan only through `post:` soft dependencies: not reachable from
    /// the requested modules through hard and `pre:` edges. Skipped when it
    /// has `EDGE_POST` edges and every module they come from failed or was
    /// skipped (kmod stops a probe at a failure, before the post list).
    pub const POST_ONLY: u32 = 1 << 7;
    /// Bits 8..11: the file's compression, see [`super::Compression`].
    pub const COMPRESSION_SHIFT: u32 = 8;
    pub const COMPRESSION_MASK: u32 = 0xf << COMPRESSION_SHIFT;
    /// The path is relative to the root directory of the system the plan
    /// runs on, not to `lib/modules/KVER`: a module that depmod found outside
    /// the module directory (its `external` directive). Needs a path.
    pub const ROOT_PATH: u32 = 1 << 12;
    /// In the plan for a `--on-request` name only: not loaded by a run of
    /// the whole plan, loaded when the kernel's request_module() (the
    /// modprobe personality) or a named run asks for it or a module that
    /// needs it. Never in a plan of every module (`ALL_MODULES`).
    pub const ON_REQUEST: u32 = 1 << 13;
    /// Every bit a reader understands.
    pub const KNOWN: u32 = BUILTIN
        | REQUESTED
        | SOFT_ONLY
        | IGNORE_MODVERSIONS
        | IGNORE_VERMAGIC
        | DISABLED
        | BLACKLISTED
        | POST_ONLY
        | COMPRESSION_MASK
        | ROOT_PATH
        | ON_REQUEST;
}

/// Device-wait flags.
pub mod wait_flags {
    /// Some path component is a glob (`*`, `?`, `[...]`).
    pub const GLOB: u32 = 1 << 0;
    /// Every bit a version-2 reader understands.
    pub const KNOWN: u32 = GLOB;
}

/// Plan header flags (a reader refuses unknown ones).
pub mod plan_flags {
    /// Compiled with `--all`: every module of the kernel, with its aliases.
    /// A run of such a plan is a coldplug: it loads what the devices need
    /// (and the requested modules), not the whole plan.
    pub const ALL_MODULES: u32 = 1 << 0;
    pub const KNOWN: u32 = ALL_MODULES;
}

/// How a module file is compressed (stored in the module flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None = 0,
    Xz = 1,
    Zstd = 2,
    Gzip = 3,
}

impl Compression {
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            0 => Some(Self::None),
            1 => Some(Self::Xz),
            2 => Some(Self::Zstd),
            3 => Some(Self::Gzip),
            _ => None,
        }
    }

    /// From a module file name (`foo.ko`, `foo.ko.xz`, ...).
    pub fn from_path(path: &[u8]) -> Option<Self> {
        if path.ends_with(b".ko") {
            Some(Self::None)
        } else if path.ends_with(b".ko.xz") {
            Some(Self::Xz)
        } else if path.ends_with(b".ko.zst") {
            Some(Self::Zstd)
        } else if path.ends_with(b".ko.gz") {
            Some(Self::Gzip)
        } else {
            None
        }
    }

    /// The name the kernel writes to `/sys/module/compression`.
    pub fn kernel_name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Xz => "xz",
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
        }
    }
}

/// Header field offsets.
pub(crate) mod hdr {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const HEADER_SIZE: usize = 12;
    pub const FILE_SIZE: usize = 16;
    pub const CHECKSUM: usize = 20;
    pub const FLAGS: usize = 24;
    pub const MODULE_COUNT: usize = 28;
    pub const MODULES_OFF: usize = 32;
    pub const EDGE_COUNT: usize = 36;
    pub const EDGES_OFF: usize = 40;
    pub const WAIT_COUNT: usize = 44;
    pub const WAITS_OFF: usize = 48;
    pub const ALIAS_COUNT: usize = 52;
    pub const ALIASES_OFF: usize = 56;
    pub const STRINGS_OFF: usize = 60;
    pub const STRINGS_LEN: usize = 64;
    pub const KERNEL_RELEASE: usize = 68;
    pub const JOBS: usize = 72;
    pub const MODULE_TIMEOUT_MS: usize = 76;
    pub const DEADLINE_MS: usize = 80;
    pub const TOTAL_WEIGHT_US: usize = 84; // u64
    pub const MODULE_RECORD_SIZE: usize = 92;
    pub const WAIT_RECORD_SIZE: usize = 96;
    pub const ALIAS_RECORD_SIZE: usize = 100;
    /// How many of the first alias records come from modprobe.d.
    pub const CONFIG_ALIAS_COUNT: usize = 104;
    // 108..128 reserved, must be zero.
    pub const RESERVED: usize = 108;
}

/// Module record field offsets.
pub(crate) mod rec {
    pub const NAME: usize = 0;
    pub const PATH: usize = 4;
    pub const PARAMS: usize = 8;
    pub const FLAGS: usize = 12;
    pub const WEIGHT_US: usize = 16;
    pub const TIMEOUT_MS: usize = 20;
    pub const PRIORITY_US: usize = 24; // u64
    pub const DEPS: usize = 32; // start u32, len u32 (edges)
    pub const DEPENDENTS: usize = 40;
    pub const SOFT_PRE: usize = 48;
    pub const SOFT_POST: usize = 56;
    pub const DEV_WAITS: usize = 64; // start u32, len u32 (device-wait records)
    pub const FILE_SIZE: usize = 72;
    /// The part of `WEIGHT_US` the kernel runs under its module-wide lock.
    pub const SERIAL_US: usize = 76;
}

/// Alias record field offsets.
pub(crate) mod arec {
    pub const PATTERN: usize = 0;
    pub const MODULE: usize = 4;
}

/// Device-wait record field offsets.
pub(crate) mod wrec {
    pub const PATH: usize = 0;
    pub const FLAGS: usize = 4;
    pub const MODULE: usize = 8;
    pub const TIMEOUT_MS: usize = 12;
    pub const RESERVED: usize = 16; // 8 bytes
}

/// Little-endian u32 at `at`; 0 out of bounds (callers validated bounds
/// already: this form just has no panic path).
#[inline(never)]
pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..).and_then(|t| t.first_chunk::<4>()) {
        Some(x) => u32::from_le_bytes(*x),
        None => 0,
    }
}

/// Little-endian u64 at `at`; 0 out of bounds.
#[inline(never)]
pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    match b.get(at..).and_then(|t| t.first_chunk::<8>()) {
        Some(x) => u64::from_le_bytes(*x),
        None => 0,
    }
}

/// Normalise a module name the way kmod does: `-` and `_` are the same.
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(&x, &y)| {
            let x = if x == b'-' { b'_' } else { x };
            let y = if y == b'-' { b'_' } else { y };
            x == y
        })
}

/// Whether `s` is a token as a plan stores module names and the kernel
/// release: not empty, printable ASCII without blanks or `/`.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| c > b' ' && c < 0x7f && c != b'/')
}

/// The longest remaining path from each module through the modules that
/// wait for it, weights included: the plan's priorities (the critical path
/// to the end of the graph). `order` is a load order of the modules `0..n`
/// (each after what it depends on); `deps(m)` the modules `m` depends
/// on. Indexed by module.
#[cfg(feature = "host")]
pub fn remaining_paths<I: IntoIterator<Item = usize>>(
    order: &[usize],
    weight: impl Fn(usize) -> u64,
    deps: impl Fn(usize) -> I,
) -> std::vec::Vec<u64> {
    let n = order.len();
    let mut prio = std::vec![0u64; n];
    let mut best_after = std::vec![0u64; n];
    for &m in order.iter().rev() {
        prio[m] = weight(m) + best_after[m];
        for d in deps(m) {
            if d < n && best_after[d] < prio[m] {
                best_after[d] = prio[m];
            }
        }
    }
    prio
}

/// Normalise an alias in place the way kmod does (alias_normalize): `-`
/// becomes `_`, except inside `[...]` classes. The compiler stores alias
/// patterns so; a name looked up against them must be normalised too.
pub fn normalize_alias_in_place(s: &mut [u8]) {
    let mut in_class = false;
    for c in s {
        match *c {
            b'[' => in_class = true,
            b']' => in_class = false,
            b'-' if !in_class => *c = b'_',
            _ => {}
        }
    }
}

/// Whether a relative module path is safe: not empty, not absolute, no `..`
/// or empty components, no NUL.
pub fn is_safe_relative_path(p: &[u8]) -> bool {
    if p.is_empty() || p[0] == b'/' || p.contains(&0) {
        return false;
    }
    p.split(|&c| c == b'/').all(|c| !c.is_empty() && c != b".." && c != b".")
}

/// The literal prefix of a glob pattern: up to its first `*`, `?`, `[` or
/// `\` (the kernel aliases of a plan are sorted by it, see
/// [`Plan::kernel_aliases_matching`]).
pub fn literal_prefix(pat: &[u8]) -> &[u8] {
    let end = pat.iter().position(|&c| matches!(c, b'*' | b'?' | b'[' | b'\\')).unwrap_or(pat.len());
    pat.get(..end).unwrap_or(pat)
}

/// fnmatch-style glob on bytes: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`, `\x`.
/// No allocation; backtracks on the last `*` only (linear for these patterns).
pub fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = match_class(&pat[p..], s[i]) {
                        if matched {
                            p += next;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        // Unterminated class: '[' is literal.
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pat.len() => {
                    if pat[p + 1] == s[i] {
                        p += 2;
                        i += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[i] {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

/// Match one character against a `[...]` class at the start of `pat`.
/// Returns (matched, length of the class) or None when unterminated.
fn match_class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut j = 1;
    let negate = j < pat.len() && (pat[j] == b'!' || pat[j] == b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    let mut first = true;
    while j < pat.len() {
        if pat[j] == b']' && !first {
            return Some((matched != negate, j + 1));
        }
        first = false;
        if j + 2 < pat.len() && pat[j + 1] == b'-' && pat[j + 2] != b']' {
            if pat[j] <= c && c <= pat[j + 2] {
                matched = true;
            }
            j += 3;
        } else {
            if pat[j] == c {
                matched = true;
            }
            j += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_treat_dash_and_underscore_alike() {
        assert!(same_name(b"snd-hda-intel", b"snd_hda_intel"));
        assert!(!same_name(b"snd-hda-intel", b"snd_hda_intelx"));
        assert!(!same_name(b"abc", b"abd"));
    }

    #[test]
    fn relative_paths() {
        assert!(is_safe_relative_path(b"kernel/fs/xfs/xfs.ko"));
        assert!(!is_safe_relative_path(b"/kernel/x.ko"));
        assert!(!is_safe_relative_path(b"kernel/../../etc/x.ko"));
        assert!(!is_safe_relative_path(b"kernel//x.ko"));
        assert!(!is_safe_relative_path(b""));
        assert!(!is_safe_relative_path(b"./x.ko"));
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"pci:v00008086d*sv*", b"pci:v00008086d1234sv5"));
        assert!(!glob_match(b"pci:v00008086d*sv*", b"pci:v00008087d1234sv5"));
        assert!(glob_match(b"controlC*", b"controlC0"));
        assert!(glob_match(b"eth?", b"eth0"));
        assert!(!glob_match(b"eth?", b"eth10"));
        assert!(glob_match(b"sd[a-c]", b"sdb"));
        assert!(!glob_match(b"sd[!a-c]", b"sdb"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"axxbyyc"));
        assert!(!glob_match(b"a*b*c", b"axxbyy"));
        assert!(glob_match(b"x\\*", b"x*"));
        assert!(!glob_match(b"x\\*", b"xy"));
    }

    #[test]
    fn compression_from_path() {
        assert_eq!(Compression::from_path(b"a.ko"), Some(Compression::None));
        assert_eq!(Compression::from_path(b"a.ko.xz"), Some(Compression::Xz));
        assert_eq!(Compression::from_path(b"a.ko.zst"), Some(Compression::Zstd));
        assert_eq!(Compression::from_path(b"a.ko.gz"), Some(Compression::Gzip));
        assert_eq!(Compression::from_path(b"a.o"), None);
    }
}
