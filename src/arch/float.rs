//! Float convolution and dense layers with output channels in the lanes,
//! the same bits as the portable loops. Each lane is one output channel's
//! sum, taken in the portable order (taps in order, products and sums
//! each rounded, never fused) from zero, then the bias: so the lanes only
//! run channels side by side, and any vector width gives the portable
//! bits. The loops are written over arrays of sixteen lanes and compiled
//! for the CPU's widest vectors (AVX-512, AVX2, NEON) by the callers in
//! this module; the filter is repacked once per thread (`[block][tap][16]`,
//! as `f32`) and kept while its bytes stay the same.

use core::cell::RefCell;
use std::vec::Vec;

use super::portable::{taps, ConvGeom};
use super::{clamp_f32, FloatLane as Real};

/// Output channels a block holds.
const LANES: usize = 16;
/// Pixels of a row a pass takes when their windows lie inside the input.
const PIXELS: usize = 4;

/// One layer's filter as `f32` blocks of sixteen channels, and the bytes
/// it was made from.
#[derive(Default)]
struct Packed {
    filter: Vec<u8>,
    depth: usize,
    oc: usize,
    hwo: bool,
    /// `[block][tap][16]`, zero past the channels.
    w: Vec<[f32; LANES]>,
    /// Every weight is finite.
    finite: bool,
}

#[derive(Default)]
struct Work {
    layers: Vec<Packed>,
    next: usize,
    /// An `f16` input as `f32`.
    input: Vec<f32>,
    /// The zero-padded input of a general convolution.
    frame: Vec<f32>,
}

std::thread_local! {
    static WORK: RefCell<Work> = RefCell::new(Work::default());
}

/// The bytes of a float slice (`f32` or `f16`: no padding, every bit
/// pattern a value), compared bit for bit: `-0.0` and NaNs too.
fn bytes_of<T: Real>(v: &[T]) -> &[u8] {
    // SAFETY: `T` is `f32` or `f16` (the trait is sealed): plain bits.
    unsafe { core::slice::from_raw_parts(v.as_ptr() as *const u8, core::mem::size_of_val(v)) }
}

/// The index in `work.layers` of the packing of `filter` (`oc` rows of
/// `depth`, or with `hwo` the depthwise layout `[tap][oc]`).
fn packing<T: Real>(filter: &[T], depth: usize, oc: usize, hwo: bool, work: &mut Work) -> usize {
    let key = bytes_of(filter);
    if let Some(i) = work
        .layers
        .iter()
        .position(|l| l.depth == depth && l.oc == oc && l.hwo == hwo && l.filter[..] == *key)
    {
        return i;
    }
    let i = super::packed::slot(&mut work.layers, &mut work.next, key.len(), |l| {
        l.filter.len()
    });
    let l = &mut work.layers[i];
    l.filter.clear();
    l.filter.extend_from_slice(key);
    (l.depth, l.oc, l.hwo) = (depth, oc, hwo);
    let blocks = oc.div_ceil(LANES);
    l.w.clear();
    l.w.resize(blocks * depth, [0.0; LANES]);
    l.finite = true;
    for o in 0..oc {
        for k in 0..depth {
            let v = if hwo {
                filter[k * oc + o]
            } else {
                filter[o * depth + k]
            };
            let v = v.widen();
            l.finite &= v.is_finite();
            l.w[(o / LANES) * depth + k][o % LANES] = v;
        }
    }
    i
}

/// `acc[l] + x w[l]` lane by lane, rounded twice (no fused multiply-add,
/// which Rust never forms on its own).
#[inline(always)]
fn mac(acc: &mut [f32; LANES], x: f32, w: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] += x * w[l];
    }
}

