//! A convolution fused with its pool (`ConvMaxPool`, `ConvAvgPool`) gives
//! exactly the outputs of the convolution then the pool, over random
//! geometries and every precision; the writer fuses when the arena
//! shrinks, and the reader refuses malformed fused records.
#![cfg(feature = "std")]

mod models;

use half::f16;
use models::{lenet5, Precision, Rng};
use picocnn::model::writer::{AlignedBytes, Fusion, ModelBuilder, TensorType, Weights};
use picocnn::model::{Element, Interpreter, Model, OpKind};
use picocnn::ops::conv::{Conv2d, Conv2dConfig};
use picocnn::ops::pool::{Pool2d, Pool2dConfig};
use picocnn::ops::Padding;
use picocnn::quant::{Activation, QParams};
use picocnn::{Error, Shape};

fn below(r: &mut Rng, n: u64) -> usize {
    (r.next() % n) as usize
}

/// A random convolution then pool that both constructors accept.
fn geometry(r: &mut Rng) -> (Conv2dConfig, [usize; 2], [usize; 2], Padding, bool) {
    loop {
        let c = 1 + below(r, 4);
        let input = Shape::new(1 + below(r, 12), 1 + below(r, 12), c);
        let groups = match below(r, 4) {
            0 if c > 1 => c,
            1 if c.is_multiple_of(2) => 2,
            _ => 1,
        };
        let out = groups * (1 + below(r, 3));
        let k = [1 + below(r, 4), 1 + below(r, 4)];
        let pad = |r: &mut Rng| match below(r, 3) {
            0 => Padding::Valid,
            1 => Padding::Same,
            _ => Padding::Explicit {
                top: below(r, 3),
                bottom: below(r, 3),
                left: below(r, 3),
                right: below(r, 3),
            },
        };
        let config = Conv2dConfig {
            input,
            out_channels: out,
            kernel: k,
            stride: [1 + below(r, 2), 1 + below(r, 2)],
            dilation: [1 + below(r, 2), 1 + below(r, 2)],
            padding: pad(r),
            groups,
        };
        let Ok(conv) = Conv2d::new(config) else {
            continue;
        };
        let window = [1 + below(r, 4), 1 + below(r, 4)];
        let stride = [1 + below(r, 3), 1 + below(r, 3)];
        let padding = pad(r);
        let pool = Pool2dConfig {
            input: conv.output_shape(),
            window,
            stride,
            padding,
        };
        if Pool2d::new(pool).is_ok() {
            return (config, window, stride, padding, below(r, 2) == 0);
        }
    }
}

/// The model of one geometry in `p`, fused or not, with its input.
fn model(r: &mut Rng, p: Precision, seed: u64, fusion: Fusion) -> (Vec<u8>, bool) {
    let mut r2 = Rng(seed);
    let (config, window, stride, padding, max) = geometry(&mut r2);
    let conv = Conv2d::new(config).unwrap();
    let oc = conv.output_shape().c;
    let filter: Vec<i8> = (0..conv.filter_len()).map(|_| r2.i8()).collect();
    let bias: Vec<i32> = (0..oc).map(|_| r2.i8() as i32 * 40).collect();
    let (qi, qo) = (
        QParams::new(0.02, r2.i8() as i32 / 4).unwrap(),
        QParams::new(0.05, r2.i8() as i32 / 4).unwrap(),
    );
    let (ty_in, ty_out, weights) = match p {
        Precision::I8 => {
            let ws: Vec<f32> = (0..oc).map(|i| 0.004 + i as f32 * 0.001).collect();
            let w = Weights::i8_from_scales(filter, bias, &ws, qi, qo).unwrap();
            (TensorType::I8(qi), TensorType::I8(qo), w)
        }
        Precision::F32 => (
            TensorType::F32,
            TensorType::F32,
            Weights::F32 {
                filter: filter.iter().map(|&v| v as f32 / 64.0).collect(),
                bias: bias.iter().map(|&v| v as f32 / 1000.0).collect(),
            },
        ),
        Precision::F16 => (
            TensorType::F16,
            TensorType::F16,
            Weights::F16 {
                filter: filter
                    .iter()
                    .map(|&v| f16::from_f32(v as f32 / 64.0))
                    .collect(),
                bias: bias
                    .iter()
                    .map(|&v| f16::from_f32(v as f32 / 1000.0))
                    .collect(),
            },
        ),
    };
    let activation = [Activation::None, Activation::Relu, Activation::Relu6][below(r, 3)];
    let mut b = ModelBuilder::new("fuse");
    b.fuse(fusion);
    let x = b.input(config.input, ty_in);
    let y = b
        .conv2d("c", x, config, activation, weights, ty_out)
        .unwrap();
    let z = if max {
        b.max_pool("p", y, window, stride, padding)
    } else {
        b.avg_pool("p", y, window, stride, padding)
    }
    .unwrap();
    b.output(z);
    (b.finish().unwrap(), max)
}

