//! Model blobs end to end: build, parse, plan, run; round trips; every
//! corruption rejected without a panic.
#![cfg(feature = "std")]

mod models;

use models::{branchy, lenet5, Precision};
use picocnn::model::writer::AlignedBytes;
use picocnn::model::{DType, Interpreter, Model, OpKind, Summary};
use picocnn::Error;

fn run_i8(blob: &[u8], seed: u64) -> (Vec<Vec<i8>>, usize) {
    let model = Model::parse(blob).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut interp = Interpreter::new(&model, &mut arena).unwrap();
    let n = interp.input_mut::<i8>(0).unwrap().len();
    interp
        .input_mut::<i8>(0)
        .unwrap()
        .copy_from_slice(&models::input_i8(n, seed));
    let mut layers = 0;
    interp
        .run_with(&mut |e| {
            if e.done {
                layers += 1
            }
        })
        .unwrap();
    let outs = (0..model.output_count())
        .map(|i| interp.output::<i8>(i).unwrap().to_vec())
        .collect();
    (outs, layers)
}

#[test]
fn branchy_model_parses_and_runs() {
    let blob = AlignedBytes::from(branchy(Precision::I8).unwrap());
    let model = Model::parse(blob.as_bytes()).unwrap();
    assert_eq!(model.name(), "branchy-i8");
    assert_eq!(model.input_count(), 1);
    assert_eq!(model.output_count(), 2);
    assert_eq!(model.label(3), Some("three"));
    assert_eq!(model.normalisation(), (1.0 / 255.0, 0.0));
    let kinds: Vec<OpKind> = (0..model.op_count()).map(|i| model.op(i).kind).collect();
    for k in [
        OpKind::Conv2d,
        OpKind::Dense,
        OpKind::MaxPool,
        OpKind::AvgPool,
        OpKind::Add,
        OpKind::Concat,
        OpKind::Activation,
        OpKind::Softmax,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing");
    }
    let (outs, layers) = run_i8(blob.as_bytes(), 1);
    assert_eq!(layers, model.op_count());
    // Softmax output: probabilities summing to about one.
    let total: f32 = outs[0].iter().map(|&q| (q as f32 + 128.0) / 256.0).sum();
    assert!((total - 1.0).abs() < 0.05, "{total}");
    // Different inputs give different outputs; the same input the same.
    assert_ne!(run_i8(blob.as_bytes(), 2).0, outs);
    assert_eq!(run_i8(blob.as_bytes(), 1).0, outs);
    println!("{}", Summary::new(&model));
}

#[test]
fn float_models_run() {
    for p in [Precision::F32, Precision::F16] {
        let blob = AlignedBytes::from(branchy(p).unwrap());
        let model = Model::parse(blob.as_bytes()).unwrap();
        assert_eq!(
            model.tensor(0).dtype,
            if p == Precision::F32 {
                DType::F32
            } else {
                DType::F16
            }
        );
        let mut arena = vec![0u8; model.arena_len()];
        let mut interp = Interpreter::new(&model, &mut arena).unwrap();
        if p == Precision::F32 {
            for (i, v) in interp.input_mut::<f32>(0).unwrap().iter_mut().enumerate() {
                *v = (i % 7) as f32 / 7.0;
            }
            interp.run().unwrap();
            let probs = interp.output::<f32>(0).unwrap();
            assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
            assert!(
                interp.input_mut::<i8>(0).is_err(),
                "wrong element type must be an error"
            );
        } else {
            for (i, v) in interp
                .input_mut::<half::f16>(0)
                .unwrap()
                .iter_mut()
                .enumerate()
            {
                *v = half::f16::from_f32((i % 7) as f32 / 7.0);
            }
            interp.run().unwrap();
            let probs = interp.output::<half::f16>(0).unwrap();
            assert!((probs.iter().map(|v| v.to_f32()).sum::<f32>() - 1.0).abs() < 1e-2);
        }
    }
}

#[test]
fn lenet5_arena_is_planned() {
    let builder_blob = lenet5(Precision::I8).unwrap();
    let blob = AlignedBytes::from(builder_blob);
    let model = Model::parse(blob.as_bytes()).unwrap();
    let summary = Summary::new(&model);
    assert_eq!(summary.params(), 61_706);
    assert_eq!(summary.macs(), 416_520);
    // Exact sizes: the plan is deterministic.
    assert_eq!(model.planned_arena_len(), LENET5_I8_ARENA);
    let naive: usize = (0..model.tensor_count())
        .map(|t| model.tensor(t).byte_len().next_multiple_of(16))
        .sum::<usize>()
        + [384, 1376, 1616, 496, 352].iter().sum::<usize>();
    assert_eq!(naive, LENET5_I8_NAIVE);
    println!("{summary}");
    println!(
        "planned arena {} bytes; all activations and scratch side by side {naive} bytes",
        model.planned_arena_len()
    );
}

