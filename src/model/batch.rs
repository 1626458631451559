//! Many images through one model, split over threads (`std`): each thread
//! takes whole images with its own arena and [`Interpreter`], so the
//! results are those of one interpreter running the images one by one.
//!
//! ```
//! # fn main() -> picocnn::Result<()> {
//! use picocnn::model::{batch, Model};
//!
//! let blob = picocnn::model::writer::AlignedBytes::from(
//!     &include_bytes!("../../tests/models/lenet5_mnist_i8.pcnn")[..],
//! );
//! let model = Model::parse(blob.as_bytes())?;
//! let (n_in, n_out) = (28 * 28, 10);
//! let images = vec![0i8; 8 * n_in];
//! let mut scores = vec![0i8; 8 * n_out];
//! batch::run::<i8, i8>(&model, &images, &mut scores, 2)?;
//! // Each image's scores equal a single run's.
//! let mut arena = vec![0u8; model.arena_len()];
//! let mut it = picocnn::model::Interpreter::new(&model, &mut arena)?;
//! it.input_mut::<i8>(0)?.copy_from_slice(&images[..n_in]);
//! it.run()?;
//! assert_eq!(it.output::<i8>(0)?, &scores[..n_out]);
//! # Ok(())
//! # }
//! ```

use std::vec;

use rayon::prelude::*;

use super::{Element, Interpreter, Model};
use crate::error::{Error, Result};

/// Runs `inputs` (images one after another, each the model's input
/// tensor) through `model` into `outputs` (each image's output tensor in
/// turn), on `threads` threads (`0`: as many as rayon's global pool has).
/// For models with one input and one output.
pub fn run<I: Element + Sync, O: Element + Send>(
    model: &Model<'_>,
    inputs: &[I],
    outputs: &mut [O],
    threads: usize,
) -> Result<()> {
    if model.input_count() != 1 || model.output_count() != 1 {
        return Err(Error::Unsupported {
            what: "a batch runs models with one input and one output",
        });
    }
    let len = |t: Option<usize>, size: usize| {
        t.map(|t| model.tensor(t).byte_len() / size)
            .ok_or(Error::WrongTensor {
                what: "no model input or output with that index",
            })
    };
    let n_in = len(model.input(0), core::mem::size_of::<I>())?;
    let n_out = len(model.output(0), core::mem::size_of::<O>())?;
    if n_in == 0 || !inputs.len().is_multiple_of(n_in) {
        return Err(Error::ShapeMismatch {
            what: "batch inputs (a whole number of the model's input tensor)",
            expected: n_in * (inputs.len() / n_in.max(1)).max(1),
            got: inputs.len(),
        });
    }
    let images = inputs.len() / n_in;
    if outputs.len() != images * n_out {
        return Err(Error::ShapeMismatch {
            what: "batch outputs (the model's output tensor per image)",
            expected: images * n_out,
            got: outputs.len(),
        });
    }
    // The element types are checked once, before any thread starts.
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(model, &mut arena)?;
    it.input_mut::<I>(0)?;
    it.output::<O>(0)?;
    if images == 0 {
        return Ok(());
    }
    let mut work = || -> Result<()> {
        inputs
            .par_chunks(n_in)
            .zip(outputs.par_chunks_mut(n_out))
            .try_for_each_init(
                || vec![0u8; model.arena_len()],
                |arena, (x, y)| {
                    let mut it = Interpreter::new(model, arena)?;
                    it.input_mut::<I>(0)?.copy_from_slice(x);
                    it.run()?;
                    y.copy_from_slice(it.output::<O>(0)?);
                    Ok(())
                },
            )
    };
    if threads == 0 {
        return work();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|_| Error::Unsupported {
            what: "cannot start the batch's threads",
        })?;
    pool.install(&mut work)
}
