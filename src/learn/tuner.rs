//! Fine-tuning a deployed int8 classifier in place.
//!
//! The trainable set (recorded in the blob, or given) names the ops whose
//! weights and biases, or biases only, are updated. The model runs with the
//! deployed kernels, the trained ops with their parameters in RAM; every op
//! from the lowest trained one to the softmax keeps what its backward pass
//! needs (its input where its weights train or where it is a max pool, its
//! output where an activation cuts gradients). After each labelled sample
//! [`FineTuner::step`] runs the integer backward pass ([`super::backward`])
//! and updates the parameters with quantization-aware steps
//! ([`super::dense::Steps`]). All the memory is the caller's: the inference
//! arena, which also holds the gradients where it has room beside the
//! model's input and output, and a training buffer of
//! [`FineTuner::train_len`] bytes.

use super::chain::{align8, Chain, Layout, TrainableSet};
use super::loss::{cross_entropy_q12, GRADIENT_SCALE};
use super::update::{params, Expect, Sgd};
use crate::error::{Error, Result};
use crate::model::{Element, Interpreter, Model, Train, Tuned};
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

pub(super) fn word(buf: &[u8], i: usize) -> usize {
    let mut w = [0u8; 4];
    w.copy_from_slice(&buf[4 * i..4 * i + 4]);
    u32::from_ne_bytes(w) as usize
}

fn set_word(buf: &mut [u8], i: usize, v: usize) {
    buf[4 * i..4 * i + 4].copy_from_slice(&(v as u32).to_ne_bytes());
}

/// A table entry for a tensor that is not kept.
pub(super) const NOT_KEPT: usize = u32::MAX as usize;

/// Fine-tunes a deployed int8 classifier's trainable set.
///
/// ```
/// use picocnn::learn::{FineTuner, TrainableSet};
/// use picocnn::model::Model;
/// # #[repr(C, align(16))]
/// # struct Aligned<T: ?Sized>(T);
/// # static BLOB: &Aligned<[u8]> =
/// #     &Aligned(*include_bytes!("../../tests/models/lenet5_mnist_i8.pcnn"));
///
/// let model = Model::parse(&BLOB.0)?;
/// // The last dense layer's weights, and the biases of every layer below.
/// let set = TrainableSet::Last { weights: 1, biases: usize::MAX };
/// let mut arena = vec![0u8; model.arena_len()];
/// let mut train = vec![0u8; FineTuner::train_len_for(&model, set)?];
/// let mut tuner = FineTuner::with_set(&model, set, &mut arena, &mut train, 0.01, 1)?;
/// tuner.input_mut::<i8>()?.fill(-128); // a blank image
/// let report = tuner.step(3)?;
/// assert!(report.predicted < 10);
/// # Ok::<(), picocnn::Error>(())
/// ```
pub struct FineTuner<'m, 'a, 't> {
    pub(super) interp: Interpreter<'m, 'a>,
    pub(super) chain: Chain,
    pub(super) layout: Layout,
    /// The training buffer from its 8-aligned start.
    pub(super) buf: &'t mut [u8],
    rng: Rng,
}

impl<'m, 'a, 't> FineTuner<'m, 'a, 't> {
    /// Bytes of the training buffer [`new`](Self::new) needs for the set
    /// recorded in `model` (what [`Model::train_len`] records).
    pub fn train_len(model: &Model<'m>) -> Result<usize> {
        Self::train_len_for(model, TrainableSet::Recorded)
    }

    /// Bytes of the training buffer for `set`.
    pub fn train_len_for(model: &Model<'m>, set: TrainableSet) -> Result<usize> {
        Chain::find(model, set)?.train_len(model)
    }

    /// A tuner of the set recorded in `model`, in the inference `arena`,
    /// with its training state in `train`; learning rate `lr` (the float
    /// SGD rate the integer steps follow), rounding drawn from `seed`.
    pub fn new(
        model: &Model<'m>,
        arena: &'a mut [u8],
        train: &'t mut [u8],
        lr: f32,
        seed: u64,
    ) -> Result<Self> {
        Self::with_set(model, TrainableSet::Recorded, arena, train, lr, seed)
    }

