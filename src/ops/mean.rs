//! Mean over rows and columns into its own quantization: TensorFlow Lite's
//! `MEAN` over height and width, the global average pooling Keras models
//! end with. A float mean is the average pool over the whole input
//! ([`Pool2dConfig::global`](crate::ops::pool::Pool2dConfig::global)).
//!
//! The int8 mean is TensorFlow Lite's reference arithmetic: the sum of
//! `q - zp_in` over the cells, times `s_in / s_out` with the division by
//! the cell count folded into the fixed-point multiplier, plus `zp_out`.
//!
//! ```
//! use picocnn::ops::mean::MeanI8;
//! use picocnn::quant::QParams;
//! use picocnn::Shape;
//!
//! // Two channels over a 2x2 input, into a scale twice as coarse.
//! let mean = MeanI8::new(Shape::new(2, 2, 2), QParams::new(0.1, 0)?, QParams::new(0.2, 0)?)?;
//! let mut out = [0i8; 2];
//! mean.run(&[10, -3, 20, -3, 30, -3, 40, -2], &mut out)?;
//! assert_eq!(out, [13, -1]);
//! # Ok::<(), picocnn::Error>(())
//! ```

use crate::error::{check_len, invalid, Result};
use crate::quant::{multiply_by_quantized_multiplier, QParams, Requant, Rescale};
use crate::tensor::Shape;

/// The largest number of cells one mean sums: their int8 sum stays in
/// int32.
pub const MAX_CELLS: usize = 1 << 22;

/// A ready-to-run int8 mean over the rows and columns of one input shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeanI8 {
    input: Shape,
    /// From the input's zero point to the output's, the multiplier
    /// holding `s_in / (s_out * cells)`.
    rescale: Rescale,
}

impl MeanI8 {
    /// The mean of `input`'s cells per channel, from `q_in` to `q_out`.
    pub fn new(input: Shape, q_in: QParams, q_out: QParams) -> Result<Self> {
        let cells = input.h * input.w;
        if cells == 0 || cells > MAX_CELLS {
            return Err(invalid("mean input cells out of range"));
        }
        let r = Rescale::new(q_in, q_out)?;
        // TensorFlow Lite folds 1 / cells into the multiplier: shifted up
        // by the cells' bit length (at most 32, and keeping the shift
        // above -32), then divided.
        let k = (63 - (cells as u64).leading_zeros() as i32)
            .min(32)
            .min(31 + r.requant.shift);
        let multiplier = ((i64::from(r.requant.multiplier) << k) / cells as i64) as i32;
        MeanI8::from_parts(
            input,
            Rescale {
                requant: Requant {
                    multiplier,
                    shift: r.requant.shift - k,
                },
                ..r
            },
        )
    }

    /// From stored parts (the rescale with the count folded in).
    pub fn from_parts(input: Shape, rescale: Rescale) -> Result<Self> {
        rescale.validate()?;
        let cells = input.h * input.w;
        if cells == 0 || cells > MAX_CELLS || input.c == 0 {
            return Err(invalid("mean input cells out of range"));
        }
        if rescale.requant.multiplier < 0 {
            return Err(invalid("mean multiplier must not be negative"));
        }
        Ok(MeanI8 { input, rescale })
    }

    /// The stored parts.
    pub const fn rescale(&self) -> Rescale {
        self.rescale
    }

    /// The output shape, `1x1xC`.
    pub const fn output_shape(&self) -> Shape {
        Shape::new(1, 1, self.input.c)
    }

    /// The means of `input` (HWC) into `output` (C).
    pub fn run(&self, input: &[i8], output: &mut [i8]) -> Result<()> {
        self.means(input, output, |v| v.clamp(-128, 127) as i8)
    }

    /// [`run`](Self::run) on int16 tensors (TensorFlow Lite's 16x8 `MEAN`,
    /// the same arithmetic).
    pub fn run_i16(&self, input: &[i16], output: &mut [i16]) -> Result<()> {
        self.means(input, output, |v| v.clamp(-32768, 32767) as i16)
    }

