//! Fully connected (dense) layers.
//!
//! Weights are `[out_features][in_features]`, as TensorFlow Lite stores them.
//!
//! ```
//! use picocnn::ops::dense::{Dense, DenseFloat};
//! use picocnn::Activation;
//!
//! let dense = Dense::new(3, 2)?;
//! let weights = [1.0f32, 2.0, 3.0, -1.0, -1.0, -1.0];
//! let layer = DenseFloat::new(dense, &weights, &[0.5, 0.0], Activation::Relu)?;
//! let mut out = [0.0f32; 2];
//! layer.run(&[1.0, 1.0, 1.0], &mut out)?;
//! assert_eq!(out, [6.5, 0.0]);
//! # Ok::<(), picocnn::Error>(())
//! ```

use crate::arch;
use crate::error::{check_len, check_min_len, invalid, Error, Result};
use crate::num::{clamp_f32, Real};
use crate::ops::WeightsI8;
use crate::quant::{multiply_by_nonneg_multiplier, Activation, Clamp};

/// A checked dense geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dense {
    in_features: usize,
    out_features: usize,
}

impl Dense {
    /// `in_features` inputs to `out_features` outputs.
    pub fn new(in_features: usize, out_features: usize) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(invalid("dense features must be at least 1"));
        }
        let n = in_features
            .checked_mul(out_features)
            .ok_or(Error::Overflow)?;
        if n > isize::MAX as usize / 4 {
            return Err(Error::Overflow);
        }
        Ok(Dense {
            in_features,
            out_features,
        })
    }

    /// From the sizes of a checked model record.
    pub(crate) const fn from_checked(in_features: usize, out_features: usize) -> Self {
        Dense {
            in_features,
            out_features,
        }
    }

    /// Inputs.
    pub const fn in_features(&self) -> usize {
        self.in_features
    }

    /// Outputs.
    pub const fn out_features(&self) -> usize {
        self.out_features
    }

    /// Number of weights.
    pub const fn weights_len(&self) -> usize {
        self.in_features * self.out_features
    }

    /// Multiply-accumulates of one run.
    pub const fn macs(&self) -> usize {
        self.weights_len()
    }

    /// Scratch bytes the int8 kernel needs (the input widened to int16).
    pub const fn scratch_len_i8(&self) -> usize {
        arch::pointwise_bytes(self.in_features)
    }
}

/// A ready-to-run int8 dense layer (TensorFlow Lite `FULLY_CONNECTED`,
/// bit-exact), with per-output-channel requantization.
#[derive(Debug, Clone, Copy)]
pub struct DenseI8<'a> {
    geom: Dense,
    weights: &'a [i8],
    bias: &'a [i32],
    multiplier: &'a [i32],
    shift: &'a [i32],
    input_offset: i32,
    output_zero_point: i32,
    clamp: Clamp,
}

impl<'a> DenseI8<'a> {
    /// Checks the weights against the geometry.
    pub fn new(
        geom: Dense,
        weights: WeightsI8<'a>,
        input_zero_point: i32,
        output_zero_point: i32,
        clamp: Clamp,
    ) -> Result<Self> {
        weights.check(
            ["dense weights", "dense bias", "dense requantization"],
            geom.weights_len(),
            geom.out_features,
            [input_zero_point, output_zero_point],
            clamp,
        )?;
        Ok(DenseI8::from_checked(
            geom,
            weights,
            input_zero_point,
            output_zero_point,
            clamp,
        ))
    }

    /// From parts that `new` accepted before (a checked model record).
    pub(crate) const fn from_checked(
        geom: Dense,
        weights: WeightsI8<'a>,
        input_zero_point: i32,
        output_zero_point: i32,
        clamp: Clamp,
    ) -> Self {
        DenseI8 {
            geom,
            weights: weights.filter,
            bias: weights.bias,
            multiplier: weights.multiplier,
            shift: weights.shift,
            input_offset: -input_zero_point,
            output_zero_point,
            clamp,
        }
    }

    /// The geometry.
    pub const fn geometry(&self) -> &Dense {
        &self.geom
    }

    /// Runs the layer. `scratch` must hold [`Dense::scratch_len_i8`] bytes.
    pub fn run(&self, input: &[i8], output: &mut [i8], scratch: &mut [u8]) -> Result<()> {
        let n = self.geom.in_features;
        check_len("dense input", n, input.len())?;
        check_len("dense output", self.geom.out_features, output.len())?;
        check_min_len("dense scratch", self.geom.scratch_len_i8(), scratch.len())?;
        let col = arch::scratch_i16(scratch);
        let (mult, shift, zp, clamp) = (
            self.multiplier,
            self.shift,
            self.output_zero_point,
            self.clamp,
        );
        // One multiplier per output, or one for all of them.
        let per_channel = (mult.len() > 1) as usize;
        arch::dense_i8(
            input,
            self.weights,
            col,
            self.input_offset,
            |o, acc| {
                let i = o * per_channel;
                let v = multiply_by_nonneg_multiplier(acc, mult[i], shift[i]);
                output[o] = clamp.apply(v.wrapping_add(zp));
            },
            self.bias,
        );
        Ok(())
    }
}

/// A ready-to-run float dense layer over `f32` or `f16`.
#[derive(Debug, Clone, Copy)]
pub struct DenseFloat<'a, T: Real> {
    geom: Dense,
    weights: &'a [T],
    bias: &'a [T],
    lo: f32,
    hi: f32,
}

impl<'a, T: Real> DenseFloat<'a, T> {
    /// Checks the parameters.
    pub fn new(
        geom: Dense,
        weights: &'a [T],
        bias: &'a [T],
        activation: Activation,
    ) -> Result<Self> {
        check_len("dense weights", geom.weights_len(), weights.len())?;
        check_len("dense bias", geom.out_features, bias.len())?;
        Ok(DenseFloat::from_checked(geom, weights, bias, activation))
    }

    /// From parts that `new` accepted before (a checked model record).
    pub(crate) fn from_checked(
        geom: Dense,
        weights: &'a [T],
        bias: &'a [T],
        activation: Activation,
    ) -> Self {
        let (lo, hi) = activation.range_f32();
        DenseFloat {
            geom,
            weights,
            bias,
            lo,
            hi,
        }
    }

    /// The geometry.
    pub const fn geometry(&self) -> &Dense {
        &self.geom
    }

    /// Runs the layer.
    pub fn run(&self, input: &[T], output: &mut [T]) -> Result<()> {
        let n = self.geom.in_features;
        check_len("dense input", n, input.len())?;
        check_len("dense output", self.geom.out_features, output.len())?;
        let range = [self.lo, self.hi];
        if crate::arch::dense_float(input, self.weights, self.bias, range, output) {
            return Ok(());
        }
        self.run_portable(input, output);
        Ok(())
    }

    /// The portable loop (the reference every vector path's bits equal),
    /// on lengths [`run`](Self::run) checked.
    pub(crate) fn run_portable(&self, input: &[T], output: &mut [T]) {
        let n = self.geom.in_features;
        for (o, out) in output.iter_mut().enumerate() {
            let w = &self.weights[o * n..(o + 1) * n];
            let acc = T::dot(0.0, input, w) + self.bias[o].to_f32();
            *out = T::from_f32(clamp_f32(acc, self.lo, self.hi));
        }
    }
}
