//! A checked, zero-copy view of a model blob.

use super::format::{self as f, DType, OpKind};
use super::layer::Layer;
use crate::error::{Error, Result};
use crate::ops::conv::{Conv2d, Conv2dConfig};
use crate::ops::dense::Dense;
use crate::ops::pool::{Pool2d, Pool2dConfig};
use crate::ops::Padding;
use crate::quant::{Activation, QParams, Requant, Rescale};
use crate::tensor::Shape;
use core::ops::Range;

fn invalid(what: &'static str, index: usize) -> Error {
    Error::InvalidModel { what, index }
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
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
    inputs_first: usize,
    n_inputs: usize,
}

impl OpInfo<'_> {
    /// Number of inputs.
    pub fn input_count(&self) -> usize {
        self.n_inputs
    }

    fn lo(&self, i: usize) -> usize {
        (self.params[i] & 0xffff) as usize
    }

    fn hi(&self, i: usize) -> usize {
        (self.params[i] >> 16) as usize
    }

    fn padding(&self) -> Padding {
        Padding::Explicit {
            top: self.lo(3),
            bottom: self.hi(3),
            left: self.lo(4),
            right: self.hi(4),
        }
    }
}

/// Fixed-point parameters of an int8 op that has them.
pub(crate) fn rescale_at(p: &[u32; 12], i: usize) -> Rescale {
    Rescale {
        input_zero_point: p[i] as i32,
        requant: Requant {
            multiplier: p[i + 1] as i32,
            shift: p[i + 2] as i32,
        },
        output_zero_point: p[i + 3] as i32,
    }
}

/// The geometry of a layer, rebuilt from its record and checked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Geometry {
    Conv(Conv2d),
    Dense(Dense),
    Pool(Pool2d),
    None,
}

/// A model blob, checked once by [`Model::parse`]; afterwards every accessor
/// and the interpreter read it in place without further checks.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    blob: &'a [u8],
    arena_len: usize,
    n_tensors: usize,
    n_ops: usize,
    n_inputs: usize,
    n_outputs: usize,
    tensors_off: usize,
    ops_off: usize,
    lists_off: usize,
    strings_off: usize,
    strings_len: usize,
    n_strings: usize,
    data_off: usize,
    data_len: usize,
}

