//! The TensorFlow Lite and ONNX importers on arbitrary bytes (seeded with
//! the test models): an error or a blob, never a panic; a blob either
//! writes parses and runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picocnn::model::writer::AlignedBytes;
use picocnn::model::{Interpreter, Model};

fuzz_target!(|data: &[u8]| {
    for import in [picocnn::import::tflite, picocnn::import::onnx] {
        if let Ok(blob) = import(data, "fuzz") {
            check(blob);
        }
    }
});

fn check(blob: Vec<u8>) {
    let blob = AlignedBytes::from(blob);
    let model = Model::parse(blob.as_bytes()).expect("an imported blob parses");
    if model.arena_len() > 1 << 24 {
        return;
    }
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(&model, &mut arena).expect("an imported blob has its kernels");
    it.run().expect("an imported blob runs");
}
