//! A trainable f32 network: parameters, forward and backward passes for one
//! image, with the layers of [`Graph`].

use super::graph::{Graph, Layer};
use super::layers::{channel_moments, Alloc, Grads, Pass, Step};
use crate::tensor::Shape;
use crate::{Error, Result};
use core::ops::Range;
use std::vec;
use std::vec::Vec;

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
    /// Running means and variances of the batch-normalisation layers.
    pub stats: Vec<f32>,
    /// Quantization-aware training: per tensor, the int8 range its values
    /// are rounded to in the forward pass (see [`Net::set_fake_quant`]).
    pub(crate) fake_quant: Option<Vec<Option<(f32, f32)>>>,
}

/// Which parameters training changes; the others stay bit for bit as they
/// were (fine-tuning a deployed network's last layers).
///
/// The "weighted layers" are the convolutions and dense layers, in node
/// order; a batch norm counts with the weighted layer it reads (export
/// folds it into that layer), its scale as a weight and its shift as a bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trainable {
    /// Every parameter.
    #[default]
    All,
    /// Weights and biases of the last `layers` weighted layers, and the
    /// biases of the earlier ones if `earlier_biases`.
    Last {
        /// Weighted layers counted from the output.
        layers: usize,
        /// Also the biases of every earlier weighted layer.
        earlier_biases: bool,
    },
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