    fn means<T: Copy + Into<i32>>(
        &self,
        input: &[T],
        output: &mut [T],
        narrow: impl Fn(i32) -> T,
    ) -> Result<()> {
        let c = self.input.c;
        check_len("mean input", self.input.len(), input.len())?;
        check_len("mean output", c, output.len())?;
        let cells = (self.input.h * self.input.w) as i32;
        let r = self.rescale;
        let offset = r.input_zero_point.wrapping_mul(cells);
        for (ch, o) in output.iter_mut().enumerate() {
            let mut sum = 0i32;
            for &q in input[ch..].iter().step_by(c) {
                sum = sum.wrapping_add(q.into());
            }
            let v = multiply_by_quantized_multiplier(
                sum.wrapping_sub(offset),
                r.requant.multiplier,
                r.requant.shift,
            );
            *o = narrow(v.saturating_add(r.output_zero_point));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::quantize_multiplier;
    use crate::rng::Rng;

    fn q(scale: f32, zp: i32) -> QParams {
        QParams::new(scale, zp).unwrap()
    }

    /// TensorFlow Lite's arithmetic written out: the rescale of the
    /// centred sum with the count's division folded in.
    fn reference(x: &[i8], shape: Shape, qi: QParams, qo: QParams) -> Vec<i8> {
        let n = (shape.h * shape.w) as i64;
        let r = quantize_multiplier(f64::from(qi.scale) / f64::from(qo.scale)).unwrap();
        let mut k = 0;
        while (2i64 << k) <= n {
            k += 1;
        }
        let k = k.min(32).min(31 + r.shift);
        let m = ((r.multiplier as i64) << k) / n;
        (0..shape.c)
            .map(|ch| {
                let sum: i64 = x[ch..].iter().step_by(shape.c).map(|&v| v as i64).sum();
                let centred = (sum - qi.zero_point as i64 * n) as i32;
                let v = multiply_by_quantized_multiplier(centred, m as i32, r.shift - k);
                (v + qo.zero_point).clamp(-128, 127) as i8
            })
            .collect()
    }

    #[test]
    fn means_follow_the_written_out_arithmetic() {
        let mut rng = Rng::new(3);
        for _ in 0..500 {
            let shape = Shape::new(1 + rng.below(12) as usize, 1 + rng.below(12) as usize, 3);
            let qi = q(
                0.001 + rng.below(1000) as f32 / 10000.0,
                rng.below(256) as i32 - 128,
            );
            let qo = q(
                0.001 + rng.below(1000) as f32 / 10000.0,
                rng.below(256) as i32 - 128,
            );
            let x: Vec<i8> = (0..shape.len()).map(|_| rng.below(256) as i8).collect();
            let m = MeanI8::new(shape, qi, qo).unwrap();
            let mut out = [0i8; 3];
            m.run(&x, &mut out).unwrap();
            assert_eq!(out.to_vec(), reference(&x, shape, qi, qo));
            // Within one step of the real mean where it is in range.
            for ch in 0..3 {
                let real: f32 = x[ch..]
                    .iter()
                    .step_by(3)
                    .map(|&v| qi.dequantize(v))
                    .sum::<f32>()
                    / (shape.h * shape.w) as f32;
                let want = real / qo.scale + qo.zero_point as f32;
                if (-127.0..126.0).contains(&want) {
                    assert!((out[ch] as f32 - want).abs() <= 1.01, "{want} {}", out[ch]);
                }
            }
        }
    }

    #[test]
    fn one_scale_keeps_the_rounded_mean() {
        let m = MeanI8::new(Shape::new(2, 1, 1), q(1.0, 0), q(1.0, 10)).unwrap();
        let mut out = [0i8];
        m.run(&[3, 4], &mut out).unwrap();
        assert_eq!(out, [14]);
        // -3.5 rounds up, as the fixed-point multiply does.
        m.run(&[-3, -4], &mut out).unwrap();
        assert_eq!(out, [7]);
        m.run(&[127, 127], &mut out).unwrap();
        assert_eq!(out, [127]);
    }

    #[test]
    fn bad_parts_are_refused() {
        let s = Shape::new(2, 2, 1);
        assert!(MeanI8::new(Shape::new(0, 2, 1), q(0.5, 0), q(0.5, 0)).is_err());
        let m = MeanI8::new(s, q(0.5, 0), q(0.5, 0)).unwrap();
        let mut r = m.rescale();
        r.requant.multiplier = -1;
        assert!(MeanI8::from_parts(s, r).is_err());
        r.requant.multiplier = 1;
        r.requant.shift = -40;
        assert!(MeanI8::from_parts(s, r).is_err());
        assert!(m.run(&[0; 3], &mut [0]).is_err());
        assert!(m.run(&[0; 4], &mut [0; 2]).is_err());
    }
}
