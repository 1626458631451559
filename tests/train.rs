//! Training: finite-difference gradient checks of every trainable layer,
//! determinism, and learning on real digits.
#![cfg(feature = "std")]

use picocnn::ops::Padding;
use picocnn::train::{softmax_cross_entropy, Graph, Layer, Net};
use picocnn::{Activation, Shape};

/// Loss of a one-head net on `x` with label `label`; `train` selects
/// training mode (batch statistics; the graphs checked have no dropout).
fn loss(net: &Net, x: &[f32], label: usize, train: bool) -> f64 {
    let t = net.forward(x, train.then_some(0));
    let head = *t.len().checked_sub(1).iter().next().unwrap();
    softmax_cross_entropy(&t[head], label, 0.1).0 as f64
}

#[allow(clippy::needless_range_loop)]
/// Compares the analytic gradient of every parameter with
/// central finite differences.
fn check(graph: Graph, input: Shape, seed: u64) {
    check_mode(graph, input, seed, false)
}

#[allow(clippy::needless_range_loop)]
fn check_mode(graph: Graph, input: Shape, seed: u64, train: bool) {
    let mut net = Net::new(graph, input, seed).unwrap();
    // Make biases non-zero so activations are not all at kinks.
    for (i, p) in net.params.iter_mut().enumerate() {
        *p += 0.01 * ((i * 7919 % 13) as f32 - 6.0) / 6.0;
    }
    let x: Vec<f32> = (0..input.len())
        .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.3)
        .collect();
    let label = 1;
    let mode = train.then_some(0);
    let t = net.forward(&x, mode);
    let head = t.len() - 1;
    let (_, g) = softmax_cross_entropy(&t[head], label, 0.1);
    let mut grads = vec![0.0f32; net.params.len()];
    net.backward(&t, &[(head, g)], mode, &mut grads);
    // Central differences at two step sizes: where they disagree the step
    // crossed a kink of ReLU or max pooling, and the point is skipped.
    let numeric = |net: &mut Net, i: usize, eps: f32| {
        let orig = net.params[i];
        net.params[i] = orig + eps;
        let up = loss(net, &x, label, train);
        net.params[i] = orig - eps;
        let down = loss(net, &x, label, train);
        net.params[i] = orig;
        (up - down) / (2.0 * eps as f64)
    };
    let mut worst = 0.0f64;
    let mut skipped = 0;
    for i in 0..net.params.len() {
        let (n1, n2) = (numeric(&mut net, i, 1e-3), numeric(&mut net, i, 5e-4));
        if (n1 - n2).abs() > 0.01 * (n1.abs() + n2.abs()) + 2e-4 {
            skipped += 1;
            continue;
        }
        let a = grads[i] as f64;
        let err = (n1 - a).abs() / (n1.abs() + a.abs() + 1e-2);
        worst = worst.max(err);
        assert!(err < 2e-2, "parameter {i}: analytic {a} numeric {n1}");
    }
    assert!(
        skipped * 10 <= net.params.len(),
        "{skipped} of {} parameters at kinks",
        net.params.len()
    );
    assert!(worst < 2e-2);
}

fn conv(
    out: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    groups: usize,
    act: Activation,
) -> Layer {
    Layer::Conv2d {
        out_channels: out,
        kernel: [k, k],
        stride: [stride, stride],
        dilation: [dilation, dilation],
        padding,
        groups,
        activation: act,
    }
}

fn dense(out: usize, act: Activation) -> Layer {
    Layer::Dense {
        out_features: out,
        activation: act,
    }
}

