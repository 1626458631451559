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

pub mod dense;
pub mod loss;
mod tuner;

pub use tuner::{FineTuner, StepReport};
