//! `Concat`: channel concatenation of 2..N inputs of one height and width.
//!
//! Words, int8: `[rescales, 0 ×11]`, `rescales` pointing at N ×
//! `[zp_in, multiplier, shift, zp_out]` (int32) in the data section; float:
//! all zero.

use super::{cast, cast_mut, not_built, Footprint, Io, OpRecord, Site};
use crate::error::{Error, Result};
use crate::model::format::DType;
use crate::model::layer::Layer;
use crate::model::OpInfo;
use crate::ops::concat::{concat_into_float, concat_into_i8};
use crate::quant::{Requant, Rescale};
use half::f16;

/// Bytes of one input's rescale in the data section.
const RESCALE_LEN: usize = 16;

/// A concatenation's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConcatRecord {
    /// int8 only: data offset of the inputs' rescales.
    pub rescales: Option<u32>,
}

impl ConcatRecord {
    /// Input `k`'s rescale (its data reference checked).
    fn rescale(off: u32, s: &Site<'_, '_>, k: usize) -> Result<Rescale> {
        let w = cast::<i32>(s.data(off + (k * RESCALE_LEN) as u32, RESCALE_LEN))?;
        Ok(Rescale {
            input_zero_point: w[0],
            requant: Requant {
                multiplier: w[1],
                shift: w[2],
            },
            output_zero_point: w[3],
        })
    }
}

impl OpRecord for ConcatRecord {
    fn read(op: &OpInfo<'_>) -> Self {
        ConcatRecord {
            rescales: (op.dtype == DType::I8).then_some(op.params[0]),
        }
    }

    fn emit(&self) -> Result<[u32; 12]> {
        let mut p = [0u32; 12];
        p[0] = self.rescales.unwrap_or(0);
        Ok(p)
    }

    fn takes_inputs(&self, n: usize) -> bool {
        n >= 2
    }

    fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        if s.op.dtype == DType::I16 {
            // TensorFlow Lite's 16x8 concatenation keeps the quantization.
            let q = s.output().qparams;
            if (0..s.op.input_count()).any(|k| s.input(k).qparams != q) {
                return Err(s.invalid("16x8 concat inputs quantized unlike the output"));
            }
        }
        let out = s.output().shape;
        let mut c = 0usize;
        for k in 0..s.op.input_count() {
            let x = s.input(k).shape;
            if x.h != out.h || x.w != out.w {
                return Err(s.invalid("op output shape does not follow from its input"));
            }
            c = c.checked_add(x.c).ok_or(Error::Overflow)?;
        }
        if c != out.c {
            return Err(s.invalid("op output shape does not follow from its input"));
        }
        if let Some(off) = self.rescales {
            let n = s.op.input_count();
            s.data_ref(
                "concat rescales outside the data section",
                off,
                n * RESCALE_LEN,
                4,
            )?;
            for k in 0..n {
                Self::rescale(off, s, k)?
                    .validate()
                    .map_err(|_| s.invalid("concat rescale out of range"))?;
            }
        }
        Ok(())
    }

    fn layer(&self, _s: &Site<'_, '_>) -> Layer {
        Layer::Concat
    }

    fn footprint(&self, s: &Site<'_, '_>) -> Footprint {
        Footprint {
            params: 0,
            bytes: if self.rescales.is_some() {
                RESCALE_LEN * s.op.input_count()
            } else {
                0
            },
        }
    }

    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        let total = s.output().shape.c;
        let mut offset = 0;
        for k in 0..s.op.input_count() {
            let c = s.input(k).shape.c;
            let x = io.input(s, k)?;
            match (s.op.dtype, self.rescales) {
                (DType::I8, Some(off)) if crate::ops::built::INT8 => concat_into_i8(
                    cast(x)?,
                    c,
                    offset,
                    total,
                    Self::rescale(off, s, k)?,
                    cast_mut(&mut io.out[..])?,
                )?,
                (DType::I16, _) if crate::ops::built::INT16 => concat_into_float::<i16>(
                    cast(x)?,
                    c,
                    offset,
                    total,
                    cast_mut(&mut io.out[..])?,
                )?,
                (DType::F16, _) if crate::ops::built::F16 => concat_into_float::<f16>(
                    cast(x)?,
                    c,
                    offset,
                    total,
                    cast_mut(&mut io.out[..])?,
                )?,
                (DType::F32, _) if crate::ops::built::F32 => concat_into_float::<f32>(
                    cast(x)?,
                    c,
                    offset,
                    total,
                    cast_mut(&mut io.out[..])?,
                )?,
                (dtype, _) => return Err(not_built(dtype)),
            }
            offset += c;
        }
        Ok(())
    }
}

/// Writing the op with [`ModelBuilder`](crate::model::writer::ModelBuilder).
#[cfg(feature = "std")]
mod build {
    use super::*;
    use crate::error::{Error, Result};
    use crate::model::format::{DType, OpKind};
    use crate::model::writer::{ModelBuilder, TensorId, TensorType};
    use crate::quant::Activation;
    use crate::quant::Rescale;
    use crate::tensor::Shape;
    use std::vec::Vec;

    impl ModelBuilder {
        /// Channel concatenation of 2..N tensors of the same height and width.
        pub fn concat(
            &mut self,
            name: &str,
            inputs: &[TensorId],
            output: TensorType,
        ) -> Result<TensorId> {
            if inputs.len() < 2 {
                return Err(Error::InvalidParameter {
                    what: "concat needs at least two inputs",
                });
            }
            let dtype = output.dtype();
            self.same_dtype(inputs, dtype)?;
            let same = |t: TensorId| self.get(t).is_ok_and(|d| d.ty == output);
            if dtype == DType::I16 && !inputs.iter().all(|&t| same(t)) {
                return Err(Error::Unsupported {
                    what: "16x8 concat inputs quantized unlike the output",
                });
            }
            let first = self.get(inputs[0])?.shape;
            let mut c = 0;
            let mut rescales = Vec::new();
            for &t in inputs {
                let d = self.get(t)?.clone();
                if d.shape.h != first.h || d.shape.w != first.w {
                    return Err(Error::ShapeMismatch {
                        what: "concat input height and width",
                        expected: first.h * first.w,
                        got: d.shape.h * d.shape.w,
                    });
                }
                c += d.shape.c;
                if let (Some(qi), Some(qo)) = (d.ty.qparams(), output.qparams()) {
                    let r = Rescale::new(qi, qo)?;
                    r.validate()?;
                    rescales.extend_from_slice(&[
                        r.input_zero_point,
                        r.requant.multiplier,
                        r.requant.shift,
                        r.output_zero_point,
                    ]);
                }
            }
            let rescales = match dtype {
                DType::I8 => Some(self.push_i32(&rescales)?),
                _ => None,
            };
            let params = ConcatRecord { rescales }.emit()?;
            Ok(self.op(
                OpKind::Concat,
                dtype,
                Activation::None,
                inputs,
                (Shape::new(first.h, first.w, c), output),
                name,
                params,
                0,
            ))
        }
    }
}
