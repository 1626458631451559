//! One module per op kind. Each holds the kind's typed record: how its
//! twelve parameter words read and write ([`OpRecord::read`] /
//! [`OpRecord::emit`]), how it is checked against the model once at parse
//! time, its multiply-accumulates, scratch and summary figures, the layer
//! it computes, and how it runs its kernel. The view, the writer, the
//! interpreter and the summary all go through these records.
//!
//! The blob is the prepared form of a model: the writer computed every
//! multiplier, shift and table once, and [`Model::parse`] checks every
//! record once. Running an op therefore only reads its record and hands
//! the already checked parts to the kernel, without checking them again.
//!
//! Adding an op: a module here with a record implementing [`OpRecord`], a
//! line in [`registry!`] below, and a variant in
//! [`format::OpKind`](super::format::OpKind) for its byte.

mod act;
mod add;
mod concat;
mod conv;
mod conv_pool;
mod dense;
mod mean;
mod pool;
mod softmax;

// The writer keeps a weighted op's data references.
#[cfg(feature = "std")]
pub(crate) use conv_pool::fuse;

use super::format::ARENA_ALIGN;
use super::layer::Layer;
use super::view::{Model, OpInfo, TensorInfo};
use crate::error::{Error, Result};
use crate::quant::{QParams, Requant, Rescale};
use core::ops::Range;

/// An op's place in a model: what its record is checked and run against.
/// Its first input and its output are read once.
#[derive(Clone, Copy)]
pub(crate) struct Site<'m, 'a> {
    pub model: &'m Model<'a>,
    pub op: &'m OpInfo<'a>,
    pub index: usize,
    first: TensorInfo,
    output: TensorInfo,
}

impl<'m, 'a> Site<'m, 'a> {
    /// Op `op`, number `index` of `model`.
    pub fn new(model: &'m Model<'a>, op: &'m OpInfo<'a>, index: usize) -> Self {
        Site {
            model,
            op,
            index,
            first: model.tensor(model.op_input(op, 0)),
            output: model.tensor(op.output),
        }
    }

    /// Tensor of input `k`.
    pub fn input(&self, k: usize) -> TensorInfo {
        if k == 0 {
            self.first
        } else {
            self.model.tensor(self.model.op_input(self.op, k))
        }
    }

    /// The output tensor.
    pub fn output(&self) -> TensorInfo {
        self.output
    }

    /// True when the op writes its output over its first input, as the plan
    /// may arrange for ops that can run in place.
    pub fn in_place(&self) -> bool {
        self.op.kind.can_run_in_place() && self.first.range() == self.output.range()
    }

    /// Quantization of a tensor (unit scale for float tensors, whose kernels
    /// never read it).
    pub fn qparams(t: TensorInfo) -> QParams {
        t.qparams.unwrap_or(QParams {
            scale: 1.0,
            zero_point: 0,
        })
    }

    /// A model error at this op.
    pub fn invalid(&self, what: &'static str) -> Error {
        Error::InvalidModel {
            what,
            index: self.index,
        }
    }

    /// Checks that `bytes` at data offset `off` lie in the data section and
    /// are aligned to `align`.
    pub fn data_ref(&self, what: &'static str, off: u32, bytes: usize, align: usize) -> Result<()> {
        let off = off as usize;
        if !off.is_multiple_of(align) {
            return Err(Error::Misaligned { what });
        }
        match off.checked_add(bytes) {
            Some(end) if end <= self.model.data().len() => Ok(()),
            _ => Err(self.invalid(what)),
        }
    }

    /// Data bytes of a checked reference.
    pub fn data(&self, off: u32, len: usize) -> &'a [u8] {
        self.model.data_bytes(off, len)
    }
}

/// A weighted int8 op's filter or bias held in RAM (the fine-tuner's
/// copies, of the stored lengths), used instead of the stored ones.
#[derive(Clone, Copy, Default)]
pub(crate) struct Tuned<'x> {
    pub filter: Option<&'x [i8]>,
    pub bias: Option<&'x [i32]>,
}

/// What an op is given to run: its output, its scratch and the readable
/// rest of the arena.
pub(crate) struct Io<'x> {
    pub out: &'x mut [u8],
    pub scratch: &'x mut [u8],
    pub rest: Readable<'x>,
    pub tuned: Tuned<'x>,
    /// The output lies over the first input (ops that can run in place).
    pub in_place: bool,
}

impl<'x> Io<'x> {
    /// Bytes of input `k` of the op at `s`.
    pub fn input(&self, s: &Site<'_, '_>, k: usize) -> Result<&'x [u8]> {
        self.rest.get(s.input(k).range())
    }
}

