//! The data loaders and checkpoint reader on arbitrary files: IDX (plain
//! and gzip, as `read_idx` takes either), PNG, and a LeNet-5 checkpoint
//! (safetensors). The first byte picks which.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picocnn::tensor::Shape;
use picocnn::train::Net;
use std::sync::Mutex;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    // One file per process: libFuzzer runs one input at a time.
    let path = std::env::temp_dir().join(format!("picocnn-fuzz-{}", std::process::id()));
    std::fs::write(&path, body).expect("temporary file");
    match pick % 3 {
        0 => {
            let _ = picocnn::data::read_idx(&path);
        }
        1 => {
            let _ = picocnn::data::load_png(&path);
        }
        _ => {
            // One network, loaded into again and again (a failed load
            // leaves it whole or refused; either way it stays a network).
            static NET: Mutex<Option<Net>> = Mutex::new(None);
            let mut net = NET.lock().unwrap_or_else(|e| e.into_inner());
            let net = net.get_or_insert_with(|| {
                picocnn::train::zoo::lenet5(Shape::new(28, 28, 1), 10, 1).expect("LeNet-5")
            });
            let _ = picocnn::train::checkpoint::read_metadata(&path);
            let _ = picocnn::train::checkpoint::load(net, &path);
        }
    }
    let _ = std::fs::remove_file(&path);
});
