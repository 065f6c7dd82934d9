//! Link settings for the `parmod` runtime binary only (the host tool keeps
//! the defaults).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    println!("cargo:rerun-if-changed=src/runtime/arch/no-unwind-tables.ld");
    if os == "linux" && env == "musl" {
        println!("cargo:rustc-link-arg-bin=parmod=-Wl,-T,{dir}/src/runtime/arch/no-unwind-tables.ld");
        // RELRO would pad the file to the next page boundary to protect 88
        // bytes (.init_array, .fini_array, .got) of a static binary that
        // never loads code at run time: not worth 4 KiB of a 64 KiB budget.
        println!("cargo:rustc-link-arg-bin=parmod=-Wl,-z,norelro");
        // Let the data segment follow the code in the file instead of
        // starting on a fresh page (it is still mapped on its own page).
        println!("cargo:rustc-link-arg-bin=parmod=-Wl,-z,common-page-size=64");
        // musl again after core: unoptimised builds (no LTO) call memcmp &
        // co. from core's objects, which come after the first -lc.
        println!("cargo:rustc-link-arg-bin=parmod=-lc");
    }
}
