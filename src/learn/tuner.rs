//! Fine-tuning a deployed int8 classifier's last dense layer in place.
//!
//! The model runs with the deployed kernels; the last dense layer (the one
//! feeding the final int8 softmax) takes its weights and biases from RAM,
//! its input is kept, and after each labelled sample [`FineTuner::step`]
//! updates those weights with [`DenseParams::update`]. All the memory is
//! the caller's: the inference arena and a training buffer of
//! [`FineTuner::train_len`] bytes (the layer's weights and biases, its
//! saved input, the gradient and the per-channel steps).

use super::dense::{DenseParams, Steps};
use super::loss::{cross_entropy_q12, softmax_error, GRADIENT_SCALE};
use crate::error::{Error, Result};
use crate::model::{Element, Interpreter, Layer, Model, OpKind};
use crate::ops::dense::{Dense, DenseI8};
use crate::ops::WeightsI8;
use crate::quant::Requant;
use crate::rng::Rng;

/// What one training step saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StepReport {
    /// The class the model gave before the update.
    pub predicted: usize,
    /// The loss before the update, `-ln p_label` in Q4.12.
    pub loss_q12: u32,
}

/// The layer a [`FineTuner`] trains, as found in the model.
#[derive(Debug, Clone, Copy)]
struct Target<'m> {
    op: usize,
    /// Its input and output tensors.
    input: usize,
    output: usize,
    output_zero_point: i32,
    clamp: crate::quant::Clamp,
    inputs: usize,
    outputs: usize,
    input_zero_point: i32,
    input_scale: f32,
    output_scale: f32,
    beta: f32,
    filter: &'m [i8],
    bias: &'m [i32],
    multiplier: &'m [i32],
    shift: &'m [i32],
    /// Blob offsets of the filter and the bias.
    filter_at: usize,
    bias_at: usize,
}

fn unsupported() -> Error {
    Error::Unsupported {
        what: "fine-tuning needs a model ending in an int8 dense layer and an int8 softmax",
    }
}

impl<'m> Target<'m> {
    fn find(model: &Model<'m>) -> Result<Target<'m>> {
        let out = model.output(0).ok_or(unsupported())?;
        let n = model.op_count();
        let softmax = (0..n)
            .map(|i| model.op(i))
            .find(|op| op.output == out)
            .ok_or(unsupported())?;
        let beta = match model.layer(&softmax) {
            Layer::Softmax { beta } if softmax.dtype == crate::model::DType::I8 => beta,
            _ => return Err(unsupported()),
        };
        let logits = model.op_input(&softmax, 0);
        let op = (0..n)
            .find(|&i| model.op(i).output == logits)
            .ok_or(unsupported())?;
        let dense = model.op(op);
        if dense.kind != OpKind::Dense || dense.dtype != crate::model::DType::I8 {
            return Err(unsupported());
        }
        let x = model.tensor(model.op_input(&dense, 0));
        let y = model.tensor(dense.output);
        let (xq, yq) = match (x.qparams, y.qparams) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(unsupported()),
        };
        let (inputs, outputs) = (x.shape.len(), y.shape.len());
        let p = &dense.params;
        let i32s = |off: u32| -> Result<&'m [i32]> {
            bytemuck::try_cast_slice(model.data_bytes(off, outputs * 4)).map_err(|_| {
                Error::Misaligned {
                    what: "dense tables",
                }
            })
        };
        Ok(Target {
            op,
            input: model.op_input(&dense, 0),
            output: dense.output,
            output_zero_point: yq.zero_point,
            clamp: dense.activation.range_i8(yq),
            inputs,
            outputs,
            input_zero_point: xq.zero_point,
            input_scale: xq.scale,
            output_scale: yq.scale,
            beta,
            filter: bytemuck::cast_slice(model.data_bytes(p[7], inputs * outputs)),
            bias: i32s(p[8])?,
            multiplier: i32s(p[9])?,
            shift: i32s(p[10])?,
            filter_at: model.data_offset() + p[7] as usize,
            bias_at: model.data_offset() + p[8] as usize,
        })
    }

    /// Bytes of the training buffer, for a buffer at any address.
    fn train_len(&self) -> usize {
        // weights, saved input, kernel scratch (bytes); bias, gradient, 4
        // step words (i32), with up to 3 bytes of alignment before each.
        let scratch = Dense::from_checked(self.inputs, self.outputs).scratch_len_i8();
        self.inputs * self.outputs + self.inputs + scratch + 6 * 4 * self.outputs + 3 * 3
    }
}