#[test]
fn conv_and_dense_gradients() {
    for (spec, input) in [
        (
            conv(3, 3, 1, 1, Padding::Same, 1, Activation::Relu),
            Shape::new(5, 5, 2),
        ),
        (
            conv(4, 3, 2, 1, Padding::Valid, 2, Activation::None),
            Shape::new(7, 6, 4),
        ),
        (
            conv(4, 3, 1, 2, Padding::Same, 1, Activation::Relu6),
            Shape::new(6, 6, 1),
        ),
        (
            conv(6, 3, 1, 1, Padding::Same, 3, Activation::None),
            Shape::new(4, 4, 3),
        ),
        (
            conv(5, 1, 1, 1, Padding::Valid, 1, Activation::Relu),
            Shape::new(3, 3, 4),
        ),
    ] {
        let mut g = Graph::new();
        let x = g.push("conv", spec, &[Graph::INPUT]);
        let y = g.push("logits", dense(3, Activation::None), &[x]);
        g.head(y, 1.0);
        check(g, input, 3);
    }
}

#[test]
fn single_channel_conv_gradients() {
    // Convolutions of one input channel have their own direct kernels; put
    // them after another layer so their input gradient is checked too, in
    // the wide (vector) and strided forms.
    for (spec, input) in [
        (
            conv(3, 5, 1, 1, Padding::Same, 1, Activation::Relu),
            Shape::new(9, 37, 2),
        ),
        (
            conv(2, 3, 2, 2, Padding::Same, 1, Activation::None),
            Shape::new(8, 9, 1),
        ),
        (
            conv(
                2,
                3,
                1,
                1,
                Padding::Explicit {
                    top: 0,
                    bottom: 2,
                    left: 1,
                    right: 0,
                },
                1,
                Activation::Relu6,
            ),
            Shape::new(5, 6, 3),
        ),
    ] {
        let mut g = Graph::new();
        let a = g.push(
            "squeeze",
            conv(1, 1, 1, 1, Padding::Valid, 1, Activation::None),
            &[Graph::INPUT],
        );
        let x = g.push("conv", spec, &[a]);
        let y = g.push("logits", dense(3, Activation::None), &[x]);
        g.head(y, 1.0);
        check(g, input, 5);
    }
}

#[test]
fn pool_add_concat_activation_gradients() {
    let mut g = Graph::new();
    let a = g.push(
        "conv_a",
        conv(3, 3, 1, 1, Padding::Same, 1, Activation::None),
        &[Graph::INPUT],
    );
    let b = g.push(
        "conv_b",
        conv(3, 1, 1, 1, Padding::Valid, 1, Activation::Relu),
        &[Graph::INPUT],
    );
    let s = g.push(
        "add",
        Layer::Add {
            activation: Activation::Relu,
        },
        &[a, b],
    );
    let m = g.push(
        "max",
        Layer::MaxPool {
            window: [2, 2],
            stride: [1, 1],
            padding: Padding::Same,
        },
        &[s],
    );
    let v = g.push(
        "avg",
        Layer::AvgPool {
            window: [3, 3],
            stride: [1, 1],
            padding: Padding::Same,
        },
        &[a],
    );
    let c = g.push("concat", Layer::Concat, &[m, v, b]);
    let r = g.push("relu6", Layer::Activation(Activation::Relu6), &[c]);
    let d = g.push("dropout", Layer::Dropout(0.5), &[r]);
    let y = g.push("logits", dense(4, Activation::None), &[d]);
    g.head(y, 1.0);
    check(g, Shape::new(5, 4, 2), 11);
}

#[test]
fn lenet5_has_the_documented_size() {
    let net = picocnn::train::zoo::lenet5(Shape::new(28, 28, 1), 10, 1).unwrap();
    assert_eq!(net.param_count(), 61_706);
    assert_eq!(net.macs(), 416_520);
}

fn subset(d: &picocnn::data::Dataset, n: usize) -> picocnn::data::Dataset {
    let pixels: Vec<u8> = (0..n).flat_map(|i| d.image(i).to_vec()).collect();
    picocnn::data::Dataset::new(
        d.shape(),
        pixels,
        d.labels()[..n].to_vec(),
        d.class_names().to_vec(),
    )
    .unwrap()
}

