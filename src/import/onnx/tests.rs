//! The ONNX importer on models built with the schema's own types.

use super::*;
use pb::tensor_shape_proto::{dimension::Value as Dim, Dimension};

fn info(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(Dim::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn floats(name: &str, dims: &[i64], n: usize) -> pb::TensorProto {
    pb::TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        float_data: vec![0.25; n],
        ..Default::default()
    }
}

fn node(op: &str, ins: &[&str], out: &str, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        op_type: Some(op.into()),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// A model of `nodes` from `x` (NCHW `dims`) to `y`, opset `opset`.
fn model(
    opset: i64,
    dims: &[i64],
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
) -> Vec<u8> {
    pb::ModelProto {
        ir_version: Some(8),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(pb::GraphProto {
            node: nodes,
            initializer: inits,
            input: vec![info("x", dims)],
            output: vec![info("y", &[])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn error(bytes: &[u8]) -> String {
    onnx(bytes, "t").unwrap_err().to_string()
}

#[test]
fn a_convolution_and_flatten_import() {
    let m = model(
        17,
        &[1, 2, 4, 4],
        vec![
            node("Conv", &["x", "w"], "c", vec![]),
            node("Relu", &["c"], "r", vec![]),
            node("Flatten", &["r"], "y", vec![]),
        ],
        vec![floats("w", &[3, 2, 3, 3], 54)],
    );
    let blob = crate::model::writer::AlignedBytes::from(onnx(&m, "t").unwrap());
    let model = crate::model::Model::parse(blob.as_bytes()).unwrap();
    // The ReLU is the convolution's.
    assert_eq!(model.op_count(), 1);
    assert_eq!(model.op(0).activation, Activation::Relu);
}

#[test]
fn bad_models_get_specific_errors() {
    let relu = || vec![node("Relu", &["x"], "y", vec![])];
    let e = error(&model(99, &[1, 2, 4, 4], relu(), vec![]));
    assert!(e.contains("opset 99"), "{e}");
    for dims in [
        &[1, 2, 1 << 20, 1 << 20][..],
        &[1, -2, 4, 4],
        &[3, 2, 4, 4],
        &[1, 2, 3, 4, 5],
    ] {
        let e = error(&model(17, dims, relu(), vec![]));
        assert!(e.contains("model input x"), "{dims:?}: {e}");
    }
    let e = error(&model(
        17,
        &[1, 2, 4, 4],
        vec![node("Tanh", &["x"], "y", vec![])],
        vec![],
    ));
    assert_eq!(e, "op 0 Tanh is not supported");
    let e = error(&model(
        17,
        &[1, 2, 4, 4],
        vec![node("Relu", &["z"], "y", vec![])],
        vec![],
    ));
    assert!(e.contains("z is read before an op makes it"), "{e}");
    // Weights of the wrong depth, of the wrong rank, of too few values.
    let conv = |w| {
        error(&model(
            17,
            &[1, 2, 4, 4],
            vec![node("Conv", &["x", "w"], "y", vec![])],
            vec![w],
        ))
    };
    for w in [floats("w", &[3, 5, 3, 3], 135), floats("w", &[3, 2, 3], 18)] {
        let e = conv(w);
        assert!(e.starts_with("op 0 Conv"), "{e}");
    }
    let e = conv(floats("w", &[3, 2, 3, 3], 5));
    assert_eq!(e, "tensor w: 5 values for dims [3, 2, 3, 3]");
    // External data is not read.
    let mut w = floats("w", &[3, 2, 3, 3], 54);
    w.data_location = Some(1);
    let e = error(&model(
        17,
        &[1, 2, 4, 4],
        vec![node("Conv", &["x", "w"], "y", vec![])],
        vec![w],
    ));
    assert!(e.contains("outside the file"), "{e}");
    // Absurd dims on a constant.
    let w = floats("w", &[1 << 40, 2, 3, 3], 54);
    let e = error(&model(
        17,
        &[1, 2, 4, 4],
        vec![node("Conv", &["x", "w"], "y", vec![])],
        vec![w],
    ));
    assert!(e.contains("dims"), "{e}");
}
