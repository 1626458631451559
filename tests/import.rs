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

fn npy<T: npyz::Deserialize>(bytes: &[u8]) -> (Vec<u64>, Vec<T>) {
    let npy = npyz::NpyFile::new(bytes).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

/// The blob `import` writes from `tflite`, run on each item of the
/// `x` file: picocnn's outputs and the reference outputs of the `y` file,
/// item by item.
fn outputs<T>(blob: Vec<u8>, x: &[u8], y: &[u8]) -> Vec<(Vec<T>, Vec<T>)>
where
    T: picocnn::model::Element + npyz::Deserialize + Copy,
{
    let blob = AlignedBytes::from(blob);
    let model = Model::parse(blob.as_bytes()).unwrap();
    let ((xs, x), (ys, y)) = (npy::<T>(x), npy::<T>(y));
    let (n_in, n_out) = (x.len() / xs[0] as usize, y.len() / ys[0] as usize);
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(&model, &mut arena).unwrap();
    (0..xs[0] as usize)
        .map(|k| {
            it.input_mut::<T>(0)
                .unwrap()
                .copy_from_slice(&x[k * n_in..(k + 1) * n_in]);
            it.run().unwrap();
            let want = y[k * n_out..(k + 1) * n_out].to_vec();
            (it.output::<T>(0).unwrap().to_vec(), want)
        })
        .collect()
}

/// [`outputs`] of `tests/models/tflite/<name>`.
fn tflite_outputs<T>(name: &str) -> Vec<(Vec<T>, Vec<T>)>
where
    T: picocnn::model::Element + npyz::Deserialize + Copy,
{
    let blob = picocnn::import::tflite(&file(&format!("{name}.tflite")), name).unwrap();
    outputs(
        blob,
        &file(&format!("{name}_x.npy")),
        &file(&format!("{name}_y.npy")),
    )
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
        "concat_int8",
    ] {
        for (k, (ours, want)) in tflite_outputs::<i8>(name).iter().enumerate() {
            assert_eq!(ours, want, "{name} input {k}");
        }
    }
}