fn mnist() -> (picocnn::data::Dataset, picocnn::data::Dataset) {
    picocnn::data::load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap()
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    use picocnn::train::{zoo, TrainConfig, Trainer};
    let (train, test) = mnist();
    let (train, test) = (subset(&train, 300), subset(&test, 100));
    let run = |threads| {
        let mut net = zoo::lenet5(train.shape(), 10, 4).unwrap();
        let config = TrainConfig {
            epochs: 1,
            threads,
            seed: 9,
            ..TrainConfig::default()
        };
        let r = Trainer::new(config).fit(&mut net, &train, &test, &mut |_| {});
        (net.params, r[0].train_loss)
    };
    let (a, la) = run(1);
    let (b, lb) = run(2);
    assert_eq!(la, lb);
    assert!(a == b, "parameters differ between 1 and 2 threads");
    let (c, _) = {
        let mut net = zoo::lenet5(train.shape(), 10, 5).unwrap();
        Trainer::new(TrainConfig {
            epochs: 1,
            seed: 9,
            ..TrainConfig::default()
        })
        .fit(&mut net, &train, &test, &mut |_| {});
        (net.params, 0)
    };
    assert!(a != c, "another seed must give other weights");
}

#[test]
fn augmented_training_does_not_depend_on_the_thread_count() {
    use picocnn::augment::Pipeline;
    use picocnn::train::{zoo, TrainConfig, Trainer};
    let (train, test) = mnist();
    let (train, test) = (subset(&train, 200), subset(&test, 50));
    let run = |threads, augment: Option<Pipeline>| {
        let mut net = zoo::lenet5(train.shape(), 10, 4).unwrap();
        let config = TrainConfig {
            epochs: 2,
            threads,
            seed: 9,
            ..TrainConfig::default()
        };
        let trainer = match augment {
            Some(p) => Trainer::new(config).augment(p),
            None => Trainer::new(config),
        };
        trainer.fit(&mut net, &train, &test, &mut |_| {});
        net.params
    };
    let digits = Pipeline::digits()
        .noise(0.5, 0.05)
        .unwrap()
        .cutmix(0.5, 1.0)
        .unwrap();
    let a = run(1, Some(digits.clone()));
    assert!(
        a == run(2, Some(digits)),
        "augmented runs differ between 1 and 2 threads"
    );
    assert!(a != run(2, None), "augmentation must change training");
}

#[test]
fn lenet5_learns_digits() {
    use picocnn::train::{zoo, TrainConfig, Trainer};
    let (train, test) = mnist();
    let train = subset(&train, 2000);
    let mut net = zoo::lenet5(train.shape(), 10, 1).unwrap();
    let config = TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    };
    let reports = Trainer::new(config).fit(&mut net, &train, &test, &mut |_| {});
    assert!(reports[1].train_loss < reports[0].train_loss);
    // 2,000 training digits, two epochs: well above chance on the 2,000 test digits.
    assert!(reports[1].test_accuracy > 0.85, "{:?}", reports);
}