/// A float convolution of one group (or depthwise with one filter per
/// channel, `hwo`): bias added after the sum, then the clamp to
/// `[lo, hi]`, as [`Conv2dFloat`](crate::ops::conv::Conv2dFloat) does.
pub(crate) struct FloatConv<'a, T> {
    pub geom: ConvGeom,
    pub hwo: bool,
    pub filter: &'a [T],
    pub bias: &'a [T],
    pub range: [f32; 2],
}

/// Whether [`conv`] takes the layer.
pub(crate) fn takes<T>(c: &FloatConv<'_, T>) -> bool {
    let g = &c.geom;
    let depth = g.filter_depth();
    depth > 0
        && g.output.c > 0
        && if c.hwo {
            g.groups == g.input.c && g.output.c == g.input.c
        } else {
            g.groups == 1
        }
}

/// Runs a convolution that [`takes`] the layer, with `f32` work on
/// the width the build compiled the caller for.
#[inline(always)]
pub(crate) fn conv<T: Real>(c: &FloatConv<'_, T>, input: &[T], output: &mut [T]) {
    // The buffers are taken out of the thread's cell and put back, so that
    // the loops run in this function (compiled for the caller's vectors),
    // not in a closure of the cell's (which would not be).
    let mut work = WORK.with(|w| core::mem::take(&mut *w.borrow_mut()));
    {
        let work = &mut work;
        let g = &c.geom;
        let depth = g.filter_depth();
        let (taps_n, oc) = (g.kernel[0] * g.kernel[1], g.output.c);
        // Depthwise: each channel's taps are its sum's terms.
        let rows = if c.hwo { taps_n } else { depth };
        let layer = packing(c.filter, rows, oc, c.hwo, work);
        let input: &[f32] = as_f32(input, &mut work.input);
        let layer = &work.layers[layer];
        if c.hwo {
            depthwise(c, input, &layer.w, output);
        } else {
            general(c, input, layer, &mut work.frame, output);
        }
    }
    WORK.with(|w| *w.borrow_mut() = work);
}

/// `input` as `f32`: itself, or converted into `buf`.
#[inline(always)]
fn as_f32<'a, T: Real>(input: &'a [T], buf: &'a mut Vec<f32>) -> &'a [f32] {
    if core::mem::size_of::<T>() == 4 {
        // SAFETY: a four-byte `Real` is `f32`.
        return unsafe { core::slice::from_raw_parts(input.as_ptr() as *const f32, input.len()) };
    }
    buf.clear();
    buf.extend(input.iter().map(|v| v.widen()));
    buf
}

/// Stores `lanes` channels of a pixel: bias, clamp, rounding to `T`.
#[inline(always)]
fn store<T: Real>(bias: &[T], [lo, hi]: [f32; 2], acc: &[f32; LANES], o0: usize, out: &mut [T]) {
    for (l, (o, b)) in out.iter_mut().zip(&bias[o0..]).enumerate().take(LANES) {
        *o = T::narrow(clamp_f32(acc[l] + b.widen(), lo, hi));
    }
}

