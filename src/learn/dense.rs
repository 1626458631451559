//! The integer backward pass and update of a dense layer.
//!
//! With `x = s_x (x_q - z_x)`, `w[o] = s_w[o] w_q[o]`, bias `s_x s_w[o] b_q`
//! and the loss's gradient at the layer's output `g = s_g g_q` (int32 with a
//! real scale, as a quantized tensor), SGD with learning rate `lr` moves the
//! float weight by `-lr g[o] x[i]`. In the int8 weight's own units that is
//!
//! ```text
//! Δw_q[o][i] = -(lr s_g s_x / s_w[o]) · g_q[o] (x_q[i] - z_x)
//! Δb_q[o]    = -(lr s_g / (s_x s_w[o])) · g_q[o]
//! ```
//!
//! the update of quantization-aware scaling (MCUNetV3): the step of each
//! int8 value follows the float update, so one learning rate serves every
//! layer. Each per-channel factor is a Q31 multiplier and shift
//! ([`Steps`]); the products are exact in 64 bits and rounded
//! stochastically, unbiased, from a seeded generator, so updates far below
//! one step still move the weights on average and a seed repeats them bit
//! for bit. Weights stay in `-127..=127` (symmetric), biases saturate.
//! The same steps serve convolutions, where `g_q (x_q - z_x)` is summed
//! over the output positions first.

use crate::error::{check_len, invalid, Error, Result};
use crate::quant::Requant;
use crate::rng::Rng;

/// The per-channel factors of one dense layer's update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    /// `lr s_g s_x / s_w[o]`: weight steps per unit of `g_q (x_q - z_x)`.
    pub weight: Requant,
    /// `lr s_g / (s_x s_w[o])`: bias steps per unit of `g_q`.
    pub bias: Requant,
}

impl Steps {
    /// The factors of output channel `o` from the scales: learning rate
    /// `lr`, gradient scale `s_g`, input scale `s_x` and the channel's
    /// weight scale `s_w`.
    pub fn new(lr: f32, grad_scale: f32, input_scale: f32, weight_scale: f32) -> Result<Steps> {
        let (lr, sg, sx, sw) = (
            f64::from(lr),
            f64::from(grad_scale),
            f64::from(input_scale),
            f64::from(weight_scale),
        );
        if !(lr > 0.0 && sg > 0.0 && sx > 0.0 && sw > 0.0 && lr.is_finite()) {
            return Err(invalid("learning rate and scales must be positive"));
        }
        Ok(Steps {
            weight: step(lr * sg * sx / sw)?,
            bias: step(lr * sg / (sx * sw))?,
        })
    }
}

impl Steps {
    /// The four words a training buffer keeps: weight multiplier and
    /// shift, bias multiplier and shift.
    pub const fn words(&self) -> [i32; 4] {
        [
            self.weight.multiplier,
            self.weight.shift,
            self.bias.multiplier,
            self.bias.shift,
        ]
    }

    /// From [`words`](Self::words).
    pub const fn from_words(w: [i32; 4]) -> Steps {
        Steps {
            weight: Requant {
                multiplier: w[0],
                shift: w[1],
            },
            bias: Requant {
                multiplier: w[2],
                shift: w[3],
            },
        }
    }
}

/// A real factor as a Q31 multiplier and a shift of any size (steps of
/// deep layers are far below `2^-31`, where requantization multipliers
/// stop); factors below `f32::MIN_POSITIVE` become zero (no update), above
/// `2^30` an error.
pub(crate) fn step(real: f64) -> Result<Requant> {
    if !real.is_finite() {
        return Err(invalid("learning rate and scales must be finite"));
    }
    if real < f64::from(f32::MIN_POSITIVE) {
        return Ok(Requant {
            multiplier: 0,
            shift: 0,
        });
    }
    let (q, e) = crate::quant::frexp(real);
    let mut m = crate::quant::round_f64(q * 2_147_483_648.0) as i64;
    let mut shift = e;
    if m == 1 << 31 {
        m /= 2;
        shift += 1;
    }
    let r = Requant {
        multiplier: m as i32,
        shift,
    };
    if r.shift > 30 {
        return Err(Error::Unsupported {
            what: "learning rate too large for the layer's scales",
        });
    }
    Ok(r)
}

/// `-(v · factor · 2^exp)` rounded stochastically: up with the
/// probability of the fraction, so that the expected result is exact.
#[inline]
pub(crate) fn scaled_step(v: i64, factor: Requant, exp: i32, rng: &mut Rng) -> i64 {
    if v == 0 || factor.multiplier == 0 {
        return 0;
    }
    // Keep |v| below 2^31 so the product with the Q31 multiplier fits.
    let (mut v, mut exp) = (v, exp);
    let bits = 64 - v.unsigned_abs().leading_zeros() as i32;
    if bits > 31 {
        v >>= bits - 31;
        exp += bits - 31;
    }
    let mut p = -(v * factor.multiplier as i64);
    // factor · 2^exp = multiplier · 2^(shift + exp - 31).
    let mut frac_bits = 31 - factor.shift - exp;
    if frac_bits <= 0 {
        return p.saturating_mul(1i64 << (-frac_bits).min(62));
    }
    if frac_bits > 62 {
        // Keep 62 fraction bits; the truncated part is below 2^-62 steps.
        p >>= (frac_bits - 62).min(63);
        frac_bits = 62;
    }
    let floor = p >> frac_bits;
    let frac = (p - (floor << frac_bits)) as u64;
    let draw = rng.next_u64() >> (64 - frac_bits);
    floor + (frac > draw) as i64
}

