//! `model::batch::run`: images split over threads give a single
//! interpreter's outputs, and every wrong call gets its error.
#![cfg(feature = "std")]

mod models;

use models::{branchy, lenet5, resnet8, Precision};
use picocnn::model::writer::AlignedBytes;
use picocnn::model::{batch, Element, Interpreter, Model};
use picocnn::rng::Rng;
use picocnn::Error;

/// Each image's outputs, one interpreter running them in turn.
fn one_by_one<I: Element, O: Element>(model: &Model<'_>, inputs: &[I], n_out: usize) -> Vec<O> {
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(model, &mut arena).unwrap();
    let n_in = it.input_mut::<I>(0).unwrap().len();
    let mut out = Vec::new();
    for x in inputs.chunks(n_in) {
        it.input_mut::<I>(0).unwrap().copy_from_slice(x);
        it.run().unwrap();
        out.extend_from_slice(&it.output::<O>(0).unwrap()[..n_out]);
    }
    out
}

fn check<I: Element + Sync, O: Element + Send + PartialEq + std::fmt::Debug>(
    blob: Vec<u8>,
    images: usize,
    input: impl Fn(&mut Rng) -> I,
) {
    let blob = AlignedBytes::from(blob);
    let model = Model::parse(blob.as_bytes()).unwrap();
    let size = |t: usize| model.tensor(t).shape.len();
    let (n_in, n_out) = (
        size(model.input(0).unwrap()),
        size(model.output(0).unwrap()),
    );
    let mut rng = Rng::new(9);
    let inputs: Vec<I> = (0..images * n_in).map(|_| input(&mut rng)).collect();
    let want: Vec<O> = one_by_one(&model, &inputs, n_out);
    for threads in [0, 1, 2, 3] {
        let mut got = vec![O::zeroed(); images * n_out];
        batch::run::<I, O>(&model, &inputs, &mut got, threads).unwrap();
        assert_eq!(got, want, "{threads} threads");
    }
}

#[test]
fn batches_equal_one_image_at_a_time() {
    check::<i8, i8>(lenet5(Precision::I8).unwrap(), 37, |r| r.next_u64() as i8);
    check::<i8, i8>(resnet8(Precision::I8).unwrap(), 5, |r| r.next_u64() as i8);
    check::<f32, f32>(resnet8(Precision::F32).unwrap(), 3, |r| {
        r.uniform(-1.0, 1.0)
    });
}

#[test]
fn wrong_batches_get_their_errors() {
    let blob = AlignedBytes::from(lenet5(Precision::I8).unwrap());
    let model = Model::parse(blob.as_bytes()).unwrap();
    let (n_in, n_out) = (28 * 28, 10);
    let x = vec![0i8; 3 * n_in];
    let mut y = vec![0i8; 3 * n_out];
    // A partial image.
    let e = batch::run::<i8, i8>(&model, &x[..n_in + 5], &mut y, 1).unwrap_err();
    assert!(
        matches!(e, Error::ShapeMismatch { got, .. } if got == n_in + 5),
        "{e:?}"
    );
    // Outputs for another number of images.
    let e = batch::run::<i8, i8>(&model, &x, &mut y[..2 * n_out], 1).unwrap_err();
    assert!(
        matches!(e, Error::ShapeMismatch { expected, got, .. } if expected == 3 * n_out && got == 2 * n_out),
        "{e:?}"
    );
    // The wrong element type (the output stays untouched).
    let xf = vec![0f32; 3 * n_in];
    let e = batch::run::<f32, i8>(&model, &xf, &mut y, 1).unwrap_err();
    assert!(
        matches!(e, Error::WrongTensor { .. } | Error::ShapeMismatch { .. }),
        "{e:?}"
    );
    // No images: nothing to do.
    batch::run::<i8, i8>(&model, &[], &mut [], 2).unwrap();
    // A model with two outputs.
    let blob = AlignedBytes::from(branchy(Precision::I8).unwrap());
    let model = Model::parse(blob.as_bytes()).unwrap();
    assert_eq!(model.output_count(), 2);
    let e = batch::run::<i8, i8>(&model, &x, &mut y, 1).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
}
