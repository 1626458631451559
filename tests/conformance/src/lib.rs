//! Conformance cases for picocnn's kernels.
//!
//! The same cases run on the host (`cargo test`) and inside firmware under
//! QEMU (`cargo xtask qemu`). Each case reports an FNV-1a digest of its
//! output bytes; the host compares the firmware's digests with its own, so
//! int8 and float results must be bit-identical across targets.
//!
//! Two kinds of case:
//! - TensorFlow Lite vectors (`tests/vectors/tflite`, turned into static data
//!   by `build.rs`): the output must equal TensorFlow Lite's, byte for byte.
//! - Generated cases: seeded random tensors through every kernel and
//!   precision, including shapes TensorFlow Lite does not produce (groups,
//!   explicit padding, requantizing concat); their reference is the host.
#![no_std]
#![deny(missing_docs)]

mod bump;
mod generated;
mod models;
mod vectors;

pub use bump::Bump;
pub use vectors::{run as run_vector, Filter, Op, Tensor, VectorCase, TFLITE_CASES};

use picocnn::Error;

/// What one case produced.
pub struct Outcome<'a> {
    /// Case name, unique.
    pub name: &'a str,
    /// FNV-1a 32 digest of the output bytes.
    pub digest: u32,
    /// `Some(true)` when the output equals the stored expected output,
    /// `Some(false)` when it differs, `None` when the case has no stored output.
    pub matches_expected: Option<bool>,
    /// Set when the kernel returned an error.
    pub error: Option<Error>,
    /// Arena bytes the case needs (model cases; 0 for kernel cases).
    pub arena_needed: usize,
    /// True when the arena was too small for the case, which did not run.
    pub skipped: bool,
}

/// FNV-1a, 32 bits.
pub fn digest(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// Number of cases `run_all` reports.
pub fn case_count() -> usize {
    TFLITE_CASES.len() + generated::CASES.len() + models::case_count()
}

/// Runs every case, using `arena` for inputs, outputs and scratch, and calls
/// `report` once per case.
pub fn run_all(arena: &mut [u8], report: &mut dyn FnMut(&Outcome<'_>)) {
    for case in TFLITE_CASES {
        let mut bump = Bump::new(arena);
        let outcome = match vectors::run(case, &mut bump) {
            Ok(out) => Outcome {
                name: case.name,
                digest: digest(bytemuck_i8(out)),
                matches_expected: Some(out == case.output.data_i8()),
                error: None,
                arena_needed: 0,
                skipped: false,
            },
            Err(e) => failed(case.name, e),
        };
        report(&outcome);
    }
    for (name, run) in generated::CASES {
        let mut bump = Bump::new(arena);
        let outcome = match run(&mut bump) {
            Ok(out) => Outcome {
                name,
                digest: digest(out),
                matches_expected: None,
                error: None,
                arena_needed: 0,
                skipped: false,
            },
            Err(e) => failed(name, e),
        };
        report(&outcome);
    }
    models::run_all(arena, report);
}

fn failed(name: &str, e: Error) -> Outcome<'_> {
    Outcome {
        name,
        digest: 0,
        matches_expected: Some(false),
        error: Some(e),
        arena_needed: 0,
        skipped: false,
    }
}

fn bytemuck_i8(v: &[i8]) -> &[u8] {
    bump::bytes(v)
}