/// The arena around an op's output and scratch.
pub(crate) struct Readable<'x> {
    pub pieces: [(usize, &'x [u8]); 3],
}

impl<'x> Readable<'x> {
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

/// Weights, biases and tables of an op, as counted in a summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Trainable parameters (weights and biases).
    pub params: usize,
    /// Bytes of weights, biases and fixed-point tables in the data section.
    pub bytes: usize,
}

/// The parts every op kind's record provides.
pub(crate) trait OpRecord: Sized {
    /// Reads the record's parameter words; [`check`](Self::check) decides
    /// whether they make sense. Never panics, whatever the words.
    fn read(op: &OpInfo<'_>) -> Self;
    /// The parameter words: `read` of them gives the record back.
    fn emit(&self) -> Result<[u32; 12]>;
    /// Checks the record against the model (geometry, tensors, data
    /// references, fixed-point ranges, unused words zero), once, at parse.
    fn check(&self, s: &Site<'_, '_>) -> Result<()>;
    /// The layer it computes, in the description training uses.
    fn layer(&self, s: &Site<'_, '_>) -> Layer;
    /// Whether the op takes `n` inputs.
    fn takes_inputs(&self, n: usize) -> bool {
        n == 1
    }
    /// Multiply-accumulates per inference.
    fn macs(&self, _s: &Site<'_, '_>) -> usize {
        0
    }
    /// Scratch bytes in the arena.
    fn scratch_len(&self, _s: &Site<'_, '_>) -> usize {
        0
    }
    /// Parameters and data bytes.
    fn footprint(&self, _s: &Site<'_, '_>) -> Footprint {
        Footprint::default()
    }
    /// Runs the kernel of a checked record.
    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()>;
}

/// Declares every op kind: its byte in a record, its name in summaries,
/// whether it may run in place, and its record type. One line per kind.
macro_rules! registry {
    ($($(#[$doc:meta])* $byte:literal $kind:ident $name:literal $in_place:literal => $record:ty,)*) => {
        /// The ops a model can hold, by the kind byte of their record.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        pub enum OpKind {
            $($(#[$doc])* $kind = $byte,)*
        }

        impl OpKind {
            /// From the byte in a record.
            pub const fn from_u8(v: u8) -> Option<OpKind> {
                match v {
                    $($byte => Some(OpKind::$kind),)*
                    _ => None,
                }
            }

            /// Short name, as in summaries.
            pub const fn name(self) -> &'static str {
                match self {
                    $(OpKind::$kind => $name,)*
                }
            }

            /// True when the output may share the buffer of its first input.
            pub const fn can_run_in_place(self) -> bool {
                match self {
                    $(OpKind::$kind => $in_place,)*
                }
            }
        }

        /// The typed record of one op.
        pub(crate) enum Record {
            $(
                #[allow(missing_docs)]
                $kind($record),
            )*
        }

        impl Record {
            /// Reads op `op`'s record as its kind's type.
            pub fn read(op: &OpInfo<'_>) -> Record {
                match op.kind {
                    $(OpKind::$kind => Record::$kind(<$record>::read(op)),)*
                }
            }

            /// Whether this build has the kernels of the record's kind.
            #[inline(always)]
            pub fn kind_built(&self) -> bool {
                match self {
                    $(Record::$kind(_) => OpKind::$kind.built(),)*
                }
            }

            /// Runs the record's kernel, matched directly rather than through
            /// [`Dispatch`], whose vtables would keep every kind's kernels
            /// linked, those a build leaves out too.
            #[inline(always)]
            fn run_built(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
                match self {
                    $(Record::$kind(r) if OpKind::$kind.built() => run_kind(r, s, io),)*
                    _ => Err(s.op.kind.left_out()),
                }
            }

            /// `f` of the record; of [`LeftOut`] when this build leaves its
            /// kind out, so that no code of that kind is linked.
            fn with<R>(&self, f: impl FnOnce(&dyn Dispatch) -> R) -> R {
                match self {
                    $(Record::$kind(r) if OpKind::$kind.built() => f(r),)*
                    _ => f(&LeftOut(self.kind())),
                }
            }

            /// The record's kind.
            fn kind(&self) -> OpKind {
                match self {
                    $(Record::$kind(_) => OpKind::$kind,)*
                }
            }
        }
    };
}

registry! {
    /// Convolution, also 1x1, grouped and depthwise.
    1 Conv2d "conv2d" false => conv::Conv2dRecord,
    /// Fully connected layer over the flattened input.
    2 Dense "dense" false => dense::DenseRecord,
    /// Max pooling.
    3 MaxPool "max_pool" false => pool::PoolRecord,
    /// Average pooling (also global).
    4 AvgPool "avg_pool" false => pool::PoolRecord,
    /// Residual add of two inputs.
    5 Add "add" true => add::AddRecord,
    /// Channel concatenation of 2..N inputs.
    6 Concat "concat" false => concat::ConcatRecord,
    /// Standalone activation (the record's activation byte).
    7 Activation "activation" true => act::ActivationRecord,
    /// Softmax over channels.
    8 Softmax "softmax" false => softmax::SoftmaxRecord,
    /// Convolution fused with the max pool over its output.
    9 ConvMaxPool "conv_max_pool" false => conv_pool::ConvPoolRecord,
    /// Convolution fused with the average pool over its output.
    10 ConvAvgPool "conv_avg_pool" false => conv_pool::ConvPoolRecord,
    /// Mean over rows and columns into its own quantization.
    11 Mean "mean" false => mean::MeanRecord,
}

/// Whether this build has any convolution kernel.
const fn conv_built() -> bool {
    use crate::ops::built;
    built::CONV_GENERAL || built::CONV_POINTWISE || built::CONV_DEPTHWISE
}

impl OpKind {
    /// Whether this build has the kernels of this kind (see
    /// `PICOCNN_MODELS` in the README).
    pub const fn built(self) -> bool {
        use crate::ops::built;
        match self {
            OpKind::Conv2d => built::CONV_OP && conv_built(),
            OpKind::Dense => built::DENSE,
            OpKind::MaxPool => built::MAX_POOL_OP && built::MAX_POOL,
            OpKind::AvgPool => built::AVG_POOL_OP && built::AVG_POOL,
            OpKind::Add => built::ADD,
            OpKind::Concat => built::CONCAT,
            OpKind::Activation => built::ACTIVATION,
            OpKind::Softmax => built::SOFTMAX,
            OpKind::Mean => built::MEAN,
            OpKind::ConvMaxPool => built::CONV_MAX_POOL_OP && conv_built() && built::MAX_POOL,
            OpKind::ConvAvgPool => built::CONV_AVG_POOL_OP && conv_built() && built::AVG_POOL,
        }
    }

    /// The error for an op of this kind in a build without its kernels.
    pub(crate) const fn left_out(self) -> Error {
        crate::ops::built::left_out(match self {
            OpKind::Conv2d => "convolution: left out of this build (PICOCNN_MODELS)",
            OpKind::Dense => "dense: left out of this build (PICOCNN_MODELS)",
            OpKind::MaxPool => "max pooling: left out of this build (PICOCNN_MODELS)",
            OpKind::AvgPool => "average pooling: left out of this build (PICOCNN_MODELS)",
            OpKind::Add => "add: left out of this build (PICOCNN_MODELS)",
            OpKind::Concat => "concat: left out of this build (PICOCNN_MODELS)",
            OpKind::Activation => "activation: left out of this build (PICOCNN_MODELS)",
            OpKind::Softmax => "softmax: left out of this build (PICOCNN_MODELS)",
            OpKind::Mean => "mean: left out of this build (PICOCNN_MODELS)",
            OpKind::ConvMaxPool => {
                "convolution with max pooling: left out of this build (PICOCNN_MODELS)"
            }
            OpKind::ConvAvgPool => {
                "convolution with average pooling: left out of this build (PICOCNN_MODELS)"
            }
        })
    }
}

/// [`OpRecord`] without its constructor, so that a record of any kind can
/// be borrowed as one type.
trait Dispatch {
    fn takes_inputs(&self, n: usize) -> bool;
    fn emit(&self) -> Result<[u32; 12]>;
    fn check(&self, s: &Site<'_, '_>) -> Result<()>;
    fn layer(&self, s: &Site<'_, '_>) -> Layer;
    fn macs(&self, s: &Site<'_, '_>) -> usize;
    fn scratch_len(&self, s: &Site<'_, '_>) -> usize;
    fn footprint(&self, s: &Site<'_, '_>) -> Footprint;
}

/// One kind's kernels, kept a function of their own (as a `dyn` call kept
/// them): inlined into one match, the Cortex-M0's registers spill more.
#[inline(never)]
fn run_kind<T: OpRecord>(r: &T, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
    r.run(s, io)
}

/// A record of a kind this build leaves out (`PICOCNN_MODELS`): its check
/// fails, so `Model::parse` refuses the model and no other method is used.
struct LeftOut(OpKind);

impl Dispatch for LeftOut {
    fn takes_inputs(&self, _n: usize) -> bool {
        true
    }
    fn emit(&self) -> Result<[u32; 12]> {
        Err(self.0.left_out())
    }
    fn check(&self, _s: &Site<'_, '_>) -> Result<()> {
        Err(self.0.left_out())
    }
    fn layer(&self, _s: &Site<'_, '_>) -> Layer {
        Layer::Concat
    }
    fn macs(&self, _s: &Site<'_, '_>) -> usize {
        0
    }
    fn scratch_len(&self, _s: &Site<'_, '_>) -> usize {
        0
    }
    fn footprint(&self, _s: &Site<'_, '_>) -> Footprint {
        Footprint::default()
    }
}

impl<T: OpRecord> Dispatch for T {
    fn takes_inputs(&self, n: usize) -> bool {
        OpRecord::takes_inputs(self, n)
    }
    fn emit(&self) -> Result<[u32; 12]> {
        OpRecord::emit(self)
    }
    fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        OpRecord::check(self, s)
    }
    fn layer(&self, s: &Site<'_, '_>) -> Layer {
        OpRecord::layer(self, s)
    }
    fn macs(&self, s: &Site<'_, '_>) -> usize {
        OpRecord::macs(self, s)
    }
    fn scratch_len(&self, s: &Site<'_, '_>) -> usize {
        OpRecord::scratch_len(self, s)
    }
    fn footprint(&self, s: &Site<'_, '_>) -> Footprint {
        OpRecord::footprint(self, s)
    }
}

impl Record {
    /// Checks the record against the model; also that it reads back from
    /// exactly the stored words (unused words zero).
    pub fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        self.with(|r| {
            r.check(s)?;
            if r.emit().ok() != Some(s.op.params) {
                return Err(s.invalid("unused op parameter not zero"));
            }
            Ok(())
        })
    }

    /// Whether the op takes `n` inputs.
    pub fn takes_inputs(&self, n: usize) -> bool {
        self.with(|r| r.takes_inputs(n))
    }

    /// The layer.
    pub fn layer(&self, s: &Site<'_, '_>) -> Layer {
        self.with(|r| r.layer(s))
    }

    /// Multiply-accumulates per inference.
    pub fn macs(&self, s: &Site<'_, '_>) -> usize {
        self.with(|r| r.macs(s))
    }

    /// Scratch bytes.
    pub fn scratch_len(&self, s: &Site<'_, '_>) -> usize {
        self.with(|r| r.scratch_len(s))
    }

    /// Parameters and data bytes.
    pub fn footprint(&self, s: &Site<'_, '_>) -> Footprint {
        self.with(|r| r.footprint(s))
    }

    /// Fails when this build leaves out the op's kernels: its type's, its
    /// kind's or its loop nest's.
    pub fn check_built(&self, s: &Site<'_, '_>) -> Result<()> {
        if !s.op.dtype.built() {
            return Err(s.op.dtype.not_built());
        }
        if !self.kind_built() {
            return Err(s.op.kind.left_out());
        }
        let kind = match self {
            Record::Conv2d(r) => r.geometry(s).kind(),
            Record::ConvMaxPool(r) | Record::ConvAvgPool(r) => {
                let g = r.geometry(s);
                if !g.built() {
                    return Err(g.left_out());
                }
                g.conv().kind()
            }
            _ => return Ok(()),
        };
        if !kind.built() {
            return Err(kind.left_out());
        }
        Ok(())
    }

    /// Runs the op.
    pub fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        self.run_built(s, io)
    }
}

/// `a | b << 16`, the packing of two `u16` in one word.
pub(crate) fn pack(a: usize, b: usize) -> Result<u32> {
    if a > 0xffff || b > 0xffff {
        return Err(Error::Unsupported {
            what: "kernel, stride, dilation or padding above 65535",
        });
    }
    Ok(a as u32 | (b as u32) << 16)
}

/// The two `u16` halves of a word.
pub(crate) fn unpack(w: u32) -> [usize; 2] {
    [(w & 0xffff) as usize, (w >> 16) as usize]
}

/// Explicit padding cells `[top, bottom, left, right]` from two words.
pub(crate) fn read_pads(p: &[u32; 12], at: usize) -> [usize; 4] {
    let [top, bottom] = unpack(p[at]);
    let [left, right] = unpack(p[at + 1]);
    [top, bottom, left, right]
}

/// The padding cells as a [`Padding`](crate::ops::Padding).
pub(crate) fn padding(pads: [usize; 4]) -> crate::ops::Padding {
    let [top, bottom, left, right] = pads;
    crate::ops::Padding::Explicit {
        top,
        bottom,
        left,
        right,
    }
}

/// Four words `[zp_in, multiplier, shift, zp_out]` as a rescale.
pub(crate) fn rescale_from(w: &[u32]) -> Rescale {
    Rescale {
        input_zero_point: w[0] as i32,
        requant: Requant {
            multiplier: w[1] as i32,
            shift: w[2] as i32,
        },
        output_zero_point: w[3] as i32,
    }
}

/// A rescale as its four words.
pub(crate) fn rescale_words(r: Rescale) -> [u32; 4] {
    [
        r.input_zero_point as u32,
        r.requant.multiplier as u32,
        r.requant.shift as u32,
        r.output_zero_point as u32,
    ]
}

impl Model<'_> {
    /// The layer `op` computes, in the description training uses (padding
    /// as the explicit cells the record stores).
    ///
    /// ```
    /// # use picocnn::model::{Layer, Model};
    /// #[repr(C, align(16))]
    /// struct Aligned<T: ?Sized>(T);
    /// static BLOB: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../tests/models/lenet5_i8.pcnn"));
    ///
    /// let model = Model::parse(&BLOB.0)?;
    /// let first = model.layer(&model.op(0));
    /// assert!(matches!(first, Layer::Conv2d { out_channels: 6, kernel: [5, 5], .. }));
    /// # Ok::<(), picocnn::Error>(())
    /// ```
    pub fn layer(&self, op: &OpInfo<'_>) -> Layer {
        Record::read(op).layer(&Site::new(self, op, 0))
    }
}

