//! The chain a fine-tuner trains: the ops from the lowest trainable one up
//! to the final softmax, what each must keep from the forward pass, and
//! where everything lies in the training buffer and the arena.

use super::backward::disjoint;
use crate::error::{Error, Result};
use crate::model::{parts, DType, Layer, Model, OpKind, Parts, TensorInfo, Train};
use crate::ops::conv::Conv2d;
use crate::ops::dense::Dense;
use crate::ops::pool::{Pool2d, PoolKind};
use crate::ops::WeightsI8;
use crate::quant::Clamp;
use core::ops::Range;

/// Which ops a fine-tuner updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TrainableSet {
    /// The set recorded in the blob (`picocnn export --trainable N`).
    Recorded,
    /// The weights and biases of the last `weights` weighted layers
    /// (int8 convolution or dense), and the biases of the `biases` weighted
    /// layers below them (`usize::MAX`: all).
    Last {
        /// Layers whose weights and biases are trained, from the top.
        weights: usize,
        /// Layers below those whose biases are trained.
        biases: usize,
    },
}

impl TrainableSet {
    /// What the set updates of op `i` of `model`.
    pub fn of(self, model: &Model<'_>, i: usize) -> Train {
        match self {
            TrainableSet::Recorded => model.op(i).train,
            TrainableSet::Last { weights, biases } => {
                let weighted = |j: usize| {
                    let op = model.op(j);
                    op.dtype == DType::I8 && matches!(op.kind, OpKind::Conv2d | OpKind::Dense)
                };
                if !weighted(i) {
                    return Train::Frozen;
                }
                let rank = (i..model.op_count()).filter(|&j| weighted(j)).count();
                if rank <= weights {
                    Train::All
                } else if rank - weights <= biases {
                    Train::Bias
                } else {
                    Train::Frozen
                }
            }
        }
    }
}

/// What kind of op a link is, with its geometry and stored weights.
#[derive(Clone, Copy)]
pub(super) enum Op<'m> {
    Conv(Conv2d, WeightsI8<'m>),
    Dense(Dense, WeightsI8<'m>),
    Pool(Pool2d, PoolKind),
}

/// One op of the chain.
#[derive(Clone, Copy)]
pub(super) struct Link<'m> {
    pub op: Op<'m>,
    pub train: Train,
    pub input: TensorInfo,
    pub output: TensorInfo,
    /// The output's clamp; `mask`: whether its activation cuts gradients.
    pub clamp: Clamp,
    pub mask: bool,
}

impl<'m> Link<'m> {
    /// The stored weights of a convolution or dense layer.
    pub fn weights(&self) -> Option<&WeightsI8<'m>> {
        match &self.op {
            Op::Conv(_, w) | Op::Dense(_, w) => Some(w),
            Op::Pool(..) => None,
        }
    }

    /// Bytes of its trained parameters and steps in the training buffer.
    pub fn params_len(&self) -> usize {
        let Some(w) = self.weights() else { return 0 };
        let filter = if self.train == Train::All {
            align8(w.filter.len())
        } else {
            0
        };
        let c = w.bias.len();
        match self.train {
            Train::Frozen => 0,
            // The layer's two step constants (see `FineTuner`'s steps).
            _ => filter + align8(4 * c) + 16,
        }
    }
}

/// Every part of the training buffer and the gradient area starts on 8
/// bytes (the per-channel sums are int64).
pub(super) fn align8(n: usize) -> usize {
    (n + 7) & !7
}

fn unsupported(what: &'static str) -> Error {
    Error::Unsupported { what }
}

/// The chain of a model for one trainable set.
#[derive(Debug, Clone, Copy)]
pub(super) struct Chain {
    pub set: TrainableSet,
    /// The lowest trained op and the final softmax.
    pub lo: usize,
    pub softmax: usize,
    pub beta: f32,
    /// The op whose input gradient, summed per channel where the lowest
    /// op's activation passed, is all the lowest (bias-only) op needs.
    pub fused: Option<usize>,
}

