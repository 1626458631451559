//! The portable reference loops, and the argument types every target's
//! loops share. Every fast path gives these loops' results bit for bit.

use super::Clamp;
use crate::tensor::Shape;

/// A checked convolution geometry, as the loops read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub input: Shape,
    pub output: Shape,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Leading padding `[top, left]`.
    pub pad: [usize; 2],
    pub groups: usize,
}

impl ConvGeom {
    /// Values per filter.
    pub const fn filter_depth(&self) -> usize {
        self.kernel[0] * self.kernel[1] * (self.input.c / self.groups)
    }
}

/// The taps `lo..hi` of a window starting at `origin` (in input cells, may be
/// negative) that land inside `0..size`.
#[inline(always)]
pub(crate) fn taps(origin: isize, size: usize, kernel: usize, dilation: usize) -> (usize, usize) {
    if dilation == 1 {
        // The common case without divisions (a library call on Armv6-M).
        let lo = if origin < 0 { origin.unsigned_abs() } else { 0 };
        let end = size as isize - origin;
        let hi = if end <= 0 {
            0
        } else {
            (end as usize).min(kernel)
        };
        return (lo.min(hi), hi);
    }
    let d = dilation as isize;
    let lo = if origin >= 0 {
        0
    } else {
        ((-origin + d - 1) / d) as usize
    };
    let end = size as isize - origin; // first tap offset past the input
    let hi = if end <= 0 {
        0
    } else {
        (((end + d - 1) / d) as usize).min(kernel)
    };
    (lo.min(hi), hi)
}

/// `(x * m + 2^30) >> 31`, the low 32 bits, from four 16x16 products: for
/// cores without a 32x32 -> 64-bit multiply (Armv6-M), where the `i64`
/// product is a call to `__aeabi_lmul` of about 40 instructions.
#[cfg_attr(not(any(test, picocnn_thumb1)), allow(dead_code))]
#[inline(always)]
pub(crate) fn rounding_high_mul_16(x: i32, m: i32) -> i32 {
    let (xh, xl) = (x >> 16, x & 0xffff);
    let (mh, ml) = (m >> 16, m & 0xffff);
    // Each product fits in 32 bits: one factor below 2^16, the other at
    // most 2^15 in magnitude (or both below 2^16 and unsigned, for `t`).
    let t = (xl as u32).wrapping_mul(ml as u32);
    let a = xh.wrapping_mul(ml);
    let b = xl.wrapping_mul(mh);
    let c = xh.wrapping_mul(mh);
    // x m = c 2^32 + (a + b) 2^16 + t, with a 2^16 = (a >> 16) 2^32 + (a mod 2^16) 2^16.
    let (lo, c1) = t.overflowing_add((a as u32) << 16);
    let (lo, c2) = lo.overflowing_add((b as u32) << 16);
    let (lo, c3) = lo.overflowing_add(1 << 30);
    let hi = c
        .wrapping_add(a >> 16)
        .wrapping_add(b >> 16)
        .wrapping_add(c1 as i32 + c2 as i32 + c3 as i32);
    ((hi as u32) << 1 | lo >> 31) as i32
}

/// One depthwise tap's four filter values as [`mac4`] takes them.
#[cfg_attr(picocnn_dsp, allow(dead_code))]
#[inline(always)]
pub(crate) fn filter4(w: &[i8]) -> [i8; 4] {
    [w[0], w[1], w[2], w[3]]
}

/// Four independent multiply-accumulates (depthwise, one tap of four
/// channels): `acc[j] + (x[j] + offset) * w[j]`.
#[cfg_attr(picocnn_dsp, allow(dead_code))]
#[inline(always)]
pub(crate) fn mac4(acc: [i32; 4], x: &[i8], w: &[i8; 4], offset: i32) -> [i32; 4] {
    let x = &x[..4];
    let mut acc = acc;
    for j in 0..4 {
        acc[j] = acc[j].wrapping_add((x[j] as i32 + offset) * w[j] as i32);
    }
    acc
}

