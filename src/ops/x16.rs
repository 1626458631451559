//! TensorFlow Lite's 16x8 kernels: int16 activations (symmetric, zero
//! point 0), int8 weights (symmetric per channel) and int64 biases, each
//! computing what TensorFlow Lite's reference kernels compute, bit for bit.
//!
//! Convolutions (general, grouped, depthwise) sum in int64 and requantize
//! with TensorFlow Lite's 64-bit `MultiplyByQuantizedMultiplier`
//! ([`requantize64`]); dense layers sum in int64 and requantize in double
//! precision (`round(sum * s_in * s_w / s_out)`), as TensorFlow Lite's
//! reference `FULLY_CONNECTED` does for 16x8; pools, the mean and
//! the residual add share the int8 arithmetic at int16's range; the
//! softmax reads two 513-entry tables the writer computes once.
//!
//! ```
//! use picocnn::ops::x16::requantize64;
//! // 0.5 as a Q31 multiplier: 1 << 30, shift 0.
//! assert_eq!(requantize64(1001, 1 << 30, 0), 501);
//! assert_eq!(requantize64(-1001, 1 << 30, 0), -500);
//! ```

use crate::arch::taps;
use crate::error::{check_len, invalid, Result};
use crate::ops::add::AddQuant;
use crate::ops::conv::{Conv2d, ConvKind};
use crate::ops::dense::Dense;
use crate::ops::pool::{Pool2d, PoolKind};
pub use crate::quant::Clamp16;
use crate::quant::{Rescale, Scale};

/// TensorFlow Lite's `MultiplyByQuantizedMultiplier` for a 64-bit sum:
/// the Q31 multiplier rounded to 16 bits, then one rounding shift.
/// `multiplier` is not negative and `shift` in `-31..=7` (a checked
/// model's); a result beyond int32 wraps as TensorFlow Lite's cast does.
#[inline]
pub fn requantize64(x: i64, multiplier: i32, shift: i32) -> i32 {
    let reduced = if multiplier < 0x7FFF_0000 {
        (multiplier + (1 << 15)) >> 16
    } else {
        0x7FFF
    };
    let total = (15 - shift) as u32;
    let round = 1i64 << (total - 1);
    (x.wrapping_mul(reduced as i64).wrapping_add(round) >> total) as i32
}

/// The shifts [`requantize64`] takes.
pub const SHIFTS: core::ops::RangeInclusive<i32> = -31..=7;

/// Weights of a 16x8 convolution or dense layer.
#[derive(Debug, Clone, Copy)]
pub struct WeightsI16<'a> {
    /// int8 filters in the int8 layer's layout (OHWI, HWO for depthwise,
    /// `[out][in]` for dense).
    pub filter: &'a [i8],
    /// int64 bias per output channel, scale `s_in * s_w[o]`.
    pub bias: &'a [i64],
    /// Q31 multiplier per output channel (or one for all).
    pub multiplier: &'a [i32],
    /// Shift per output channel (or one for all), in [`SHIFTS`].
    pub shift: &'a [i32],
}

impl WeightsI16<'_> {
    /// Checks lengths, multipliers and shifts.
    pub fn check(&self, filter_len: usize, channels: usize) -> Result<()> {
        check_len("16x8 filters", filter_len, self.filter.len())?;
        check_len("16x8 bias", channels, self.bias.len())?;
        let n = self.multiplier.len();
        if !(n == 1 || n == channels) || self.shift.len() != n {
            return Err(invalid("16x8 requantization per channel or per tensor"));
        }
        if self.multiplier.iter().any(|&m| m < 0) || self.shift.iter().any(|s| !SHIFTS.contains(s))
        {
            return Err(invalid("16x8 multiplier negative or shift outside -31..=7"));
        }
        Ok(())
    }

    #[inline]
    fn scale(&self, o: usize) -> (i32, i32) {
        let k = if self.multiplier.len() == 1 { 0 } else { o };
        (self.multiplier[k], self.shift[k])
    }
}

