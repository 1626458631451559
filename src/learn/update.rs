//! Moving a trained op's parameters: the steps of each channel from its
//! layer's two constants, SGD with seeded stochastic rounding, and the same
//! walk writing the steps out before rounding
//! ([`FineTuner::expected_update`](super::FineTuner::expected_update)).

use super::backward::{conv_input, conv_weight_sums, dense_input, Sink};
use super::chain::{align8, Link, Op};
use super::dense::{step_bias, step_weight, Steps};
use crate::model::Train;
use crate::ops::WeightsI8;
use crate::quant::Requant;
use crate::rng::Rng;

/// A trained op's parameters in the training buffer.
pub(super) struct Params<'b> {
    pub filter: Option<&'b mut [i8]>,
    pub bias: &'b mut [i32],
    /// The layer's step constants: `lr s_g s_x² / s_y` and `lr s_g / s_y`
    /// as multiplier and shift; a channel's steps divide them by its
    /// requantization multiplier (`s_x s_w[o] / s_y`).
    pub steps: &'b [i32],
}

/// The parameters of `link` at byte `at` of `buf`.
pub(super) fn params<'b>(buf: &'b mut [u8], at: usize, link: &Link<'_>) -> Option<Params<'b>> {
    let w = link.weights()?;
    if link.train == Train::Frozen {
        return None;
    }
    let c = w.bias.len();
    let buf = &mut buf[at..];
    let (filter, buf) = if link.train == Train::All {
        let (f, rest) = buf.split_at_mut(align8(w.filter.len()));
        (
            Some(bytemuck::cast_slice_mut(&mut f[..w.filter.len()])),
            rest,
        )
    } else {
        (None, buf)
    };
    let (bias, buf) = buf.split_at_mut(align8(4 * c));
    let steps = &buf[..16];
    Some(Params {
        filter,
        bias: bytemuck::cast_slice_mut(&mut bias[..4 * c]),
        steps: bytemuck::cast_slice(steps),
    })
}

/// The update steps of output channel `o`: the layer's constants divided
/// by the channel's requantization multiplier, in integers (the same bits
/// on every target, and no table per channel).
pub(super) fn steps_of(steps: &[i32], w: &WeightsI8<'_>, o: usize) -> Steps {
    let per = |m: i32, s: i32| -> Requant {
        let (wm, ws) = (w.multiplier[o], w.shift[o]);
        if m <= 0 || wm <= 0 {
            return Requant {
                multiplier: 0,
                shift: 0,
            };
        }
        let (mut q, mut shift) = (((m as u64) << 31) / wm as u64, s - ws);
        while q >= 1 << 31 {
            q >>= 1;
            shift += 1;
        }
        Requant {
            multiplier: q as i32,
            shift,
        }
    };
    Steps {
        weight: per(steps[0], steps[1]),
        bias: per(steps[2], steps[3]),
    }
}

/// The input gradient of a convolution or dense layer into `sink`; the
/// exponent it adds.
pub(super) fn input_grad(
    link: &Link<'_>,
    filter: &[i8],
    w: &crate::ops::WeightsI8<'_>,
    g: &[i16],
    sink: &mut impl Sink,
) -> i32 {
    match &link.op {
        Op::Conv(conv, _) => conv_input(conv, filter, w.multiplier, w.shift, g, sink),
        Op::Dense(d, _) => dense_input(filter, w.multiplier, w.shift, g, d.in_features(), sink),
        Op::Pool(..) => 0,
    }
}

/// SGD on a trained op's parameters from its output gradient `g` (exponent
/// `e`) and its kept input `x`.
#[inline(never)]
pub(super) fn update(
    link: &Link<'_>,
    p: &mut Params<'_>,
    x: Option<&[i8]>,
    g: &[i16],
    e: i32,
    apply: &mut impl Apply,
) {
    let zx = link.input.qparams.map_or(0, |q| q.zero_point);
    let n = p.bias.len();
    match &link.op {
        Op::Dense(d, w) => {
            let inputs = d.in_features();
            for o in 0..n {
                let gv = g[o] as i64;
                if gv == 0 {
                    continue;
                }
                let s = steps_of(p.steps, w, o);
                if let (Some(f), Some(x)) = (p.filter.as_deref_mut(), x) {
                    let row = &mut f[o * inputs..(o + 1) * inputs];
                    for (i, (w, &xi)) in row.iter_mut().zip(x).enumerate() {
                        let v = gv * (xi as i64 - zx as i64);
                        apply.weight(o * inputs + i, w, v, s.weight, e);
                    }
                }
                apply.bias(o, &mut p.bias[o], gv, s.bias, e);
            }
        }
        Op::Conv(conv, w) => {
            if let (Some(f), Some(x)) = (p.filter.as_deref_mut(), x) {
                let steps = p.steps;
                // Weights come channel by channel: one division per channel.
                let mut at = (usize::MAX, steps_of(steps, w, 0).weight);
                conv_weight_sums(conv, x, zx, g, |o, k, v| {
                    if at.0 != o {
                        at = (o, steps_of(steps, w, o).weight);
                    }
                    apply.weight(k, &mut f[k], v, at.1, e);
                });
            }
            for o in 0..n {
                let v: i64 = g.iter().skip(o).step_by(n).map(|&v| v as i64).sum();
                apply.bias(o, &mut p.bias[o], v, steps_of(p.steps, w, o).bias, e);
            }
        }
        Op::Pool(..) => {}
    }
}

/// What a backward pass does with each trained parameter's step: `v`
/// times the channel's `factor` times `2^e`, negated.
pub(super) trait Apply {
    /// The next parameters are a trained op's: its filter from `weights`,
    /// its bias from `biases` in [`FineTuner::expected_update`]'s layout.
    fn at(&mut self, weights: usize, biases: usize);
    /// Weight `k` of the op's filter.
    fn weight(&mut self, k: usize, w: &mut i8, v: i64, factor: Requant, e: i32);
    /// Bias `o` of the op.
    fn bias(&mut self, o: usize, b: &mut i32, v: i64, factor: Requant, e: i32);
}

/// SGD with seeded stochastic rounding.
pub(super) struct Sgd<'r>(pub &'r mut Rng);

impl Apply for Sgd<'_> {
    #[inline(always)]
    fn at(&mut self, _weights: usize, _biases: usize) {}
    #[inline(always)]
    fn weight(&mut self, _k: usize, w: &mut i8, v: i64, factor: Requant, e: i32) {
        step_weight(w, v, factor, e, self.0);
    }
    #[inline(always)]
    fn bias(&mut self, _o: usize, b: &mut i32, v: i64, factor: Requant, e: i32) {
        step_bias(b, v, factor, e, self.0);
    }
}

/// The steps before rounding, written out; nothing moves.
pub(super) struct Expect<'o> {
    pub out: &'o mut [f32],
    pub weights: usize,
    pub biases: usize,
}

fn exact_step(v: i64, factor: Requant, e: i32) -> f32 {
    let scale = crate::quant::pow2(factor.shift - 31 + e);
    (-(v as f64) * f64::from(factor.multiplier) * scale) as f32
}

impl Apply for Expect<'_> {
    fn at(&mut self, weights: usize, biases: usize) {
        (self.weights, self.biases) = (weights, biases);
    }
    fn weight(&mut self, k: usize, _w: &mut i8, v: i64, factor: Requant, e: i32) {
        self.out[self.weights + k] = exact_step(v, factor, e);
    }
    fn bias(&mut self, o: usize, _b: &mut i32, v: i64, factor: Requant, e: i32) {
        self.out[self.biases + o] = exact_step(v, factor, e);
    }
}
