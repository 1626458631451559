//! The description of a network, shared by training and deployment: the
//! same layer kinds and parameters the model blob stores (plus dropout,
//! which only training has).

use crate::ops::Padding;
use crate::quant::Activation;
use std::string::String;
use std::vec::Vec;

/// One layer of a network.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerSpec {
    /// Convolution: output channels, kernel `[h, w]`, stride, dilation,
    /// padding, groups, fused activation.
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// Kernel `[h, w]`.
        kernel: [usize; 2],
        /// Stride.
        stride: [usize; 2],
        /// Dilation.
        dilation: [usize; 2],
        /// Padding.
        padding: Padding,
        /// Groups (input channels for depthwise).
        groups: usize,
        /// Fused activation.
        activation: Activation,
    },
    /// Dense layer over the whole input.
    Dense {
        /// Output features.
        out_features: usize,
        /// Fused activation.
        activation: Activation,
    },
    /// Max pooling.
    MaxPool {
        /// Window.
        window: [usize; 2],
        /// Stride.
        stride: [usize; 2],
        /// Padding.
        padding: Padding,
    },
    /// Average pooling (a window of the whole input is global pooling).
    AvgPool {
        /// Window.
        window: [usize; 2],
        /// Stride.
        stride: [usize; 2],
        /// Padding.
        padding: Padding,
    },
    /// Residual add of two inputs.
    Add {
        /// Fused activation.
        activation: Activation,
    },
    /// Channel concatenation of 2..N inputs.
    Concat,
    /// Standalone activation.
    Activation(Activation),
    /// Dropout with this drop probability (training only).
    Dropout(f32),
    /// Batch normalisation over channels: statistics of the batch in
    /// training; in evaluation, statistics the trainer measures on the
    /// trained weights after each epoch; folded into the convolution before
    /// it on export.
    BatchNorm {
        /// Added to the variance.
        epsilon: f32,
    },
}

/// A node of the graph: a layer, its inputs (node outputs or the graph
/// input, index 0) and a name.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The layer.
    pub spec: LayerSpec,
    /// Input tensors: 0 is the network input, `k + 1` the output of node `k`.
    pub inputs: Vec<usize>,
    /// Layer name.
    pub name: String,
}

/// A network: nodes in execution order and the logits tensors of its heads.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Nodes in order.
    pub nodes: Vec<Node>,
    /// Tensors whose values are the logits of each head (the first is the
    /// main classifier; more are auxiliary classifiers).
    pub heads: Vec<usize>,
    /// Weight of each head's loss.
    pub head_weights: Vec<f32>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Graph {
            nodes: Vec::new(),
            heads: Vec::new(),
            head_weights: Vec::new(),
        }
    }

    /// The network input.
    pub const INPUT: usize = 0;

    /// Appends a layer reading `inputs`; returns its output tensor.
    pub fn push(&mut self, name: &str, spec: LayerSpec, inputs: &[usize]) -> usize {
        self.nodes.push(Node {
            spec,
            inputs: inputs.to_vec(),
            name: name.into(),
        });
        self.nodes.len()
    }

    /// Marks `logits` as a classifier head whose loss counts `weight` times.
    pub fn head(&mut self, logits: usize, weight: f32) -> &mut Self {
        self.heads.push(logits);
        self.head_weights.push(weight);
        self
    }
}

impl Default for Graph {
    fn default() -> Self {
        Graph::new()
    }
}
