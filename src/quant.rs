//! Quantization parameters and the fixed-point arithmetic of TensorFlow Lite's
//! reference integer kernels, reproduced to the bit.
//!
//! A real value `r` is stored as an int8 `q` with `r = scale * (q - zero_point)`.
//! A real multiplier `M` (for example `s_in * s_w / s_out`) is stored as a
//! Q31 `multiplier` and a power-of-two `shift`: `M = multiplier * 2^(shift - 31)`.
//! Positive shifts are left shifts, as in TensorFlow Lite.

use crate::error::{invalid, Result};

/// Scale and zero point of an asymmetric int8 tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QParams {
    /// Real value of one step.
    pub scale: f32,
    /// The int8 value that stands for real zero.
    pub zero_point: i32,
}

impl QParams {
    /// Checked parameters: `scale` finite and positive, `zero_point` in -128..=127.
    pub fn new(scale: f32, zero_point: i32) -> Result<Self> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(invalid("scale must be finite and positive"));
        }
        if !(-128..=127).contains(&zero_point) {
            return Err(invalid("zero point must be in -128..=127"));
        }
        Ok(QParams { scale, zero_point })
    }

    /// Quantizes one real value (round half away from zero, saturating).
    pub fn quantize(&self, r: f32) -> i8 {
        let q = self.zero_point + round_to_i32(r / self.scale);
        q.clamp(-128, 127) as i8
    }

    /// The real value of one int8 value.
    pub fn dequantize(&self, q: i8) -> f32 {
        self.scale * (q as i32 - self.zero_point) as f32
    }

    /// Quantizes one real value to int16 (round half away from zero,
    /// saturating).
    pub fn quantize_i16(&self, r: f32) -> i16 {
        let q = self.zero_point + round_to_i32(r / self.scale);
        q.clamp(-32768, 32767) as i16
    }

    /// The real value of one int16 value.
    pub fn dequantize_i16(&self, q: i16) -> f32 {
        self.scale * (q as i32 - self.zero_point) as f32
    }
}

/// A real multiplier as a Q31 `multiplier` and a `shift` (positive: left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Requant {
    /// Q31 significand, in `[2^30, 2^31)` for a normal positive multiplier.
    pub multiplier: i32,
    /// Power of two, in `-31..=30`.
    pub shift: i32,
}

impl Requant {
    /// The identity multiplier (1.0).
    pub const ONE: Requant = Requant {
        multiplier: 1 << 30,
        shift: 1,
    };

    /// Checks that `shift` is in the range the kernels accept.
    pub const fn is_valid(&self) -> bool {
        self.shift >= -31 && self.shift <= 30
    }

    /// Applies the multiplier to `x` exactly as TensorFlow Lite's
    /// `MultiplyByQuantizedMultiplier`.
    #[inline(always)]
    pub const fn apply(&self, x: i32) -> i32 {
        multiply_by_quantized_multiplier(x, self.multiplier, self.shift)
    }
}

/// Rounds half away from zero and saturates to `i32` (NaN gives 0).
pub fn round_to_i32(x: f32) -> i32 {
    // `as` saturates and maps NaN to 0; adding 0.5 first would round
    // 0.49999997 up and, from 2^23 on, land between integers.
    libm::roundf(x) as i32
}

/// Rounds half away from zero for f64 (C's `round`).
pub(crate) fn round_f64(x: f64) -> f64 {
    libm::round(x)
}

/// `2^k`, exactly, from its bits (no table, no library call): saturates to
/// 0 below the normal range and to infinity above it.
pub(crate) fn pow2(k: i32) -> f64 {
    match k {
        ..=-1023 => 0.0,
        1024.. => f64::INFINITY,
        _ => f64::from_bits(((k + 1023) as u64) << 52),
    }
}

/// C's `frexp`: `x = m * 2^e` with `|m|` in `[0.5, 1)`. Zero gives `(0, 0)`.
pub(crate) fn frexp(x: f64) -> (f64, i32) {
    libm::frexp(x)
}