#[test]
fn a_batch_equals_its_images() {
    let mut g = Graph::new();
    let a = g.push(
        "conv_a",
        conv(4, 3, 1, 1, Padding::Same, 2, Activation::Relu),
        &[Graph::INPUT],
    );
    let b = g.push(
        "conv_b",
        conv(4, 1, 1, 1, Padding::Valid, 1, Activation::None),
        &[Graph::INPUT],
    );
    let s = g.push(
        "add",
        Layer::Add {
            activation: Activation::None,
        },
        &[a, b],
    );
    let m = g.push(
        "max",
        Layer::MaxPool {
            window: [2, 2],
            stride: [2, 2],
            padding: Padding::Valid,
        },
        &[s],
    );
    let c = g.push("concat", Layer::Concat, &[m, m]);
    let d = g.push("dropout", Layer::Dropout(0.3), &[c]);
    let y = g.push("logits", dense(5, Activation::None), &[d]);
    g.head(y, 1.0);
    let input = Shape::new(6, 6, 2);
    let net = Net::new(g, input, 2).unwrap();
    let n = input.len();
    let xs: Vec<f32> = (0..3 * n).map(|i| ((i * 31 % 97) as f32) / 97.0).collect();
    let seeds = [11u64, 12, 13];
    let tb = net.forward_batch(&xs, 3, Some(&seeds));
    let head = tb.len() - 1;
    let mut gb = vec![0.0f32; net.param_count()];
    let mut head_grad = Vec::new();
    let mut gsum = vec![0.0f32; net.param_count()];
    for j in 0..3 {
        let t = net.forward(&xs[j * n..(j + 1) * n], Some(seeds[j]));
        assert_eq!(&t[head][..], &tb[head][j * 5..(j + 1) * 5]);
        let (_, gr) = softmax_cross_entropy(&t[head], j, 0.0);
        net.backward(&t, &[(head, gr.clone())], Some(seeds[j]), &mut gsum);
        head_grad.extend(gr);
    }
    net.backward_batch(&tb, 3, &[(head, head_grad)], Some(&seeds), &mut gb);
    for (a, b) in gb.iter().zip(&gsum) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

#[test]
fn batch_norm_gradients_in_both_modes() {
    for train in [true, false] {
        let mut g = Graph::new();
        let c = g.push(
            "conv",
            conv(4, 3, 1, 1, Padding::Same, 1, Activation::None),
            &[Graph::INPUT],
        );
        let b = g.push("bn", Layer::BatchNorm { epsilon: 1e-3 }, &[c]);
        let r = g.push("relu", Layer::Activation(Activation::Relu), &[b]);
        let y = g.push("logits", dense(3, Activation::None), &[r]);
        g.head(y, 1.0);
        check_mode(g, Shape::new(4, 4, 2), 5, train);
    }
}

/// Parameters and multiply-accumulates of every zoo model, on MNIST-sized
/// and CIFAR-sized inputs. ResNet-8 on 32x32x3 has MLPerf Tiny's 78,666
/// parameters: 78,186 trained plus 480 running statistics of batch norm.
#[test]
fn zoo_sizes() {
    use picocnn::train::zoo;
    let mnist = Shape::new(28, 28, 1);
    let cifar = Shape::new(32, 32, 3);
    for (name, net, params, macs) in [
        ("lenet5 mnist", zoo::lenet5(mnist, 10, 1), 61_706, 416_520),
        (
            "alexnet_mini mnist",
            zoo::alexnet_mini(mnist, 10, 1),
            431_434,
            3_739_392,
        ),
        (
            "vgg_mini mnist",
            zoo::vgg_mini(mnist, 10, 1),
            146_938,
            7_413_248,
        ),
        (
            "inception_mini mnist",
            zoo::inception_mini(mnist, 10, 1),
            19_984,
            1_306_016,
        ),
        (
            "resnet8 mnist",
            zoo::resnet8(mnist, 10, 1),
            77_898,
            9_345_920,
        ),
        ("lenet5 cifar", zoo::lenet5(cifar, 10, 1), 83_126, 886_440),
        (
            "alexnet_mini cifar",
            zoo::alexnet_mini(cifar, 10, 1),
            555_914,
            6_522_112,
        ),
        (
            "vgg_mini cifar",
            zoo::vgg_mini(cifar, 10, 1),
            204_570,
            10_011_904,
        ),
        (
            "inception_mini cifar",
            zoo::inception_mini(cifar, 10, 1),
            20_272,
            2_000_288,
        ),
        (
            "resnet8 cifar",
            zoo::resnet8(cifar, 10, 1),
            78_186,
            12_501_632,
        ),
    ] {
        let net = net.unwrap();
        assert_eq!((net.param_count(), net.macs()), (params, macs), "{name}");
        if name.starts_with("resnet8") {
            assert_eq!(net.stats.len(), 480);
        }
    }
}

/// After training, evaluation (running statistics) agrees with the batch
/// statistics of training: the statistics are measured on the final weights.
#[test]
fn batch_norm_evaluation_matches_training_statistics() {
    use picocnn::train::{accuracy, TrainConfig, Trainer};
    let (train, test) = mnist();
    let (train, test) = (subset(&train, 800), subset(&test, 400));
    let mut net = Net::new(conv_bn_dense(), train.shape(), 3).unwrap();
    let r = Trainer::new(TrainConfig {
        epochs: 3,
        ..TrainConfig::default()
    })
    .fit(&mut net, &train, &test, &mut |_| {});
    assert_eq!(r[2].test_accuracy, accuracy(&net, &test));
    // The evaluation statistics are those of the final weights over the
    // training images (not a lagging running average).
    let mut sums = (vec![0.0f32; 8], vec![0.0f32; 8]);
    let chunks: Vec<Vec<usize>> = (0..train.len())
        .collect::<Vec<_>>()
        .chunks(16)
        .map(|c| c.to_vec())
        .collect();
    for chunk in &chunks {
        let x: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| {
                train
                    .image(i)
                    .iter()
                    .map(|&v| v as f32 / 255.0)
                    .collect::<Vec<_>>()
            })
            .collect();
        let m = net.batch_norm_moments(&net.forward_batch(
            &x,
            chunk.len(),
            Some(&vec![0; chunk.len()]),
        ));
        for k in 0..8 {
            sums.0[k] += m[0].0[k] / chunks.len() as f32;
            sums.1[k] += m[0].1[k] / chunks.len() as f32;
        }
    }
    for k in 0..8 {
        assert!(
            (net.stats[k] - sums.0[k]).abs() < 1e-4,
            "mean {k}: {} vs {}",
            net.stats[k],
            sums.0[k]
        );
        assert!(
            (net.stats[8 + k] - sums.1[k]).abs() < 1e-4 * (1.0 + sums.1[k]),
            "var {k}"
        );
    }
    // Batch-statistics accuracy on the test set, in chunks of 16 as in training.
    let mut ok = 0;
    for chunk in (0..test.len()).collect::<Vec<_>>().chunks(16) {
        let x: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| {
                test.image(i)
                    .iter()
                    .map(|&v| v as f32 / 255.0)
                    .collect::<Vec<_>>()
            })
            .collect();
        let t = net.forward_batch(&x, chunk.len(), Some(&vec![0; chunk.len()]));
        let l = t.last().unwrap();
        for (j, &i) in chunk.iter().enumerate() {
            let row = &l[j * 10..(j + 1) * 10];
            let best = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            ok += (best == test.label(i)) as usize;
        }
    }
    let batch_acc = ok as f32 / test.len() as f32;
    assert!(r[2].test_accuracy > 0.7, "{r:?}");
    assert!(
        (r[2].test_accuracy - batch_acc).abs() < 0.05,
        "eval {} vs batch statistics {batch_acc}",
        r[2].test_accuracy
    );
}

