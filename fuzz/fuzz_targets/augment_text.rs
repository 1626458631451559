//! The augmentation pipeline's text form on arbitrary strings: parsing, and
//! a parsed pipeline run on a digit and printed back, which must parse to the
//! same pipeline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picocnn::augment::Pipeline;
use picocnn::tensor::Shape;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = text.parse::<Pipeline>() else {
        return;
    };
    let mut digit = [0.5f32; 28 * 28];
    p.apply(&mut digit, Shape::new(28, 28, 1), data.len() as u64);
    let again = p.to_string();
    let q: Pipeline = again.parse().expect("a printed pipeline parses");
    assert_eq!(q.to_string(), again);
});