/// Where the parts of a training buffer lie, from its aligned start.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// Per link `k - lo`, four words at the start: its parameters' offset,
    /// the offset of its input's kept copy (`u32::MAX` when not kept), and
    /// its trained filter's and bias's lengths (0 when not trained). The kept copies start at `saved`, the
    /// softmax output's copy at `probs`.
    pub saved: usize,
    pub probs: usize,
    pub end: usize,
    /// The gradient area: in the arena when it fits beside the model's
    /// input and output there, else at the buffer's end.
    pub grad: Range<usize>,
    pub grad_in_arena: bool,
}

impl Chain {
    /// The chain of `set` in `model`: from the lowest trained op to the
    /// final int8 softmax, every op in between one int8 convolution, dense
    /// layer or pool taking the previous op's output.
    pub fn find(model: &Model<'_>, set: TrainableSet) -> Result<Chain> {
        let n = model.op_count();
        let out = model.output(0).ok_or(unsupported("model without output"))?;
        let softmax = n - 1;
        let last = model.op(softmax);
        let beta = match model.layer(&last) {
            Layer::Softmax { beta } if last.dtype == DType::I8 && last.output == out => beta,
            _ => {
                return Err(unsupported(
                    "fine-tuning needs a model ending in an int8 softmax",
                ))
            }
        };
        let lo = (0..n)
            .find(|&i| set.of(model, i) != Train::Frozen)
            .ok_or(unsupported(
                "no trainable set: export the model with --trainable N",
            ))?;
        if lo >= softmax {
            return Err(unsupported("only convolution and dense ops can be trained"));
        }
        for k in lo..=softmax {
            let op = model.op(k);
            if op.input_count() != 1 || (k > lo && model.op_input(&op, 0) != model.op(k - 1).output)
            {
                return Err(unsupported(
                    "fine-tuning needs the trained ops in one line, each taking the previous op's output",
                ));
            }
            if k < softmax {
                let p = parts(model, k)?;
                if matches!(p, Parts::Other) {
                    return Err(unsupported(
                        "fine-tuning passes gradients through int8 convolution, dense and pooling ops only",
                    ));
                }
                if let Parts::Conv(_, w) | Parts::Dense(_, w) = p {
                    if w.multiplier.iter().any(|&m| m != 0 && m < 1 << 30) {
                        return Err(unsupported(
                            "fine-tuning needs normalised requantization multipliers",
                        ));
                    }
                }
            } else if set.of(model, k) != Train::Frozen {
                return Err(unsupported("only convolution and dense ops can be trained"));
            }
        }
        let mut chain = Chain {
            set,
            lo,
            softmax,
            beta,
            fused: None,
        };
        let low = chain.link(model, lo)?;
        if low.train == Train::Bias {
            let next = chain.link(model, lo + 1)?;
            chain.fused = match next.op {
                Op::Conv(..) | Op::Dense(..) => Some(lo + 1),
                Op::Pool(p, PoolKind::Max) if disjoint(&p) && lo + 2 < softmax => {
                    match chain.link(model, lo + 2)?.op {
                        Op::Conv(..) | Op::Dense(..) => Some(lo + 2),
                        Op::Pool(..) => None,
                    }
                }
                Op::Pool(..) => None,
            };
        }
        Ok(chain)
    }