/// 16x8 models (int16 activations, int8 weights) give the reference
/// kernels' outputs bit for bit.
#[test]
fn imported_16x8_models_give_the_reference_kernels_outputs() {
    for name in [
        "lenet5_16x8",
        "dsconv_16x8",
        "pad_relu_16x8",
        "resnet8_16x8",
        "dscnn_16x8",
        "mean_16x8",
        "concat_16x8",
    ] {
        for (k, (ours, want)) in tflite_outputs::<i16>(name).iter().enumerate() {
            assert_eq!(ours, want, "{name} input {k}");
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
        "concat_f32",
    ] {
        let worst = tflite_outputs::<f32>(name)
            .iter()
            .flat_map(|(ours, want)| {
                ours.iter()
                    .zip(want)
                    .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            })
            .fold(0f32, f32::max);
        eprintln!("{name}: largest difference {worst:e}");
        assert!(worst < 1e-6, "{name}: {worst}");
    }
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

fn onnx_file(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/models/onnx/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Float ONNX models give onnxruntime's outputs to within float rounding
/// (batch normalisation folded here, sums in another order there).
#[test]
fn imported_onnx_float_models_are_within_rounding_of_onnxruntime() {
    for name in ["lenet5", "resnet8", "dscnn"] {
        let blob = picocnn::import::onnx(&onnx_file(&format!("{name}_f32.onnx")), name).unwrap();
        let x = onnx_file(&format!("{name}_x.npy"));
        let y = onnx_file(&format!("{name}_f32_y.npy"));
        let worst = outputs::<f32>(blob, &x, &y)
            .iter()
            .flat_map(|(ours, want)| ours.iter().zip(want).map(|(a, b)| (a - b).abs()))
            .fold(0f32, f32::max);
        eprintln!("{name}_f32: largest difference {worst:e}");
        assert!(worst < 1e-5, "{name}: {worst}");
    }
}

/// QDQ models: picocnn's int8 arithmetic is TensorFlow Lite's, not
/// onnxruntime's (which requantizes in single precision and rounds half
/// to even): the outputs agree to within a few steps of the output's
/// quantization.
#[test]
fn imported_onnx_qdq_models_are_near_onnxruntime() {
    for name in ["lenet5", "resnet8", "dscnn"] {
        let blob = picocnn::import::onnx(&onnx_file(&format!("{name}_qdq.onnx")), name).unwrap();
        let blob = AlignedBytes::from(blob);
        let model = Model::parse(blob.as_bytes()).unwrap();
        let q_in = model.tensor(model.input(0).unwrap()).qparams.unwrap();
        let q_out = model.tensor(model.output(0).unwrap()).qparams.unwrap();
        let (xs, x) = npy::<f32>(&onnx_file(&format!("{name}_x.npy")));
        let (ys, y) = npy::<f32>(&onnx_file(&format!("{name}_qdq_y.npy")));
        let (n_in, n_out) = (x.len() / xs[0] as usize, y.len() / ys[0] as usize);
        let mut arena = vec![0u8; model.arena_len()];
        let mut it = Interpreter::new(&model, &mut arena).unwrap();
        let (mut worst, mut equal, mut same_class, mut total) = (0i32, 0usize, 0usize, 0i32);
        for k in 0..xs[0] as usize {
            let xq: Vec<i8> = x[k * n_in..(k + 1) * n_in]
                .iter()
                .map(|&v| {
                    ((v / q_in.scale).round_ties_even() + q_in.zero_point as f32)
                        .clamp(-128.0, 127.0) as i8
                })
                .collect();
            it.input_mut::<i8>(0).unwrap().copy_from_slice(&xq);
            it.run().unwrap();
            let ours = it.output::<i8>(0).unwrap();
            let theirs: Vec<i32> = y[k * n_out..(k + 1) * n_out]
                .iter()
                .map(|&v| (v / q_out.scale).round() as i32 + q_out.zero_point)
                .collect();
            for (&a, &b) in ours.iter().zip(&theirs) {
                worst = worst.max((a as i32 - b).abs());
                total += (a as i32 - b).abs();
                equal += (a as i32 == b) as usize;
            }
            let arg = |v: &mut dyn Iterator<Item = i32>| {
                v.enumerate()
                    .max_by_key(|&(i, v)| (v, usize::MAX - i))
                    .unwrap()
                    .0
            };
            same_class += (arg(&mut ours.iter().map(|&v| v as i32))
                == arg(&mut theirs.iter().copied())) as usize;
        }
        let mean = total as f32 / y.len() as f32;
        eprintln!(
            "{name}_qdq: {equal} of {} outputs equal, mean difference {mean:.2} steps, largest {worst}, {same_class} of {} classes the same",
            y.len(),
            xs[0]
        );
        // Rounding differences carried through the layers, then widened
        // by the softmax; a misplaced weight would move them by far more.
        assert!(worst <= 12 && mean <= 1.5, "{name}: {worst}, {mean}");
    }
}

/// A malformed ONNX file gives an error, never a panic; an op the
/// importer does not take is named with its index.
#[test]
fn malformed_onnx_files_get_errors() {
    let good = onnx_file("lenet5_qdq.onnx");
    let e = picocnn::import::onnx(b"\xff\xff\xff not a model", "x").unwrap_err();
    assert!(e.to_string().contains("not an ONNX model"), "{e}");
    for cut in (0..good.len()).step_by(89) {
        let _ = picocnn::import::onnx(&good[..cut], "x");
    }
    let mut rng = picocnn::rng::Rng::new(9);
    let mut refused = 0;
    for _ in 0..2000 {
        let mut bad = good.clone();
        for _ in 0..3 {
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] ^= 1 << rng.below(8);
        }
        refused += picocnn::import::onnx(&bad, "x").is_err() as usize;
    }
    assert!(refused > 0);
    // Every op type "Gemm" renamed "Gxmm".
    let float = onnx_file("lenet5_f32.onnx");
    let renamed: Vec<u8> = {
        let mut v = float.clone();
        for i in 0..v.len() - 4 {
            if &v[i..i + 4] == b"Gemm" {
                v[i + 1] = b'x';
            }
        }
        v
    };
    let e = picocnn::import::onnx(&renamed, "x")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("op ") && e.contains("Gxmm is not supported"),
        "{e}"
    );
}

/// The imported blobs the conformance firmware runs on the devices are
/// what the importer writes today.
#[test]
fn committed_imported_blobs_are_current() {
    for name in ["mean_int8", "dscnn_int8", "dsconv_16x8"] {
        let blob = picocnn::import::tflite(&file(&format!("{name}.tflite")), name).unwrap();
        let path = format!(
            "{}/tests/models/tflite_{name}.pcnn",
            env!("CARGO_MANIFEST_DIR")
        );
        assert!(
            std::fs::read(&path).unwrap() == blob,
            "{path} is stale: picocnn import tests/models/tflite/{name}.tflite --out {path}"
        );
    }
}
