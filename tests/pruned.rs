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
    // The int8 LeNet-5 runs in every build, fused or not (the same
    // kernels: a fused op needs its convolution's and its pool's).
    interpret("lenet5_mnist_i8.pcnn").unwrap();
    interpret("lenet5_mnist_i8_fused.pcnn").unwrap();
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
    match interpret("lenet5_mnist_f16.pcnn") {
        Ok(()) => assert!(DType::F16.built()),
        Err(Error::Unsupported { what }) => {
            assert!(!DType::F16.built());
            assert!(what.starts_with("f16 ops"), "{what}");
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn the_build_says_what_it_has() {
    // A LeNet-only build has no add, concat, f16 or f32; a full build has all.
    let pruned = match option_env!("PICOCNN_MODELS") {
        None => false,
        Some(m) if m.ends_with("lenet5_mnist_i8.pcnn") => true,
        Some(_) => return, // built for other models
    };
    assert_eq!(OpKind::Add.built(), !pruned);
    assert_eq!(OpKind::Concat.built(), !pruned);
    assert_eq!(DType::F32.built(), !pruned);
    assert!(OpKind::Conv2d.built() && OpKind::Dense.built() && DType::I8.built());
}
