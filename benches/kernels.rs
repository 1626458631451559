//! Host benchmarks of every kernel. Throughput is reported in
//! multiply-accumulates (or elements, for pools, add and softmax) per second.
//!
//! `cargo bench --bench kernels`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use half::f16;
use picocnn::ops::add::{add_float, AddI8, AddQuant};
use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat, Conv2dI8};
use picocnn::ops::dense::{Dense, DenseFloat, DenseI8};
use picocnn::ops::pool::{Pool2d, Pool2dConfig};
use picocnn::ops::pool::{Pool2dI8, PoolKind};
use picocnn::ops::softmax::{softmax_float, SoftmaxI8};
use picocnn::ops::Padding;
use picocnn::ops::WeightsI8;
use picocnn::quant::{Activation, Clamp, QParams};
use picocnn::{Real, Shape};
use std::hint::black_box;

fn pattern_i8(n: usize, seed: u32) -> Vec<i8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 24) as i8)
        .collect()
}

fn pattern_f<T: Real>(n: usize, seed: u32) -> Vec<T> {
    pattern_i8(n, seed)
        .into_iter()
        .map(|v| T::from_f32(v as f32 / 128.0))
        .collect()
}

fn convs() -> Vec<(&'static str, Conv2dConfig)> {
    vec![
        (
            "lenet_conv1_28x28x1_5x5x6",
            Conv2dConfig::new(Shape::new(28, 28, 1), 6, 5, 5).padding(Padding::Same),
        ),
        (
            "lenet_conv2_14x14x6_5x5x16",
            Conv2dConfig::new(Shape::new(14, 14, 6), 16, 5, 5),
        ),
        (
            "vgg_3x3_16x16x32_to_32",
            Conv2dConfig::new(Shape::new(16, 16, 32), 32, 3, 3).padding(Padding::Same),
        ),
        (
            "pointwise_16x16x32_to_64",
            Conv2dConfig::new(Shape::new(16, 16, 32), 64, 1, 1),
        ),
        (
            "depthwise_3x3_16x16x32",
            Conv2dConfig::depthwise(Shape::new(16, 16, 32), 1, 3, 3).padding(Padding::Same),
        ),
        (
            "grouped2_3x3_16x16x32",
            Conv2dConfig::new(Shape::new(16, 16, 32), 32, 3, 3)
                .padding(Padding::Same)
                .groups(2),
        ),
    ]
}

fn bench_conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d");
    for (name, config) in convs() {
        let conv = Conv2d::new(config).unwrap();
        g.throughput(Throughput::Elements(conv.macs() as u64));
        let oc = conv.output_shape().c;
        let filter = pattern_i8(conv.filter_len(), 1);
        let bias = vec![100i32; oc];
        let mult = vec![1_300_000_000i32; oc];
        let shift = vec![-8i32; oc];
        let layer = Conv2dI8::new(
            conv,
            WeightsI8 {
                filter: &filter,
                bias: &bias,
                multiplier: &mult,
                shift: &shift,
            },
            -3,
            5,
            Clamp::NONE,
        )
        .unwrap();
        let input = pattern_i8(conv.input_shape().len(), 2);
        let mut out = vec![0i8; conv.output_shape().len()];
        let mut scratch = vec![0u8; conv.scratch_len_i8()];
        g.bench_function(BenchmarkId::new("i8", name), |b| {
            b.iter(|| {
                layer
                    .run(black_box(&input), &mut out, &mut scratch)
                    .unwrap()
            })
        });
        bench_conv_float::<f32>(&mut g, "f32", name, conv);
        bench_conv_float::<f16>(&mut g, "f16", name, conv);
    }
    g.finish();
}

fn bench_conv_float<T: Real>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    precision: &str,
    name: &str,
    conv: Conv2d,
) {
    let filter = pattern_f::<T>(conv.filter_len(), 1);
    let bias = pattern_f::<T>(conv.output_shape().c, 3);
    let layer = Conv2dFloat::new(conv, &filter, &bias, Activation::Relu).unwrap();
    let input = pattern_f::<T>(conv.input_shape().len(), 2);
    let mut out = vec![T::default(); conv.output_shape().len()];
    g.bench_function(BenchmarkId::new(precision, name), |b| {
        b.iter(|| layer.run(black_box(&input), &mut out).unwrap())
    });
}

