//! Max, average and global average pooling.
//!
//! Padding cells never count: a max pool ignores them and an average pool
//! divides by the number of cells inside the input, as TensorFlow Lite does.
//! The int8 kernels keep the input's quantization parameters.
//!
//! ```
//! use picocnn::ops::pool::{Pool2d, Pool2dConfig, Pool2dFloat, PoolKind};
//! use picocnn::{Activation, Shape};
//!
//! let pool = Pool2d::new(Pool2dConfig::new(Shape::new(2, 2, 1), 2, 2).stride(2, 2))?;
//! let mut out = [0.0f32; 1];
//! Pool2dFloat::new(pool, PoolKind::Max, Activation::None).run(&[1.0f32, 4.0, 2.0, 3.0], &mut out)?;
//! assert_eq!(out, [4.0]);
//! Pool2dFloat::new(pool, PoolKind::Average, Activation::None).run(&[1.0f32, 4.0, 2.0, 3.0], &mut out)?;
//! assert_eq!(out, [2.5]);
//! # Ok::<(), picocnn::Error>(())
//! ```

use crate::arch::taps;
use crate::error::{check_len, Result};
use crate::num::{clamp_f32, Real};
use crate::ops::{axis, built, Padding};
use crate::quant::{Activation, Clamp};
use crate::tensor::Shape;

/// What a pooling layer should be; [`Pool2d::new`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pool2dConfig {
    /// Input shape (the output has the same channels).
    pub input: Shape,
    /// Window `[height, width]`.
    pub window: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Border handling.
    pub padding: Padding,
}

impl Pool2dConfig {
    /// A `window_h` x `window_w` pool, stride 1, `valid` padding.
    pub const fn new(input: Shape, window_h: usize, window_w: usize) -> Self {
        Pool2dConfig {
            input,
            window: [window_h, window_w],
            stride: [1, 1],
            padding: Padding::Valid,
        }
    }

    /// A window over the whole input: global pooling to 1x1xC.
    pub const fn global(input: Shape) -> Self {
        Pool2dConfig::new(input, input.h, input.w)
    }

    /// Sets the stride.
    pub const fn stride(mut self, vertical: usize, horizontal: usize) -> Self {
        self.stride = [vertical, horizontal];
        self
    }

    /// Sets the padding.
    pub const fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
}

/// A checked pooling geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pool2d {
    input: Shape,
    output: Shape,
    window: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
}

impl Pool2d {
    /// Checks `config` and computes the output shape.
    pub fn new(config: Pool2dConfig) -> Result<Self> {
        let Pool2dConfig {
            input,
            window,
            stride,
            padding,
        } = config;
        input.validate("input shape must not be empty")?;
        let (oh, pad_top) = axis(input.h, window[0], stride[0], 1, padding, true)?;
        let (ow, pad_left) = axis(input.w, window[1], stride[1], 1, padding, false)?;
        Ok(Pool2d {
            input,
            output: Shape::new(oh, ow, input.c),
            window,
            stride,
            pad: [pad_top, pad_left],
        })
    }

    /// From the parts of a checked model record: `new` of the same
    /// configuration gave this output and leading padding.
    pub(crate) const fn from_checked(
        input: Shape,
        output: Shape,
        window: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
    ) -> Self {
        Pool2d {
            input,
            output,
            window,
            stride,
            pad,
        }
    }

    /// Global average or max pooling over the whole input.
    pub fn global(input: Shape) -> Result<Self> {
        Pool2d::new(Pool2dConfig::global(input))
    }

    /// Input shape.
    pub const fn input_shape(&self) -> Shape {
        self.input
    }

    /// Output shape.
    pub const fn output_shape(&self) -> Shape {
        self.output
    }

    /// Window `[height, width]`.
    pub const fn window(&self) -> [usize; 2] {
        self.window
    }

    /// Stride `[vertical, horizontal]`.
    pub const fn stride(&self) -> [usize; 2] {
        self.stride
    }

    /// Leading padding `[top, left]`.
    pub const fn padding(&self) -> [usize; 2] {
        self.pad
    }

    /// Scratch bytes (none).
    pub const fn scratch_len(&self) -> usize {
        0
    }

