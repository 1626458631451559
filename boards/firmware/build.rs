//! Checks the model the firmware embeds with every check of
//! `Model::parse`, so that the firmware opens it with
//! `Model::parse_prechecked` and carries none of those checks in its flash.
//! A model that fails stops the build with the reason.

use std::path::Path;

fn main() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/models/lenet5_mnist_i8_fused.pcnn");
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read the model {}: {e}", path.display()));
    // Copied into u32s: the blob must start on a 4-byte boundary.
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    let aligned = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()];
    aligned.copy_from_slice(&bytes);
    if let Err(e) = picocnn::model::Model::parse(aligned) {
        panic!("the model {} does not pass the checks: {e}", path.display());
    }
}
