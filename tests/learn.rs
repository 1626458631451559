//! On-device fine-tuning, run on the host: the no_std integer fine-tuner
//! adapts the shipped int8 LeNet-5 to digits in a writing style it never
//! saw, and repeats itself bit for bit from a seed.
#![cfg(feature = "std")]

use picocnn::data::load_mnist;
use picocnn::data::style::{restyle, Style};
use picocnn::learn::{record_trainable, FineTuner, TrainableSet};
use picocnn::model::writer::AlignedBytes;
use picocnn::model::Model;
use picocnn::Shape;

fn blob() -> AlignedBytes {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/lenet5_mnist_i8.pcnn"
    );
    AlignedBytes::from(std::fs::read(path).unwrap())
}

/// The demonstration's writer's style (`picocnn::data::style`).
fn styled(img: &[u8]) -> Vec<u8> {
    restyle(img, Shape::new(28, 28, 1), Style::default()).unwrap()
}

/// The model's int8 input for a 28x28 grey image.
fn quantize(model: &Model<'_>, img: &[u8], out: &mut [i8]) {
    let q = model.tensor(model.input(0).unwrap()).qparams.unwrap();
    let (scale, offset) = model.normalisation();
    for (d, &p) in out.iter_mut().zip(img) {
        *d = q.quantize(p as f32 * scale + offset);
    }
}

fn accuracy(tuner: &mut FineTuner<'_, '_, '_>, model: &Model<'_>, set: &[(Vec<u8>, usize)]) -> f64 {
    let mut right = 0;
    for (img, label) in set {
        quantize(model, img, tuner.input_mut::<i8>().unwrap());
        right += (tuner.predict().unwrap() == *label) as usize;
    }
    right as f64 / set.len() as f64
}

