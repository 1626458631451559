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

/// One output channel's requantization with its shifts and rounding masks
/// worked out once, for the several accumulators a kernel requantizes with
/// it: [`multiply_by_nonneg_multiplier`] in parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    multiplier: i32,
    left: u32,
    right: u32,
    mask: i32,
    half: i32,
}

impl Scale {
    /// A multiplier checked not negative and `shift` in `-31..=30`.
    #[inline(always)]
    pub(crate) fn new(multiplier: i32, shift: i32) -> Self {
        let left = if shift > 0 { shift } else { 0 };
        let right = ((left - shift) & 31) as u32;
        let mask = ((1u32 << right) - 1) as i32;
        Scale {
            multiplier,
            left: left as u32,
            right,
            mask,
            half: mask >> 1,
        }
    }

    /// The requantized `x` (before the output's zero point and clamp).
    #[inline(always)]
    pub(crate) fn apply(self, x: i32) -> i32 {
        let high = crate::arch::rounding_high_mul(x.wrapping_shl(self.left), self.multiplier);
        // gemmlowp's RoundingDivideByPOT: half away from zero.
        let threshold = self.half + ((high as u32) >> 31) as i32;
        (high >> self.right) + ((high & self.mask) > threshold) as i32
    }
}

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

/// An int8 output range `min..=max` (fused activation in the quantized domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Clamp {
    /// Lowest output value.
    pub min: i8,
    /// Highest output value.
    pub max: i8,
}

impl Clamp {
    /// The whole int8 range.
    pub const NONE: Clamp = Clamp {
        min: -128,
        max: 127,
    };

    /// A checked range (`min <= max`).
    pub fn new(min: i8, max: i8) -> Result<Clamp> {
        if min <= max {
            Ok(Clamp { min, max })
        } else {
            Err(invalid("clamp min above max"))
        }
    }

    #[inline(always)]
    pub(crate) fn apply(&self, v: i32) -> i8 {
        // Not `Ord::clamp`, whose check of `min <= max` costs a compare and
        // branch per value: `new` has checked it.
        v.max(self.min as i32).min(self.max as i32) as i8
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_mul_from_halves_is_the_wide_one() {
        let wide = |x: i32, m: i32| ((x as i64 * m as i64 + (1 << 30)) >> 31) as i32;
        let edges = [
            i32::MIN,
            i32::MIN + 1,
            -65_536,
            -65_535,
            -32_768,
            -1,
            0,
            1,
            32_767,
            65_535,
            65_536,
            i32::MAX,
        ];
        for &x in &edges {
            for &m in &edges {
                assert_eq!(
                    crate::arch::portable::rounding_high_mul_16(x, m),
                    wide(x, m),
                    "{x} {m}"
                );
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..1_000_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (x, m) = (state as i32, (state >> 32) as i32);
            let x = x >> (state >> 59);
            assert_eq!(
                crate::arch::portable::rounding_high_mul_16(x, m),
                wide(x, m),
                "{x} {m}"
            );
        }
    }

    #[test]
    fn nonneg_multiplier_is_tflites() {
        let edges = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 30),
            -65_537,
            -1,
            0,
            1,
            65_535,
            1 << 30,
            i32::MAX - 1,
            i32::MAX,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as i32
        };
        for shift in -31..=30 {
            for &m in edges.iter().filter(|&&m| m >= 0) {
                for &x in &edges {
                    assert_eq!(
                        multiply_by_nonneg_multiplier(x, m, shift),
                        multiply_by_quantized_multiplier(x, m, shift),
                        "x {x} m {m} shift {shift}"
                    );
                }
            }
            for _ in 0..20_000 {
                let (x, m) = (next(), next() & i32::MAX);
                // Accumulators near zero, where the rounding cases lie.
                let small = x >> (next() & 31);
                for x in [x, small] {
                    assert_eq!(
                        multiply_by_nonneg_multiplier(x, m, shift),
                        multiply_by_quantized_multiplier(x, m, shift),
                        "x {x} m {m} shift {shift}"
                    );
                }
            }
        }
    }

    // The tests below pin what mutation testing (cargo-mutants) found the
    // other tests let through.
    #[test]
    fn quantize_and_dequantize_follow_the_affine_map() {
        let q = QParams::new(0.5, -3).unwrap();
        assert_eq!(q.quantize(0.0), -3);
        assert_eq!(q.quantize(2.0), 1);
        assert_eq!(q.quantize(-2.0), -7);
        assert_eq!(q.quantize(0.75), -1); // 1.5 rounds away from zero
        assert_eq!(q.quantize(1000.0), 127);
        assert_eq!(q.quantize(-1000.0), -128);
        assert_eq!(q.dequantize(-3), 0.0);
        assert_eq!(q.dequantize(1), 2.0);
        assert_eq!(q.dequantize(-7), -2.0);
        assert_eq!(q.dequantize(127), 65.0);
        assert_eq!(q.dequantize(-128), -62.5);
        for v in i8::MIN..=i8::MAX {
            assert_eq!(q.quantize(q.dequantize(v)), v);
        }
    }

    #[test]
    fn requant_shifts_the_kernels_take() {
        let r = |shift| Requant {
            multiplier: 1 << 30,
            shift,
        };
        assert!(r(-31).is_valid() && r(30).is_valid() && r(0).is_valid());
        assert!(!r(-32).is_valid() && !r(31).is_valid());
        assert!(Requant::ONE.is_valid());
    }

    #[test]
    fn pow2_saturates_outside_the_normal_range() {
        for k in [-1024, -1100, -5000, i32::MIN] {
            assert_eq!(pow2(k), 0.0, "{k}");
        }
        for k in [1025, 2000, i32::MAX] {
            assert_eq!(pow2(k), f64::INFINITY, "{k}");
        }
    }

