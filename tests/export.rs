//! Export: trained networks to blobs in f32, f16 and int8, run by the
//! no_std interpreter, against the training network.
#![cfg(feature = "std")]

use picocnn::data::{load_mnist, Dataset};
use picocnn::export::{export, ExportOptions, Precision, Ranges};
use picocnn::model::writer::AlignedBytes;
use picocnn::model::{Interpreter, Model};
use picocnn::ops::Padding;
use picocnn::train::{zoo, Graph, Layer, Net, TrainConfig, Trainer};
use picocnn::{Activation, Error, Shape};

fn softmax(v: &[f32]) -> Vec<f32> {
    let m = v.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let e: Vec<f32> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// Perturbs every parameter and batch-norm statistic so that folding has
/// something to fold.
fn perturb(net: &mut Net) {
    for (i, p) in net.params.iter_mut().enumerate() {
        *p += 0.05 * (((i * 7919) % 101) as f32 / 50.0 - 1.0);
    }
    let moments: Vec<(Vec<f32>, Vec<f32>)> = net
        .graph()
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.spec, Layer::BatchNorm { .. }))
        .map(|(i, _)| {
            let c = net.shape(i + 1).c;
            (
                (0..c).map(|k| 0.1 * (k % 5) as f32 - 0.2).collect(),
                (0..c).map(|k| 0.5 + 0.1 * (k % 7) as f32).collect(),
            )
        })
        .collect();
    net.set_running_stats(&moments);
}

fn run_float(blob: &[u8], image: &[f32], f16: bool) -> Vec<f32> {
    let model = Model::parse(blob).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(&model, &mut arena).unwrap();
    if f16 {
        let x = it.input_mut::<half::f16>(0).unwrap();
        x.iter_mut()
            .zip(image)
            .for_each(|(d, &s)| *d = half::f16::from_f32(s));
        it.run().unwrap();
        it.output::<half::f16>(0)
            .unwrap()
            .iter()
            .map(|v| v.to_f32())
            .collect()
    } else {
        it.input_mut::<f32>(0).unwrap().copy_from_slice(image);
        it.run().unwrap();
        it.output::<f32>(0).unwrap().to_vec()
    }
}

#[test]
fn float_exports_compute_what_training_computes() {
    type Builder = fn(Shape, usize, u64) -> picocnn::Result<Net>;
    let zoo: [(&str, Builder); 5] = [
        ("lenet5", zoo::lenet5),
        ("alexnet_mini", zoo::alexnet_mini),
        ("vgg_mini", zoo::vgg_mini),
        ("inception_mini", zoo::inception_mini),
        ("resnet8", zoo::resnet8),
    ];
    for (name, build) in zoo {
        let input = Shape::new(28, 28, 1);
        let mut net = build(input, 10, 3).unwrap();
        perturb(&mut net);
        let f32_blob =
            AlignedBytes::from(export(&net, &ExportOptions::new(Precision::F32)).unwrap());
        let f16_blob =
            AlignedBytes::from(export(&net, &ExportOptions::new(Precision::F16)).unwrap());
        for seed in 0..3 {
            let image: Vec<f32> = (0..input.len())
                .map(|k| (((k + seed * 131) * 7919) % 256) as f32 / 255.0)
                .collect();
            let t = net.forward(&image, None);
            let want = softmax(&t[net.graph().heads[0]]);
            let got = run_float(f32_blob.as_bytes(), &image, false);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{name} f32: {got:?} vs {want:?}");
            }
            let got = run_float(f16_blob.as_bytes(), &image, true);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 3e-2, "{name} f16: {got:?} vs {want:?}");
            }
        }
        // Batch norm and dropout are gone; auxiliary heads too.
        let model = Model::parse(f32_blob.as_bytes()).unwrap();
        assert_eq!(model.output_count(), 1, "{name}");
    }
}