/// Splits a real multiplier into a Q31 multiplier and a shift, as TensorFlow
/// Lite's `QuantizeMultiplier`: multipliers below about `2^-31` become zero,
/// and multipliers of `2^30` and above saturate.
///
/// ```
/// use picocnn::quant::{quantize_multiplier, Requant};
/// assert_eq!(quantize_multiplier(0.5).unwrap(), Requant { multiplier: 1 << 30, shift: 0 });
/// assert_eq!(quantize_multiplier(0.0).unwrap(), Requant { multiplier: 0, shift: 0 });
/// assert!(quantize_multiplier(f64::NAN).is_err());
/// ```
pub fn quantize_multiplier(real: f64) -> Result<Requant> {
    if !real.is_finite() {
        return Err(invalid("multiplier must be finite"));
    }
    if real == 0.0 {
        return Ok(Requant {
            multiplier: 0,
            shift: 0,
        });
    }
    let (q, mut shift) = frexp(real);
    let mut q_fixed = round_f64(q * 2_147_483_648.0) as i64;
    if q_fixed == 1 << 31 || q_fixed == -(1 << 31) {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    if shift > 30 {
        shift = 30;
        q_fixed = if q_fixed > 0 {
            i32::MAX as i64
        } else {
            i32::MIN as i64 + 1
        };
    }
    Ok(Requant {
        multiplier: q_fixed as i32,
        shift,
    })
}

/// `(a * b * 2) >> 32` with rounding, saturating the single overflow case
/// (gemmlowp's `SaturatingRoundingDoublingHighMul`).
#[inline(always)]
pub const fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    // TensorFlow Lite writes `(ab + nudge) / 2^31` with a sign-dependent
    // nudge and C's truncating division; both round half up, which one
    // arithmetic shift does for every input (checked exhaustively on edges
    // and randomly in the tests).
    ((a as i64 * b as i64 + (1 << 30)) >> 31) as i32
}

/// `x / 2^exponent` rounded half away from zero (gemmlowp's
/// `RoundingDivideByPOT`); `exponent` in `0..=31`.
#[inline(always)]
pub const fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let mask = ((1u32 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + if x < 0 { 1 } else { 0 };
    (x >> exponent) + if remainder > threshold { 1 } else { 0 }
}

/// TensorFlow Lite's `MultiplyByQuantizedMultiplier` (double rounding, the
/// default build): `shift` in `-31..=30`.
#[inline(always)]
pub const fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = if shift > 0 { shift } else { 0 };
    let right = if shift > 0 { 0 } else { -shift };
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_shl(left as u32), multiplier),
        right,
    )
}

/// [`multiply_by_quantized_multiplier`] for a `multiplier` checked not
/// negative (every kernel's requantization table is): the doubling high
/// multiply cannot saturate then, so its test is left out. Equal to
/// TensorFlow Lite's for every such multiplier and `shift` in `-31..=30`.
#[inline(always)]
pub(crate) fn multiply_by_nonneg_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    Scale::new(multiplier, shift).apply(x)
}

pub(crate) use crate::arch::Scale;

/// A fused activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// No clamp beyond the type's range.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

impl Activation {
    /// The clamp range in real numbers.
    pub fn range_f32(self) -> (f32, f32) {
        match self {
            Activation::None => (f32::NEG_INFINITY, f32::INFINITY),
            Activation::Relu => (0.0, f32::INFINITY),
            Activation::Relu6 => (0.0, 6.0),
        }
    }

    /// The clamp range in the int8 domain of `output`, as TensorFlow Lite's
    /// `CalculateActivationRangeQuantized`.
    pub fn range_i8(self, output: QParams) -> Clamp {
        let quantize = |f: f32| {
            output
                .zero_point
                .saturating_add(round_to_i32(f / output.scale))
        };
        let (lo, hi) = match self {
            Activation::None => (-128, 127),
            Activation::Relu => (quantize(0.0).max(-128), 127),
            Activation::Relu6 => (quantize(0.0).max(-128), quantize(6.0).min(127)),
        };
        // A zero point of 127 with ReLU still gives a valid (one-value) range.
        let lo = lo.min(127);
        let hi = hi.max(lo);
        Clamp {
            min: lo as i8,
            max: hi as i8,
        }
    }
}

impl Activation {
    /// The clamp of this activation on an int16 output of `output`'s
    /// quantization, as TensorFlow Lite's 16x8 kernels compute it.
    pub fn range_i16(self, output: QParams) -> Clamp16 {
        let quantize = |f: f32| {
            output
                .zero_point
                .saturating_add(round_to_i32(f / output.scale))
        };
        let (lo, hi) = match self {
            Activation::None => (-32768, 32767),
            Activation::Relu => (quantize(0.0).max(-32768), 32767),
            Activation::Relu6 => (quantize(0.0).max(-32768), quantize(6.0).min(32767)),
        };
        let lo = lo.min(32767);
        Clamp16 {
            min: lo,
            max: hi.max(lo),
        }
    }
}

/// An int16 clamp: the fused activation's range in the output's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clamp16 {
    /// Lowest output.
    pub min: i32,
    /// Highest output.
    pub max: i32,
}

impl Clamp16 {
    /// The whole int16 range.
    pub const FULL: Clamp16 = Clamp16 {
        min: -32768,
        max: 32767,
    };