/// A 16x8 convolution: any geometry [`Conv2d`] takes.
pub fn conv(
    geom: &Conv2d,
    w: &WeightsI16<'_>,
    clamp: Clamp16,
    input: &[i16],
    output: &mut [i16],
) -> Result<()> {
    let (x, y) = (geom.input_shape(), geom.output_shape());
    check_len("16x8 convolution input", x.len(), input.len())?;
    check_len("16x8 convolution output", y.len(), output.len())?;
    let [kh, kw] = geom.kernel();
    let [sh, sw] = geom.stride();
    let [dh, dw] = geom.dilation();
    let [pt, pl] = geom.padding();
    let groups = geom.groups();
    let depthwise = geom.kind() == ConvKind::Depthwise;
    let depth = x.c / groups;
    let per_group = y.c / groups;
    w.check(geom.filter_len(), y.c)?;
    for oy in 0..y.h {
        let y0 = (oy * sh) as isize - pt as isize;
        let (ky_lo, ky_hi) = taps(y0, x.h, kh, dh);
        for ox in 0..y.w {
            let x0 = (ox * sw) as isize - pl as isize;
            let (kx_lo, kx_hi) = taps(x0, x.w, kw, dw);
            // The input cell of tap (ky, kx), inside the input by `taps`.
            let cell = |ky: usize, kx: usize| {
                let iy = (y0 + (ky * dh) as isize) as usize;
                let ix = (x0 + (kx * dw) as isize) as usize;
                (iy * x.w + ix) * x.c
            };
            for o in 0..y.c {
                let g = o / per_group;
                let mut acc = 0i64;
                for ky in ky_lo..ky_hi {
                    for kx in kx_lo..kx_hi {
                        let at = cell(ky, kx) + g * depth;
                        if depthwise {
                            let f = w.filter[(ky * kw + kx) * y.c + o] as i32;
                            acc += (f * input[at] as i32) as i64;
                        } else {
                            let row = ((o * kh + ky) * kw + kx) * depth;
                            for (&f, &v) in w.filter[row..row + depth]
                                .iter()
                                .zip(&input[at..at + depth])
                            {
                                acc += (f as i32 * v as i32) as i64;
                            }
                        }
                    }
                }
                let (m, s) = w.scale(o);
                let v = requantize64(acc.wrapping_add(w.bias[o]), m, s);
                output[(oy * y.w + ox) * y.c + o] = clamp.apply(v);
            }
        }
    }
    Ok(())
}

/// A 16x8 dense layer over the whole input: int8 `filter` (`[out][in]`),
/// int64 `bias` and, per output, the real multiplier `s_in * s_w / s_out`
/// in double precision.
pub fn dense(
    geom: &Dense,
    filter: &[i8],
    bias: &[i64],
    scale: &[f64],
    clamp: Clamp16,
    input: &[i16],
    output: &mut [i16],
) -> Result<()> {
    let (n_in, n_out) = (geom.in_features(), geom.out_features());
    check_len("16x8 dense input", n_in, input.len())?;
    check_len("16x8 dense output", n_out, output.len())?;
    check_len("16x8 dense filters", geom.weights_len(), filter.len())?;
    check_len("16x8 dense bias", n_out, bias.len())?;
    check_len("16x8 dense scales", n_out, scale.len())?;
    for (o, out) in output.iter_mut().enumerate() {
        let acc: i64 = filter[o * n_in..(o + 1) * n_in]
            .iter()
            .zip(input)
            .map(|(&f, &v)| (f as i32 * v as i32) as i64)
            .sum();
        let real = acc.wrapping_add(bias[o]) as f64 * scale[o];
        *out = clamp.apply(libm::round(real) as i32);
    }
    Ok(())
}

/// A 16x8 max or average pool (the input's quantization kept; padding
/// never counts).
pub fn pool(
    geom: &Pool2d,
    kind: PoolKind,
    clamp: Clamp16,
    input: &[i16],
    output: &mut [i16],
) -> Result<()> {
    let (x, y) = (geom.input_shape(), geom.output_shape());
    check_len("16x8 pool input", x.len(), input.len())?;
    check_len("16x8 pool output", y.len(), output.len())?;
    let (w, c) = (x.w, x.c);
    geom.for_each_window(|out, [ylo, yhi, xlo, xhi]| {
        let count = ((yhi - ylo) * (xhi - xlo)) as i32;
        for ch in 0..c {
            let cells = (ylo..yhi).flat_map(|yy| (xlo..xhi).map(move |xx| (yy * w + xx) * c + ch));
            let v = match kind {
                PoolKind::Max => cells.map(|i| input[i] as i32).fold(-32768, i32::max),
                PoolKind::Average => {
                    let acc: i32 = cells.map(|i| input[i] as i32).sum();
                    if count == 0 {
                        0
                    } else if acc > 0 {
                        (acc + count / 2) / count
                    } else {
                        (acc - count / 2) / count
                    }
                }
            };
            output[out + ch] = clamp.apply(v);
        }
    });
    Ok(())
}

/// TensorFlow Lite's left shift of both inputs of a 16x8 add.
pub const ADD_LEFT_SHIFT: i32 = 15;

/// The parameters of a 16x8 add (TensorFlow Lite's general scaling, a
/// left shift of 15).
pub fn add_quant(
    a: crate::quant::QParams,
    b: crate::quant::QParams,
    out: crate::quant::QParams,
) -> Result<AddQuant> {
    AddQuant::with_left_shift(a, b, out, ADD_LEFT_SHIFT)
}