    /// A tuner of `set` (to try other sets than the recorded one). Not
    /// inlined: the set-up's frame stays off the training step's stack.
    #[inline(never)]
    pub fn with_set(
        model: &Model<'m>,
        set: TrainableSet,
        arena: &'a mut [u8],
        train: &'t mut [u8],
        lr: f32,
        seed: u64,
    ) -> Result<Self> {
        let chain = Chain::find(model, set)?;
        let layout = chain.layout(model)?;
        let needed = layout.end + 7;
        if set == TrainableSet::Recorded && model.train_len() != needed {
            return Err(Error::InvalidModel {
                what: "the recorded training memory differs from the fine-tuner's",
                index: 0,
            });
        }
        let pad = train.as_ptr().align_offset(8);
        if pad > train.len() || train.len() - pad < layout.end {
            return Err(Error::ArenaTooSmall {
                needed,
                got: train.len(),
            });
        }
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(Error::InvalidParameter {
                what: "learning rate must be positive",
            });
        }
        let buf = &mut train[pad..pad + layout.end];
        buf.fill(0);
        let mut tuner = FineTuner {
            interp: Interpreter::new(model, arena)?,
            chain,
            layout,
            buf,
            rng: Rng::new(seed),
        };
        tuner.prepare(lr)?;
        Ok(tuner)
    }

    /// Writes the table, the RAM copies of the trained parameters and their
    /// update steps.
    fn prepare(&mut self, lr: f32) -> Result<()> {
        let model = *self.interp.model();
        let c = self.chain;
        let links = c.softmax - c.lo + 1;
        let (mut p_at, mut s_at) = (16 * links, self.layout.saved);
        for k in c.lo..=c.softmax {
            let i = k - c.lo;
            set_word(self.buf, 4 * i, p_at);
            if c.keeps(&model, k)? {
                set_word(self.buf, 4 * i + 1, s_at);
                let t = if k < c.softmax {
                    c.link(&model, k)?.input
                } else {
                    c.link(&model, k - 1)?.output
                };
                s_at += align8(t.byte_len());
            } else {
                set_word(self.buf, 4 * i + 1, NOT_KEPT);
            }
            if k == c.softmax {
                break;
            }
            let link = c.link(&model, k)?;
            if let (Some(w), Some(p)) = (link.weights(), params(self.buf, p_at, &link)) {
                let mut filter_len = 0;
                if let Some(f) = p.filter {
                    f.copy_from_slice(w.filter);
                    filter_len = f.len();
                }
                p.bias.copy_from_slice(w.bias);
                set_word(self.buf, 4 * i + 2, filter_len);
                set_word(self.buf, 4 * i + 3, w.bias.len());
                p_at += link.params_len();
            }
        }
        // The steps, from the top: each op's output gradient has the base
        // scale of the one above times the largest weight scale between.
        let mut base = GRADIENT_SCALE * c.beta;
        for k in (c.lo..c.softmax).rev() {
            let link = c.link(&model, k)?;
            let Some(w) = link.weights() else { continue };
            let (sx, sy) = (
                link.input.qparams.map_or(1.0, |q| q.scale),
                link.output.qparams.map_or(1.0, |q| q.scale),
            );
            let weight_scale = |o: usize| {
                let real = w.multiplier[o] as f64 * crate::quant::pow2(w.shift[o] - 31);
                (real * f64::from(sy) / f64::from(sx)) as f32
            };
            let at = word(self.buf, 4 * (k - c.lo));
            if let Some(p) = params(self.buf, at, &link) {
                let (lr, sg, sx, sy) =
                    (f64::from(lr), f64::from(base), f64::from(sx), f64::from(sy));
                let weight = super::dense::step(lr * sg * sx * sx / sy)?;
                let bias = super::dense::step(lr * sg / sy)?;
                let words = [weight.multiplier, weight.shift, bias.multiplier, bias.shift];
                let at = p.steps.as_ptr() as usize - self.buf.as_ptr() as usize;
                for (j, v) in words.iter().enumerate() {
                    self.buf[at + 4 * j..at + 4 * j + 4].copy_from_slice(&v.to_ne_bytes());
                }
            }
            let max = (0..w.bias.len()).map(weight_scale).fold(0.0f32, f32::max);
            base *= max;
        }
        Ok(())
    }

    /// The model's input, to write before [`step`](Self::step) or
    /// [`predict`](Self::predict).
    pub fn input_mut<T: Element>(&mut self) -> Result<&mut [T]> {
        self.interp.input_mut(0)
    }

    /// Copies tensor bytes `t` of the arena to the kept slot of link `i`.
    fn keep(&mut self, i: usize, range: core::ops::Range<usize>) {
        let at = word(self.buf, 4 * i + 1);
        if at != NOT_KEPT {
            let n = range.len();
            let src = self.interp.arena_bytes_mut(range);
            self.buf[at..at + n].copy_from_slice(src);
        }
    }

    /// Runs the model with the trained parameters, keeping what the
    /// backward pass needs; the softmax output. Not inlined: its frame and
    /// the backward pass's are never on the stack together.
    #[inline(never)]
    fn forward(&mut self) -> Result<&[i8]> {
        let model = *self.interp.model();
        let c = self.chain;
        self.interp.run_ops(0..c.lo, &mut |_| {})?;
        for k in c.lo..c.softmax {
            let i = k - c.lo;
            let op = model.op(k);
            self.keep(i, model.tensor(model.op_input(&op, 0)).range());
            let (at, f, b) = (
                word(self.buf, 4 * i),
                word(self.buf, 4 * i + 2),
                word(self.buf, 4 * i + 3),
            );
            let tuned = if b == 0 {
                Tuned::default()
            } else {
                let bias = &self.buf[at + align8(f)..at + align8(f) + 4 * b];
                Tuned {
                    filter: (f > 0).then(|| bytemuck::cast_slice(&self.buf[at..at + f])),
                    bias: Some(bytemuck::cast_slice(bias)),
                }
            };
            self.interp.run_tuned(k, tuned)?;
        }
        let logits = model.tensor(model.op_input(&model.op(c.softmax), 0));
        self.keep(c.softmax - c.lo, logits.range());
        self.interp.run_ops(c.softmax..c.softmax + 1, &mut |_| {})?;
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

    /// The forward pass of a step: the prediction and loss before it, and
    /// the softmax output kept for the backward pass; the class count.
    fn forward_keeping_output(&mut self, label: usize) -> Result<(StepReport, usize)> {
        let probs = self.forward()?;
        let classes = probs.len();
        if label >= classes {
            return Err(Error::InvalidParameter {
                what: "label outside the classes",
            });
        }
        let report = StepReport {
            predicted: argmax(probs),
            loss_q12: cross_entropy_q12(probs, label)?,
        };
        let p = self.layout.probs;
        let out = model_output_range(self.interp.model());
        let bytes = self.interp.arena_bytes_mut(out);
        self.buf[p..p + classes].copy_from_slice(bytes);
        Ok((report, classes))
    }

    /// One step of SGD on the current input with its `label`: the report is
    /// the prediction and loss before the update. The input stays.
    pub fn step(&mut self, label: usize) -> Result<StepReport> {
        let (report, classes) = self.forward_keeping_output(label)?;
        let mut rng = core::mem::replace(&mut self.rng, Rng::new(0));
        let result = self.backward(label, classes, &mut Sgd(&mut rng));
        self.rng = rng;
        result.map(|()| report)
    }

    /// Number of trained parameters (weights and biases).
    pub fn param_count(&self) -> usize {
        let mut n = 0;
        self.each_params(|f, b| n += f.map_or(0, <[i8]>::len) + b.len());
        n
    }

    /// What [`step`](Self::step) would move each trained parameter by, in
    /// its own int8 or int32 units and before rounding, into `out` (laid
    /// out as [`params`](Self::params): per trained op from the lowest,
    /// its filter if it trains, then its bias; [`param_count`](Self::param_count)
    /// values); nothing changes. Multiplied by `-s_w / lr` (weights) or
    /// `-s_x s_w / lr` (biases) it is the integer backward pass's gradient
    /// in float units, to compare with a float trainer's.
    pub fn expected_update(&mut self, label: usize, out: &mut [f32]) -> Result<StepReport> {
        crate::error::check_len("expected update", self.param_count(), out.len())?;
        let (report, classes) = self.forward_keeping_output(label)?;
        out.fill(0.0);
        let mut expect = Expect {
            out,
            weights: 0,
            biases: 0,
        };
        self.backward(label, classes, &mut expect)?;
        Ok(report)
    }

    /// Digest (CRC-32) of every trained parameter in RAM, in chain order:
    /// equal on every target after the same samples and seed.
    pub fn digest(&self) -> u32 {
        let mut crc = crate::model::CRC32.digest();
        self.each_params(|f, b| {
            if let Some(f) = f {
                crc.update(bytemuck::cast_slice(f));
            }
            for v in b {
                crc.update(&v.to_le_bytes());
            }
        });
        crc.finalize()
    }

    /// Calls `each(filter, bias)` for every trained op, lowest first.
    fn each_params(&self, mut each: impl FnMut(Option<&[i8]>, &[i32])) {
        let model = *self.interp.model();
        let c = self.chain;
        for k in c.lo..c.softmax {
            let Ok(link) = c.link(&model, k) else {
                continue;
            };
            let Some(w) = link.weights() else { continue };
            if link.train == Train::Frozen {
                continue;
            }
            let at = word(self.buf, 4 * (k - c.lo));
            let n = w.bias.len();
            let mut off = at;
            let filter = (link.train == Train::All).then(|| {
                let f: &[i8] = bytemuck::cast_slice(&self.buf[off..off + w.filter.len()]);
                off += align8(w.filter.len());
                f
            });
            let bias: &[i32] = bytemuck::cast_slice(&self.buf[off..off + 4 * n]);
            each(filter, bias);
        }
    }

    /// The trained ops' filters (`None` where only the bias trains) and
    /// biases, lowest op first, into `out` until it is full; the count.
    pub fn params<'s>(&'s self, out: &mut [(Option<&'s [i8]>, &'s [i32])]) -> usize {
        let model = *self.interp.model();
        let c = self.chain;
        let mut n = 0;
        for k in c.lo..c.softmax {
            if n == out.len() {
                break;
            }
            let Ok(link) = c.link(&model, k) else {
                continue;
            };
            let Some(w) = link.weights() else { continue };
            if link.train == Train::Frozen {
                continue;
            }
            let mut off = word(self.buf, 4 * (k - c.lo));
            let filter = if link.train == Train::All {
                let f: &'s [i8] = bytemuck::cast_slice(&self.buf[off..off + w.filter.len()]);
                off += align8(w.filter.len());
                Some(f)
            } else {
                None
            };
            out[n] = (
                filter,
                bytemuck::cast_slice(&self.buf[off..off + 4 * w.bias.len()]),
            );
            n += 1;
        }
        n
    }

    /// Writes the trained parameters into `blob`, a copy of the model's
    /// bytes in RAM (any alignment), and updates its checksum; the result
    /// parses as the tuned model. A blob that differs from the model's
    /// anywhere else is an error and is left as it was.
    pub fn write_into(&self, blob: &mut [u8]) -> Result<()> {
        let model = *self.interp.model();
        let bytes = model.bytes();
        let crc = crate::model::format::header::CRC;
        let base = bytes.as_ptr() as usize;
        let c = self.chain;
        // The byte ranges the tuner owns.
        let ours = |i: usize| -> bool {
            if (crc..crc + 4).contains(&i) {
                return true;
            }
            (c.lo..c.softmax).any(|k| {
                let Ok(link) = c.link(&model, k) else {
                    return false;
                };
                let Some(w) = link.weights() else {
                    return false;
                };
                let f = w.filter.as_ptr() as usize - base;
                let b = w.bias.as_ptr() as usize - base;
                (link.train == Train::All && (f..f + w.filter.len()).contains(&i))
                    || (link.train != Train::Frozen && (b..b + 4 * w.bias.len()).contains(&i))
            })
        };
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
        let mut at = c.lo;
        self.each_params(|f, b| {
            // each_params visits the trained ops in chain order.
            while at < c.softmax {
                let k = at;
                at += 1;
                let Ok(link) = c.link(&model, k) else {
                    continue;
                };
                let Some(w) = link.weights() else { continue };
                if link.train == Train::Frozen {
                    continue;
                }
                if let Some(f) = f {
                    let o = w.filter.as_ptr() as usize - base;
                    blob[o..o + f.len()].copy_from_slice(bytemuck::cast_slice(f));
                }
                let o = w.bias.as_ptr() as usize - base;
                for (j, v) in b.iter().enumerate() {
                    blob[o + 4 * j..o + 4 * j + 4].copy_from_slice(&v.to_le_bytes());
                }
                break;
            }
        });
        let sum = crate::model::crc32(&blob[16..]);
        blob[crc..crc + 4].copy_from_slice(&sum.to_le_bytes());
        Ok(())
    }
}

/// The arena range of the model's output.
fn model_output_range(model: &Model<'_>) -> core::ops::Range<usize> {
    model.output(0).map_or(0..0, |t| model.tensor(t).range())
}

fn argmax(v: &[i8]) -> usize {
    (0..v.len()).fold(0, |b, k| if v[k] > v[b] { k } else { b })
}
