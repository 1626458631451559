//! Linker arguments, here rather than in rustflags so that a RUSTFLAGS
//! override (`cargo xtask boards` passes its own) keeps them. Each is left
//! out when the rustflags bring it already: a script given twice defines
//! its symbols twice.
use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    // Debian's riscv64-unknown-elf-ld defaults to 64-bit ELF; this target
    // is 32-bit. Then esp-hal's memory map and sections (it ships its own
    // memory.x; riscv-rt's link.x must not be added) and defmt's.
    for arg in ["-melf32lriscv", "-Tlinkall.x", "-Tdefmt.x"] {
        if !flags.split('\x1f').any(|f| f.contains(arg)) {
            println!("cargo::rustc-link-arg={arg}");
        }
    }
}