/// Takes `n` values of `T` off the front of `buf`, aligned.
fn take<'b, T: Element>(buf: &mut &'b mut [u8], n: usize) -> Result<&'b mut [T]> {
    let b = core::mem::take(buf);
    let pad = b.as_ptr().align_offset(core::mem::align_of::<T>());
    let bytes = n * core::mem::size_of::<T>();
    if pad.checked_add(bytes).is_none_or(|end| end > b.len()) {
        return Err(Error::ArenaTooSmall {
            needed: pad + bytes,
            got: b.len(),
        });
    }
    let (part, rest) = b[pad..].split_at_mut(bytes);
    *buf = rest;
    bytemuck::try_cast_slice_mut(part).map_err(|_| Error::Misaligned {
        what: "training buffer",
    })
}

/// Fine-tunes the last dense layer of a deployed int8 classifier.
///
/// ```
/// use picocnn::learn::FineTuner;
/// use picocnn::model::Model;
/// # #[repr(C, align(16))]
/// # struct Aligned<T: ?Sized>(T);
/// # static BLOB: &Aligned<[u8]> =
/// #     &Aligned(*include_bytes!("../../tests/models/lenet5_mnist_i8.pcnn"));
///
/// let model = Model::parse(&BLOB.0)?;
/// let mut arena = vec![0u8; model.arena_len()];
/// let mut train = vec![0u8; FineTuner::train_len(&model)?];
/// let mut tuner = FineTuner::new(&model, &mut arena, &mut train, 0.01, 1)?;
/// tuner.input_mut::<i8>()?.fill(-128); // a blank image
/// let report = tuner.step(3)?;
/// assert!(report.predicted < 10);
/// # Ok::<(), picocnn::Error>(())
/// ```
pub struct FineTuner<'m, 'a, 't> {
    interp: Interpreter<'m, 'a>,
    target: Target<'m>,
    weights: &'t mut [i8],
    bias: &'t mut [i32],
    saved: &'t mut [i8],
    scratch: &'t mut [u8],
    grad: &'t mut [i32],
    /// Per channel: weight multiplier and shift, bias multiplier and shift.
    steps: &'t mut [i32],
    rng: Rng,
}

impl<'m, 'a, 't> FineTuner<'m, 'a, 't> {
    /// Bytes of the training buffer `new` needs for `model`.
    pub fn train_len(model: &Model<'m>) -> Result<usize> {
        Ok(Target::find(model)?.train_len())
    }

    /// A tuner over `model` in the inference `arena`, with its training
    /// state in `train`; learning rate `lr`, rounding drawn from `seed`.
    /// The layer's weights start as the model's.
    pub fn new(
        model: &Model<'m>,
        arena: &'a mut [u8],
        train: &'t mut [u8],
        lr: f32,
        seed: u64,
    ) -> Result<Self> {
        let target = Target::find(model)?;
        let (n, m) = (target.inputs, target.outputs);
        let mut buf = train;
        let weights = take::<i8>(&mut buf, n * m)?;
        let saved = take::<i8>(&mut buf, n)?;
        let scratch_len = Dense::new(n, m)?.scratch_len_i8();
        let scratch = take::<i8>(&mut buf, scratch_len)?;
        let bias = take::<i32>(&mut buf, m)?;
        let grad = take::<i32>(&mut buf, m)?;
        let steps = take::<i32>(&mut buf, 4 * m)?;
        weights.copy_from_slice(target.filter);
        bias.copy_from_slice(target.bias);
        // What every forward pass then builds without checks.
        DenseI8::new(
            Dense::new(n, m)?,
            WeightsI8 {
                filter: weights,
                bias,
                multiplier: target.multiplier,
                shift: target.shift,
            },
            target.input_zero_point,
            target.output_zero_point,
            target.clamp,
        )?;
        let grad_scale = GRADIENT_SCALE * target.beta;
        for (o, s) in steps.chunks_exact_mut(4).enumerate() {
            // s_w = (s_x s_w / s_y) * s_y / s_x, from the stored requantization.
            let r = Requant {
                multiplier: target.multiplier[o],
                shift: target.shift[o],
            };
            let real = r.multiplier as f64 * libm::exp2((r.shift - 31) as f64);
            let s_w = real * f64::from(target.output_scale) / f64::from(target.input_scale);
            let st = Steps::new(lr, grad_scale, target.input_scale, s_w as f32)?;
            s.copy_from_slice(&st.words());
        }
        Ok(FineTuner {
            interp: Interpreter::new(model, arena)?,
            target,
            weights,
            bias,
            saved,
            scratch: bytemuck::cast_slice_mut(scratch),
            grad,
            steps,
            rng: Rng::new(seed),
        })
    }