/// Checks that every input tensor has the output's shape.
pub(crate) fn check_same_shapes(s: &Site<'_, '_>) -> Result<()> {
    let out = s.output().shape;
    for k in 0..s.op.input_count() {
        if s.input(k).shape != out {
            return Err(s.invalid("op output shape does not follow from its input"));
        }
    }
    Ok(())
}

/// A model data or arena region viewed as elements.
pub(crate) use super::element::{cast, cast_mut};

/// An op whose type's kernels this build leaves out ([`Interpreter::new`]
/// refuses such models first).
///
/// [`Interpreter::new`]: crate::model::Interpreter::new
// One out-of-line copy for every kind's run (each arm that inlined the
// error cost a firmware about 30 bytes); never taken for a checked model.
#[cold]
#[inline(never)]
pub(super) fn not_built(dtype: super::format::DType) -> Error {
    dtype.not_built()
}

/// Bytes of the int8 weight tables of `channels` outputs: int32 bias,
/// multiplier and shift each.
pub(crate) const fn i8_tables_len(channels: usize) -> usize {
    12 * channels
}

/// Scratch placement check shared by the view.
pub(crate) fn check_scratch(s: &Site<'_, '_>, len: usize, arena_len: usize) -> Result<()> {
    let off = s.op.scratch_offset;
    if len > 0 {
        if !off.is_multiple_of(ARENA_ALIGN) {
            return Err(Error::Misaligned {
                what: "scratch arena offset",
            });
        }
        match off.checked_add(len) {
            Some(end) if end <= arena_len => Ok(()),
            _ => Err(s.invalid("scratch outside the arena")),
        }
    } else if off != 0 {
        Err(s.invalid("scratch offset without scratch"))
    } else {
        Ok(())
    }
}

