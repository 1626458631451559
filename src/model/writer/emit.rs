//! The blob's bytes: header, tables, strings and data, as `format` lays
//! them out.

use super::{AlignedBytes, ModelBuilder};
use crate::error::{Error, Result};
use crate::model::format::activation_byte;
use crate::model::format::{self as f, align_up};
use crate::model::view::Model;
use std::vec;
use std::vec::Vec;

impl ModelBuilder {
    /// Plans the arena and writes the blob; the result parses with
    /// [`Model::parse`] (checked before it is returned).
    pub fn finish(&self) -> Result<Vec<u8>> {
        if self.inputs.is_empty() || self.outputs.is_empty() {
            return Err(Error::InvalidParameter {
                what: "a model needs an input and an output",
            });
        }
        if self.tensors.len() >= u16::MAX as usize || self.ops.len() >= u16::MAX as usize {
            return Err(Error::Unsupported {
                what: "more than 65534 tensors or ops",
            });
        }
        if self.fuse != super::Fusion::Never {
            return self.fusion()?.0.finish();
        }
        let plan = self.plan()?;
        // Strings: name, labels, op names.
        let mut strings: Vec<&str> = vec![&self.name];
        let labels_first = strings.len();
        strings.extend(self.labels.iter().map(|s| s.as_str()));
        let op_names_first = strings.len();
        strings.extend(self.ops.iter().map(|o| o.name.as_str()));
        let mut string_bytes = Vec::new();
        for s in &strings {
            let len = u16::try_from(s.len()).map_err(|_| Error::Unsupported {
                what: "string longer than 65535 bytes",
            })?;
            string_bytes.extend_from_slice(&len.to_le_bytes());
            string_bytes.extend_from_slice(s.as_bytes());
        }
        // Lists: inputs, outputs, then each op's inputs.
        let mut lists: Vec<u16> = self
            .inputs
            .iter()
            .chain(&self.outputs)
            .map(|&t| t as u16)
            .collect();
        let mut op_first = Vec::new();
        for o in &self.ops {
            op_first.push(lists.len());
            lists.extend(o.inputs.iter().map(|&t| t as u16));
        }
        if lists.len() > u16::MAX as usize {
            return Err(Error::Unsupported {
                what: "index lists too long",
            });
        }
        let tensors_off = align_up(f::HEADER_LEN, f::SECTION_ALIGN);
        let ops_off = align_up(
            tensors_off + self.tensors.len() * f::TENSOR_LEN,
            f::SECTION_ALIGN,
        );
        let lists_off = align_up(ops_off + self.ops.len() * f::OP_LEN, f::SECTION_ALIGN);
        let strings_off = align_up(lists_off + lists.len() * 2, f::SECTION_ALIGN);
        let data_off = align_up(strings_off + string_bytes.len(), f::SECTION_ALIGN);
        let total = data_off + self.data.len();
        let mut b = vec![0u8; total];
        let put16 =
            |b: &mut Vec<u8>, off: usize, v: u16| b[off..off + 2].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |b: &mut Vec<u8>, off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        let u32_of = |v: usize| u32::try_from(v).map_err(|_| Error::Overflow);
        b[..4].copy_from_slice(&f::MAGIC);
        put16(&mut b, f::header::VERSION, f::VERSION);
        put16(&mut b, f::header::HEADER_LEN, f::HEADER_LEN as u16);
        put32(&mut b, f::header::TOTAL_LEN, u32_of(total)?);
        put32(&mut b, f::header::ARENA_LEN, u32_of(plan.arena_len)?);
        put16(&mut b, f::header::N_TENSORS, self.tensors.len() as u16);
        put16(&mut b, f::header::N_OPS, self.ops.len() as u16);
        put16(&mut b, f::header::N_INPUTS, self.inputs.len() as u16);
        put16(&mut b, f::header::N_OUTPUTS, self.outputs.len() as u16);
        put32(&mut b, f::header::TENSORS_OFF, u32_of(tensors_off)?);
        put32(&mut b, f::header::OPS_OFF, u32_of(ops_off)?);
        put32(&mut b, f::header::LISTS_OFF, u32_of(lists_off)?);
        put32(&mut b, f::header::LISTS_LEN, u32_of(lists.len())?);
        put32(&mut b, f::header::STRINGS_OFF, u32_of(strings_off)?);
        put32(&mut b, f::header::STRINGS_LEN, u32_of(string_bytes.len())?);
        put32(&mut b, f::header::DATA_OFF, u32_of(data_off)?);
        put32(&mut b, f::header::DATA_LEN, u32_of(self.data.len())?);
        put16(&mut b, f::header::NAME, 0);
        put16(
            &mut b,
            f::header::LABELS_FIRST,
            if self.labels.is_empty() {
                0
            } else {
                labels_first as u16
            },
        );
        put16(&mut b, f::header::N_LABELS, self.labels.len() as u16);
        put32(&mut b, f::header::NORM_SCALE, self.norm.0.to_bits());
        put32(&mut b, f::header::NORM_OFFSET, self.norm.1.to_bits());
        for (t, d) in self.tensors.iter().enumerate() {
            let r = tensors_off + t * f::TENSOR_LEN;
            b[r + f::tensor::DTYPE] = d.ty.dtype() as u8;
            put32(
                &mut b,
                r + f::tensor::ARENA_OFFSET,
                u32_of(plan.offsets[t])?,
            );
            put32(&mut b, r + f::tensor::H, u32_of(d.shape.h)?);
            put32(&mut b, r + f::tensor::W, u32_of(d.shape.w)?);
            put32(&mut b, r + f::tensor::C, u32_of(d.shape.c)?);
            if let Some(q) = d.ty.qparams() {
                put32(&mut b, r + f::tensor::SCALE, q.scale.to_bits());
                put32(&mut b, r + f::tensor::ZERO_POINT, q.zero_point as u32);
            }
        }
        for (i, o) in self.ops.iter().enumerate() {
            let r = ops_off + i * f::OP_LEN;
            b[r + f::op::KIND] = o.kind as u8;
            b[r + f::op::DTYPE] = o.dtype as u8;
            b[r + f::op::ACTIVATION] = activation_byte(o.activation);
            put16(&mut b, r + f::op::INPUTS_FIRST, op_first[i] as u16);
            put16(&mut b, r + f::op::N_INPUTS, o.inputs.len() as u16);
            put16(&mut b, r + f::op::OUTPUT, o.output as u16);
            put16(&mut b, r + f::op::NAME, (op_names_first + i) as u16);
            put32(&mut b, r + f::op::SCRATCH_OFFSET, u32_of(plan.scratch[i])?);
            for (k, &p) in o.params.iter().enumerate() {
                put32(&mut b, r + f::op::PARAMS + 4 * k, p);
            }
        }
        for (k, &v) in lists.iter().enumerate() {
            put16(&mut b, lists_off + 2 * k, v);
        }
        b[strings_off..strings_off + string_bytes.len()].copy_from_slice(&string_bytes);
        b[data_off..].copy_from_slice(&self.data);
        let crc = crate::model::view::crc32(&b[16..]);
        put32(&mut b, f::header::CRC, crc);
        let check = AlignedBytes::from(b.clone());
        Model::parse(check.as_bytes())?;
        Ok(b)
    }
}