/// LeNet-5 int8's planned arena, each convolution fused with its pool
/// (5,888 unfused, when the first pool's 4,704-byte input and 1,184-byte
/// output were live together): the peak is while conv2+pool2 runs, with
/// its input (1,184 bytes), output (400), im2col scratch (1,216) and one
/// row of conv2's output (160).
const LENET5_I8_ARENA: usize = 2_960;

/// The sum of all LeNet-5 int8 activations and scratch buffers, each in its
/// own place (16-byte aligned).
const LENET5_I8_NAIVE: usize = 6_848;

#[test]
fn arena_too_small_is_an_error() {
    let blob = AlignedBytes::from(lenet5(Precision::I8).unwrap());
    let model = Model::parse(blob.as_bytes()).unwrap();
    let mut arena = vec![0u8; model.arena_len() - 16];
    match Interpreter::new(&model, &mut arena) {
        Err(Error::ArenaTooSmall { needed, got }) => {
            assert_eq!(needed, model.arena_len());
            assert_eq!(got, model.arena_len() - 16);
        }
        other => panic!("expected ArenaTooSmall, got {:?}", other.err()),
    }
}

#[test]
fn planned_arena_gives_the_same_results_as_separate_buffers() {
    let packed = AlignedBytes::from(branchy(Precision::I8).unwrap());
    let separate = AlignedBytes::from(models::branchy_with(Precision::I8, false).unwrap());
    let (mp, ms) = (
        Model::parse(packed.as_bytes()).unwrap(),
        Model::parse(separate.as_bytes()).unwrap(),
    );
    assert!(
        mp.planned_arena_len() < ms.planned_arena_len() / 2,
        "{} vs {}",
        mp.planned_arena_len(),
        ms.planned_arena_len()
    );
    // The packed plan runs an op in place (the ReLU6 over the add's output).
    assert!((0..mp.op_count()).any(|i| {
        let op = mp.op(i);
        op.kind == OpKind::Activation
            && mp.tensor(op.output).arena_offset == mp.tensor(mp.op_input(&op, 0)).arena_offset
    }));
    for seed in 0..20 {
        assert_eq!(
            run_i8(packed.as_bytes(), seed).0,
            run_i8(separate.as_bytes(), seed).0,
            "seed {seed}"
        );
    }
}

