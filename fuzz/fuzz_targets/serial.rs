//! The serial protocol on arbitrary bytes: the frame receiver, and every
//! whole frame answered by a learning server of the fused LeNet-5, as a
//! board does; the answer and learn-report decoders on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picocnn::learn::FineTuner;
use picocnn::model::writer::AlignedBytes;
use picocnn::model::Model;
use picocnn::protocol::{encode, Answer, Learned, Receiver, Server, REQUEST_MAGIC};
use std::sync::OnceLock;

fn blob() -> &'static AlignedBytes {
    static BLOB: OnceLock<AlignedBytes> = OnceLock::new();
    BLOB.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/models/lenet5_mnist_i8_fused.pcnn"
        );
        AlignedBytes::from(std::fs::read(path).expect("committed model"))
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = Answer::from_bytes(data);
    let _ = Learned::from_bytes(data);
    static MODEL: OnceLock<Model<'static>> = OnceLock::new();
    let model =
        MODEL.get_or_init(|| Model::parse(blob().as_bytes()).expect("committed model parses"));
    let mut arena = vec![0u8; model.arena_len()];
    let mut train = vec![0u8; FineTuner::train_len(model).unwrap_or(0)];
    let Ok(mut server) = Server::with_learning(model, &mut arena, &mut train, 0.05, 1) else {
        return;
    };
    let mut rx = Receiver::<1024>::new();
    let mut out = [0u8; 1100];
    // Inputs whose first byte is odd go out as whole frames of the rest
    // (request code, then payload), so that the server's side is reached
    // past the CRC; the others are raw line noise.
    let mut framed = [0u8; 1100];
    let data = match data.split_first() {
        Some((&f, rest)) if f & 1 == 1 && !rest.is_empty() => {
            match encode(REQUEST_MAGIC, rest[0], &rest[1..], &mut framed) {
                Ok(n) => &framed[..n],
                Err(_) => data,
            }
        }
        _ => data,
    };
    for &b in data {
        if let Some(event) = rx.push(b) {
            let _ = server.answer(event, rx.payload(), &mut out);
        }
    }
});
