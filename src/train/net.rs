//! A trainable f32 network: parameters, forward and backward passes for one
//! image, with the layers of [`Graph`].

use super::graph::{Graph, Layer};
use crate::ops::conv::Conv2d;
use crate::ops::pool::Pool2d;
use crate::ops::taps;
use crate::quant::Activation;
use crate::tensor::Shape;
use crate::{Error, Result};
use std::vec;
use std::vec::Vec;

/// A layer with its geometry and where its parameters live.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Conv {
        geom: Conv2d,
        act: Activation,
        w: usize,
        b: usize,
    },
    Dense {
        n_in: usize,
        n_out: usize,
        act: Activation,
        w: usize,
        b: usize,
    },
    MaxPool(Pool2d),
    AvgPool(Pool2d),
    Add(Activation),
    Concat,
    Act(Activation),
    Dropout(f32),
    /// Channels, gamma and beta offsets in the parameters, epsilon, and the
    /// offset of running mean then variance in `stats`.
    BatchNorm {
        c: usize,
        gamma: usize,
        beta: usize,
        epsilon: f32,
        stats: usize,
    },
}

/// A network ready to train: the graph, each tensor's shape and the
/// parameters in one flat vector.
#[derive(Debug, Clone)]
pub struct Net {
    pub(crate) graph: Graph,
    pub(crate) layers: Vec<Step>,
    pub(crate) shapes: Vec<Shape>,
    /// All parameters (weights OHWI for convolutions, `[out][in]` for dense
    /// layers, then biases), in node order.
    pub params: Vec<f32>,
    /// `(node, offset, len, is_weight)` of each parameter block.
    pub(crate) blocks: Vec<(usize, usize, usize, bool)>,
    /// Running means and variances of the batch-normalisation layers.
    pub stats: Vec<f32>,
    /// Quantization-aware training: per tensor, the int8 range its values
    /// are rounded to in the forward pass (see [`Net::set_fake_quant`]).
    pub(crate) fake_quant: Option<Vec<Option<(f32, f32)>>>,
}

/// Rounds `v` to the int8 grid covering `[lo, hi]` (and zero), as export
/// quantizes that tensor.
pub(crate) fn fake_quant(v: f32, lo: f32, hi: f32) -> f32 {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let s = if hi > lo {
        (hi - lo) / 255.0
    } else {
        1.0 / 255.0
    };
    let zp = (-128.0 - lo / s).round().clamp(-128.0, 127.0);
    ((v / s).round() + zp).clamp(-128.0, 127.0) * s - zp * s
}

/// Rounds each output channel's weights to symmetric int8 (`max |w| / 127`
/// steps), as export quantizes them.
pub(crate) fn fake_quant_weights(w: &mut [f32], channels: usize) {
    let per = w.len() / channels.max(1);
    for ch in w.chunks_mut(per.max(1)) {
        let m = ch.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        if m > 0.0 {
            let s = m / 127.0;
            ch.iter_mut().for_each(|v| *v = (*v / s).round() * s);
        }
    }
}

fn act_out(a: Activation, v: f32) -> f32 {
    match a {
        Activation::None => v,
        Activation::Relu => v.max(0.0),
        Activation::Relu6 => v.clamp(0.0, 6.0),
    }
}

/// Derivative of the activation, from its output.
fn act_grad(a: Activation, y: f32) -> f32 {
    match a {
        Activation::None => 1.0,
        Activation::Relu => (y > 0.0) as u8 as f32,
        Activation::Relu6 => (y > 0.0 && y < 6.0) as u8 as f32,
    }
}

pub(crate) use crate::rng::mix;

impl Net {
    /// Builds a network for `input` images, initialising weights with
    /// Glorot-uniform values from `seed` and biases with zeros.
    pub fn new(graph: Graph, input: Shape, seed: u64) -> Result<Net> {
        let mut shapes = vec![input];
        let mut layers = Vec::new();
        let mut params = Vec::new();
        let mut blocks = Vec::new();
        let mut stats = Vec::new();
        let mut rng = seed;
        for (i, node) in graph.nodes.iter().enumerate() {
            if node.inputs.is_empty() || node.inputs.iter().any(|&t| t >= shapes.len()) {
                return Err(Error::InvalidModel {
                    what: "layer input is not an earlier tensor",
                    index: i,
                });
            }
            let x = shapes[node.inputs[0]];
            let mut alloc =
                |n: usize, fan_in: usize, fan_out: usize, weight: bool, params: &mut Vec<f32>| {
                    let off = params.len();
                    let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
                    for _ in 0..n {
                        rng = mix(rng);
                        let u = (rng >> 40) as f32 / 16_777_216.0;
                        params.push(if weight { (2.0 * u - 1.0) * limit } else { 0.0 });
                    }
                    blocks.push((i, off, n, weight));
                    off
                };
            let in_shapes: Vec<Shape> = node.inputs.iter().map(|&t| shapes[t]).collect();
            let out = node.spec.output_shape(&in_shapes)?;
            let layer =
                match node.spec {
                    Layer::Conv2d {
                        out_channels,
                        kernel,
                        groups,
                        activation,
                        ..
                    } => {
                        let Some(geom) = node.spec.conv(x)? else {
                            unreachable!("a conv layer has a conv geometry")
                        };
                        let w = alloc(
                            geom.filter_len(),
                            geom.filter_depth(),
                            out_channels / groups * kernel[0] * kernel[1],
                            true,
                            &mut params,
                        );
                        let b = alloc(out_channels, 1, 1, false, &mut params);
                        Step::Conv {
                            geom,
                            act: activation,
                            w,
                            b,
                        }
                    }
                    Layer::Dense {
                        out_features,
                        activation,
                    } => {
                        let n_in = x.len();
                        let w = alloc(n_in * out_features, n_in, out_features, true, &mut params);
                        let b = alloc(out_features, 1, 1, false, &mut params);
                        Step::Dense {
                            n_in,
                            n_out: out_features,
                            act: activation,
                            w,
                            b,
                        }
                    }
                    Layer::MaxPool { .. } | Layer::AvgPool { .. } => {
                        let Some(pool) = node.spec.pool(x)? else {
                            unreachable!("a pool layer has a pool geometry")
                        };
                        if matches!(node.spec, Layer::MaxPool { .. }) {
                            Step::MaxPool(pool)
                        } else {
                            Step::AvgPool(pool)
                        }
                    }
                    Layer::Add { activation } => Step::Add(activation),
                    Layer::Concat => Step::Concat,
                    Layer::Activation(a) => Step::Act(a),
                    Layer::BatchNorm { epsilon } => {
                        let c = x.c;
                        let gamma = alloc(c, 1, 1, false, &mut params);
                        params[gamma..gamma + c].fill(1.0);
                        let beta = alloc(c, 1, 1, false, &mut params);
                        let off = stats.len();
                        stats.extend(std::iter::repeat_n(0.0, c));
                        stats.extend(std::iter::repeat_n(1.0, c));
                        Step::BatchNorm {
                            c,
                            gamma,
                            beta,
                            epsilon,
                            stats: off,
                        }
                    }
                    Layer::Dropout(p) => Step::Dropout(p),
                    Layer::Softmax { .. } => return Err(Error::Unsupported {
                        what:
                            "softmax in a training graph (the loss applies it; export appends it)",
                    }),
                };
            layers.push(layer);
            shapes.push(out);
        }
        for &h in &graph.heads {
            if h >= shapes.len() {
                return Err(Error::InvalidModel {
                    what: "head is not a tensor",
                    index: h,
                });
            }
        }
        if graph.heads.is_empty() {
            return Err(Error::InvalidParameter {
                what: "a network needs a classifier head",
            });
        }
        Ok(Net {
            graph,
            layers,
            shapes,
            params,
            blocks,
            stats,
            fake_quant: None,
        })
    }