/// conv 3x3x8, batch norm, ReLU, max pool, dense 32 + ReLU, dense 10.
fn conv_bn_dense() -> Graph {
    let mut g = Graph::new();
    let c = g.push(
        "conv",
        conv(8, 3, 1, 1, Padding::Same, 1, Activation::None),
        &[Graph::INPUT],
    );
    let b = g.push("bn", Layer::BatchNorm { epsilon: 1e-3 }, &[c]);
    let r = g.push("relu", Layer::Activation(Activation::Relu), &[b]);
    let p = g.push(
        "pool",
        Layer::MaxPool {
            window: [2, 2],
            stride: [2, 2],
            padding: Padding::Valid,
        },
        &[r],
    );
    let h = g.push("hidden", dense(32, Activation::Relu), &[p]);
    let y = g.push("logits", dense(10, Activation::None), &[h]);
    g.head(y, 1.0);
    g
}

/// Frozen parameters keep their bits under AdamW with weight decay; a
/// batch norm counts with the convolution it reads, its shift as a bias.
#[test]
fn frozen_parameters_keep_their_bits() {
    use picocnn::train::{Optimizer, TrainConfig, Trainable, Trainer};
    let (train, test) = mnist();
    let (train, test) = (subset(&train, 200), subset(&test, 50));
    let g = conv_bn_dense();
    // Per node (conv, bn, hidden, logits): whether the weights and the
    // biases must change; `None` for the conv bias, whose gradient through
    // a batch norm is zero up to rounding.
    type Expect = [(usize, bool, Option<bool>); 4];
    let cases: [(Trainable, Expect); 2] = [
        (
            Trainable::Last {
                layers: 1,
                earlier_biases: true,
            },
            [
                (0, false, None),
                (1, false, Some(true)),
                (4, false, Some(true)),
                (5, true, Some(true)),
            ],
        ),
        (
            Trainable::Last {
                layers: 2,
                earlier_biases: false,
            },
            [
                (0, false, Some(false)),
                (1, false, Some(false)),
                (4, true, Some(true)),
                (5, true, Some(true)),
            ],
        ),
    ];
    for (trainable, expect) in cases {
        let mut net = Net::new(g.clone(), train.shape(), 3).unwrap();
        let before = net.clone();
        Trainer::new(TrainConfig {
            epochs: 1,
            optimizer: Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-7,
                weight_decay: 0.1,
            },
            trainable,
            ..TrainConfig::default()
        })
        .fit(&mut net, &train, &test, &mut |_| {});
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (node, weights, biases) in expect {
            let (w0, b0) = before.weights(node).unwrap();
            let (w1, b1) = net.weights(node).unwrap();
            assert_eq!(
                bits(w0) != bits(w1),
                weights,
                "{trainable:?}: node {node} weights"
            );
            if let Some(biases) = biases {
                assert_eq!(
                    bits(b0) != bits(b1),
                    biases,
                    "{trainable:?}: node {node} biases"
                );
            }
        }
        assert_eq!(
            bits(&before.stats),
            bits(&net.stats),
            "{trainable:?}: statistics"
        );
    }
}