    /// Calls `f(out_index_base, taps)` for every output pixel with the
    /// in-bounds window `(y_lo..y_hi, x_lo..x_hi)` in input coordinates.
    #[inline(always)]
    pub(crate) fn for_each_window(&self, mut f: impl FnMut(usize, [usize; 4])) {
        let [wh, ww] = self.window;
        let mut out = 0;
        for oy in 0..self.output.h {
            let y0 = (oy * self.stride[0]) as isize - self.pad[0] as isize;
            let (ky_lo, ky_hi) = taps(y0, self.input.h, wh, 1);
            let (ylo, yhi) = (
                (y0 + ky_lo as isize) as usize,
                (y0 + ky_hi as isize) as usize,
            );
            for ox in 0..self.output.w {
                let x0 = (ox * self.stride[1]) as isize - self.pad[1] as isize;
                let (kx_lo, kx_hi) = taps(x0, self.input.w, ww, 1);
                let (xlo, xhi) = (
                    (x0 + kx_lo as isize) as usize,
                    (x0 + kx_hi as isize) as usize,
                );
                f(out, [ylo, yhi, xlo, xhi]);
                out += self.input.c;
            }
        }
    }

    fn check<T>(&self, input: &[T], output: &[T]) -> Result<()> {
        check_len("pool input", self.input.len(), input.len())?;
        check_len("pool output", self.output.len(), output.len())
    }

    fn max_i8(&self, input: &[i8], output: &mut [i8], clamp: Clamp) -> Result<()> {
        self.check(input, output)?;
        let (w, c) = (self.input.w, self.input.c);
        if crate::arch::vector_elementwise() {
            self.for_each_window(|out, window| {
                let dst = &mut output[out..out + c];
                crate::arch::max_window_i8(input, w, c, window, dst, clamp)
            });
            return Ok(());
        }
        self.max_i8_portable(input, output, clamp);
        Ok(())
    }

    /// The portable int8 maximum (the reference of the vector loops' bytes).
    fn max_i8_portable(&self, input: &[i8], output: &mut [i8], clamp: Clamp) {
        let (w, c) = (self.input.w, self.input.c);
        let (lo, hi) = (clamp.min, clamp.max);
        self.for_each_window(|out, [ylo, yhi, xlo, xhi]| {
            // Channels innermost: every tap is one contiguous run of `c`
            // values. The first tap starts the maxima at the clamp's floor,
            // so that `min(max(lo, taps), hi)` is the clamped maximum.
            let dst = &mut output[out..out + c];
            let mut first = true;
            for y in ylo..yhi {
                let row = &input[(y * w + xlo) * c..(y * w + xhi) * c];
                for tap in row.chunks_exact(c) {
                    if first {
                        for (d, &v) in dst.iter_mut().zip(tap) {
                            *d = v.max(lo);
                        }
                        first = false;
                    } else {
                        for (d, &v) in dst.iter_mut().zip(tap) {
                            *d = (*d).max(v);
                        }
                    }
                }
            }
            if first {
                // An empty window cannot occur (padding is smaller than
                // the window); it would give the floor.
                dst.fill(lo);
            }
            if hi < i8::MAX {
                for d in dst.iter_mut() {
                    *d = (*d).min(hi);
                }
            }
        });
    }

    // The sum divided by the count of in-bounds cells, rounded half away
    // from zero.
    fn avg_i8(&self, input: &[i8], output: &mut [i8], clamp: Clamp) -> Result<()> {
        self.check(input, output)?;
        let (w, c) = (self.input.w, self.input.c);
        self.for_each_window(|out, [ylo, yhi, xlo, xhi]| {
            let count = ((yhi - ylo) * (xhi - xlo)) as i32;
            for ch in 0..c {
                let mut acc = 0i32;
                for y in ylo..yhi {
                    for x in xlo..xhi {
                        acc = acc.wrapping_add(input[(y * w + x) * c + ch] as i32);
                    }
                }
                // An empty window cannot occur: padding is smaller than the window.
                let avg = if count == 0 {
                    0
                } else if acc > 0 {
                    (acc + count / 2) / count
                } else {
                    (acc - count / 2) / count
                };
                output[out + ch] = clamp.apply(avg);
            }
        });
        Ok(())
    }

    /// The AVX-512 loop over every window, when this CPU has it: then
    /// `true`.
    fn float_vector<T: Real>(
        &self,
        max: bool,
        input: &[T],
        output: &mut [T],
        range: [f32; 2],
    ) -> bool {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        if let Some(v) = crate::arch::vnni() {
            let (w, c) = (self.input.w, self.input.c);
            self.for_each_window(|out, window| {
                let dst = &mut output[out..out + c];
                // SAFETY: `v` proves the CPU runs AVX-512.
                unsafe { crate::arch::pool_window_float(max, input, w, c, window, dst, range, v) }
            });
            return true;
        }
        let _ = (max, input, output, range);
        false
    }

