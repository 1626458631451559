//! One layer description for training and deployment: every zoo network,
//! written layer by layer with `ModelBuilder::layer`, reads back as the same
//! layers with the same shapes, and the no_std interpreter computes what the
//! training network computes.
#![cfg(feature = "std")]

use picocnn::model::writer::{AlignedBytes, Fusion, ModelBuilder, TensorId, TensorType, Weights};
use picocnn::model::{Interpreter, Layer, Model};
use picocnn::ops::Padding;
use picocnn::train::{zoo, Graph, Net};
use picocnn::{Activation, Error, Shape};

/// Writes `net` as an f32 blob. Dropout is the identity at inference; batch
/// norm is left out, which is exact here because the test sets its
/// statistics to the identity. Returns the blob and, per graph node, the op
/// index it became.
fn write_f32(net: &Net, input: Shape) -> (Vec<u8>, Vec<Option<usize>>) {
    let g = net.graph();
    let mut b = ModelBuilder::new("zoo");
    // One op per layer, to read each layer back.
    b.fuse(Fusion::Never);
    let mut map: Vec<TensorId> = vec![b.input(input, TensorType::F32)];
    let mut ops = Vec::new();
    let mut n_ops = 0;
    for (i, node) in g.nodes.iter().enumerate() {
        let ins: Vec<TensorId> = node.inputs.iter().map(|&t| map[t]).collect();
        if node.spec.op_kind().is_none() {
            map.push(ins[0]);
            ops.push(None);
            continue;
        }
        let weights = net.weights(i).map(|(w, bias)| {
            let mut filter = w.to_vec();
            // Depthwise filters are stored HWO in blobs, OHWI in training.
            if let Layer::Conv2d {
                groups,
                out_channels,
                kernel,
                ..
            } = node.spec
            {
                let cin = net.shape(node.inputs[0]).c;
                if groups == cin && groups > 1 {
                    let taps = kernel[0] * kernel[1];
                    for o in 0..out_channels {
                        for t in 0..taps {
                            filter[t * out_channels + o] = w[o * taps + t];
                        }
                    }
                }
            }
            Weights::F32 {
                filter,
                bias: bias.to_vec(),
            }
        });
        let t = b
            .layer(&node.name, &node.spec, &ins, weights, TensorType::F32)
            .unwrap();
        map.push(t);
        ops.push(Some(n_ops));
        n_ops += 1;
    }
    for &h in &g.heads {
        b.output(map[h]);
    }
    (b.finish().unwrap(), ops)
}

fn identity_batch_norm(net: &mut Net) {
    let moments: Vec<(Vec<f32>, Vec<f32>)> = net
        .graph()
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n.spec {
            Layer::BatchNorm { epsilon } => {
                let c = net.shape(i + 1).c;
                Some((vec![0.0; c], vec![1.0 - epsilon; c]))
            }
            _ => None,
        })
        .collect();
    net.set_running_stats(&moments);
}

fn check_network(name: &str, mut net: Net, input: Shape) {
    identity_batch_norm(&mut net);
    let (blob, ops) = write_f32(&net, input);
    let blob = AlignedBytes::from(blob);
    let model = Model::parse(blob.as_bytes()).unwrap();
    let g = net.graph().clone();
    for (i, node) in g.nodes.iter().enumerate() {
        let Some(k) = ops[i] else { continue };
        let op = model.op(k);
        let read = model.layer(&op);
        assert_eq!(read.op_kind(), node.spec.op_kind(), "{name} {}", node.name);
        assert_eq!(model.tensor(op.output).shape, net.shape(i + 1), "{name}");
        let x = net.shape(node.inputs[0]);
        match node.spec {
            // Padding comes back as explicit cells: compare the geometry.
            Layer::Conv2d { .. } => {
                assert_eq!(read.conv(x).unwrap(), node.spec.conv(x).unwrap(), "{name}")
            }
            Layer::MaxPool { .. } | Layer::AvgPool { .. } => {
                assert_eq!(read.pool(x).unwrap(), node.spec.pool(x).unwrap(), "{name}")
            }
            _ => assert_eq!(read, node.spec, "{name} {}", node.name),
        }
    }

    let pixels: Vec<f32> = (0..input.len())
        .map(|k| ((k * 7919 % 255) as f32) / 255.0)
        .collect();
    let t = net.forward(&pixels, None);
    let mut arena = vec![0u8; model.arena_len()];
    let mut interp = Interpreter::new(&model, &mut arena).unwrap();
    interp.input_mut::<f32>(0).unwrap().copy_from_slice(&pixels);
    interp.run().unwrap();
    for (k, &h) in g.heads.iter().enumerate() {
        let got = interp.output::<f32>(k).unwrap();
        let want = &t[h];
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (a, b) in got.iter().zip(want) {
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{name} head {k}: interpreter {a} vs training {b}"
            );
        }
    }
}

