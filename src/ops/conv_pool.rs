//! A convolution fused with the pool that consumes its output: the
//! convolution computes the band of output rows one pooling window needs,
//! the pool reduces it at once, and the convolution's whole output never
//! exists. Each band runs the unfused kernels over a slice of the input
//! (every output value is computed by the same arithmetic), so the result
//! is bit-identical to the convolution then the pool. A max pool whose
//! windows do not share rows takes one row at a time: the band is one row,
//! and each row's maxima merge into the output row.
//!
//! ```
//! use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat};
//! use picocnn::ops::conv_pool::ConvPool;
//! use picocnn::ops::pool::{Pool2d, Pool2dConfig, Pool2dFloat, PoolKind};
//! use picocnn::ops::Padding;
//! use picocnn::{Activation, Shape};
//!
//! let conv = Conv2d::new(Conv2dConfig::new(Shape::new(4, 4, 1), 1, 3, 3).padding(Padding::Same))?;
//! let pool = Pool2d::new(Pool2dConfig::new(conv.output_shape(), 2, 2).stride(2, 2))?;
//! let fused = ConvPool::new(conv, pool, PoolKind::Max)?;
//! let layer = Conv2dFloat::new(conv, &[1.0f32; 9], &[0.0], Activation::None)?;
//! let (input, mut out) = ([1.0f32; 16], [0.0f32; 4]);
//! let mut band = vec![0.0f32; fused.band_len()];
//! assert_eq!(band.len(), 4); // one row of the 4x4x1 convolution output
//! fused.run_float(&layer, &input, &mut out, &mut band)?;
//! assert_eq!(out, [9.0; 4]); // each window's largest: an inner cell
//! # Ok::<(), picocnn::Error>(())
//! ```

use crate::arch::taps;
use crate::error::{check_len, check_min_len, invalid, Error, Result};
use crate::num::Real;
use crate::ops::built;
use crate::ops::conv::{Conv2d, Conv2dFloat, Conv2dI8};
use crate::ops::pool::{Pool2d, Pool2dFloat, Pool2dI8, PoolKind};
use crate::quant::{Activation, Clamp};
use crate::tensor::Shape;

/// A checked convolution and the pool over its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvPool {
    conv: Conv2d,
    pool: Pool2d,
    kind: PoolKind,
}

impl ConvPool {
    /// Checks that `pool` (of `kind`) reads `conv`'s output.
    pub fn new(conv: Conv2d, pool: Pool2d, kind: PoolKind) -> Result<Self> {
        if pool.input_shape() != conv.output_shape() {
            return Err(invalid("the pool's input is not the convolution's output"));
        }
        Ok(ConvPool::from_checked(conv, pool, kind))
    }

    /// From geometries `new` accepted (a checked model record).
    pub(crate) const fn from_checked(conv: Conv2d, pool: Pool2d, kind: PoolKind) -> Self {
        ConvPool { conv, pool, kind }
    }

    /// Whether rows stream one at a time: a max pool whose windows share
    /// no rows.
    const fn streams(&self) -> bool {
        matches!(self.kind, PoolKind::Max) && self.pool.stride()[0] >= self.pool.window()[0]
    }

    /// Whether this build runs this geometry's loop (a build for given
    /// models has only the ones they use: see `PICOCNN_MODELS`).
    pub const fn built(&self) -> bool {
        if self.streams() {
            built::CONV_POOL_ROWS
        } else {
            built::CONV_POOL_BAND
        }
    }

    /// The error of a loop left out of this build.
    #[cold]
    #[inline(never)]
    pub(crate) const fn left_out(&self) -> Error {
        built::left_out(if self.streams() {
            "convolution with a row-streaming max pool: left out of this build (PICOCNN_MODELS)"
        } else {
            "convolution with a pool by bands of rows: left out of this build (PICOCNN_MODELS)"
        })
    }

    /// The convolution.
    pub const fn conv(&self) -> &Conv2d {
        &self.conv
    }

    /// The pool.
    pub const fn pool(&self) -> &Pool2d {
        &self.pool
    }

    /// Convolution output rows a band holds: one, or one pooling window's.
    pub const fn band_rows(&self) -> usize {
        let (w, h) = (self.pool.window()[0], self.conv.output_shape().h);
        if self.streams() {
            1
        } else if w < h {
            w
        } else {
            h
        }
    }

    /// Elements of the band.
    pub const fn band_len(&self) -> usize {
        let o = self.conv.output_shape();
        self.band_rows() * o.w * o.c
    }

    /// The convolution of `n` output rows from `r0`: its input starts at row
    /// `a`, and its top padding is what the rows above `a` were.
    fn rows(&self, r0: usize, n: usize) -> (Conv2d, usize) {
        let c = &self.conv;
        let (i, o) = (c.input_shape(), c.output_shape());
        let y = (r0 * c.stride()[0]) as isize - c.padding()[0] as isize;
        // Every output row's window meets the input (padding is smaller
        // than the window), so `a < i.h`.
        let a = if y > 0 { y as usize } else { 0 };
        let geom = Conv2d::from_checked(
            Shape::new(i.h - a, i.w, i.c),
            Shape::new(n, o.w, o.c),
            c.kernel(),
            c.stride(),
            c.dilation(),
            [(a as isize - y) as usize, c.padding()[1]],
            c.groups(),
        );
        (geom, a * i.w * i.c)
    }

