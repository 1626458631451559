//! LeNet-5 training cost per layer: forward and backward passes of one work
//! item (16 images, as the trainer hands each thread) through networks of
//! one layer each, and through the whole network. One thread.
//! `cargo bench --features std --bench train`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use picocnn::ops::Padding;
use picocnn::train::{zoo, Graph, Layer, Net};
use picocnn::{Activation, Shape};
use std::hint::black_box;

const CHUNK: usize = 16;

fn single(layer: Layer, input: Shape) -> Net {
    let mut g = Graph::new();
    let y = g.push("layer", layer, &[Graph::INPUT]);
    g.head(y, 1.0);
    Net::new(g, input, 1).expect("valid layer")
}

fn conv(out: usize, padding: Padding) -> Layer {
    Layer::Conv2d {
        out_channels: out,
        kernel: [5, 5],
        stride: [1, 1],
        dilation: [1, 1],
        padding,
        groups: 1,
        activation: Activation::Relu,
    }
}

fn bench(c: &mut Criterion) {
    let pool = Layer::MaxPool {
        window: [2, 2],
        stride: [2, 2],
        padding: Padding::Valid,
    };
    let dense = |n| Layer::Dense {
        out_features: n,
        activation: Activation::Relu,
    };
    // `first` layers read the network input: no input gradient, as in training.
    let cases: Vec<(&str, Net, bool)> = vec![
        (
            "conv1",
            single(conv(6, Padding::Same), Shape::new(28, 28, 1)),
            true,
        ),
        ("pool1", single(pool, Shape::new(28, 28, 6)), false),
        (
            "conv2",
            single(conv(16, Padding::Valid), Shape::new(14, 14, 6)),
            false,
        ),
        ("pool2", single(pool, Shape::new(10, 10, 16)), false),
        ("dense1", single(dense(120), Shape::flat(400)), false),
        (
            "lenet5",
            zoo::lenet5(Shape::new(28, 28, 1), 10, 1).expect("lenet5"),
            true,
        ),
    ];
    let mut g = c.benchmark_group("train_step_16");
    for (name, net, _first) in &cases {
        let n_in = net.shape(0).len();
        let input: Vec<f32> = (0..CHUNK * n_in)
            .map(|i| (i % 251) as f32 / 251.0)
            .collect();
        let seeds = vec![7u64; CHUNK];
        let head = net.graph().heads[0];
        let out_len = net.shape(head).len() * CHUNK;
        let dy: Vec<f32> = (0..out_len)
            .map(|i| ((i % 7) as f32 - 3.0) * 1e-3)
            .collect();
        let mut grads = vec![0.0f32; net.param_count()];
        g.throughput(Throughput::Elements(CHUNK as u64));
        g.bench_function(format!("{name}/forward"), |b| {
            b.iter(|| black_box(net.forward_batch(black_box(&input), CHUNK, Some(&seeds))))
        });
        let t = net.forward_batch(&input, CHUNK, Some(&seeds));
        let heads = vec![(head, dy.clone())];
        g.bench_function(format!("{name}/backward"), |b| {
            b.iter(|| {
                net.backward_batch(black_box(&t), CHUNK, &heads, Some(&seeds), &mut grads);
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