#[test]
fn fine_tuning_adapts_to_a_new_writing_style() {
    let (_, test) = load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let samples: Vec<(Vec<u8>, usize)> = (0..1300)
        .map(|i| (styled(test.image(i)), test.label(i)))
        .collect();
    let (tune, held_out) = samples.split_at(300);
    let bytes = blob();
    let model = Model::parse(bytes.as_bytes()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut train = vec![0u8; FineTuner::train_len(&model).unwrap()];
    let mut tuner = FineTuner::new(&model, &mut arena, &mut train, 0.01, 7).unwrap();
    let before = accuracy(&mut tuner, &model, held_out);
    for _epoch in 0..3 {
        for (img, label) in tune {
            quantize(&model, img, tuner.input_mut::<i8>().unwrap());
            tuner.step(*label).unwrap();
        }
    }
    let after = accuracy(&mut tuner, &model, held_out);
    println!(
        "held-out accuracy {:.2} % -> {:.2} %",
        100.0 * before,
        100.0 * after
    );
    // Measured: 66.6 % -> 82.2 % (the last dense layer, 300 samples, 3 epochs).
    assert!(after > before + 0.12, "{before} -> {after}");

    // The tuned weights written into the blob give a model that answers as
    // the tuner does.
    let mut tuned = bytes.as_bytes().to_vec();
    tuner.write_into(&mut tuned).unwrap();
    let tuned = AlignedBytes::from(tuned);
    let tuned_model = Model::parse(tuned.as_bytes()).unwrap();
    let mut arena2 = vec![0u8; tuned_model.arena_len()];
    let mut interp = picocnn::model::Interpreter::new(&tuned_model, &mut arena2).unwrap();
    for (img, _) in &held_out[..50] {
        quantize(&model, img, tuner.input_mut::<i8>().unwrap());
        quantize(&tuned_model, img, interp.input_mut::<i8>(0).unwrap());
        interp.run().unwrap();
        let probs = interp.output::<i8>(0).unwrap();
        let best = (0..10).fold(0, |b, k| if probs[k] > probs[b] { k } else { b });
        assert_eq!(best, tuner.predict().unwrap());
    }
}

/// The weights after a sequence of steps depend only on the samples and the
/// seed.
#[test]
fn a_seed_repeats_the_updates_bit_for_bit() {
    let (_, test) = load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let bytes = blob();
    let model = Model::parse(bytes.as_bytes()).unwrap();
    let run = |seed: u64| {
        let mut arena = vec![0u8; model.arena_len()];
        let mut train = vec![0u8; FineTuner::train_len(&model).unwrap()];
        let mut tuner = FineTuner::new(&model, &mut arena, &mut train, 0.01, seed).unwrap();
        for i in 0..40 {
            quantize(
                &model,
                &styled(test.image(i)),
                tuner.input_mut::<i8>().unwrap(),
            );
            tuner.step(test.label(i)).unwrap();
        }
        let mut p = [(None, &[][..]); 4];
        let n = tuner.params(&mut p);
        assert_eq!(n, 1);
        (p[0].0.unwrap().to_vec(), p[0].1.to_vec(), tuner.digest())
    };
    let a = run(5);
    assert_eq!(a, run(5));
    assert_ne!(a, run(6));
    // The weights moved.
    let mut arena = vec![0u8; model.arena_len()];
    let mut train = vec![0u8; FineTuner::train_len(&model).unwrap()];
    let fresh = FineTuner::new(&model, &mut arena, &mut train, 0.01, 5).unwrap();
    let mut p = [(None, &[][..]); 1];
    fresh.params(&mut p);
    assert_ne!(p[0].0.unwrap(), &a.0[..]);
    assert_ne!(fresh.digest(), a.2);
}

#[test]
fn bad_input_is_an_error_and_the_tuner_stays_usable() {
    let bytes = blob();
    let model = Model::parse(bytes.as_bytes()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let need = FineTuner::train_len(&model).unwrap();
    // The set recorded in the shipped blob: the last dense layer.
    assert_eq!(need, 1_039);
    assert_eq!(model.train_len(), need);
    let mut small = vec![0u8; need - 10];
    assert!(matches!(
        FineTuner::new(&model, &mut arena, &mut small, 0.01, 1),
        Err(picocnn::Error::ArenaTooSmall { .. })
    ));
    let mut train = vec![0u8; need];
    assert!(FineTuner::new(&model, &mut arena, &mut train, -1.0, 1).is_err());
    let mut tuner = FineTuner::new(&model, &mut arena, &mut train, 0.01, 1).unwrap();
    tuner.input_mut::<i8>().unwrap().fill(-128);
    assert!(tuner.step(10).is_err());
    assert!(tuner.step(3).is_ok());
    // Writing into another model's bytes is refused and leaves them.
    let mut other = bytes.as_bytes().to_vec();
    other[100] ^= 1;
    let copy = other.clone();
    assert!(tuner.write_into(&mut other).is_err());
    assert_eq!(other, copy);
    assert!(tuner.write_into(&mut other[..50]).is_err());
    // A model that does not end in a dense layer and softmax.
    let f32_blob = AlignedBytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/models/lenet5_mnist_f16.pcnn"
        ))
        .unwrap(),
    );
    let f16 = Model::parse(f32_blob.as_bytes()).unwrap();
    assert!(FineTuner::train_len(&f16).is_err());
}

