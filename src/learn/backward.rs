//! The integer backward pass of the ops a fine-tuned chain holds: masks of
//! fused activations, max and average pooling, and the input gradient of
//! convolution and dense layers.
//!
//! Gradients are block floating point: int16 values with one power-of-two
//! exponent per tensor (`real = g · base · 2^e`, `base` fixed per tensor by
//! the quantization scales). After every op they are renormalised so the
//! largest magnitude is about `2^14`: fourteen significant bits at any
//! depth, no int32 overflow, and the same bits on every target.
//!
//! The loops are not inlined into the pass that calls them: each runs once
//! per op and step, and the firmware keeps one copy of each.

use crate::arch::{taps, ConvGeom};
use crate::ops::conv::{Conv2d, ConvKind};
use crate::ops::pool::Pool2d;
use crate::quant::Clamp;

/// Magnitude bits of a normalised gradient.
const NORM_BITS: i32 = 14;

fn get32(b: &[u8], at: usize) -> i32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    i32::from_ne_bytes(w)
}

/// Renormalises the `n` int32 values at byte `at` of `area` into int16 at
/// its start (which may overlap them: each value is read before its bytes
/// are written); returns the exponent added.
#[inline(never)]
pub(crate) fn normalize(area: &mut [u8], at: usize, n: usize) -> i32 {
    let mut max = 0u32;
    for i in 0..n {
        max = max.max(get32(area, at + 4 * i).unsigned_abs());
    }
    if max == 0 {
        area[..2 * n].fill(0);
        return 0;
    }
    let k = (32 - max.leading_zeros()) as i32 - NORM_BITS;
    for i in 0..n {
        let v = get32(area, at + 4 * i) as i64;
        let r = if k > 0 {
            (v + (1 << (k - 1))) >> k
        } else {
            v << -k
        };
        area[2 * i..2 * i + 2].copy_from_slice(&(r as i16).to_ne_bytes());
    }
    k
}

/// Zeroes the gradient where the op's int8 output `y` sat at its clamp:
/// there the activation (or saturation) had no slope.
pub(crate) fn mask(g: &mut [i16], y: &[i8], clamp: Clamp) {
    for (g, &y) in g.iter_mut().zip(y) {
        if y <= clamp.min || y >= clamp.max {
            *g = 0;
        }
    }
}

/// Whether output value `y` passed its activation.
#[inline]
fn passes(y: i8, clamp: Clamp) -> bool {
    y > clamp.min && y < clamp.max
}

/// The channel of largest weight scale: its requantization `(shift,
/// multiplier)` (multipliers are 0 or normalised to `2^30..2^31`, so the
/// pair orders the scales).
fn top(multiplier: &[i32], shift: &[i32]) -> (i32, i32) {
    multiplier
        .iter()
        .zip(shift)
        .filter(|(&m, _)| m > 0)
        .map(|(&m, &s)| (s, m))
        .max()
        .unwrap_or((0, 0))
}

/// `s_w[o] / max s_w` in Q31 (at most `2^31`).
fn ratio(m: i32, s: i32, top: (i32, i32)) -> i64 {
    let d = top.0 - s;
    if m <= 0 || top.1 <= 0 || !(0..63).contains(&d) {
        return 0;
    }
    ((((m as u64) << 31) / top.1 as u64) >> d) as i64
}

/// Bits to drop from each scaled gradient so that a sum of `terms`
/// products with int8 weights stays in int32.
fn pre_shift(terms: usize) -> i32 {
    (usize::BITS - terms.leading_zeros()).saturating_sub(10) as i32
}

/// `g · r / 2^(31 + pre)`, rounded.
#[inline]
fn scaled(g: i16, r: i64, pre: i32) -> i32 {
    let s = 31 + pre;
    ((g as i64 * r + (1 << (s - 1))) >> s) as i32
}

/// Where an input gradient goes.
pub(crate) trait Sink {
    /// Adds `v` to element `at` (channel `c`) of the input gradient.
    fn add(&mut self, at: usize, c: usize, v: i32);
}

/// The whole input gradient, in int32.
pub(crate) struct Full<'a>(pub &'a mut [i32]);

impl Sink for Full<'_> {
    #[inline(always)]
    fn add(&mut self, at: usize, _c: usize, v: i32) {
        self.0[at] = self.0[at].wrapping_add(v);
    }
}

/// Only its sum per channel where `mask` passed its activation: all a
/// bias-only layer below needs, without the tensor.
pub(crate) struct ChannelSums<'a> {
    pub mask: Option<(&'a [i8], Clamp)>,
    pub sums: &'a mut [i64],
}