    #[test]
    fn quantize_multiplier_negative_and_smallest() {
        // Rounds down to -2^31: halved, shift incremented.
        assert_eq!(
            quantize_multiplier(-(1.0 - 1e-12)).unwrap(),
            Requant {
                multiplier: -(1 << 30),
                shift: 1
            }
        );
        // 2^-32 is the smallest with a shift the kernels take.
        assert_eq!(
            quantize_multiplier(libm::exp2(-32.0)).unwrap(),
            Requant {
                multiplier: 1 << 30,
                shift: -31
            }
        );
        assert_eq!(
            quantize_multiplier(libm::exp2(-33.0)).unwrap(),
            Requant {
                multiplier: 0,
                shift: 0
            }
        );
        // Saturated at both signs.
        assert_eq!(
            quantize_multiplier(-1e12).unwrap(),
            Requant {
                multiplier: i32::MIN + 1,
                shift: 30
            }
        );
        assert_eq!(
            quantize_multiplier(1e12).unwrap(),
            Requant {
                multiplier: i32::MAX,
                shift: 30
            }
        );
    }

    #[test]
    fn pow2_is_exact() {
        for k in -1022..1024 {
            assert_eq!(pow2(k), libm::exp2(f64::from(k)), "{k}");
        }
        assert_eq!(pow2(-1023), 0.0);
        assert_eq!(pow2(1024), f64::INFINITY);
    }

    #[test]
    fn rounding_is_half_away_from_zero_everywhere() {
        let cases: [(f32, i32); 16] = [
            (0.5, 1),
            (-0.5, -1),
            (1.5, 2),
            (2.5, 3),
            (-2.5, -3),
            (0.499_999_97, 0),
            (-0.499_999_97, 0),
            (8_388_607.5, 8_388_608),
            (8_388_609.0, 8_388_609),
            (-8_388_609.0, -8_388_609),
            (16_777_217.0, 16_777_216), // the nearest f32 is 2^24
            (2_147_483_520.0, 2_147_483_520),
            (2_147_483_648.0, i32::MAX),
            (-2_147_483_648.0, i32::MIN),
            (3.0e9, i32::MAX),
            (f32::NAN, 0),
        ];
        for (x, want) in cases {
            assert_eq!(round_to_i32(x), want, "{x}");
        }
        assert_eq!(round_to_i32(f32::NEG_INFINITY), i32::MIN);
        for (x, want) in [
            (0.5, 1.0),
            (-0.5, -1.0),
            (0.499_999_999_999_999_94, 0.0),
            (2.5, 3.0),
            (4_503_599_627_370_495.5, 4_503_599_627_370_496.0),
            (9_007_199_254_740_993.0, 9_007_199_254_740_992.0),
            (-1e300, -1e300),
        ] {
            assert_eq!(round_f64(x), want, "{x}");
        }
        assert!(round_f64(f64::NAN).is_nan());
    }

    #[test]
    fn frexp_matches_c() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(-3.0), (-0.75, 2));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
    }

    #[test]
    fn quantize_multiplier_edges() {
        assert_eq!(
            quantize_multiplier(1.0).unwrap(),
            Requant {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        // Rounds up to 2^31: halved, shift incremented.
        let r = quantize_multiplier(1.0 - 1e-12).unwrap();
        assert_eq!(
            r,
            Requant {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        assert_eq!(
            quantize_multiplier(1e-12).unwrap(),
            Requant {
                multiplier: 0,
                shift: 0
            }
        );
        assert_eq!(
            quantize_multiplier(1e12).unwrap(),
            Requant {
                multiplier: i32::MAX,
                shift: 30
            }
        );
        let r = quantize_multiplier(0.1).unwrap();
        assert_eq!(
            r,
            Requant {
                multiplier: 1_717_986_918,
                shift: -3
            }
        );
    }

    #[test]
    fn high_mul_equals_tflite_formula() {
        fn tflite(a: i32, b: i32) -> i32 {
            if a == i32::MIN && b == i32::MIN {
                return i32::MAX;
            }
            let ab = a as i64 * b as i64;
            let nudge = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
            ((ab + nudge) / (1i64 << 31)) as i32
        }
        let edges = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 30) - 1,
            -(1 << 30),
            -3,
            -2,
            -1,
            0,
            1,
            2,
            3,
            1 << 30,
            i32::MAX - 1,
            i32::MAX,
        ];
        for &a in &edges {
            for &b in &edges {
                assert_eq!(
                    saturating_rounding_doubling_high_mul(a, b),
                    tflite(a, b),
                    "{a} {b}"
                );
            }
        }
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (a, b) = (x as i32, (x >> 32) as i32);
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                tflite(a, b),
                "{a} {b}"
            );
            // Products landing exactly on a half.
            let a = (a >> 8) | 1;
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, 1 << 30),
                tflite(a, 1 << 30)
            );
        }
    }

    #[test]
    fn fixed_point_helpers() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(-4, 1), -2);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(multiply_by_quantized_multiplier(100, 1 << 30, 0), 50);
        assert_eq!(Requant::ONE.apply(-77), -77);
    }

    #[test]
    fn activation_ranges() {
        let q = QParams::new(0.05, -10).unwrap();
        assert_eq!(Activation::None.range_i8(q), Clamp::NONE);
        assert_eq!(Activation::Relu.range_i8(q), Clamp { min: -10, max: 127 });
        assert_eq!(Activation::Relu6.range_i8(q), Clamp { min: -10, max: 110 });
        let q = QParams::new(0.01, 127).unwrap();
        assert_eq!(Activation::Relu6.range_i8(q), Clamp { min: 127, max: 127 });
    }
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
