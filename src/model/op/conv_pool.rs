//! `ConvMaxPool` and `ConvAvgPool`: a convolution and the pool over its
//! output in one op (the kind byte tells which pool), run by bands of
//! output rows so that the convolution's output is never whole in the
//! arena. The writer fuses them when that lowers the arena.
//!
//! Words: the convolution's (`Conv2d`), with its two unused words holding
//! the pool as bytes: word 6 `wh | ww << 8 | sh << 16 | sw << 24`, word 11
//! `top | bottom << 8 | left << 16 | right << 24`. The op's activation is
//! the convolution's; the pool has none and keeps the quantization.

use super::conv::Conv2dRecord;
use super::{cast, cast_mut, not_built, padding, Footprint, Io, OpRecord, Site};
use crate::error::{Error, Result};
use crate::model::format::{align_up, DType, OpKind, ARENA_ALIGN};
use crate::model::layer::Layer;
use crate::model::OpInfo;
use crate::num::Real;
use crate::ops::conv::Conv2d;
use crate::ops::conv_pool::ConvPool;
use crate::ops::pool::{Pool2d, Pool2dConfig, PoolKind};
use crate::tensor::Shape;
use half::f16;

/// A fused convolution and pool's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvPoolRecord {
    pub conv: Conv2dRecord,
    pub kind: PoolKind,
    pub window: [usize; 2],
    pub stride: [usize; 2],
    /// `[top, bottom, left, right]` cells.
    pub pads: [usize; 4],
}

/// Four bytes of a word, low first.
fn bytes(w: u32) -> [usize; 4] {
    w.to_le_bytes().map(usize::from)
}

/// Four values as the bytes of a word.
fn word(v: [usize; 4]) -> Result<u32> {
    let mut b = [0u8; 4];
    for (b, &v) in b.iter_mut().zip(&v) {
        *b = u8::try_from(v).map_err(|_| Error::Unsupported {
            what: "fused pool window, stride or padding above 255",
        })?;
    }
    Ok(u32::from_le_bytes(b))
}

impl ConvPoolRecord {
    /// The geometries of a checked record (no arithmetic that could fail:
    /// the check computed the same output with the same sums).
    pub(crate) fn geometry(&self, s: &Site<'_, '_>) -> ConvPool {
        let c = &self.conv;
        let (input, out) = (s.input(0).shape, s.output().shape);
        let span = |n: usize, lead: usize, tail: usize, k: usize, d: usize, st: usize| {
            (n + lead + tail - ((k - 1) * d + 1)) / st + 1
        };
        let [top, bottom, left, right] = c.pads;
        let mid = Shape::new(
            span(
                input.h,
                top,
                bottom,
                c.kernel[0],
                c.dilation[0],
                c.stride[0],
            ),
            span(
                input.w,
                left,
                right,
                c.kernel[1],
                c.dilation[1],
                c.stride[1],
            ),
            out.c,
        );
        ConvPool::from_checked(
            c.geometry_to(input, mid),
            Pool2d::from_checked(
                mid,
                out,
                self.window,
                self.stride,
                [self.pads[0], self.pads[2]],
            ),
            self.kind,
        )
    }

    /// Bytes before the band in the scratch: the convolution's own.
    fn conv_scratch(dtype: DType, conv: &Conv2d) -> usize {
        match dtype {
            DType::I8 => align_up(conv.scratch_len_i8(), ARENA_ALIGN),
            _ => 0,
        }
    }

    /// Scratch bytes of a geometry: the convolution's, then the band.
    pub(crate) fn scratch_of(dtype: DType, g: &ConvPool) -> usize {
        Self::conv_scratch(dtype, g.conv()) + g.band_len() * dtype.size()
    }

    fn run_float<T: Real + crate::model::Element>(
        &self,
        s: &Site<'_, '_>,
        g: ConvPool,
        io: Io<'_>,
    ) -> Result<()> {
        let layer = self.conv.layer_float::<T>(s, *g.conv())?;
        let input = cast(io.input(s, 0)?)?;
        let band = cast_mut(&mut io.scratch[..g.band_len() * core::mem::size_of::<T>()])?;
        g.run_float(&layer, input, cast_mut(io.out)?, band)
    }
}

