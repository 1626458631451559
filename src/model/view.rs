//! A checked, zero-copy view of a model blob.

use super::format::activation_of;
use super::format::{self as f, DType, OpKind, Train};
use crate::error::Error;
use crate::quant::{Activation, QParams};
use crate::tensor::Shape;
use core::ops::Range;

pub(super) fn invalid(what: &'static str, index: usize) -> Error {
    Error::InvalidModel { what, index }
}

// One bounds check per field; a field past the end reads as zero (parse
// checks every length before any field is read).
pub(super) fn u16_at(b: &[u8], off: usize) -> u16 {
    match b.get(off..off + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

pub(super) fn u32_at(b: &[u8], off: usize) -> u32 {
    match b.get(off..off + 4) {
        Some(&[x, y, z, w]) => u32::from_le_bytes([x, y, z, w]),
        _ => 0,
    }
}

/// One activation tensor of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TensorInfo {
    /// Element type.
    pub dtype: DType,
    /// Shape (NHWC, batch 1).
    pub shape: Shape,
    /// Quantization parameters of int8 tensors.
    pub qparams: Option<QParams>,
    /// Byte offset in the (16-byte aligned) arena.
    pub arena_offset: usize,
}

impl TensorInfo {
    /// Bytes of the tensor.
    pub fn byte_len(&self) -> usize {
        self.shape.len() * self.dtype.size()
    }

    /// Its bytes in the arena.
    pub fn range(&self) -> Range<usize> {
        self.arena_offset..self.arena_offset + self.byte_len()
    }
}

/// One op of a model, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpInfo<'a> {
    /// What the op computes.
    pub kind: OpKind,
    /// Element type of its tensors.
    pub dtype: DType,
    /// Fused activation.
    pub activation: Activation,
    /// Layer name (empty when the blob has none).
    pub name: &'a str,
    /// Output tensor.
    pub output: usize,
    /// Byte offset of its scratch buffer in the arena.
    pub scratch_offset: usize,
    /// Parameter words (see [`OpKind`]).
    pub params: [u32; 12],
    /// What on-device fine-tuning updates.
    pub train: Train,
    pub(super) inputs_first: usize,
    pub(super) n_inputs: usize,
}

impl OpInfo<'_> {
    /// Number of inputs.
    pub fn input_count(&self) -> usize {
        self.n_inputs
    }
}

/// A model blob, checked once by [`Model::parse`]; afterwards every accessor
/// and the interpreter read it in place without further checks.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    pub(super) blob: &'a [u8],
    pub(super) arena_len: usize,
    pub(super) n_tensors: usize,
    pub(super) n_ops: usize,
    pub(super) n_inputs: usize,
    pub(super) n_outputs: usize,
    pub(super) tensors_off: usize,
    pub(super) ops_off: usize,
    pub(super) lists_off: usize,
    pub(super) strings_off: usize,
    pub(super) strings_len: usize,
    pub(super) n_strings: usize,
    pub(super) data_off: usize,
    pub(super) data_len: usize,
}

impl<'a> Model<'a> {
    /// Bytes of the training buffer the recorded trainable set needs (0
    /// when the model has none), as [`FineTuner::train_len`](crate::learn::FineTuner::train_len)
    /// gives them.
    pub fn train_len(&self) -> usize {
        u32_at(self.blob, f::header::TRAIN_LEN) as usize
    }

    /// Byte offset of op `i`'s record in the blob.
    pub(crate) fn op_record_offset(&self, i: usize) -> usize {
        self.ops_off + i * f::OP_LEN
    }

    /// Arena bytes the interpreter needs, at any address (the plan plus up
    /// to 15 bytes to align it to 16).
    pub fn arena_len(&self) -> usize {
        self.arena_len + f::ARENA_ALIGN - 1
    }

    /// Arena bytes of the plan itself, for an arena that starts on a 16-byte
    /// boundary.
    pub fn planned_arena_len(&self) -> usize {
        self.arena_len
    }

