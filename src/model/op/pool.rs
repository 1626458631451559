//! `MaxPool` and `AvgPool`: one record, the kind byte tells which.
//!
//! Words: `[wh|ww, sh|sw, 0, top|bottom, left|right, 0 ×7]`. int8 pooling
//! keeps the input's quantization.

use super::{cast, cast_mut, not_built, pack, padding, read_pads, unpack, Io, OpRecord, Site};
use crate::error::Result;
use crate::model::format::{DType, OpKind};
use crate::model::layer::Layer;
use crate::model::OpInfo;
use crate::num::Real;
use crate::ops::pool::{Pool2d, Pool2dConfig, Pool2dFloat, Pool2dI8, PoolKind};
use half::f16;

/// A pooling layer's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolRecord {
    pub kind: PoolKind,
    pub window: [usize; 2],
    pub stride: [usize; 2],
    /// `[top, bottom, left, right]` cells.
    pub pads: [usize; 4],
}

impl PoolRecord {
    pub(crate) fn geometry(&self, s: &Site<'_, '_>) -> Pool2d {
        Pool2d::from_checked(
            s.input(0).shape,
            s.output().shape,
            self.window,
            self.stride,
            [self.pads[0], self.pads[2]],
        )
    }

    fn run_float<T: Real + crate::model::Element>(
        &self,
        s: &Site<'_, '_>,
        pool: Pool2d,
        io: Io<'_>,
    ) -> Result<()> {
        Pool2dFloat::new(pool, self.kind, s.op.activation)
            .run::<T>(cast(io.input(s, 0)?)?, cast_mut(io.out)?)
    }
}

impl OpRecord for PoolRecord {
    fn read(op: &OpInfo<'_>) -> Self {
        let p = &op.params;
        PoolRecord {
            kind: if op.kind == OpKind::MaxPool {
                PoolKind::Max
            } else {
                PoolKind::Average
            },
            window: unpack(p[0]),
            stride: unpack(p[1]),
            pads: read_pads(p, 3),
        }
    }

    fn emit(&self) -> Result<[u32; 12]> {
        let [top, bottom, left, right] = self.pads;
        let mut p = [0u32; 12];
        p[0] = pack(self.window[0], self.window[1])?;
        p[1] = pack(self.stride[0], self.stride[1])?;
        p[3] = pack(top, bottom)?;
        p[4] = pack(left, right)?;
        Ok(p)
    }

    fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        let config = Pool2dConfig {
            input: s.input(0).shape,
            window: self.window,
            stride: self.stride,
            padding: padding(self.pads),
        };
        let pool = Pool2d::new(config).map_err(|_| s.invalid("pool parameters"))?;
        if pool.output_shape() != s.output().shape {
            return Err(s.invalid("op output shape does not follow from its input"));
        }
        if s.input(0).qparams != s.output().qparams {
            return Err(s.invalid("int8 pooling changes quantization"));
        }
        Ok(())
    }

    fn layer(&self, _s: &Site<'_, '_>) -> Layer {
        let (window, stride, padding) = (self.window, self.stride, padding(self.pads));
        match self.kind {
            PoolKind::Max => Layer::MaxPool {
                window,
                stride,
                padding,
            },
            PoolKind::Average => Layer::AvgPool {
                window,
                stride,
                padding,
            },
        }
    }

    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        let pool = self.geometry(s);
        match s.op.dtype {
            DType::I8 if crate::ops::built::INT8 => {
                let clamp = s.op.activation.range_i8(Site::qparams(s.output()));
                Pool2dI8::from_checked(pool, self.kind, clamp)
                    .run(cast(io.input(s, 0)?)?, cast_mut(io.out)?)
            }
            DType::F32 if crate::ops::built::F32 => self.run_float::<f32>(s, pool, io),
            DType::F16 if crate::ops::built::F16 => self.run_float::<f16>(s, pool, io),
            DType::I16 if crate::ops::built::INT16 => {
                let clamp = s.op.activation.range_i16(Site::qparams(s.output()));
                crate::ops::x16::pool(
                    &pool,
                    self.kind,
                    clamp,
                    cast(io.input(s, 0)?)?,
                    cast_mut(io.out)?,
                )
            }
            dtype => Err(not_built(dtype)),
        }
    }
}

/// Writing the op with [`ModelBuilder`](crate::model::writer::ModelBuilder).
#[cfg(feature = "std")]
mod build {
    use super::*;
    use crate::error::Result;
    use crate::model::format::OpKind;
    use crate::model::writer::{ModelBuilder, TensorId};
    use crate::quant::Activation;

    use crate::model::writer::pads;
    use crate::ops::pool::{Pool2d, Pool2dConfig, PoolKind};
    use crate::ops::Padding;

    impl ModelBuilder {
        pub(in crate::model) fn pool(
            &mut self,
            kind: OpKind,
            name: &str,
            input: TensorId,
            window: [usize; 2],
            stride: [usize; 2],
            padding: Padding,
        ) -> Result<TensorId> {
            let x = self.get(input)?.clone();
            let pool = Pool2d::new(Pool2dConfig {
                input: x.shape,
                window,
                stride,
                padding,
            })?;
            let [top, bottom, left, right] = pads(
                x.shape,
                pool.output_shape(),
                window,
                stride,
                [1, 1],
                pool.padding(),
            );
            let params = PoolRecord {
                kind: if kind == OpKind::MaxPool {
                    PoolKind::Max
                } else {
                    PoolKind::Average
                },
                window,
                stride,
                pads: [top, bottom, left, right],
            }
            .emit()?;
            Ok(self.op(
                kind,
                x.ty.dtype(),
                Activation::None,
                &[input],
                (pool.output_shape(), x.ty),
                name,
                params,
                0,
            ))
        }

        /// Max pooling (output quantization = input's).
        pub fn max_pool(
            &mut self,
            name: &str,
            input: TensorId,
            window: [usize; 2],
            stride: [usize; 2],
            padding: Padding,
        ) -> Result<TensorId> {
            self.pool(OpKind::MaxPool, name, input, window, stride, padding)
        }

        /// Average pooling (output quantization = input's).
        pub fn avg_pool(
            &mut self,
            name: &str,
            input: TensorId,
            window: [usize; 2],
            stride: [usize; 2],
            padding: Padding,
        ) -> Result<TensorId> {
            self.pool(OpKind::AvgPool, name, input, window, stride, padding)
        }

        /// Global average pooling to 1x1xC.
        pub fn global_avg_pool(&mut self, name: &str, input: TensorId) -> Result<TensorId> {
            let s = self.get(input)?.shape;
            self.pool(
                OpKind::AvgPool,
                name,
                input,
                [s.h, s.w],
                [1, 1],
                Padding::Valid,
            )
        }
    }
}
