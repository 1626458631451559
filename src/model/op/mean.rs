//! `Mean` over rows and columns: TensorFlow Lite's `MEAN` on height and
//! width, whose int8 output has its own quantization.
//!
//! Words, int8: `[zp_in, multiplier, shift, zp_out, 0 ×8]`, the rescale
//! with the division by the cell count folded into the multiplier; float:
//! all zero (an average over the whole input). No fused activation.

use super::{cast, cast_mut, not_built, rescale_from, rescale_words, Io, OpRecord, Site};
use crate::error::Result;
use crate::model::format::DType;
use crate::model::layer::Layer;
use crate::model::OpInfo;
use crate::num::Real;
use crate::ops::mean::MeanI8;
use crate::ops::pool::{Pool2d, Pool2dConfig, Pool2dFloat, PoolKind};
use crate::ops::Padding;
use crate::quant::{Activation, Rescale};
use half::f16;

/// A mean's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MeanRecord {
    /// int8 only.
    pub rescale: Option<Rescale>,
}

impl MeanRecord {
    fn run_float<T: Real + crate::model::Element>(s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        // The global average pool's kernel: the same bits as `mean_float`,
        // and no second copy in flash.
        let pool = Pool2d::new(Pool2dConfig::global(s.input(0).shape))?;
        Pool2dFloat::new(pool, PoolKind::Average, Activation::None)
            .run::<T>(cast(io.input(s, 0)?)?, cast_mut(io.out)?)
    }
}

impl OpRecord for MeanRecord {
    fn read(op: &OpInfo<'_>) -> Self {
        MeanRecord {
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
        let (x, y) = (s.input(0).shape, s.output().shape);
        if y.h != 1 || y.w != 1 || y.c != x.c {
            return Err(s.invalid("op output shape does not follow from its input"));
        }
        if s.op.activation != Activation::None {
            return Err(s.invalid("a mean takes no activation"));
        }
        match self.rescale {
            Some(r) => {
                MeanI8::from_parts(x, r).map_err(|_| s.invalid("mean parameters"))?;
                let (qi, qo) = (Site::qparams(s.input(0)), Site::qparams(s.output()));
                if r.input_zero_point != qi.zero_point || r.output_zero_point != qo.zero_point {
                    return Err(s.invalid("mean zero points differ from its tensors'"));
                }
            }
            None => {
                if x.h * x.w == 0 {
                    return Err(s.invalid("mean input"));
                }
            }
        }
        Ok(())
    }

    fn layer(&self, s: &Site<'_, '_>) -> Layer {
        let x = s.input(0).shape;
        Layer::AvgPool {
            window: [x.h, x.w],
            stride: [1, 1],
            padding: Padding::Valid,
        }
    }

    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        match (s.op.dtype, self.rescale) {
            (DType::I8, Some(r)) if crate::ops::built::INT8 => {
                MeanI8::from_parts(s.input(0).shape, r)?
                    .run(cast(io.input(s, 0)?)?, cast_mut(io.out)?)
            }
            (DType::I16, Some(r)) if crate::ops::built::INT16 => {
                MeanI8::from_parts(s.input(0).shape, r)?
                    .run_i16(cast(io.input(s, 0)?)?, cast_mut(io.out)?)
            }
            (DType::F32, _) if crate::ops::built::F32 => Self::run_float::<f32>(s, io),
            (DType::F16, _) if crate::ops::built::F16 => Self::run_float::<f16>(s, io),
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
    use crate::tensor::Shape;

    impl ModelBuilder {
        /// The mean over rows and columns of `input` (a `1x1xC` output):
        /// int8 into `output`'s quantization; float outputs keep the
        /// input's type.
        pub fn mean(
            &mut self,
            name: &str,
            input: TensorId,
            output: TensorType,
        ) -> Result<TensorId> {
            let x = self.get(input)?.clone();
            let dtype = output.dtype();
            self.same_dtype(&[input], dtype)?;
            let rescale = match (x.ty.qparams(), output.qparams()) {
                (Some(qi), Some(qo)) => Some(MeanI8::new(x.shape, qi, qo)?.rescale()),
                _ => {
                    if x.ty != output {
                        return Err(Error::Unsupported {
                            what: "a float mean keeps its input's type",
                        });
                    }
                    if x.shape.h * x.shape.w == 0 {
                        return Err(Error::InvalidParameter {
                            what: "mean of nothing",
                        });
                    }
                    None
                }
            };
            let params = MeanRecord { rescale }.emit()?;
            Ok(self.op(
                OpKind::Mean,
                dtype,
                Activation::None,
                &[input],
                (Shape::new(1, 1, x.shape.c), output),
                name,
                params,
                0,
            ))
        }
    }
}