    /// The blob's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.blob
    }

    /// The data section (weights and tables) the ops point into.
    pub fn data(&self) -> &'a [u8] {
        &self.blob[self.data_off..self.data_off + self.data_len]
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.n_tensors
    }

    /// Number of ops.
    pub fn op_count(&self) -> usize {
        self.n_ops
    }

    /// Number of model inputs.
    pub fn input_count(&self) -> usize {
        self.n_inputs
    }

    /// Number of model outputs.
    pub fn output_count(&self) -> usize {
        self.n_outputs
    }

    /// Tensor index of model input `i` (`i < input_count()`).
    pub fn input(&self, i: usize) -> Option<usize> {
        (i < self.n_inputs).then(|| self.list(i))
    }

    /// Tensor index of model output `i` (`i < output_count()`).
    pub fn output(&self, i: usize) -> Option<usize> {
        (i < self.n_outputs).then(|| self.list(self.n_inputs + i))
    }

    /// The model's name.
    pub fn name(&self) -> &'a str {
        self.string(u16_at(self.blob, f::header::NAME))
    }

    /// Number of class labels.
    pub fn label_count(&self) -> usize {
        u16_at(self.blob, f::header::N_LABELS) as usize
    }

    /// Class label `i`.
    pub fn label(&self, i: usize) -> Option<&'a str> {
        let first = u16_at(self.blob, f::header::LABELS_FIRST) as usize;
        (i < self.label_count()).then(|| self.string((first + i) as u16))
    }

    /// Input normalisation `(scale, offset)`: the input tensor's real value
    /// is `raw * scale + offset` for a raw sample value (a pixel in 0..=255).
    pub fn normalisation(&self) -> (f32, f32) {
        (
            f32::from_bits(u32_at(self.blob, f::header::NORM_SCALE)),
            f32::from_bits(u32_at(self.blob, f::header::NORM_OFFSET)),
        )
    }

    /// Tensor `t` (`t < tensor_count()`).
    pub fn tensor(&self, t: usize) -> TensorInfo {
        let r = &self.blob[self.tensors_off + t * f::TENSOR_LEN..][..f::TENSOR_LEN];
        let dtype = DType::from_u8(r[f::tensor::DTYPE]).unwrap_or(DType::I8);
        let scale = f32::from_bits(u32_at(r, f::tensor::SCALE));
        let zp = u32_at(r, f::tensor::ZERO_POINT) as i32;
        TensorInfo {
            dtype,
            shape: Shape::new(
                u32_at(r, f::tensor::H) as usize,
                u32_at(r, f::tensor::W) as usize,
                u32_at(r, f::tensor::C) as usize,
            ),
            qparams: dtype.quantized().then_some(QParams {
                scale,
                zero_point: zp,
            }),
            arena_offset: u32_at(r, f::tensor::ARENA_OFFSET) as usize,
        }
    }

    /// Op `i` (`i < op_count()`).
    pub fn op(&self, i: usize) -> OpInfo<'a> {
        let r = &self.blob[self.ops_off + i * f::OP_LEN..][..f::OP_LEN];
        let mut params = [0u32; 12];
        for (k, p) in params.iter_mut().enumerate() {
            *p = u32_at(r, f::op::PARAMS + 4 * k);
        }
        OpInfo {
            kind: OpKind::from_u8(r[f::op::KIND]).unwrap_or(OpKind::Activation),
            dtype: DType::from_u8(r[f::op::DTYPE]).unwrap_or(DType::I8),
            activation: activation_of(r[f::op::ACTIVATION]).unwrap_or(Activation::None),
            name: self.string(u16_at(r, f::op::NAME)),
            output: u16_at(r, f::op::OUTPUT) as usize,
            scratch_offset: u32_at(r, f::op::SCRATCH_OFFSET) as usize,
            params,
            train: Train::from_u8(r[f::op::TRAIN]).unwrap_or(Train::Frozen),
            inputs_first: u16_at(r, f::op::INPUTS_FIRST) as usize,
            n_inputs: u16_at(r, f::op::N_INPUTS) as usize,
        }
    }

    /// Tensor index of input `k` of `op`.
    pub fn op_input(&self, op: &OpInfo<'_>, k: usize) -> usize {
        self.list(op.inputs_first + k.min(op.n_inputs.saturating_sub(1)))
    }

    /// String `i` of the string table ("" when absent).
    pub fn string(&self, i: u16) -> &'a str {
        if i == f::NO_STRING {
            return "";
        }
        let s = &self.blob[self.strings_off..self.strings_off + self.strings_len];
        let mut off = 0;
        let mut k = 0;
        while off + 2 <= s.len() {
            let len = u16_at(s, off) as usize;
            let bytes = &s[off + 2..(off + 2 + len).min(s.len())];
            if k == i as usize {
                return core::str::from_utf8(bytes).unwrap_or("");
            }
            off += 2 + len;
            k += 1;
        }
        ""
    }

    pub(super) fn list(&self, i: usize) -> usize {
        u16_at(self.blob, self.lists_off + 2 * i) as usize
    }

    /// A typed array of the data section (checked in `parse`).
    pub(crate) fn data_bytes(&self, off: u32, len: usize) -> &'a [u8] {
        let start = self.data_off + off as usize;
        &self.blob[start..start + len]
    }
}

/// The CRC-32 of blobs, frames and parameter digests.
/// A 256-entry table (1 KB of flash): computed bit by bit, a 65 KB model's
/// check at start-up would take about 4 million instructions.
pub(crate) const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 (ISO-HDLC, the one of zlib and PNG).
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}