fn bench_dense(c: &mut Criterion) {
    let mut g = c.benchmark_group("dense");
    for (n, m) in [(400, 120), (120, 84), (1024, 256)] {
        let dense = Dense::new(n, m).unwrap();
        g.throughput(Throughput::Elements(dense.macs() as u64));
        let name = format!("{n}x{m}");
        let w = pattern_i8(n * m, 1);
        let bias = vec![7i32; m];
        let mult = vec![1_500_000_000i32; m];
        let shift = vec![-9i32; m];
        let layer = DenseI8::new(
            dense,
            WeightsI8 {
                filter: &w,
                bias: &bias,
                multiplier: &mult,
                shift: &shift,
            },
            4,
            -2,
            Clamp::NONE,
        )
        .unwrap();
        let x = pattern_i8(n, 2);
        let mut out = vec![0i8; m];
        let mut scratch = vec![0u8; dense.scratch_len_i8()];
        g.bench_function(BenchmarkId::new("i8", &name), |b| {
            b.iter(|| layer.run(black_box(&x), &mut out, &mut scratch).unwrap())
        });
        let wf = pattern_f::<f32>(n * m, 1);
        let bf = pattern_f::<f32>(m, 3);
        let xf = pattern_f::<f32>(n, 2);
        let layer = DenseFloat::new(dense, &wf, &bf, Activation::None).unwrap();
        let mut of = vec![0f32; m];
        g.bench_function(BenchmarkId::new("f32", &name), |b| {
            b.iter(|| layer.run(black_box(&xf), &mut of).unwrap())
        });
    }
    g.finish();
}

fn bench_elementwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise");
    let shape = Shape::new(32, 32, 16);
    let n = shape.len();
    g.throughput(Throughput::Elements(n as u64));
    let x = pattern_i8(n, 1);
    let y = pattern_i8(n, 2);
    let mut out = vec![0i8; n];
    let pool = Pool2d::new(Pool2dConfig::new(shape, 2, 2).stride(2, 2)).unwrap();
    let mut pooled = vec![0i8; pool.output_shape().len()];
    g.bench_function("maxpool_2x2_i8", |b| {
        b.iter(|| {
            Pool2dI8::new(pool, PoolKind::Max, Clamp::NONE)
                .and_then(|p| p.run(black_box(&x), &mut pooled))
                .unwrap()
        })
    });
    g.bench_function("avgpool_2x2_i8", |b| {
        b.iter(|| {
            Pool2dI8::new(pool, PoolKind::Average, Clamp::NONE)
                .and_then(|p| p.run(black_box(&x), &mut pooled))
                .unwrap()
        })
    });
    let q = AddQuant::new(
        QParams::new(0.02, 3).unwrap(),
        QParams::new(0.05, -9).unwrap(),
        QParams::new(0.06, 1).unwrap(),
    )
    .unwrap();
    let add = AddI8::new(q, Clamp::NONE).unwrap();
    g.bench_function("add_i8", |b| {
        b.iter(|| add.run(black_box(&x), &y, &mut out).unwrap())
    });
    let xf = pattern_f::<f32>(n, 1);
    let yf = pattern_f::<f32>(n, 2);
    let mut of = vec![0f32; n];
    g.bench_function("add_f32", |b| {
        b.iter(|| add_float(black_box(&xf), &yf, &mut of, Activation::None).unwrap())
    });
    let sm = SoftmaxI8::new(0.1, 1.0).unwrap();
    g.bench_function("softmax_i8_rows_of_16", |b| {
        b.iter(|| sm.run(16, black_box(&x), &mut out).unwrap())
    });
    g.bench_function("softmax_f32_rows_of_16", |b| {
        b.iter(|| softmax_float(16, black_box(&xf), &mut of, 1.0).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_conv, bench_dense, bench_elementwise);
criterion_main!(benches);