    fn max_float<T: Real>(&self, input: &[T], output: &mut [T], [lo, hi]: [f32; 2]) -> Result<()> {
        self.check(input, output)?;
        if self.float_vector(true, input, output, [lo, hi]) {
            return Ok(());
        }
        self.max_float_portable(input, output, [lo, hi]);
        Ok(())
    }

    /// The portable maximum (the reference of the vector loop's bits).
    fn max_float_portable<T: Real>(&self, input: &[T], output: &mut [T], [lo, hi]: [f32; 2]) {
        let (w, c) = (self.input.w, self.input.c);
        self.for_each_window(|out, [ylo, yhi, xlo, xhi]| {
            for ch in 0..c {
                let mut m = f32::NEG_INFINITY;
                for y in ylo..yhi {
                    for x in xlo..xhi {
                        let v = input[(y * w + x) * c + ch].to_f32();
                        if v > m {
                            m = v;
                        }
                    }
                }
                output[out + ch] = T::from_f32(clamp_f32(m, lo, hi));
            }
        });
    }

    fn avg_float<T: Real>(&self, input: &[T], output: &mut [T], [lo, hi]: [f32; 2]) -> Result<()> {
        self.check(input, output)?;
        if self.float_vector(false, input, output, [lo, hi]) {
            return Ok(());
        }
        self.avg_float_portable(input, output, [lo, hi]);
        Ok(())
    }

    /// The portable average (the reference of the vector loop's bits).
    fn avg_float_portable<T: Real>(&self, input: &[T], output: &mut [T], [lo, hi]: [f32; 2]) {
        let (w, c) = (self.input.w, self.input.c);
        self.for_each_window(|out, [ylo, yhi, xlo, xhi]| {
            let count = ((yhi - ylo) * (xhi - xlo)) as f32;
            for ch in 0..c {
                let mut acc = 0.0f32;
                for y in ylo..yhi {
                    for x in xlo..xhi {
                        acc += input[(y * w + x) * c + ch].to_f32();
                    }
                }
                output[out + ch] = T::from_f32(clamp_f32(acc / count, lo, hi));
            }
        });
    }
}

/// Which value a pooling window keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PoolKind {
    /// The largest (TensorFlow Lite `MAX_POOL_2D`).
    Max,
    /// The mean of the in-bounds cells (TensorFlow Lite `AVERAGE_POOL_2D`;
    /// int8 rounds half away from zero).
    Average,
}

/// A ready-to-run int8 pooling layer. The output keeps the input's
/// quantization; `clamp` is the fused activation's range.
#[derive(Debug, Clone, Copy)]
pub struct Pool2dI8 {
    geom: Pool2d,
    kind: PoolKind,
    clamp: Clamp,
}

impl Pool2dI8 {
    /// Checks the clamp.
    pub fn new(geom: Pool2d, kind: PoolKind, clamp: Clamp) -> Result<Self> {
        Clamp::new(clamp.min, clamp.max)?;
        Ok(Pool2dI8::from_checked(geom, kind, clamp))
    }

    /// From parts that `new` accepted before (a checked model record).
    pub(crate) const fn from_checked(geom: Pool2d, kind: PoolKind, clamp: Clamp) -> Self {
        Pool2dI8 { geom, kind, clamp }
    }

    /// The geometry.
    pub const fn geometry(&self) -> &Pool2d {
        &self.geom
    }

    /// Pools `input` into `output` (no scratch needed).
    pub fn run(&self, input: &[i8], output: &mut [i8]) -> Result<()> {
        match self.kind {
            PoolKind::Max if built::MAX_POOL => self.geom.max_i8(input, output, self.clamp),
            PoolKind::Average if built::AVG_POOL => self.geom.avg_i8(input, output, self.clamp),
            _ => Err(built::left_out(
                "pooling: left out of this build (PICOCNN_MODELS)",
            )),
        }
    }
}

/// A ready-to-run float pooling layer over `f32` or `f16`.
#[derive(Debug, Clone, Copy)]
pub struct Pool2dFloat {
    geom: Pool2d,
    kind: PoolKind,
    range: [f32; 2],
}

impl Pool2dFloat {
    /// A pool with a fused activation.
    pub fn new(geom: Pool2d, kind: PoolKind, activation: Activation) -> Self {
        let (lo, hi) = activation.range_f32();
        Pool2dFloat {
            geom,
            kind,
            range: [lo, hi],
        }
    }

    /// The geometry.
    pub const fn geometry(&self) -> &Pool2d {
        &self.geom
    }