    /// Quantization-aware training: `Some(ranges)` rounds each tensor `t`
    /// with `ranges[t] = Some((lo, hi))` to the int8 grid of that range in
    /// the forward pass, and the backward pass passes gradients straight
    /// through the rounding (not through the clipping); `None` turns it off.
    pub fn set_fake_quant(&mut self, ranges: Option<Vec<Option<(f32, f32)>>>) {
        self.fake_quant = ranges;
    }

    /// Rounds every convolution's and dense layer's weights to int8 per
    /// output channel, in place (quantization-aware training).
    pub(crate) fn fake_quantize_weights(&mut self) {
        for &(node, off, len, is_weight) in &self.blocks {
            let channels = match self.layers[node] {
                Step::Conv { geom, .. } => geom.output_shape().c,
                Step::Dense { n_out, .. } => n_out,
                _ => continue,
            };
            if is_weight {
                fake_quant_weights(&mut self.params[off..off + len], channels);
            }
        }
    }

    /// Tensors whose values an exported int8 model holds: every layer's
    /// output except those only a batch norm reads (folded) and dropout's.
    pub fn quantized_tensors(&self) -> Vec<bool> {
        let n = self.shapes.len();
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in self.graph.nodes.iter().enumerate() {
            node.inputs.iter().for_each(|&t| readers[t].push(i));
        }
        (0..n)
            .map(|t| {
                t > 0
                    && !matches!(self.graph.nodes[t - 1].spec, Layer::Dropout(_))
                    && !(readers[t].len() == 1
                        && matches!(
                            self.graph.nodes[readers[t][0]].spec,
                            Layer::BatchNorm { .. }
                        ))
            })
            .collect()
    }

    /// Shape of tensor `t` (0 is the input).
    pub fn shape(&self, t: usize) -> Shape {
        self.shapes[t]
    }

    /// The graph the network was built from.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Weights and biases of node `node` (a convolution or dense layer:
    /// filters OHWI, or `[out][in]`), or gamma and beta of a batch norm;
    /// `None` for layers without parameters.
    pub fn weights(&self, node: usize) -> Option<(&[f32], &[f32])> {
        let mut it = self.blocks.iter().filter(|b| b.0 == node);
        let (_, w, wn, _) = *it.next()?;
        let (_, b, bn, _) = *it.next()?;
        Some((&self.params[w..w + wn], &self.params[b..b + bn]))
    }