/// The general convolution. With finite weights a padding cell adds
/// `0 w`, a signed zero, which leaves every sum's bits as they are (a sum
/// that starts at `+0` never becomes `-0`): so the input is copied once
/// into a zero-padded frame and every pixel takes the same loop,
/// `PIXELS` of a row at a time. A filter with an infinity or NaN keeps
/// the portable loops' skipping of padding, pixel by pixel.
#[inline(always)]
fn general<T: Real>(
    c: &FloatConv<'_, T>,
    input: &[f32],
    layer: &Packed,
    frame: &mut Vec<f32>,
    output: &mut [T],
) {
    let g = &c.geom;
    let [kh, kw] = g.kernel;
    let [dh, dw] = g.dilation;
    let [sh, sw] = g.stride;
    let (cin, oc, depth) = (g.input.c, g.output.c, g.filter_depth());
    let (oh, ow) = (g.output.h, g.output.w);
    if oh == 0 || ow == 0 {
        return;
    }
    let w = &layer.w[..];
    let blocks = oc.div_ceil(LANES);
    if !layer.finite {
        return skipping_padding(c, input, w, output);
    }
    // The frame: every window of the output inside it.
    let fh = (oh - 1) * sh + (kh - 1) * dh + 1;
    let fw = (ow - 1) * sw + (kw - 1) * dw + 1;
    frame.clear();
    frame.resize(fh * fw * cin, 0.0);
    let [pt, pl] = g.pad;
    for y in 0..g.input.h.min(fh.saturating_sub(pt)) {
        let n = g.input.w.min(fw.saturating_sub(pl)) * cin;
        let src = &input[y * g.input.w * cin..][..n];
        frame[((y + pt) * fw + pl) * cin..][..n].copy_from_slice(src);
    }
    let frame = &frame[..];
    let (row, tap, step) = (dh * fw * cin, dw * cin, sw * cin);
    for oy in 0..oh {
        let mut ox = 0;
        while ox < ow {
            // A short last pass repeats its last pixel (same values twice).
            let px = |p: usize| (ox + p).min(ow - 1);
            let origin = (oy * sh * fw) * cin;
            let start: [usize; PIXELS] = core::array::from_fn(|p| origin + px(p) * step);
            // Every read below is at most this far from a start.
            let reach = (kh - 1) * row + (kw - 1) * tap + cin;
            assert!(start.iter().all(|&s| s + reach <= frame.len()));
            for b in 0..blocks {
                let wb = &w[b * depth..(b + 1) * depth];
                let mut acc = [[0.0f32; LANES]; PIXELS];
                let mut k = 0;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let at = ky * row + kx * tap;
                        let wk = &wb[k..k + cin];
                        for (ci, wk) in wk.iter().enumerate() {
                            for (p, acc) in acc.iter_mut().enumerate() {
                                // SAFETY: `at + ci < reach`, checked above.
                                let x = unsafe { *frame.get_unchecked(start[p] + at + ci) };
                                mac(acc, x, wk);
                            }
                        }
                        k += cin;
                    }
                }
                for (p, acc) in acc.iter().enumerate() {
                    let at = (oy * ow + px(p)) * oc + b * LANES;
                    let n = (oc - b * LANES).min(LANES);
                    store(c.bias, c.range, acc, b * LANES, &mut output[at..at + n]);
                }
            }
            ox += PIXELS;
        }
    }
}

/// [`general`] for filters that are not all finite: each pixel's taps
/// inside the input only, as the portable loops take them.
#[inline(always)]
fn skipping_padding<T: Real>(
    c: &FloatConv<'_, T>,
    input: &[f32],
    w: &[[f32; LANES]],
    output: &mut [T],
) {
    let g = &c.geom;
    let [kh, kw] = g.kernel;
    let [dh, dw] = g.dilation;
    let (cin, oc, depth) = (g.input.c, g.output.c, g.filter_depth());
    let blocks = oc.div_ceil(LANES);
    let in_w = g.input.w;
    for oy in 0..g.output.h {
        let y0 = (oy * g.stride[0]) as isize - g.pad[0] as isize;
        let (ky_lo, ky_hi) = taps(y0, g.input.h, kh, dh);
        for ox in 0..g.output.w {
            let x0 = (ox * g.stride[1]) as isize - g.pad[1] as isize;
            let (kx_lo, kx_hi) = taps(x0, in_w, kw, dw);
            for b in 0..blocks {
                let wb = &w[b * depth..(b + 1) * depth];
                let mut acc = [0.0f32; LANES];
                for ky in ky_lo..ky_hi {
                    let iy = (y0 + (ky * dh) as isize) as usize;
                    for kx in kx_lo..kx_hi {
                        let ix = (x0 + (kx * dw) as isize) as usize;
                        let k0 = (ky * kw + kx) * cin;
                        let src = (iy * in_w + ix) * cin;
                        for ci in 0..cin {
                            mac(&mut acc, input[src + ci], &wb[k0 + ci]);
                        }
                    }
                }
                let at = (oy * g.output.w + ox) * oc + b * LANES;
                let n = (oc - b * LANES).min(LANES);
                store(c.bias, c.range, &acc, b * LANES, &mut output[at..at + n]);
            }
        }
    }
}

