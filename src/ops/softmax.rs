//! Softmax over the last axis.
//!
//! The int8 kernel follows TensorFlow Lite's reference kernel to the bit:
//! differences to the row maximum are scaled into Q5.26, exponentiated with
//! gemmlowp's fixed-point `exp`, summed in Q12.19 and normalised with a
//! fixed-point reciprocal. The output has scale 1/256 and zero point -128.
//!
//! ```
//! use picocnn::ops::softmax::{softmax_float, SoftmaxI8};
//!
//! let mut p = [0.0f32; 3];
//! softmax_float(3, &[1.0f32, 1.0, 1.0], &mut p, 1.0)?;
//! assert!((p[0] - 1.0 / 3.0).abs() < 1e-6);
//!
//! let s = SoftmaxI8::new(0.1, 1.0)?;
//! let mut q = [0i8; 2];
//! s.run(2, &[0, 0], &mut q)?;
//! assert_eq!(q, [0, 0]); // 0.5 = (0 + 128) / 256
//! # Ok::<(), picocnn::Error>(())
//! ```

use crate::error::{check_len, invalid, Error, Result};
use crate::num::Real;
use crate::quant::{
    quantize_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul as srdhm,
};

/// Integer bits of the scaled input differences (Q5.26).
const SCALED_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19).
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// A ready-to-run int8 softmax: int8 in, int8 out with scale 1/256 and zero
/// point -128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SoftmaxI8 {
    input_multiplier: i32,
    input_left_shift: i32,
    diff_min: i32,
}

impl SoftmaxI8 {
    /// Parameters for an input of scale `input_scale` and softmax `beta`
    /// (TensorFlow Lite's `PreprocessSoftmaxScaling` and
    /// `CalculateInputRadius`).
    pub fn new(input_scale: f32, beta: f32) -> Result<Self> {
        if !(input_scale.is_finite() && input_scale > 0.0 && beta.is_finite() && beta > 0.0) {
            return Err(invalid(
                "softmax scale and beta must be finite and positive",
            ));
        }
        let real = (f64::from(beta)
            * f64::from(input_scale)
            * f64::from(1u32 << (31 - SCALED_DIFF_INTEGER_BITS)))
        .min(2_147_483_647.0);
        if real <= 1.0 {
            return Err(Error::Unsupported {
                what: "softmax input scale times beta below 2^-26",
            });
        }
        let r = quantize_multiplier(real)?;
        let radius = f64::from((1u32 << SCALED_DIFF_INTEGER_BITS) - 1)
            * f64::from(1u32 << (31 - SCALED_DIFF_INTEGER_BITS))
            / f64::from(1u32 << r.shift);
        // floor of a positive value
        let diff_min = -(radius as i32);
        SoftmaxI8::from_parts(r.multiplier, r.shift, diff_min)
    }

    /// From precomputed parts (as stored in a model).
    pub fn from_parts(input_multiplier: i32, input_left_shift: i32, diff_min: i32) -> Result<Self> {
        if !(0..=30).contains(&input_left_shift) {
            return Err(invalid("softmax left shift outside 0..=30"));
        }
        if diff_min > 0 {
            return Err(invalid("softmax diff_min must not be positive"));
        }
        Ok(SoftmaxI8 {
            input_multiplier,
            input_left_shift,
            diff_min,
        })
    }

    /// From parts that `from_parts` accepted before (a checked model record).
    pub(crate) const fn from_checked(
        input_multiplier: i32,
        input_left_shift: i32,
        diff_min: i32,
    ) -> Self {
        SoftmaxI8 {
            input_multiplier,
            input_left_shift,
            diff_min,
        }
    }

    /// `(multiplier, left_shift, diff_min)`.
    pub const fn parts(&self) -> (i32, i32, i32) {
        (self.input_multiplier, self.input_left_shift, self.diff_min)
    }

    /// Softmax over each row of `depth` values.
    pub fn run(&self, depth: usize, input: &[i8], output: &mut [i8]) -> Result<()> {
        if depth == 0 || !input.len().is_multiple_of(depth) {
            return Err(invalid("softmax input length not a multiple of depth"));
        }
        check_len("softmax output", input.len(), output.len())?;
        for (row, out) in input
            .chunks_exact(depth)
            .zip(output.chunks_exact_mut(depth))
        {
            self.row(row, out);
        }
        Ok(())
    }

    #[inline(always)]
    fn scaled_diff(&self, diff: i32) -> i32 {
        srdhm(
            diff.wrapping_shl(self.input_left_shift as u32),
            self.input_multiplier,
        )
    }

    fn row(&self, input: &[i8], output: &mut [i8]) {
        let max = input.iter().copied().max().unwrap_or(0) as i32;
        let mut sum_of_exps = 0i32;
        for &x in input {
            let diff = x as i32 - max;
            if diff >= self.diff_min {
                let e = exp_on_negative_values(self.scaled_diff(diff));
                sum_of_exps =
                    sum_of_exps.wrapping_add(rounding_divide_by_pot(e, ACCUMULATION_INTEGER_BITS));
            }
        }
        // The row maximum contributes exp(0) = 1, so the sum is positive.
        let headroom_plus_one = (sum_of_exps as u32).leading_zeros().min(31) as i32;
        let num_bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom_plus_one;
        let shifted_sum_minus_one =
            ((sum_of_exps as u32) << headroom_plus_one).wrapping_sub(1 << 31) as i32;
        let shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
        let exponent = num_bits_over_unit + 31 - 8;
        for (o, &x) in output.iter_mut().zip(input) {
            let diff = x as i32 - max;
            *o = if diff >= self.diff_min {
                let e = exp_on_negative_values(self.scaled_diff(diff));
                let unsat = rounding_divide_by_pot_wide(srdhm(shifted_scale, e), exponent);
                (unsat - 128).clamp(-128, 127) as i8
            } else {
                -128
            };
        }
    }
}

