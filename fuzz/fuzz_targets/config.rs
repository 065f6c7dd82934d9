//! modprobe.d / parmod.d and modules-load.d: the input is a configuration
//! file and a modules-load.d file (separated by a 0xff byte); what the
//! parsers accept is compiled, written, read back and shown, and must say
//! what the configuration said.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parmod_fuzz::input::parts;

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 2);
    parmod_fuzz::config::round_trip(p[0], p[1]);
});
