//! Standalone activations (ReLU, ReLU6) and requantization.
//!
//! Most activations are fused into the layer before them; these run alone,
//! for example after a residual add. The int8 kernel rescales to the output's
//! parameters and clamps, as TensorFlow Lite's `RELU` and `RELU6`.
//!
//! ```
//! use picocnn::ops::act::activation_float;
//! use picocnn::Activation;
//!
//! let mut x = [-1.0f32, 3.0, 9.0];
//! picocnn::ops::act::activation_float_in_place(&mut x, Activation::Relu6);
//! assert_eq!(x, [0.0, 3.0, 6.0]);
//! # let _ = activation_float::<f32>;
//! ```

use crate::error::{check_len, Result};
use crate::num::{clamp_f32, Real};
use crate::quant::{Activation, Clamp, QParams, Rescale};

/// A ready-to-run int8 activation or requantization.
#[derive(Debug, Clone, Copy)]
pub struct ActI8 {
    rescale: Rescale,
    clamp: Clamp,
}

impl ActI8 {
    /// Rescales from `input` to `output` parameters and applies `activation`
    /// in the output's domain.
    pub fn new(input: QParams, output: QParams, activation: Activation) -> Result<Self> {
        ActI8::from_parts(Rescale::new(input, output)?, activation.range_i8(output))
    }

    /// From precomputed parts (as stored in a model).
    pub fn from_parts(rescale: Rescale, clamp: Clamp) -> Result<Self> {
        rescale.validate()?;
        Clamp::new(clamp.min, clamp.max)?;
        Ok(ActI8 { rescale, clamp })
    }

    /// From parts that `from_parts` accepted before (a checked model record).
    pub(crate) const fn from_checked(rescale: Rescale, clamp: Clamp) -> Self {
        ActI8 { rescale, clamp }
    }

    /// Applies to `input`, writing `output` of the same length.
    pub fn run(&self, input: &[i8], output: &mut [i8]) -> Result<()> {
        check_len("activation output", input.len(), output.len())?;
        for (o, &x) in output.iter_mut().zip(input) {
            *o = self.clamp.apply(self.rescale.apply(x));
        }
        Ok(())
    }

    /// Applies in place.
    pub fn run_in_place(&self, data: &mut [i8]) {
        for x in data.iter_mut() {
            *x = self.clamp.apply(self.rescale.apply(*x));
        }
    }
}

/// Float activation from `input` into `output`.
pub fn activation_float<T: Real>(
    input: &[T],
    output: &mut [T],
    activation: Activation,
) -> Result<()> {
    check_len("activation output", input.len(), output.len())?;
    let (lo, hi) = activation.range_f32();
    for (o, x) in output.iter_mut().zip(input) {
        *o = T::from_f32(clamp_f32(x.to_f32(), lo, hi));
    }
    Ok(())
}

/// Float activation in place.
pub fn activation_float_in_place<T: Real>(data: &mut [T], activation: Activation) {
    let (lo, hi) = activation.range_f32();
    for x in data.iter_mut() {
        *x = T::from_f32(clamp_f32(x.to_f32(), lo, hi));
    }
}

/// Scratch bytes the kernels of this module need: none (planners size one
/// arena from every kernel's `scratch_len`).
pub const fn scratch_len() -> usize {
    0
}