#[test]
fn every_zoo_network_is_one_description_on_both_sides() {
    type Builder = fn(Shape, usize, u64) -> picocnn::Result<Net>;
    let zoo: [(&str, Builder); 5] = [
        ("lenet5", zoo::lenet5),
        ("alexnet_mini", zoo::alexnet_mini),
        ("vgg_mini", zoo::vgg_mini),
        ("inception_mini", zoo::inception_mini),
        ("resnet8", zoo::resnet8),
    ];
    for (name, build) in zoo {
        for input in [Shape::new(28, 28, 1), Shape::new(32, 32, 3)] {
            check_network(name, build(input, 10, 7).unwrap(), input);
        }
    }
}

#[test]
fn depthwise_dilated_and_strided_layers_agree() {
    let conv = |out, k: usize, stride, dilation, padding, groups| Layer::Conv2d {
        out_channels: out,
        kernel: [k, k],
        stride: [stride, stride],
        dilation: [dilation, dilation],
        padding,
        groups,
        activation: Activation::Relu6,
    };
    let mut g = Graph::new();
    let a = g.push("c1", conv(8, 3, 1, 1, Padding::Same, 1), &[Graph::INPUT]);
    let d = g.push("dw", conv(16, 3, 2, 1, Padding::Same, 8), &[a]);
    let e = g.push(
        "dil",
        conv(
            16,
            3,
            1,
            2,
            Padding::Explicit {
                top: 2,
                bottom: 1,
                left: 0,
                right: 2,
            },
            1,
        ),
        &[d],
    );
    let p = g.push(
        "avg",
        Layer::AvgPool {
            window: [3, 3],
            stride: [2, 2],
            padding: Padding::Same,
        },
        &[e],
    );
    let f = g.push(
        "fc",
        Layer::Dense {
            out_features: 5,
            activation: Activation::None,
        },
        &[p],
    );
    g.head(f, 1.0);
    let input = Shape::new(13, 11, 3);
    check_network("custom", Net::new(g, input, 3).unwrap(), input);
}

#[test]
fn writer_rejects_what_a_blob_cannot_hold() {
    let mut b = ModelBuilder::new("bad");
    let x = b.input(Shape::new(4, 4, 2), TensorType::F32);
    let dense = Layer::Dense {
        out_features: 3,
        activation: Activation::None,
    };
    for (layer, inputs, weights, what) in [
        (Layer::Dropout(0.5), vec![x], None, "training-only"),
        (
            Layer::BatchNorm { epsilon: 1e-3 },
            vec![x],
            None,
            "training-only",
        ),
        (dense, vec![x], None, "need weights"),
        (Layer::Concat, vec![x], None, "at least two"),
        (
            Layer::Add {
                activation: Activation::None,
            },
            vec![x],
            None,
            "two inputs",
        ),
        (
            Layer::Activation(Activation::Relu),
            vec![x],
            Some(Weights::F32 {
                filter: vec![],
                bias: vec![],
            }),
            "only convolution",
        ),
    ] {
        let err = b
            .layer("l", &layer, &inputs, weights, TensorType::F32)
            .unwrap_err();
        assert!(format!("{err}").contains(what), "{layer:?}: {err}");
    }
    let q = picocnn::quant::QParams::new(0.5, 0).unwrap();
    let err = b
        .layer(
            "s",
            &Layer::Softmax { beta: 1.0 },
            &[x],
            None,
            TensorType::I8(q),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    let err = b
        .layer(
            "s",
            &Layer::Softmax { beta: f32::NAN },
            &[x],
            None,
            TensorType::F32,
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidParameter { .. }), "{err}");
    // Nothing half-written: the builder still makes a valid one-layer model.
    let y = b
        .layer(
            "s",
            &Layer::Softmax { beta: 1.0 },
            &[x],
            None,
            TensorType::F32,
        )
        .unwrap();
    b.output(y);
    let blob = AlignedBytes::from(b.finish().unwrap());
    assert_eq!(Model::parse(blob.as_bytes()).unwrap().op_count(), 1);
}

#[test]
fn training_graphs_end_at_the_logits() {
    let mut g = Graph::new();
    let s = g.push("softmax", Layer::Softmax { beta: 1.0 }, &[Graph::INPUT]);
    g.head(s, 1.0);
    let err = Net::new(g, Shape::flat(10), 1).unwrap_err();
    assert!(format!("{err}").contains("softmax"), "{err}");
}