impl Sink for ChannelSums<'_> {
    #[inline(always)]
    fn add(&mut self, at: usize, c: usize, v: i32) {
        if self.mask.is_none_or(|(y, clamp)| passes(y[at], clamp)) {
            self.sums[c] += v as i64;
        }
    }
}

/// The gradient at a dense layer's input from the one at its output `g`:
/// `Σ_o g[o] s_w[o] w[o][i]` in units of `max s_w`; returns the exponent
/// added.
#[inline(never)]
pub(crate) fn dense_input(
    w: &[i8],
    multiplier: &[i32],
    shift: &[i32],
    g: &[i16],
    inputs: usize,
    sink: &mut impl Sink,
) -> i32 {
    let pre = pre_shift(g.len());
    let t = top(multiplier, shift);
    for (o, &gv) in g.iter().enumerate() {
        if gv == 0 {
            continue;
        }
        let g2 = scaled(gv, ratio(multiplier[o], shift[o], t), pre);
        if g2 == 0 {
            continue;
        }
        for (i, &wv) in w[o * inputs..(o + 1) * inputs].iter().enumerate() {
            sink.add(i, i, g2 * wv as i32);
        }
    }
    pre
}

/// The gradient at a convolution's input from the one at its output `g`,
/// scattered through the filter; returns the exponent added.
#[inline(never)]
pub(crate) fn conv_input(
    conv: &Conv2d,
    w: &[i8],
    multiplier: &[i32],
    shift: &[i32],
    g: &[i16],
    sink: &mut impl Sink,
) -> i32 {
    let geom = conv.arch_geom();
    let (inp, out) = (geom.input, geom.output);
    let ([kh, kw], [sh, sw], [dh, dw], [ph, pw]) =
        (geom.kernel, geom.stride, geom.dilation, geom.pad);
    let (cpg, opg) = (inp.c / geom.groups, out.c / geom.groups);
    let depthwise = conv.kind() == ConvKind::Depthwise;
    let pre = pre_shift(opg * kh * kw);
    let t = top(multiplier, shift);
    for o in 0..out.c {
        let r = ratio(multiplier[o], shift[o], t);
        let group = o / opg;
        for oy in 0..out.h {
            let y0 = (oy * sh) as isize - ph as isize;
            let (ky_lo, ky_hi) = taps(y0, inp.h, kh, dh);
            for ox in 0..out.w {
                let gv = g[(oy * out.w + ox) * out.c + o];
                if gv == 0 {
                    continue;
                }
                let g2 = scaled(gv, r, pre);
                if g2 == 0 {
                    continue;
                }
                let x0 = (ox * sw) as isize - pw as isize;
                let (kx_lo, kx_hi) = taps(x0, inp.w, kw, dw);
                for ky in ky_lo..ky_hi {
                    let iy = (y0 + (ky * dh) as isize) as usize;
                    for kx in kx_lo..kx_hi {
                        let ix = (x0 + (kx * dw) as isize) as usize;
                        let at = (iy * inp.w + ix) * inp.c;
                        if depthwise {
                            let c = group * cpg;
                            let k = filter_index(&geom, true, o, ky, kx, 0);
                            sink.add(at + c, c, g2 * w[k] as i32);
                        } else {
                            let row = &w[filter_index(&geom, false, o, ky, kx, 0)..][..cpg];
                            for (ci, &wv) in row.iter().enumerate() {
                                let c = group * cpg + ci;
                                sink.add(at + c, c, g2 * wv as i32);
                            }
                        }
                    }
                }
            }
        }
    }
    pre
}

/// Where weight `(o, ky, kx, ci)` lies: `[o][ky][kx][ci]`, or `[ky][kx][o]`
/// for a depthwise filter.
#[inline(always)]
fn filter_index(g: &ConvGeom, depthwise: bool, o: usize, ky: usize, kx: usize, ci: usize) -> usize {
    let [kh, kw] = g.kernel;
    if depthwise {
        (ky * kw + kx) * g.output.c + o
    } else {
        ((o * kh + ky) * kw + kx) * (g.input.c / g.groups) + ci
    }
}

