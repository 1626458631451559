//! The training layers, one module each with its forward and backward
//! passes side by side, and the one dispatch over them ([`Step`]).
//!
//! Adding a layer: a module with a struct implementing [`TrainLayer`], a
//! line in the `steps!` list and an arm in [`Step::new`] building it from
//! its [`Layer`].

mod act;
mod add;
mod concat;
mod conv;
mod dense;
mod dropout;
mod norm;
mod pool;

pub(crate) use conv::Conv;
pub(crate) use dense::Dense;
pub(crate) use norm::{channel_moments, BatchNorm};

use super::graph::Layer;
use crate::rng::mix;
use crate::tensor::Shape;
use crate::{Error, Result};
use core::ops::Range;
use std::vec::Vec;

/// Where a layer's parameters live in [`Net::params`](super::Net::params):
/// the weights (a batch norm's scale) and the biases (its shift).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParamBlock {
    /// Weights: OHWI filters, `[out][in]` matrices, or gamma.
    pub(crate) weight: Range<usize>,
    /// Biases, or beta.
    pub(crate) bias: Range<usize>,
}

/// What a layer's passes read: the tensors of the forward pass so far, the
/// parameters and the node's place in the graph.
#[derive(Clone, Copy)]
pub(crate) struct Pass<'a> {
    /// The node's index; its output is tensor `node + 1`.
    pub(crate) node: usize,
    /// The node's input tensors.
    pub(crate) inputs: &'a [usize],
    /// Every tensor computed so far, each holding the batch.
    pub(crate) tensors: &'a [Vec<f32>],
    /// Every tensor's shape (one image).
    pub(crate) shapes: &'a [Shape],
    /// Images in the batch.
    pub(crate) batch: usize,
    /// All parameters.
    pub(crate) params: &'a [f32],
    /// Running statistics of the batch norms.
    pub(crate) stats: &'a [f32],
    /// One dropout seed per image in training, `None` in evaluation.
    pub(crate) dropout: Option<&'a [u64]>,
}

impl<'a> Pass<'a> {
    /// The first input.
    pub(crate) fn x(&self) -> &'a [f32] {
        &self.tensors[self.inputs[0]]
    }

    /// Values of one image of the first input.
    pub(crate) fn x_len(&self) -> usize {
        self.shapes[self.inputs[0]].len()
    }

    /// Shape of the output.
    pub(crate) fn out_shape(&self) -> Shape {
        self.shapes[self.node + 1]
    }
}

/// What a layer's backward pass reads and adds to.
pub(crate) struct Grads<'a> {
    /// The layer's output in the forward pass.
    pub(crate) y: &'a [f32],
    /// Gradient of the loss at the output.
    pub(crate) dy: &'a [f32],
    /// Gradient of every tensor: the layer adds its inputs' share.
    pub(crate) dx: &'a mut [Vec<f32>],
    /// Parameter gradients: the layer adds its own.
    pub(crate) dparams: &'a mut [f32],
}

