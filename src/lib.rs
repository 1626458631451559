#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "std")]
pub mod augment;
#[cfg(feature = "std")]
pub mod data;
pub mod error;
#[cfg(feature = "std")]
pub mod export;
#[cfg(feature = "std")]
pub mod import;
pub mod learn;
pub mod model;
pub mod num;
pub mod ops;
pub mod protocol;
pub mod quant;
pub mod rng;
pub mod tensor;
#[cfg(feature = "std")]
pub mod train;

mod arch;

pub use error::{Error, Result};
pub use num::Real;
pub use quant::{Activation, Clamp, QParams, Requant};
pub use tensor::Shape;

/// The inner loops this build of the library runs its kernels with on
/// this CPU:
///
/// - `"x86-64-avx512-vnni"`: an x86-64 CPU with AVX-512 F, BW, VL and VNNI
///   (asked once at run time, `std` only): int8 convolutions and dense
///   layers with `VPDPBUSD`, output channels in the lanes; depthwise,
///   pooling and residual adds sixteen values a vector; float layers
///   sixteen output channels a vector.
/// - `"x86-64-avx2"`: an x86-64 CPU with AVX2 (asked at run time with
///   `std`, else when the build enables it), or one with AVX-512 when
///   `PICOCNN_NO_AVX512` is set.
/// - `"aarch64-dotprod"` / `"aarch64-neon"`: aarch64 with or without the
///   dot-product instructions (`SDOT`, asked at run time, `std` only;
///   `PICOCNN_NO_DOTPROD` keeps NEON).
/// - `"cortex-m-dsp"` (SMLAD, Armv7E-M and Armv8-M with the DSP
///   extension), `"thumb1"` (Armv6-M), or `"portable"` (every other case,
///   and any CPU when `PICOCNN_PORTABLE` is set: the reference loops),
///   with `"+fpu-f16"` where the FPU converts half precision.
///
/// Every path gives the portable loops' int8 bits, and their f32 and f16
/// bits too: the vector float loops keep each output's sum in the
/// portable order (one output channel a lane, products and sums each
/// rounded, never fused).
///
/// ```
/// let path = picocnn::kernel_path();
/// let known = [
///     "portable",
///     "thumb1",
///     "cortex-m-dsp",
///     "x86-64-avx2",
///     "x86-64-avx512-vnni",
///     "aarch64-neon",
///     "aarch64-dotprod",
/// ];
/// assert!(known.iter().any(|p| path.starts_with(p)));
/// ```
pub fn kernel_path() -> &'static str {
    arch::path()
}
