//! Residual addition of two tensors, with an activation.

use super::act::{act_grad, act_out};
use super::{Grads, Pass, TrainLayer};
use crate::quant::Activation;

/// `y = act(a + b)`.
#[derive(Debug, Clone)]
pub(crate) struct Add {
    /// The activation after the sum.
    pub(crate) act: Activation,
}

impl TrainLayer for Add {
    fn forward(&self, p: &Pass<'_>, y: &mut [f32]) {
        let (x, z) = (p.x(), &p.tensors[p.inputs[1]]);
        for k in 0..y.len() {
            y[k] = act_out(self.act, x[k] + z[k]);
        }
    }

    fn backward(&self, p: &Pass<'_>, g: Grads<'_>) {
        for k in 0..g.dy.len() {
            let d = g.dy[k] * act_grad(self.act, g.y[k]);
            g.dx[p.inputs[0]][k] += d;
            g.dx[p.inputs[1]][k] += d;
        }
    }
}
