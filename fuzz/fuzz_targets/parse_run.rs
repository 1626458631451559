//! `Model::parse` and `Interpreter::run` on arbitrary bytes. Half of the
//! inputs get their CRC fixed up first, so the fuzzer reaches the checks
//! behind it instead of stopping at the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picocnn::model::format::header;
use picocnn::model::writer::AlignedBytes;
use picocnn::model::{crc32, Interpreter, Model};

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= 16 && bytes[bytes.len() - 1] & 1 == 1 {
        let crc = crc32(&bytes[16..]);
        bytes[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    }
    let blob = AlignedBytes::from(bytes);
    let Ok(model) = Model::parse(blob.as_bytes()) else {
        return;
    };
    if model.arena_len() > 1 << 20 {
        return;
    }
    let mut arena = vec![0u8; model.arena_len()];
    let Ok(mut interp) = Interpreter::new(&model, &mut arena) else {
        return;
    };
    if let Ok(x) = interp.input_mut::<i8>(0) {
        for (i, v) in x.iter_mut().enumerate() {
            *v = data.get(i).copied().unwrap_or(0) as i8;
        }
    }
    let _ = interp.run();
    let _ = picocnn::model::Summary::new(&model).to_string();
});