/// `acc[j] + x[t][j] * w[t][j]` over a whole 3x3 depthwise window whose
/// first tap is `input[0..4]`, taps `steps = [row, tap]` bytes apart (no
/// input offset: the caller starts `acc` with it).
#[cfg_attr(picocnn_dsp, allow(dead_code))]
#[inline(always)]
pub(crate) fn window_3x3(
    acc: [i32; 4],
    input: &[i8],
    [row, tap]: [usize; 2],
    w: &[[[i8; 4]; 3]; 3],
) -> [i32; 4] {
    // The last tap: the one bounds check.
    let input = &input[..2 * row + 2 * tap + 4];
    let x = |q: usize| {
        // SAFETY: `q <= 2 row + 2 tap`, so `q + 4 <= input.len()`.
        unsafe { input.get_unchecked(q..q + 4) }
    };
    let mut acc = acc;
    let mut q = 0;
    // Written out: firmware is built for size, which unrolls no loop.
    for w in w {
        acc = mac4(acc, x(q), &w[0], 0);
        acc = mac4(acc, x(q + tap), &w[1], 0);
        acc = mac4(acc, x(q + 2 * tap), &w[2], 0);
        q += row;
    }
    acc
}

/// Everything an int8 convolution loop needs, already checked.
/// `PER_CHANNEL`: one multiplier and shift per output channel; otherwise
/// one for the whole tensor.
pub(crate) struct ConvArgs<'a, const PER_CHANNEL: bool> {
    pub geom: ConvGeom,
    pub filter: &'a [i8],
    pub bias: &'a [i32],
    pub multiplier: &'a [i32],
    pub shift: &'a [i32],
    pub input_offset: i32,
    pub output_zero_point: i32,
    pub clamp: Clamp,
    /// Every channel's accumulators take [`NarrowScale`](super::NarrowScale)
    /// (see [`fits_narrow`](Self::fits_narrow)).
    pub narrow: bool,
}

impl<const PER_CHANNEL: bool> ConvArgs<'_, PER_CHANNEL> {
    /// Requantizes one accumulator of output channel `o`.
    #[inline(always)]
    pub fn requantize(&self, acc: i32, o: usize) -> i8 {
        if self.narrow {
            self.requantize_narrow(acc, self.narrow_of(o))
        } else {
            self.requantize_by(acc, self.requant_of(o))
        }
    }

    /// Output channel `o`'s requantization, for [`requantize_by`] (worked
    /// out once for several accumulators of the channel).
    ///
    /// [`requantize_by`]: Self::requantize_by
    #[inline(always)]
    pub fn requant_of(&self, o: usize) -> super::Scale {
        let i = if PER_CHANNEL { o } else { 0 };
        super::Scale::new(self.multiplier[i], self.shift[i])
    }

    /// Requantizes an accumulator with a channel's [`requant_of`](Self::requant_of).
    #[inline(always)]
    pub fn requantize_by(&self, acc: i32, scale: super::Scale) -> i8 {
        self.clamp
            .apply(scale.apply(acc).wrapping_add(self.output_zero_point))
    }

    /// Whether every output channel's accumulators, over `depth` taps,
    /// take [`NarrowScale`](super::NarrowScale): each is at most its bias
    /// plus `depth` times 255 * 128 in size (`x + offset` and the filters'
    /// largest sizes).
    pub fn fits_narrow(&self, depth: usize) -> bool {
        let Some(taps) = u32::try_from(depth)
            .ok()
            .and_then(|d| d.checked_mul(255 * 128))
        else {
            return false;
        };
        let channels = if PER_CHANNEL { self.shift.len() } else { 1 };
        let widest = self
            .bias
            .iter()
            .map(|b| b.unsigned_abs())
            .max()
            .unwrap_or(0);
        let bound = widest.saturating_add(taps);
        (0..channels).all(|o| super::NarrowScale::fits(bound, self.shift[o]))
    }

    /// Output channel `o`'s requantization for a layer whose accumulators
    /// are [`narrow`](Self::narrow).
    #[inline(always)]
    pub fn narrow_of(&self, o: usize) -> super::NarrowScale {
        let i = if PER_CHANNEL { o } else { 0 };
        super::NarrowScale::new(self.multiplier[i], self.shift[i], self.output_zero_point)
    }

    /// Requantizes an accumulator with a channel's [`narrow_of`](Self::narrow_of).
    #[inline(always)]
    pub fn requantize_narrow(&self, acc: i32, scale: super::NarrowScale) -> i8 {
        self.clamp.apply(scale.apply(acc))
    }
}

/// A column element: int16 on most paths, int32 where the multiply takes
/// whole words (Armv6-M).
pub(crate) trait Lane: Copy + Default {
    /// `dst[i] = src[i] + offset`, widened.
    fn widen(src: &[i8], dst: &mut [Self], offset: i32);
}