    /// Running mean and variance of batch-norm node `node`.
    pub fn batch_norm_stats(&self, node: usize) -> Option<(&[f32], &[f32])> {
        match *self.layers.get(node)? {
            Step::BatchNorm { c, stats, .. } => Some((
                &self.stats[stats..stats + c],
                &self.stats[stats + c..stats + 2 * c],
            )),
            _ => None,
        }
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// Multiply-accumulates of one inference.
    pub fn macs(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Step::Conv { geom, .. } => geom.macs(),
                Step::Dense { n_in, n_out, .. } => n_in * n_out,
                _ => 0,
            })
            .sum()
    }

    /// Forward pass of one image; returns every tensor. `dropout_seed` is
    /// `Some` in training (then dropout is active).
    pub fn forward(&self, input: &[f32], dropout_seed: Option<u64>) -> Vec<Vec<f32>> {
        let seeds = dropout_seed.map(|s| [s]);
        self.forward_batch(input, 1, seeds.as_ref().map(|s| &s[..]))
    }

    /// Backward pass of one image: given every tensor from
    /// [`forward`](Self::forward) (same `dropout_seed`) and the gradient of
    /// the loss at each head, adds the parameter gradients into `grads`.
    pub fn backward(
        &self,
        t: &[Vec<f32>],
        head_grads: &[(usize, Vec<f32>)],
        dropout_seed: Option<u64>,
        grads: &mut [f32],
    ) {
        let seeds = dropout_seed.map(|s| [s]);
        self.backward_batch(t, 1, head_grads, seeds.as_ref().map(|s| &s[..]), grads)
    }

    /// Forward pass of `batch` images stored one after another in `input`;
    /// returns every tensor, each holding the batch the same way. With
    /// `dropout` (one seed per image) dropout is active.
    pub fn forward_batch(
        &self,
        input: &[f32],
        batch: usize,
        dropout: Option<&[u64]>,
    ) -> Vec<Vec<f32>> {
        let mut t: Vec<Vec<f32>> = Vec::with_capacity(self.shapes.len());
        t.push(input.to_vec());
        let (mut col, dcol) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        for (i, (layer, node)) in self.layers.iter().zip(&self.graph.nodes).enumerate() {
            let x = &t[node.inputs[0]];
            let out_shape = self.shapes[i + 1];
            let (n_x, n_y) = (self.shapes[node.inputs[0]].len(), out_shape.len());
            let mut y = vec![0.0f32; n_y * batch];
            match *layer {
                Step::Conv { geom, act, w, b } => {
                    conv_forward(
                        &geom,
                        x,
                        batch,
                        &self.params[w..w + geom.filter_len()],
                        &mut y,
                        &mut col,
                    );
                    let oc = out_shape.c;
                    add_bias_act(&mut y, &self.params[b..b + oc], act);
                }
                Step::Dense {
                    n_in,
                    n_out,
                    act,
                    w,
                    b,
                } => {
                    // Y = X W^T, then bias and activation.
                    gemm(
                        batch,
                        n_in,
                        n_out,
                        x,
                        n_in as isize,
                        1,
                        &self.params[w..],
                        1,
                        n_in as isize,
                        0.0,
                        &mut y,
                        n_out as isize,
                        1,
                    );
                    add_bias_act(&mut y, &self.params[b..b + n_out], act);
                }
                Step::MaxPool(pool) | Step::AvgPool(pool) => {
                    let max = matches!(layer, Step::MaxPool(_));
                    for n in 0..batch {
                        pool_forward(
                            &pool,
                            &x[n * n_x..(n + 1) * n_x],
                            &mut y[n * n_y..(n + 1) * n_y],
                            max,
                        );
                    }
                }
                Step::Add(act) => {
                    let z = &t[node.inputs[1]];
                    for k in 0..y.len() {
                        y[k] = act_out(act, x[k] + z[k]);
                    }
                }
                Step::Concat => {
                    let total = out_shape.c;
                    let pixels = out_shape.h * out_shape.w;
                    let mut off = 0;
                    for &src in &node.inputs {
                        let c = self.shapes[src].c;
                        for n in 0..batch {
                            for p in 0..pixels {
                                let d = (n * pixels + p) * total + off;
                                y[d..d + c].copy_from_slice(
                                    &t[src][(n * pixels + p) * c..(n * pixels + p + 1) * c],
                                );
                            }
                        }
                        off += c;
                    }
                }
                Step::Act(act) => {
                    for k in 0..y.len() {
                        y[k] = act_out(act, x[k]);
                    }
                }
                Step::Dropout(p) => match dropout {
                    Some(seeds) if p > 0.0 => {
                        let keep = 1.0 - p;
                        for (n, &seed) in seeds.iter().enumerate().take(batch) {
                            for k in 0..n_y {
                                let j = n * n_y + k;
                                y[j] = if keep_bit(seed, i, k, keep) {
                                    x[j] / keep
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                    _ => y.copy_from_slice(x),
                },
                Step::BatchNorm {
                    c,
                    gamma,
                    beta,
                    epsilon,
                    stats,
                } => {
                    let (mean, var) = if dropout.is_some() {
                        channel_moments(x, c)
                    } else {
                        (
                            self.stats[stats..stats + c].to_vec(),
                            self.stats[stats + c..stats + 2 * c].to_vec(),
                        )
                    };
                    let inv: Vec<f32> = var.iter().map(|v| 1.0 / (v + epsilon).sqrt()).collect();
                    for (k, v) in y.iter_mut().enumerate() {
                        let ch = k % c;
                        *v = self.params[gamma + ch] * (x[k] - mean[ch]) * inv[ch]
                            + self.params[beta + ch];
                    }
                }
            }
            if let Some(Some((lo, hi))) = self.fake_quant.as_ref().and_then(|r| r.get(i + 1)) {
                y.iter_mut().for_each(|v| *v = fake_quant(*v, *lo, *hi));
            }
            t.push(y);
        }
        SCRATCH.with(|s| *s.borrow_mut() = (col, dcol));
        t
    }

    /// Backward pass of a batch from [`forward_batch`](Self::forward_batch):
    /// `head_grads` hold the loss gradient at each head for the whole batch.
    pub fn backward_batch(
        &self,
        t: &[Vec<f32>],
        batch: usize,
        head_grads: &[(usize, Vec<f32>)],
        dropout: Option<&[u64]>,
        grads: &mut [f32],
    ) {
        let mut g: Vec<Vec<f32>> = self
            .shapes
            .iter()
            .map(|s| vec![0.0; s.len() * batch])
            .collect();
        for (h, d) in head_grads {
            for (a, b) in g[*h].iter_mut().zip(d) {
                *a += b;
            }
        }
        let (mut col, mut dcol) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        // Tensors a head depends on: the others get no gradient.
        let mut live = vec![false; self.shapes.len()];
        for (h, _) in head_grads {
            live[*h] = true;
        }
        for (i, node) in self.graph.nodes.iter().enumerate().rev() {
            if live[i + 1] {
                node.inputs.iter().for_each(|&x| live[x] = true);
            }
        }
        for i in (0..self.layers.len()).rev() {
            let node = &self.graph.nodes[i];
            let out = i + 1;
            if !live[out] {
                continue;
            }
            let mut dy = std::mem::take(&mut g[out]);
            let y = &t[out];
            // Straight-through estimator: the rounding passes the gradient,
            // the clipping at the ends of the range does not.
            if let Some(Some((lo, hi))) = self.fake_quant.as_ref().and_then(|r| r.get(out)) {
                let (a, b) = (fake_quant(*lo, *lo, *hi), fake_quant(*hi, *lo, *hi));
                for (d, &v) in dy.iter_mut().zip(y) {
                    if v <= a && *lo < 0.0 || v >= b {
                        *d = 0.0;
                    }
                }
            }
            let xi = node.inputs[0];
            let (n_x, n_y) = (self.shapes[xi].len(), self.shapes[out].len());
            match self.layers[i] {
                Step::Conv { geom, act, w, b } => {
                    let oc = geom.output_shape().c;
                    let dpre: Vec<f32> = dy
                        .iter()
                        .zip(y)
                        .map(|(d, &v)| d * act_grad(act, v))
                        .collect();
                    sum_rows(&dpre, &mut grads[b..b + oc]);
                    let (pw, gw) = (
                        &self.params[w..w + geom.filter_len()],
                        &mut grads[w..w + geom.filter_len()],
                    );
                    conv_backward(
                        &geom,
                        &t[xi],
                        batch,
                        pw,
                        &dpre,
                        gw,
                        &mut g[xi],
                        &mut col,
                        &mut dcol,
                        xi != 0,
                    );
                }
                Step::Dense {
                    n_in,
                    n_out,
                    act,
                    w,
                    b,
                } => {
                    let dpre: Vec<f32> = dy
                        .iter()
                        .zip(y)
                        .map(|(d, &v)| d * act_grad(act, v))
                        .collect();
                    sum_rows(&dpre, &mut grads[b..b + n_out]);
                    // dW += dY^T X; dX += dY W.
                    let x = &t[xi];
                    gemm(
                        n_out,
                        batch,
                        n_in,
                        &dpre,
                        1,
                        n_out as isize,
                        x,
                        n_in as isize,
                        1,
                        1.0,
                        &mut grads[w..w + n_in * n_out],
                        n_in as isize,
                        1,
                    );
                    gemm(
                        batch,
                        n_out,
                        n_in,
                        &dpre,
                        n_out as isize,
                        1,
                        &self.params[w..w + n_in * n_out],
                        n_in as isize,
                        1,
                        1.0,
                        &mut g[xi],
                        n_in as isize,
                        1,
                    );
                }
                Step::MaxPool(pool) | Step::AvgPool(pool) => {
                    let max = matches!(self.layers[i], Step::MaxPool(_));
                    let (x, gx) = (&t[xi], &mut g[xi]);
                    for n in 0..batch {
                        pool_backward(
                            &pool,
                            &x[n * n_x..(n + 1) * n_x],
                            &y[n * n_y..(n + 1) * n_y],
                            &dy[n * n_y..(n + 1) * n_y],
                            &mut gx[n * n_x..(n + 1) * n_x],
                            max,
                        );
                    }
                }
                Step::Add(act) => {
                    for k in 0..dy.len() {
                        let d = dy[k] * act_grad(act, y[k]);
                        g[xi][k] += d;
                        g[node.inputs[1]][k] += d;
                    }
                }
                Step::Concat => {
                    let s = self.shapes[out];
                    let pixels = s.h * s.w;
                    let mut off = 0;
                    for &src in &node.inputs {
                        let c = self.shapes[src].c;
                        for q in 0..batch * pixels {
                            for k in 0..c {
                                g[src][q * c + k] += dy[q * s.c + off + k];
                            }
                        }
                        off += c;
                    }
                }
                Step::Act(act) => {
                    for k in 0..dy.len() {
                        g[xi][k] += dy[k] * act_grad(act, y[k]);
                    }
                }
                Step::BatchNorm {
                    c,
                    gamma,
                    beta,
                    epsilon,
                    stats,
                } => {
                    let x = &t[xi];
                    if dropout.is_some() {
                        // Batch statistics: the gradient flows through them too.
                        let (mean, var) = channel_moments(x, c);
                        let m = (x.len() / c) as f32;
                        let mut sum_dxhat = vec![0.0f32; c];
                        let mut sum_dxhat_xhat = vec![0.0f32; c];
                        for k in 0..x.len() {
                            let ch = k % c;
                            let inv = 1.0 / (var[ch] + epsilon).sqrt();
                            let xhat = (x[k] - mean[ch]) * inv;
                            grads[gamma + ch] += dy[k] * xhat;
                            grads[beta + ch] += dy[k];
                            let dxhat = dy[k] * self.params[gamma + ch];
                            sum_dxhat[ch] += dxhat;
                            sum_dxhat_xhat[ch] += dxhat * xhat;
                        }
                        for k in 0..x.len() {
                            let ch = k % c;
                            let inv = 1.0 / (var[ch] + epsilon).sqrt();
                            let xhat = (x[k] - mean[ch]) * inv;
                            let dxhat = dy[k] * self.params[gamma + ch];
                            g[xi][k] +=
                                inv / m * (m * dxhat - sum_dxhat[ch] - xhat * sum_dxhat_xhat[ch]);
                        }
                    } else {
                        for k in 0..x.len() {
                            let ch = k % c;
                            let inv = 1.0 / (self.stats[stats + c + ch] + epsilon).sqrt();
                            let xhat = (x[k] - self.stats[stats + ch]) * inv;
                            grads[gamma + ch] += dy[k] * xhat;
                            grads[beta + ch] += dy[k];
                            g[xi][k] += dy[k] * self.params[gamma + ch] * inv;
                        }
                    }
                }
                Step::Dropout(p) => match dropout {
                    Some(seeds) if p > 0.0 => {
                        let keep = 1.0 - p;
                        for (n, &seed) in seeds.iter().enumerate().take(batch) {
                            for k in 0..n_y {
                                let j = n * n_y + k;
                                if keep_bit(seed, i, k, keep) {
                                    g[xi][j] += dy[j] / keep;
                                }
                            }
                        }
                    }
                    _ => {
                        for k in 0..dy.len() {
                            g[xi][k] += dy[k];
                        }
                    }
                },
            }
        }
        SCRATCH.with(|s| *s.borrow_mut() = (col, dcol));
    }
}

/// `y[row][j] = act(y[row][j] + bias[j])` for every row of `bias.len()` values.
fn add_bias_act(y: &mut [f32], bias: &[f32], act: Activation) {
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

/// `acc[j] += sum over rows of x[row][j]` for rows of `acc.len()` values.
fn sum_rows(x: &[f32], acc: &mut [f32]) {
    // As in `add_bias_act`: rows of at least 64 values vectorise.
    let c = acc.len();
    let reps = 64usize.div_ceil(c.max(1));
    let mut wide = vec![0.0f32; c * reps];
    let mut rows = x.chunks_exact(wide.len());
    for row in &mut rows {
        for (a, &v) in wide.iter_mut().zip(row) {
            *a += v;
        }
    }
    for (a, &v) in wide.iter_mut().zip(rows.remainder()) {
        *a += v;
    }
    for part in wide.chunks_exact(c) {
        for (a, &v) in acc.iter_mut().zip(part) {
            *a += v;
        }
    }
}

/// Mean and (biased) variance per channel of NHWC values.
fn channel_moments(x: &[f32], c: usize) -> (Vec<f32>, Vec<f32>) {
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

impl Net {
    /// The batch statistics `(mean, variance)` of every batch-normalisation
    /// layer's input in the tensors of a training forward pass, in layer
    /// order: what the running averages are updated with.
    pub fn batch_norm_moments(&self, t: &[Vec<f32>]) -> Vec<(Vec<f32>, Vec<f32>)> {
        self.layers
            .iter()
            .zip(&self.graph.nodes)
            .filter_map(|(l, node)| match *l {
                Step::BatchNorm { c, .. } => Some(channel_moments(&t[node.inputs[0]], c)),
                _ => None,
            })
            .collect()
    }

    /// Replaces the running averages with `moments` (averaged over many
    /// batches by the caller): "precise" statistics for evaluation.
    pub fn set_running_stats(&mut self, moments: &[(Vec<f32>, Vec<f32>)]) {
        let mut k = 0;
        for layer in &self.layers {
            if let Step::BatchNorm { c, stats, .. } = *layer {
                if let Some((mean, var)) = moments.get(k) {
                    self.stats[stats..stats + c].copy_from_slice(&mean[..c]);
                    self.stats[stats + c..stats + 2 * c].copy_from_slice(&var[..c]);
                }
                k += 1;
            }
        }
    }
}

fn keep_bit(seed: u64, layer: usize, k: usize, keep: f32) -> bool {
    let r = mix(seed ^ ((layer as u64) << 40) ^ k as u64);
    ((r >> 40) as f32 / 16_777_216.0) < keep
}

/// Calls `f(col_offset, x_offset, len)` for every run of `len` values that
/// im2col copies for group `g`: the columns at `col_offset` (counted over
/// all images' columns) take the input at `x_offset` (counted over all
/// images). Padding taps are skipped; they stay zero.
fn for_each_window_run(
    geom: &Conv2d,
    batch: usize,
    g: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    let (ins, outs) = (geom.input_shape(), geom.output_shape());
    let [kh, kw] = geom.kernel();
    let [sh, sw] = geom.stride();
    let [dh, dw] = geom.dilation();
    let [pt, pl] = geom.padding();
    let cpg = ins.c / geom.groups();
    let k = kh * kw * cpg;
    let per = outs.h * outs.w * k;
    for n in 0..batch {
        let (col0, x0_img) = (n * per, n * ins.len());
        for oy in 0..outs.h {
            let y0 = (oy * sh) as isize - pt as isize;
            let (ky_lo, ky_hi) = taps(y0, ins.h, kh, dh);
            for ox in 0..outs.w {
                let x0 = (ox * sw) as isize - pl as isize;
                let (kx_lo, kx_hi) = taps(x0, ins.w, kw, dw);
                let row = col0 + (oy * outs.w + ox) * k;
                for ky in ky_lo..ky_hi {
                    let iy = (y0 + (ky * dh) as isize) as usize;
                    if cpg == ins.c && dw == 1 {
                        // One run per kernel row.
                        let ix = (x0 + kx_lo as isize) as usize;
                        f(
                            row + (ky * kw + kx_lo) * cpg,
                            x0_img + (iy * ins.w + ix) * ins.c,
                            (kx_hi - kx_lo) * cpg,
                        );
                        continue;
                    }
                    for kx in kx_lo..kx_hi {
                        let ix = (x0 + (kx * dw) as isize) as usize;
                        f(
                            row + (ky * kw + kx) * cpg,
                            x0_img + (iy * ins.w + ix) * ins.c + g * cpg,
                            cpg,
                        );
                    }
                }
            }
        }
    }
}

/// True when every window lies inside the input (no padding cells).
fn windows_inside(geom: &Conv2d) -> bool {
    let (ins, outs) = (geom.input_shape(), geom.output_shape());
    let [kh, kw] = geom.kernel();
    let [sh, sw] = geom.stride();
    let [dh, dw] = geom.dilation();
    geom.padding() == [0, 0]
        && (outs.h - 1) * sh + (kh - 1) * dh < ins.h
        && (outs.w - 1) * sw + (kw - 1) * dw < ins.w
}

std::thread_local! {
    /// The im2col and column-gradient buffers of this thread, kept from
    /// batch to batch.
    static SCRATCH: core::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { core::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// im2col of every output pixel of every image for group `g`:
/// `(batch * P) x K`, zero padding.
fn im2col(geom: &Conv2d, x: &[f32], batch: usize, g: usize, col: &mut Vec<f32>) {
    let outs = geom.output_shape();
    // Cells outside the input stay zero; when there are none, every cell is
    // written below and the buffer's old contents need no clearing.
    if !windows_inside(geom) {
        col.clear();
    }
    col.resize(batch * outs.h * outs.w * geom.filter_depth(), 0.0);
    for_each_window_run(geom, batch, g, |c, xi, len| {
        col[c..c + len].copy_from_slice(&x[xi..xi + len]);
    });
}

/// Adds the columns back into the input gradient (the adjoint of im2col).
fn col2im(geom: &Conv2d, col: &[f32], batch: usize, g: usize, dx: &mut [f32]) {
    for_each_window_run(geom, batch, g, |c, xi, len| {
        for (d, &v) in dx[xi..xi + len].iter_mut().zip(&col[c..c + len]) {
            *d += v;
        }
    });
}

/// `c = alpha * a * b + beta * c` with arbitrary strides (row, column).
#[allow(clippy::too_many_arguments)]
fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() as isize > (m as isize - 1) * rsa + (k as isize - 1) * csa);
    assert!(b.len() as isize > (k as isize - 1) * rsb + (n as isize - 1) * csb);
    assert!(c.len() as isize > (m as isize - 1) * rsc + (n as isize - 1) * csc);
    // SAFETY: the assertions above check that the slices cover the strided
    // m x k, k x n and m x n matrices (all strides are non-negative).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
}

/// Output columns the direct single-channel kernels compute at once: four
/// 8-lane vectors of independent accumulators.
const COLS: usize = 32;

/// A single-channel convolution (input channels 1, one group: the first
/// layer of a grayscale network) computed directly, without im2col: its
/// im2col matrix is `kh * kw` times the input and its GEMMs are too narrow
/// to run fast. Each image is padded once into a plane wide enough for
/// whole blocks of [`COLS`] output columns.
struct Plane {
    /// Padded input rows and columns.
    hp: usize,
    wp: usize,
    /// Output columns rounded up to a multiple of `COLS`.
    ow_pad: usize,
}

impl Plane {
    fn new(geom: &Conv2d) -> Plane {
        let outs = geom.output_shape();
        let [kh, kw] = geom.kernel();
        let [sh, sw] = geom.stride();
        let [dh, dw] = geom.dilation();
        let ow_pad = outs.w.div_ceil(COLS) * COLS;
        Plane {
            hp: (outs.h - 1) * sh + (kh - 1) * dh + 1,
            wp: (ow_pad - 1) * sw + (kw - 1) * dw + 1,
            ow_pad,
        }
    }

    /// Copies image `x` (HxWx1) into the zero-padded plane `xp`.
    fn fill(&self, geom: &Conv2d, x: &[f32], xp: &mut Vec<f32>) {
        let ins = geom.input_shape();
        let [pt, pl] = geom.padding();
        xp.clear();
        xp.resize(self.hp * self.wp, 0.0);
        for iy in 0..ins.h.min(self.hp.saturating_sub(pt)) {
            let n = ins.w.min(self.wp.saturating_sub(pl));
            let row = (iy + pt) * self.wp + pl;
            xp[row..row + n].copy_from_slice(&x[iy * ins.w..iy * ins.w + n]);
        }
    }

    /// Where tap `(ky, kx)` starts reading for output row `oy`.
    fn start(&self, geom: &Conv2d, oy: usize, ky: usize, kx: usize) -> usize {
        let [sh, _] = geom.stride();
        let [dh, dw] = geom.dilation();
        (oy * sh + ky * dh) * self.wp + kx * dw
    }
}

/// `acc[j] = sum over taps of w * x[base + off + j * step]`, taps in order:
/// the forward kernel.
fn taps_block(xp: &[f32], base: usize, taps: &[(usize, f32)], step: usize, acc: &mut [f32; COLS]) {
    #[cfg(target_arch = "x86_64")]
    if step == 1 {
        if std::is_x86_feature_detected!("avx512f") {
            return x86::taps_block_512(&xp[base..], taps, acc);
        }
        if std::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has AVX.
            return unsafe { x86::taps_block(&xp[base..], taps, acc) };
        }
    }
    taps_block_portable(xp, base, taps, step, acc)
}

fn taps_block_portable(
    xp: &[f32],
    base: usize,
    taps: &[(usize, f32)],
    step: usize,
    acc: &mut [f32; COLS],
) {
    *acc = [0.0; COLS];
    for &(off, w) in taps {
        let r = &xp[base + off..base + off + (COLS - 1) * step + 1];
        for (j, a) in acc.iter_mut().enumerate() {
            *a += w * r[j * step];
        }
    }
}

/// `acc[j] += dy[d0 + r * ds + j] * x[x0 + r * xs + j * step]` for rows
/// `r` in `0..n`: the weight-gradient kernel.
#[allow(clippy::too_many_arguments)]
fn rows_block(
    xp: &[f32],
    (x0, xs): (usize, usize),
    dy: &[f32],
    (d0, ds): (usize, usize),
    n: usize,
    step: usize,
    acc: &mut [f32; COLS],
) {
    #[cfg(target_arch = "x86_64")]
    if step == 1 {
        if std::is_x86_feature_detected!("avx512f") {
            return x86::rows_block_512(xp, (x0, xs), dy, (d0, ds), n, acc);
        }
        if std::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has AVX.
            return unsafe { x86::rows_block(xp, (x0, xs), dy, (d0, ds), n, acc) };
        }
    }
    rows_block_portable(xp, (x0, xs), dy, (d0, ds), n, step, acc)
}

#[allow(clippy::too_many_arguments)]
fn rows_block_portable(
    xp: &[f32],
    (x0, xs): (usize, usize),
    dy: &[f32],
    (d0, ds): (usize, usize),
    n: usize,
    step: usize,
    acc: &mut [f32; COLS],
) {
    for r in 0..n {
        let x = &xp[x0 + r * xs..x0 + r * xs + (COLS - 1) * step + 1];
        let d = &dy[d0 + r * ds..d0 + r * ds + COLS];
        for (j, a) in acc.iter_mut().enumerate() {
            *a += d[j] * x[j * step];
        }
    }
}

/// The same arithmetic, lane for lane (a multiply then an add, no FMA), so
/// the results are the bits of the portable code.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::COLS;
    use core::arch::x86_64::*;

    #[target_feature(enable = "avx")]
    pub(super) fn taps_block(xp: &[f32], taps: &[(usize, f32)], acc: &mut [f32; COLS]) {
        let mut a = [_mm256_setzero_ps(); COLS / 8];
        for &(off, w) in taps {
            let r: &[f32; COLS] = xp[off..off + COLS].try_into().expect("COLS");
            let wv = _mm256_set1_ps(w);
            for (k, ak) in a.iter_mut().enumerate() {
                // SAFETY: `r` holds COLS floats.
                let x = unsafe { _mm256_loadu_ps(r.as_ptr().add(8 * k)) };
                *ak = _mm256_add_ps(*ak, _mm256_mul_ps(wv, x));
            }
        }
        for (k, ak) in a.iter().enumerate() {
            // SAFETY: `acc` holds COLS floats.
            unsafe { _mm256_storeu_ps(acc.as_mut_ptr().add(8 * k), *ak) };
        }
    }

    /// [`taps_block`] in 16-lane vectors.
    pub(super) fn taps_block_512(xp: &[f32], taps: &[(usize, f32)], acc: &mut [f32; COLS]) {
        assert!(std::is_x86_feature_detected!("avx512f"));
        // SAFETY: the CPU has AVX-512F (checked above).
        unsafe { taps_512(xp, taps, acc) }
    }

    #[target_feature(enable = "avx512f")]
    fn taps_512(xp: &[f32], taps: &[(usize, f32)], acc: &mut [f32; COLS]) {
        let mut a = [_mm512_setzero_ps(); COLS / 16];
        for &(off, w) in taps {
            let r: &[f32; COLS] = xp[off..off + COLS].try_into().expect("COLS");
            let wv = _mm512_set1_ps(w);
            for (k, ak) in a.iter_mut().enumerate() {
                // SAFETY: `r` holds COLS floats.
                let x = unsafe { _mm512_loadu_ps(r.as_ptr().add(16 * k)) };
                *ak = _mm512_add_ps(*ak, _mm512_mul_ps(wv, x));
            }
        }
        for (k, ak) in a.iter().enumerate() {
            // SAFETY: `acc` holds COLS floats.
            unsafe { _mm512_storeu_ps(acc.as_mut_ptr().add(16 * k), *ak) };
        }
    }

    /// [`rows_block`] in 16-lane vectors.
    pub(super) fn rows_block_512(
        xp: &[f32],
        x: (usize, usize),
        dy: &[f32],
        d: (usize, usize),
        n: usize,
        acc: &mut [f32; COLS],
    ) {
        assert!(std::is_x86_feature_detected!("avx512f"));
        // SAFETY: the CPU has AVX-512F (checked above).
        unsafe { rows_512(xp, x, dy, d, n, acc) }
    }

    #[target_feature(enable = "avx512f")]
    fn rows_512(
        xp: &[f32],
        (x0, xs): (usize, usize),
        dy: &[f32],
        (d0, ds): (usize, usize),
        n: usize,
        acc: &mut [f32; COLS],
    ) {
        // SAFETY: `acc` holds COLS floats.
        let mut a: [__m512; COLS / 16] =
            core::array::from_fn(|k| unsafe { _mm512_loadu_ps(acc.as_ptr().add(16 * k)) });
        for r in 0..n {
            let x: &[f32; COLS] = xp[x0 + r * xs..][..COLS].try_into().expect("COLS");
            let d: &[f32; COLS] = dy[d0 + r * ds..][..COLS].try_into().expect("COLS");
            for (k, ak) in a.iter_mut().enumerate() {
                // SAFETY: `x` and `d` hold COLS floats.
                let (xv, dv) = unsafe {
                    (
                        _mm512_loadu_ps(x.as_ptr().add(16 * k)),
                        _mm512_loadu_ps(d.as_ptr().add(16 * k)),
                    )
                };
                *ak = _mm512_add_ps(*ak, _mm512_mul_ps(dv, xv));
            }
        }
        for (k, ak) in a.iter().enumerate() {
            // SAFETY: `acc` holds COLS floats.
            unsafe { _mm512_storeu_ps(acc.as_mut_ptr().add(16 * k), *ak) };
        }
    }

    #[target_feature(enable = "avx")]
    pub(super) fn rows_block(
        xp: &[f32],
        (x0, xs): (usize, usize),
        dy: &[f32],
        (d0, ds): (usize, usize),
        n: usize,
        acc: &mut [f32; COLS],
    ) {
        // SAFETY: `acc` holds COLS floats.
        let mut a: [__m256; COLS / 8] =
            core::array::from_fn(|k| unsafe { _mm256_loadu_ps(acc.as_ptr().add(8 * k)) });
        for r in 0..n {
            let x: &[f32; COLS] = xp[x0 + r * xs..][..COLS].try_into().expect("COLS");
            let d: &[f32; COLS] = dy[d0 + r * ds..][..COLS].try_into().expect("COLS");
            for (k, ak) in a.iter_mut().enumerate() {
                // SAFETY: `x` and `d` hold COLS floats.
                let (xv, dv) = unsafe {
                    (
                        _mm256_loadu_ps(x.as_ptr().add(8 * k)),
                        _mm256_loadu_ps(d.as_ptr().add(8 * k)),
                    )
                };
                *ak = _mm256_add_ps(*ak, _mm256_mul_ps(dv, xv));
            }
        }
        for (k, ak) in a.iter().enumerate() {
            // SAFETY: `acc` holds COLS floats.
            unsafe { _mm256_storeu_ps(acc.as_mut_ptr().add(8 * k), *ak) };
        }
    }
}

fn conv1_forward(geom: &Conv2d, x: &[f32], batch: usize, w: &[f32], y: &mut [f32]) {
    let (ins, outs) = (geom.input_shape(), geom.output_shape());
    let [kh, kw] = geom.kernel();
    let sw = geom.stride()[1];
    let pl = Plane::new(geom);
    let mut xp = Vec::new();
    // Per output channel, the taps as (offset from the row's start, weight).
    let taps: Vec<Vec<(usize, f32)>> = (0..outs.c)
        .map(|o| {
            (0..kh * kw)
                .map(|t| (pl.start(geom, 0, t / kw, t % kw), w[o * kh * kw + t]))
                .collect()
        })
        .collect();
    let mut acc = [0.0f32; COLS];
    let row_step = geom.stride()[0] * pl.wp;
    for n in 0..batch {
        pl.fill(geom, &x[n * ins.len()..(n + 1) * ins.len()], &mut xp);
        let yn = &mut y[n * outs.len()..(n + 1) * outs.len()];
        for (o, taps) in taps.iter().enumerate() {
            for oy in 0..outs.h {
                for c0 in (0..outs.w).step_by(COLS) {
                    taps_block(&xp, oy * row_step + c0 * sw, taps, sw, &mut acc);
                    let out = yn[(oy * outs.w + c0) * outs.c + o..].iter_mut();
                    for (v, &a) in out.step_by(outs.c).zip(&acc[..COLS.min(outs.w - c0)]) {
                        *v = a;
                    }
                }
            }
        }
    }
}

/// Weight gradient (and input gradient when `dx` is given) of
/// [`conv1_forward`].
fn conv1_backward(
    geom: &Conv2d,
    x: &[f32],
    batch: usize,
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    mut dx: Option<&mut [f32]>,
) {
    let (ins, outs) = (geom.input_shape(), geom.output_shape());
    let [kh, kw] = geom.kernel();
    let taps = kh * kw;
    let sw = geom.stride()[1];
    let [pt, pleft] = geom.padding();
    let (oh, ow, owp) = (outs.h, outs.w, Plane::new(geom).ow_pad);
    let pl = Plane::new(geom);
    let mut xp = Vec::new();
    let mut dxp = vec![0.0f32; pl.hp * pl.wp];
    // dY of one image as channel planes, rows zero-padded to `owp`.
    let mut dyc = vec![0.0f32; outs.c * oh * owp];
    let row_step = geom.stride()[0] * pl.wp;
    // Per weight, column sums over the whole batch, added up at the end.
    let mut accs = vec![[0.0f32; COLS]; outs.c * taps];
    for n in 0..batch {
        pl.fill(geom, &x[n * ins.len()..(n + 1) * ins.len()], &mut xp);
        let dyn_ = &dy[n * outs.len()..(n + 1) * outs.len()];
        for oy in 0..oh {
            for ox in 0..ow {
                let d = &dyn_[(oy * ow + ox) * outs.c..(oy * ow + ox + 1) * outs.c];
                for (o, &v) in d.iter().enumerate() {
                    dyc[(o * oh + oy) * owp + ox] = v;
                }
            }
        }
        for o in 0..outs.c {
            for ky in 0..kh {
                for kx in 0..kw {
                    let acc = &mut accs[o * taps + ky * kw + kx];
                    for c0 in (0..owp).step_by(COLS) {
                        rows_block(
                            &xp,
                            (pl.start(geom, 0, ky, kx) + c0 * sw, row_step),
                            &dyc,
                            (o * oh * owp + c0, owp),
                            oh,
                            sw,
                            acc,
                        );
                    }
                }
            }
        }
        let Some(dx) = dx.as_deref_mut() else {
            continue;
        };
        dxp.fill(0.0);
        for o in 0..outs.c {
            for oy in 0..oh {
                let d = &dyc[(o * oh + oy) * owp..(o * oh + oy) * owp + ow];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = w[o * taps + ky * kw + kx];
                        let s = pl.start(geom, oy, ky, kx);
                        for (ox, &v) in d.iter().enumerate() {
                            dxp[s + ox * sw] += wv * v;
                        }
                    }
                }
            }
        }
        let dxn = &mut dx[n * ins.len()..(n + 1) * ins.len()];
        for iy in 0..ins.h.min(pl.hp.saturating_sub(pt)) {
            let m = ins.w.min(pl.wp.saturating_sub(pleft));
            let row = (iy + pt) * pl.wp + pleft;
            for (d, &v) in dxn[iy * ins.w..iy * ins.w + m]
                .iter_mut()
                .zip(&dxp[row..row + m])
            {
                *d += v;
            }
        }
    }
    for (g, acc) in dw.iter_mut().zip(&accs) {
        *g += acc.iter().sum::<f32>();
    }
}

