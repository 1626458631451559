//! The classic architectures, for 28x28x1 or 32x32x3 inputs and any number
//! of classes.

use super::graph::{Graph, Layer};
use super::net::Net;
use crate::ops::Padding;
use crate::quant::Activation;
use crate::tensor::Shape;
use crate::Result;

fn conv(out: usize, k: usize, padding: Padding, activation: Activation) -> Layer {
    Layer::Conv2d {
        out_channels: out,
        kernel: [k, k],
        stride: [1, 1],
        dilation: [1, 1],
        padding,
        groups: 1,
        activation,
    }
}

fn max2() -> Layer {
    Layer::MaxPool {
        window: [2, 2],
        stride: [2, 2],
        padding: Padding::Valid,
    }
}

fn dense(out: usize, activation: Activation) -> Layer {
    Layer::Dense {
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

fn conv_s(out: usize, k: usize, stride: usize, groups: usize, activation: Activation) -> Layer {
    Layer::Conv2d {
        out_channels: out,
        kernel: [k, k],
        stride: [stride, stride],
        dilation: [1, 1],
        padding: Padding::Same,
        groups,
        activation,
    }
}

fn bn() -> Layer {
    Layer::BatchNorm { epsilon: 1e-3 }
}

fn global_avg(input: Shape) -> Layer {
    Layer::AvgPool {
        window: [input.h, input.w],
        stride: [1, 1],
        padding: Padding::Valid,
    }
}

/// AlexNet in miniature: a 5x5 convolution, then two 3x3 convolutions split
/// into two groups (AlexNet's two GPU paths), ReLU, max pooling, a dense
/// layer with dropout 0.5. On 28x28x1 with 10 classes: 431,434 parameters,
/// 3,739,392 multiply-accumulates.
pub fn alexnet_mini(input: Shape, classes: usize, seed: u64) -> Result<Net> {
    let mut g = Graph::new();
    let x = g.push(
        "conv1",
        conv(32, 5, Padding::Same, Activation::Relu),
        &[Graph::INPUT],
    );
    let x = g.push("pool1", max2(), &[x]);
    let x = g.push("conv2_grouped", conv_s(64, 3, 1, 2, Activation::Relu), &[x]);
    let x = g.push("pool2", max2(), &[x]);
    let x = g.push("conv3_grouped", conv_s(64, 3, 1, 2, Activation::Relu), &[x]);
    let x = g.push("dense1", dense(128, Activation::Relu), &[x]);
    let x = g.push("dropout", Layer::Dropout(0.5), &[x]);
    let x = g.push("logits", dense(classes, Activation::None), &[x]);
    g.head(x, 1.0);
    Net::new(g, input, seed)
}

/// VGG in miniature: three stages of two 3x3 convolutions (16, 32, 64
/// channels) each followed by 2x2 max pooling, then dense 128 and the
/// classifier. On 28x28x1 with 10 classes: 146,938 parameters, 7,413,248
/// multiply-accumulates.
pub fn vgg_mini(input: Shape, classes: usize, seed: u64) -> Result<Net> {
    let mut g = Graph::new();
    let mut x = Graph::INPUT;
    for (stage, c) in [16, 32, 64].into_iter().enumerate() {
        x = g.push(
            &std::format!("conv{}_1", stage + 1),
            conv(c, 3, Padding::Same, Activation::Relu),
            &[x],
        );
        x = g.push(
            &std::format!("conv{}_2", stage + 1),
            conv(c, 3, Padding::Same, Activation::Relu),
            &[x],
        );
        x = g.push(&std::format!("pool{}", stage + 1), max2(), &[x]);
    }
    let x = g.push("dense1", dense(128, Activation::Relu), &[x]);
    let x = g.push("logits", dense(classes, Activation::None), &[x]);
    g.head(x, 1.0);
    Net::new(g, input, seed)
}

/// One GoogLeNet block: 1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pool then
/// 1x1; concatenated.
fn inception(g: &mut Graph, name: &str, x: usize, c: [usize; 6]) -> usize {
    let relu = Activation::Relu;
    let a = g.push(
        &std::format!("{name}_1x1"),
        conv_s(c[0], 1, 1, 1, relu),
        &[x],
    );
    let b = g.push(
        &std::format!("{name}_3x3_reduce"),
        conv_s(c[1], 1, 1, 1, relu),
        &[x],
    );
    let b = g.push(
        &std::format!("{name}_3x3"),
        conv_s(c[2], 3, 1, 1, relu),
        &[b],
    );
    let d = g.push(
        &std::format!("{name}_5x5_reduce"),
        conv_s(c[3], 1, 1, 1, relu),
        &[x],
    );
    let d = g.push(
        &std::format!("{name}_5x5"),
        conv_s(c[4], 5, 1, 1, relu),
        &[d],
    );
    let p = g.push(
        &std::format!("{name}_pool"),
        Layer::MaxPool {
            window: [3, 3],
            stride: [1, 1],
            padding: Padding::Same,
        },
        &[x],
    );
    let p = g.push(
        &std::format!("{name}_pool_proj"),
        conv_s(c[5], 1, 1, 1, relu),
        &[p],
    );
    g.push(&std::format!("{name}_concat"), Layer::Concat, &[a, b, d, p])
}

/// GoogLeNet in miniature: a stem convolution, two Inception blocks with 1x1
/// bottlenecks, global average pooling, and an auxiliary classifier after
/// the first block whose loss counts 0.3 (used only in training). On 28x28x1
/// with 10 classes: 19,984 parameters, 1,306,016 multiply-accumulates.
pub fn inception_mini(input: Shape, classes: usize, seed: u64) -> Result<Net> {
    let mut g = Graph::new();
    let x = g.push(
        "stem",
        conv(16, 3, Padding::Same, Activation::Relu),
        &[Graph::INPUT],
    );
    let x = g.push("pool1", max2(), &[x]);
    let x = inception(&mut g, "block1", x, [8, 8, 12, 4, 8, 4]);
    let x = g.push("pool2", max2(), &[x]);
    let s = Shape::new(input.h / 4, input.w / 4, 32);
    let aux = g.push("aux_pool", global_avg(s), &[x]);
    let aux = g.push("aux_logits", dense(classes, Activation::None), &[aux]);
    let x = inception(&mut g, "block2", x, [32, 24, 48, 8, 16, 16]);
    let x = g.push("gap", global_avg(Shape::new(s.h, s.w, 112)), &[x]);
    let x = g.push("logits", dense(classes, Activation::None), &[x]);
    g.head(x, 1.0).head(aux, 0.3);
    Net::new(g, input, seed)
}

/// ResNet-8 as in MLPerf Tiny: a 3x3x16 stem, three residual stacks of two
/// 3x3 convolutions (16, 32, 64 filters; the last two with stride 2 and a
/// 1x1 stride-2 shortcut), batch normalisation, global average pooling and
/// the classifier. On 32x32x3 with 10 classes: 78,186 trained parameters
/// and 480 running statistics (MLPerf Tiny's 78,666), 12,501,632
/// multiply-accumulates; on 28x28x1: 77,898 and 9,345,920.
pub fn resnet8(input: Shape, classes: usize, seed: u64) -> Result<Net> {
    let mut g = Graph::new();
    let none = Activation::None;
    let x = g.push("stem", conv_s(16, 3, 1, 1, none), &[Graph::INPUT]);
    let x = g.push("stem_bn", bn(), &[x]);
    let mut x = g.push("stem_relu", Layer::Activation(Activation::Relu), &[x]);
    let (mut h, mut w) = (input.h, input.w);
    for (stack, (c, stride)) in [(16, 1), (32, 2), (64, 2)].into_iter().enumerate() {
        let name = |part: &str| std::format!("stack{}_{part}", stack + 1);
        let y = g.push(&name("conv1"), conv_s(c, 3, stride, 1, none), &[x]);
        let y = g.push(&name("bn1"), bn(), &[y]);
        let y = g.push(&name("relu1"), Layer::Activation(Activation::Relu), &[y]);
        let y = g.push(&name("conv2"), conv_s(c, 3, 1, 1, none), &[y]);
        let y = g.push(&name("bn2"), bn(), &[y]);
        let shortcut = if stride == 1 {
            x
        } else {
            g.push(&name("shortcut"), conv_s(c, 1, stride, 1, none), &[x])
        };
        x = g.push(
            &name("add"),
            Layer::Add {
                activation: Activation::Relu,
            },
            &[shortcut, y],
        );
        h = h.div_ceil(stride);
        w = w.div_ceil(stride);
    }
    let x = g.push("gap", global_avg(Shape::new(h, w, 64)), &[x]);
    let x = g.push("logits", dense(classes, Activation::None), &[x]);
    g.head(x, 1.0);
    Net::new(g, input, seed)
}
