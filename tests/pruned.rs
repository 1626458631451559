//! A build for given models (`PICOCNN_MODELS`, read by `build.rs`) leaves
//! the other kernels out; `Model::parse` or `Interpreter::new` refuses a
//! model that needs one, naming why. `cargo xtask test` runs this file both ways: a full build
//! and one for the int8 LeNet-5 only.

use picocnn::model::{DType, Interpreter, Model, OpKind};
use picocnn::Error;

/// The blob at `tests/models/<name>`, in a 16-byte aligned buffer.
fn blob(name: &str) -> Vec<u128> {
    let bytes = std::fs::read(format!(
        "{}/tests/models/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("committed model");
    let mut words = vec![0u128; bytes.len().div_ceil(16)];
    bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
    words
}

fn interpret(name: &str) -> Result<(), Error> {
    let words = blob(name);
    let bytes = bytemuck::cast_slice::<u128, u8>(&words);
    let model = Model::parse(bytes)?;
    let mut arena = vec![0u8; model.arena_len() + 16];
    let mut interp = Interpreter::new(&model, &mut arena)?;
    interp.run()
}

#[test]
fn models_outside_the_build_are_refused_by_name() {
    // The int8 LeNet-5, fused or not, runs where its op kinds are built:
    // a build for the fused one (as the boards are) leaves out the plain
    // convolution and pool records and refuses the unfused model by name.
    let lenets: [(&str, &[OpKind]); 2] = [
        ("lenet5_mnist_i8.pcnn", &[OpKind::Conv2d, OpKind::MaxPool]),
        ("lenet5_mnist_i8_fused.pcnn", &[OpKind::ConvMaxPool]),
    ];
    for (name, kinds) in lenets {
        match interpret(name) {
            Ok(()) => assert!(kinds.iter().all(|k| k.built()), "{name}"),
            Err(Error::Unsupported { what }) => {
                assert!(!kinds.iter().all(|k| k.built()), "{name}");
                assert!(what.contains("PICOCNN_MODELS"), "{what}");
            }
            Err(e) => panic!("{name}: unexpected error {e}"),
        }
        if option_env!("PICOCNN_MODELS").is_some_and(|m| m.ends_with(name)) {
            interpret(name).unwrap();
        }
    }
    // The branchy model needs add, concat and average pooling.
    let branchy_kinds = [OpKind::Add, OpKind::Concat, OpKind::AvgPool];
    match interpret("branchy_i8.pcnn") {
        Ok(()) => assert!(branchy_kinds.iter().all(|k| k.built())),
        Err(Error::Unsupported { what }) => {
            assert!(!branchy_kinds.iter().all(|k| k.built()));
            assert!(what.contains("PICOCNN_MODELS"), "{what}");
        }
        Err(e) => panic!("unexpected error {e}"),
    }
    // The f16 LeNet-5 (unfused) needs the f16 kernels and the plain
    // convolution and pool records.
    let f16_built = DType::F16.built() && OpKind::Conv2d.built() && OpKind::MaxPool.built();
    match interpret("lenet5_mnist_f16.pcnn") {
        Ok(()) => assert!(f16_built),
        Err(Error::Unsupported { what }) => {
            assert!(!f16_built);
            assert!(what.contains("PICOCNN_MODELS"), "{what}");
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn the_build_says_what_it_has() {
    // A LeNet-only build has no add, concat, f16 or f32; a full build has all.
    let pruned = match option_env!("PICOCNN_MODELS") {
        None => false,
        Some(m) if m.ends_with("lenet5_mnist_i8_fused.pcnn") => true,
        Some(_) => return, // built for other models
    };
    assert_eq!(OpKind::Add.built(), !pruned);
    assert_eq!(OpKind::Concat.built(), !pruned);
    assert_eq!(DType::F32.built(), !pruned);
    assert_eq!(OpKind::Conv2d.built(), !pruned);
    assert_eq!(OpKind::MaxPool.built(), !pruned);
    assert!(OpKind::ConvMaxPool.built() && OpKind::Dense.built() && DType::I8.built());
}

/// An int8 convolution fused with `pool`: `(max, window, stride)`.
#[cfg(feature = "std")]
fn fused(max: bool, window: usize, stride: usize) -> Result<Vec<u8>, Error> {
    use picocnn::model::writer::{Fusion, ModelBuilder, TensorType, Weights};
    use picocnn::ops::conv::Conv2dConfig;
    use picocnn::ops::Padding;
    use picocnn::quant::{Activation, QParams};
    let config = Conv2dConfig::new(picocnn::Shape::new(8, 8, 1), 4, 3, 3).padding(Padding::Same);
    let q = QParams::new(0.02, 0).unwrap();
    let filter = (0..36).map(|i| (i * 7 % 23) as i8 - 11).collect();
    let weights = Weights::i8_from_scales(filter, vec![5; 4], &[0.01; 4], q, q).unwrap();
    let mut b = ModelBuilder::new("fused");
    b.fuse(Fusion::Always);
    let x = b.input(config.input, TensorType::I8(q));
    let y = b
        .conv2d("c", x, config, Activation::Relu, weights, TensorType::I8(q))
        .unwrap();
    let z = if max {
        b.max_pool("p", y, [window; 2], [stride; 2], Padding::Same)
    } else {
        b.avg_pool("p", y, [window; 2], [stride; 2], Padding::Same)
    }
    .unwrap();
    b.output(z);
    b.finish()
}

#[cfg(feature = "std")]
#[test]
fn fused_pools_are_built_by_loop() {
    use picocnn::model::writer::AlignedBytes;
    // A LeNet-only build streams rows through a max pool whose windows
    // share none (2x2, stride 2); the band loop, which overlapping max
    // windows and average pools take, is left out.
    let pruned =
        option_env!("PICOCNN_MODELS").is_some_and(|m| m.ends_with("lenet5_mnist_i8_fused.pcnn"));
    for (max, window, stride, needs_band) in
        [(true, 2, 2, false), (true, 3, 2, true), (false, 2, 2, true)]
    {
        let refused = |what: &str| {
            assert!(pruned && needs_band, "{max} {window}: {what}");
            assert!(what.contains("PICOCNN_MODELS"), "{what}");
            // Max pools are built; their band loop is not.
            assert!(!max || what.contains("bands"), "{what}");
        };
        // The writer runs what it writes: a build without the op refuses
        // it there already.
        let blob = match fused(max, window, stride) {
            Ok(blob) => AlignedBytes::from(blob),
            Err(Error::Unsupported { what }) => {
                refused(what);
                continue;
            }
            Err(e) => panic!("unexpected error {e}"),
        };
        let model = Model::parse(blob.as_bytes()).unwrap();
        let kinds: Vec<_> = (0..model.op_count()).map(|i| model.op(i).kind).collect();
        let fused_kind = if max {
            OpKind::ConvMaxPool
        } else {
            OpKind::ConvAvgPool
        };
        assert_eq!(kinds, [fused_kind]);
        let mut arena = vec![0u8; model.arena_len()];
        match Interpreter::new(&model, &mut arena) {
            Ok(mut it) => {
                assert!(!(pruned && needs_band), "{max} {window}");
                it.run().unwrap();
            }
            Err(Error::Unsupported { what }) => {
                refused(what);
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

#[test]
fn the_band_loop_left_out_is_refused_by_the_op_too() {
    use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dI8};
    use picocnn::ops::conv_pool::ConvPool;
    use picocnn::ops::pool::{Pool2d, Pool2dConfig, PoolKind};
    use picocnn::ops::WeightsI8;
    use picocnn::quant::Clamp;
    let pruned =
        option_env!("PICOCNN_MODELS").is_some_and(|m| m.ends_with("lenet5_mnist_i8_fused.pcnn"));
    let conv = Conv2d::new(Conv2dConfig::new(picocnn::Shape::new(6, 6, 1), 1, 3, 3)).unwrap();
    // Each output is 9 * 3 = 27 (a multiplier of one half, shifted left once).
    let w = WeightsI8 {
        filter: &[1; 9],
        bias: &[0],
        multiplier: &[1 << 30],
        shift: &[1],
    };
    let layer = Conv2dI8::new(conv, w, 0, 0, Clamp::NONE).unwrap();
    for (kind, window, stride, band) in [
        (PoolKind::Max, 2, 2, false),
        (PoolKind::Max, 2, 1, true),
        (PoolKind::Average, 2, 2, true),
    ] {
        let pool = Pool2d::new(
            Pool2dConfig::new(conv.output_shape(), window, window).stride(stride, stride),
        )
        .unwrap();
        let fused = ConvPool::new(conv, pool, kind).unwrap();
        assert_eq!(fused.built(), !(pruned && band));
        let (input, mut out) = ([3i8; 36], vec![0i8; pool.output_shape().len()]);
        let (mut scratch, mut b) = (
            vec![0u8; conv.scratch_len_i8()],
            vec![0i8; fused.band_len()],
        );
        match fused.run_i8(&layer, &input, &mut out, &mut scratch, &mut b) {
            Ok(()) => assert!(out.iter().all(|&v| v == 27), "{out:?}"),
            Err(Error::Unsupported { what }) => {
                assert!(pruned && band);
                assert!(what.contains("PICOCNN_MODELS"), "{what}");
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}
