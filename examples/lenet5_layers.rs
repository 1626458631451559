//! LeNet-5 int8, layer by layer, with the kernels alone: shapes,
//! multiply-accumulates, the one scratch buffer all layers share, and the time
//! of one inference on this machine.
//!
//! `cargo run --release --example lenet5_layers`
//!
//! The weights are pseudo-random: this shows the API and the memory plan, not
//! a trained network (training and model files come with later work).

use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dI8};
use picocnn::ops::dense::{Dense, DenseI8};
use picocnn::ops::pool::{Pool2d, Pool2dConfig};
use picocnn::ops::pool::{Pool2dI8, PoolKind};
use picocnn::ops::softmax::SoftmaxI8;
use picocnn::ops::Padding;
use picocnn::ops::WeightsI8;
use picocnn::quant::{quantize_multiplier, Activation, Clamp, QParams};
use picocnn::{Error, Shape};
use std::time::Instant;

fn pseudo_random(n: usize, seed: u64) -> Vec<i8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 56) as i8
        })
        .collect()
}

/// Bias, multipliers and shifts of one layer.
type LayerQuant = (Vec<i32>, Vec<i32>, Vec<i32>);

/// Per-channel bias and requantization for `n` channels.
fn quant(n: usize, real: f64) -> Result<LayerQuant, Error> {
    let r = quantize_multiplier(real)?;
    Ok((
        (0..n as i32).map(|i| i * 37 - 500).collect(),
        vec![r.multiplier; n],
        vec![r.shift; n],
    ))
}

fn main() -> Result<(), Error> {
    let act_q = QParams::new(0.05, -128)?;
    let relu = Activation::Relu.range_i8(act_q);

    let conv1 =
        Conv2d::new(Conv2dConfig::new(Shape::new(28, 28, 1), 6, 5, 5).padding(Padding::Same))?;
    let pool1 = Pool2d::new(Pool2dConfig::new(conv1.output_shape(), 2, 2).stride(2, 2))?;
    let conv2 = Conv2d::new(Conv2dConfig::new(pool1.output_shape(), 16, 5, 5))?;
    let pool2 = Pool2d::new(Pool2dConfig::new(conv2.output_shape(), 2, 2).stride(2, 2))?;
    let fc1 = Dense::new(pool2.output_shape().len(), 120)?;
    let fc2 = Dense::new(120, 84)?;
    let fc3 = Dense::new(84, 10)?;

    let w1 = pseudo_random(conv1.filter_len(), 1);
    let w2 = pseudo_random(conv2.filter_len(), 2);
    let wf1 = pseudo_random(fc1.weights_len(), 3);
    let wf2 = pseudo_random(fc2.weights_len(), 4);
    let wf3 = pseudo_random(fc3.weights_len(), 5);
    let (b1, m1, s1) = quant(6, 0.004)?;
    let (b2, m2, s2) = quant(16, 0.0017)?;
    let (bf1, mf1, sf1) = quant(120, 0.0011)?;
    let (bf2, mf2, sf2) = quant(84, 0.002)?;
    let (bf3, mf3, sf3) = quant(10, 0.0025)?;

    let l1 = Conv2dI8::new(
        conv1,
        WeightsI8 {
            filter: &w1,
            bias: &b1,
            multiplier: &m1,
            shift: &s1,
        },
        -128,
        -128,
        relu,
    )?;
    let l2 = Conv2dI8::new(
        conv2,
        WeightsI8 {
            filter: &w2,
            bias: &b2,
            multiplier: &m2,
            shift: &s2,
        },
        -128,
        -128,
        relu,
    )?;
    let f1 = DenseI8::new(
        fc1,
        WeightsI8 {
            filter: &wf1,
            bias: &bf1,
            multiplier: &mf1,
            shift: &sf1,
        },
        -128,
        -128,
        relu,
    )?;
    let f2 = DenseI8::new(
        fc2,
        WeightsI8 {
            filter: &wf2,
            bias: &bf2,
            multiplier: &mf2,
            shift: &sf2,
        },
        -128,
        -128,
        relu,
    )?;
    let f3 = DenseI8::new(
        fc3,
        WeightsI8 {
            filter: &wf3,
            bias: &bf3,
            multiplier: &mf3,
            shift: &sf3,
        },
        -128,
        0,
        Clamp::NONE,
    )?;
    let softmax = SoftmaxI8::new(0.1, 1.0)?;

    // One scratch buffer serves every layer: the largest need.
    let scratch_len = [
        conv1.scratch_len_i8(),
        conv2.scratch_len_i8(),
        fc1.scratch_len_i8(),
        fc2.scratch_len_i8(),
        fc3.scratch_len_i8(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    println!(
        "{:<8} {:>10} {:>8} {:>8}",
        "layer", "output", "MACs", "scratch"
    );
    for (name, shape, macs, scratch) in [
        (
            "conv1",
            conv1.output_shape(),
            conv1.macs(),
            conv1.scratch_len_i8(),
        ),
        ("pool1", pool1.output_shape(), 0, 0),
        (
            "conv2",
            conv2.output_shape(),
            conv2.macs(),
            conv2.scratch_len_i8(),
        ),
        ("pool2", pool2.output_shape(), 0, 0),
        ("fc1", Shape::flat(120), fc1.macs(), fc1.scratch_len_i8()),
        ("fc2", Shape::flat(84), fc2.macs(), fc2.scratch_len_i8()),
        ("fc3", Shape::flat(10), fc3.macs(), fc3.scratch_len_i8()),
    ] {
        println!("{name:<8} {:>10} {macs:>8} {scratch:>8}", shape.to_string());
    }

    let input = pseudo_random(28 * 28, 6);
    let mut a = vec![0i8; conv1.output_shape().len()];
    let mut b = vec![0i8; pool1.output_shape().len()];
    let mut scratch = vec![0u8; scratch_len];
    let mut probabilities = [0i8; 10];
    let runs = 2000;
    let start = Instant::now();
    for _ in 0..runs {
        l1.run(&input, &mut a, &mut scratch)?;
        Pool2dI8::new(pool1, PoolKind::Max, Clamp::NONE).and_then(|p| p.run(&a, &mut b))?;
        l2.run(&b, &mut a[..conv2.output_shape().len()], &mut scratch)?;
        Pool2dI8::new(pool2, PoolKind::Max, Clamp::NONE)
            .and_then(|p| p.run(&a[..conv2.output_shape().len()], &mut b[..400]))?;
        f1.run(&b[..400], &mut a[..120], &mut scratch)?;
        f2.run(&a[..120], &mut b[..84], &mut scratch)?;
        f3.run(&b[..84], &mut a[..10], &mut scratch)?;
        softmax.run(10, &a[..10], &mut probabilities)?;
    }
    let per_run = start.elapsed() / runs;
    let best = probabilities
        .iter()
        .enumerate()
        .max_by_key(|(_, &p)| p)
        .map(|(i, _)| i)
        .unwrap_or(0);
    println!(
        "activations {} + {} bytes, scratch {} bytes; one inference {:.1} us; class {} (p = {:.3})",
        a.len(),
        b.len(),
        scratch_len,
        per_run.as_secs_f64() * 1e6,
        best,
        (probabilities[best] as f32 + 128.0) / 256.0
    );
    Ok(())
}
