//! picocnn (skeleton)
#![no_std]
pub mod error;
pub mod tensor;
pub use error::{Error, Result};
pub use tensor::Shape;
