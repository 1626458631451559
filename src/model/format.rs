//! The byte layout of a `.pcnn` model blob, version 1.
//!
//! Everything is little-endian. The blob starts with an 80-byte header,
//! followed by sections that each start on a 16-byte boundary: the tensor
//! table, the op table, the index lists, the string table and the data
//! (weights). A reader checks every field listed here once, in
//! [`Model::parse`](crate::model::Model::parse); `docs/format.md` describes
//! the same layout for people writing other tools.

use crate::error::Error;
use crate::quant::Activation;

/// `b"PCNN"`.
pub const MAGIC: [u8; 4] = *b"PCNN";
/// The format version this crate reads and writes.
pub const VERSION: u16 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 80;
/// Bytes of one tensor record.
pub const TENSOR_LEN: usize = 32;
/// Bytes of one op record.
pub const OP_LEN: usize = 64;
/// Alignment of every section, relative to the start of the blob.
pub const SECTION_ALIGN: usize = 16;
/// Alignment of every tensor and scratch buffer in the arena.
pub const ARENA_ALIGN: usize = 16;
/// Marks an absent string index.
pub const NO_STRING: u16 = u16::MAX;

/// Header field offsets.
pub mod header {
    /// `[u8; 4]` magic.
    pub const MAGIC: usize = 0;
    /// `u16` format version.
    pub const VERSION: usize = 4;
    /// `u16` header length (80).
    pub const HEADER_LEN: usize = 6;
    /// `u32` length of the whole blob.
    pub const TOTAL_LEN: usize = 8;
    /// `u32` CRC-32 (ISO-HDLC, as zlib) of bytes `16..total_len`.
    pub const CRC: usize = 12;
    /// `u32` arena bytes the planned tensors and scratch buffers need.
    pub const ARENA_LEN: usize = 16;
    /// `u16` number of tensors.
    pub const N_TENSORS: usize = 20;
    /// `u16` number of ops.
    pub const N_OPS: usize = 22;
    /// `u16` number of model inputs.
    pub const N_INPUTS: usize = 24;
    /// `u16` number of model outputs.
    pub const N_OUTPUTS: usize = 26;
    /// `u32` offset of the tensor table.
    pub const TENSORS_OFF: usize = 28;
    /// `u32` offset of the op table.
    pub const OPS_OFF: usize = 32;
    /// `u32` offset of the index lists (`u16` entries).
    pub const LISTS_OFF: usize = 36;
    /// `u32` number of `u16` entries in the index lists.
    pub const LISTS_LEN: usize = 40;
    /// `u32` offset of the string table.
    pub const STRINGS_OFF: usize = 44;
    /// `u32` bytes of the string table.
    pub const STRINGS_LEN: usize = 48;
    /// `u32` offset of the data section.
    pub const DATA_OFF: usize = 52;
    /// `u32` bytes of the data section.
    pub const DATA_LEN: usize = 56;
    /// `u16` string index of the model's name.
    pub const NAME: usize = 60;
    /// `u16` string index of the first class label (labels are consecutive).
    pub const LABELS_FIRST: usize = 62;
    /// `u16` number of class labels.
    pub const N_LABELS: usize = 64;
    /// `u16` reserved, zero.
    pub const RESERVED: usize = 66;
    /// `f32` input normalisation: `input = raw * scale + offset`.
    pub const NORM_SCALE: usize = 68;
    /// `f32` input normalisation offset.
    pub const NORM_OFFSET: usize = 72;
    /// `u32` bytes of the fine-tuner's training buffer for the ops marked
    /// trainable (0 when none is): [`FineTuner::train_len`](crate::learn::FineTuner::train_len).
    pub const TRAIN_LEN: usize = 76;
}

/// Tensor record field offsets (32 bytes).
pub mod tensor {
    /// `u8` [`DType`](super::DType).
    pub const DTYPE: usize = 0;
    /// `u8`, `u16` reserved, zero.
    pub const RESERVED: usize = 1;
    /// `u32` byte offset in the arena.
    pub const ARENA_OFFSET: usize = 4;
    /// `u32` height.
    pub const H: usize = 8;
    /// `u32` width.
    pub const W: usize = 12;
    /// `u32` channels.
    pub const C: usize = 16;
    /// `f32` scale (int8 tensors; 0 for float).
    pub const SCALE: usize = 20;
    /// `i32` zero point (int8 tensors; 0 for float).
    pub const ZERO_POINT: usize = 24;
    /// `u32` reserved, zero.
    pub const RESERVED2: usize = 28;
}

