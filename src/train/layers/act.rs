//! Activations: a layer of their own, or fused after a bias (convolution,
//! dense).

use super::{Grads, Pass, TrainLayer};
use crate::quant::Activation;
use crate::train::kernels::gemm::sum_rows;
use std::vec::Vec;

/// An activation layer.
#[derive(Debug, Clone)]
pub(crate) struct Act {
    /// The activation.
    pub(crate) act: Activation,
}

impl TrainLayer for Act {
    fn forward(&self, p: &Pass<'_>, y: &mut [f32]) {
        let x = p.x();
        for k in 0..y.len() {
            y[k] = act_out(self.act, x[k]);
        }
    }

    fn backward(&self, p: &Pass<'_>, g: Grads<'_>) {
        let dx = g.dx[p.inputs[0]].iter_mut();
        for ((d, &dy), &y) in dx.zip(g.dy).zip(g.y) {
            *d += dy * act_grad(self.act, y);
        }
    }
}

/// The activation of `v`, inlined into other layers' per-value loops.
#[inline]
pub(super) fn act_out(a: Activation, v: f32) -> f32 {
    match a {
        Activation::None => v,
        Activation::Relu => v.max(0.0),
        Activation::Relu6 => v.clamp(0.0, 6.0),
    }
}

/// Derivative of the activation, from its output.
#[inline]
pub(super) fn act_grad(a: Activation, y: f32) -> f32 {
    match a {
        Activation::None => 1.0,
        Activation::Relu => (y > 0.0) as u8 as f32,
        Activation::Relu6 => (y > 0.0 && y < 6.0) as u8 as f32,
    }
}

/// `y[row][j] = act(y[row][j] + bias[j])` for every row of `bias.len()` values.
pub(super) fn add_bias_act(y: &mut [f32], bias: &[f32], act: Activation) {
    // Rows of at least 64 values vectorise; a few channels alone do not.
    let reps = 64usize.div_ceil(bias.len().max(1));
    let wide: Vec<f32> = bias
        .iter()
        .copied()
        .cycle()
        .take(bias.len() * reps)
        .collect();
    let mut rows = y.chunks_exact_mut(wide.len());
    for row in &mut rows {
        for (v, &b) in row.iter_mut().zip(&wide) {
            *v = act_out(act, *v + b);
        }
    }
    for (v, &b) in rows.into_remainder().iter_mut().zip(&wide) {
        *v = act_out(act, *v + b);
    }
}

/// The backward pass of [`add_bias_act`]: adds the bias gradient into `db`
/// and returns the gradient before the activation.
pub(super) fn bias_act_backward(
    act: Activation,
    dy: &[f32],
    y: &[f32],
    db: &mut [f32],
) -> Vec<f32> {
    let dpre: Vec<f32> = dy
        .iter()
        .zip(y)
        .map(|(d, &v)| d * act_grad(act, v))
        .collect();
    sum_rows(&dpre, db);
    dpre
}
