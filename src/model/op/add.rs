//! `Add`: the residual add of two inputs of one shape.
//!
//! Words, int8: `[zp1, m1, s1, zp2, m2, s2, m_out, s_out, zp_out, 0 ×3]`
//! (TensorFlow Lite's rescaling to a common scale); float: all zero.

use super::{cast, cast_mut, check_same_shapes, not_built, Io, OpRecord, Site};
use crate::error::Result;
use crate::model::format::DType;
use crate::model::layer::Layer;
use crate::model::OpInfo;
use crate::num::Real;
use crate::ops::add::{add_float, add_float_in_place, AddI8, AddQuant};
use crate::quant::Requant;
use half::f16;

/// An add's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddRecord {
    /// int8 only.
    pub quant: Option<AddQuant>,
}

fn run_float<T: Real + crate::model::Element>(s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
    let b = cast::<T>(io.input(s, 1)?)?;
    if io.in_place {
        add_float_in_place::<T>(cast_mut(io.out)?, b, s.op.activation)
    } else {
        add_float::<T>(
            cast(io.input(s, 0)?)?,
            b,
            cast_mut(io.out)?,
            s.op.activation,
        )
    }
}

impl OpRecord for AddRecord {
    fn read(op: &OpInfo<'_>) -> Self {
        let p = op.params.map(|w| w as i32);
        let requant = |i: usize| Requant {
            multiplier: p[i],
            shift: p[i + 1],
        };
        AddRecord {
            quant: op.dtype.quantized().then_some(AddQuant {
                input1_zero_point: p[0],
                input1: requant(1),
                input2_zero_point: p[3],
                input2: requant(4),
                output: requant(6),
                output_zero_point: p[8],
            }),
        }
    }

    fn emit(&self) -> Result<[u32; 12]> {
        let mut p = [0u32; 12];
        if let Some(q) = self.quant {
            let words = [
                q.input1_zero_point,
                q.input1.multiplier,
                q.input1.shift,
                q.input2_zero_point,
                q.input2.multiplier,
                q.input2.shift,
                q.output.multiplier,
                q.output.shift,
                q.output_zero_point,
            ];
            for (p, w) in p.iter_mut().zip(words) {
                *p = w as u32;
            }
        }
        Ok(p)
    }

    fn takes_inputs(&self, n: usize) -> bool {
        n == 2
    }

    fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        check_same_shapes(s)?;
        if let Some(q) = self.quant {
            let zero_points = [
                q.input1_zero_point,
                q.input2_zero_point,
                q.output_zero_point,
            ];
            let requants = [q.input1, q.input2, q.output];
            let zp_ok = |zp: &i32| match s.op.dtype {
                DType::I16 => *zp == 0,
                _ => (-128..=127).contains(zp),
            };
            if !zero_points.iter().all(zp_ok)
                || requants
                    .iter()
                    .any(|r| r.multiplier < 0 || !(-31..=30).contains(&r.shift))
            {
                return Err(s.invalid("add parameters out of range"));
            }
        }
        Ok(())
    }

    fn layer(&self, s: &Site<'_, '_>) -> Layer {
        Layer::Add {
            activation: s.op.activation,
        }
    }

    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        match (s.op.dtype, self.quant) {
            (DType::I8, Some(q)) if crate::ops::built::INT8 => {
                let clamp = s.op.activation.range_i8(Site::qparams(s.output()));
                let add = AddI8::from_checked(q, clamp);
                let b = cast::<i8>(io.input(s, 1)?)?;
                if io.in_place {
                    add.run_in_place(cast_mut(io.out)?, b)
                } else {
                    add.run(cast(io.input(s, 0)?)?, b, cast_mut(io.out)?)
                }
            }
            (DType::I16, Some(q)) if crate::ops::built::INT16 => {
                let clamp = s.op.activation.range_i16(Site::qparams(s.output()));
                let b = cast::<i16>(io.input(s, 1)?)?;
                if io.in_place {
                    crate::ops::x16::add_in_place(&q, clamp, cast_mut(io.out)?, b)
                } else {
                    crate::ops::x16::add(&q, clamp, cast(io.input(s, 0)?)?, b, cast_mut(io.out)?)
                }
            }
            (DType::F16, _) if crate::ops::built::F16 => run_float::<f16>(s, io),
            (DType::F32, _) if crate::ops::built::F32 => run_float::<f32>(s, io),
            (dtype, _) => Err(not_built(dtype)),
        }
    }
}

/// Writing the op with [`ModelBuilder`](crate::model::writer::ModelBuilder).
#[cfg(feature = "std")]
mod build {
    use super::*;
    use crate::error::{Error, Result};
    use crate::model::format::OpKind;
    use crate::model::writer::{ModelBuilder, TensorId, TensorType};
    use crate::quant::Activation;

    use crate::ops::add::AddQuant;

    impl ModelBuilder {
        /// Residual add of two tensors of the same shape.
        pub fn add(
            &mut self,
            name: &str,
            a: TensorId,
            b: TensorId,
            activation: Activation,
            output: TensorType,
        ) -> Result<TensorId> {
            let (x, y) = (self.get(a)?.clone(), self.get(b)?.clone());
            if x.shape != y.shape {
                return Err(Error::ShapeMismatch {
                    what: "add inputs",
                    expected: x.shape.len(),
                    got: y.shape.len(),
                });
            }
            let dtype = output.dtype();
            self.same_dtype(&[a, b], dtype)?;
            let quant = match (x.ty.qparams(), y.ty.qparams(), output.qparams()) {
                (Some(qa), Some(qb), Some(qo)) if dtype == crate::model::format::DType::I16 => {
                    Some(crate::ops::x16::add_quant(qa, qb, qo)?)
                }
                (Some(qa), Some(qb), Some(qo)) => {
                    let q = AddQuant::new(qa, qb, qo)?;
                    crate::ops::add::AddI8::new(q, activation.range_i8(qo))?;
                    Some(q)
                }
                _ => None,
            };
            let params = AddRecord { quant }.emit()?;
            Ok(self.op(
                OpKind::Add,
                dtype,
                activation,
                &[a, b],
                (x.shape, output),
                name,
                params,
                0,
            ))
        }
    }
}
