//! `Softmax` over channels.
//!
//! Words: `[multiplier, left_shift, diff_min, beta (f32 bits), 0 ×8]`; the
//! first three are int8's fixed-point parameters (zero for float). int8
//! output has scale 1/256 and zero point -128, as TensorFlow Lite's.
//! int16 (16x8): `[multiplier, left_shift, tables, beta, 0 ×8]`, `tables`
//! the data offset of the `exp` and `1 / (1 + x)` tables (513 int16
//! each); the output has scale 1/32768 and zero point 0.

use super::{cast, cast_mut, check_same_shapes, not_built, Io, OpRecord, Site};
use crate::error::Result;
use crate::model::format::DType;
use crate::model::layer::Layer;
use crate::model::OpInfo;
use crate::ops::softmax::{softmax_float, SoftmaxI8};
use crate::ops::x16::LUT_LEN;
use half::f16;

/// A softmax's record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SoftmaxRecord {
    /// int8 only: `(multiplier, left_shift, diff_min)`.
    pub fixed: Option<(i32, i32, i32)>,
    pub beta: f32,
}

impl OpRecord for SoftmaxRecord {
    fn read(op: &OpInfo<'_>) -> Self {
        let p = &op.params;
        SoftmaxRecord {
            fixed: op
                .dtype
                .quantized()
                .then_some((p[0] as i32, p[1] as i32, p[2] as i32)),
            beta: f32::from_bits(p[3]),
        }
    }

    fn emit(&self) -> Result<[u32; 12]> {
        let mut p = [0u32; 12];
        if let Some((m, s, d)) = self.fixed {
            p[..3].copy_from_slice(&[m as u32, s as u32, d as u32]);
        }
        p[3] = self.beta.to_bits();
        Ok(p)
    }

    fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        check_same_shapes(s)?;
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(s.invalid("softmax beta"));
        }
        if let (DType::I16, Some((m, l, tables))) = (s.op.dtype, self.fixed) {
            if !crate::ops::built::INT16 {
                return Err(DType::I16.not_built());
            }
            if m < 0 || !(-31..=30).contains(&l) {
                return Err(s.invalid("softmax parameters"));
            }
            s.data_ref(
                "softmax tables outside the data section",
                tables as u32,
                4 * LUT_LEN,
                2,
            )?;
            let q = Site::qparams(s.output());
            if q.scale != 1.0 / 32768.0 || q.zero_point != 0 {
                return Err(
                    s.invalid("int16 softmax output must have scale 1/32768 and zero point 0")
                );
            }
            return Ok(());
        }
        if let Some((m, l, d)) = self.fixed {
            SoftmaxI8::from_parts(m, l, d).map_err(|_| s.invalid("softmax parameters"))?;
            let q = Site::qparams(s.output());
            if q.scale != 1.0 / 256.0 || q.zero_point != -128 {
                return Err(
                    s.invalid("int8 softmax output must have scale 1/256 and zero point -128")
                );
            }
        }
        Ok(())
    }

    fn layer(&self, _s: &Site<'_, '_>) -> Layer {
        Layer::Softmax { beta: self.beta }
    }

    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        let depth = s.output().shape.c;
        let x = io.input(s, 0)?;
        match (s.op.dtype, self.fixed) {
            (DType::I8, Some((m, l, d))) if crate::ops::built::INT8 => {
                SoftmaxI8::from_checked(m, l, d).run(depth, cast(x)?, cast_mut(io.out)?)
            }
            (DType::I16, Some((m, l, tables))) if crate::ops::built::INT16 => {
                let t = cast::<i16>(s.data(tables as u32, 4 * LUT_LEN))?;
                let (exp, inv) = t.split_at(LUT_LEN);
                let (Ok(exp), Ok(inv)) = (exp.try_into(), inv.try_into()) else {
                    return Err(s.invalid("softmax tables"));
                };
                crate::ops::x16::softmax(m, l, exp, inv, depth, cast(x)?, cast_mut(io.out)?)
            }
            (DType::F16, _) if crate::ops::built::F16 => {
                softmax_float::<f16>(depth, cast(x)?, cast_mut(io.out)?, self.beta)
            }
            (DType::F32, _) if crate::ops::built::F32 => {
                softmax_float::<f32>(depth, cast(x)?, cast_mut(io.out)?, self.beta)
            }
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

    use crate::ops::softmax::SoftmaxI8;
    use crate::quant::QParams;

    impl ModelBuilder {
        /// Softmax over channels; int8 output has scale 1/256 and zero point -128.
        pub fn softmax(&mut self, name: &str, input: TensorId, beta: f32) -> Result<TensorId> {
            let x = self.get(input)?.clone();
            if !(beta.is_finite() && beta > 0.0) {
                return Err(Error::InvalidParameter {
                    what: "softmax beta must be finite and positive",
                });
            }
            let (fixed, output) = match x.ty {
                TensorType::I16(q) => {
                    // TensorFlow Lite: `s_in * beta` in single precision,
                    // over the exp table's step in double.
                    let rescale = f64::from(q.scale * beta) / (10.0 / 65535.0);
                    let r = crate::quant::quantize_multiplier(rescale)?;
                    let (exp, inv) = crate::ops::x16::softmax_tables();
                    let both: std::vec::Vec<i16> = exp.iter().chain(&inv).copied().collect();
                    let tables = self.push_data(&both, |v| v.to_le_bytes().to_vec())?;
                    (
                        Some((r.multiplier, r.shift, tables as i32)),
                        TensorType::I16(QParams::new(1.0 / 32768.0, 0)?),
                    )
                }
                TensorType::I8(q) => (
                    Some(SoftmaxI8::new(q.scale, beta)?.parts()),
                    TensorType::I8(QParams::new(1.0 / 256.0, -128)?),
                ),
                other => (None, other),
            };
            let params = SoftmaxRecord { fixed, beta }.emit()?;
            Ok(self.op(
                OpKind::Softmax,
                x.ty.dtype(),
                Activation::None,
                &[input],
                (x.shape, output),
                name,
                params,
                0,
            ))
        }
    }
}
