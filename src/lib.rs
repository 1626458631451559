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

/// The inner loops this build of the library runs its int8 kernels with
/// on this CPU: `"cortex-m-dsp"` (SMLAD, Armv7E-M and Armv8-M with the DSP
/// extension), `"thumb1"` (Armv6-M), `"x86-64-avx512-vnni"` (an x86-64
/// CPU with AVX-512 F, BW and VNNI, asked at run time with `std`; set
/// `PICOCNN_NO_AVX512` to stay with AVX2), `"x86-64-avx2"` (an x86-64 CPU
/// with AVX2: asked at run time with `std`, else when the build enables it;
/// set `PICOCNN_PORTABLE` for the portable loops), or
/// `"portable"` (every other case, the reference loops), with `"+fpu-f16"`
/// where the FPU converts half precision. Every path gives the portable
/// loops' int8 bits.
///
/// ```
/// let path = picocnn::kernel_path();
/// let known = ["portable", "thumb1", "cortex-m-dsp", "x86-64-avx2", "x86-64-avx512-vnni"];
/// assert!(known.iter().any(|p| path.starts_with(p)));
/// ```
pub fn kernel_path() -> &'static str {
    arch::path()
}