impl Lane for i16 {
    #[inline(always)]
    fn widen(src: &[i8], dst: &mut [i16], offset: i32) {
        let offset = offset as i16;
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s as i16 + offset;
        }
    }
}

impl Lane for i32 {
    #[inline(always)]
    fn widen(src: &[i8], dst: &mut [i32], offset: i32) {
        let n = src.len().min(dst.len());
        let (src, dst) = (&src[..n], &mut dst[..n]);
        for i in 0..n {
            dst[i] = src[i] as i32 + offset;
        }
    }
}

/// Fills `col` with the window of output pixel `(oy, ox)` for group `g`,
/// widened with the input offset added; padding becomes 0.
#[inline]
pub(crate) fn im2col<T: Lane, const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    oy: usize,
    ox: usize,
    g: usize,
    col: &mut [T],
) {
    let off = a.input_offset;
    window(&a.geom, oy, ox, g, col, T::default(), |s, d, n| {
        T::widen(&input[s..s + n], &mut d[..n], off)
    });
}

/// Fills `col` with the raw int8 window of output pixel `(oy, ox)` for
/// group `g`, padding with the input's zero point (checked to be an int8,
/// which the input offset turns into 0): the bytes [`im2col`] would widen,
/// for loops that widen while they pack. `copy` copies one span
/// (`dst.copy_from_slice(src)`).
#[cfg_attr(not(picocnn_dsp), allow(dead_code))]
#[inline]
pub(crate) fn im2col_raw<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    oy: usize,
    ox: usize,
    g: usize,
    col: &mut [i8],
    copy: impl Fn(&[i8], &mut [i8]),
) {
    let pad = a.input_offset.wrapping_neg() as i8;
    window(&a.geom, oy, ox, g, col, pad, |s, d, n| {
        copy(&input[s..s + n], &mut d[..n])
    });
}

/// The rows and columns of taps of the window at `(y0, x0)` inside the
/// input: `window` runs it for the border pixels only (the others take
/// [`Interior`]), so one out-of-line copy of [`taps`] serves both axes.
#[inline(always)]
fn window_taps(geom: &ConvGeom, y0: isize, x0: isize) -> [(usize, usize); 2] {
    #[inline(never)]
    fn taps_once(origin: isize, size: usize, kernel: usize, dilation: usize) -> (usize, usize) {
        taps(origin, size, kernel, dilation)
    }
    [
        taps_once(y0, geom.input.h, geom.kernel[0], geom.dilation[0]),
        taps_once(x0, geom.input.w, geom.kernel[1], geom.dilation[1]),
    ]
}

/// The window of output pixel `(oy, ox)` for group `g` in `col`: filled
/// with `pad` where it crosses the border, then each run of it inside the
/// input handed to `span(input offset, col from the run on, length)`.
#[inline(always)]
pub(crate) fn window<T: Copy>(
    geom: &ConvGeom,
    oy: usize,
    ox: usize,
    g: usize,
    col: &mut [T],
    pad: T,
    mut span: impl FnMut(usize, &mut [T], usize),
) {
    let [kh, kw] = geom.kernel;
    let [dh, dw] = geom.dilation;
    let cin = geom.input.c;
    let cpg = cin / geom.groups;
    let y0 = (oy * geom.stride[0]) as isize - geom.pad[0] as isize;
    let x0 = (ox * geom.stride[1]) as isize - geom.pad[1] as isize;
    let [(ky_lo, ky_hi), (kx_lo, kx_hi)] = window_taps(geom, y0, x0);
    if ky_lo > 0 || kx_lo > 0 || ky_hi < kh || kx_hi < kw {
        col[..kh * kw * cpg].fill(pad);
    }
    if cpg == cin && dw == 1 {
        // One group and no horizontal dilation: each kernel row is one
        // contiguous span of the input.
        let n = (kx_hi - kx_lo) * cin;
        let ix = (x0 + kx_lo as isize) as usize;
        for ky in ky_lo..ky_hi {
            let iy = (y0 + (ky * dh) as isize) as usize;
            span(
                (iy * geom.input.w + ix) * cin,
                &mut col[(ky * kw + kx_lo) * cin..],
                n,
            );
        }
        return;
    }
    for ky in ky_lo..ky_hi {
        let iy = (y0 + (ky * dh) as isize) as usize;
        for kx in kx_lo..kx_hi {
            let ix = (x0 + (kx * dw) as isize) as usize;
            let src = (iy * geom.input.w + ix) * cin + g * cpg;
            span(src, &mut col[(ky * kw + kx) * cpg..], cpg);
        }
    }
}