#[inline(always)]
fn depthwise<T: Real>(c: &FloatConv<'_, T>, input: &[f32], w: &[[f32; LANES]], output: &mut [T]) {
    let g = &c.geom;
    let [kh, kw] = g.kernel;
    let [dh, dw] = g.dilation;
    let ch = g.input.c;
    let taps_n = kh * kw;
    let blocks = ch.div_ceil(LANES);
    let in_w = g.input.w;
    for oy in 0..g.output.h {
        let y0 = (oy * g.stride[0]) as isize - g.pad[0] as isize;
        let (ky_lo, ky_hi) = taps(y0, g.input.h, kh, dh);
        for ox in 0..g.output.w {
            let x0 = (ox * g.stride[1]) as isize - g.pad[1] as isize;
            let (kx_lo, kx_hi) = taps(x0, in_w, kw, dw);
            for b in 0..blocks {
                let (c0, n) = (b * LANES, (ch - b * LANES).min(LANES));
                let wb = &w[b * taps_n..(b + 1) * taps_n];
                let mut acc = [0.0f32; LANES];
                for ky in ky_lo..ky_hi {
                    let iy = (y0 + (ky * dh) as isize) as usize;
                    for kx in kx_lo..kx_hi {
                        let ix = (x0 + (kx * dw) as isize) as usize;
                        let src = &input[(iy * in_w + ix) * ch + c0..][..n];
                        let mut x = [0.0f32; LANES];
                        x[..n].copy_from_slice(src);
                        let wk = &wb[ky * kw + kx];
                        for l in 0..LANES {
                            acc[l] += x[l] * wk[l];
                        }
                    }
                }
                let at = (oy * g.output.w + ox) * ch + c0;
                store(c.bias, c.range, &acc, c0, &mut output[at..at + n]);
            }
        }
    }
}

/// Dense float layer, `out[o] = T(clamp(sum_i x[i] w[o][i] + bias[o]))`
/// with the sum in the portable order: four blocks of sixteen channels a
/// pass, so that four sums' chains run side by side.
#[inline(always)]
pub(crate) fn dense<T: Real>(
    input: &[T],
    weights: &[T],
    bias: &[T],
    range: [f32; 2],
    output: &mut [T],
) {
    let (n, oc) = (input.len(), bias.len());
    if n == 0 || oc == 0 {
        for (o, b) in output.iter_mut().zip(bias) {
            *o = T::narrow(clamp_f32(0.0 + b.widen(), range[0], range[1]));
        }
        return;
    }
    let mut work = WORK.with(|w| core::mem::take(&mut *w.borrow_mut()));
    {
        let work = &mut work;
        let layer = packing(&weights[..oc * n], n, oc, false, work);
        let x: &[f32] = as_f32(input, &mut work.input);
        let w = &work.layers[layer].w[..];
        let blocks = oc.div_ceil(LANES);
        let mut b = 0;
        while b < blocks {
            let group = (blocks - b).min(4);
            let mut acc = [[0.0f32; LANES]; 4];
            for (i, &xi) in x.iter().enumerate() {
                for (j, acc) in acc.iter_mut().enumerate().take(group) {
                    mac(acc, xi, &w[(b + j) * n + i]);
                }
            }
            for (j, acc) in acc.iter().enumerate().take(group) {
                let o0 = (b + j) * LANES;
                let m = (oc - o0).min(LANES);
                store(bias, range, acc, o0, &mut output[o0..o0 + m]);
            }
            b += group;
        }
    }
    WORK.with(|w| *w.borrow_mut() = work);
}