/// Output bytes of `blob` on input values `input`.
fn run<T: Element + Copy>(blob: &[u8], input: impl Fn(usize) -> T) -> Vec<T> {
    let blob = AlignedBytes::from(blob);
    let model = Model::parse(blob.as_bytes()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(&model, &mut arena).unwrap();
    for (i, v) in it.input_mut::<T>(0).unwrap().iter_mut().enumerate() {
        *v = input(i);
    }
    it.run().unwrap();
    it.output::<T>(0).unwrap().to_vec()
}

fn kinds(blob: &[u8]) -> Vec<OpKind> {
    let blob = AlignedBytes::from(blob);
    let m = Model::parse(blob.as_bytes()).unwrap();
    (0..m.op_count()).map(|i| m.op(i).kind).collect()
}

#[test]
fn fused_ops_equal_the_convolution_then_the_pool() {
    let mut r = Rng(77);
    for seed in 0..300 {
        for p in [Precision::I8, Precision::F32, Precision::F16] {
            let act = r.next();
            let (plain, max) = model(&mut Rng(act), p, seed, Fusion::Never);
            let (fused, _) = model(&mut Rng(act), p, seed, Fusion::Always);
            let kind = if max {
                OpKind::ConvMaxPool
            } else {
                OpKind::ConvAvgPool
            };
            assert_eq!(kinds(&plain).len(), 2);
            assert_eq!(kinds(&fused), [kind], "seed {seed}");
            let mut x = Rng(seed);
            let mut vals = || -> Vec<i8> { (0..4096).map(|_| x.i8()).collect() };
            let v = vals();
            match p {
                Precision::I8 => assert_eq!(
                    run::<i8>(&plain, |i| v[i]),
                    run::<i8>(&fused, |i| v[i]),
                    "seed {seed}"
                ),
                Precision::F32 => {
                    let a = run::<f32>(&plain, |i| v[i] as f32 / 50.0);
                    let b = run::<f32>(&fused, |i| v[i] as f32 / 50.0);
                    let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(a), bits(b), "seed {seed}");
                }
                Precision::F16 => {
                    let f = |i: usize| f16::from_f32(v[i] as f32 / 50.0);
                    let bits = |v: Vec<f16>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(run(&plain, f)), bits(run(&fused, f)), "seed {seed}");
                }
            }
        }
    }
}

#[test]
fn lenet5_fuses_both_convolutions() {
    let blob = AlignedBytes::from(lenet5(Precision::I8).unwrap());
    let model = Model::parse(blob.as_bytes()).unwrap();
    let kinds: Vec<OpKind> = (0..model.op_count()).map(|i| model.op(i).kind).collect();
    assert_eq!(
        kinds,
        [
            OpKind::ConvMaxPool,
            OpKind::ConvMaxPool,
            OpKind::Dense,
            OpKind::Dense,
            OpKind::Dense,
            OpKind::Softmax
        ]
    );
    assert_eq!(model.planned_arena_len(), LENET5_I8_FUSED);
}

/// LeNet-5 int8's fused arena (planned, for a 16-byte aligned start): the
/// peak is while conv2+pool2 runs, its input (1,184 bytes aligned), its
/// output (400), its im2col scratch (1,216) and one row of conv2 (160).
const LENET5_I8_FUSED: usize = 2_960;