/// Deeper sets: the last two dense layers, and the last one with the
/// biases of every layer below (the backward pass through dense, max
/// pooling and convolution): their memory, that they learn the style, and
/// that a seed repeats them.
#[test]
fn deeper_sets_learn_and_repeat() {
    let (_, test) = load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let samples: Vec<(Vec<u8>, usize)> = (0..700)
        .map(|i| (styled(test.image(i)), test.label(i)))
        .collect();
    let (tune, held_out) = samples.split_at(300);
    let bytes = blob();
    let model = Model::parse(bytes.as_bytes()).unwrap();
    // More trained parameters take a smaller rate.
    let sets = [
        (
            TrainableSet::Last {
                weights: 2,
                biases: 0,
            },
            11_607,
            0.01,
        ),
        (
            TrainableSet::Last {
                weights: 1,
                biases: usize::MAX,
            },
            4_999,
            0.003,
        ),
        (
            TrainableSet::Last {
                weights: 0,
                biases: usize::MAX,
            },
            4_159,
            0.01,
        ),
    ];
    for (set, len, lr) in sets {
        assert_eq!(
            FineTuner::train_len_for(&model, set).unwrap(),
            len,
            "{set:?}"
        );
        let run = |seed: u64, epochs: usize| {
            let mut arena = vec![0u8; model.arena_len()];
            let mut train = vec![0u8; len];
            let mut tuner =
                FineTuner::with_set(&model, set, &mut arena, &mut train, lr, seed).unwrap();
            let before = accuracy(&mut tuner, &model, held_out);
            for _ in 0..epochs {
                for (img, label) in tune {
                    quantize(&model, img, tuner.input_mut::<i8>().unwrap());
                    tuner.step(*label).unwrap();
                }
            }
            (
                before,
                accuracy(&mut tuner, &model, held_out),
                tuner.digest(),
            )
        };
        let (before, after, digest) = run(3, 1);
        println!("{set:?}: {:.1} % -> {:.1} %", 100.0 * before, 100.0 * after);
        assert!(after > before + 0.04, "{set:?}: {before} -> {after}");
        assert_eq!(run(3, 1).2, digest);
        assert_ne!(run(4, 1).2, digest);
    }
}

