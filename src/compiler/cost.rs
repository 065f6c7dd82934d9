//! The kernel-cost model: what a module's load is expected to cost, from
//! its ELF section headers, split into the part the kernel runs under its
//! module-wide `ftrace_lock` (serial: no other load passes that point
//! meanwhile) and the rest (parallel: other loads can run beside it).
//!
//! The serial part is `ftrace_module_enable()`: for each of the module's
//! mcount call sites (`__mcount_loc`, or `__patchable_function_entries`,
//! 8 bytes each) `test_for_valid_rec()` looks the address up with
//! `kallsyms_lookup()`, which scans the module's whole symbol table
//! (`.symtab`) while the module is coming up. Its cost is proportional to
//! call sites × symbols (amdgpu: 11,134 × 26,032). The parallel part
//! (reading, signature check, relocation, init) grows with the file size.
//!
//! The constants were fitted to `parmod -j 1` boots of the benchmark's real
//! set (`qemu-test/lock-trace.sh`: each module's `ftrace_module_enable` and
//! whole load, Debian 6.1 and 6.12 under QEMU TCG, 2 vCPUs); the fit and
//! its error are in docs/BENCHMARKS.md. Like the size estimate they replace
//! (200 µs + 1 µs per 8 bytes), they are in TCG time: what matters to the
//! scheduler is how modules compare, and a profile (`--profile`) replaces
//! them with measurements.

use super::elf::{Elf, SHT_SYMTAB};

/// Serial cost per (call site × symbol) pair, in picoseconds.
pub const SERIAL_PS_PER_PAIR: u64 = 7_700;
/// Parallel cost: a fixed part per load, and per byte of the ELF object.
pub const PARALLEL_BASE_US: u64 = 10_900;
pub const PARALLEL_PS_PER_BYTE: u64 = 47_800;

/// What the model reads from a module file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// Size of the ELF object (decompressed), bytes.
    pub size: u64,
    /// mcount call sites: entries of `__mcount_loc` (or, without one, of
    /// `__patchable_function_entries`: ftrace's call sites on arm64).
    pub call_sites: u64,
    /// Entries of the symbol table (`.symtab`).
    pub symbols: u64,
}

impl Features {
    pub fn of(elf: &Elf) -> Features {
        let word = if elf.wide { 8 } else { 4 };
        // (x86 6.12 has both: `__patchable_function_entries` is its call
        // padding there, and ftrace reads `__mcount_loc`.)
        let call_sites = elf
            .section(b"__mcount_loc")
            .or_else(|| elf.section(b"__patchable_function_entries"))
            .map_or(0, |s| s.size / word);
        let sym_size = if elf.wide { 24 } else { 16 };
        let symbols = elf
            .sections
            .iter()
            .filter(|s| s.kind == SHT_SYMTAB)
            .map(|s| s.size / if s.entsize > 0 { s.entsize } else { sym_size })
            .sum();
        Features { size: elf.size, call_sites, symbols }
    }
}

/// A module's expected load time, µs: the whole, and the serial part of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub weight_us: u32,
    pub serial_us: u32,
}

fn clamp(us: u64) -> u32 {
    us.min(u32::MAX as u64) as u32
}

impl Cost {
    pub fn estimate(f: &Features) -> Cost {
        let serial = f.call_sites.saturating_mul(f.symbols).saturating_mul(SERIAL_PS_PER_PAIR) / 1_000_000;
        let parallel = PARALLEL_BASE_US + f.size.saturating_mul(PARALLEL_PS_PER_BYTE) / 1_000_000;
        Cost { weight_us: clamp(serial.saturating_add(parallel)), serial_us: clamp(serial) }
    }

    /// A measured load time `measured_us` split as this estimate splits:
    /// the serial share of the estimate, applied to the measurement.
    pub fn split(&self, measured_us: u32) -> Cost {
        let share = if self.weight_us == 0 { 0 } else { measured_us as u64 * self.serial_us as u64 / self.weight_us as u64 };
        Cost { weight_us: measured_us, serial_us: clamp(share).min(measured_us) }
    }

    /// For a file the compiler could not read: the plain size estimate, no serial part.
    pub fn from_size(size: u64) -> Cost {
        Cost { weight_us: super::estimate_weight_us(size), serial_us: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn the_serial_part_grows_with_call_sites_times_symbols() {
        // amdgpu on Debian 6.1: 11,134 call sites, 26,032 symbols, 19.5 MB.
        let amdgpu = Cost::estimate(&Features { size: 19_462_185, call_sites: 11_134, symbols: 26_032 });
        assert_eq!(amdgpu.serial_us, (11_134u64 * 26_032 * SERIAL_PS_PER_PAIR / 1_000_000) as u32);
        assert!(amdgpu.serial_us > amdgpu.weight_us / 2, "{amdgpu:?}: mostly serial");
        // A module without traced functions has no serial part.
        let plain = Cost::estimate(&Features { size: 20_000, call_sites: 0, symbols: 300 });
        assert_eq!(plain.serial_us, 0);
        assert_eq!(plain.weight_us as u64, PARALLEL_BASE_US + 20_000 * PARALLEL_PS_PER_BYTE / 1_000_000);
        // Doubling either factor doubles it.
        let a = Cost::estimate(&Features { size: 0, call_sites: 1000, symbols: 2000 }).serial_us;
        let b = Cost::estimate(&Features { size: 0, call_sites: 2000, symbols: 2000 }).serial_us;
        assert_eq!(b, 2 * a);
    }

    #[test]
    fn a_measurement_is_split_as_the_estimate() {
        let c = Cost { weight_us: 4000, serial_us: 3000 };
        assert_eq!(c.split(8000), Cost { weight_us: 8000, serial_us: 6000 });
        assert_eq!(Cost { weight_us: 0, serial_us: 0 }.split(5), Cost { weight_us: 5, serial_us: 0 });
        let huge = Cost::estimate(&Features { size: u64::MAX, call_sites: u64::MAX, symbols: u64::MAX });
        assert_eq!((huge.weight_us, huge.serial_us), (u32::MAX, u32::MAX), "saturates");
    }

    #[test]
    fn features_from_the_section_headers() {
        let obj = crate::compiler::elf::tests::object(
            true,
            &[("__mcount_loc", 1, vec![0; 8 * 5], 0), (".symtab", SHT_SYMTAB, vec![0; 24 * 7], 24), (".text", 1, vec![0; 100], 0)],
        );
        let len = obj.len() as u64;
        let e = Elf::from_bytes(std::path::Path::new("m.ko"), obj).unwrap();
        assert_eq!(Features::of(&e), Features { size: len, call_sites: 5, symbols: 7 });
        let obj = crate::compiler::elf::tests::object(false, &[("__patchable_function_entries", 1, vec![0; 4 * 3], 0), (".symtab", SHT_SYMTAB, vec![0; 16 * 2], 0)]);
        let e = Elf::from_bytes(std::path::Path::new("m.ko"), obj).unwrap();
        assert_eq!((Features::of(&e).call_sites, Features::of(&e).symbols), (3, 2), "32-bit: 4-byte sites, 16-byte symbols");
    }
}
