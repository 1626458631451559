//! Runs a checked model in one caller-owned arena.

use super::format::{DType, OpKind, ARENA_ALIGN};
use super::view::{rescale_at as rescale_params, scratch_len, Geometry, Model, OpInfo};
use crate::error::{Error, Result};
use crate::num::Real;
use crate::ops::act::{activation_float, activation_float_in_place, ActI8};
use crate::ops::add::{add_float, add_float_in_place, AddI8, AddQuant};
use crate::ops::concat::{concat_into_float, concat_into_i8};
use crate::ops::conv::{Conv2dFloat, Conv2dI8, ConvWeightsI8};
use crate::ops::dense::{DenseFloat, DenseI8};
use crate::ops::softmax::{softmax_float, SoftmaxI8};
use crate::quant::{QParams, Requant};
use core::ops::Range;
use half::f16;

mod sealed {
    pub trait Sealed {}
    impl Sealed for i8 {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for i32 {}
}

/// An element type the arena and the data section can be viewed as.
pub trait Element: Copy + sealed::Sealed + 'static {
    /// The tensor type it stands for (`None` for int32 bias and tables).
    const DTYPE: Option<DType>;
}

impl Element for i8 {
    const DTYPE: Option<DType> = Some(DType::I8);
}
impl Element for f32 {
    const DTYPE: Option<DType> = Some(DType::F32);
}
impl Element for f16 {
    const DTYPE: Option<DType> = Some(DType::F16);
}
impl Element for i32 {
    const DTYPE: Option<DType> = None;
}

fn cast<T: Element>(b: &[u8]) -> Result<&[T]> {
    // SAFETY: i8, i32, f32 and f16 are plain data: every bit pattern is a
    // valid value; `align_to` only hands out the aligned middle part.
    let (pre, mid, post) = unsafe { b.align_to::<T>() };
    if !pre.is_empty() || !post.is_empty() {
        return Err(Error::Misaligned {
            what: "tensor or weights",
        });
    }
    Ok(mid)
}

fn cast_mut<T: Element>(b: &mut [u8]) -> Result<&mut [T]> {
    // SAFETY: as in `cast`; the mutable view covers the same bytes.
    let (pre, mid, post) = unsafe { b.align_to_mut::<T>() };
    if !pre.is_empty() || !post.is_empty() {
        return Err(Error::Misaligned { what: "tensor" });
    }
    Ok(mid)
}

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

/// The arena split around an op's output and scratch: the rest is readable.
struct Split<'x> {
    pieces: [(usize, &'x [u8]); 3],
}

impl<'x> Split<'x> {
    fn get(&self, r: Range<usize>) -> Result<&'x [u8]> {
        for &(base, piece) in &self.pieces {
            if r.start >= base && r.end <= base + piece.len() {
                return Ok(&piece[r.start - base..r.end - base]);
            }
        }
        Err(Error::InvalidModel {
            what: "input overlaps the output or scratch",
            index: r.start,
        })
    }
}

/// Splits `arena` into the mutable `a` and `b` ranges (disjoint) and the
/// readable rest.
fn split<'x>(
    arena: &'x mut [u8],
    a: Range<usize>,
    b: Range<usize>,
) -> Result<(&'x mut [u8], &'x mut [u8], Split<'x>)> {
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
    let split = Split {
        pieces: [(0, &*p0), (first.end, &*p1), (second.end, &*p2)],
    };
    Ok(if swap { (y, x, split) } else { (x, y, split) })
}