/// Op record field offsets (64 bytes).
pub mod op {
    /// `u8` [`OpKind`](super::OpKind).
    pub const KIND: usize = 0;
    /// `u8` [`DType`](super::DType) of the op's tensors.
    pub const DTYPE: usize = 1;
    /// `u8` fused activation: 0 none, 1 ReLU, 2 ReLU6.
    pub const ACTIVATION: usize = 2;
    /// `u8` [`Train`](super::Train): what on-device fine-tuning updates.
    pub const TRAIN: usize = 3;
    /// `u16` index of the op's first input in the index lists.
    pub const INPUTS_FIRST: usize = 4;
    /// `u16` number of inputs.
    pub const N_INPUTS: usize = 6;
    /// `u16` output tensor.
    pub const OUTPUT: usize = 8;
    /// `u16` string index of the layer name.
    pub const NAME: usize = 10;
    /// `u32` byte offset of the op's scratch buffer in the arena.
    pub const SCRATCH_OFFSET: usize = 12;
    /// `[u32; 12]` op parameters.
    pub const PARAMS: usize = 16;
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DType {
    /// Asymmetric int8 with a scale and zero point.
    I8 = 1,
    /// IEEE f32.
    F32 = 2,
    /// IEEE f16, computed in f32.
    F16 = 3,
    /// Symmetric int16 (zero point 0) with a scale: TensorFlow Lite's 16x8
    /// activations, with int8 weights.
    I16 = 4,
}

impl DType {
    /// From the byte in a record.
    pub const fn from_u8(v: u8) -> Option<DType> {
        match v {
            1 => Some(DType::I8),
            2 => Some(DType::F32),
            3 => Some(DType::F16),
            4 => Some(DType::I16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::F32 => 4,
            DType::F16 => 2,
            DType::I16 => 2,
        }
    }

    /// Whether a convolution and pool of this type may run as one op (the
    /// 16x8 kernels run one op at a time).
    pub const fn fuses(self) -> bool {
        !matches!(self, DType::I16)
    }

    /// Whether tensors of this type carry a scale and zero point.
    pub const fn quantized(self) -> bool {
        matches!(self, DType::I8 | DType::I16)
    }

    /// Whether this build has the kernels of this type: the Cargo features
    /// `int8`, `f16` and `f32` (all on by default) leave the others out of a
    /// firmware's flash.
    pub const fn built(self) -> bool {
        match self {
            DType::I8 => crate::ops::built::INT8,
            DType::F32 => crate::ops::built::F32,
            DType::F16 => crate::ops::built::F16,
            DType::I16 => crate::ops::built::INT16,
        }
    }

    /// The error for a model of this type when its kernels are left out.
    pub const fn not_built_error(self) -> Error {
        self.not_built()
    }

    /// The error for a model of this type when its kernels are left out.
    pub(crate) const fn not_built(self) -> Error {
        Error::Unsupported {
            what: match self {
                DType::I8 => {
                    "int8 ops: this build of picocnn leaves out the int8 kernels (feature `int8`, PICOCNN_MODELS)"
                }
                DType::F32 => {
                    "f32 ops: this build of picocnn leaves out the f32 kernels (feature `f32`, PICOCNN_MODELS)"
                }
                DType::F16 => {
                    "f16 ops: this build of picocnn leaves out the f16 kernels (feature `f16`, PICOCNN_MODELS)"
                }
                DType::I16 => {
                    "int16 ops: this build of picocnn leaves out the 16x8 kernels (feature `int16`, PICOCNN_MODELS)"
                }
            },
        }
    }

    /// Short name.
    pub const fn name(self) -> &'static str {
        match self {
            DType::I8 => "int8",
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::I16 => "int16",
        }
    }
}

/// What on-device fine-tuning updates of an op (only int8 convolution and
/// dense ops can be marked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Train {
    /// Nothing.
    #[default]
    Frozen = 0,
    /// The bias.
    Bias = 1,
    /// The weights and the bias.
    All = 2,
}

impl Train {
    /// From the byte in a record.
    pub const fn from_u8(v: u8) -> Option<Train> {
        match v {
            0 => Some(Train::Frozen),
            1 => Some(Train::Bias),
            2 => Some(Train::All),
            _ => None,
        }
    }
}

/// The ops a model can hold, by their record's kind byte; each kind's
/// parameter words are described with its record in `model/op/`.
pub use super::op::OpKind;

/// The activation byte of a record.
#[cfg(feature = "std")]
pub(crate) const fn activation_byte(a: Activation) -> u8 {
    match a {
        Activation::None => 0,
        Activation::Relu => 1,
        Activation::Relu6 => 2,
    }
}

/// The activation of a record's byte.
pub(crate) const fn activation_of(v: u8) -> Option<Activation> {
    match v {
        0 => Some(Activation::None),
        1 => Some(Activation::Relu),
        2 => Some(Activation::Relu6),
        _ => None,
    }
}

/// Rounds `v` up to a multiple of `align` (a power of two).
pub const fn align_up(v: usize, align: usize) -> usize {
    (v + align - 1) & !(align - 1)
}
