//! The one description of a layer, shared by training, the model writer and
//! the model reader.
//!
//! A training graph ([`Graph`](crate::train::Graph)) is a list of [`Layer`]s;
//! [`ModelBuilder::layer`](crate::model::writer::ModelBuilder::layer) writes a
//! `Layer` as an op record (the record's [`OpKind`] byte is
//! [`Layer::op_kind`]); [`Model::layer`](crate::model::Model::layer) reads a
//! record back as a `Layer`. Two kinds exist only in training: dropout (the
//! identity at inference) and batch normalisation (folded into the
//! convolution before it on export).

use super::format::OpKind;
use crate::ops::conv::{Conv2d, Conv2dConfig};
use crate::ops::pool::{Pool2d, Pool2dConfig};
use crate::ops::Padding;
use crate::quant::Activation;
use crate::tensor::Shape;
use crate::{Error, Result};

/// One layer of a network: its kind and hyper-parameters, without weights.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Layer {
    /// Convolution (also 1x1, grouped and depthwise).
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// Kernel `[h, w]`.
        kernel: [usize; 2],
        /// Stride `[vertical, horizontal]`.
        stride: [usize; 2],
        /// Dilation `[vertical, horizontal]`.
        dilation: [usize; 2],
        /// Border handling.
        padding: Padding,
        /// Groups (1 plain, input channels for depthwise).
        groups: usize,
        /// Fused activation.
        activation: Activation,
    },
    /// Dense layer over the whole (flattened) input.
    Dense {
        /// Output features.
        out_features: usize,
        /// Fused activation.
        activation: Activation,
    },
    /// Max pooling.
    MaxPool {
        /// Window `[h, w]`.
        window: [usize; 2],
        /// Stride.
        stride: [usize; 2],
        /// Border handling.
        padding: Padding,
    },
    /// Average pooling (a window of the whole input is global pooling).
    AvgPool {
        /// Window `[h, w]`.
        window: [usize; 2],
        /// Stride.
        stride: [usize; 2],
        /// Border handling.
        padding: Padding,
    },
    /// Residual add of two inputs of one shape.
    Add {
        /// Fused activation.
        activation: Activation,
    },
    /// Channel concatenation of 2..N inputs of one height and width.
    Concat,
    /// Standalone activation.
    Activation(Activation),
    /// Softmax over channels. In training the loss applies it, so training
    /// graphs end at the logits and export appends this layer.
    Softmax {
        /// Inverse temperature (1 for the usual softmax).
        beta: f32,
    },
    /// Dropout with this drop probability; training only.
    Dropout(f32),
    /// Batch normalisation over channels; training only (folded into the
    /// convolution before it on export).
    BatchNorm {
        /// Added to the variance.
        epsilon: f32,
    },
}

fn one_input(inputs: &[Shape]) -> Result<Shape> {
    match inputs {
        [x] => Ok(*x),
        _ => Err(Error::InvalidParameter {
            what: "layer takes exactly one input",
        }),
    }
}

impl Layer {
    /// The op a model blob stores this layer as; `None` for the
    /// training-only kinds.
    pub const fn op_kind(&self) -> Option<OpKind> {
        Some(match self {
            Layer::Conv2d { .. } => OpKind::Conv2d,
            Layer::Dense { .. } => OpKind::Dense,
            Layer::MaxPool { .. } => OpKind::MaxPool,
            Layer::AvgPool { .. } => OpKind::AvgPool,
            Layer::Add { .. } => OpKind::Add,
            Layer::Concat => OpKind::Concat,
            Layer::Activation(_) => OpKind::Activation,
            Layer::Softmax { .. } => OpKind::Softmax,
            Layer::Dropout(_) | Layer::BatchNorm { .. } => return None,
        })
    }

