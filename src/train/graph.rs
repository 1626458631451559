//! A network as a graph of [`Layer`]s: the description the model blob
//! stores too (see [`crate::model::Layer`]).

pub use crate::model::Layer;
use std::string::String;
use std::vec::Vec;

/// A node of the graph: a layer, its inputs (node outputs or the graph
/// input, index 0) and a name.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The layer.
    pub spec: Layer,
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
    pub fn push(&mut self, name: &str, spec: Layer, inputs: &[usize]) -> usize {
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