/// For every weight `(o, k)` of a convolution, `Σ_p g[p][o] (x[p, k] - z)`
/// over the output positions `p` (padding contributes nothing), handed to
/// `each(o, k, v)` in filter order.
#[inline(never)]
pub(crate) fn conv_weight_sums(
    conv: &Conv2d,
    x: &[i8],
    zero_point: i32,
    g: &[i16],
    mut each: impl FnMut(usize, usize, i64),
) {
    let geom = conv.arch_geom();
    let (inp, out) = (geom.input, geom.output);
    let ([kh, kw], [sh, sw], [dh, dw], [ph, pw]) =
        (geom.kernel, geom.stride, geom.dilation, geom.pad);
    let (cpg, opg) = (inp.c / geom.groups, out.c / geom.groups);
    let depthwise = conv.kind() == ConvKind::Depthwise;
    for o in 0..out.c {
        let group = o / opg;
        for ky in 0..kh {
            for kx in 0..kw {
                for ci in 0..cpg {
                    let c = group * cpg + ci;
                    let mut v = 0i64;
                    for oy in 0..out.h {
                        let iy = (oy * sh + ky * dh) as isize - ph as isize;
                        if iy < 0 || iy as usize >= inp.h {
                            continue;
                        }
                        for ox in 0..out.w {
                            let ix = (ox * sw + kx * dw) as isize - pw as isize;
                            if ix < 0 || ix as usize >= inp.w {
                                continue;
                            }
                            let gv = g[(oy * out.w + ox) * out.c + o] as i64;
                            let xv = x[(iy as usize * inp.w + ix as usize) * inp.c + c] as i64;
                            v += gv * (xv - zero_point as i64);
                        }
                    }
                    each(o, filter_index(&geom, depthwise, o, ky, kx, ci), v);
                }
            }
        }
    }
}

/// Whether a max pool's windows never overlap, so each input cell takes
/// the gradient of at most one output.
pub(crate) fn disjoint(pool: &Pool2d) -> bool {
    let ([wh, ww], [sh, sw]) = (pool.window(), pool.stride());
    sh >= wh && sw >= ww
}

/// Calls `each(cells, count, output)` for every output of a pool with the
/// input cells of its window (padding excluded) and their number.
fn windows(pool: &Pool2d, mut each: impl FnMut(&mut dyn Iterator<Item = usize>, usize, usize)) {
    let (inp, out) = (pool.input_shape(), pool.output_shape());
    let ([wh, ww], [sh, sw], [ph, pw]) = (pool.window(), pool.stride(), pool.padding());
    for oy in 0..out.h {
        let y0 = (oy * sh) as isize - ph as isize;
        let (ky_lo, ky_hi) = taps(y0, inp.h, wh, 1);
        for ox in 0..out.w {
            let x0 = (ox * sw) as isize - pw as isize;
            let (kx_lo, kx_hi) = taps(x0, inp.w, ww, 1);
            let count = (ky_hi - ky_lo) * (kx_hi - kx_lo);
            for c in 0..out.c {
                let mut cells = (ky_lo..ky_hi).flat_map(|ky| {
                    let iy = (y0 + ky as isize) as usize;
                    (kx_lo..kx_hi).map(move |kx| {
                        let ix = (x0 + kx as isize) as usize;
                        (iy * inp.w + ix) * inp.c + c
                    })
                });
                each(&mut cells, count, (oy * out.w + ox) * out.c + c);
            }
        }
    }
}

/// Max pooling: each output's gradient goes to the first cell of its
/// window that holds the maximum of the saved input `x`; `put(cell, g)`.
#[inline(never)]
pub(crate) fn max_pool(pool: &Pool2d, x: &[i8], g: &[i16], mut put: impl FnMut(usize, i16)) {
    windows(pool, |cells, _, o| {
        if g[o] == 0 {
            return;
        }
        let best = cells.fold(None, |b: Option<usize>, i| match b {
            Some(j) if x[j] >= x[i] => Some(j),
            _ => Some(i),
        });
        if let Some(i) = best {
            put(i, g[o]);
        }
    });
}

/// Average pooling: each output's gradient shared among the valid cells
/// of its window (as the forward pass divides by their number), in int32
/// scaled by `2^15`, less a bit per doubling of overlapping windows;
/// returns the exponent added.
#[inline(never)]
pub(crate) fn avg_pool(pool: &Pool2d, g: &[i16], acc: &mut [i32]) -> i32 {
    let ([wh, ww], [sh, sw]) = (pool.window(), pool.stride());
    let overlap = wh.div_ceil(sh) * ww.div_ceil(sw);
    let pre = (usize::BITS - overlap.leading_zeros()).saturating_sub(1) as i32;
    acc.fill(0);
    windows(pool, |cells, count, o| {
        if count == 0 || g[o] == 0 {
            return;
        }
        let share = ((((g[o] as i64) << 15) / count as i64) >> pre) as i32;
        for i in cells {
            acc[i] = acc[i].wrapping_add(share);
        }
    });
    pre - 15
}