    /// Checks `min <= max` within int16.
    pub fn new(min: i32, max: i32) -> Result<Self> {
        if !(-32768..=32767).contains(&min) || !(-32768..=32767).contains(&max) || min > max {
            return Err(invalid("int16 clamp outside int16 or empty"));
        }
        Ok(Clamp16 { min, max })
    }

    /// `v` clamped, as int16.
    #[inline]
    pub fn apply(&self, v: i32) -> i16 {
        v.clamp(self.min, self.max) as i16
    }
}

pub use crate::arch::Clamp;

/// Checks a requantization table, per channel or one entry for the whole
/// tensor: equal lengths, shifts in range, multipliers not negative.
pub(crate) fn check_requant(
    what: &'static str,
    channels: usize,
    multipliers: &[i32],
    shifts: &[i32],
) -> Result<()> {
    // Per channel, or one multiplier and shift for the whole tensor.
    let len = if multipliers.len() == 1 { 1 } else { channels };
    crate::error::check_len(what, len, multipliers.len())?;
    crate::error::check_len(what, len, shifts.len())?;
    if shifts.iter().any(|s| !(-31..=30).contains(s)) {
        return Err(invalid("shift outside -31..=30"));
    }
    if multipliers.iter().any(|&m| m < 0) {
        return Err(invalid("negative multiplier"));
    }
    Ok(())
}

/// Moves int8 values from one quantization to another, as TensorFlow Lite's
/// `Requantize`: `zp_out + M * (q - zp_in)` with `M = s_in / s_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rescale {
    /// Zero point of the input.
    pub input_zero_point: i32,
    /// `s_in / s_out` in fixed point.
    pub requant: Requant,
    /// Zero point of the output.
    pub output_zero_point: i32,
}

impl Rescale {
    /// No change of quantization.
    pub const IDENTITY: Rescale = Rescale {
        input_zero_point: 0,
        requant: Requant::ONE,
        output_zero_point: 0,
    };

    /// The rescale from `input` to `output` parameters.
    pub fn new(input: QParams, output: QParams) -> Result<Self> {
        let real = f64::from(input.scale) / f64::from(output.scale);
        Ok(Rescale {
            input_zero_point: input.zero_point,
            requant: quantize_multiplier(real)?,
            output_zero_point: output.zero_point,
        })
    }

    /// The rescale as TensorFlow Lite's `RELU` and `RELU6` compute it:
    /// `s_in / s_out` divided in single precision.
    pub fn new_single(input: QParams, output: QParams) -> Result<Self> {
        let real = f64::from(input.scale / output.scale);
        Ok(Rescale {
            input_zero_point: input.zero_point,
            requant: quantize_multiplier(real)?,
            output_zero_point: output.zero_point,
        })
    }

    /// Checks zero points and shift.
    pub fn validate(&self) -> Result<()> {
        if !(-128..=127).contains(&self.input_zero_point)
            || !(-128..=127).contains(&self.output_zero_point)
        {
            return Err(invalid("zero point must be in -128..=127"));
        }
        if !self.requant.is_valid() {
            return Err(invalid("shift outside -31..=30"));
        }
        Ok(())
    }

    /// True when every value maps to itself.
    pub fn is_identity(&self) -> bool {
        self.input_zero_point == self.output_zero_point && self.requant == Requant::ONE
    }

    /// The rescaled value before clamping.
    #[inline(always)]
    pub fn apply(&self, q: i8) -> i32 {
        self.requant
            .apply(q as i32 - self.input_zero_point)
            .wrapping_add(self.output_zero_point)
    }
}

/// The requantization of a convolution or dense output channel:
/// `s_in * s_w / s_out`, computed in double precision as TensorFlow Lite's
/// `PopulateConvolutionQuantizationParams`.
pub fn conv_requant(input_scale: f32, weight_scale: f32, output_scale: f32) -> Result<Requant> {
    if !(input_scale > 0.0 && weight_scale >= 0.0 && output_scale > 0.0) {
        return Err(invalid("scales must be positive"));
    }
    quantize_multiplier(f64::from(input_scale) * f64::from(weight_scale) / f64::from(output_scale))
}

/// The requantization of a dense layer with one weight scale for the whole
/// tensor: TensorFlow Lite takes `s_in * s_w` in single precision first
/// (`GetQuantizedConvolutionMultipler`), then divides in double precision.
pub fn dense_requant_per_tensor(
    input_scale: f32,
    weight_scale: f32,
    output_scale: f32,
) -> Result<Requant> {
    if !(input_scale > 0.0 && weight_scale >= 0.0 && output_scale > 0.0) {
        return Err(invalid("scales must be positive"));
    }
    quantize_multiplier(f64::from(input_scale * weight_scale) / f64::from(output_scale))
}

#[cfg(test)]
mod tests;