/// Batch 1, in order, plain SGD: exactly one update per image in data
/// order, as a device fine-tunes (the float reference of `learn`).
#[test]
fn in_order_sgd_is_one_step_per_image() {
    use picocnn::train::{gradient, zoo, Optimizer, Schedule, TrainConfig, Trainable, Trainer};
    let (train, test) = mnist();
    let (train, test) = (subset(&train, 40), subset(&test, 10));
    let trainable = Trainable::Last {
        layers: 1,
        earlier_biases: false,
    };
    let lr = 0.01;
    let tuned = |shuffle| {
        let mut net = zoo::lenet5(train.shape(), 10, 2).unwrap();
        Trainer::new(TrainConfig {
            epochs: 2,
            batch_size: 1,
            learning_rate: lr,
            optimizer: Optimizer::Sgd {
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            },
            schedule: Schedule::Constant,
            trainable,
            shuffle,
            ..TrainConfig::default()
        })
        .fit(&mut net, &train, &test, &mut |_| {});
        net
    };
    let net = tuned(false);
    let mut manual = zoo::lenet5(train.shape(), 10, 2).unwrap();
    // The logits layer (node 6), nothing else.
    let mask = manual.trainable(trainable);
    let (w, b) = manual.param_ranges(6).unwrap();
    assert_eq!((w.len(), b.len()), (84 * 10, 10));
    assert!((0..mask.len()).all(|i| mask[i] == (w.contains(&i) || b.contains(&i))));
    for _ in 0..2 {
        for i in 0..train.len() {
            let x: Vec<f32> = train.image(i).iter().map(|&p| p as f32 / 255.0).collect();
            let (_, grads) = gradient(&manual, &x, train.label(i));
            for ((p, g), &m) in manual.params.iter_mut().zip(&grads).zip(&mask) {
                if m {
                    *p -= lr * g;
                }
            }
        }
    }
    assert!(net.params == manual.params, "the trainer's steps differ");
    // In another order the weights differ.
    assert!(tuned(true).params != net.params);
}
