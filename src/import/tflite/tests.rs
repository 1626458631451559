//! The TensorFlow Lite importer on models built with the schema's own builders.

use super::*;
use flatbuffers::FlatBufferBuilder;

/// A model of float tensors `shapes` (tensor 0 the input, the last
/// the output) and one op `code` from tensor 0 to the last.
fn model(version: u32, shapes: &[&[i32]], code: fb::BuiltinOperator, ins: &[i32]) -> Vec<u8> {
    let mut b = FlatBufferBuilder::new();
    let tensors: Vec<_> = shapes
        .iter()
        .map(|s| {
            let shape = b.create_vector(s);
            fb::Tensor::create(
                &mut b,
                &fb::TensorArgs {
                    shape: Some(shape),
                    ..Default::default()
                },
            )
        })
        .collect();
    let tensors = b.create_vector(&tensors);
    let last = shapes.len() as i32 - 1;
    let (inputs, outputs) = (b.create_vector(&[0]), b.create_vector(&[last]));
    let (op_in, op_out) = (b.create_vector(ins), b.create_vector(&[last]));
    let op = fb::Operator::create(
        &mut b,
        &fb::OperatorArgs {
            inputs: Some(op_in),
            outputs: Some(op_out),
            ..Default::default()
        },
    );
    let ops = b.create_vector(&[op]);
    let graph = fb::SubGraph::create(
        &mut b,
        &fb::SubGraphArgs {
            tensors: Some(tensors),
            inputs: Some(inputs),
            outputs: Some(outputs),
            operators: Some(ops),
            ..Default::default()
        },
    );
    let graphs = b.create_vector(&[graph]);
    let oc = fb::OperatorCode::create(
        &mut b,
        &fb::OperatorCodeArgs {
            builtin_code: code,
            deprecated_builtin_code: code.0.min(127) as i8,
            ..Default::default()
        },
    );
    let codes = b.create_vector(&[oc]);
    let empty = fb::Buffer::create(&mut b, &fb::BufferArgs::default());
    let buffers = b.create_vector(&[empty]);
    let m = fb::Model::create(
        &mut b,
        &fb::ModelArgs {
            version,
            operator_codes: Some(codes),
            subgraphs: Some(graphs),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    fb::finish_model_buffer(&mut b, m);
    b.finished_data().to_vec()
}

fn error(bytes: &[u8]) -> String {
    tflite(bytes, "t").unwrap_err().to_string()
}

#[test]
fn a_well_formed_model_imports() {
    let m = model(
        3,
        &[&[1, 4, 4, 2], &[1, 4, 4, 2]],
        fb::BuiltinOperator::RELU,
        &[0],
    );
    let blob = tflite(&m, "t").unwrap();
    let blob = crate::model::writer::AlignedBytes::from(blob);
    assert_eq!(
        crate::model::Model::parse(blob.as_bytes())
            .unwrap()
            .op_count(),
        1
    );
}

#[test]
fn bad_models_get_specific_errors() {
    let relu = fb::BuiltinOperator::RELU;
    let ok: &[&[i32]] = &[&[1, 4, 4, 2], &[1, 4, 4, 2]];
    let e = error(&model(2, ok, relu, &[0]));
    assert!(e.contains("schema version 2"), "{e}");
    let e = error(&model(3, ok, fb::BuiltinOperator::TANH, &[0]));
    assert_eq!(e, "op 0 TANH is not supported");
    let e = error(&model(3, ok, fb::BuiltinOperator(250), &[0]));
    assert!(e.starts_with("op 0 builtin 250"), "{e}");
    // Absurd, negative and batched shapes.
    for shape in [
        &[1, 1 << 20, 1 << 20, 4][..],
        &[1, -4, 4, 2],
        &[2, 4, 4, 2],
        &[1, 2, 3, 4, 5],
    ] {
        let e = error(&model(3, &[shape, shape], relu, &[0]));
        assert!(e.contains("has shape"), "{shape:?}: {e}");
    }
    let e = error(&model(3, ok, relu, &[7]));
    assert!(e.contains("tensor index 7"), "{e}");
    let e = error(&model(3, ok, relu, &[1]));
    assert!(e.contains("used before an op makes it"), "{e}");
}
