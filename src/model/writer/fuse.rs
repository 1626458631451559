//! Fusing a convolution with the pool over its output (one
//! `ConvMaxPool`/`ConvAvgPool` op), when that lowers the arena.

use super::{ModelBuilder, OpDef};
use crate::error::Result;
use crate::model::format::OpKind;
use crate::model::op::fuse;
use crate::quant::Activation;
use std::format;
use std::vec::Vec;

/// When the writer fuses a convolution with the pool over its output
/// into one op (`ConvMaxPool`, `ConvAvgPool`) that runs by bands of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fusion {
    /// Never: the ops as built.
    Never,
    /// The pairs whose fusion lowers the arena (the default).
    Smaller,
    /// Every pair that can be fused: a convolution whose output only the
    /// next op reads, a pool without activation, its values below 256.
    Always,
}

/// Arena bytes of a model's plans, as [`ModelBuilder::plan_report`]
/// measures them (all for a 16-byte aligned arena).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanReport {
    /// The greedy plan without fusion.
    pub greedy: usize,
    /// Its lower bound: the most bytes live at one op.
    pub greedy_bound: usize,
    /// The greedy plan with every convolution and pool that can be fused
    /// fused.
    pub fused: usize,
    /// Its lower bound.
    pub fused_bound: usize,
    /// The plan [`ModelBuilder::finish`] writes: the smaller, fusing only
    /// the pairs that lower the arena.
    pub chosen: usize,
    /// Fused ops in the chosen plan.
    pub fused_ops: usize,
}

impl ModelBuilder {
    /// Ops `i` that can be fused with op `i + 1`: a convolution whose
    /// output only that pool (without activation) reads.
    fn fusable(&self) -> Vec<usize> {
        let ops = &self.ops;
        (0..ops.len().saturating_sub(1))
            .filter(|&i| {
                let (c, p) = (&ops[i], &ops[i + 1]);
                let t = c.output;
                c.kind == OpKind::Conv2d
                    && matches!(p.kind, OpKind::MaxPool | OpKind::AvgPool)
                    && p.activation == Activation::None
                    && p.inputs == [t]
                    && p.dtype == c.dtype
                    && c.dtype.fuses()
                    && !self.outputs.contains(&t)
                    && ops.iter().filter(|o| o.inputs.contains(&t)).count() == 1
                    && self.fused_op(i).is_some()
            })
            .collect()
    }

    /// The op fusing op `i` (a convolution) with op `i + 1` (its pool).
    fn fused_op(&self, i: usize) -> Option<OpDef> {
        let (c, p) = (&self.ops[i], &self.ops[i + 1]);
        let shape = |t: usize| self.tensors[t].shape;
        let (kind, params, scratch) = fuse(
            c.dtype,
            c.params,
            p.kind,
            p.params,
            [shape(c.inputs[0]), shape(c.output), shape(p.output)],
        )?;
        Some(OpDef {
            kind,
            dtype: c.dtype,
            activation: c.activation,
            inputs: c.inputs.clone(),
            output: p.output,
            name: format!("{}+{}", c.name, p.name),
            params,
            scratch,
        })
    }

    /// This model with the convolutions `at` (from [`fusable`]) fused with
    /// their pools; their outputs leave the tensor table.
    fn with_fused(&self, at: &[usize]) -> ModelBuilder {
        let mut b = self.clone();
        b.fuse = Fusion::Never;
        let gone: Vec<usize> = at.iter().map(|&i| self.ops[i].output).collect();
        let mut ops = Vec::new();
        let mut i = 0;
        while i < self.ops.len() {
            match at.contains(&i).then(|| self.fused_op(i)).flatten() {
                Some(op) => {
                    ops.push(op);
                    i += 2;
                }
                None => {
                    ops.push(self.ops[i].clone());
                    i += 1;
                }
            }
        }
        // Tensor numbers after the removed ones move down.
        let new = |t: usize| t - gone.iter().filter(|&&g| g < t).count();
        for op in &mut ops {
            op.output = new(op.output);
            for t in &mut op.inputs {
                *t = new(*t);
            }
        }
        b.ops = ops;
        b.tensors = (0..self.tensors.len())
            .filter(|t| !gone.contains(t))
            .map(|t| self.tensors[t].clone())
            .collect();
        b.inputs = self.inputs.iter().map(|&t| new(t)).collect();
        b.outputs = self.outputs.iter().map(|&t| new(t)).collect();
        b
    }

    /// The model [`finish`](Self::finish) writes and its report: every
    /// pair fused, then each unfused again when the arena does not grow
    /// without it (a band costs copies and calls); no fusion unless the
    /// arena shrinks.
    pub(super) fn fusion(&self) -> Result<(ModelBuilder, PlanReport)> {
        let base = self.plan()?;
        let all = self.fusable();
        let full = self.with_fused(&all).plan()?;
        let mut chosen = all.clone();
        let mut best = full.arena_len;
        for &i in &all {
            let trial: Vec<usize> = chosen.iter().copied().filter(|&j| j != i).collect();
            let len = self.with_fused(&trial).plan()?.arena_len;
            if len <= best {
                chosen = trial;
                best = len;
            }
        }
        if self.fuse == Fusion::Always {
            chosen = all.clone();
            best = full.arena_len;
        } else if best >= base.arena_len {
            chosen.clear();
            best = base.arena_len;
        }
        let report = PlanReport {
            greedy: base.arena_len,
            greedy_bound: base.lower_bound,
            fused: full.arena_len,
            fused_bound: full.lower_bound,
            chosen: best,
            fused_ops: chosen.len(),
        };
        Ok((self.with_fused(&chosen), report))
    }

    /// The arena of the greedy plan, of the fused plan and their lower
    /// bounds. A builder read from a blob ([`from_model`](Self::from_model))
    /// reports on the ops it holds: already fused ones stay fused.
    pub fn plan_report(&self) -> Result<PlanReport> {
        Ok(self.fusion()?.1)
    }
}