mod single_ops {
    use super::models::Rng;
    use picocnn::model::writer::{AlignedBytes, ModelBuilder, TensorType, Weights};
    use picocnn::model::{Interpreter, Model};
    use picocnn::ops::act::ActI8;
    use picocnn::ops::add::{AddI8, AddQuant};
    use picocnn::ops::concat::{concat_i8, ConcatInputI8};
    use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat, Conv2dI8};
    use picocnn::ops::dense::{Dense, DenseI8};
    use picocnn::ops::pool::{Pool2d, Pool2dConfig, Pool2dI8, PoolKind};
    use picocnn::ops::softmax::SoftmaxI8;
    use picocnn::ops::Padding;
    use picocnn::ops::WeightsI8;
    use picocnn::quant::{Activation, QParams, Rescale};
    use picocnn::Shape;

    fn q(s: f32, z: i32) -> QParams {
        QParams::new(s, z).unwrap()
    }

    /// Runs a one-input, one-output model on `x`.
    fn run(b: &ModelBuilder, x: &[i8]) -> Vec<i8> {
        let blob = AlignedBytes::from(b.finish().unwrap());
        let model = Model::parse(blob.as_bytes()).unwrap();
        let mut arena = vec![0u8; model.arena_len()];
        let mut it = Interpreter::new(&model, &mut arena).unwrap();
        it.input_mut::<i8>(0).unwrap().copy_from_slice(x);
        it.run().unwrap();
        it.output::<i8>(0).unwrap().to_vec()
    }

    fn vec_i8(r: &mut Rng, n: usize) -> Vec<i8> {
        (0..n).map(|_| r.i8()).collect()
    }

    #[test]
    fn conv_layers_match_the_kernels() {
        let mut r = Rng(9);
        let s = Shape::new(7, 6, 4);
        for config in [
            Conv2dConfig::new(s, 5, 3, 3)
                .padding(Padding::Same)
                .stride(2, 1),
            Conv2dConfig::new(s, 6, 1, 1),
            Conv2dConfig::depthwise(s, 2, 3, 3).padding(Padding::Same),
            Conv2dConfig::new(s, 4, 3, 2)
                .groups(2)
                .dilation(2, 1)
                .padding(Padding::Explicit {
                    top: 2,
                    bottom: 0,
                    left: 1,
                    right: 1,
                }),
        ] {
            let conv = Conv2d::new(config).unwrap();
            let oc = conv.output_shape().c;
            let (qi, qo) = (q(0.02, -3), q(0.05, 7));
            let filter = vec_i8(&mut r, conv.filter_len());
            let bias: Vec<i32> = (0..oc).map(|i| i as i32 * 100 - 200).collect();
            let ws: Vec<f32> = (0..oc).map(|i| 0.01 + i as f32 * 0.002).collect();
            let w = Weights::i8_from_scales(filter.clone(), bias.clone(), &ws, qi, qo).unwrap();
            let Weights::I8 {
                multiplier, shift, ..
            } = w.clone()
            else {
                unreachable!()
            };
            let mut b = ModelBuilder::new("conv");
            let x = b.input(s, TensorType::I8(qi));
            let y = b
                .conv2d("c", x, config, Activation::Relu, w, TensorType::I8(qo))
                .unwrap();
            b.output(y);
            let input = vec_i8(&mut r, s.len());
            let layer = Conv2dI8::new(
                conv,
                WeightsI8 {
                    filter: &filter,
                    bias: &bias,
                    multiplier: &multiplier,
                    shift: &shift,
                },
                qi.zero_point,
                qo.zero_point,
                Activation::Relu.range_i8(qo),
            )
            .unwrap();
            let mut expected = vec![0i8; conv.output_shape().len()];
            layer
                .run(&input, &mut expected, &mut vec![0u8; conv.scratch_len_i8()])
                .unwrap();
            assert_eq!(run(&b, &input), expected, "{config:?}");

            // The same layer in f32.
            let wf: Vec<f32> = filter.iter().map(|&v| v as f32 / 64.0).collect();
            let bf: Vec<f32> = bias.iter().map(|&v| v as f32 / 1000.0).collect();
            let mut b = ModelBuilder::new("conv-f32");
            let x = b.input(s, TensorType::F32);
            let y = b
                .conv2d(
                    "c",
                    x,
                    config,
                    Activation::Relu6,
                    Weights::F32 {
                        filter: wf.clone(),
                        bias: bf.clone(),
                    },
                    TensorType::F32,
                )
                .unwrap();
            b.output(y);
            let blob = AlignedBytes::from(b.finish().unwrap());
            let model = Model::parse(blob.as_bytes()).unwrap();
            let mut arena = vec![0u8; model.arena_len()];
            let mut it = Interpreter::new(&model, &mut arena).unwrap();
            let xf: Vec<f32> = input.iter().map(|&v| v as f32 / 128.0).collect();
            it.input_mut::<f32>(0).unwrap().copy_from_slice(&xf);
            it.run().unwrap();
            let mut expected = vec![0f32; conv.output_shape().len()];
            Conv2dFloat::new(conv, &wf, &bf, Activation::Relu6)
                .unwrap()
                .run(&xf, &mut expected)
                .unwrap();
            assert_eq!(it.output::<f32>(0).unwrap(), &expected[..]);
        }
    }

    #[test]
    fn other_layers_match_the_kernels() {
        let mut r = Rng(10);
        let s = Shape::new(6, 6, 5);
        let (qi, qo) = (q(0.03, 4), q(0.06, -9));
        let input = vec_i8(&mut r, s.len());

        // Dense over the whole tensor.
        let dense = Dense::new(s.len(), 7).unwrap();
        let wts = vec_i8(&mut r, dense.weights_len());
        let bias: Vec<i32> = (0..7).map(|i| i * 321 - 1000).collect();
        let w = Weights::i8_from_scales(wts.clone(), bias.clone(), &[0.004; 7], qi, qo).unwrap();
        let Weights::I8 {
            multiplier, shift, ..
        } = w.clone()
        else {
            unreachable!()
        };
        let mut b = ModelBuilder::new("dense");
        let x = b.input(s, TensorType::I8(qi));
        let y = b
            .dense("d", x, 7, Activation::None, w, TensorType::I8(qo))
            .unwrap();
        b.output(y);
        let mut expected = vec![0i8; 7];
        DenseI8::new(
            dense,
            WeightsI8 {
                filter: &wts,
                bias: &bias,
                multiplier: &multiplier,
                shift: &shift,
            },
            qi.zero_point,
            qo.zero_point,
            picocnn::Clamp::NONE,
        )
        .unwrap()
        .run(
            &input,
            &mut expected,
            &mut vec![0u8; dense.scratch_len_i8()],
        )
        .unwrap();
        assert_eq!(run(&b, &input), expected);

        // Pools.
        for (max, window, stride, padding) in [
            (true, [3, 3], [2, 2], Padding::Same),
            (false, [2, 3], [1, 2], Padding::Valid),
        ] {
            let pool = Pool2d::new(Pool2dConfig {
                input: s,
                window,
                stride,
                padding,
            })
            .unwrap();
            let mut b = ModelBuilder::new("pool");
            let x = b.input(s, TensorType::I8(qi));
            let y = if max {
                b.max_pool("p", x, window, stride, padding)
            } else {
                b.avg_pool("p", x, window, stride, padding)
            }
            .unwrap();
            b.output(y);
            let mut expected = vec![0i8; pool.output_shape().len()];
            if max {
                Pool2dI8::new(pool, PoolKind::Max, picocnn::Clamp::NONE)
                    .and_then(|p| p.run(&input, &mut expected))
                    .unwrap();
            } else {
                Pool2dI8::new(pool, PoolKind::Average, picocnn::Clamp::NONE)
                    .and_then(|p| p.run(&input, &mut expected))
                    .unwrap();
            }
            assert_eq!(run(&b, &input), expected);
        }

        // Activation (rescaling ReLU6) and softmax.
        let mut b = ModelBuilder::new("act");
        let x = b.input(s, TensorType::I8(qi));
        let y = b
            .activation("a", x, Activation::Relu6, TensorType::I8(qo))
            .unwrap();
        b.output(y);
        let mut expected = vec![0i8; s.len()];
        ActI8::new(qi, qo, Activation::Relu6)
            .unwrap()
            .run(&input, &mut expected)
            .unwrap();
        assert_eq!(run(&b, &input), expected);
        let mut b = ModelBuilder::new("softmax");
        let x = b.input(s, TensorType::I8(qi));
        let y = b.softmax("s", x, 1.5).unwrap();
        b.output(y);
        SoftmaxI8::new(qi.scale, 1.5)
            .unwrap()
            .run(s.c, &input, &mut expected)
            .unwrap();
        assert_eq!(run(&b, &input), expected);

        // Add and concat of the input with a rescaled copy of itself.
        let q2 = q(0.05, 20);
        let mut b = ModelBuilder::new("add-concat");
        let x = b.input(s, TensorType::I8(qi));
        let x2 = b
            .activation("copy", x, Activation::None, TensorType::I8(q2))
            .unwrap();
        let sum = b
            .add("add", x, x2, Activation::Relu, TensorType::I8(qo))
            .unwrap();
        let cat = b
            .concat("cat", &[sum, x, x2], TensorType::I8(q(0.04, 0)))
            .unwrap();
        b.output(cat);
        let mut copy = vec![0i8; s.len()];
        ActI8::new(qi, q2, Activation::None)
            .unwrap()
            .run(&input, &mut copy)
            .unwrap();
        let mut added = vec![0i8; s.len()];
        AddI8::new(
            AddQuant::new(qi, q2, qo).unwrap(),
            Activation::Relu.range_i8(qo),
        )
        .unwrap()
        .run(&input, &copy, &mut added)
        .unwrap();
        let qc = q(0.04, 0);
        let parts = [
            ConcatInputI8 {
                data: &added,
                channels: 5,
                rescale: Rescale::new(qo, qc).unwrap(),
            },
            ConcatInputI8 {
                data: &input,
                channels: 5,
                rescale: Rescale::new(qi, qc).unwrap(),
            },
            ConcatInputI8 {
                data: &copy,
                channels: 5,
                rescale: Rescale::new(q2, qc).unwrap(),
            },
        ];
        let mut expected = vec![0i8; s.len() * 3];
        concat_i8(&parts, &mut expected).unwrap();
        assert_eq!(run(&b, &input), expected);
    }
}

#[test]
fn print_arenas() {
    for name in ["branchy_i8", "branchy_f32", "branchy_f16", "lenet5_i8"] {
        let b = AlignedBytes::from(
            std::fs::read(format!(
                "{}/tests/models/{name}.pcnn",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        );
        let m = Model::parse(b.as_bytes()).unwrap();
        println!(
            "{name}: arena {} bytes, blob {} bytes",
            m.arena_len(),
            b.as_bytes().len()
        );
    }
}

#[test]
fn writer_is_the_readers_twin() {
    use picocnn::model::writer::ModelBuilder;
    for blob in [
        branchy(Precision::I8),
        branchy(Precision::F32),
        branchy(Precision::F16),
        lenet5(Precision::I8),
    ] {
        let blob = blob.unwrap();
        let aligned = AlignedBytes::from(blob.clone());
        let model = Model::parse(aligned.as_bytes()).unwrap();
        let again = ModelBuilder::from_model(&model).unwrap().finish().unwrap();
        assert_eq!(
            again,
            blob,
            "{}: parse then write is not the identity",
            model.name()
        );
    }
}