impl<'m, 'a> Interpreter<'m, 'a> {
    /// An interpreter for `model` in `arena`, which must hold at least
    /// [`Model::arena_len`] bytes (any alignment).
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
        for i in 0..self.model.op_count() {
            let op = self.model.op(i);
            let geometry = self.model.geometry(&op)?;
            let mut event = LayerEvent {
                index: i,
                name: op.name,
                kind: op.kind,
                macs: macs(geometry),
                done: false,
            };
            hook(&event);
            self.run_op(i, &op, geometry)?;
            event.done = true;
            hook(&event);
        }
        Ok(())
    }

    fn run_op(&mut self, i: usize, op: &OpInfo<'m>, geometry: Geometry) -> Result<()> {
        let m = self.model;
        let out_t = m.tensor(op.output);
        let in_t = m.tensor(m.op_input(op, 0));
        let scratch = op.scratch_offset..op.scratch_offset + scratch_len(op, geometry);
        let in_place = m.in_place(i);
        let (out, scratch, rest) = split(self.arena, out_t.range(), scratch)?;
        let input = |k: usize| rest.get(m.tensor(m.op_input(op, k)).range());
        let p = &op.params;
        let q = |info: super::view::TensorInfo| {
            info.qparams.unwrap_or(QParams {
                scale: 1.0,
                zero_point: 0,
            })
        };
        let (in_q, out_q) = (q(in_t), q(out_t));
        match (op.kind, geometry, op.dtype) {
            (OpKind::Conv2d, Geometry::Conv(conv), DType::I8) => {
                let oc = conv.output_shape().c;
                let layer = Conv2dI8::new(
                    conv,
                    ConvWeightsI8 {
                        filter: cast(m.data_bytes(p[7], conv.filter_len()))?,
                        bias: cast(m.data_bytes(p[8], oc * 4))?,
                        multiplier: cast(m.data_bytes(p[9], oc * 4))?,
                        shift: cast(m.data_bytes(p[10], oc * 4))?,
                    },
                    in_q.zero_point,
                    out_q.zero_point,
                    op.activation.range_i8(out_q),
                )?;
                layer.run(cast(input(0)?)?, cast_mut(out)?, scratch)
            }
            (OpKind::Conv2d, Geometry::Conv(conv), DType::F32) => {
                conv_float::<f32>(&m, op, conv, input(0)?, out)
            }
            (OpKind::Conv2d, Geometry::Conv(conv), DType::F16) => {
                conv_float::<f16>(&m, op, conv, input(0)?, out)
            }
            (OpKind::Dense, Geometry::Dense(dense), DType::I8) => {
                let n = dense.out_features();
                let layer = DenseI8::new(
                    dense,
                    cast(m.data_bytes(p[7], dense.weights_len()))?,
                    cast(m.data_bytes(p[8], n * 4))?,
                    cast(m.data_bytes(p[9], n * 4))?,
                    cast(m.data_bytes(p[10], n * 4))?,
                    in_q.zero_point,
                    out_q.zero_point,
                    op.activation.range_i8(out_q),
                )?;
                layer.run(cast(input(0)?)?, cast_mut(out)?, scratch)
            }
            (OpKind::Dense, Geometry::Dense(dense), DType::F32) => {
                dense_float::<f32>(&m, op, dense, input(0)?, out)
            }
            (OpKind::Dense, Geometry::Dense(dense), DType::F16) => {
                dense_float::<f16>(&m, op, dense, input(0)?, out)
            }
            (OpKind::MaxPool | OpKind::AvgPool, Geometry::Pool(pool), dtype) => {
                let max = op.kind == OpKind::MaxPool;
                let x = input(0)?;
                match dtype {
                    DType::I8 => {
                        let clamp = op.activation.range_i8(out_q);
                        let (x, y) = (cast::<i8>(x)?, cast_mut::<i8>(out)?);
                        if max {
                            pool.max_i8(x, y, clamp)
                        } else {
                            pool.avg_i8(x, y, clamp)
                        }
                    }
                    DType::F32 => pool_float::<f32>(pool, max, op, x, out),
                    DType::F16 => pool_float::<f16>(pool, max, op, x, out),
                }
            }
            (OpKind::Add, _, DType::I8) => {
                let quant = AddQuant {
                    input1_zero_point: p[0] as i32,
                    input1: Requant {
                        multiplier: p[1] as i32,
                        shift: p[2] as i32,
                    },
                    input2_zero_point: p[3] as i32,
                    input2: Requant {
                        multiplier: p[4] as i32,
                        shift: p[5] as i32,
                    },
                    output: Requant {
                        multiplier: p[6] as i32,
                        shift: p[7] as i32,
                    },
                    output_zero_point: p[8] as i32,
                };
                let add = AddI8::new(quant, op.activation.range_i8(out_q))?;
                let b = cast::<i8>(input(1)?)?;
                if in_place {
                    add.run_in_place(cast_mut(out)?, b)
                } else {
                    add.run(cast(input(0)?)?, b, cast_mut(out)?)
                }
            }
            (OpKind::Add, _, DType::F32) => {
                add_typed::<f32>(op, in_place, input(0), input(1)?, out)
            }
            (OpKind::Add, _, DType::F16) => {
                add_typed::<f16>(op, in_place, input(0), input(1)?, out)
            }
            (OpKind::Concat, _, dtype) => {
                let total = out_t.shape.c;
                let mut offset = 0;
                for k in 0..op.input_count() {
                    let t = m.tensor(m.op_input(op, k));
                    let c = t.shape.c;
                    let x = input(k)?;
                    match dtype {
                        DType::I8 => concat_into_i8(
                            cast(x)?,
                            c,
                            offset,
                            total,
                            m.rescale(p[0], k),
                            cast_mut(&mut out[..])?,
                        )?,
                        DType::F32 => concat_into_float::<f32>(
                            cast(x)?,
                            c,
                            offset,
                            total,
                            cast_mut(&mut out[..])?,
                        )?,
                        DType::F16 => concat_into_float::<f16>(
                            cast(x)?,
                            c,
                            offset,
                            total,
                            cast_mut(&mut out[..])?,
                        )?,
                    }
                    offset += c;
                }
                Ok(())
            }
            (OpKind::Activation, _, DType::I8) => {
                let act = ActI8::from_parts(rescale_params(p, 0), op.activation.range_i8(out_q))?;
                if in_place {
                    act.run_in_place(cast_mut(out)?);
                    Ok(())
                } else {
                    act.run(cast(input(0)?)?, cast_mut(out)?)
                }
            }
            (OpKind::Activation, _, DType::F32) => act_typed::<f32>(op, in_place, input(0), out),
            (OpKind::Activation, _, DType::F16) => act_typed::<f16>(op, in_place, input(0), out),
            (OpKind::Softmax, _, dtype) => {
                let depth = out_t.shape.c;
                let x = input(0)?;
                match dtype {
                    DType::I8 => SoftmaxI8::from_parts(p[0] as i32, p[1] as i32, p[2] as i32)?.run(
                        depth,
                        cast(x)?,
                        cast_mut(out)?,
                    ),
                    DType::F32 => {
                        softmax_float::<f32>(depth, cast(x)?, cast_mut(out)?, f32::from_bits(p[3]))
                    }
                    DType::F16 => {
                        softmax_float::<f16>(depth, cast(x)?, cast_mut(out)?, f32::from_bits(p[3]))
                    }
                }
            }
            _ => Err(Error::InvalidModel {
                what: "op without a kernel",
                index: i,
            }),
        }
    }
}