fn pixels(d: &Dataset, range: std::ops::Range<usize>) -> Vec<f32> {
    range
        .flat_map(|i| {
            d.image(i)
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The first `n` images of `d`.
fn first(d: &Dataset, n: usize) -> Dataset {
    Dataset::new(
        d.shape(),
        (0..n).flat_map(|i| d.image(i).to_vec()).collect(),
        d.labels()[..n].to_vec(),
        d.class_names().to_vec(),
    )
    .unwrap()
}

fn int8_accuracy(blob: &[u8], test: &Dataset, n: usize) -> f32 {
    let model = Model::parse(blob).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(&model, &mut arena).unwrap();
    let mut ok = 0;
    for i in 0..n {
        let x = it.input_mut::<i8>(0).unwrap();
        for (d, &p) in x.iter_mut().zip(test.image(i)) {
            *d = (p as i32 - 128) as i8;
        }
        it.run().unwrap();
        let y = it.output::<i8>(0).unwrap();
        let best = (0..y.len())
            .max_by_key(|&k| (y[k], std::cmp::Reverse(k)))
            .unwrap();
        ok += (best == test.label(i)) as usize;
    }
    ok as f32 / n as f32
}

#[test]
fn int8_lenet_keeps_the_float_accuracy() {
    let (train, test) = load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let mut net = zoo::lenet5(train.shape(), 10, 1).unwrap();
    let small = first(&train, 2000);
    Trainer::new(TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    })
    .fit(&mut net, &small, &test, &mut |_| {});
    let n = 500;
    let float = {
        let x = pixels(&test, 0..n);
        let t = net.forward_batch(&x, n, None);
        let head = &t[net.graph().heads[0]];
        (0..n)
            .filter(|&i| {
                let l = &head[i * 10..(i + 1) * 10];
                let best = (0..10).fold(0, |b, k| if l[k] > l[b] { k } else { b });
                best == test.label(i)
            })
            .count() as f32
            / n as f32
    };
    let calib = pixels(&train, 0..256);
    for ranges in [Ranges::MinMax, Ranges::Percentile(99.99)] {
        let mut options = ExportOptions::new(Precision::Int8).calibration(&calib);
        options.ranges = ranges;
        let blob = AlignedBytes::from(export(&net, &options).unwrap());
        let int8 = int8_accuracy(blob.as_bytes(), &test, n);
        assert!(float > 0.85, "float {float}");
        assert!(
            (int8 - float).abs() <= 0.015,
            "{ranges:?}: int8 {int8} vs float {float}"
        );
        let model = Model::parse(blob.as_bytes()).unwrap();
        eprintln!(
            "{ranges:?}: float {float} int8 {int8}, arena {} bytes, blob {} bytes",
            model.arena_len(),
            blob.as_bytes().len()
        );
        assert!(model.arena_len() <= 8 * 1024, "arena {}", model.arena_len());
    }
}

#[test]
fn quantization_aware_fine_tuning() {
    let (train, test) = load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let small = first(&train, 2000);
    let mut net = zoo::lenet5(train.shape(), 10, 2).unwrap();
    Trainer::new(TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    })
    .fit(&mut net, &small, &test, &mut |_| {});
    let float = net.params.clone();
    let reports = Trainer::new(TrainConfig {
        epochs: 1,
        qat: true,
        learning_rate: 1e-4,
        ..TrainConfig::default()
    })
    .fit(&mut net, &small, &test, &mut |_| {});
    assert!(net.params != float, "fine-tuning must move the weights");
    // The reported accuracy is the quantized network's; the exported int8
    // model (calibrated afresh) agrees with it closely.
    let calib = pixels(&train, 0..256);
    let blob = AlignedBytes::from(
        export(
            &net,
            &ExportOptions::new(Precision::Int8).calibration(&calib),
        )
        .unwrap(),
    );
    let n = 500;
    let int8 = int8_accuracy(blob.as_bytes(), &test, n);
    let simulated = reports[0].test_accuracy;
    assert!(simulated > 0.85, "{simulated}");
    assert!(int8 > 0.85, "{int8}");
    // Training leaves fake quantization off: the float forward pass is float.
    let x = pixels(&test, 0..1);
    let t = net.forward(&x, None);
    let mut plain = net.clone();
    plain.set_fake_quant(None);
    assert_eq!(t, plain.forward(&x, None));
}

#[test]
fn what_cannot_be_exported_is_an_error() {
    // Batch norm after a convolution with a fused ReLU cannot be folded.
    let mut g = Graph::new();
    let c = g.push(
        "conv",
        Layer::Conv2d {
            out_channels: 4,
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Same,
            groups: 1,
            activation: Activation::Relu,
        },
        &[Graph::INPUT],
    );
    let b = g.push("bn", Layer::BatchNorm { epsilon: 1e-3 }, &[c]);
    let d = g.push(
        "fc",
        Layer::Dense {
            out_features: 3,
            activation: Activation::None,
        },
        &[b],
    );
    g.head(d, 1.0);
    let net = Net::new(g, Shape::new(6, 6, 1), 1).unwrap();
    let e = export(&net, &ExportOptions::new(Precision::F32)).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    // int8 without calibration images.
    let net = zoo::lenet5(Shape::new(28, 28, 1), 10, 1).unwrap();
    let e = export(&net, &ExportOptions::new(Precision::Int8)).unwrap_err();
    assert!(format!("{e}").contains("calibration"), "{e}");
    let bad = vec![0.5f32; 100];
    let e = export(&net, &ExportOptions::new(Precision::Int8).calibration(&bad)).unwrap_err();
    assert!(format!("{e}").contains("calibration"), "{e}");
}
