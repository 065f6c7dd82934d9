//! The plan reader on raw bytes: any input is refused with a message or
//! accepted, and an accepted plan is consistent and runs to its end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parmod::plan::Plan;
use parmod_fuzz::plan::{check_plan, simulate, Script};

fuzz_target!(|data: &[u8]| {
    match Plan::parse(data) {
        Ok(plan) => {
            check_plan(&plan);
            simulate(data, &Script::read(&plan, &[]));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(plan) = Plan::parse_structure(data) {
        check_plan(&plan);
    }
});
