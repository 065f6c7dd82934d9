//! The kernel command line: parmod's readings (arguments as the kernel
//! splits them, module options and blacklists as kmod reads them, lists,
//! root=) against reference readings of the kernel's and kmod's parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    parmod_fuzz::cmdline::check(data);
});