/// Where the windows lie wholly inside the input, with no horizontal
/// dilation: there a window is `kh` spans of `kw * cin` values, gathered
/// without the border arithmetic of [`im2col`].
pub(crate) struct Interior {
    stride: [usize; 2],
    pad: [usize; 2],
    /// Output rows and columns (first, last + 1) whose windows are inside.
    rows: (usize, usize),
    cols: (usize, usize),
    /// Bytes from one kernel row to the next in the input, and of a span.
    row_step: usize,
    span: usize,
    kh: usize,
    in_w: usize,
    cin: usize,
}

impl Interior {
    pub(crate) fn of(g: &ConvGeom) -> Self {
        let [kh, kw] = g.kernel;
        let [dh, dw] = g.dilation;
        // Output index range `lo..hi` whose windows `i * s - p ..= i * s - p + extent - 1`
        // lie inside `0..size`.
        let inside = |size: usize, out: usize, s: usize, p: usize, extent: usize| {
            let lo = p.div_ceil(s);
            let hi = if size + p >= extent {
                ((size + p - extent) / s + 1).min(out)
            } else {
                0
            };
            (lo.min(hi), hi)
        };
        let rows = inside(
            g.input.h,
            g.output.h,
            g.stride[0],
            g.pad[0],
            (kh - 1) * dh + 1,
        );
        let cols = if dw == 1 {
            inside(g.input.w, g.output.w, g.stride[1], g.pad[1], kw)
        } else {
            (0, 0)
        };
        Interior {
            stride: g.stride,
            pad: g.pad,
            rows,
            cols,
            row_step: dh * g.input.w * g.input.c,
            span: kw * g.input.c,
            kh,
            in_w: g.input.w,
            cin: g.input.c,
        }
    }

    /// The input offset of pixel `(oy, ox)`'s window, if it is inside.
    #[inline(always)]
    pub(crate) fn start(&self, oy: usize, ox: usize) -> Option<usize> {
        let inside =
            (self.rows.0..self.rows.1).contains(&oy) && (self.cols.0..self.cols.1).contains(&ox);
        inside.then(|| {
            let (iy, ix) = (
                oy * self.stride[0] - self.pad[0],
                ox * self.stride[1] - self.pad[1],
            );
            (iy * self.in_w + ix) * self.cin
        })
    }

    /// The end of the window starting at `start` in the input, and its length
    /// in the column: every span of [`spans`](Self::spans) lies below both.
    #[cfg_attr(not(picocnn_dsp), allow(dead_code))]
    #[inline(always)]
    pub(crate) fn extent(&self, start: usize) -> (usize, usize) {
        (
            start + (self.kh - 1) * self.row_step + self.span,
            self.kh * self.span,
        )
    }

    /// Hands each of the window's `kh` spans to `span(input offset, column
    /// offset, length)`; `start` is from [`start`](Self::start).
    #[inline(always)]
    pub(crate) fn spans(&self, start: usize, mut span: impl FnMut(usize, usize, usize)) {
        for ky in 0..self.kh {
            span(start + ky * self.row_step, ky * self.span, self.span);
        }
    }
}

/// [`im2col`], by spans without border arithmetic where the window lies
/// inside the input.
#[inline(always)]
pub(crate) fn gather<T: Lane, const P: bool>(
    a: &ConvArgs<'_, P>,
    interior: &Interior,
    input: &[i8],
    oy: usize,
    ox: usize,
    g: usize,
    col: &mut [T],
) {
    match interior.start(oy, ox) {
        Some(start) if a.geom.groups == 1 => interior.spans(start, |s, d, n| {
            T::widen(&input[s..s + n], &mut col[d..d + n], a.input_offset)
        }),
        _ => im2col(a, input, oy, ox, g, col),
    }
}

/// The dot products of the portable loop nests: [`Scalar`] here, SIMD
/// where a target module has them (a token proving the CPU has the
/// instructions). Integer sums: every implementation gives the same bits.
pub(crate) trait Dots: Copy {
    /// `col . w`, wrapping as int32 accumulators do.
    fn dot(self, col: &[i16], w: &[i8]) -> i32;
    /// `[col . wa, col . wb]` added to `acc`.
    fn dot2(self, col: &[i16], wa: &[i8], wb: &[i8], acc: [i32; 2]) -> [i32; 2];
}