/// A training layer: forward and backward over a batch.
pub(crate) trait TrainLayer {
    /// Writes the output of the batch into `y`.
    fn forward(&self, p: &Pass<'_>, y: &mut [f32]);
    /// Adds the input and parameter gradients.
    fn backward(&self, p: &Pass<'_>, g: Grads<'_>);
    /// The layer's parameters.
    fn params(&self) -> Option<&ParamBlock> {
        None
    }
    /// Output channels of a weight matrix that export quantizes per channel
    /// (and weight decay applies to); `None` for other layers.
    fn weight_channels(&self) -> Option<usize> {
        None
    }
    /// Multiply-accumulates of one image.
    fn macs(&self) -> usize {
        0
    }
}

/// The layers a network is made of, each a [`TrainLayer`].
macro_rules! steps {
    ($($variant:ident($ty:ty),)*) => {
        /// A layer with its geometry and where its parameters live.
        #[derive(Debug, Clone)]
        pub(crate) enum Step {
            $($variant($ty),)*
        }

        impl Step {
            /// The layer behind the step.
            pub(crate) fn layer(&self) -> &dyn TrainLayer {
                match self {
                    $(Step::$variant(l) => l,)*
                }
            }
        }
    };
}

steps! {
    Conv(conv::Conv),
    Dense(dense::Dense),
    Pool(pool::Pool),
    Add(add::Add),
    Concat(concat::Concat),
    Act(act::Act),
    Dropout(dropout::Dropout),
    BatchNorm(norm::BatchNorm),
}

impl Step {
    /// The step for `spec` reading `x`, its parameters and statistics taken
    /// from `alloc`.
    pub(crate) fn new(spec: &Layer, x: Shape, alloc: &mut Alloc) -> Result<Step> {
        Ok(match *spec {
            Layer::Conv2d {
                out_channels,
                kernel,
                groups,
                activation,
                ..
            } => {
                let Some(geom) = spec.conv(x)? else {
                    unreachable!("a conv layer has a conv geometry")
                };
                let fan_out = out_channels / groups * kernel[0] * kernel[1];
                Step::Conv(Conv::new(geom, activation, fan_out, alloc))
            }
            Layer::Dense {
                out_features,
                activation,
            } => Step::Dense(Dense::new(x.len(), out_features, activation, alloc)),
            Layer::MaxPool { .. } | Layer::AvgPool { .. } => {
                let Some(geom) = spec.pool(x)? else {
                    unreachable!("a pool layer has a pool geometry")
                };
                let max = matches!(spec, Layer::MaxPool { .. });
                Step::Pool(pool::Pool { geom, max })
            }
            Layer::Add { activation } => Step::Add(add::Add { act: activation }),
            Layer::Concat => Step::Concat(concat::Concat),
            Layer::Activation(act) => Step::Act(act::Act { act }),
            Layer::BatchNorm { epsilon } => Step::BatchNorm(BatchNorm::new(x.c, epsilon, alloc)),
            Layer::Dropout(p) => Step::Dropout(dropout::Dropout { p }),
            Layer::Softmax { .. } => {
                return Err(Error::Unsupported {
                    what: "softmax in a training graph (the loss applies it; export appends it)",
                })
            }
        })
    }
}

/// Hands out the parameters and statistics of a network's layers in order,
/// drawing initial weights from one generator.
pub(crate) struct Alloc {
    /// Every parameter so far.
    pub(crate) params: Vec<f32>,
    /// Every running statistic so far.
    pub(crate) stats: Vec<f32>,
    rng: u64,
}

impl Alloc {
    /// Nothing allocated yet; weights drawn from `seed`.
    pub(crate) fn new(seed: u64) -> Alloc {
        Alloc {
            params: Vec::new(),
            stats: Vec::new(),
            rng: seed,
        }
    }

    /// `n` parameters: Glorot-uniform for a weight with `fans = Some((in,
    /// out))`, zeros otherwise. Every value draws from the generator, so a
    /// weight's initial value depends on all the blocks before it.
    pub(crate) fn params(&mut self, n: usize, fans: Option<(usize, usize)>) -> Range<usize> {
        let start = self.params.len();
        let (fan_in, fan_out) = fans.unwrap_or((1, 1));
        let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
        for _ in 0..n {
            self.rng = mix(self.rng);
            let u = (self.rng >> 40) as f32 / 16_777_216.0;
            self.params.push(if fans.is_some() {
                (2.0 * u - 1.0) * limit
            } else {
                0.0
            });
        }
        start..self.params.len()
    }

    /// `n` statistics, all `value`.
    pub(crate) fn stats(&mut self, n: usize, value: f32) -> Range<usize> {
        let start = self.stats.len();
        self.stats.extend(std::iter::repeat_n(value, n));
        start..self.stats.len()
    }
}