/// Moves an int8 weight by `-(v · factor · 2^exp)`, kept symmetric.
#[inline]
pub(crate) fn step_weight(w: &mut i8, v: i64, factor: Requant, exp: i32, rng: &mut Rng) {
    let d = scaled_step(v, factor, exp, rng);
    *w = (*w as i64).saturating_add(d).clamp(-127, 127) as i8;
}

/// Moves an int32 bias by `-(v · factor · 2^exp)`, saturating.
#[inline]
pub(crate) fn step_bias(b: &mut i32, v: i64, factor: Requant, exp: i32, rng: &mut Rng) {
    let d = scaled_step(v, factor, exp, rng);
    *b = (*b as i64)
        .saturating_add(d)
        .clamp(i32::MIN as i64, i32::MAX as i64) as i32;
}

/// A dense layer's trainable parameters in RAM.
#[derive(Debug)]
pub struct DenseParams<'a> {
    /// `[out][in]` int8 weights, symmetric per output channel.
    pub weights: &'a mut [i8],
    /// int32 biases, scale `s_x s_w[o]`.
    pub bias: &'a mut [i32],
}

impl DenseParams<'_> {
    fn check(&self, inputs: usize, grad: &[i32], steps: &[Steps]) -> Result<usize> {
        let outputs = self.bias.len();
        if outputs == 0 || inputs == 0 {
            return Err(invalid("dense features must be at least 1"));
        }
        let n = outputs.checked_mul(inputs).ok_or(Error::Overflow)?;
        check_len("dense weights", n, self.weights.len())?;
        check_len("output gradient", outputs, grad.len())?;
        check_len("update steps", outputs, steps.len())?;
        Ok(outputs)
    }

    /// One SGD step from the layer's input `x` (int8, zero point
    /// `input_zero_point`) and the gradient at its output `grad` (int32 in
    /// the units [`Steps`] was made for). Rounding draws from `rng`.
    pub fn update(
        &mut self,
        x: &[i8],
        input_zero_point: i32,
        grad: &[i32],
        steps: &[Steps],
        rng: &mut Rng,
    ) -> Result<()> {
        self.check(x.len(), grad, steps)?;
        let n = x.len();
        for ((row, b), (&g, s)) in self
            .weights
            .chunks_exact_mut(n)
            .zip(self.bias.iter_mut())
            .zip(grad.iter().zip(steps))
        {
            if g == 0 {
                continue;
            }
            for (w, &xi) in row.iter_mut().zip(x) {
                let v = g as i64 * (xi as i64 - input_zero_point as i64);
                step_weight(w, v, s.weight, 0, rng);
            }
            step_bias(b, g as i64, s.bias, 0, rng);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_float_update_on_average() {
        // One output, four inputs; the float update is -lr * g * x / s_w.
        let (lr, sg, sx, sw) = (0.05f32, 1.0 / 256.0, 0.02, 0.004);
        let steps = [Steps::new(lr, sg, sx, sw).unwrap()];
        let x = [-128i8, -100, 0, 127];
        let zx = -128;
        let g = [-200i32];
        let runs = 4000;
        let mut sum = [0i64; 4];
        let mut sum_b = 0i64;
        for seed in 0..runs {
            let mut w = [0i8; 4];
            let mut b = [0i32];
            let mut p = DenseParams {
                weights: &mut w,
                bias: &mut b,
            };
            p.update(&x, zx, &g, &steps, &mut Rng::new(seed)).unwrap();
            for (s, &v) in sum.iter_mut().zip(&w) {
                *s += v as i64;
            }
            sum_b += b[0] as i64;
        }
        for (i, &s) in sum.iter().enumerate() {
            let want = -(lr * sg * sx / sw) as f64 * g[0] as f64 * (x[i] as f64 - zx as f64);
            let got = s as f64 / runs as f64;
            assert!((got - want).abs() < 0.05, "input {i}: {got} {want}");
        }
        let want_b = -(lr * sg / (sx * sw)) as f64 * g[0] as f64;
        assert!((sum_b as f64 / runs as f64 - want_b).abs() < 0.05);
        // Input 0 is at the zero point: its weight never moves.
        assert_eq!(sum[0], 0);
    }

    #[test]
    fn a_seed_repeats_and_weights_stay_symmetric() {
        let steps = [Steps::new(10.0, 1.0 / 256.0, 0.5, 0.001).unwrap(); 2];
        let x = [100i8, -100, 50];
        let run = |seed| {
            let mut w = [120i8, -120, 0, 5, 6, 7];
            let mut b = [i32::MAX - 1, 0];
            let mut p = DenseParams {
                weights: &mut w,
                bias: &mut b,
            };
            p.update(&x, 0, &[-255, 255], &steps, &mut Rng::new(seed))
                .unwrap();
            (w, b)
        };
        assert_eq!(run(3), run(3));
        let (w, b) = run(3);
        assert_eq!(&w[..3], &[127, -127, 127]);
        assert_eq!(b[0], i32::MAX);
        assert!(w.iter().all(|&v| v >= -127));
    }

    #[test]
    fn bad_shapes_are_errors() {
        let steps = [Steps::new(0.1, 1.0, 1.0, 1.0).unwrap()];
        let mut w = [0i8; 3];
        let mut b = [0i32; 1];
        let mut p = DenseParams {
            weights: &mut w,
            bias: &mut b,
        };
        let mut rng = Rng::new(0);
        assert!(p.update(&[1, 2], 0, &[1], &steps, &mut rng).is_err());
        assert!(p.update(&[1, 2, 3], 0, &[1, 2], &steps, &mut rng).is_err());
        assert!(Steps::new(0.0, 1.0, 1.0, 1.0).is_err());
        assert!(Steps::new(f32::NAN, 1.0, 1.0, 1.0).is_err());
    }
}