/// Multiply-accumulates of a layer.
pub(crate) fn macs(geometry: Geometry) -> usize {
    match geometry {
        Geometry::Conv(c) => c.macs(),
        Geometry::Dense(d) => d.macs(),
        _ => 0,
    }
}

fn conv_float<T: Real + Element>(
    m: &Model<'_>,
    op: &OpInfo<'_>,
    conv: crate::ops::conv::Conv2d,
    input: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let size = core::mem::size_of::<T>();
    let filter = cast::<T>(m.data_bytes(op.params[7], conv.filter_len() * size))?;
    let bias = cast::<T>(m.data_bytes(op.params[8], conv.output_shape().c * size))?;
    Conv2dFloat::new(conv, filter, bias, op.activation)?.run(cast(input)?, cast_mut(out)?)
}

fn dense_float<T: Real + Element>(
    m: &Model<'_>,
    op: &OpInfo<'_>,
    dense: crate::ops::dense::Dense,
    input: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let size = core::mem::size_of::<T>();
    let w = cast::<T>(m.data_bytes(op.params[7], dense.weights_len() * size))?;
    let bias = cast::<T>(m.data_bytes(op.params[8], dense.out_features() * size))?;
    DenseFloat::new(dense, w, bias, op.activation)?.run(cast(input)?, cast_mut(out)?)
}

fn pool_float<T: Real + Element>(
    pool: crate::ops::pool::Pool2d,
    max: bool,
    op: &OpInfo<'_>,
    input: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let (x, y) = (cast::<T>(input)?, cast_mut::<T>(out)?);
    if max {
        pool.max_float(x, y, op.activation)
    } else {
        pool.avg_float(x, y, op.activation)
    }
}

fn add_typed<T: Real + Element>(
    op: &OpInfo<'_>,
    in_place: bool,
    a: Result<&[u8]>,
    b: &[u8],
    out: &mut [u8],
) -> Result<()> {
    if in_place {
        add_float_in_place::<T>(cast_mut(out)?, cast(b)?, op.activation)
    } else {
        add_float::<T>(cast(a?)?, cast(b)?, cast_mut(out)?, op.activation)
    }
}

fn act_typed<T: Real + Element>(
    op: &OpInfo<'_>,
    in_place: bool,
    a: Result<&[u8]>,
    out: &mut [u8],
) -> Result<()> {
    if in_place {
        activation_float_in_place::<T>(cast_mut(out)?, op.activation);
        Ok(())
    } else {
        activation_float::<T>(cast(a?)?, cast_mut(out)?, op.activation)
    }
}