    /// Link `k` (`lo <= k < softmax`).
    pub fn link<'m>(&self, model: &Model<'m>, k: usize) -> Result<Link<'m>> {
        let op = model.op(k);
        let input = model.tensor(model.op_input(&op, 0));
        let output = model.tensor(op.output);
        let (Some(_), Some(out_q)) = (input.qparams, output.qparams) else {
            return Err(unsupported("fine-tuning needs int8 tensors"));
        };
        let op_parts = match parts(model, k)? {
            Parts::Conv(g, w) => Op::Conv(g, w),
            Parts::Dense(g, w) => Op::Dense(g, w),
            Parts::Pool(g, kind) => Op::Pool(g, kind),
            Parts::Other => return Err(unsupported(
                "fine-tuning passes gradients through int8 convolution, dense and pooling ops only",
            )),
        };
        Ok(Link {
            op: op_parts,
            train: self.set.of(model, k),
            input,
            output,
            clamp: op.activation.range_i8(out_q),
            mask: op.activation != crate::quant::Activation::None,
        })
    }

    /// Whether tensor `t_k` (the input of op `k`, or the logits for
    /// `k == softmax`) is kept from the forward pass.
    pub fn keeps(&self, model: &Model<'_>, k: usize) -> Result<bool> {
        let lo = self.lo;
        let this = if k < self.softmax {
            Some(self.link(model, k)?)
        } else {
            None
        };
        let below = if k > lo {
            Some(self.link(model, k - 1)?)
        } else {
            None
        };
        let low_masks = self.link(model, lo)?.mask;
        let fused_pool = self.fused == Some(lo + 2) && k == lo + 1;
        Ok(this.is_some_and(|l| l.train == Train::All)
            || this.is_some_and(|l| matches!(l.op, Op::Pool(_, PoolKind::Max)) && !fused_pool)
            || below.is_some_and(|l| l.mask && !(k - 1 == lo && self.fused.is_some()))
            || (self.fused == Some(k) && low_masks))
    }

    /// Bytes of the gradient area: the largest front (the gradient at an
    /// op's output, int16) plus back (what the op's backward writes).
    fn grad_len(&self, model: &Model<'_>) -> Result<usize> {
        let classes = model.tensor(model.op(self.softmax).output).shape.len();
        let mut need = align8(2 * classes) + 4 * classes;
        // Below a fused op nothing of the tensors is built.
        for k in self.fused.unwrap_or(self.lo)..self.softmax {
            let l = self.link(model, k)?;
            let front = align8(2 * l.output.shape.len());
            let n_in = l.input.shape.len();
            let back = if k == self.lo {
                0
            } else if self.fused == Some(k) {
                let low = self.link(model, self.lo)?;
                8 * low.output.shape.c
            } else {
                match l.op {
                    Op::Pool(p, PoolKind::Max) if disjoint(&p) => align8(2 * n_in),
                    _ => 4 * n_in,
                }
            };
            need = need.max(front + back);
        }
        Ok(need)
    }

    /// The largest 8-aligned run of the planned arena outside the model's
    /// input and output.
    fn arena_gap(model: &Model<'_>) -> Range<usize> {
        let len = model.planned_arena_len();
        let mut busy = [0..0, 0..0, len..len];
        for (b, t) in busy.iter_mut().zip([model.input(0), model.output(0)]) {
            if let Some(t) = t {
                *b = model.tensor(t).range();
            }
        }
        busy[..2].sort_unstable_by_key(|r| r.start);
        let mut best = 0..0;
        let mut at = 0;
        for r in &busy {
            let start = align8(at);
            if r.start > start && r.start - start > best.len() {
                best = start..r.start;
            }
            at = at.max(r.end);
        }
        best.start..best.start + (best.len() & !7)
    }

    /// Where everything lies.
    pub fn layout(&self, model: &Model<'_>) -> Result<Layout> {
        let links = self.softmax - self.lo + 1;
        let mut at = 16 * links;
        for k in self.lo..self.softmax {
            at += self.link(model, k)?.params_len();
        }
        let saved = at;
        for k in self.lo..=self.softmax {
            if self.keeps(model, k)? {
                let t = if k < self.softmax {
                    self.link(model, k)?.input
                } else {
                    self.link(model, k - 1)?.output
                };
                at += align8(t.byte_len());
            }
        }
        let probs = at;
        at += align8(model.tensor(model.op(self.softmax).output).byte_len());
        let need = self.grad_len(model)?;
        let gap = Self::arena_gap(model);
        Ok(if need <= gap.len() {
            Layout {
                saved,
                probs,
                end: at,
                grad: gap.start..gap.start + need,
                grad_in_arena: true,
            }
        } else {
            Layout {
                saved,
                probs,
                end: at + need,
                grad: at..at + need,
                grad_in_arena: false,
            }
        })
    }

    /// Bytes of the training buffer, at any address.
    pub fn train_len(&self, model: &Model<'_>) -> Result<usize> {
        Ok(self.layout(model)?.end + 7)
    }
}
