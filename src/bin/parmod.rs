//! `parmod`: the target runtime. A static, heap-free binary that starts
//! from musl's C start-up code and then makes raw system calls only.
#![no_std]
#![no_main]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

use parmod::runtime;

use core::ffi::{c_char, c_int};

// musl provides the start-up code (`_start` calls `main`) and memcpy & co.
#[link(name = "c")]
extern "C" {}

/// # Safety
/// Called by the C start-up code with the process's arguments and environment.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char, envp: *const *const u8) -> c_int {
    // SAFETY: the C runtime passes argc strings and a NULL-terminated
    // environment, all of which live as long as the process.
    let (args, env) = unsafe { (runtime::mapping::Args::new(argc, argv), runtime::arch::Env::new(envp)) };
    runtime::run(args, env)
}

/// Unoptimised builds keep core's reference to the unwinding personality
/// routine even with `panic = "abort"`; nothing ever unwinds, so a routine
/// that is never called satisfies the linker (release builds drop it).
#[cfg(debug_assertions)]
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut o = runtime::out::Out::stderr();
    o.bytes(b"parmod: internal error");
    if let Some(l) = info.location() {
        o.bytes(b" at ");
        o.bytes(l.file().as_bytes());
        o.bytes(b":");
        o.num(l.line() as u64);
    }
    o.bytes(b"\n");
    o.flush();
    // Never unwind and never return. PID 1 must not exit (the kernel would
    // panic): it stops here with the message above.
    if rustix::process::getpid().is_init() {
        runtime::init::sleep_forever();
    }
    runtime::arch::exit_process(2)
}
