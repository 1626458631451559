//! The checks of [`Model::parse`]: every section, tensor and op record
//! once, and the arena plan free of overlaps.

use super::format::{self as f, activation_of, DType, OpKind};
use super::op::{check_scratch, Record, Site};
use super::view::{crc32, invalid, u16_at, u32_at, Model};
use crate::error::{Error, Result};
use crate::quant::QParams;
use core::ops::Range;

impl<'a> Model<'a> {
    /// Checks everything in `blob` once: length, alignment (the blob must
    /// start on a 4-byte boundary; weights are read in place), CRC, version,
    /// enum values, bounds of every section, tensor and weight array, shapes
    /// consistent from op to op, the graph acyclic, every op's parameters
    /// accepted by its kernel, and the arena plan free of overlaps. A build
    /// for given models (`PICOCNN_MODELS`) refuses an op kind it leaves out.
    pub fn parse(blob: &'a [u8]) -> Result<Model<'a>> {
        let mut m = Self::open(blob)?;
        m.n_strings = m.check_strings()?;
        m.check_rest()?;
        Ok(m)
    }

    /// Opens a blob that [`Model::parse`] has accepted before, in a build
    /// script for instance, checking only what can change since: its
    /// length, alignment, CRC, version and the bounds of its sections. A
    /// firmware whose model is checked when it is built so carries none of
    /// the other checks (about 5 KB of flash on a Cortex-M4).
    ///
    /// A blob that fails the other checks and still has a correct CRC
    /// (one made by hand, not by the writer) is not refused here: an
    /// interpreter over it may then return errors, panic or compute
    /// garbage, though never touch memory outside its arena and the blob.
    ///
    /// ```
    /// # use picocnn::model::Model;
    /// #[repr(C, align(16))]
    /// struct Aligned<T: ?Sized>(T);
    /// static BLOB: &Aligned<[u8]> = &Aligned(*include_bytes!("../../tests/models/lenet5_i8.pcnn"));
    ///
    /// // In the build script (or a test): every check.
    /// let checked = Model::parse(&BLOB.0)?;
    /// // In the firmware: the same bytes, opened.
    /// let model = Model::parse_prechecked(&BLOB.0)?;
    /// assert_eq!(model.arena_len(), checked.arena_len());
    /// assert_eq!(model.name(), checked.name());
    /// # Ok::<(), picocnn::Error>(())
    /// ```
    pub fn parse_prechecked(blob: &'a [u8]) -> Result<Model<'a>> {
        let mut m = Self::open(blob)?;
        m.n_strings = m.count_strings();
        Ok(m)
    }

    /// The header, CRC and section bounds; the string count left at 0.
    fn open(blob: &'a [u8]) -> Result<Model<'a>> {
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
        if h16(f::header::RESERVED) != 0 {
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
        let m = Model {
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
        Ok(m)
    }

    /// Everything past the header and the strings.
    fn check_rest(&self) -> Result<()> {
        let m = self;
        let (n_tensors, n_ops) = (m.n_tensors, m.n_ops);
        let (n_inputs, n_outputs) = (m.n_inputs, m.n_outputs);
        let lists_len = u32_at(m.blob, f::header::LISTS_LEN) as usize;
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
        let marked = (0..n_ops).any(|i| m.op(i).train != f::Train::Frozen);
        if marked != (m.train_len() != 0) {
            return Err(invalid(
                "training memory recorded without trainable ops, or trainable ops without it",
                0,
            ));
        }
        for o in 0..n_outputs {
            let t = m.list(n_inputs + o);
            if m.producer(t).is_none() {
                return Err(invalid("model output not produced by any op", o));
            }
        }
        m.check_plan()
    }

    /// Counts the strings of a checked table.
    fn count_strings(&self) -> usize {
        let s = &self.blob[self.strings_off..self.strings_off + self.strings_len];
        let (mut off, mut n) = (0, 0);
        while off + 2 <= s.len() {
            off += 2 + u16_at(s, off) as usize;
            n += 1;
        }
        n
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
            DType::I16 => {
                QParams::new(scale, zp).map_err(|_| invalid("tensor quantization", t))?;
                if zp != 0 {
                    return Err(invalid("int16 tensor with a zero point", t));
                }
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
        OpKind::from_u8(r[f::op::KIND]).ok_or(invalid("op kind", i))?;
        let dtype = DType::from_u8(r[f::op::DTYPE]).ok_or(invalid("op type", i))?;
        activation_of(r[f::op::ACTIVATION]).ok_or(invalid("op activation", i))?;
        match f::Train::from_u8(r[f::op::TRAIN]) {
            None => return Err(invalid("unknown train mark", i)),
            Some(f::Train::Frozen) => {}
            Some(_) => {
                let kind = r[f::op::KIND];
                let weighted = kind == OpKind::Conv2d as u8 || kind == OpKind::Dense as u8;
                if !weighted || r[f::op::DTYPE] != DType::I8 as u8 {
                    return Err(invalid(
                        "only int8 convolution and dense ops can be trainable",
                        i,
                    ));
                }
            }
        }
        self.check_string_index(u16_at(r, f::op::NAME), "op name string", i)?;
        let op = self.op(i);
        let lists_len = u32_at(self.blob, f::header::LISTS_LEN) as usize;
        if op.inputs_first < self.n_inputs + self.n_outputs
            || op.inputs_first + op.n_inputs > lists_len
        {
            return Err(invalid("op input list outside the index lists", i));
        }
        let record = Record::read(&op);
        if !record.takes_inputs(op.n_inputs) {
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
        let site = Site::new(self, &op, i);
        record.check(&site)?;
        check_scratch(&site, record.scratch_len(&site), self.arena_len)
    }

    /// Scratch bytes of op `i` (of a checked record).
    pub(crate) fn scratch_len(&self, i: usize) -> usize {
        let op = self.op(i);
        Record::read(&op).scratch_len(&Site::new(self, &op, i))
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
        Site::new(self, &op, i).in_place()
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
                let len = self.scratch_len(i);
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
