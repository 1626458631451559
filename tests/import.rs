//! `import::tflite`: TensorFlow Lite models made by
//! `tools/tflite/make_test_models.py` give, through the interpreter,
//! TensorFlow Lite's reference kernels' outputs bit for bit; malformed
//! and unsupported files get their errors.
#![cfg(feature = "cli")]

use picocnn::model::writer::AlignedBytes;
use picocnn::model::{Interpreter, Model};

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/models/tflite/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn int8_npy(name: &str) -> (Vec<u64>, Vec<i8>) {
    let bytes = file(name);
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

#[test]
fn imported_models_give_the_reference_kernels_outputs() {
    for name in [
        "lenet5_int8",
        "dsconv_int8",
        "pad_relu_int8",
        "resnet8_int8",
        "dscnn_int8",
        "mean_int8",
    ] {
        let blob = picocnn::import::tflite(&file(&format!("{name}.tflite")), name).unwrap();
        let blob = AlignedBytes::from(blob);
        let model = Model::parse(blob.as_bytes()).unwrap();
        let (xs, x) = int8_npy(&format!("{name}_x.npy"));
        let (ys, y) = int8_npy(&format!("{name}_y.npy"));
        let (n_in, n_out) = (x.len() / xs[0] as usize, y.len() / ys[0] as usize);
        let mut arena = vec![0u8; model.arena_len()];
        let mut it = Interpreter::new(&model, &mut arena).unwrap();
        for k in 0..xs[0] as usize {
            it.input_mut::<i8>(0)
                .unwrap()
                .copy_from_slice(&x[k * n_in..(k + 1) * n_in]);
            it.run().unwrap();
            assert_eq!(
                it.output::<i8>(0).unwrap(),
                &y[k * n_out..(k + 1) * n_out],
                "{name} input {k}"
            );
        }
    }
}

/// Float32 models give the reference kernels' outputs to within float
/// rounding: picocnn sums in another order.
#[test]
fn imported_float_models_are_within_rounding_of_the_reference() {
    for name in [
        "lenet5_f32",
        "dsconv_f32",
        "resnet8_f32",
        "dscnn_f32",
        "mean_f32",
    ] {
        let blob = picocnn::import::tflite(&file(&format!("{name}.tflite")), name).unwrap();
        let blob = AlignedBytes::from(blob);
        let model = Model::parse(blob.as_bytes()).unwrap();
        let (xs, x) = f32_npy(&format!("{name}_x.npy"));
        let (ys, y) = f32_npy(&format!("{name}_y.npy"));
        let (n_in, n_out) = (x.len() / xs[0] as usize, y.len() / ys[0] as usize);
        let mut arena = vec![0u8; model.arena_len()];
        let mut it = Interpreter::new(&model, &mut arena).unwrap();
        let mut worst = 0f32;
        for k in 0..xs[0] as usize {
            it.input_mut::<f32>(0)
                .unwrap()
                .copy_from_slice(&x[k * n_in..(k + 1) * n_in]);
            it.run().unwrap();
            for (a, b) in it.output::<f32>(0).unwrap().iter().zip(&y[k * n_out..]) {
                worst = worst.max((a - b).abs() / b.abs().max(1.0));
            }
        }
        eprintln!("{name}: largest difference {worst:e}");
        assert!(worst < 1e-6, "{name}: {worst}");
    }
}

fn f32_npy(name: &str) -> (Vec<u64>, Vec<f32>) {
    let bytes = file(name);
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

/// Cut short anywhere, or with bits flipped, a model file gives an error
/// or (for a flip the checks cannot see) a blob; never a panic.
#[test]
fn malformed_files_get_errors() {
    let good = file("lenet5_int8.tflite");
    let e = picocnn::import::tflite(b"not a model at all", "x").unwrap_err();
    assert!(e.to_string().contains("not a TensorFlow Lite model"), "{e}");
    for cut in (0..good.len()).step_by(97) {
        assert!(
            picocnn::import::tflite(&good[..cut], "x").is_err(),
            "cut at {cut}"
        );
    }
    let mut rng = picocnn::rng::Rng::new(8);
    let mut refused = 0;
    for _ in 0..3000 {
        let mut bad = good.clone();
        for _ in 0..3 {
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] ^= 1 << rng.below(8);
        }
        refused += picocnn::import::tflite(&bad, "x").is_err() as usize;
    }
    assert!(refused > 0);
}
