//! Dropout: in training each value is kept with probability `1 - p` (and
//! scaled up), decided by the image's seed; the identity otherwise.

use super::{Grads, Pass, TrainLayer};
use crate::rng::mix;

/// Dropout with probability `p`.
#[derive(Debug, Clone)]
pub(crate) struct Dropout {
    /// Probability of dropping a value.
    pub(crate) p: f32,
}

impl TrainLayer for Dropout {
    fn forward(&self, p: &Pass<'_>, y: &mut [f32]) {
        let (x, keep) = (p.x(), 1.0 - self.p);
        let active = self.for_each_kept(p, |j, kept| {
            y[j] = if kept { x[j] / keep } else { 0.0 };
        });
        if !active {
            y.copy_from_slice(x);
        }
    }

    fn backward(&self, p: &Pass<'_>, g: Grads<'_>) {
        let (dx, keep) = (&mut g.dx[p.inputs[0]], 1.0 - self.p);
        let active = self.for_each_kept(p, |j, kept| {
            if kept {
                dx[j] += g.dy[j] / keep;
            }
        });
        if !active {
            for (d, &v) in dx.iter_mut().zip(g.dy) {
                *d += v;
            }
        }
    }
}

impl Dropout {
    /// In training (and with `p > 0`), calls `f(j, kept)` for every value
    /// `j` of the batch and returns true; otherwise returns false: the
    /// layer is the identity.
    fn for_each_kept(&self, p: &Pass<'_>, mut f: impl FnMut(usize, bool)) -> bool {
        let Some(seeds) = p.dropout.filter(|_| self.p > 0.0) else {
            return false;
        };
        let (keep, n_y) = (1.0 - self.p, p.out_shape().len());
        for (n, &seed) in seeds.iter().enumerate().take(p.batch) {
            for k in 0..n_y {
                f(n * n_y + k, keep_bit(seed, p.node, k, keep));
            }
        }
        true
    }
}

/// Whether value `k` of layer `layer` survives for the image with `seed`.
fn keep_bit(seed: u64, layer: usize, k: usize, keep: f32) -> bool {
    let r = mix(seed ^ ((layer as u64) << 40) ^ k as u64);
    ((r >> 40) as f32 / 16_777_216.0) < keep
}