    /// Runs the bands: `conv(geometry, input, rows)` computes convolution
    /// rows, `pool(geometry, band, row)` one output row from the band;
    /// when rows stream, `max` merges a value into a maximum starting at
    /// `floor` instead.
    fn run<T: Copy>(
        &self,
        input: &[T],
        output: &mut [T],
        band: &mut [T],
        mut conv: impl FnMut(Conv2d, &[T], &mut [T]) -> Result<()>,
        mut pool: impl FnMut(Pool2d, &[T], &mut [T]) -> Result<()>,
        (floor, max): (T, impl Fn(T, T) -> T),
    ) -> Result<()> {
        let (p, o) = (&self.pool, self.conv.output_shape());
        check_len("conv input", self.conv.input_shape().len(), input.len())?;
        check_len("pool output", p.output_shape().len(), output.len())?;
        check_min_len("conv-pool band", self.band_len(), band.len())?;
        let row = o.w * o.c;
        let out_row = p.output_shape().w * o.c;
        let [wh, ww] = p.window();
        if !self.built() {
            return Err(self.left_out());
        }
        if self.streams() {
            let band = &mut band[..row];
            let (sw, pl) = (p.stride()[1] as isize, p.padding()[1] as isize);
            for (py, dst) in output.chunks_exact_mut(out_row).enumerate() {
                let y = (py * p.stride()[0]) as isize - p.padding()[0] as isize;
                let (lo, hi) = taps(y, o.h, wh, 1);
                dst.fill(floor);
                for r in lo..hi {
                    let (g, start) = self.rows((y + r as isize) as usize, 1);
                    conv(g, &input[start..], band)?;
                    // Each window's columns inside the row (as the pool's
                    // taps); maxima are exact in any order.
                    for (px, d) in dst.chunks_exact_mut(o.c).enumerate() {
                        let x = px as isize * sw - pl;
                        let a = x.max(0) as usize;
                        let b = ((x + ww as isize).min(o.w as isize) as usize).max(a);
                        for tap in band[a * o.c..b * o.c].chunks_exact(o.c) {
                            for (d, &v) in d.iter_mut().zip(tap) {
                                *d = max(*d, v);
                            }
                        }
                    }
                }
            }
            return Ok(());
        }
        // The band holds convolution rows `have.0..have.1`.
        let mut have = (0usize, 0usize);
        for (py, dst) in output.chunks_exact_mut(out_row).enumerate() {
            let y = (py * p.stride()[0]) as isize - p.padding()[0] as isize;
            let lo = if y > 0 { y as usize } else { 0 };
            let hi = ((y + wh as isize) as usize).min(o.h);
            // Windows move down: rows still needed move to the band's top.
            if have.1 > lo {
                band.copy_within((lo - have.0) * row..(have.1 - have.0) * row, 0);
                have = (lo, have.1);
            } else {
                have = (lo, lo);
            }
            if hi > have.1 {
                let (g, start) = self.rows(have.1, hi - have.1);
                conv(
                    g,
                    &input[start..],
                    &mut band[(have.1 - lo) * row..(hi - lo) * row],
                )?;
                have.1 = hi;
            }
            let g = Pool2d::from_checked(
                Shape::new(hi - lo, o.w, o.c),
                Shape::new(1, p.output_shape().w, o.c),
                p.window(),
                p.stride(),
                [(lo as isize - y) as usize, p.padding()[1]],
            );
            pool(g, &band[..(hi - lo) * row], dst)?;
        }
        Ok(())
    }

    /// Runs an int8 convolution (`layer`, of this geometry) and the pool;
    /// `scratch` holds the convolution's scratch
    /// ([`Conv2d::scratch_len_i8`]), `band` [`band_len`](Self::band_len)
    /// values.
    pub fn run_i8(
        &self,
        layer: &Conv2dI8<'_>,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [u8],
        band: &mut [i8],
    ) -> Result<()> {
        if layer.per_channel() {
            self.run_i8_with::<true>(layer, input, output, scratch, band)
        } else {
            self.run_i8_with::<false>(layer, input, output, scratch, band)
        }
    }

    /// [`run_i8`](Self::run_i8) with the quantization's granularity known
    /// (per channel in every model blob).
    pub(crate) fn run_i8_with<const PER_CHANNEL: bool>(
        &self,
        layer: &Conv2dI8<'_>,
        input: &[i8],
        output: &mut [i8],
        scratch: &mut [u8],
        band: &mut [i8],
    ) -> Result<()> {
        if *layer.geometry() != self.conv {
            return Err(invalid(
                "the layer's geometry is not the fused convolution's",
            ));
        }
        let kind = self.kind;
        self.run(
            input,
            output,
            band,
            |g, x, y| {
                layer
                    .with_geometry(g)
                    .run_with::<PER_CHANNEL>(x, y, scratch)
            },
            // Pools keep the quantization: no clamp of their own.
            |g, x, y| Pool2dI8::from_checked(g, kind, Clamp::NONE).run(x, y),
            // The unfused pool's maxima start at the clamp's floor.
            (Clamp::NONE.min, |a: i8, b: i8| a.max(b)),
        )
    }

    /// Runs a float convolution (`layer`, of this geometry) and the pool.
    pub fn run_float<T: Real>(
        &self,
        layer: &Conv2dFloat<'_, T>,
        input: &[T],
        output: &mut [T],
        band: &mut [T],
    ) -> Result<()> {
        if *layer.geometry() != self.conv {
            return Err(invalid(
                "the layer's geometry is not the fused convolution's",
            ));
        }
        let kind = self.kind;
        self.run(
            input,
            output,
            band,
            |g, x, y| layer.with_geometry(g).run(x, y),
            |g, x, y| Pool2dFloat::new(g, kind, Activation::None).run(x, y),
            // As the unfused pool: from minus infinity, larger replaces.
            (T::from_f32(f32::NEG_INFINITY), |a: T, b: T| {
                if b.to_f32() > a.to_f32() {
                    b
                } else {
                    a
                }
            }),
        )
    }
}
