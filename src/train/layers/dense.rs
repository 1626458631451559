//! Fully connected layer with bias and activation: `Y = X W^T` over the
//! batch, and its weight and input gradients.

use super::act::{add_bias_act, bias_act_backward};
use super::{Alloc, Grads, ParamBlock, Pass, TrainLayer};
use crate::quant::Activation;
use crate::train::kernels::gemm::gemm;

/// A dense layer.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    /// Inputs per image.
    pub(crate) n_in: usize,
    /// Outputs per image.
    pub(crate) n_out: usize,
    /// The activation after the bias.
    pub(crate) act: Activation,
    /// `[out][in]` weights and one bias per output.
    pub(crate) params: ParamBlock,
}

impl Dense {
    /// Glorot-uniform weights and zero biases.
    pub(crate) fn new(n_in: usize, n_out: usize, act: Activation, alloc: &mut Alloc) -> Dense {
        let weight = alloc.params(n_in * n_out, Some((n_in, n_out)));
        let bias = alloc.params(n_out, None);
        Dense {
            n_in,
            n_out,
            act,
            params: ParamBlock { weight, bias },
        }
    }
}

impl TrainLayer for Dense {
    fn forward(&self, p: &Pass<'_>, y: &mut [f32]) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        gemm(
            p.batch,
            n_in,
            n_out,
            p.x(),
            n_in as isize,
            1,
            &p.params[self.params.weight.clone()],
            1,
            n_in as isize,
            0.0,
            y,
            n_out as isize,
            1,
        );
        add_bias_act(y, &p.params[self.params.bias.clone()], self.act);
    }

    fn backward(&self, p: &Pass<'_>, g: Grads<'_>) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        let ParamBlock { weight, bias } = &self.params;
        let dpre = bias_act_backward(self.act, g.dy, g.y, &mut g.dparams[bias.clone()]);
        // dW += dY^T X; dX += dY W.
        gemm(
            n_out,
            p.batch,
            n_in,
            &dpre,
            1,
            n_out as isize,
            p.x(),
            n_in as isize,
            1,
            1.0,
            &mut g.dparams[weight.clone()],
            n_in as isize,
            1,
        );
        gemm(
            p.batch,
            n_out,
            n_in,
            &dpre,
            n_out as isize,
            1,
            &p.params[weight.clone()],
            n_in as isize,
            1,
            1.0,
            &mut g.dx[p.inputs[0]],
            n_in as isize,
            1,
        );
    }

    fn params(&self) -> Option<&ParamBlock> {
        Some(&self.params)
    }

    fn weight_channels(&self) -> Option<usize> {
        Some(self.n_out)
    }

    fn macs(&self) -> usize {
        self.n_in * self.n_out
    }
}
