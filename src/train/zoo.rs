//! The classic architectures, for 28x28x1 or 32x32x3 inputs and any number
//! of classes.

use super::graph::{Graph, LayerSpec};
use super::net::Net;
use crate::ops::Padding;
use crate::quant::Activation;
use crate::tensor::Shape;
use crate::Result;

fn conv(out: usize, k: usize, padding: Padding, activation: Activation) -> LayerSpec {
    LayerSpec::Conv2d {
        out_channels: out,
        kernel: [k, k],
        stride: [1, 1],
        dilation: [1, 1],
        padding,
        groups: 1,
        activation,
    }
}

fn max2() -> LayerSpec {
    LayerSpec::MaxPool {
        window: [2, 2],
        stride: [2, 2],
        padding: Padding::Valid,
    }
}

fn dense(out: usize, activation: Activation) -> LayerSpec {
    LayerSpec::Dense {
        out_features: out,
        activation,
    }
}

/// LeNet-5: conv 5x5x6 `same` + ReLU, max pool 2x2, conv 5x5x16 + ReLU,
/// max pool 2x2, dense 120-84-`classes`. On 28x28x1 with 10 classes:
/// 61,706 parameters and 416,520 multiply-accumulates.
pub fn lenet5(input: Shape, classes: usize, seed: u64) -> Result<Net> {
    let mut g = Graph::new();
    let x = g.push(
        "conv1",
        conv(6, 5, Padding::Same, Activation::Relu),
        &[Graph::INPUT],
    );
    let x = g.push("pool1", max2(), &[x]);
    let x = g.push("conv2", conv(16, 5, Padding::Valid, Activation::Relu), &[x]);
    let x = g.push("pool2", max2(), &[x]);
    let x = g.push("dense1", dense(120, Activation::Relu), &[x]);
    let x = g.push("dense2", dense(84, Activation::Relu), &[x]);
    let x = g.push("logits", dense(classes, Activation::None), &[x]);
    g.head(x, 1.0);
    Net::new(g, input, seed)
}