#[test]
fn malformed_fused_records_are_refused() {
    let blob = lenet5(Precision::I8).unwrap();
    // The op table's offset (format.md, header byte 32).
    let first = u32::from_le_bytes(blob[32..36].try_into().unwrap()) as usize;
    // Word 6 of the first op: the pool's window and stride as bytes.
    let word6 = first + 16 + 6 * 4;
    for (byte, value, what) in [
        (word6, 0u8, "pool parameters"),
        (word6 + 2, 0, "pool parameters"),
        (word6, 3, "op output shape does not follow from its input"),
        (
            word6 + 2,
            1,
            "op output shape does not follow from its input",
        ),
    ] {
        let mut bad = blob.clone();
        bad[byte] = value;
        fix_crc(&mut bad);
        match Model::parse(AlignedBytes::from(&bad[..]).as_bytes()) {
            Err(Error::InvalidModel { what: w, index: 0 }) => assert_eq!(w, what),
            other => panic!("byte {byte} = {value}: {other:?}"),
        }
    }
}

fn fix_crc(blob: &mut [u8]) {
    let total = u32::from_le_bytes(blob[8..12].try_into().unwrap()) as usize;
    let crc = picocnn::model::crc32(&blob[16..total]);
    blob[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// The arena of every zoo network's plans (`cargo test --release
/// --features std --test fuse -- --nocapture plan_report` prints them):
/// greedy, fused, each with its lower bound, and the one `finish` keeps.
#[test]
fn plan_report_of_the_zoo() {
    use picocnn::export::{builder, ExportOptions, Precision as P};
    use picocnn::train::{zoo, Net};
    type Build = fn(Shape, usize, u64) -> picocnn::Result<Net>;
    let nets: [(&str, Build); 5] = [
        ("lenet5", zoo::lenet5),
        ("alexnet_mini", zoo::alexnet_mini),
        ("vgg_mini", zoo::vgg_mini),
        ("inception_mini", zoo::inception_mini),
        ("resnet8", zoo::resnet8),
    ];
    let input = Shape::new(28, 28, 1);
    let mut r = Rng(3);
    let calibration: Vec<f32> = (0..4 * input.len()).map(|_| r.f32(0.0, 1.0)).collect();
    println!("network        type  greedy (bound)  fused (bound)  kept  fused ops  blob");
    for (name, build) in nets {
        let net = build(input, 10, 1).unwrap();
        for (ty, p) in [("int8", P::Int8), ("f32", P::F32)] {
            let options = ExportOptions::new(p).calibration(&calibration);
            let b = builder(&net, &options).unwrap();
            let report = b.plan_report().unwrap();
            println!(
                "{name:14} {ty:5} {:6} ({:5})  {:6} ({:5})  {:5}  {}  {}",
                report.greedy,
                report.greedy_bound,
                report.fused,
                report.fused_bound,
                report.chosen,
                report.fused_ops,
                b.finish().unwrap().len()
            );
            assert!(report.chosen <= report.greedy && report.chosen <= report.fused);
            assert!(report.greedy_bound <= report.greedy && report.fused_bound <= report.fused);
            if (name, ty) == ("lenet5", "int8") {
                assert_eq!(
                    (report.greedy, report.greedy_bound),
                    (5_888, LENET5_I8_GREEDY_BOUND)
                );
                assert_eq!(
                    (report.fused, report.fused_bound, report.chosen),
                    (LENET5_I8_FUSED, LENET5_I8_FUSED_BOUND, LENET5_I8_FUSED)
                );
                assert_eq!(report.fused_ops, 2);
            }
        }
    }
}

/// LeNet-5 int8's lower bounds: both plans reach theirs (unfused, the
/// first pool's input and output with the model's input; fused, what
/// conv2+pool2 holds).
const LENET5_I8_GREEDY_BOUND: usize = 5_888;
const LENET5_I8_FUSED_BOUND: usize = 2_960;
