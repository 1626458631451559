//! The build script of every Cortex-M board crate (`build =
//! "../cortex-m-build.rs"` in each Cargo.toml): puts the crate's memory.x
//! where the linker finds it and adds the linker scripts.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo::rustc-link-search={}", out.display());
    println!("cargo::rerun-if-changed=memory.x");
    println!("cargo::rerun-if-changed=../cortex-m-build.rs");
    // cortex-m-rt's and defmt's linker scripts; -Tlink.x only when the
    // rustflags do not bring it already (`cargo xtask boards` passes it).
    println!("cargo::rustc-link-arg=-Tdefmt.x");
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if !flags.split('\x1f').any(|f| f.contains("-Tlink.x")) {
        println!("cargo::rustc-link-arg=-Tlink.x");
    }
}
