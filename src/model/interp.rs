//! Runs a checked model in one caller-owned arena.

use super::element::{cast, cast_mut, Element};
use super::format::{OpKind, ARENA_ALIGN};
pub(crate) use super::op::Tuned;
use super::op::{Io, Readable, Record, Site};
use super::view::Model;
use crate::error::{Error, Result};
use core::ops::Range;

/// What a per-layer hook is told.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerEvent<'a> {
    /// Op index.
    pub index: usize,
    /// Layer name.
    pub name: &'a str,
    /// Op kind.
    pub kind: OpKind,
    /// Multiply-accumulates of the layer.
    pub macs: usize,
    /// False before the layer runs, true after.
    pub done: bool,
}

/// Runs a [`Model`] in a caller-owned arena. Inputs and outputs live in the
/// arena; write inputs with [`input_mut`](Self::input_mut), call
/// [`run`](Self::run), read [`output`](Self::output).
pub struct Interpreter<'m, 'a> {
    model: Model<'m>,
    arena: &'a mut [u8],
}

/// Splits `arena` into the mutable `a` and `b` ranges (disjoint) and the
/// readable rest.
fn split<'x>(
    arena: &'x mut [u8],
    a: Range<usize>,
    b: Range<usize>,
) -> Result<(&'x mut [u8], &'x mut [u8], Readable<'x>)> {
    // An empty scratch sits right after the output.
    let b = if b.is_empty() { a.end..a.end } else { b };
    let swap = b.start < a.start;
    let (first, second) = if swap { (b, a) } else { (a, b) };
    if first.end > second.start
        || second.end > arena.len()
        || first.start > first.end
        || second.start > second.end
    {
        return Err(Error::InvalidModel {
            what: "output and scratch overlap",
            index: first.start,
        });
    }
    let (p0, rest) = arena.split_at_mut(first.start);
    let (x, rest) = rest.split_at_mut(first.end - first.start);
    let (p1, rest) = rest.split_at_mut(second.start - first.end);
    let (y, p2) = rest.split_at_mut(second.end - second.start);
    let split = Readable {
        pieces: [(0, &*p0), (first.end, &*p1), (second.end, &*p2)],
    };
    Ok(if swap { (y, x, split) } else { (x, y, split) })
}

impl<'m, 'a> Interpreter<'m, 'a> {
    /// An interpreter for `model` in `arena`, which must hold at least
    /// [`Model::arena_len`] bytes (any alignment). [`Error::Unsupported`]
    /// when this build leaves out a kernel the model needs (the features
    /// `int8`, `f16`, `f32`; `PICOCNN_MODELS`).
    pub fn new(model: &Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        let got = arena.len();
        let pad = arena.as_ptr().align_offset(ARENA_ALIGN);
        let needed = model.planned_arena_len();
        if pad > got || got - pad < needed {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_len(),
                got,
            });
        }
        for i in 0..model.op_count() {
            let op = model.op(i);
            Record::read(&op).check_built(&Site::new(model, &op, i))?;
        }
        let arena = &mut arena[pad..pad + needed];
        Ok(Interpreter {
            model: *model,
            arena,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    fn io_tensor<T: Element>(&self, t: Option<usize>) -> Result<Range<usize>> {
        let t = t.ok_or(Error::WrongTensor {
            what: "no model input or output with that index",
        })?;
        let info = self.model.tensor(t);
        if T::DTYPE != Some(info.dtype) {
            return Err(Error::WrongTensor {
                what: "element type differs from the tensor's",
            });
        }
        Ok(info.range())
    }

    /// Model input `i`, to write before [`run`](Self::run).
    pub fn input_mut<T: Element>(&mut self, i: usize) -> Result<&mut [T]> {
        let r = self.io_tensor::<T>(self.model.input(i))?;
        cast_mut(&mut self.arena[r])
    }

    /// Model output `i`, valid after [`run`](Self::run).
    pub fn output<T: Element>(&self, i: usize) -> Result<&[T]> {
        let r = self.io_tensor::<T>(self.model.output(i))?;
        cast(&self.arena[r])
    }

    /// Runs every op in order.
    pub fn run(&mut self) -> Result<()> {
        self.run_with(&mut |_| {})
    }

    /// Runs every op, calling `hook` before and after each (to time layers).
    pub fn run_with(&mut self, hook: &mut dyn FnMut(&LayerEvent<'_>)) -> Result<()> {
        self.run_ops(0..self.model.op_count(), hook)
    }

    /// Runs ops `ops` in order (each needs its inputs in the arena).
    #[inline(always)]
    pub(crate) fn run_ops(
        &mut self,
        ops: Range<usize>,
        hook: &mut dyn FnMut(&LayerEvent<'_>),
    ) -> Result<()> {
        for i in ops {
            self.run_op(i, Tuned::default(), hook)?;
        }
        Ok(())
    }

    /// Runs op `i` (`i < op_count()`, its inputs in the arena) with the
    /// RAM parameters of `tuned` where it has them; they must have the
    /// stored lengths.
    pub(crate) fn run_tuned(&mut self, i: usize, tuned: Tuned<'_>) -> Result<()> {
        self.run_op(i, tuned, &mut |_| {})
    }

    #[inline(always)]
    fn run_op(
        &mut self,
        i: usize,
        tuned: Tuned<'_>,
        hook: &mut dyn FnMut(&LayerEvent<'_>),
    ) -> Result<()> {
        let m = self.model;
        {
            let op = m.op(i);
            let site = Site::new(&m, &op, i);
            let record = Record::read(&op);
            let mut event = LayerEvent {
                index: i,
                name: op.name,
                kind: op.kind,
                macs: record.macs(&site),
                done: false,
            };
            hook(&event);
            let scratch = op.scratch_offset..op.scratch_offset + record.scratch_len(&site);
            let (out, scratch, rest) = split(self.arena, site.output().range(), scratch)?;
            let io = Io {
                out,
                scratch,
                rest,
                tuned,
                in_place: site.in_place(),
            };
            record.run(&site, io)?;
            event.done = true;
            hook(&event);
        }
        Ok(())
    }

    /// Arena bytes `r` (within the plan), for the fine-tuner's gradients.
    pub(crate) fn arena_bytes_mut(&mut self, r: Range<usize>) -> &mut [u8] {
        &mut self.arena[r]
    }
}
