//! The committed model blobs (`tests/models/*.pcnn`, embedded by the QEMU
//! firmware) are exactly what the builders make today.
//! `cargo xtask bless-models` rewrites them.
#![cfg(feature = "std")]

mod models;

use models::{branchy, ds_cnn, lenet5, resnet8, Precision};
use std::path::PathBuf;

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
