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
    // `+dsp` in the flags, or a CPU whose LLVM model has it (Cortex-M33,
    // M35P, M55, M85), decides there.
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flag_dsp = flags.split('\x1f').any(|f| {
        f.contains("+dsp")
            || ["cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85"]
                .iter()
                .any(|cpu| f.ends_with(cpu))
    });
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
    models();
    if arch == "arm" && (target.starts_with("thumbv6m") || target.starts_with("thumbv8m.base")) {
        println!("cargo::rustc-cfg=picocnn_thumb1");
    }
}

/// The kernels the models named by `PICOCNN_MODELS` (blob paths, separated
/// as `PATH` is) use: with it set, the interpreter is built for those models
/// and the other kernels are left out of the firmware. Without it, every
/// kernel is built.
fn models() {
    const USES: &str = "\"conv_general\", \"conv_pointwise\", \"conv_depthwise\", \"dense\", \
                        \"max_pool\", \"avg_pool\", \"add\", \"concat\", \"activation\", \
                        \"softmax\", \"mean\", \"int8\", \"int16\", \"f16\", \"f32\", \"conv_op\", \"max_pool_op\", \
                        \"avg_pool_op\", \"conv_max_pool_op\", \"conv_avg_pool_op\", \
                        \"conv_pool_rows\", \"conv_pool_band\"";
    println!("cargo::rustc-check-cfg=cfg(picocnn_pruned)");
    println!("cargo::rustc-check-cfg=cfg(picocnn_use, values({USES}))");
    println!("cargo::rerun-if-env-changed=PICOCNN_MODELS");
    let Some(paths) = std::env::var_os("PICOCNN_MODELS") else {
        return;
    };
    let mut uses = std::collections::BTreeSet::new();
    for path in std::env::split_paths(&paths).filter(|p| !p.as_os_str().is_empty()) {
        println!("cargo::rerun-if-changed={}", path.display());
        let blob = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("PICOCNN_MODELS: cannot read {}: {e}", path.display()));
        kernels_of(&blob, &mut uses)
            .unwrap_or_else(|e| panic!("PICOCNN_MODELS: {}: {e}", path.display()));
    }
    println!("cargo::rustc-cfg=picocnn_pruned");
    for u in uses {
        println!("cargo::rustc-cfg=picocnn_use=\"{u}\"");
    }
}

/// Adds the kernels and precisions of a model blob's ops to `uses` (the
/// layout of `src/model/format.rs`; the library checks the rest at parse).
fn kernels_of(
    blob: &[u8],
    uses: &mut std::collections::BTreeSet<&'static str>,
) -> Result<(), String> {
    let u16_at = |o: usize| -> Result<usize, String> {
        blob.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| "truncated".to_string())
    };
    let u32_at = |o: usize| -> Result<usize, String> {
        blob.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| "truncated".to_string())
    };
    if blob.get(..4) != Some(b"PCNN") {
        return Err("not a .pcnn model (bad magic)".to_string());
    }
    let (n_tensors, n_ops) = (u16_at(20)?, u16_at(22)?);
    let (tensors, ops, lists) = (u32_at(28)?, u32_at(32)?, u32_at(36)?);
    for i in 0..n_ops {
        let r = ops + i * 64;
        let kind = *blob.get(r).ok_or("truncated")?;
        let dtype = *blob.get(r + 1).ok_or("truncated")?;
        uses.insert(match dtype {
            1 => "int8",
            2 => "f32",
            3 => "f16",
            4 => "int16",
            _ => return Err(format!("op {i}: unknown type {dtype}")),
        });
        let param = |k: usize| u32_at(r + 16 + 4 * k);
        // The record kinds, apart from the kernels they run: a build for
        // fused models links no plain convolution or pool record.
        match kind {
            1 => uses.insert("conv_op"),
            3 => uses.insert("max_pool_op"),
            4 => uses.insert("avg_pool_op"),
            9 => uses.insert("max_pool") | uses.insert("conv_max_pool_op"),
            10 => uses.insert("avg_pool") | uses.insert("conv_avg_pool_op"),
            _ => false,
        };
        // A fused max pool whose windows share no rows streams one row at a
        // time; other fused pools run by bands (word 6: `wh | ww << 8 | sh
        // << 16 | sw << 24`).
        if kind == 9 || kind == 10 {
            let [wh, _, sh, _] = (param(6)? as u32).to_le_bytes();
            uses.insert(if kind == 9 && sh >= wh {
                "conv_pool_rows"
            } else {
                "conv_pool_band"
            });
        }
        uses.insert(match kind {
            // A fused convolution and pool: its convolution's loop nest.
            1 | 9 | 10 => {
                let kernel = param(0)?;
                let (top, left) = (param(3)? & 0xffff, param(4)? & 0xffff);
                let groups = param(5)?;
                let input = u16_at(lists + 2 * u16_at(r + 4)?)?;
                if input >= n_tensors {
                    return Err(format!("op {i}: input is not a tensor"));
                }
                let channels = u32_at(tensors + input * 32 + 16)?;
                if kernel == 1 | 1 << 16 && top == 0 && left == 0 && groups == 1 {
                    "conv_pointwise"
                } else if groups == channels && groups > 1 {
                    "conv_depthwise"
                } else {
                    "conv_general"
                }
            }
            2 => "dense",
            3 => "max_pool",
            4 => "avg_pool",
            5 => "add",
            6 => "concat",
            7 => "activation",
            8 => "softmax",
            11 => "mean",
            _ => return Err(format!("op {i}: unknown kind {kind}")),
        });
    }
    Ok(())
}
