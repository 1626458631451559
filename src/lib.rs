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

/// The inner loops this build of the library runs its int8 and float
/// kernels with: `"cortex-m-dsp"` (SMLAD, Armv7E-M and Armv8-M with the
/// DSP extension), `"thumb1"` (Armv6-M), or `"portable"` (every other
/// target, the reference loops), with `"+fpu-f16"` where the FPU converts
/// half precision. Chosen at build time by the target's features; every
/// path gives the portable loops' int8 bits.
///
/// ```
/// let path = picocnn::kernel_path();
/// assert!(["portable", "thumb1", "cortex-m-dsp"].iter().any(|p| path.starts_with(p)));
/// ```
pub fn kernel_path() -> &'static str {
    arch::PATH
}