impl OpRecord for ConvPoolRecord {
    fn read(op: &OpInfo<'_>) -> Self {
        let p = &op.params;
        let [wh, ww, sh, sw] = bytes(p[6]);
        ConvPoolRecord {
            conv: Conv2dRecord::read(op),
            kind: if op.kind == OpKind::ConvMaxPool {
                PoolKind::Max
            } else {
                PoolKind::Average
            },
            window: [wh, ww],
            stride: [sh, sw],
            pads: bytes(p[11]),
        }
    }

    fn emit(&self) -> Result<[u32; 12]> {
        let mut p = self.conv.emit()?;
        p[6] = word([
            self.window[0],
            self.window[1],
            self.stride[0],
            self.stride[1],
        ])?;
        p[11] = word(self.pads)?;
        Ok(p)
    }

    fn check(&self, s: &Site<'_, '_>) -> Result<()> {
        let conv = self.conv.check_conv(s, None)?;
        let pool = Pool2d::new(Pool2dConfig {
            input: conv.output_shape(),
            window: self.window,
            stride: self.stride,
            padding: padding(self.pads),
        })
        .map_err(|_| s.invalid("pool parameters"))?;
        if pool.output_shape() != s.output().shape {
            return Err(s.invalid("op output shape does not follow from its input"));
        }
        Ok(())
    }

    // The convolution; its pool is in the record.
    fn layer(&self, s: &Site<'_, '_>) -> Layer {
        self.conv.layer(s)
    }

    fn macs(&self, s: &Site<'_, '_>) -> usize {
        self.geometry(s).conv().macs()
    }

    fn scratch_len(&self, s: &Site<'_, '_>) -> usize {
        Self::scratch_of(s.op.dtype, &self.geometry(s))
    }

    fn footprint(&self, s: &Site<'_, '_>) -> Footprint {
        let conv = *self.geometry(s).conv();
        self.conv
            .weights
            .footprint(s.op.dtype, conv.filter_len(), conv.output_shape().c)
    }

    fn run(&self, s: &Site<'_, '_>, io: Io<'_>) -> Result<()> {
        let g = self.geometry(s);
        match s.op.dtype {
            DType::I8 if crate::ops::built::INT8 => {
                let layer = self.conv.layer_i8(s, io.tuned, *g.conv())?;
                let input = cast(io.input(s, 0)?)?;
                let (col, band) = io
                    .scratch
                    .split_at_mut(Self::conv_scratch(DType::I8, g.conv()));
                g.run_i8_with::<true>(&layer, input, cast_mut(io.out)?, col, cast_mut(band)?)
            }
            DType::F32 if crate::ops::built::F32 => self.run_float::<f32>(s, g, io),
            DType::F16 if crate::ops::built::F16 => self.run_float::<f16>(s, g, io),
            dtype => Err(not_built(dtype)),
        }
    }
}

/// Fusing a convolution and its pool in the writer.
#[cfg(feature = "std")]
mod build {
    use super::*;
    use crate::model::op::{read_pads, unpack};

    /// The kind, words and scratch bytes of the op fusing convolution
    /// words `conv` (from `input` to `mid`) with pool words `pool` (of
    /// kind `pool_kind`, from `mid` to `out`); `None` when they cannot be
    /// fused (pool values above 255).
    pub(crate) fn fuse(
        dtype: DType,
        conv: [u32; 12],
        pool_kind: OpKind,
        pool: [u32; 12],
        [input, mid, out]: [Shape; 3],
    ) -> Option<(OpKind, [u32; 12], usize)> {
        let (window, stride, pads) = (unpack(pool[0]), unpack(pool[1]), read_pads(&pool, 3));
        let kind = match pool_kind {
            OpKind::MaxPool => OpKind::ConvMaxPool,
            OpKind::AvgPool => OpKind::ConvAvgPool,
            _ => return None,
        };
        let mut p = conv;
        p[6] = word([window[0], window[1], stride[0], stride[1]]).ok()?;
        p[11] = word(pads).ok()?;
        let (kernel, st, dil) = (unpack(conv[0]), unpack(conv[1]), unpack(conv[2]));
        let lead = [unpack(conv[3])[0], unpack(conv[4])[0]];
        let g = ConvPool::from_checked(
            Conv2d::from_checked(input, mid, kernel, st, dil, lead, conv[5] as usize),
            Pool2d::from_checked(mid, out, window, stride, [pads[0], pads[2]]),
            if kind == OpKind::ConvMaxPool {
                PoolKind::Max
            } else {
                PoolKind::Average
            },
        );
        Some((kind, p, ConvPoolRecord::scratch_of(dtype, &g)))
    }
}

#[cfg(feature = "std")]
pub(crate) use build::fuse;
