//! Integer fine-tuning of a deployed int8 model (`no_std`, no heap): the
//! building blocks of on-device learning.
//!
//! The forward pass is the deployed int8 kernels. The backward pass and the
//! update are integer arithmetic:
//! - [`loss`]: softmax cross-entropy from the int8 softmax output, its
//!   gradient exact in 1/256ths and the loss in Q4.12;
//! - [`dense`]: a dense layer's update with quantization-aware scaling (one
//!   learning rate for every layer, each int8 step following the float
//!   update) and seeded stochastic rounding, and the gradient at its input
//!   for the layer below.
//!
//! Every result depends only on the inputs and the seed, so a host and a
//! board that see the same samples hold the same weights afterwards.
//!
//! ```
//! use picocnn::learn::dense::{DenseParams, Steps};
//! use picocnn::learn::loss::{softmax_error, GRADIENT_SCALE};
//! use picocnn::rng::Rng;
//!
//! // A 3-input, 2-class layer that answered 3/4 for class 1; the label is 0.
//! let (x, input_zero_point) = ([-128i8, 0, 127], -128);
//! let probs: [i8; 2] = [-64, 64]; // p_q + 128 = 64, 192
//! let mut grad = [0i32; 2];
//! softmax_error(&probs, 0, &mut grad)?;
//!
//! let steps = [Steps::new(0.1, GRADIENT_SCALE, 0.02, 0.01)?; 2];
//! let (mut weights, mut bias) = ([0i8; 6], [0i32; 2]);
//! let mut layer = DenseParams { weights: &mut weights, bias: &mut bias };
//! layer.update(&x, input_zero_point, &grad, &steps, &mut Rng::new(1))?;
//! // Class 0's weights rose where the input was on, class 1's fell.
//! assert!(weights[2] > 0 && weights[5] < 0);
//! assert_eq!((weights[0], weights[3]), (0, 0));
//! # Ok::<(), picocnn::Error>(())
//! ```

mod backward;
mod chain;
pub mod dense;
pub mod loss;
mod tuner;

pub use chain::TrainableSet;
pub use tuner::{FineTuner, StepReport};

use crate::error::Result;
use crate::model::format::{header, op as op_field, OP_LEN};
use crate::model::{crc32, DType, Model, OpKind, Train};

/// Records `set` in `blob` (a parsed model's bytes in RAM): the train mark
/// of every op and the training memory, then the checksum; returns that
/// memory ([`FineTuner::train_len`] of the result). `TrainableSet::Last {
/// weights: 0, biases: 0 }` clears the record. An error leaves `blob` as
/// it was.
///
/// ```
/// use picocnn::learn::{record_trainable, FineTuner, TrainableSet};
/// use picocnn::model::Model;
///
/// let mut blob = std::fs::read("tests/models/lenet5_mnist_i8.pcnn")?;
/// let set = TrainableSet::Last { weights: 1, biases: usize::MAX };
/// let len = record_trainable(&mut blob, set)?;
/// let bytes = picocnn::model::writer::AlignedBytes::from(blob);
/// let model = Model::parse(bytes.as_bytes())?;
/// assert_eq!(model.train_len(), len);
/// assert_eq!(FineTuner::train_len(&model)?, len);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn record_trainable(blob: &mut [u8], set: TrainableSet) -> Result<usize> {
    let clear = set
        == TrainableSet::Last {
            weights: 0,
            biases: 0,
        };
    let (n, first, len) = {
        let model = Model::parse(blob)?;
        let len = if clear {
            0
        } else {
            FineTuner::train_len_for(&model, set)?
        };
        (model.op_count(), model.op_record_offset(0), len)
    };
    let len32 = u32::try_from(len).map_err(|_| crate::Error::Overflow)?;
    if let TrainableSet::Last { weights, biases } = set {
        // The same marks as `TrainableSet::of`, from the record bytes.
        let weighted = |blob: &[u8], i: usize| {
            let r = &blob[first + i * OP_LEN..];
            let kind = r[op_field::KIND];
            (kind == OpKind::Conv2d as u8 || kind == OpKind::Dense as u8)
                && r[op_field::DTYPE] == DType::I8 as u8
        };
        for i in 0..n {
            let rank = (i..n).filter(|&j| weighted(blob, j)).count();
            let mark = if clear || !weighted(blob, i) {
                Train::Frozen
            } else if rank <= weights {
                Train::All
            } else if rank - weights <= biases {
                Train::Bias
            } else {
                Train::Frozen
            };
            blob[first + i * OP_LEN + op_field::TRAIN] = mark as u8;
        }
    }
    blob[header::TRAIN_LEN..header::TRAIN_LEN + 4].copy_from_slice(&len32.to_le_bytes());
    let sum = crc32(&blob[16..]);
    blob[header::CRC..header::CRC + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(len)
}