/// What the fine-tuner needs of one op: the geometry of a convolution,
/// dense layer or pool, and a weighted int8 op's stored weights.
pub(crate) enum Parts<'a> {
    Conv(crate::ops::conv::Conv2d, crate::ops::WeightsI8<'a>),
    Dense(crate::ops::dense::Dense, crate::ops::WeightsI8<'a>),
    Pool(crate::ops::pool::Pool2d, crate::ops::pool::PoolKind),
    Other,
}

/// The [`Parts`] of op `i` of a checked model (`i < op_count()`).
pub(crate) fn parts<'a>(model: &Model<'a>, i: usize) -> Result<Parts<'a>> {
    let op = model.op(i);
    let s = Site::new(model, &op, i);
    let int8 = op.dtype == super::format::DType::I8;
    Ok(match Record::read(&op) {
        Record::Conv2d(r) if int8 => {
            let g = r.geometry(&s);
            let w = r
                .weights
                .i8(&s, Tuned::default(), g.filter_len(), g.output_shape().c)?;
            Parts::Conv(g, w)
        }
        Record::Dense(r) if int8 => {
            let g = dense::DenseRecord::geometry(&s);
            let w = r
                .weights
                .i8(&s, Tuned::default(), g.weights_len(), g.out_features())?;
            Parts::Dense(g, w)
        }
        Record::MaxPool(r) | Record::AvgPool(r) if int8 => Parts::Pool(r.geometry(&s), r.kind),
        _ => Parts::Other,
    })
}