/// True when [`conv1_forward`] computes this convolution.
fn is_single_channel(geom: &Conv2d) -> bool {
    geom.input_shape().c == 1 && geom.groups() == 1
}

fn conv_forward(
    geom: &Conv2d,
    x: &[f32],
    batch: usize,
    w: &[f32],
    y: &mut [f32],
    col: &mut Vec<f32>,
) {
    if is_single_channel(geom) {
        return conv1_forward(geom, x, batch, w, y);
    }
    let outs = geom.output_shape();
    let p = outs.h * outs.w * batch;
    let k = geom.filter_depth();
    let opg = outs.c / geom.groups();
    for g in 0..geom.groups() {
        im2col(geom, x, batch, g, col);
        // Y[p, g*opg + o] = sum_k col[p, k] * W[(g*opg + o) * K + k], all images at once.
        gemm(
            p,
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
}

#[allow(clippy::too_many_arguments)]
fn conv_backward(
    geom: &Conv2d,
    x: &[f32],
    batch: usize,
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    dx: &mut [f32],
    col: &mut Vec<f32>,
    dcol: &mut Vec<f32>,
    need_dx: bool,
) {
    if is_single_channel(geom) {
        return conv1_backward(geom, x, batch, w, dy, dw, need_dx.then_some(dx));
    }
    let outs = geom.output_shape();
    let p = outs.h * outs.w * batch;
    let k = geom.filter_depth();
    let opg = outs.c / geom.groups();
    for g in 0..geom.groups() {
        im2col(geom, x, batch, g, col);
        let dyg = &dy[g * opg..];
        // dW[o, k] += sum_p dY[p, o] * col[p, k]
        gemm(
            opg,
            p,
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
        if !need_dx {
            continue;
        }
        // dcol[p, k] = sum_o dY[p, o] * W[o, k]
        // The GEMM below overwrites every value (beta = 0).
        dcol.resize(p * k, 0.0);
        gemm(
            p,
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
}

fn pool_windows(pool: &Pool2d, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
    let (ins, outs) = (pool.input_shape(), pool.output_shape());
    let [wh, ww] = pool.window();
    let [sh, sw] = pool.stride();
    let [pt, pl] = pool.padding();
    for oy in 0..outs.h {
        let y0 = (oy * sh) as isize - pt as isize;
        let (a, b) = taps(y0, ins.h, wh, 1);
        for ox in 0..outs.w {
            let x0 = (ox * sw) as isize - pl as isize;
            let (c, d) = taps(x0, ins.w, ww, 1);
            f(
                oy * outs.w + ox,
                (y0 + a as isize) as usize,
                (y0 + b as isize) as usize,
                (x0 + c as isize) as usize,
                (x0 + d as isize) as usize,
            );
        }
    }
}

/// 2x2 windows at stride 2 without padding, LeNet's and VGG's pooling: a
/// path with the four pixels of a window named.
fn is_max2(pool: &Pool2d) -> bool {
    let (ins, outs) = (pool.input_shape(), pool.output_shape());
    pool.window() == [2, 2]
        && pool.stride() == [2, 2]
        && pool.padding() == [0, 0]
        && outs.h * 2 <= ins.h
        && outs.w * 2 <= ins.w
}

/// Calls `f(output pixel, start of each window pixel's channels)` in the
/// order the general loops visit them (row by row).
fn for_each_max2(pool: &Pool2d, mut f: impl FnMut(usize, [usize; 4])) {
    let (ins, outs) = (pool.input_shape(), pool.output_shape());
    let (c, row) = (ins.c, ins.w * ins.c);
    for oy in 0..outs.h {
        for ox in 0..outs.w {
            let a = (2 * oy * ins.w + 2 * ox) * c;
            f(oy * outs.w + ox, [a, a + c, a + row, a + row + c]);
        }
    }
}

// Both pool passes work on the channel vector of a pixel at a time (one
// slice), which the compiler vectorises when channels are many.
fn pool_forward(pool: &Pool2d, x: &[f32], y: &mut [f32], max: bool) {
    let ins = pool.input_shape();
    let c = ins.c;
    if max && is_max2(pool) {
        return for_each_max2(pool, |p, [a, b, e, f]| {
            let out = &mut y[p * c..(p + 1) * c];
            let (a, b, e, f) = (&x[a..a + c], &x[b..b + c], &x[e..e + c], &x[f..f + c]);
            for (ch, o) in out.iter_mut().enumerate() {
                *o = a[ch].max(b[ch]).max(e[ch]).max(f[ch]);
            }
        });
    }
    pool_windows(pool, |p, ya, yb, xa, xb| {
        let out = &mut y[p * c..(p + 1) * c];
        out.fill(if max { f32::NEG_INFINITY } else { 0.0 });
        for iy in ya..yb {
            for ix in xa..xb {
                let v = &x[(iy * ins.w + ix) * c..(iy * ins.w + ix + 1) * c];
                if max {
                    out.iter_mut().zip(v).for_each(|(o, &v)| *o = o.max(v));
                } else {
                    out.iter_mut().zip(v).for_each(|(o, &v)| *o += v);
                }
            }
        }
        if !max {
            let n = ((yb - ya) * (xb - xa)) as f32;
            out.iter_mut().for_each(|o| *o /= n);
        }
    });
}

/// `y` is the forward output: for max pooling the gradient goes to the
/// first pixel of the window that equals it (the first maximum).
fn pool_backward(pool: &Pool2d, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32], max: bool) {
    let ins = pool.input_shape();
    let c = ins.c;
    if max && is_max2(pool) {
        // Branch-free: each of the four pixels takes `d` or zero.
        return for_each_max2(pool, |p, [a, _, e, _]| {
            let (m, d) = (&y[p * c..(p + 1) * c], &dy[p * c..(p + 1) * c]);
            let (xa, xb) = x[a..a + 2 * c].split_at(c);
            let (xe, xf) = x[e..e + 2 * c].split_at(c);
            let (top, bottom) = dx.split_at_mut(e);
            let (ga, gb) = top[a..a + 2 * c].split_at_mut(c);
            let (ge, gf) = bottom[..2 * c].split_at_mut(c);
            for ch in 0..c {
                let (m, d) = (m[ch], d[ch]);
                let ta = xa[ch] == m;
                let tb = !ta && xb[ch] == m;
                let te = !ta && !tb && xe[ch] == m;
                let tf = !ta && !tb && !te && xf[ch] == m;
                ga[ch] += if ta { d } else { 0.0 };
                gb[ch] += if tb { d } else { 0.0 };
                ge[ch] += if te { d } else { 0.0 };
                gf[ch] += if tf { d } else { 0.0 };
            }
        });
    }
    pool_windows(pool, |p, ya, yb, xa, xb| {
        let (y, d) = (&y[p * c..(p + 1) * c], &dy[p * c..(p + 1) * c]);
        if max {
            for (ch, (&m, &d)) in y.iter().zip(d).enumerate() {
                'window: for iy in ya..yb {
                    for ix in xa..xb {
                        let i = (iy * ins.w + ix) * c + ch;
                        if x[i] == m {
                            dx[i] += d;
                            break 'window;
                        }
                    }
                }
            }
        } else {
            let n = ((yb - ya) * (xb - xa)) as f32;
            for iy in ya..yb {
                for ix in xa..xb {
                    let i = iy * ins.w + ix;
                    for (g, &d) in dx[i * c..(i + 1) * c].iter_mut().zip(d) {
                        *g += d / n;
                    }
                }
            }
        }
    });
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn fake_quantization_rounds_to_the_export_grid() {
        let (lo, hi) = (-1.0f32, 3.0f32);
        let s = (hi - lo) / 255.0;
        for k in -200..600 {
            let v = k as f32 * 0.01;
            let q = fake_quant(v, lo, hi);
            // Inside the range (to a step: the zero point is a whole number), on
            // the grid, and a fixed point.
            assert!(q >= lo - s && q <= hi + s, "{v} -> {q}");
            assert_eq!(fake_quant(q, lo, hi), q);
            if (lo..=hi).contains(&v) {
                assert!((q - v).abs() <= s / 2.0 + 1e-6, "{v} -> {q}");
            }
        }
        let mut w = [0.5f32, -0.25, 0.1, 2.0, -1.0, 0.3];
        fake_quant_weights(&mut w, 2);
        assert_eq!(w[0], 0.5);
        assert_eq!(w[3], 2.0);
        assert!((w[2] - 0.1).abs() <= 0.5 / 127.0 / 2.0 + 1e-7);
    }

    /// The vector kernels give the portable kernels' bits.
    #[test]
    fn direct_kernels_match_the_portable_code() {
        if !std::is_x86_feature_detected!("avx") {
            return;
        }
        let xp: Vec<f32> = (0..400)
            .map(|i| ((i * 7919 % 211) as f32 - 100.0) / 37.0)
            .collect();
        let dy: Vec<f32> = (0..300)
            .map(|i| ((i * 104_729 % 97) as f32 - 48.0) / 13.0)
            .collect();
        let taps: Vec<(usize, f32)> = (0..25)
            .map(|t| (t * 11 % 60, (t as f32 - 12.0) / 7.0))
            .collect();
        let (mut a, mut b) = ([0.0f32; COLS], [0.0f32; COLS]);
        // SAFETY: the CPU has AVX.
        unsafe { x86::taps_block(&xp[5..], &taps, &mut a) };
        taps_block_portable(&xp, 5, &taps, 1, &mut b);
        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
        let (mut a, mut b) = ([0.5f32; COLS], [0.5f32; COLS]);
        // SAFETY: the CPU has AVX.
        unsafe { x86::rows_block(&xp, (3, 41), &dy, (2, 33), 7, &mut a) };
        rows_block_portable(&xp, (3, 41), &dy, (2, 33), 7, 1, &mut b);
        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
        if std::is_x86_feature_detected!("avx512f") {
            let (mut a, mut b) = ([0.0f32; COLS], [0.0f32; COLS]);
            x86::taps_block_512(&xp[5..], &taps, &mut a);
            taps_block_portable(&xp, 5, &taps, 1, &mut b);
            assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
            let (mut a, mut b) = ([0.5f32; COLS], [0.5f32; COLS]);
            x86::rows_block_512(&xp, (3, 41), &dy, (2, 33), 7, &mut a);
            rows_block_portable(&xp, (3, 41), &dy, (2, 33), 7, 1, &mut b);
            assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
        }
    }
}
