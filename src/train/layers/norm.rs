//! Batch normalisation: batch statistics in training (the gradient flows
//! through them), running averages in evaluation.

use super::{Alloc, Grads, ParamBlock, Pass, TrainLayer};
use core::ops::Range;
use std::vec;
use std::vec::Vec;

/// Batch normalisation over `c` channels.
#[derive(Debug, Clone)]
pub(crate) struct BatchNorm {
    /// Channels.
    pub(crate) c: usize,
    /// Added to the variance.
    pub(crate) epsilon: f32,
    /// Gamma (the weight) and beta (the bias).
    pub(crate) params: ParamBlock,
    /// Running mean in the statistics.
    pub(crate) mean: Range<usize>,
    /// Running variance in the statistics.
    pub(crate) var: Range<usize>,
}

impl BatchNorm {
    /// Gamma ones, beta zeros, running mean zeros and variance ones.
    pub(crate) fn new(c: usize, epsilon: f32, alloc: &mut Alloc) -> BatchNorm {
        let weight = alloc.params(c, None);
        alloc.params[weight.clone()].fill(1.0);
        let bias = alloc.params(c, None);
        BatchNorm {
            c,
            epsilon,
            params: ParamBlock { weight, bias },
            mean: alloc.stats(c, 0.0),
            var: alloc.stats(c, 1.0),
        }
    }

    /// The mean and variance the layer normalises with: the batch's in
    /// training, the running averages otherwise.
    fn moments(&self, p: &Pass<'_>) -> (Vec<f32>, Vec<f32>) {
        if p.dropout.is_some() {
            channel_moments(p.x(), self.c)
        } else {
            (
                p.stats[self.mean.clone()].to_vec(),
                p.stats[self.var.clone()].to_vec(),
            )
        }
    }
}

impl TrainLayer for BatchNorm {
    fn forward(&self, p: &Pass<'_>, y: &mut [f32]) {
        let (x, c) = (p.x(), self.c);
        let (mean, var) = self.moments(p);
        let inv: Vec<f32> = var
            .iter()
            .map(|v| 1.0 / (v + self.epsilon).sqrt())
            .collect();
        let (gamma, beta) = (
            &p.params[self.params.weight.clone()],
            &p.params[self.params.bias.clone()],
        );
        for (k, v) in y.iter_mut().enumerate() {
            let ch = k % c;
            *v = gamma[ch] * (x[k] - mean[ch]) * inv[ch] + beta[ch];
        }
    }

    fn backward(&self, p: &Pass<'_>, g: Grads<'_>) {
        let (x, c, dy) = (p.x(), self.c, g.dy);
        let gamma = &p.params[self.params.weight.clone()];
        let (dgamma, dbeta) = {
            let (lo, hi) = g.dparams.split_at_mut(self.params.bias.start);
            (&mut lo[self.params.weight.clone()], &mut hi[..c])
        };
        let dx = &mut g.dx[p.inputs[0]];
        // With batch statistics (training) the gradient flows through them too.
        let training = p.dropout.is_some();
        let (mean, var) = self.moments(p);
        let normalized = |k: usize| {
            let ch = k % c;
            let inv = 1.0 / (var[ch] + self.epsilon).sqrt();
            (ch, inv, (x[k] - mean[ch]) * inv)
        };
        let mut sum_dxhat = vec![0.0f32; c];
        let mut sum_dxhat_xhat = vec![0.0f32; c];
        for k in 0..x.len() {
            let (ch, inv, xhat) = normalized(k);
            dgamma[ch] += dy[k] * xhat;
            dbeta[ch] += dy[k];
            if training {
                let dxhat = dy[k] * gamma[ch];
                sum_dxhat[ch] += dxhat;
                sum_dxhat_xhat[ch] += dxhat * xhat;
            } else {
                dx[k] += dy[k] * gamma[ch] * inv;
            }
        }
        if training {
            let m = (x.len() / c) as f32;
            for k in 0..x.len() {
                let (ch, inv, xhat) = normalized(k);
                let dxhat = dy[k] * gamma[ch];
                dx[k] += inv / m * (m * dxhat - sum_dxhat[ch] - xhat * sum_dxhat_xhat[ch]);
            }
        }
    }

    fn params(&self) -> Option<&ParamBlock> {
        Some(&self.params)
    }
}

/// Mean and (biased) variance per channel of NHWC values.
pub(crate) fn channel_moments(x: &[f32], c: usize) -> (Vec<f32>, Vec<f32>) {
    let m = (x.len() / c.max(1)).max(1) as f64;
    let mut mean = vec![0.0f64; c];
    for row in x.chunks_exact(c.max(1)) {
        for (a, &v) in mean.iter_mut().zip(row) {
            *a += v as f64;
        }
    }
    mean.iter_mut().for_each(|v| *v /= m);
    let mut var = vec![0.0f64; c];
    for row in x.chunks_exact(c.max(1)) {
        for ((a, &v), &mu) in var.iter_mut().zip(row).zip(&mean) {
            let d = v as f64 - mu;
            *a += d * d;
        }
    }
    (
        mean.iter().map(|&v| v as f32).collect(),
        var.iter().map(|&v| (v / m) as f32).collect(),
    )
}
