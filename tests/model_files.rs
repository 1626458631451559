//! The committed model blobs (`tests/models/*.pcnn`, embedded by the QEMU
//! firmware) are exactly what the builders make today.
//! `cargo xtask bless-models` rewrites them.
#![cfg(feature = "std")]

mod models;

use models::{branchy, ds_cnn, lenet5, resnet8, Precision};
use picocnn::learn::{record_trainable, TrainableSet};
use picocnn::model::writer::{AlignedBytes, Fusion, ModelBuilder};
use picocnn::model::Model;
use std::path::{Path, PathBuf};

/// The trained LeNet-5 (`lenet5_mnist_i8.pcnn`, exported before the writer
/// fused) written again with its convolutions fused with their pools,
/// its last dense layer the recorded trainable set as before.
fn lenet5_mnist_fused(dir: &Path) -> picocnn::Result<Vec<u8>> {
    let blob = AlignedBytes::from(std::fs::read(dir.join("lenet5_mnist_i8.pcnn")).unwrap());
    let model = Model::parse(blob.as_bytes())?;
    let mut blob = ModelBuilder::from_model(&model)?
        .fuse(Fusion::Smaller)
        .finish()?;
    let set = TrainableSet::Last {
        weights: 1,
        biases: 0,
    };
    record_trainable(&mut blob, set)?;
    Ok(blob)
}

#[test]
fn committed_blobs_are_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/models");
    let bless = std::env::var_os("PICOCNN_BLESS").is_some();
    for (name, blob) in [
        ("branchy_i8", branchy(Precision::I8)),
        ("branchy_f32", branchy(Precision::F32)),
        ("branchy_f16", branchy(Precision::F16)),
        ("lenet5_i8", lenet5(Precision::I8)),
        ("resnet8_i8", resnet8(Precision::I8)),
        ("ds_cnn_i8", ds_cnn(Precision::I8)),
        ("lenet5_mnist_i8_fused", lenet5_mnist_fused(&dir)),
    ] {
        let blob = blob.unwrap();
        let path = dir.join(format!("{name}.pcnn"));
        if bless {
            let tmp = path.with_extension("pcnn.tmp");
            std::fs::write(&tmp, &blob).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                committed == blob,
                "{} differs from what the builder makes: run `cargo xtask bless-models`",
                path.display()
            );
        }
    }
}
