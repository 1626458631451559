//! From a trained network to a model blob: batch normalisation folded into
//! the convolution before it, activations fused into the op before them,
//! dropout and auxiliary heads removed, a softmax appended, each
//! convolution fused with its pool where that lowers the arena; weights in
//! f32, f16, or int8 quantized after training with ranges calibrated on
//! sample images.
//!
//! int8 follows TensorFlow Lite's scheme: weights symmetric per output
//! channel, activations asymmetric per tensor, int32 biases at scale
//! `s_in * s_w`, and the requantization the kernels use
//! ([`Weights::i8_from_scales`]).
//!
//! [`rust_source`] wraps a blob in Rust source for firmware that links the
//! model in.
//!
//! ```
//! use picocnn::export::{export, ExportOptions, Precision};
//! use picocnn::model::Model;
//! use picocnn::train::zoo;
//! use picocnn::Shape;
//!
//! let net = zoo::lenet5(Shape::new(28, 28, 1), 10, 1)?;
//! let images = vec![0.5f32; 4 * 28 * 28];
//! let blob = export(&net, &ExportOptions::new(Precision::Int8).calibration(&images))?;
//! let blob = picocnn::model::writer::AlignedBytes::from(blob);
//! let model = Model::parse(blob.as_bytes())?;
//! // 7 layers and the softmax, each convolution fused with its pool.
//! assert_eq!(model.op_count(), 6);
//! assert_eq!(model.arena_len(), 2_975);
//! # Ok::<(), picocnn::Error>(())
//! ```

mod rust;

pub use rust::rust_source;

use crate::model::writer::{ModelBuilder, TensorId, TensorType, Weights};
use crate::model::Layer;
use crate::quant::{Activation, QParams};
use crate::tensor::Shape;
use crate::train::Net;
use crate::{Error, Result};
use half::f16;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

/// Element type of the exported model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 weights and activations.
    F32,
    /// f16 weights and activations (f32 arithmetic).
    F16,
    /// int8, quantized after training.
    Int8,
}

/// How an activation range is taken from the calibration values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ranges {
    /// Smallest and largest value seen.
    MinMax,
    /// The given percentiles (e.g. 0.01 and 99.99): outliers clipped.
    Percentile(f32),
}

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportOptions<'a> {
    /// Element type.
    pub precision: Precision,
    /// Calibration images (0..1, one after another), needed for int8.
    pub calibration: &'a [f32],
    /// Range rule for int8 activations.
    pub ranges: Ranges,
    /// Model name in the blob.
    pub name: String,
    /// Class names in the blob.
    pub labels: Vec<String>,
}

impl<'a> ExportOptions<'a> {
    /// Options for `precision`, min/max ranges, no labels.
    pub fn new(precision: Precision) -> Self {
        ExportOptions {
            precision,
            calibration: &[],
            ranges: Ranges::MinMax,
            name: "model".to_string(),
            labels: Vec::new(),
        }
    }

    /// Calibration images for int8.
    pub fn calibration(mut self, images: &'a [f32]) -> Self {
        self.calibration = images;
        self
    }
}

/// One op of the exported graph, in training's tensor numbering.
#[derive(Debug, Clone)]
struct Op {
    name: String,
    layer: Layer,
    inputs: Vec<usize>,
    output: usize,
    /// Weights OHWI (or `[out][in]`) and bias, batch norm folded in.
    weights: Option<(Vec<f32>, Vec<f32>)>,
}

