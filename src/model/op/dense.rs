//! `Dense`: a fully connected layer over the whole (flattened) input.
//!
//! Words: `[0 ×7, weights, bias, multiplier, shift, 0]`, the weights as a
//! convolution's (`[out][in]`).

use super::conv::WeightRefs;
use super::{cast, cast_mut, not_built, Footprint, Io, OpRecord, Site};
use crate::error::Result;
use crate::model::format::DType;
use crate::model::layer::Layer;
use crate::model::OpInfo;
use crate::num::Real;
use crate::ops::dense::{Dense, DenseFloat, DenseI8};
use half::f16;

/// A dense layer's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DenseRecord {
    pub weights: WeightRefs,
}

impl DenseRecord {
    pub(crate) fn geometry(s: &Site<'_, '_>) -> Dense {
        Dense::from_checked(s.input(0).shape.len(), s.output().shape.len())
    }

    fn run_float<T: Real + crate::model::Element>(
        &self,
        s: &Site<'_, '_>,
        dense: Dense,
        io: Io<'_>,
    ) -> Result<()> {
        let (w, bias) = self
            .weights
            .float::<T>(s, dense.weights_len(), dense.out_features())?;
        DenseFloat::from_checked(dense, w, bias, s.op.activation)
            .run(cast(io.input(s, 0)?)?, cast_mut(io.out)?)
    }
}

impl DenseRecord {
    /// A 16x8 dense layer's data: int8 filters, int64 bias and one double
    /// scale per output (word 9; word 10 zero).
    fn check_16x8(&self, s: &Site<'_, '_>, dense: Dense) -> Result<()> {
        let n = dense.out_features();
        let w = &self.weights;
        let Some((scales, 0)) = w.requant else {
            return Err(s.invalid("16x8 dense scales"));
        };
        s.data_ref(
            "filter outside the data section",
            w.filter,
            dense.weights_len(),
            1,
        )?;
        s.data_ref("bias outside the data section", w.bias, n * 8, 8)?;
        s.data_ref("scales outside the data section", scales, n * 8, 8)?;
        if cast::<f64>(s.data(scales, n * 8))?
            .iter()
            .any(|v| !(v.is_finite() && *v >= 0.0))
        {
            return Err(s.invalid("16x8 dense scale not finite and non-negative"));
        }
        Ok(())
    }

    fn run_16x8(&self, s: &Site<'_, '_>, dense: Dense, io: Io<'_>) -> Result<()> {
        let n = dense.out_features();
        let w = &self.weights;
        let scales = w.requant.map_or(0, |r| r.0);
        crate::ops::x16::dense(
            &dense,
            cast(s.data(w.filter, dense.weights_len()))?,
            cast(s.data(w.bias, n * 8))?,
            cast(s.data(scales, n * 8))?,
            s.op.activation.range_i16(Site::qparams(s.output())),
            cast(io.input(s, 0)?)?,
            cast_mut(io.out)?,
        )
    }
}

impl OpRecord for DenseRecord {
    fn read(op: &OpInfo<'_>) -> Self {
        DenseRecord {
            weights: WeightRefs::read(&op.params, op.dtype),
        }
    }

    fn emit(&self) -> Result<[u32; 12]> {
        let mut p = [0u32; 12];
        self.weights.emit(&mut p);
        Ok(p)
    }

    fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        let dense = Dense::new(s.input(0).shape.len(), s.output().shape.len())
            .map_err(|_| s.invalid("dense parameters"))?;
        if s.op.dtype == DType::I16 {
            if !crate::ops::built::INT16 {
                return Err(DType::I16.not_built());
            }
            return self.check_16x8(s, dense);
        }
        self.weights
            .check(s, dense.weights_len(), dense.out_features())
    }

    fn layer(&self, s: &Site<'_, '_>) -> Layer {
        Layer::Dense {
            out_features: s.output().shape.len(),
            activation: s.op.activation,
        }
    }

    fn macs(&self, s: &Site<'_, '_>) -> usize {
        Self::geometry(s).macs()
    }

    fn scratch_len(&self, s: &Site<'_, '_>) -> usize {
        match s.op.dtype {
            DType::I8 => Self::geometry(s).scratch_len_i8(),
            _ => 0,
        }
    }

    fn footprint(&self, s: &Site<'_, '_>) -> Footprint {
        let d = Self::geometry(s);
        self.weights
            .footprint(s.op.dtype, d.weights_len(), d.out_features())
    }

    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        let dense = Self::geometry(s);
        match s.op.dtype {
            DType::I8 if crate::ops::built::INT8 => {
                let w = self
                    .weights
                    .i8(s, io.tuned, dense.weights_len(), dense.out_features())?;
                let (in_q, out_q) = (Site::qparams(s.input(0)), Site::qparams(s.output()));
                DenseI8::from_checked(
                    dense,
                    w,
                    in_q.zero_point,
                    out_q.zero_point,
                    s.op.activation.range_i8(out_q),
                )
                .run(cast(io.input(s, 0)?)?, cast_mut(io.out)?, io.scratch)
            }
            DType::F32 if crate::ops::built::F32 => self.run_float::<f32>(s, dense, io),
            DType::F16 if crate::ops::built::F16 => self.run_float::<f16>(s, dense, io),
            DType::I16 if crate::ops::built::INT16 => self.run_16x8(s, dense, io),
            dtype => Err(not_built(dtype)),
        }
    }
}

/// Writing the op with [`ModelBuilder`](crate::model::writer::ModelBuilder).
#[cfg(feature = "std")]
mod build {
    use super::*;
    use crate::error::{Error, Result};
    use crate::model::format::{DType, OpKind};
    use crate::model::writer::{ModelBuilder, TensorId, TensorType, Weights};
    use crate::ops::dense::{Dense, DenseFloat, DenseI8};

    use crate::quant::Activation;
    use crate::tensor::Shape;

    impl ModelBuilder {
        /// A dense layer over the whole input tensor, to `out_features`.
        pub fn dense(
            &mut self,
            name: &str,
            input: TensorId,
            out_features: usize,
            activation: Activation,
            weights: Weights,
            output: TensorType,
        ) -> Result<TensorId> {
            let x = self.get(input)?.clone();
            let dtype = weights.dtype();
            self.same_dtype(&[input], dtype)?;
            if output.dtype() != dtype {
                return Err(Error::Unsupported {
                    what: "layer mixes element types",
                });
            }
            let dense = Dense::new(x.shape.len(), out_features)?;
            weights.check(
                x.ty,
                output,
                activation,
                |w, zi, zo, clamp| DenseI8::new(dense, w, zi, zo, clamp).map(|_| ()),
                |f, b| DenseFloat::new(dense, f, b, activation).map(|_| ()),
                |f, b| DenseFloat::new(dense, f, b, activation).map(|_| ()),
                (dense.weights_len(), out_features),
            )?;
            let refs = match &weights {
                // 16x8: one double scale per output for the multiplier.
                Weights::I16 {
                    filter,
                    bias,
                    scale,
                    ..
                } => crate::model::op::conv::WeightRefs {
                    filter: self.push_data(filter, |x| std::vec![x as u8])?,
                    bias: self.push_data(bias, |x| x.to_le_bytes().to_vec())?,
                    requant: Some((self.push_data(scale, |x| x.to_le_bytes().to_vec())?, 0)),
                },
                _ => self.push_weights(&weights)?,
            };
            let params = DenseRecord { weights: refs }.emit()?;
            let scratch = if dtype == DType::I8 {
                dense.scratch_len_i8()
            } else {
                0
            };
            Ok(self.op(
                OpKind::Dense,
                dtype,
                activation,
                &[input],
                (Shape::flat(out_features), output),
                name,
                params,
                scratch,
            ))
        }
    }
}