/// `RoundingDivideByPOT` for exponents that may exceed 31.
fn rounding_divide_by_pot_wide(x: i32, exponent: i32) -> i32 {
    if exponent <= 31 {
        return rounding_divide_by_pot(x, exponent.max(0));
    }
    let x = x as i64;
    let e = exponent.min(62);
    let mask = (1i64 << e) - 1;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i64::from(x < 0);
    ((x >> e) + i64::from(remainder > threshold)) as i32
}

/// gemmlowp's `SaturatingRoundingMultiplyByPOT`.
#[inline(always)]
fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent > 0 {
        let threshold = (1i32 << (31 - exponent)) - 1;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x << exponent
        }
    } else if exponent < 0 {
        rounding_divide_by_pot(x, -exponent)
    } else {
        x
    }
}

/// exp(a) for a in [-1/4, 0), all Q0.31 (gemmlowp).
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const ONE_OVER_3: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28); // a + 1/8
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    let poly = saturating_rounding_multiply_by_pot(
        srdhm(x4_over_4.wrapping_add(x3), ONE_OVER_3).wrapping_add(x2),
        -1,
    );
    CONSTANT_TERM.wrapping_add(srdhm(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// exp(a) for a <= 0 given in Q5.26, result in Q0.31 (gemmlowp).
fn exp_on_negative_values(a: i32) -> i32 {
    const FRACTIONAL_BITS: i32 = 31 - SCALED_DIFF_INTEGER_BITS;
    const ONE_QUARTER: i32 = 1 << (FRACTIONAL_BITS - 2);
    let a_mod_quarter_minus_one_quarter = (a & (ONE_QUARTER - 1)).wrapping_sub(ONE_QUARTER);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(
            a_mod_quarter_minus_one_quarter,
            SCALED_DIFF_INTEGER_BITS,
        ),
    );
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(-2^k) for k = -2..=4, in Q0.31.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if remainder & (1 << (FRACTIONAL_BITS + exponent)) != 0 {
            result = srdhm(result, multiplier);
        }
    }
    if a == 0 {
        i32::MAX
    } else {
        result
    }
}

/// 1 / (1 + x) for x in [0, 1), Q0.31 in and out, by Newton-Raphson (gemmlowp).
fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let sum = a as i64 + i32::MAX as i64;
    let half_denominator = ((sum + if sum >= 0 { 1 } else { -1 }) / 2) as i32;
    const C48_OVER_17: i32 = 1_515_870_810; // Q2.29
    const CNEG32_OVER_17: i32 = -1_010_580_540; // Q2.29
    let mut x = C48_OVER_17.wrapping_add(srdhm(half_denominator, CNEG32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = srdhm(half_denominator, x);
        let one_minus = (1i32 << 29).wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(saturating_rounding_multiply_by_pot(srdhm(x, one_minus), 2));
    }
    saturating_rounding_multiply_by_pot(x, 1)
}

/// Float softmax over each row of `depth` values: `exp(beta * (x - max)) / sum`.
pub fn softmax_float<T: Real>(
    depth: usize,
    input: &[T],
    output: &mut [T],
    beta: f32,
) -> Result<()> {
    if depth == 0 || !input.len().is_multiple_of(depth) {
        return Err(invalid("softmax input length not a multiple of depth"));
    }
    check_len("softmax output", input.len(), output.len())?;
    for (row, out) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let max = row
            .iter()
            .map(|x| x.to_f32())
            .fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m });
        let mut sum = 0.0f32;
        for (o, x) in out.iter_mut().zip(row) {
            let e = libm::expf((x.to_f32() - max) * beta);
            sum += e;
            *o = T::from_f32(e);
        }
        // Recompute rather than divide the stored value, which f16 rounded.
        for (o, x) in out.iter_mut().zip(row) {
            *o = T::from_f32(libm::expf((x.to_f32() - max) * beta) / sum);
        }
    }
    Ok(())
}

/// Scratch bytes the kernels of this module need: none (planners size one
/// arena from every kernel's `scratch_len`).
pub const fn scratch_len() -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_exp_is_close() {
        for i in 0..200 {
            let real = -(i as f64) * 0.1;
            let q = (real * (1u64 << 26) as f64) as i32;
            let e = exp_on_negative_values(q) as f64 / 2_147_483_648.0;
            assert!((e - real.exp()).abs() < 2e-6, "exp({real}) = {e}");
        }
    }

    #[test]
    fn reciprocal_is_close() {
        for i in 0..100 {
            let x = i as f64 / 100.0;
            let q = (x * 2_147_483_648.0) as i32;
            let r = one_over_one_plus_x_for_x_in_0_1(q) as f64 / 2_147_483_648.0;
            assert!((r - 1.0 / (1.0 + x)).abs() < 1e-6);
        }
    }
}