/// The reference dot products.
#[derive(Clone, Copy)]
pub(crate) struct Scalar;

impl Dots for Scalar {
    #[inline(always)]
    fn dot(self, col: &[i16], w: &[i8]) -> i32 {
        dot_i16_i8(col, w)
    }
    #[inline(always)]
    fn dot2(self, col: &[i16], wa: &[i8], wb: &[i8], acc: [i32; 2]) -> [i32; 2] {
        dot2_i16_i8(col, wa, wb, acc)
    }
}

/// Calls `f(p, q)` for pixels `0, 1`, `2, 3`, ...; a lone last pixel is
/// paired with itself.
#[cfg_attr(not(any(picocnn_dsp, target_arch = "x86_64")), allow(dead_code))]
#[inline(always)]
pub(crate) fn for_pixel_pairs(pixels: usize, mut f: impl FnMut(usize, usize)) {
    let mut p = 0;
    while p < pixels {
        f(p, if p + 1 < pixels { p + 1 } else { p });
        p += 2;
    }
}

/// Portable general convolution: im2col one pixel and group, then one dot
/// product per output channel of the group. Not inlined: its code is the
/// portable loops' (which `cargo xtask cross` looks for in a build).
#[cfg_attr(any(picocnn_dsp, picocnn_thumb1), allow(dead_code))]
#[inline(never)]
pub(crate) fn conv_general_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    conv_general_with(a, input, output, col, Scalar)
}

/// [`conv_general_i8`] with the dot products of `d`.
#[cfg_attr(any(picocnn_dsp, picocnn_thumb1), allow(dead_code))]
#[inline(always)]
pub(crate) fn conv_general_with<const P: bool, D: Dots>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
    d: D,
) {
    let geom = &a.geom;
    let depth = geom.filter_depth();
    let opg = geom.output.c / geom.groups;
    let col = &mut col[..depth];
    let interior = Interior::of(geom);
    let mut out_idx = 0;
    for oy in 0..geom.output.h {
        for ox in 0..geom.output.w {
            let out = &mut output[out_idx..out_idx + geom.output.c];
            for g in 0..geom.groups {
                gather(a, &interior, input, oy, ox, g, col);
                channels(a, depth, g * opg, (g + 1) * opg, col, out, d);
            }
            out_idx += geom.output.c;
        }
    }
}

/// Portable 1x1 convolution: widen one pixel's channels, then a dot product
/// per output channel.
#[cfg_attr(any(picocnn_dsp, picocnn_thumb1), allow(dead_code))]
pub(crate) fn conv_pointwise_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    conv_pointwise_with(a, input, output, col, Scalar)
}

/// [`conv_pointwise_i8`] with the dot products of `d`.
#[cfg_attr(any(picocnn_dsp, picocnn_thumb1), allow(dead_code))]
#[inline(always)]
pub(crate) fn conv_pointwise_with<const P: bool, D: Dots>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
    d: D,
) {
    let geom = &a.geom;
    let cin = geom.input.c;
    let col = &mut col[..cin];
    let off = a.input_offset as i16;
    let mut out_idx = 0;
    for oy in 0..geom.output.h {
        for ox in 0..geom.output.w {
            let src = (oy * geom.stride[0] * geom.input.w + ox * geom.stride[1]) * cin;
            for (d, &s) in col.iter_mut().zip(&input[src..src + cin]) {
                *d = s as i16 + off;
            }
            let out = &mut output[out_idx..out_idx + geom.output.c];
            channels(a, cin, 0, geom.output.c, col, out, d);
            out_idx += geom.output.c;
        }
    }
}

/// Dot product of int16 activations and int8 weights, wrapping on overflow
/// as the int32 accumulators of the reference kernels do.
#[inline(always)]
pub(crate) fn dot_i16_i8(col: &[i16], w: &[i8]) -> i32 {
    col.iter()
        .zip(w)
        .fold(0i32, |acc, (&c, &w)| acc.wrapping_add(c as i32 * w as i32))
}

