//! The conformance cases on the host: every TensorFlow Lite vector must be
//! reproduced bit for bit, and every case must fit the 11 KiB arena the
//! Cortex-M0 firmware gives it (`boards/qemu/src/lib.rs`, `ARENA_SIZE`).

use picocnn_conformance::{case_count, run_all, TFLITE_CASES};

/// The arena of the micro:bit (Cortex-M0, 16 KiB RAM) conformance firmware.
const M0_ARENA: usize = 11 * 1024;

#[test]
fn every_tflite_vector_is_reproduced_bit_for_bit() {
    let index = include_str!("vectors/tflite/index.txt");
    let names: Vec<&str> = index.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        TFLITE_CASES.len(),
        names.len(),
        "index.txt and the JSON files disagree"
    );
    assert!(TFLITE_CASES.len() >= 15, "too few TensorFlow Lite vectors");
    let mut arena = vec![0u8; M0_ARENA];
    let mut seen = 0;
    let mut failures = Vec::new();
    run_all(&mut arena, &mut |o| {
        seen += 1;
        if let Some(e) = o.error {
            failures.push(format!("{}: error {e}", o.name));
        } else if o.matches_expected == Some(false) {
            failures.push(format!("{}: output differs from TensorFlow Lite", o.name));
        }
    });
    assert_eq!(seen, case_count());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn tflite_vector_outputs_match_element_by_element() {
    // A second, independent look at the first differing element, so a
    // failure says where.
    let mut arena = vec![0u8; 64 * 1024];
    for case in TFLITE_CASES {
        let mut bump = picocnn_conformance::Bump::new(&mut arena);
        let out = picocnn_conformance::run_vector(case, &mut bump)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        if let Some(i) = out.iter().zip(case.output.data).position(|(a, b)| a != b) {
            panic!(
                "{}: element {i} is {} where TensorFlow Lite gives {}",
                case.name, out[i], case.output.data[i]
            );
        }
    }
}
