//! Selects the inner loops for the target. Cortex-M4 and M7 (`thumbv7em`)
//! always have the DSP extension, but not every compiler reports it as a
//! target feature, so the target name decides too. The Thumb-1 loops serve
//! Armv6-M and Armv8-M Baseline (M0, M0+, M23), whose instruction set they
//! are written in; other Arm cores without DSP (M3, M33 without `+dsp`)
//! take the portable loops.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(picocnn_dsp)");
    println!("cargo::rustc-check-cfg=cfg(picocnn_thumb1)");
    println!("cargo::rustc-check-cfg=cfg(picocnn_fpu_half)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let target = std::env::var("TARGET").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    // rustc does not report `dsp` among the target features of Armv8-M, so
    // a CPU that always has it (Cortex-M55, M85) or `+dsp` in the flags
    // decides there.
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flag_dsp = flags
        .split('\x1f')
        .any(|f| f.contains("+dsp") || f.ends_with("cortex-m55") || f.ends_with("cortex-m85"));
    let dsp = arch == "arm"
        && (target.starts_with("thumbv7em") || features.split(',').any(|f| f == "dsp") || flag_dsp);
    if dsp {
        println!("cargo::rustc-cfg=picocnn_dsp");
    }
    // The hard-float Armv7E-M and Armv8-M targets have an FPU with the
    // half-precision conversions (FPv4-SP, FPv5); rustc reports no FPU
    // feature for them either.
    let half_fpu = ["thumbv7em-", "thumbv8m.main-", "thumbv8.1m.main-"]
        .iter()
        .any(|p| target.starts_with(p))
        && target.ends_with("eabihf");
    if arch == "arm" && half_fpu && !flags.split('\x1f').any(|f| f.contains("soft-float")) {
        println!("cargo::rustc-cfg=picocnn_fpu_half");
    }
    if arch == "arm" && (target.starts_with("thumbv6m") || target.starts_with("thumbv8m.base")) {
        println!("cargo::rustc-cfg=picocnn_thumb1");
    }
}