#[inline]
fn add_one(q: &AddQuant, [s1, s2, so]: &[Scale; 3], clamp: Clamp16, x: i16, y: i16) -> i16 {
    let x = (x as i32 - q.input1_zero_point) << ADD_LEFT_SHIFT;
    let y = (y as i32 - q.input2_zero_point) << ADD_LEFT_SHIFT;
    let sum = s1.apply(x).wrapping_add(s2.apply(y));
    clamp.apply(so.apply(sum).wrapping_add(q.output_zero_point))
}

fn scales(q: &AddQuant) -> [Scale; 3] {
    [q.input1, q.input2, q.output].map(|r| Scale::new(r.multiplier, r.shift))
}

/// A 16x8 add of `a` and `b` into `output`.
pub fn add(q: &AddQuant, clamp: Clamp16, a: &[i16], b: &[i16], output: &mut [i16]) -> Result<()> {
    check_len("16x8 add second input", a.len(), b.len())?;
    check_len("16x8 add output", a.len(), output.len())?;
    let s = scales(q);
    for ((o, &x), &y) in output.iter_mut().zip(a).zip(b) {
        *o = add_one(q, &s, clamp, x, y);
    }
    Ok(())
}

/// A 16x8 add of `b` into `a`.
pub fn add_in_place(q: &AddQuant, clamp: Clamp16, a: &mut [i16], b: &[i16]) -> Result<()> {
    check_len("16x8 add second input", a.len(), b.len())?;
    let s = scales(q);
    for (x, &y) in a.iter_mut().zip(b) {
        *x = add_one(q, &s, clamp, *x, y);
    }
    Ok(())
}

/// An int16 requantization with a clamp (TensorFlow Lite's 16x8 `RELU`,
/// `RELU6` and `QUANTIZE` between int16 tensors).
pub fn rescale(r: &Rescale, clamp: Clamp16, input: &[i16], output: &mut [i16]) -> Result<()> {
    check_len("16x8 activation output", input.len(), output.len())?;
    for (o, &x) in output.iter_mut().zip(input) {
        *o = clamp.apply(one(r, x));
    }
    Ok(())
}

/// [`rescale`] in place.
pub fn rescale_in_place(r: &Rescale, clamp: Clamp16, data: &mut [i16]) {
    for x in data.iter_mut() {
        *x = clamp.apply(one(r, *x));
    }
}

#[inline]
fn one(r: &Rescale, x: i16) -> i32 {
    r.requant
        .apply(x as i32 - r.input_zero_point)
        .wrapping_add(r.output_zero_point)
}

/// Entries of one softmax table: 512 steps and the end point.
pub const LUT_LEN: usize = 513;

/// TensorFlow Lite's interpolating lookup in a 513-entry table over the
/// int16 range.
#[inline]
fn lookup(value: i16, lut: &[i16; LUT_LEN]) -> i16 {
    let index = (256 + (value >> 7) as i32) as usize;
    let offset = (value & 0x7f) as i32;
    let base = lut[index];
    let slope = lut[index + 1].wrapping_sub(base) as i32;
    base.wrapping_add(((slope * offset + 64) >> 7) as i16)
}

/// A 16x8 softmax over channels (TensorFlow Lite's `SoftmaxInt16`): the
/// differences from the row's maximum scaled by `multiplier` and
/// `left_shift` (`s_in * beta` over `10 / 65535`), through the `exp`
/// table, their sum's reciprocal through the `1 / (1 + x)` table; the
/// output has scale 1/32768.
pub fn softmax(
    multiplier: i32,
    left_shift: i32,
    exp: &[i16; LUT_LEN],
    one_over_one_plus_x: &[i16; LUT_LEN],
    channels: usize,
    input: &[i16],
    output: &mut [i16],
) -> Result<()> {
    check_len("16x8 softmax output", input.len(), output.len())?;
    if channels == 0 || !input.len().is_multiple_of(channels) {
        return Err(invalid("16x8 softmax channels"));
    }
    if multiplier < 0 || !(-31..=30).contains(&left_shift) {
        return Err(invalid("16x8 softmax multiplier"));
    }
    for (x, y) in input
        .chunks_exact(channels)
        .zip(output.chunks_exact_mut(channels))
    {
        let max = x.iter().copied().max().unwrap_or(0) as i32;
        let mut sum = 0i32;
        for (o, &v) in y.iter_mut().zip(x) {
            let diff = v as i32 - max;
            let scaled =
                crate::quant::multiply_by_quantized_multiplier(diff, multiplier, left_shift);
            let sym = scaled.wrapping_add(32767).clamp(-32768, 32767) as i16;
            *o = lookup(sym, exp);
            sum = sum.wrapping_add(*o as i32);
        }
        let headroom = (sum as u32).leading_zeros();
        let shifted = (((sum as i64) << (headroom.max(1) - 1)) + (1 << 13)) >> 14;
        let sym = (shifted - ((1 << 15) + (1 << 16))).clamp(-32768, 32767) as i16;
        let reciprocal = lookup(sym, one_over_one_plus_x) as i64;
        let right = 31 - headroom.min(31) as i32;
        let round = if right > 0 { 1i64 << (right - 1) } else { 0 };
        for o in y.iter_mut() {
            let r = ((*o as i64 * reciprocal + round) >> right.max(0)) as i32;
            *o = r.clamp(0, 32767) as i16;
        }
    }
    Ok(())
}