/// Two dot products sharing the activations: `[col.wa, col.wb]` added to `acc`.
#[inline(always)]
pub(crate) fn dot2_i16_i8(col: &[i16], wa: &[i8], wb: &[i8], acc: [i32; 2]) -> [i32; 2] {
    let n = col.len().min(wa.len()).min(wb.len());
    let (col, wa, wb) = (&col[..n], &wa[..n], &wb[..n]);
    let [mut x, mut y] = acc;
    for i in 0..n {
        let c = col[i] as i32;
        x = x.wrapping_add(c * wa[i] as i32);
        y = y.wrapping_add(c * wb[i] as i32);
    }
    [x, y]
}

/// Output channels `lo..hi` of one pixel from its column, two at a time.
#[cfg_attr(any(picocnn_dsp, picocnn_thumb1), allow(dead_code))]
#[inline(always)]
pub(crate) fn channels<const P: bool, D: Dots>(
    a: &ConvArgs<'_, P>,
    depth: usize,
    lo: usize,
    hi: usize,
    col: &[i16],
    out: &mut [i8],
    d: D,
) {
    let w = |o: usize| &a.filter[o * depth..(o + 1) * depth];
    let mut o = lo;
    while o + 1 < hi {
        let [x, y] = d.dot2(col, w(o), w(o + 1), [a.bias[o], a.bias[o + 1]]);
        out[o] = a.requantize(x, o);
        out[o + 1] = a.requantize(y, o + 1);
        o += 2;
    }
    if o < hi {
        out[o] = a.requantize(a.bias[o].wrapping_add(d.dot(col, w(o))), o);
    }
}

#[cfg_attr(any(picocnn_dsp, picocnn_thumb1), allow(dead_code))]
pub(crate) fn dense_i8(
    input: &[i8],
    weights: &[i8],
    col: &mut [i16],
    offset: i32,
    emit: impl FnMut(usize, i32),
    bias: &[i32],
) {
    dense_with(input, weights, col, offset, emit, bias, Scalar)
}

/// [`dense_i8`] with the dot products of `d`.
#[cfg_attr(any(picocnn_dsp, picocnn_thumb1), allow(dead_code))]
#[inline(always)]
pub(crate) fn dense_with<D: Dots>(
    input: &[i8],
    weights: &[i8],
    col: &mut [i16],
    offset: i32,
    mut emit: impl FnMut(usize, i32),
    bias: &[i32],
    d: D,
) {
    let n = input.len();
    let col = &mut col[..n];
    for (d, &s) in col.iter_mut().zip(input) {
        *d = s as i16 + offset as i16;
    }
    let w = |o: usize| &weights[o * n..(o + 1) * n];
    let mut o = 0;
    while o + 1 < bias.len() {
        let [x, y] = d.dot2(col, w(o), w(o + 1), [bias[o], bias[o + 1]]);
        emit(o, x);
        emit(o + 1, y);
        o += 2;
    }
    if o < bias.len() {
        emit(o, bias[o].wrapping_add(d.dot(col, w(o))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_clip_to_input() {
        assert_eq!(taps(-2, 10, 5, 1), (2, 5));
        assert_eq!(taps(8, 10, 5, 1), (0, 2));
        assert_eq!(taps(-3, 10, 3, 2), (2, 3));
        assert_eq!(taps(-1, 10, 3, 2), (1, 3));
        assert_eq!(taps(11, 10, 3, 1), (0, 0));
        assert_eq!(taps(-7, 10, 5, 1), (5, 5));
    }

    #[test]
    fn taps_without_dilation_equal_the_general_form() {
        let general = |origin: isize, size: usize, kernel: usize| {
            let lo = if origin >= 0 { 0 } else { (-origin) as usize };
            let end = size as isize - origin;
            let hi = if end <= 0 {
                0
            } else {
                (end as usize).min(kernel)
            };
            (lo.min(hi), hi)
        };
        for origin in -12..14 {
            for size in 1..12 {
                for kernel in 1..8 {
                    assert_eq!(taps(origin, size, kernel, 1), general(origin, size, kernel));
                    // Dilation 2 covers the same cells as a kernel of twice the span.
                    let (lo, hi) = taps(origin, size, kernel, 2);
                    for k in 0..kernel {
                        let cell = origin + 2 * k as isize;
                        let inside = (0..size as isize).contains(&cell);
                        assert_eq!(
                            inside,
                            (lo..hi).contains(&k),
                            "{origin} {size} {kernel} {k}"
                        );
                    }
                }
            }
        }
    }
}
