//! Picks the memory map by target, and adds `-Tlink.x` unless the rustflags already carry it.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(machine, values(\"m0\", \"m4\"))");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=memory-m0.x");
    println!("cargo::rerun-if-changed=memory-m4.x");

    let target = env::var("TARGET").unwrap_or_default();
    let (memory, machine) = if target.starts_with("thumbv6m-") {
        ("memory-m0.x", "m0")
    } else if target.starts_with("thumbv7em-") {
        ("memory-m4.x", "m4")
    } else {
        panic!(
            "picocnn-qemu-tests is firmware: build it with --target thumbv7em-none-eabihf \
             (QEMU mps2-an386) or --target thumbv6m-none-eabi (QEMU microbit), \
             or use `cargo xtask qemu` from the repository root (target given: {target:?})"
        );
    };
    println!("cargo::rustc-cfg=machine=\"{machine}\"");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy(memory, out.join("memory.x")).expect("copy memory.x to OUT_DIR");
    println!("cargo::rustc-link-search={}", out.display());

    // .cargo/config.toml passes -Tlink.x; when it is not in effect (RUSTFLAGS set in the
    // environment replaces the config's rustflags), add it here. Passing it twice breaks the link.
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if !flags.split('\x1f').any(|f| f.contains("-Tlink.x")) {
        println!("cargo::rustc-link-arg=-Tlink.x");
    }
}