impl Net {
    /// Builds a network for `input` images, initialising weights with
    /// Glorot-uniform values from `seed` and biases with zeros.
    pub fn new(graph: Graph, input: Shape, seed: u64) -> Result<Net> {
        let mut shapes = vec![input];
        let mut layers = Vec::new();
        let mut alloc = Alloc::new(seed);
        for (i, node) in graph.nodes.iter().enumerate() {
            if node.inputs.is_empty() || node.inputs.iter().any(|&t| t >= shapes.len()) {
                return Err(Error::InvalidModel {
                    what: "layer input is not an earlier tensor",
                    index: i,
                });
            }
            let in_shapes: Vec<Shape> = node.inputs.iter().map(|&t| shapes[t]).collect();
            let out = node.spec.output_shape(&in_shapes)?;
            layers.push(Step::new(&node.spec, in_shapes[0], &mut alloc)?);
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
            params: alloc.params,
            stats: alloc.stats,
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
        for step in &self.layers {
            let layer = step.layer();
            if let (Some(p), Some(channels)) = (layer.params(), layer.weight_channels()) {
                fake_quant_weights(&mut self.params[p.weight.clone()], channels);
            }
        }
    }

    /// Per parameter, whether `which` lets training change it.
    pub fn trainable(&self, which: Trainable) -> Vec<bool> {
        let Trainable::Last {
            layers,
            earlier_biases,
        } = which
        else {
            return vec![true; self.params.len()];
        };
        // Each node's weighted layer: its own index if it has weights, the
        // one it reads if it is a batch norm.
        let weighted: Vec<bool> = self
            .layers
            .iter()
            .map(|s| s.layer().weight_channels().is_some())
            .collect();
        let owner = |i: usize| -> Option<usize> {
            if weighted[i] {
                return Some(i);
            }
            let producer = self.graph.nodes[i].inputs.first()?.checked_sub(1)?;
            (matches!(self.layers[i], Step::BatchNorm(_)) && weighted[producer]).then_some(producer)
        };
        let count = weighted.iter().filter(|&&w| w).count();
        let first_trained = count.saturating_sub(layers);
        let mut rank = vec![0; weighted.len()];
        let mut k = 0;
        for (i, &w) in weighted.iter().enumerate() {
            rank[i] = k;
            k += w as usize;
        }
        let mut mask = vec![false; self.params.len()];
        for (i, step) in self.layers.iter().enumerate() {
            let (Some(p), Some(o)) = (step.layer().params(), owner(i)) else {
                continue;
            };
            let last = rank[o] >= first_trained;
            mask[p.weight.clone()].fill(last);
            mask[p.bias.clone()].fill(last || earlier_biases);
        }
        mask
    }

    /// Per parameter, whether weight decay applies: the weights of
    /// convolutions and dense layers, not biases or batch norms.
    pub(crate) fn decayed(&self) -> Vec<bool> {
        let mut decay = vec![false; self.params.len()];
        for step in &self.layers {
            let layer = step.layer();
            if let (Some(p), Some(_)) = (layer.params(), layer.weight_channels()) {
                decay[p.weight.clone()].fill(true);
            }
        }
        decay
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
        let p = self.layers.get(node)?.layer().params()?;
        Some((&self.params[p.weight.clone()], &self.params[p.bias.clone()]))
    }

    /// Where node `node`'s weights and biases sit in
    /// [`params`](Self::params), and so in a gradient from
    /// [`gradient`](super::gradient); `None` for layers without parameters.
    pub fn param_ranges(&self, node: usize) -> Option<(Range<usize>, Range<usize>)> {
        let p = self.layers.get(node)?.layer().params()?;
        Some((p.weight.clone(), p.bias.clone()))
    }

    /// Running mean and variance of batch-norm node `node`.
    pub fn batch_norm_stats(&self, node: usize) -> Option<(&[f32], &[f32])> {
        match self.layers.get(node)? {
            Step::BatchNorm(bn) => {
                Some((&self.stats[bn.mean.clone()], &self.stats[bn.var.clone()]))
            }
            _ => None,
        }
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// Multiply-accumulates of one inference.
    pub fn macs(&self) -> usize {
        self.layers.iter().map(|l| l.layer().macs()).sum()
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

    /// What node `i`'s passes read, with the tensors `t`.
    fn pass<'a>(
        &'a self,
        i: usize,
        t: &'a [Vec<f32>],
        batch: usize,
        dropout: Option<&'a [u64]>,
    ) -> Pass<'a> {
        Pass {
            node: i,
            inputs: &self.graph.nodes[i].inputs,
            tensors: t,
            shapes: &self.shapes,
            batch,
            params: &self.params,
            stats: &self.stats,
            dropout,
        }
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
        for (i, step) in self.layers.iter().enumerate() {
            let mut y = vec![0.0f32; self.shapes[i + 1].len() * batch];
            step.layer()
                .forward(&self.pass(i, &t, batch, dropout), &mut y);
            if let Some(Some((lo, hi))) = self.fake_quant.as_ref().and_then(|r| r.get(i + 1)) {
                y.iter_mut().for_each(|v| *v = fake_quant(*v, *lo, *hi));
            }
            t.push(y);
        }
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
            let grads_of = Grads {
                y,
                dy: &dy,
                dx: &mut g,
                dparams: &mut *grads,
            };
            self.layers[i]
                .layer()
                .backward(&self.pass(i, t, batch, dropout), grads_of);
        }
    }

    /// The batch statistics `(mean, variance)` of every batch-normalisation
    /// layer's input in the tensors of a training forward pass, in layer
    /// order: what the running averages are updated with.
    pub fn batch_norm_moments(&self, t: &[Vec<f32>]) -> Vec<(Vec<f32>, Vec<f32>)> {
        self.layers
            .iter()
            .zip(&self.graph.nodes)
            .filter_map(|(l, node)| match l {
                Step::BatchNorm(bn) => Some(channel_moments(&t[node.inputs[0]], bn.c)),
                _ => None,
            })
            .collect()
    }

    /// Replaces the running averages with `moments` (averaged over many
    /// batches by the caller): "precise" statistics for evaluation.
    pub fn set_running_stats(&mut self, moments: &[(Vec<f32>, Vec<f32>)]) {
        let mut k = 0;
        for layer in &self.layers {
            if let Step::BatchNorm(bn) = layer {
                if let Some((mean, var)) = moments.get(k) {
                    self.stats[bn.mean.clone()].copy_from_slice(&mean[..bn.c]);
                    self.stats[bn.var.clone()].copy_from_slice(&var[..bn.c]);
                }
                k += 1;
            }
        }
    }
}

#[cfg(test)]
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
}
