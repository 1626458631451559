//! `Activation`: a standalone ReLU or ReLU6 (the record's activation byte).
//!
//! Words, int8: `[zp_in, multiplier, shift, zp_out, 0 ×8]`, a rescale from
//! the input's quantization to the output's; float: all zero.

use super::{
    cast, cast_mut, check_same_shapes, not_built, rescale_from, rescale_words, Io, OpRecord, Site,
};
use crate::error::Result;
use crate::model::format::DType;
use crate::model::layer::Layer;
use crate::model::OpInfo;
use crate::num::Real;
use crate::ops::act::{activation_float, activation_float_in_place, ActI8};
use crate::quant::Rescale;
use half::f16;

/// A standalone activation's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActivationRecord {
    /// int8 only.
    pub rescale: Option<Rescale>,
}

fn run_float<T: Real + crate::model::Element>(s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
    if io.in_place {
        activation_float_in_place::<T>(cast_mut(io.out)?, s.op.activation);
        Ok(())
    } else {
        activation_float::<T>(cast(io.input(s, 0)?)?, cast_mut(io.out)?, s.op.activation)
    }
}

impl OpRecord for ActivationRecord {
    fn read(op: &OpInfo<'_>) -> Self {
        ActivationRecord {
            rescale: op.dtype.quantized().then(|| rescale_from(&op.params[..4])),
        }
    }

    fn emit(&self) -> Result<[u32; 12]> {
        let mut p = [0u32; 12];
        if let Some(r) = self.rescale {
            p[..4].copy_from_slice(&rescale_words(r));
        }
        Ok(p)
    }

    fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        check_same_shapes(s)?;
        if let Some(r) = self.rescale {
            r.validate()
                .map_err(|_| s.invalid("activation rescale out of range"))?;
        }
        Ok(())
    }

    fn layer(&self, s: &Site<'_, '_>) -> Layer {
        Layer::Activation(s.op.activation)
    }

    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        match (s.op.dtype, self.rescale) {
            (DType::I8, Some(r)) if crate::ops::built::INT8 => {
                let clamp = s.op.activation.range_i8(Site::qparams(s.output()));
                let act = ActI8::from_checked(r, clamp);
                if io.in_place {
                    act.run_in_place(cast_mut(io.out)?);
                    Ok(())
                } else {
                    act.run(cast(io.input(s, 0)?)?, cast_mut(io.out)?)
                }
            }
            (DType::I16, Some(r)) if crate::ops::built::INT16 => {
                let clamp = s.op.activation.range_i16(Site::qparams(s.output()));
                if io.in_place {
                    crate::ops::x16::rescale_in_place(&r, clamp, cast_mut(io.out)?);
                    Ok(())
                } else {
                    crate::ops::x16::rescale(&r, clamp, cast(io.input(s, 0)?)?, cast_mut(io.out)?)
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
    use crate::error::Result;
    use crate::model::format::OpKind;
    use crate::model::writer::{ModelBuilder, TensorId, TensorType};
    use crate::quant::Activation;

    use crate::quant::{QParams, Rescale};

    impl ModelBuilder {
        /// A standalone activation (int8: also rescales to `output`).
        pub fn activation(
            &mut self,
            name: &str,
            input: TensorId,
            activation: Activation,
            output: TensorType,
        ) -> Result<TensorId> {
            self.activation_with(name, input, activation, output, Rescale::new)
        }

        /// [`activation`](Self::activation) with the rescale computed by
        /// `rescale` from the input's and the output's quantization (as
        /// [`Rescale::new_single`] for TensorFlow Lite's `RELU`).
        pub fn activation_with(
            &mut self,
            name: &str,
            input: TensorId,
            activation: Activation,
            output: TensorType,
            rescale: fn(QParams, QParams) -> Result<Rescale>,
        ) -> Result<TensorId> {
            let x = self.get(input)?.clone();
            let dtype = output.dtype();
            self.same_dtype(&[input], dtype)?;
            let rescale = match (x.ty.qparams(), output.qparams()) {
                (Some(qi), Some(qo)) => {
                    let r = rescale(qi, qo)?;
                    crate::ops::act::ActI8::from_parts(r, activation.range_i8(qo))?;
                    Some(r)
                }
                _ => None,
            };
            let params = ActivationRecord { rescale }.emit()?;
            Ok(self.op(
                OpKind::Activation,
                dtype,
                activation,
                &[input],
                (x.shape, output),
                name,
                params,
                0,
            ))
        }
    }
}