    /// Pools `input` into `output` (no scratch needed).
    pub fn run<T: Real>(&self, input: &[T], output: &mut [T]) -> Result<()> {
        match self.kind {
            PoolKind::Max if built::MAX_POOL => self.geom.max_float(input, output, self.range),
            PoolKind::Average if built::AVG_POOL => self.geom.avg_float(input, output, self.range),
            _ => Err(built::left_out(
                "pooling: left out of this build (PICOCNN_MODELS)",
            )),
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::tensor::Shape;
    use half::f16;

    fn value(rng: &mut Rng) -> f32 {
        match rng.below(30) {
            0 => f32::NAN,
            1 => -0.0,
            2 => f32::NEG_INFINITY,
            3 => 3.0e-8,
            4 => 70_000.0,
            _ => (rng.below(2001) as f32 - 1000.0) / 97.0,
        }
    }

    /// A random pool of up to `channels` channels and `size` rows and
    /// columns: windows up to 3x3, strides up to 3, same or valid padding
    /// (`None` when the window does not fit).
    fn random_pool(rng: &mut Rng, case: usize, channels: usize, size: usize) -> Option<Pool2d> {
        let r = |rng: &mut Rng, lo: usize, hi: usize| lo + rng.below((hi - lo + 1) as u64) as usize;
        let c = r(rng, 1, channels);
        let (kh, kw) = (r(rng, 1, 3), r(rng, 1, 3));
        let input = Shape::new(r(rng, kh, size), r(rng, kw, size), c);
        let padding = if case.is_multiple_of(2) {
            Padding::Same
        } else {
            Padding::Valid
        };
        let config = Pool2dConfig::new(input, kh, kw)
            .stride(r(rng, 1, 3), r(rng, 1, 3))
            .padding(padding);
        Pool2d::new(config).ok()
    }

    /// Whatever loop the float pools take on this CPU, every output has
    /// the portable loops' bits: windows, strides and padding, NaNs,
    /// infinities, signed zeros and subnormal halves, every activation.
    fn pools_equal_the_portable_loops<T: Real>(seed: u64) {
        let mut rng = Rng::new(seed);
        let bits = |v: &[T]| v.iter().map(|x| x.to_f32().to_bits()).collect::<Vec<_>>();
        for case in 0..400 {
            let Some(geom) = random_pool(&mut rng, case, 40, 9) else {
                continue;
            };
            let input = geom.input_shape();
            let x: Vec<T> = (0..input.len())
                .map(|_| T::from_f32(value(&mut rng)))
                .collect();
            let act = [Activation::None, Activation::Relu, Activation::Relu6][case % 3];
            let range = {
                let (lo, hi) = act.range_f32();
                [lo, hi]
            };
            for kind in [PoolKind::Max, PoolKind::Average] {
                let pool = Pool2dFloat::new(geom, kind, act);
                let mut got = vec![T::default(); geom.output_shape().len()];
                let mut want = got.clone();
                pool.run(&x, &mut got).unwrap();
                match kind {
                    PoolKind::Max => geom.max_float_portable(&x, &mut want, range),
                    PoolKind::Average => geom.avg_float_portable(&x, &mut want, range),
                }
                assert_eq!(bits(&got), bits(&want), "case {case} {kind:?}: {geom:?}");
            }
        }
    }

    /// Whatever loop int8 max pooling takes on this CPU, its bytes are the
    /// portable loop's: channel counts across the vector widths, windows,
    /// strides, padding and clamps.
    #[test]
    fn int8_max_pools_equal_the_portable_loop() {
        let mut rng = Rng::new(33);
        for case in 0..400 {
            let Some(geom) = random_pool(&mut rng, case, 100, 7) else {
                continue;
            };
            let input = geom.input_shape();
            let clamp = [
                Clamp::NONE,
                Clamp { min: 0, max: 127 },
                Clamp { min: -50, max: 60 },
            ][case % 3];
            let x: Vec<i8> = (0..input.len()).map(|_| rng.next_u64() as i8).collect();
            let pool = Pool2dI8::new(geom, PoolKind::Max, clamp).unwrap();
            let mut got = vec![0i8; geom.output_shape().len()];
            let mut want = got.clone();
            pool.run(&x, &mut got).unwrap();
            geom.max_i8_portable(&x, &mut want, clamp);
            assert_eq!(got, want, "case {case}: {geom:?}");
        }
    }

    #[test]
    fn float_pools_equal_the_portable_loops() {
        pools_equal_the_portable_loops::<f32>(31);
        pools_equal_the_portable_loops::<f16>(32);
    }
}