/// The trainable set recorded in a blob: the tuner takes it, a blob
/// without one is refused with a specific error, and a record whose memory
/// disagrees is refused.
#[test]
fn the_recorded_set_is_the_tuners() {
    let mut bytes = blob().as_bytes().to_vec();
    let set = TrainableSet::Last {
        weights: 1,
        biases: usize::MAX,
    };
    assert_eq!(record_trainable(&mut bytes, set).unwrap(), 4_999);
    let marked = AlignedBytes::from(bytes.clone());
    let model = Model::parse(marked.as_bytes()).unwrap();
    assert_eq!(model.train_len(), 4_999);
    let marks: Vec<_> = (0..model.op_count()).map(|i| model.op(i).train).collect();
    use picocnn::model::Train::{All, Bias, Frozen};
    assert_eq!(marks, [Bias, Frozen, Bias, Frozen, Bias, Bias, All, Frozen]);
    assert_eq!(FineTuner::train_len(&model).unwrap(), 4_999);

    // Cleared: no set, a specific error.
    let cleared_len = record_trainable(
        &mut bytes,
        TrainableSet::Last {
            weights: 0,
            biases: 0,
        },
    )
    .unwrap();
    assert_eq!(cleared_len, 0);
    let cleared = AlignedBytes::from(bytes.clone());
    let model = Model::parse(cleared.as_bytes()).unwrap();
    let err = FineTuner::train_len(&model).unwrap_err().to_string();
    assert!(err.contains("no trainable set"), "{err}");

    // A recorded memory that is not the tuner's.
    let mut wrong = marked.as_bytes().to_vec();
    wrong[76..80].copy_from_slice(&100u32.to_le_bytes());
    let sum = picocnn::model::crc32(&wrong[16..]);
    wrong[12..16].copy_from_slice(&sum.to_le_bytes());
    let wrong = AlignedBytes::from(wrong);
    let model = Model::parse(wrong.as_bytes()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut train = vec![0u8; 8000];
    assert!(FineTuner::new(&model, &mut arena, &mut train, 0.01, 1).is_err());

    // A mark on an op that cannot train is a parse error.
    let mut bad = marked.as_bytes().to_vec();
    let ops_off = u32::from_le_bytes(bad[32..36].try_into().unwrap()) as usize;
    bad[ops_off + 64 + 3] = 2; // the max pool
    let sum = picocnn::model::crc32(&bad[16..]);
    bad[12..16].copy_from_slice(&sum.to_le_bytes());
    let bad = AlignedBytes::from(bad);
    assert!(Model::parse(bad.as_bytes()).is_err());
}

/// The integer backward pass against the float trainer's on the same
/// network: a LeNet-5 trained briefly in f32 and exported to int8. For the
/// last dense layer's weights and every layer's biases, the gradient the
/// integer fine-tuner's update stands for (its expected step, before
/// rounding, times `-s_w / lr` or `-s_x s_w / lr`) is compared with the
/// float gradient at the same images. They differ by what int8 inference
/// changes in the forward pass (activations rounded to 8 bits) and by the
/// 14-bit gradients. Measured over 40 images: cosine 0.996 or more and
/// norms within 0.3 % for the dense layers and the second convolution's
/// biases; for the first convolution's biases, four layers down through
/// two int8 max pools, cosine 0.970 and norm ratio 0.937. Asserted: cosine
/// above 0.95 and norms within 10 % for every layer.
#[test]
fn the_integer_gradients_follow_the_float_trainers() {
    use picocnn::export::{builder, ExportOptions, Precision};
    use picocnn::model::writer::Fusion;
    use picocnn::train::{gradient, zoo, TrainConfig, Trainer};

    let (train, test) = load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let small = picocnn::data::Dataset::new(
        train.shape(),
        (0..2000).flat_map(|i| train.image(i).to_vec()).collect(),
        train.labels()[..2000].to_vec(),
        train.class_names().to_vec(),
    )
    .unwrap();
    let mut net = zoo::lenet5(train.shape(), 10, 3).unwrap();
    Trainer::new(TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    })
    .fit(&mut net, &small, &test, &mut |_| {});
    let pixels = |img: &[u8]| img.iter().map(|&p| p as f32 / 255.0).collect::<Vec<f32>>();
    let calib: Vec<f32> = (0..256).flat_map(|i| pixels(train.image(i))).collect();
    // Unfused: a convolution fused with its pool is never trained.
    let blob = AlignedBytes::from(
        builder(
            &net,
            &ExportOptions::new(Precision::Int8).calibration(&calib),
        )
        .unwrap()
        .fuse(Fusion::Never)
        .finish()
        .unwrap(),
    );
    let model = Model::parse(blob.as_bytes()).unwrap();

    let set = TrainableSet::Last {
        weights: 1,
        biases: usize::MAX,
    };
    let lr = 0.01f32;
    let mut arena = vec![0u8; model.arena_len()];
    let mut buf = vec![0u8; FineTuner::train_len_for(&model, set).unwrap()];
    let mut tuner = FineTuner::with_set(&model, set, &mut arena, &mut buf, lr, 1).unwrap();
    let mut steps = vec![0f32; tuner.param_count()];

    // The weighted layers, lowest first, in both: float ranges, the input
    // scale of the int8 op, and each channel's weight scale.
    let weighted: Vec<usize> = (0..net.graph().nodes.len())
        .filter(|&n| net.param_ranges(n).is_some())
        .collect();
    let ops: Vec<usize> = (0..model.op_count())
        .filter(|&i| {
            model.op(i).train != picocnn::model::Train::Frozen || {
                let k = model.op(i).kind;
                k == picocnn::model::OpKind::Conv2d || k == picocnn::model::OpKind::Dense
            }
        })
        .collect();
    assert_eq!(weighted.len(), ops.len());
    // (int, float) pairs per compared group: each layer's biases, then the
    // last layer's weights.
    let groups = weighted.len() + 1;
    let mut pairs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); groups];
    for i in 0..40 {
        let (img, label) = (test.image(i), test.label(i));
        quantize(&model, img, tuner.input_mut::<i8>().unwrap());
        tuner.expected_update(label, &mut steps).unwrap();
        let (_, grads) = gradient(&net, &pixels(img), label);
        let mut at = 0;
        for (g, (&node, &op)) in weighted.iter().zip(&ops).enumerate() {
            let (wr, br) = net.param_ranges(node).unwrap();
            let (w, _) = net.weights(node).unwrap();
            let per = w.len() / br.len();
            let s_x = model
                .tensor(model.op_input(&model.op(op), 0))
                .qparams
                .unwrap()
                .scale as f64;
            let s_w = |o: usize| {
                w[o * per..(o + 1) * per]
                    .iter()
                    .fold(0f32, |m, v| m.max(v.abs())) as f64
                    / 127.0
            };
            let last = g == weighted.len() - 1;
            if last {
                for k in 0..wr.len() {
                    let int = -steps[at + k] as f64 * s_w(k / per) / lr as f64;
                    pairs[groups - 1].push((int, grads[wr.start + k] as f64));
                }
                at += wr.len();
            }
            for o in 0..br.len() {
                let int = -steps[at + o] as f64 * s_x * s_w(o) / lr as f64;
                pairs[g].push((int, grads[br.start + o] as f64));
            }
            at += br.len();
        }
        assert_eq!(at, steps.len());
    }
    for (g, p) in pairs.iter().enumerate() {
        let dot: f64 = p.iter().map(|(a, b)| a * b).sum();
        let na = p.iter().map(|(a, _)| a * a).sum::<f64>().sqrt();
        let nb = p.iter().map(|(_, b)| b * b).sum::<f64>().sqrt();
        let (cos, ratio) = (dot / (na * nb), na / nb);
        let what = if g == groups - 1 {
            "last layer's weights".to_string()
        } else {
            format!("layer {g}'s biases")
        };
        println!("{what}: cosine {cos:.4}, norm ratio {ratio:.4}");
        assert!(cos > 0.95, "{what}: cosine {cos}");
        assert!((0.9..1.1).contains(&ratio), "{what}: norm ratio {ratio}");
    }
}

