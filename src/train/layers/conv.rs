//! Convolution with bias and activation: the forward pass as im2col and a
//! GEMM per group (or the direct one-channel kernel), the backward pass as
//! the bias, weight and input gradients.

use super::act::{add_bias_act, bias_act_backward};
use super::{Alloc, Grads, ParamBlock, Pass, TrainLayer};
use crate::ops::conv::Conv2d;
use crate::quant::Activation;
use crate::train::kernels::direct;
use crate::train::kernels::gemm::gemm;
use crate::train::kernels::im2col::{col2im, im2col, with_columns};

/// A convolution layer.
#[derive(Debug, Clone)]
pub(crate) struct Conv {
    /// Shapes, kernel, strides, padding, groups.
    pub(crate) geom: Conv2d,
    /// The activation after the bias.
    pub(crate) act: Activation,
    /// OHWI filters and one bias per output channel.
    pub(crate) params: ParamBlock,
}

impl Conv {
    /// Glorot-uniform filters (`fan_out` is the taps each input value feeds)
    /// and zero biases.
    pub(crate) fn new(geom: Conv2d, act: Activation, fan_out: usize, alloc: &mut Alloc) -> Conv {
        let weight = alloc.params(geom.filter_len(), Some((geom.filter_depth(), fan_out)));
        let bias = alloc.params(geom.output_shape().c, None);
        Conv {
            geom,
            act,
            params: ParamBlock { weight, bias },
        }
    }
}

impl TrainLayer for Conv {
    fn forward(&self, p: &Pass<'_>, y: &mut [f32]) {
        let (geom, x, batch) = (&self.geom, p.x(), p.batch);
        let w = &p.params[self.params.weight.clone()];
        if direct::is_single_channel(geom) {
            direct::forward(geom, x, batch, w, y);
        } else {
            let outs = geom.output_shape();
            let (n, k, opg) = (
                outs.h * outs.w * batch,
                geom.filter_depth(),
                self.per_group(),
            );
            with_columns(|col, _| {
                for g in 0..geom.groups() {
                    im2col(geom, x, batch, g, col);
                    // Y[p, g*opg + o] = sum_k col[p, k] * W[(g*opg + o) * K + k], all images at once.
                    gemm(
                        n,
                        k,
                        opg,
                        col,
                        k as isize,
                        1,
                        &w[g * opg * k..],
                        1,
                        k as isize,
                        0.0,
                        &mut y[g * opg..],
                        outs.c as isize,
                        1,
                    );
                }
            });
        }
        add_bias_act(y, &p.params[self.params.bias.clone()], self.act);
    }

    fn backward(&self, p: &Pass<'_>, g: Grads<'_>) {
        let ParamBlock { weight, bias } = &self.params;
        let dy = bias_act_backward(self.act, g.dy, g.y, &mut g.dparams[bias.clone()]);
        let (geom, x, batch) = (&self.geom, p.x(), p.batch);
        let (w, dw) = (&p.params[weight.clone()], &mut g.dparams[weight.clone()]);
        let xi = p.inputs[0];
        // The network input needs no gradient.
        let mut dx = (xi != 0).then_some(&mut g.dx[xi][..]);
        if direct::is_single_channel(geom) {
            return direct::backward(geom, x, batch, w, &dy, dw, dx);
        }
        let outs = geom.output_shape();
        let (n, k, opg) = (
            outs.h * outs.w * batch,
            geom.filter_depth(),
            self.per_group(),
        );
        with_columns(|col, dcol| {
            for g in 0..geom.groups() {
                im2col(geom, x, batch, g, col);
                let dyg = &dy[g * opg..];
                // dW[o, k] += sum_p dY[p, o] * col[p, k]
                gemm(
                    opg,
                    n,
                    k,
                    dyg,
                    1,
                    outs.c as isize,
                    col,
                    k as isize,
                    1,
                    1.0,
                    &mut dw[g * opg * k..],
                    k as isize,
                    1,
                );
                let Some(dx) = dx.as_deref_mut() else {
                    continue;
                };
                // dcol[p, k] = sum_o dY[p, o] * W[o, k]
                // The GEMM below overwrites every value (beta = 0).
                dcol.resize(n * k, 0.0);
                gemm(
                    n,
                    opg,
                    k,
                    dyg,
                    outs.c as isize,
                    1,
                    &w[g * opg * k..],
                    k as isize,
                    1,
                    0.0,
                    dcol,
                    k as isize,
                    1,
                );
                col2im(geom, dcol, batch, g, dx);
            }
        });
    }

    fn params(&self) -> Option<&ParamBlock> {
        Some(&self.params)
    }

    fn weight_channels(&self) -> Option<usize> {
        Some(self.geom.output_shape().c)
    }

    fn macs(&self) -> usize {
        self.geom.macs()
    }
}

impl Conv {
    /// Output channels per group.
    fn per_group(&self) -> usize {
        self.geom.output_shape().c / self.geom.groups()
    }
}
