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