impl<'a> Model<'a> {
    /// Checks everything in `blob` once: length, alignment (the blob must
    /// start on a 4-byte boundary; weights are read in place), CRC, version,
    /// enum values, bounds of every section, tensor and weight array, shapes
    /// consistent from op to op, the graph acyclic, every op's parameters
    /// accepted by its kernel, and the arena plan free of overlaps.
    pub fn parse(blob: &'a [u8]) -> Result<Model<'a>> {
        if blob.len() < f::HEADER_LEN {
            return Err(Error::Truncated {
                needed: f::HEADER_LEN,
                got: blob.len(),
            });
        }
        if blob[f::header::MAGIC..f::header::MAGIC + 4] != f::MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(blob, f::header::VERSION);
        if version != f::VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: f::VERSION,
            });
        }
        if u16_at(blob, f::header::HEADER_LEN) as usize != f::HEADER_LEN {
            return Err(invalid("header length", 0));
        }
        let total = u32_at(blob, f::header::TOTAL_LEN) as usize;
        if total < f::HEADER_LEN {
            return Err(invalid("total length below the header", 0));
        }
        if blob.len() < total {
            return Err(Error::Truncated {
                needed: total,
                got: blob.len(),
            });
        }
        let blob = &blob[..total];
        let stored = u32_at(blob, f::header::CRC);
        let computed = crc32(&blob[16..]);
        if stored != computed {
            return Err(Error::ChecksumMismatch { stored, computed });
        }
        if !(blob.as_ptr() as usize).is_multiple_of(4) {
            return Err(Error::Misaligned {
                what: "model blob must start on a 4-byte boundary",
            });
        }
        let h = |off| u32_at(blob, off) as usize;
        let h16 = |off| u16_at(blob, off) as usize;
        if h16(f::header::RESERVED) != 0 || h(f::header::RESERVED2) != 0 {
            return Err(invalid("reserved header field not zero", 0));
        }
        let n_tensors = h16(f::header::N_TENSORS);
        let n_ops = h16(f::header::N_OPS);
        let n_inputs = h16(f::header::N_INPUTS);
        let n_outputs = h16(f::header::N_OUTPUTS);
        let lists_len = h(f::header::LISTS_LEN);
        let sections = [
            (
                h(f::header::TENSORS_OFF),
                n_tensors * f::TENSOR_LEN,
                "tensor table",
            ),
            (h(f::header::OPS_OFF), n_ops * f::OP_LEN, "op table"),
            (
                h(f::header::LISTS_OFF),
                lists_len.checked_mul(2).ok_or(Error::Overflow)?,
                "index lists",
            ),
            (
                h(f::header::STRINGS_OFF),
                h(f::header::STRINGS_LEN),
                "string table",
            ),
            (
                h(f::header::DATA_OFF),
                h(f::header::DATA_LEN),
                "data section",
            ),
        ];
        let mut end = f::HEADER_LEN;
        for (i, &(off, len, what)) in sections.iter().enumerate() {
            if off % f::SECTION_ALIGN != 0 {
                return Err(Error::Misaligned { what });
            }
            if off < end {
                return Err(invalid("sections overlap or are out of order", i));
            }
            end = off.checked_add(len).ok_or(Error::Overflow)?;
            if end > total {
                return Err(Error::Truncated {
                    needed: end,
                    got: total,
                });
            }
        }
        let planned = h(f::header::ARENA_LEN);
        if planned > isize::MAX as usize / 2 {
            return Err(invalid("arena length", 0));
        }
        let mut m = Model {
            blob,
            arena_len: planned,
            n_tensors,
            n_ops,
            n_inputs,
            n_outputs,
            tensors_off: sections[0].0,
            ops_off: sections[1].0,
            lists_off: sections[2].0,
            strings_off: sections[3].0,
            strings_len: sections[3].1,
            n_strings: 0,
            data_off: sections[4].0,
            data_len: sections[4].1,
        };
        m.n_strings = m.check_strings()?;
        m.check_metadata()?;
        if n_inputs == 0 || n_outputs == 0 {
            return Err(invalid(
                "a model needs at least one input and one output",
                0,
            ));
        }
        if n_inputs + n_outputs > lists_len {
            return Err(invalid(
                "index lists shorter than the inputs and outputs",
                0,
            ));
        }
        for t in 0..n_tensors {
            m.check_tensor(t)?;
        }
        for i in 0..n_inputs + n_outputs {
            if m.list(i) >= n_tensors {
                return Err(invalid("model input or output is not a tensor", i));
            }
        }
        for i in 0..n_inputs {
            for j in 0..i {
                if m.list(i) == m.list(j) {
                    return Err(invalid("model input listed twice", i));
                }
            }
        }
        for i in 0..n_ops {
            m.check_op(i)?;
        }
        for o in 0..n_outputs {
            let t = m.list(n_inputs + o);
            if m.producer(t).is_none() {
                return Err(invalid("model output not produced by any op", o));
            }
        }
        m.check_plan()?;
        Ok(m)
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
            qparams: (dtype == DType::I8).then_some(QParams {
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
            activation: activation(r[f::op::ACTIVATION]).unwrap_or_default(),
            name: self.string(u16_at(r, f::op::NAME)),
            output: u16_at(r, f::op::OUTPUT) as usize,
            scratch_offset: u32_at(r, f::op::SCRATCH_OFFSET) as usize,
            params,
            inputs_first: u16_at(r, f::op::INPUTS_FIRST) as usize,
            n_inputs: u16_at(r, f::op::N_INPUTS) as usize,
        }
    }

    /// Tensor index of input `k` of `op`.
    pub fn op_input(&self, op: &OpInfo<'_>, k: usize) -> usize {
        self.list(op.inputs_first + k.min(op.n_inputs.saturating_sub(1)))
    }

    /// The layer `op` computes, in the description training uses (padding
    /// as the explicit cells the record stores).
    ///
    /// ```
    /// # use picocnn::model::{Layer, Model};
    /// #[repr(C, align(16))]
    /// struct Aligned<T: ?Sized>(T);
    /// static BLOB: &Aligned<[u8]> = &Aligned(*include_bytes!("../../tests/models/lenet5_i8.pcnn"));
    ///
    /// let model = Model::parse(&BLOB.0)?;
    /// let first = model.layer(&model.op(0));
    /// assert!(matches!(first, Layer::Conv2d { out_channels: 6, kernel: [5, 5], .. }));
    /// # Ok::<(), picocnn::Error>(())
    /// ```
    pub fn layer(&self, op: &OpInfo<'_>) -> Layer {
        let window = [op.lo(0), op.hi(0)];
        let stride = [op.lo(1), op.hi(1)];
        match op.kind {
            OpKind::Conv2d => Layer::Conv2d {
                out_channels: self.tensor(op.output).shape.c,
                kernel: window,
                stride,
                dilation: [op.lo(2), op.hi(2)],
                padding: op.padding(),
                groups: op.params[5] as usize,
                activation: op.activation,
            },
            OpKind::Dense => Layer::Dense {
                out_features: self.tensor(op.output).shape.len(),
                activation: op.activation,
            },
            OpKind::MaxPool => Layer::MaxPool {
                window,
                stride,
                padding: op.padding(),
            },
            OpKind::AvgPool => Layer::AvgPool {
                window,
                stride,
                padding: op.padding(),
            },
            OpKind::Add => Layer::Add {
                activation: op.activation,
            },
            OpKind::Concat => Layer::Concat,
            OpKind::Activation => Layer::Activation(op.activation),
            OpKind::Softmax => Layer::Softmax {
                beta: f32::from_bits(op.params[3]),
            },
        }
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

    fn list(&self, i: usize) -> usize {
        u16_at(self.blob, self.lists_off + 2 * i) as usize
    }

    /// A typed array of the data section (checked in `parse`).
    pub(crate) fn data_bytes(&self, off: u32, len: usize) -> &'a [u8] {
        let start = self.data_off + off as usize;
        &self.blob[start..start + len]
    }

    fn data_ref(
        &self,
        what: &'static str,
        index: usize,
        off: u32,
        bytes: usize,
        align: usize,
    ) -> Result<()> {
        let off = off as usize;
        if !off.is_multiple_of(align) {
            return Err(Error::Misaligned { what });
        }
        match off.checked_add(bytes) {
            Some(end) if end <= self.data_len => Ok(()),
            _ => Err(invalid(what, index)),
        }
    }

    fn check_strings(&self) -> Result<usize> {
        let s = &self.blob[self.strings_off..self.strings_off + self.strings_len];
        let mut off = 0;
        let mut n = 0;
        while off < s.len() {
            if off + 2 > s.len() {
                return Err(invalid("string table entry truncated", n));
            }
            let len = u16_at(s, off) as usize;
            let end = off + 2 + len;
            if end > s.len() {
                return Err(invalid("string table entry truncated", n));
            }
            if core::str::from_utf8(&s[off + 2..end]).is_err() {
                return Err(invalid("string is not UTF-8", n));
            }
            off = end;
            n += 1;
        }
        if n >= f::NO_STRING as usize {
            return Err(invalid("too many strings", n));
        }
        Ok(n)
    }

    fn check_string_index(&self, i: u16, what: &'static str, index: usize) -> Result<()> {
        if i == f::NO_STRING || (i as usize) < self.n_strings {
            Ok(())
        } else {
            Err(invalid(what, index))
        }
    }

    fn check_metadata(&self) -> Result<()> {
        self.check_string_index(u16_at(self.blob, f::header::NAME), "model name string", 0)?;
        let first = u16_at(self.blob, f::header::LABELS_FIRST) as usize;
        let n = self.label_count();
        if n > 0 && first + n > self.n_strings {
            return Err(invalid("class labels outside the string table", first));
        }
        let (scale, offset) = self.normalisation();
        if !scale.is_finite() || !offset.is_finite() {
            return Err(invalid("input normalisation not finite", 0));
        }
        Ok(())
    }

    fn check_tensor(&self, t: usize) -> Result<()> {
        let r = &self.blob[self.tensors_off + t * f::TENSOR_LEN..][..f::TENSOR_LEN];
        let dtype = DType::from_u8(r[f::tensor::DTYPE]).ok_or(invalid("tensor type", t))?;
        if r[1] != 0 || u16_at(r, 2) != 0 || u32_at(r, f::tensor::RESERVED2) != 0 {
            return Err(invalid("reserved tensor field not zero", t));
        }
        let info = self.tensor(t);
        let n = info
            .shape
            .validate("tensor shape")
            .map_err(|_| invalid("tensor shape", t))?;
        let bytes = n.checked_mul(dtype.size()).ok_or(Error::Overflow)?;
        if !info.arena_offset.is_multiple_of(f::ARENA_ALIGN) {
            return Err(Error::Misaligned {
                what: "tensor arena offset",
            });
        }
        match info.arena_offset.checked_add(bytes) {
            Some(end) if end <= self.arena_len => {}
            _ => return Err(invalid("tensor outside the arena", t)),
        }
        let scale = f32::from_bits(u32_at(r, f::tensor::SCALE));
        let zp = u32_at(r, f::tensor::ZERO_POINT) as i32;
        match dtype {
            DType::I8 => {
                QParams::new(scale, zp).map_err(|_| invalid("tensor quantization", t))?;
            }
            _ => {
                if scale.to_bits() != 0 || zp != 0 {
                    return Err(invalid("float tensor with quantization", t));
                }
            }
        }
        Ok(())
    }

    /// The op that produces tensor `t`, if any.
    fn producer(&self, t: usize) -> Option<usize> {
        (0..self.n_ops).find(|&i| self.op(i).output == t)
    }

    fn is_model_input(&self, t: usize) -> bool {
        (0..self.n_inputs).any(|i| self.list(i) == t)
    }

    fn is_model_output(&self, t: usize) -> bool {
        (0..self.n_outputs).any(|i| self.list(self.n_inputs + i) == t)
    }

    fn check_op(&self, i: usize) -> Result<()> {
        let r = &self.blob[self.ops_off + i * f::OP_LEN..][..f::OP_LEN];
        let kind = OpKind::from_u8(r[f::op::KIND]).ok_or(invalid("op kind", i))?;
        let dtype = DType::from_u8(r[f::op::DTYPE]).ok_or(invalid("op type", i))?;
        activation(r[f::op::ACTIVATION]).ok_or(invalid("op activation", i))?;
        if r[f::op::RESERVED] != 0 {
            return Err(invalid("reserved op field not zero", i));
        }
        self.check_string_index(u16_at(r, f::op::NAME), "op name string", i)?;
        let op = self.op(i);
        let lists_len = u32_at(self.blob, f::header::LISTS_LEN) as usize;
        if op.inputs_first < self.n_inputs + self.n_outputs
            || op.inputs_first + op.n_inputs > lists_len
        {
            return Err(invalid("op input list outside the index lists", i));
        }
        let wanted = match kind {
            OpKind::Add => op.n_inputs == 2,
            OpKind::Concat => op.n_inputs >= 2,
            _ => op.n_inputs == 1,
        };
        if !wanted {
            return Err(invalid("wrong number of op inputs", i));
        }
        // Every input exists before this op (so the graph is acyclic) and has
        // the op's type; the output is new.
        for k in 0..op.n_inputs {
            let t = self.op_input(&op, k);
            if t >= self.n_tensors {
                return Err(invalid("op input is not a tensor", i));
            }
            let defined = self.is_model_input(t) || (0..i).any(|j| self.op(j).output == t);
            if !defined {
                return Err(invalid("op input used before it is produced", i));
            }
            if self.tensor(t).dtype != dtype {
                return Err(invalid("op input of another type", i));
            }
        }
        if op.output >= self.n_tensors {
            return Err(invalid("op output is not a tensor", i));
        }
        if self.is_model_input(op.output) || (0..i).any(|j| self.op(j).output == op.output) {
            return Err(invalid("tensor produced twice", i));
        }
        if self.tensor(op.output).dtype != dtype {
            return Err(invalid("op output of another type", i));
        }
        let geometry = self.geometry(&op)?;
        let scratch = scratch_len(&op, geometry);
        if scratch > 0 {
            if !op.scratch_offset.is_multiple_of(f::ARENA_ALIGN) {
                return Err(Error::Misaligned {
                    what: "scratch arena offset",
                });
            }
            match op.scratch_offset.checked_add(scratch) {
                Some(end) if end <= self.arena_len => {}
                _ => return Err(invalid("scratch outside the arena", i)),
            }
        } else if op.scratch_offset != 0 {
            return Err(invalid("scratch offset without scratch", i));
        }
        self.check_params(i, &op, geometry)
    }

    /// Rebuilds and checks the op's geometry against its tensors.
    pub(crate) fn geometry(&self, op: &OpInfo<'_>) -> Result<Geometry> {
        let input = self.tensor(self.op_input(op, 0));
        let output = self.tensor(op.output);
        let index = op.output;
        let shape_err = || invalid("op output shape does not follow from its input", index);
        match op.kind {
            OpKind::Conv2d => {
                let groups = op.params[5] as usize;
                let config = Conv2dConfig {
                    input: input.shape,
                    out_channels: output.shape.c,
                    kernel: [op.lo(0), op.hi(0)],
                    stride: [op.lo(1), op.hi(1)],
                    dilation: [op.lo(2), op.hi(2)],
                    padding: op.padding(),
                    groups,
                };
                let conv = Conv2d::new(config).map_err(|_| invalid("conv parameters", index))?;
                if conv.output_shape() != output.shape {
                    return Err(shape_err());
                }
                Ok(Geometry::Conv(conv))
            }
            OpKind::Dense => {
                let dense = Dense::new(input.shape.len(), output.shape.len())
                    .map_err(|_| invalid("dense parameters", index))?;
                Ok(Geometry::Dense(dense))
            }
            OpKind::MaxPool | OpKind::AvgPool => {
                let config = Pool2dConfig {
                    input: input.shape,
                    window: [op.lo(0), op.hi(0)],
                    stride: [op.lo(1), op.hi(1)],
                    padding: op.padding(),
                };
                let pool = Pool2d::new(config).map_err(|_| invalid("pool parameters", index))?;
                if pool.output_shape() != output.shape {
                    return Err(shape_err());
                }
                Ok(Geometry::Pool(pool))
            }
            OpKind::Add | OpKind::Activation | OpKind::Softmax => {
                for k in 0..op.n_inputs {
                    if self.tensor(self.op_input(op, k)).shape != output.shape {
                        return Err(shape_err());
                    }
                }
                Ok(Geometry::None)
            }
            OpKind::Concat => {
                let mut c = 0usize;
                for k in 0..op.n_inputs {
                    let s = self.tensor(self.op_input(op, k)).shape;
                    if s.h != output.shape.h || s.w != output.shape.w {
                        return Err(shape_err());
                    }
                    c = c.checked_add(s.c).ok_or(Error::Overflow)?;
                }
                if c != output.shape.c {
                    return Err(shape_err());
                }
                Ok(Geometry::None)
            }
        }
    }

    fn check_params(&self, i: usize, op: &OpInfo<'_>, geometry: Geometry) -> Result<()> {
        let p = &op.params;
        let zero_from = |k: usize| -> Result<()> {
            if p[k..].iter().all(|&v| v == 0) {
                Ok(())
            } else {
                Err(invalid("unused op parameter not zero", i))
            }
        };
        let out_q = self.tensor(op.output).qparams;
        let in_q = self.tensor(self.op_input(op, 0)).qparams;
        match (op.kind, geometry) {
            (OpKind::Conv2d, Geometry::Conv(_)) | (OpKind::Dense, Geometry::Dense(_)) => {
                let (weights, channels) = match geometry {
                    Geometry::Conv(c) => (c.filter_len(), c.output_shape().c),
                    Geometry::Dense(d) => (d.weights_len(), d.out_features()),
                    _ => (0, 0),
                };
                if op.kind == OpKind::Dense && p[..7].iter().any(|&v| v != 0) {
                    return Err(invalid("unused op parameter not zero", i));
                }
                if op.kind == OpKind::Conv2d && p[6] != 0 {
                    return Err(invalid("unused op parameter not zero", i));
                }
                zero_from(11)?;
                let size = op.dtype.size();
                self.data_ref(
                    "filter outside the data section",
                    i,
                    p[7],
                    weights * size,
                    size,
                )?;
                match op.dtype {
                    DType::I8 => {
                        self.data_ref("bias outside the data section", i, p[8], channels * 4, 4)?;
                        self.data_ref(
                            "multipliers outside the data section",
                            i,
                            p[9],
                            channels * 4,
                            4,
                        )?;
                        self.data_ref(
                            "shifts outside the data section",
                            i,
                            p[10],
                            channels * 4,
                            4,
                        )?;
                        for o in 0..channels {
                            let m = self.data_i32(p[9], o);
                            let s = self.data_i32(p[10], o);
                            if m < 0 || !(-31..=30).contains(&s) {
                                return Err(invalid("requantization out of range", i));
                            }
                        }
                    }
                    _ => {
                        self.data_ref(
                            "bias outside the data section",
                            i,
                            p[8],
                            channels * size,
                            size,
                        )?;
                        if p[9] != 0 || p[10] != 0 {
                            return Err(invalid("unused op parameter not zero", i));
                        }
                    }
                }
            }
            (OpKind::MaxPool | OpKind::AvgPool, Geometry::Pool(_)) => {
                if p[2] != 0 {
                    return Err(invalid("unused op parameter not zero", i));
                }
                zero_from(5)?;
                if in_q != out_q {
                    return Err(invalid("int8 pooling changes quantization", i));
                }
            }
            (OpKind::Add, _) => match op.dtype {
                DType::I8 => {
                    for (zp, shift) in [(0, 2), (3, 5), (8, 7)] {
                        if !(-128..=127).contains(&(p[zp] as i32))
                            || !(-31..=30).contains(&(p[shift] as i32))
                        {
                            return Err(invalid("add parameters out of range", i));
                        }
                    }
                    if (p[1] as i32) < 0 || (p[4] as i32) < 0 || (p[6] as i32) < 0 {
                        return Err(invalid("add parameters out of range", i));
                    }
                    zero_from(9)?;
                }
                _ => zero_from(0)?,
            },
            (OpKind::Concat, _) => match op.dtype {
                DType::I8 => {
                    zero_from(1)?;
                    self.data_ref(
                        "concat rescales outside the data section",
                        i,
                        p[0],
                        op.n_inputs * 16,
                        4,
                    )?;
                    for k in 0..op.n_inputs {
                        self.rescale(p[0], k)
                            .validate()
                            .map_err(|_| invalid("concat rescale out of range", i))?;
                    }
                }
                _ => zero_from(0)?,
            },
            (OpKind::Activation, _) => match op.dtype {
                DType::I8 => {
                    rescale_at(p, 0)
                        .validate()
                        .map_err(|_| invalid("activation rescale out of range", i))?;
                    zero_from(4)?;
                }
                _ => zero_from(0)?,
            },
            (OpKind::Softmax, _) => {
                let beta = f32::from_bits(p[3]);
                if !(beta.is_finite() && beta > 0.0) {
                    return Err(invalid("softmax beta", i));
                }
                if op.dtype == DType::I8 {
                    crate::ops::softmax::SoftmaxI8::from_parts(
                        p[0] as i32,
                        p[1] as i32,
                        p[2] as i32,
                    )
                    .map_err(|_| invalid("softmax parameters", i))?;
                    let q = out_q.unwrap_or(QParams {
                        scale: 0.0,
                        zero_point: 0,
                    });
                    if q.scale != 1.0 / 256.0 || q.zero_point != -128 {
                        return Err(invalid(
                            "int8 softmax output must have scale 1/256 and zero point -128",
                            i,
                        ));
                    }
                } else if p[..3].iter().any(|&v| v != 0) {
                    return Err(invalid("unused op parameter not zero", i));
                }
                zero_from(4)?;
            }
            _ => return Err(invalid("op parameters", i)),
        }
        Ok(())
    }

    pub(crate) fn data_i32(&self, off: u32, k: usize) -> i32 {
        let b = self.data_bytes(off + 4 * k as u32, 4);
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    pub(crate) fn rescale(&self, off: u32, k: usize) -> Rescale {
        let g = |j: usize| self.data_i32(off, 4 * k + j);
        Rescale {
            input_zero_point: g(0),
            requant: Requant {
                multiplier: g(1),
                shift: g(2),
            },
            output_zero_point: g(3),
        }
    }

    /// Live interval `[first, last]` (op indices) of tensor `t`: from its
    /// producer (or 0 for a model input) to its last consumer (or past the
    /// last op for a model output).
    pub(crate) fn lifetime(&self, t: usize) -> (usize, usize) {
        let start = self.producer(t).unwrap_or(0);
        let mut end = start;
        for i in 0..self.n_ops {
            let op = self.op(i);
            if (0..op.n_inputs).any(|k| self.op_input(&op, k) == t) {
                end = end.max(i);
            }
        }
        if self.is_model_output(t) {
            end = self.n_ops;
        }
        (start, end)
    }

    /// True when op `i` writes its output over its first input, as the plan
    /// may arrange for ops that can run in place.
    pub(crate) fn in_place(&self, i: usize) -> bool {
        let op = self.op(i);
        let input = self.op_input(&op, 0);
        op.kind.can_run_in_place() && self.tensor(input).range() == self.tensor(op.output).range()
    }

    fn check_plan(&self) -> Result<()> {
        // Buffers: tensors 0..n_tensors, then op scratch n_tensors..
        let n = self.n_tensors + self.n_ops;
        let buffer = |b: usize| -> (Range<usize>, (usize, usize)) {
            if b < self.n_tensors {
                (self.tensor(b).range(), self.lifetime(b))
            } else {
                let i = b - self.n_tensors;
                let op = self.op(i);
                let len = self.geometry(&op).map(|g| scratch_len(&op, g)).unwrap_or(0);
                (op.scratch_offset..op.scratch_offset + len, (i, i))
            }
        };
        for i in 0..self.n_ops {
            if self.in_place(i) {
                let op = self.op(i);
                let input = self.op_input(&op, 0);
                let (_, (_, last)) = buffer(input);
                if self.is_model_input(input) || last != i {
                    return Err(invalid("op runs in place over a tensor still in use", i));
                }
                if op.n_inputs == 2 && self.op_input(&op, 1) == input {
                    return Err(invalid("op runs in place over both of its inputs", i));
                }
            }
        }
        let range = |b: usize| -> Range<usize> {
            if b < self.n_tensors {
                self.tensor(b).range()
            } else {
                buffer(b).0
            }
        };
        for a in 0..n {
            let ra = range(a);
            if ra.is_empty() {
                continue;
            }
            let mut la = None;
            for b in a + 1..n {
                let rb = range(b);
                // Lifetimes cost a scan of the ops: only for buffers that share bytes.
                if rb.is_empty() || !(ra.start < rb.end && rb.start < ra.end) {
                    continue;
                }
                let la = *la.get_or_insert_with(|| buffer(a).1);
                let lb = buffer(b).1;
                if la.0.max(lb.0) <= la.1.min(lb.1) {
                    // Sanctioned: an in-place op's output over its first input.
                    let sanctioned = a < self.n_tensors
                        && b < self.n_tensors
                        && (0..self.n_ops).any(|i| {
                            let op = self.op(i);
                            let input = self.op_input(&op, 0);
                            self.in_place(i)
                                && ((input == a && op.output == b)
                                    || (input == b && op.output == a))
                        });
                    if !sanctioned {
                        return Err(invalid("arena plan overlaps live buffers", b));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Scratch bytes of an op.
pub(crate) fn scratch_len(op: &OpInfo<'_>, geometry: Geometry) -> usize {
    match (op.dtype, geometry) {
        (DType::I8, Geometry::Conv(c)) => c.scratch_len_i8(),
        (DType::I8, Geometry::Dense(d)) => d.scratch_len_i8(),
        _ => 0,
    }
}

fn activation(v: u8) -> Option<Activation> {
    match v {
        0 => Some(Activation::None),
        1 => Some(Activation::Relu),
        2 => Some(Activation::Relu6),
        _ => None,
    }
}

/// CRC-32 (ISO-HDLC, the one of zlib and PNG).
pub fn crc32(bytes: &[u8]) -> u32 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    CRC.checksum(bytes)
}