/// The same LeNet-5 with each convolution fused with its pool
/// (`lenet5_mnist_i8_fused.pcnn`): the frozen forward pass runs the fused
/// ops, so every set of dense layers learns bit for bit as in the unfused
/// blob, in less than half its arena; fused ops are never trainable.
#[test]
fn fused_convolutions_learn_as_the_unfused_ones() {
    let (_, test) = load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let fused = AlignedBytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/models/lenet5_mnist_i8_fused.pcnn"
        ))
        .unwrap(),
    );
    let plain = blob();
    let run = |bytes: &AlignedBytes, set: TrainableSet| {
        let model = Model::parse(bytes.as_bytes()).unwrap();
        let mut arena = vec![0u8; model.arena_len()];
        let train_len = FineTuner::train_len_for(&model, set).unwrap();
        let mut train = vec![0u8; train_len];
        let mut tuner = FineTuner::with_set(&model, set, &mut arena, &mut train, 0.01, 3).unwrap();
        for i in 0..30 {
            quantize(
                &model,
                &styled(test.image(i)),
                tuner.input_mut::<i8>().unwrap(),
            );
            tuner.step(test.label(i)).unwrap();
        }
        (model.arena_len(), train_len, tuner.digest())
    };
    for set in [
        TrainableSet::Recorded,
        TrainableSet::Last {
            weights: 2,
            biases: 1,
        },
    ] {
        let (a, b) = (run(&plain, set), run(&fused, set));
        assert_eq!((a.1, a.2), (b.1, b.2), "{set:?}");
        assert_eq!((a.0, b.0), (5_903, 2_975));
    }
    // Below the dense layers, the fused blob has no weighted op to train.
    let all = TrainableSet::Last {
        weights: 0,
        biases: usize::MAX,
    };
    let (plain_len, fused_len) = (run(&plain, all).1, run(&fused, all).1);
    assert!(fused_len < plain_len, "{fused_len} vs {plain_len}");
}
