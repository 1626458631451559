//! Selects the inner loops for the target. Cortex-M4 and M7 (`thumbv7em`)
//! always have the DSP extension, but not every compiler reports it as a
//! target feature, so the target name decides too.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(picocnn_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let dsp = arch == "arm"
        && (target.starts_with("thumbv7em") || features.split(',').any(|f| f == "dsp"));
    if dsp {
        println!("cargo::rustc-cfg=picocnn_dsp");
    }
}