    /// Short name, as in summaries.
    pub const fn kind_name(&self) -> &'static str {
        match self.op_kind() {
            Some(k) => k.name(),
            None => match self {
                Layer::Dropout(_) => "dropout",
                _ => "batch_norm",
            },
        }
    }

    /// The kernel configuration on an input of shape `input`, for a conv.
    pub fn conv_config(&self, input: Shape) -> Option<Conv2dConfig> {
        match *self {
            Layer::Conv2d {
                out_channels,
                kernel,
                stride,
                dilation,
                padding,
                groups,
                ..
            } => Some(Conv2dConfig {
                input,
                out_channels,
                kernel,
                stride,
                dilation,
                padding,
                groups,
            }),
            _ => None,
        }
    }

    /// The convolution geometry on an input of shape `input`, for a conv.
    pub fn conv(&self, input: Shape) -> Result<Option<Conv2d>> {
        self.conv_config(input).map(Conv2d::new).transpose()
    }

    /// The pooling geometry on an input of shape `input`, for a pool.
    pub fn pool(&self, input: Shape) -> Result<Option<Pool2d>> {
        match *self {
            Layer::MaxPool {
                window,
                stride,
                padding,
            }
            | Layer::AvgPool {
                window,
                stride,
                padding,
            } => Pool2d::new(Pool2dConfig {
                input,
                window,
                stride,
                padding,
            })
            .map(Some),
            _ => Ok(None),
        }
    }

    /// The output shape for inputs of `inputs`' shapes, checking the
    /// layer's parameters and how many inputs it takes.
    pub fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        match *self {
            Layer::Conv2d { .. } => {
                let x = one_input(inputs)?;
                Ok(self.conv(x)?.map_or(x, |c| c.output_shape()))
            }
            Layer::MaxPool { .. } | Layer::AvgPool { .. } => {
                let x = one_input(inputs)?;
                Ok(self.pool(x)?.map_or(x, |p| p.output_shape()))
            }
            Layer::Dense { out_features, .. } => {
                let x = one_input(inputs)?;
                if out_features == 0 || x.is_empty() {
                    return Err(Error::InvalidParameter {
                        what: "dense layer needs inputs and outputs",
                    });
                }
                Ok(Shape::flat(out_features))
            }
            Layer::Add { .. } => match inputs {
                [a, b] if a == b => Ok(*a),
                [a, b] => Err(Error::ShapeMismatch {
                    what: "add inputs",
                    expected: a.len(),
                    got: b.len(),
                }),
                _ => Err(Error::InvalidParameter {
                    what: "add takes exactly two inputs",
                }),
            },
            Layer::Concat => {
                let Some(first) = inputs.first().filter(|_| inputs.len() >= 2) else {
                    return Err(Error::InvalidParameter {
                        what: "concat needs at least two inputs",
                    });
                };
                let mut c = 0usize;
                for s in inputs {
                    if s.h != first.h || s.w != first.w {
                        return Err(Error::ShapeMismatch {
                            what: "concat input height and width",
                            expected: first.h * first.w,
                            got: s.h * s.w,
                        });
                    }
                    c = c.checked_add(s.c).ok_or(Error::Overflow)?;
                }
                Ok(Shape::new(first.h, first.w, c))
            }
            Layer::Softmax { beta } => {
                if !(beta.is_finite() && beta > 0.0) {
                    return Err(Error::InvalidParameter {
                        what: "softmax beta must be finite and positive",
                    });
                }
                one_input(inputs)
            }
            Layer::Dropout(p) => {
                if !(0.0..1.0).contains(&p) {
                    return Err(Error::InvalidParameter {
                        what: "dropout rate must be in [0, 1)",
                    });
                }
                one_input(inputs)
            }
            Layer::BatchNorm { epsilon } => {
                if epsilon.is_nan() || epsilon <= 0.0 {
                    return Err(Error::InvalidParameter {
                        what: "batch norm needs epsilon > 0",
                    });
                }
                one_input(inputs)
            }
            Layer::Activation(_) => one_input(inputs),
        }
    }
}
