//! Optimisers, learning-rate schedules and gradient clipping.

use std::vec;
use std::vec::Vec;

/// An optimiser and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// SGD with momentum (0 for none), optionally Nesterov, and L2 weight decay.
    Sgd {
        /// Momentum.
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 weight decay (added to the gradient).
        weight_decay: f32,
    },
    /// Adam (Keras defaults: beta1 0.9, beta2 0.999, epsilon 1e-7), with
    /// decoupled weight decay when `weight_decay > 0` (AdamW).
    Adam {
        /// beta1.
        beta1: f32,
        /// beta2.
        beta2: f32,
        /// epsilon.
        epsilon: f32,
        /// Decoupled weight decay (AdamW); 0 for Adam.
        weight_decay: f32,
    },
}

impl Optimizer {
    /// Adam with Keras's defaults.
    pub const fn adam() -> Self {
        Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
        }
    }
}

/// How the learning rate changes over training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Constant.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between steps.
        every: usize,
        /// Factor.
        gamma: f32,
    },
    /// Cosine decay to zero over the whole run.
    Cosine,
}

/// Learning rate at `step` of `total` steps (`steps_per_epoch` per epoch),
/// with a linear warm-up over the first `warmup` steps.
pub fn learning_rate(
    base: f32,
    schedule: Schedule,
    warmup: usize,
    step: usize,
    total: usize,
    steps_per_epoch: usize,
) -> f32 {
    let warm = if warmup > 0 && step < warmup {
        (step + 1) as f32 / warmup as f32
    } else {
        1.0
    };
    let factor = match schedule {
        Schedule::Constant => 1.0,
        Schedule::Step { every, gamma } => {
            gamma.powi((step / steps_per_epoch.max(1) / every.max(1)) as i32)
        }
        Schedule::Cosine => {
            let t = step.saturating_sub(warmup) as f32 / total.saturating_sub(warmup).max(1) as f32;
            0.5 * (1.0 + (core::f32::consts::PI * t.min(1.0)).cos())
        }
    };
    base * warm * factor
}

/// Optimiser state for one parameter vector.
#[derive(Debug, Clone)]
pub struct OptimState {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl OptimState {
    /// Fresh state for `n` parameters.
    pub fn new(n: usize) -> Self {
        OptimState {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// One update of `params` with gradients `grads` at learning rate `lr`;
    /// `decay[i]` says whether parameter `i` takes weight decay (weights do,
    /// biases do not).
    pub fn step(
        &mut self,
        opt: Optimizer,
        lr: f32,
        params: &mut [f32],
        grads: &[f32],
        decay: &[bool],
    ) {
        self.t += 1;
        match opt {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                for i in 0..params.len() {
                    let g = grads[i]
                        + if decay[i] {
                            weight_decay * params[i]
                        } else {
                            0.0
                        };
                    self.m[i] = momentum * self.m[i] + g;
                    let d = if nesterov {
                        g + momentum * self.m[i]
                    } else {
                        self.m[i]
                    };
                    params[i] -= lr * d;
                }
            }
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => {
                let c1 = 1.0 - beta1.powi(self.t);
                let c2 = 1.0 - beta2.powi(self.t);
                let lr_t = lr * c2.sqrt() / c1;
                for i in 0..params.len() {
                    let g = grads[i];
                    self.m[i] = beta1 * self.m[i] + (1.0 - beta1) * g;
                    self.v[i] = beta2 * self.v[i] + (1.0 - beta2) * g * g;
                    if decay[i] && weight_decay > 0.0 {
                        params[i] -= lr * weight_decay * params[i];
                    }
                    params[i] -= lr_t * self.m[i] / (self.v[i].sqrt() + epsilon);
                }
            }
        }
    }
}

/// Scales `grads` so that their L2 norm is at most `max_norm`; returns the
/// norm before clipping.
pub fn clip_by_norm(grads: &mut [f32], max_norm: f32) -> f32 {
    let norm = grads.iter().map(|g| g * g).sum::<f32>().sqrt();
    if norm > max_norm && norm > 0.0 {
        let s = max_norm / norm;
        grads.iter_mut().for_each(|g| *g *= s);
    }
    norm
}