/// The inference graph of `net`: ops in order and the main head's tensor.
fn inference_graph(net: &Net) -> Result<(Vec<Op>, usize)> {
    let g = net.graph();
    let n_tensors = g.nodes.len() + 1;
    let mut consumers = vec![0usize; n_tensors];
    for node in &g.nodes {
        node.inputs.iter().for_each(|&t| consumers[t] += 1);
    }
    g.heads.iter().for_each(|&h| consumers[h] += 1);
    // Tensor of the export holding each training tensor's value.
    let mut alias: Vec<usize> = (0..n_tensors).collect();
    let mut ops: Vec<Op> = Vec::new();
    // Index in `ops` of the op producing each tensor.
    let mut producer: Vec<Option<usize>> = vec![None; n_tensors];
    for (i, node) in g.nodes.iter().enumerate() {
        let out = i + 1;
        let ins: Vec<usize> = node.inputs.iter().map(|&t| alias[t]).collect();
        let single = |t: usize| consumers[node.inputs[0]] == 1 && producer[t].is_some();
        match node.spec {
            Layer::Dropout(_) => alias[out] = ins[0],
            Layer::BatchNorm { epsilon } => {
                let src = ins[0];
                let target = producer[src].filter(|_| single(src)).filter(|&k| {
                    matches!(
                        ops[k].layer,
                        Layer::Conv2d {
                            activation: Activation::None,
                            ..
                        } | Layer::Dense {
                            activation: Activation::None,
                            ..
                        }
                    )
                });
                let Some(k) = target else {
                    return Err(Error::Unsupported {
                        what: "batch norm that does not follow a convolution or dense layer",
                    });
                };
                let Some((gamma, beta)) = net.weights(i) else {
                    return Err(Error::InvalidModel {
                        what: "batch norm without parameters",
                        index: i,
                    });
                };
                let (mean, var) = net.batch_norm_stats(i).ok_or(Error::InvalidModel {
                    what: "batch norm without statistics",
                    index: i,
                })?;
                let (w, b) = ops[k].weights.as_mut().ok_or(Error::InvalidModel {
                    what: "convolution without weights",
                    index: i,
                })?;
                let per = w.len() / b.len();
                for o in 0..b.len() {
                    let f = gamma[o] / (var[o] + epsilon).sqrt();
                    w[o * per..(o + 1) * per].iter_mut().for_each(|v| *v *= f);
                    b[o] = (b[o] - mean[o]) * f + beta[o];
                }
                ops[k].output = out;
                producer[out] = Some(k);
            }
            Layer::Activation(a) => {
                let src = ins[0];
                let fusable = producer[src].filter(|_| single(src)).filter(|&k| {
                    matches!(
                        ops[k].layer,
                        Layer::Conv2d {
                            activation: Activation::None,
                            ..
                        } | Layer::Dense {
                            activation: Activation::None,
                            ..
                        } | Layer::Add {
                            activation: Activation::None
                        }
                    )
                });
                if let Some(k) = fusable {
                    match &mut ops[k].layer {
                        Layer::Conv2d { activation, .. }
                        | Layer::Dense { activation, .. }
                        | Layer::Add { activation } => *activation = a,
                        _ => {}
                    }
                    ops[k].output = out;
                    producer[out] = Some(k);
                } else {
                    producer[out] = Some(ops.len());
                    ops.push(Op {
                        name: node.name.clone(),
                        layer: node.spec,
                        inputs: ins,
                        output: out,
                        weights: None,
                    });
                }
            }
            _ => {
                let weights = net.weights(i).map(|(w, b)| (w.to_vec(), b.to_vec()));
                producer[out] = Some(ops.len());
                ops.push(Op {
                    name: node.name.clone(),
                    layer: node.spec,
                    inputs: ins,
                    output: out,
                    weights,
                });
            }
        }
    }
    let head = alias[*g.heads.first().ok_or(Error::InvalidParameter {
        what: "a network needs a classifier head",
    })?];
    // Keep what the main head needs (auxiliary classifiers are training only).
    let mut live = vec![false; n_tensors];
    live[head] = true;
    let mut keep = vec![false; ops.len()];
    for k in (0..ops.len()).rev() {
        if live[ops[k].output] {
            keep[k] = true;
            ops[k].inputs.iter().for_each(|&t| live[t] = true);
        }
    }
    let ops = ops
        .into_iter()
        .zip(keep)
        .filter_map(|(op, k)| k.then_some(op))
        .collect();
    Ok((ops, head))
}

/// Depthwise filters are HWO in blobs, OHWI in training.
fn blob_filter(layer: &Layer, input: Shape, w: &[f32]) -> Vec<f32> {
    if let Layer::Conv2d {
        groups,
        out_channels,
        kernel,
        ..
    } = *layer
    {
        if groups == input.c && groups > 1 {
            let taps = kernel[0] * kernel[1];
            let mut out = vec![0.0; w.len()];
            for o in 0..out_channels {
                for t in 0..taps {
                    out[t * out_channels + o] = w[o * taps + t];
                }
            }
            return out;
        }
    }
    w.to_vec()
}

/// int8 parameters covering `[lo, hi]` (and zero).
fn qparams(lo: f32, hi: f32) -> Result<QParams> {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi > lo {
        (hi - lo) / 255.0
    } else {
        1.0 / 255.0
    };
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    QParams::new(scale, zp)
}

/// Per training tensor, the calibrated `[lo, hi]`.
fn calibrate(net: &Net, images: &[f32], ranges: Ranges) -> Result<Vec<(f32, f32)>> {
    let n_in = net.shape(0).len();
    if images.is_empty() || !images.len().is_multiple_of(n_in) {
        return Err(Error::InvalidParameter {
            what: "int8 export needs calibration images of the network's input size",
        });
    }
    let n_tensors = net.graph().nodes.len() + 1;
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); n_tensors];
    let mut minmax = vec![(f32::INFINITY, f32::NEG_INFINITY); n_tensors];
    for chunk in images.chunks(64 * n_in) {
        let t = net.forward_batch(chunk, chunk.len() / n_in, None);
        for (k, v) in t.iter().enumerate() {
            for &x in v {
                minmax[k] = (minmax[k].0.min(x), minmax[k].1.max(x));
            }
            if let Ranges::Percentile(_) = ranges {
                values[k].extend_from_slice(v);
            }
        }
    }
    if let Ranges::Percentile(p) = ranges {
        if !(p > 50.0 && p <= 100.0) {
            return Err(Error::InvalidParameter {
                what: "percentile must be in (50, 100]",
            });
        }
        for (k, v) in values.iter_mut().enumerate() {
            if v.is_empty() {
                continue;
            }
            v.sort_by(f32::total_cmp);
            let at =
                |q: f32| v[((q / 100.0 * (v.len() - 1) as f32).round() as usize).min(v.len() - 1)];
            minmax[k] = (at(100.0 - p), at(p));
        }
    }
    Ok(minmax)
}

