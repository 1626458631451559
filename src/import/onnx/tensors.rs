//! The constants of an ONNX model: initializers and `Constant` nodes,
//! their values checked against their dims.

use std::format;
use std::vec::Vec;

use super::pb;
use crate::import::{fail, ImportError};

/// A constant's values, of its element type.
#[derive(Debug, Clone)]
pub(super) enum Data {
    F32(Vec<f32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl Data {
    pub(super) fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// The values as reals (for scales and the bounds of `Clip`).
    pub(super) fn reals(&self) -> Vec<f32> {
        match self {
            Data::F32(v) => v.clone(),
            Data::I8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as integers (zero points, shapes, axes).
    pub(super) fn ints(&self) -> Vec<i64> {
        match self {
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
        }
    }
}

/// A constant tensor.
#[derive(Debug, Clone)]
pub(super) struct Const {
    pub(super) dims: Vec<usize>,
    pub(super) data: Data,
}

/// A constant stored quantized (`DequantizeLinear` of a constant): its
/// integers, scales and zero points along `axis` (one of each for the
/// whole tensor otherwise).
#[derive(Debug, Clone)]
pub(super) struct QConst {
    pub(super) q: Const,
    pub(super) scales: Vec<f32>,
    pub(super) zero_points: Vec<i64>,
}

/// The values of a tensor in a model file, checked against its dims.
pub(super) fn constant(t: &pb::TensorProto) -> Result<Const, ImportError> {
    let name = t.name();
    if t.data_location == Some(1) {
        return fail(format!("tensor {name}: data outside the file is not read"));
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok().filter(|&d| d <= 1 << 28))
        .collect::<Option<_>>()
        .ok_or_else(|| ImportError(format!("tensor {name}: dims {:?}", t.dims)))?;
    let len = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d).filter(|&n| n <= 1 << 28))
        .ok_or_else(|| ImportError(format!("tensor {name}: dims {:?}", t.dims)))?;
    let raw = t.raw_data.as_deref();
    let from_raw = |size: usize| -> Result<Option<&[u8]>, ImportError> {
        match raw {
            Some(r) if r.len() != len * size => {
                fail(format!("tensor {name}: {} bytes for {len} values", r.len()))
            }
            Some(r) => Ok(Some(r)),
            None => Ok(None),
        }
    };
    let data = match t.data_type() {
        1 => Data::F32(match from_raw(4)? {
            Some(r) => r
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            None => t.float_data.clone(),
        }),
        2 => Data::U8(match from_raw(1)? {
            Some(r) => r.to_vec(),
            None => t.int32_data.iter().map(|&v| v as u8).collect(),
        }),
        3 => Data::I8(match from_raw(1)? {
            Some(r) => r.iter().map(|&b| b as i8).collect(),
            None => t.int32_data.iter().map(|&v| v as i8).collect(),
        }),
        6 => Data::I32(match from_raw(4)? {
            Some(r) => r
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            None => t.int32_data.clone(),
        }),
        7 => Data::I64(match from_raw(8)? {
            Some(r) => r
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
            None => t.int64_data.clone(),
        }),
        other => {
            return fail(format!(
                "tensor {name}: element type {other} (this reads float32, int8, uint8, int32 and int64)"
            ))
        }
    };
    if data.len() != len {
        return fail(format!(
            "tensor {name}: {} values for dims {dims:?}",
            data.len()
        ));
    }
    Ok(Const { dims, data })
}