/// TensorFlow Lite's tables for the 16x8 softmax: `exp(x)` on `[-10, 0]`
/// and `1 / (1 + x)` on `[0, 1]`, each 512 steps and the end point,
/// in single precision as its `LUTPopulate` computes them.
#[cfg(feature = "std")]
pub fn softmax_tables() -> ([i16; LUT_LEN], [i16; LUT_LEN]) {
    let mut exp = [0i16; LUT_LEN];
    let mut inv = [0i16; LUT_LEN];
    lut(
        10.0 / 65535.0,
        32767,
        2.0 / 65535.0,
        0,
        |v| v.exp(),
        &mut exp,
    );
    lut(
        1.0 / 65535.0,
        -32768,
        2.0 / 65535.0,
        0,
        |v| 1.0 / (1.0 + v),
        &mut inv,
    );
    (exp, inv)
}

#[cfg(feature = "std")]
fn lut(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    f: impl Fn(f32) -> f32,
    table: &mut [i16; LUT_LEN],
) {
    let round = |v: f32| v.round();
    let input_min = input_scale * (-32768 - input_zero_point) as f32;
    let input_max = input_scale * (32767 - input_zero_point) as f32;
    let output_min = output_scale * (-32768 - output_zero_point) as f32;
    let output_max = output_scale * (32767 - output_zero_point) as f32;
    let steps = 512;
    let step = (input_max - input_min) / steps as f32;
    let half_step = step / 2.0;
    let scaling_inv = 65536.0 / (output_max - output_min);
    for (i, entry) in table.iter_mut().take(steps).enumerate() {
        let val = f(input_min + i as f32 * step);
        let val_mid = f(input_min + i as f32 * step + half_step);
        let val_next = f(input_min + (i + 1) as f32 * step);
        let sample = round(val * scaling_inv);
        let mid_interp = round((val_next * scaling_inv + round(val * scaling_inv)) / 2.0);
        let mid = round(val_mid * scaling_inv);
        let bias = round((mid_interp - mid) / 2.0);
        *entry = (sample - bias).clamp(-32768.0, 32767.0) as i16;
    }
    table[steps] = round(f(input_max) * scaling_inv).clamp(-32768.0, 32767.0) as i16;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TensorFlow Lite's arithmetic written out in 128 bits.
    fn reference(x: i64, m: i32, s: i32) -> i32 {
        let reduced: i128 = if m < 0x7FFF_0000 {
            ((m as i128) + (1 << 15)) >> 16
        } else {
            0x7FFF
        };
        let total = 15 - s;
        ((x as i128 * reduced + (1i128 << (total - 1))) >> total) as i32
    }

    #[test]
    fn requantize64_is_tflites() {
        let mut rng = crate::rng::Rng::new(1);
        for _ in 0..100_000 {
            let x = (rng.next_u64() as i64) >> (17 + rng.below(30));
            let m = (rng.next_u64() >> 33) as i32;
            let s = rng.below(39) as i32 - 31;
            assert_eq!(requantize64(x, m, s), reference(x, m, s), "{x} {m} {s}");
        }
        assert_eq!(
            requantize64(3, 0x7FFF_FFFF, 0),
            reference(3, 0x7FFF_FFFF, 0)
        );
    }

    #[test]
    fn bad_weights_and_clamps_are_refused() {
        let w = WeightsI16 {
            filter: &[1; 4],
            bias: &[0; 2],
            multiplier: &[1 << 30],
            shift: &[8],
        };
        assert!(w.check(4, 2).is_err());
        assert!(WeightsI16 { shift: &[0], ..w }.check(4, 2).is_ok());
        assert!(WeightsI16 { shift: &[0], ..w }.check(5, 2).is_err());
        assert!(Clamp16::new(-40000, 0).is_err());
        assert!(Clamp16::new(5, 4).is_err());
    }
}
