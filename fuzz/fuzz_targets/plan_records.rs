//! The plan reader past its checksum: the input is a script byte count, a
//! run script and a plan (the seeds are valid plans); the declared size and
//! the checksum are made right, so every mutation of a record reaches the
//! structural checks. An accepted plan must be consistent and run to its end
//! on the fake kernel.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parmod::plan::{crc32c, Plan};
use parmod_fuzz::plan::{check_plan, simulate, Script};

/// Header offsets of the declared file size and of the checksum.
const FILE_SIZE: usize = 16;
const CHECKSUM: usize = 20;

fn fix_up(plan: &mut [u8]) {
    if plan.len() < 128 {
        return;
    }
    let len = plan.len() as u32;
    plan[FILE_SIZE..FILE_SIZE + 4].copy_from_slice(&len.to_le_bytes());
    plan[CHECKSUM..CHECKSUM + 4].fill(0);
    let sum = crc32c(plan);
    plan[CHECKSUM..CHECKSUM + 4].copy_from_slice(&sum.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else { return };
    let k = (k as usize).min(rest.len());
    let (script, plan) = rest.split_at(k);
    let mut plan = plan.to_vec();
    fix_up(&mut plan);
    let full = Plan::parse(&plan).map(|_| ());
    let structure = Plan::parse_structure(&plan).map(|_| ());
    if plan.len() >= 128 && plan[..8] == *b"PARMODPL" {
        assert_eq!(full, structure, "with a right size and checksum, the reader and its structural checks agree");
    }
    if let Ok(p) = Plan::parse(&plan) {
        check_plan(&p);
        simulate(&plan, &Script::read(&p, script));
    }
});
