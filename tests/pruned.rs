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
    // The int8 LeNet-5, fused or not, runs where its op kinds are built:
    // a build for the fused one (as the boards are) leaves out the plain
    // convolution and pool records and refuses the unfused model by name.
    let lenets: [(&str, &[OpKind]); 2] = [
        ("lenet5_mnist_i8.pcnn", &[OpKind::Conv2d, OpKind::MaxPool]),
        ("lenet5_mnist_i8_fused.pcnn", &[OpKind::ConvMaxPool]),
    ];
    for (name, kinds) in lenets {
        match interpret(name) {
            Ok(()) => assert!(kinds.iter().all(|k| k.built()), "{name}"),
            Err(Error::Unsupported { what }) => {
                assert!(!kinds.iter().all(|k| k.built()), "{name}");
                assert!(what.contains("PICOCNN_MODELS"), "{what}");
            }
            Err(e) => panic!("{name}: unexpected error {e}"),
        }
        if option_env!("PICOCNN_MODELS").is_some_and(|m| m.ends_with(name)) {
            interpret(name).unwrap();
        }
    }
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
    // The f16 LeNet-5 (unfused) needs the f16 kernels and the plain
    // convolution and pool records.
    let f16_built = DType::F16.built() && OpKind::Conv2d.built() && OpKind::MaxPool.built();
    match interpret("lenet5_mnist_f16.pcnn") {
        Ok(()) => assert!(f16_built),
        Err(Error::Unsupported { what }) => {
            assert!(!f16_built);
            assert!(what.contains("PICOCNN_MODELS"), "{what}");
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn the_build_says_what_it_has() {
    // A LeNet-only build has no add, concat, f16 or f32; a full build has all.
    let pruned = match option_env!("PICOCNN_MODELS") {
        None => false,
        Some(m) if m.ends_with("lenet5_mnist_i8_fused.pcnn") => true,
        Some(_) => return, // built for other models
    };
    assert_eq!(OpKind::Add.built(), !pruned);
    assert_eq!(OpKind::Concat.built(), !pruned);
    assert_eq!(DType::F32.built(), !pruned);
    assert_eq!(OpKind::Conv2d.built(), !pruned);
    assert_eq!(OpKind::MaxPool.built(), !pruned);
    assert!(OpKind::ConvMaxPool.built() && OpKind::Dense.built() && DType::I8.built());
}