/// Writes `net` as a model blob (see the module documentation).
pub fn export(net: &Net, options: &ExportOptions<'_>) -> Result<Vec<u8>> {
    builder(net, options)?.finish()
}

/// The builder holding `net` as [`export`] writes it, before `finish` (to
/// choose its arena plan: [`ModelBuilder::plan_report`]).
pub fn builder(net: &Net, options: &ExportOptions<'_>) -> Result<ModelBuilder> {
    let (ops, head) = inference_graph(net)?;
    let input = net.shape(0);
    let ranges = match options.precision {
        Precision::Int8 => Some(calibrate(net, options.calibration, options.ranges)?),
        _ => None,
    };
    let ty = |t: usize| -> Result<TensorType> {
        Ok(match (&ranges, options.precision) {
            (Some(r), _) => TensorType::I8(qparams(r[t].0, r[t].1)?),
            (None, Precision::F16) => TensorType::F16,
            _ => TensorType::F32,
        })
    };
    let mut b = ModelBuilder::new(&options.name);
    b.labels(&options.labels).normalisation(1.0 / 255.0, 0.0);
    let mut ids: Vec<Option<TensorId>> = vec![None; net.graph().nodes.len() + 1];
    // Pixels are 0..1: the int8 input step is one grey level.
    let input_ty = match options.precision {
        Precision::Int8 => TensorType::I8(QParams::new(1.0 / 255.0, -128)?),
        Precision::F16 => TensorType::F16,
        Precision::F32 => TensorType::F32,
    };
    ids[0] = Some(b.input(input, input_ty));
    let id = |ids: &[Option<TensorId>], t: usize| {
        ids[t].ok_or(Error::InvalidModel {
            what: "layer input not exported",
            index: t,
        })
    };
    for op in &ops {
        let ins: Vec<TensorId> = op
            .inputs
            .iter()
            .map(|&t| id(&ids, t))
            .collect::<Result<_>>()?;
        let in_ty = b.tensor_type(ins[0])?;
        let out_ty = match op.layer {
            // Pools keep their input's type.
            Layer::MaxPool { .. } | Layer::AvgPool { .. } => in_ty,
            _ => ty(op.output)?,
        };
        let weights = match &op.weights {
            None => None,
            Some((w, bias)) => {
                let w = blob_filter(&op.layer, b.shape(ins[0])?, w);
                Some(match (in_ty, out_ty) {
                    (TensorType::I8(qi), TensorType::I8(qo)) => {
                        let per = w.len() / bias.len();
                        let mut filter = Vec::with_capacity(w.len());
                        let mut scales = Vec::with_capacity(bias.len());
                        let mut qbias = Vec::with_capacity(bias.len());
                        // Depthwise filters are HWO: output channel is the fastest index.
                        let hwo = per * bias.len() == w.len()
                            && matches!(op.layer, Layer::Conv2d { groups, .. } if groups > 1 && groups == b.shape(ins[0])?.c);
                        let channel = |k: usize| if hwo { k % bias.len() } else { k / per };
                        let mut maxabs = vec![0.0f32; bias.len()];
                        for (k, &v) in w.iter().enumerate() {
                            let o = channel(k);
                            maxabs[o] = maxabs[o].max(v.abs());
                        }
                        for (o, &m) in maxabs.iter().enumerate() {
                            let s = if m > 0.0 { m / 127.0 } else { 1.0 };
                            scales.push(s);
                            let q = (bias[o] / (qi.scale * s)).round();
                            qbias.push(q.clamp(i32::MIN as f32, i32::MAX as f32) as i32);
                        }
                        for (k, &v) in w.iter().enumerate() {
                            filter
                                .push((v / scales[channel(k)]).round().clamp(-127.0, 127.0) as i8);
                        }
                        Weights::i8_from_scales(filter, qbias, &scales, qi, qo)?
                    }
                    (TensorType::F16, _) => Weights::F16 {
                        filter: w.iter().map(|&v| f16::from_f32(v)).collect(),
                        bias: bias.iter().map(|&v| f16::from_f32(v)).collect(),
                    },
                    _ => Weights::F32 {
                        filter: w,
                        bias: bias.clone(),
                    },
                })
            }
        };
        ids[op.output] = Some(b.layer(&op.name, &op.layer, &ins, weights, out_ty)?);
    }
    let logits = id(&ids, head)?;
    let probs_ty = match b.tensor_type(logits)? {
        TensorType::I8(_) => TensorType::I8(QParams::new(1.0 / 256.0, -128)?),
        other => other,
    };
    let probs = b.layer(
        "softmax",
        &Layer::Softmax { beta: 1.0 },
        &[logits],
        None,
        probs_ty,
    )?;
    b.output(probs);
    Ok(b)
}