    /// The model's input, to write before [`step`](Self::step) or
    /// [`predict`](Self::predict).
    pub fn input_mut<T: Element>(&mut self) -> Result<&mut [T]> {
        self.interp.input_mut(0)
    }

    /// Runs the model with the tuned layer; the softmax output. The ops
    /// below the layer and above it are the deployed ones; the layer runs
    /// the int8 dense kernel on the RAM weights and keeps its input.
    fn forward(&mut self) -> Result<&[i8]> {
        let t = &self.target;
        let n_ops = self.interp.model().op_count();
        self.interp.run_ops(0..t.op, &mut |_| {})?;
        self.saved
            .copy_from_slice(bytemuck::cast_slice(self.interp.tensor_bytes(t.input)));
        let weights = WeightsI8 {
            filter: self.weights,
            bias: self.bias,
            multiplier: t.multiplier,
            shift: t.shift,
        };
        // Checked once in `new`; the RAM copies keep the lengths.
        let layer = DenseI8::from_checked(
            Dense::from_checked(t.inputs, t.outputs),
            weights,
            t.input_zero_point,
            t.output_zero_point,
            t.clamp,
        );
        let out = bytemuck::cast_slice_mut(self.interp.tensor_bytes_mut(t.output));
        layer.run(self.saved, out, self.scratch)?;
        self.interp.run_ops(t.op + 1..n_ops, &mut |_| {})?;
        self.interp.output::<i8>(0)
    }

    /// The class the tuned model gives the current input.
    pub fn predict(&mut self) -> Result<usize> {
        Ok(argmax(self.forward()?))
    }

    /// Runs the tuned model on the current input: its int8 softmax output.
    pub fn infer(&mut self) -> Result<&[i8]> {
        self.forward()
    }

    /// One step of SGD on the current input with its `label`: the report is
    /// the prediction and loss before the update.
    pub fn step(&mut self, label: usize) -> Result<StepReport> {
        let probs = self.forward()?;
        let report = StepReport {
            predicted: argmax(probs),
            loss_q12: cross_entropy_q12(probs, label)?,
        };
        let probs: &[i8] = self.interp.output::<i8>(0)?;
        softmax_error(probs, label, self.grad)?;
        let n = self.target.inputs;
        // One output channel at a time: the steps stay words in the
        // training buffer.
        for (o, s) in self.steps.chunks_exact(4).enumerate() {
            let steps = [Steps::from_words([s[0], s[1], s[2], s[3]])];
            let mut channel = DenseParams {
                weights: &mut self.weights[o * n..(o + 1) * n],
                bias: &mut self.bias[o..o + 1],
            };
            channel.update(
                self.saved,
                self.target.input_zero_point,
                &self.grad[o..o + 1],
                &steps,
                &mut self.rng,
            )?;
        }
        Ok(report)
    }

    /// The tuned layer's weights (`[out][in]`) and biases.
    pub fn params(&self) -> (&[i8], &[i32]) {
        (self.weights, self.bias)
    }

    /// Writes the tuned weights and biases into `blob`, a copy of the
    /// model's bytes in RAM (any alignment), and updates its checksum; the
    /// result parses as the tuned model. A blob that differs from the
    /// model's anywhere else is an error and is left as it was.
    pub fn write_into(&self, blob: &mut [u8]) -> Result<()> {
        let bytes = self.interp.model().bytes();
        let t = &self.target;
        let weights = t.filter_at..t.filter_at + t.inputs * t.outputs;
        let bias = t.bias_at..t.bias_at + 4 * t.outputs;
        let crc = crate::model::format::header::CRC;
        let ours =
            |i: usize| weights.contains(&i) || bias.contains(&i) || (crc..crc + 4).contains(&i);
        if blob.len() != bytes.len()
            || blob
                .iter()
                .zip(bytes)
                .enumerate()
                .any(|(i, (a, b))| a != b && !ours(i))
        {
            return Err(Error::InvalidParameter {
                what: "the blob to write into is not the tuned model's",
            });
        }
        blob[weights].copy_from_slice(bytemuck::cast_slice(self.weights));
        for (k, b) in self.bias.iter().enumerate() {
            blob[t.bias_at + 4 * k..t.bias_at + 4 * k + 4].copy_from_slice(&b.to_le_bytes());
        }
        let sum = crate::model::crc32(&blob[16..]);
        blob[crc..crc + 4].copy_from_slice(&sum.to_le_bytes());
        Ok(())
    }
}

fn argmax(v: &[i8]) -> usize {
    (0..v.len()).fold(0, |b, k| if v[k] > v[b] { k } else { b })
}
