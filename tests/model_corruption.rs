//! Every corruption of a valid blob is rejected with an error, never a
//! panic: truncation at every length, every single-bit flip, a newer
//! version, a misaligned start; and with the checksum fixed up after each
//! flip (so the deeper checks are reached), parse and run never panic.
#![cfg(feature = "std")]

mod models;

use models::{branchy, lenet5, Precision};
use picocnn::model::format::header;
use picocnn::model::writer::AlignedBytes;
use picocnn::model::{crc32, Interpreter, Model};
use picocnn::Error;

fn blob() -> Vec<u8> {
    branchy(Precision::I8).unwrap()
}

fn fix_crc(b: &mut [u8]) {
    let crc = crc32(&b[16..]);
    b[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn truncated_at_every_length() {
    let b = blob();
    for len in 0..b.len() {
        let cut = AlignedBytes::from(&b[..len]);
        assert!(
            Model::parse(cut.as_bytes()).is_err(),
            "accepted a blob cut to {len} bytes"
        );
    }
    assert!(Model::parse(AlignedBytes::from(&b[..]).as_bytes()).is_ok());
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let b = blob();
    for bit in 0..b.len() * 8 {
        let mut c = b.clone();
        c[bit / 8] ^= 1 << (bit % 8);
        let c = AlignedBytes::from(c);
        assert!(
            Model::parse(c.as_bytes()).is_err(),
            "accepted a flip of bit {bit}"
        );
    }
}

#[test]
fn newer_version_and_bad_magic() {
    let mut b = blob();
    b[header::VERSION..header::VERSION + 2].copy_from_slice(&2u16.to_le_bytes());
    fix_crc(&mut b);
    assert_eq!(
        Model::parse(AlignedBytes::from(b.clone()).as_bytes()).err(),
        Some(Error::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    );
    b[0] = b'X';
    assert_eq!(
        Model::parse(AlignedBytes::from(b).as_bytes()).err(),
        Some(Error::BadMagic)
    );
}

#[test]
fn misaligned_start_is_rejected() {
    let b = blob();
    for shift in 1..4 {
        let mut buf = vec![0u8; b.len() + 16];
        // Place the blob `shift` bytes past a 4-byte boundary.
        let start = (4 - buf.as_ptr() as usize % 4) % 4 + shift;
        buf[start..start + b.len()].copy_from_slice(&b);
        assert!(matches!(
            Model::parse(&buf[start..start + b.len()]),
            Err(Error::Misaligned { .. })
        ));
    }
}

/// Flips with the checksum recomputed reach every structural check; whatever
/// parses must also run (or fail) without a panic. Every bit of the header,
/// tables, lists and strings is flipped; in the weights (where any value is
/// valid) every 13th bit.
#[test]
fn flips_behind_a_valid_checksum_never_panic() {
    let b = blob();
    let data_off = u32::from_le_bytes(
        b[header::DATA_OFF..header::DATA_OFF + 4]
            .try_into()
            .unwrap(),
    ) as usize;
    let mut accepted = 0;
    let mut tried = 0;
    let mut arena = vec![0u8; 1 << 16];
    for bit in (16 * 8)..b.len() * 8 {
        if bit / 8 >= data_off && bit % 13 != 0 {
            continue;
        }
        tried += 1;
        let mut c = b.clone();
        c[bit / 8] ^= 1 << (bit % 8);
        fix_crc(&mut c);
        let c = AlignedBytes::from(c);
        if let Ok(model) = Model::parse(c.as_bytes()) {
            accepted += 1;
            if model.arena_len() <= arena.len() {
                let mut it = Interpreter::new(&model, &mut arena).unwrap();
                let _ = it.run();
            }
        }
    }
    // Weights and most scales are free to change, so many flips still parse.
    assert!(accepted > 0);
    println!("{accepted} of {tried} flips parsed");
}

/// The fused convolution and pool records (LeNet-5's two `ConvMaxPool`
/// ops) and the tensors around them: every bit of the tensor and op tables
/// flipped behind a valid checksum parses or fails, and runs or fails,
/// without a panic.
#[test]
fn flips_in_fused_records_never_panic() {
    let b = lenet5(Precision::I8).unwrap();
    let at = |off: usize| u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize;
    let (tensors, lists) = (at(header::TENSORS_OFF), at(header::LISTS_OFF));
    let mut arena = vec![0u8; 1 << 16];
    let mut accepted = 0;
    for bit in tensors * 8..lists * 8 {
        let mut c = b.clone();
        c[bit / 8] ^= 1 << (bit % 8);
        fix_crc(&mut c);
        let c = AlignedBytes::from(c);
        if let Ok(model) = Model::parse(c.as_bytes()) {
            accepted += 1;
            if model.arena_len() <= arena.len() {
                let mut it = Interpreter::new(&model, &mut arena).unwrap();
                let _ = it.run();
            }
        }
    }
    assert!(accepted > 0);
}

/// `parse_prechecked` opens what `parse` accepts as the same model, and
/// still refuses every cut and every flipped bit (the CRC and the header
/// checks it keeps).
#[test]
fn prechecked_opens_the_same_model_and_refuses_corruption() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models");
    for name in [
        "branchy_i8",
        "branchy_f32",
        "branchy_f16",
        "lenet5_mnist_i8",
        "lenet5_mnist_i8_fused",
    ] {
        let b = AlignedBytes::from(std::fs::read(dir.join(format!("{name}.pcnn"))).unwrap());
        let checked = Model::parse(b.as_bytes()).unwrap();
        let opened = Model::parse_prechecked(b.as_bytes()).unwrap();
        assert_eq!(format!("{opened:?}"), format!("{checked:?}"), "{name}");
    }
    let b = blob();
    for len in 0..b.len() {
        let cut = AlignedBytes::from(&b[..len]);
        assert!(
            Model::parse_prechecked(cut.as_bytes()).is_err(),
            "cut to {len}"
        );
    }
    for bit in 0..b.len() * 8 {
        let mut c = b.clone();
        c[bit / 8] ^= 1 << (bit % 8);
        let c = AlignedBytes::from(c);
        assert!(
            Model::parse_prechecked(c.as_bytes()).is_err(),
            "accepted a flip of bit {bit}"
        );
    }
    let mut buf = vec![0u8; b.len() + 16];
    let start = (4 - buf.as_ptr() as usize % 4) % 4 + 1;
    buf[start..start + b.len()].copy_from_slice(&b);
    assert!(matches!(
        Model::parse_prechecked(&buf[start..start + b.len()]),
        Err(Error::Misaligned { .. })
    ));
}

fn set16(b: &mut [u8], off: usize, v: usize) {
    b[off..off + 2].copy_from_slice(&(v as u16).to_le_bytes());
}

fn set32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn field(b: &[u8], off: usize) -> usize {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize
}

/// The number of strings in a blob's table.
fn string_count(b: &[u8]) -> usize {
    let (off, len) = (field(b, header::STRINGS_OFF), field(b, header::STRINGS_LEN));
    let s = &b[off..off + len];
    let (mut at, mut n) = (0, 0);
    while at < s.len() {
        at += 2 + u16::from_le_bytes([s[at], s[at + 1]]) as usize;
        n += 1;
    }
    n
}

/// The valid blob edited, its checksum fixed, parsed.
fn parse_edited(edit: impl Fn(&mut Vec<u8>)) -> Result<(), Error> {
    let mut b = blob();
    edit(&mut b);
    fix_crc(&mut b);
    Model::parse(AlignedBytes::from(b).as_bytes()).map(|_| ())
}

#[track_caller]
fn assert_invalid(r: Result<(), Error>, want: &str) {
    match r {
        Err(Error::InvalidModel { what, .. }) if what == want => {}
        other => panic!("wanted the invalid model error {want:?}, got {other:?}"),
    }
}

/// Each check of the header's metadata takes values up to its bound and
/// names the fault one past it.
#[test]
fn metadata_is_checked_up_to_its_bounds() {
    let n = string_count(&blob());
    assert!(n >= 2, "the test model has its name and strings");
    // The name: any string, or none.
    parse_edited(|b| set16(b, header::NAME, n - 1)).unwrap();
    parse_edited(|b| set16(b, header::NAME, 0xffff)).unwrap();
    assert_invalid(
        parse_edited(|b| set16(b, header::NAME, n)),
        "model name string",
    );
    // Class labels ending at the last string, or none wherever they start.
    let labels = |first: usize, count: usize| {
        parse_edited(move |b| {
            set16(b, header::LABELS_FIRST, first);
            set16(b, header::N_LABELS, count);
        })
    };
    labels(n - 2, 2).unwrap();
    labels(n + 7, 0).unwrap();
    let outside = "class labels outside the string table";
    assert_invalid(labels(n - 1, 2), outside);
    assert_invalid(labels(n, 1), outside);
    // The input normalisation must be finite.
    let norm = |scale: f32, offset: f32| {
        parse_edited(move |b| {
            set32(b, header::NORM_SCALE, scale.to_bits());
            set32(b, header::NORM_OFFSET, offset.to_bits());
        })
    };
    norm(0.5, -1.0).unwrap();
    let not_finite = "input normalisation not finite";
    assert_invalid(norm(f32::NAN, 0.0), not_finite);
    assert_invalid(norm(1.0, f32::INFINITY), not_finite);
    assert_invalid(norm(f32::NEG_INFINITY, 0.0), not_finite);
}

/// The lengths in the header: the blob's own, and the total it records.
#[test]
fn header_lengths_name_their_fault() {
    let b = blob();
    let total = b.len();
    let short = AlignedBytes::from(&b[..10]);
    assert_eq!(
        Model::parse(short.as_bytes()).err(),
        Some(Error::Truncated {
            needed: header::TRAIN_LEN + 4,
            got: 10
        })
    );
    // A blob of just the header: too short for the total it records.
    let head = AlignedBytes::from(&b[..header::TRAIN_LEN + 4]);
    assert_eq!(
        Model::parse(head.as_bytes()).err(),
        Some(Error::Truncated {
            needed: total,
            got: header::TRAIN_LEN + 4
        })
    );
    let header_len = header::TRAIN_LEN + 4;
    assert_invalid(
        parse_edited(|b| set32(b, header::TOTAL_LEN, header_len as u32 - 1)),
        "total length below the header",
    );
    // A total of just the header passes that check; its sections do not fit.
    let just_header = parse_edited(|b| {
        b.truncate(header_len);
        set32(b, header::TOTAL_LEN, header_len as u32);
    });
    assert!(
        matches!(just_header, Err(Error::Truncated { got, .. }) if got == header_len),
        "{just_header:?}"
    );
}

/// A model input or output index must name a tensor: the last one does,
/// one past it does not.
#[test]
fn model_inputs_must_be_tensors() {
    let b = blob();
    let lists = field(&b, header::LISTS_OFF);
    let tensors = u16::from_le_bytes([b[header::N_TENSORS], b[header::N_TENSORS + 1]]) as usize;
    assert_invalid(
        parse_edited(|b| set16(b, lists, tensors)),
        "model input or output is not a tensor",
    );
    assert!(parse_edited(|b| set16(b, lists, tensors - 1)).is_err());
    // The last output too.
    let n = |off: usize| u16::from_le_bytes([b[off], b[off + 1]]) as usize;
    let last = lists + 2 * (n(header::N_INPUTS) + n(header::N_OUTPUTS) - 1);
    assert_invalid(
        parse_edited(|b| set16(b, last, tensors)),
        "model input or output is not a tensor",
    );
}

/// The header's counts: no inputs or outputs, lists too short for them,
/// tables longer than their sections' room.
#[test]
fn header_counts_name_their_fault() {
    let b = blob();
    let n = |off: usize| u16::from_le_bytes([b[off], b[off + 1]]) as usize;
    let io = "a model needs at least one input and one output";
    assert_invalid(parse_edited(|b| set16(b, header::N_INPUTS, 0)), io);
    assert_invalid(parse_edited(|b| set16(b, header::N_OUTPUTS, 0)), io);
    let needed = n(header::N_INPUTS) + n(header::N_OUTPUTS);
    let short = "index lists shorter than the inputs and outputs";
    assert_invalid(
        parse_edited(|b| set32(b, header::LISTS_LEN, needed as u32 - 1)),
        short,
    );
    // Just long enough for them passes that check (and fails the ops').
    match parse_edited(|b| set32(b, header::LISTS_LEN, needed as u32)) {
        Err(Error::InvalidModel { what, .. }) => assert_ne!(what, short),
        other => panic!("{other:?}"),
    }
    // One more tensor or op record runs into the next section.
    for (count, next) in [(header::N_TENSORS, 1), (header::N_OPS, 2)] {
        match parse_edited(|b| set16(b, count, n(count) + 1)) {
            Err(Error::InvalidModel { what, index }) => {
                assert_eq!(
                    (what, index),
                    ("sections overlap or are out of order", next)
                )
            }
            other => panic!("{other:?}"),
        }
    }
}

/// A string table cut inside an entry's length is refused.
#[test]
fn a_string_table_cut_inside_a_length_is_refused() {
    let b = blob();
    let len = field(&b, header::STRINGS_LEN);
    let (off, mut at, mut last) = (field(&b, header::STRINGS_OFF), 0, 0);
    while at < len {
        last = at;
        at += 2 + u16::from_le_bytes([b[off + at], b[off + at + 1]]) as usize;
    }
    assert_invalid(
        parse_edited(|b| set32(b, header::STRINGS_LEN, last as u32 + 1)),
        "string table entry truncated",
    );
}

/// A model of two inputs added, with an empty string (its second class
/// label).
fn two_inputs() -> Vec<u8> {
    use picocnn::model::writer::{ModelBuilder, TensorType};
    use picocnn::{Activation, Shape};
    let mut b = ModelBuilder::new("two inputs");
    let x = b.input(Shape::new(2, 2, 1), TensorType::F32);
    let y = b.input(Shape::new(2, 2, 1), TensorType::F32);
    let z = b
        .add("add", x, y, Activation::None, TensorType::F32)
        .unwrap();
    b.output(z).labels(&["a", ""]);
    b.finish().unwrap()
}

/// Two distinct inputs and an empty string are taken; the same tensor
/// listed as both inputs is not.
#[test]
fn inputs_are_distinct_and_empty_strings_are_strings() {
    let b = two_inputs();
    let aligned = AlignedBytes::from(&b[..]);
    let model = Model::parse(aligned.as_bytes()).unwrap();
    assert_eq!(model.input_count(), 2);
    assert_eq!(model.label(1), Some(""));
    let lists = field(&b, header::LISTS_OFF);
    let mut c = b.clone();
    c.copy_within(lists..lists + 2, lists + 2);
    fix_crc(&mut c);
    match Model::parse(AlignedBytes::from(c).as_bytes()) {
        Err(Error::InvalidModel { what, index: 1 }) => assert_eq!(what, "model input listed twice"),
        other => panic!("{:?}", other.err()),
    }
}
