//! x86-64 int8 loops with AVX-512 VNNI: output channels in the lanes.
//!
//! A convolution is a matrix product of the pixels' columns and the
//! filters. Here sixteen output channels share a vector: `VPDPBUSD` adds
//! four products of one pixel's column (broadcast) and four filter values
//! of each of sixteen channels, so no horizontal sums are left at the end
//! and the requantization of sixteen outputs is a handful of vector
//! instructions. The filter is repacked for that order on each call (its
//! bytes once, a small part of the work: the products are its size times
//! the pixel count).
//!
//! `VPDPBUSD` multiplies unsigned bytes by signed ones, so the columns hold
//! `x + 128`: `(x + offset) w = (x + 128) w + (offset - 128) w`, and the
//! second term, summed over the filter, joins the bias. Padding holds
//! `128 - offset`, which makes `x + offset` zero. Integer sums throughout,
//! wrapping as int32 accumulators do: the bits are the portable loops'.

use core::arch::x86_64::*;

use crate::arch::packed::{packing, Params, Work, LANES, WORK};
use crate::arch::portable::{window, ConvArgs, Interior};

/// Proof that the CPU runs AVX-512 F, BW, VL and VNNI: only
/// [`Vnni::detect`] makes one.
#[derive(Clone, Copy)]
pub(crate) struct Vnni(());

impl Vnni {
    /// The token, when this CPU has the instructions and neither
    /// `PICOCNN_PORTABLE` nor `PICOCNN_NO_AVX512` is set (asked once).
    #[inline(always)]
    pub(crate) fn detect() -> Option<Vnni> {
        static HAS: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
        let has = crate::arch::remembered(&HAS, || {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512vnni")
                && crate::arch::unset(&["PICOCNN_PORTABLE", "PICOCNN_NO_AVX512"])
        });
        has.then_some(Vnni(()))
    }
}

/// Pixels a pass of the convolution loop takes: their sums stay in
/// registers while the filter's block streams by, enough independent
/// sums to hide `VPDPBUSD`'s latency.
const PIXELS: usize = 8;
/// Room past the last column for a whole-vector store.
const SLACK: usize = 64;

/// The mask of the first `n` (at most 64) byte lanes.
#[inline(always)]
fn lanes_mask64(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// `n` int8 values at `src` as `x + 128` at `dst`, which takes whole
/// 64-byte stores: `dst` has `n` rounded up to 64 bytes of room. Whole
/// stores, so that the column's later loads are forwarded from them.
#[inline(always)]
unsafe fn copy_flip(src: *const i8, dst: *mut u8, n: usize) {
    // SAFETY: the caller's AVX-512 BW, `n` readable bytes at `src` (the
    // loads are masked to them) and room at `dst`.
    unsafe {
        let flip = _mm512_set1_epi8(-128);
        let mut i = 0;
        while i < n {
            let v = _mm512_maskz_loadu_epi8(lanes_mask64(n - i), src.add(i));
            _mm512_storeu_si512(dst.add(i) as *mut _, _mm512_xor_si512(v, flip));
            i += 64;
        }
    }
}

/// `x ^ 0x80` over `col`, in place: int8 to `x + 128`.
#[inline(always)]
unsafe fn flip(col: &mut [u8]) {
    // SAFETY: the caller's AVX-512 BW; every load and store is masked to `col`.
    unsafe {
        let flip = _mm512_set1_epi8(-128);
        let mut i = 0;
        while i < col.len() {
            let m = lanes_mask64(col.len() - i);
            let p = col.as_mut_ptr().add(i) as *mut i8;
            let v = _mm512_maskz_loadu_epi8(m, p);
            _mm512_mask_storeu_epi8(p, m, _mm512_xor_si512(v, flip));
            i += 64;
        }
    }
}

/// [`Scale::apply`](crate::arch::Scale) of sixteen lanes, each with its
/// `[multiplier, left, right, mask, half]` from `Scale::parts`:
/// TensorFlow Lite's `MultiplyByQuantizedMultiplier`.
#[inline(always)]
unsafe fn scale16(x: __m512i, [m, left, right, mask, half]: [__m512i; 5]) -> __m512i {
    // SAFETY: the caller's AVX-512 F.
    unsafe {
        let x = _mm512_sllv_epi32(x, left);
        let round = _mm512_set1_epi64(1 << 30);
        // (x m + 2^30) >> 31 of the even lanes, then of the odd ones.
        let even = _mm512_srli_epi64::<31>(_mm512_add_epi64(_mm512_mul_epi32(x, m), round));
        let odd = _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), _mm512_srli_epi64::<32>(m));
        let odd = _mm512_slli_epi64::<1>(_mm512_add_epi64(odd, round));
        let high = _mm512_mask_blend_epi32(0xaaaa, even, odd);
        // gemmlowp's RoundingDivideByPOT: half away from zero.
        let threshold = _mm512_add_epi32(half, _mm512_srli_epi32::<31>(high));
        let up = _mm512_cmpgt_epi32_mask(_mm512_and_si512(high, mask), threshold);
        let q = _mm512_srav_epi32(high, right);
        _mm512_mask_sub_epi32(q, up, q, _mm512_set1_epi32(-1))
    }
}

/// The lanes of `Scale::parts`, all alike.
#[inline(always)]
unsafe fn splat_parts(s: [i32; 5]) -> [__m512i; 5] {
    // SAFETY: the caller's AVX-512 F.
    s.map(|v| unsafe { _mm512_set1_epi32(v) })
}

/// TensorFlow Lite's int8 `ADD` of `n` values at `x` and `y` into `out`
/// (which may be `x`): each input less its zero point, shifted left by
/// `left`, scaled; the sum scaled to the
/// output, its zero point added and clamped. `zp = [input1, input2,
/// output]`; `scales` are `Scale::parts` of the same three.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn add_i8(
    [x, y, out]: [*const i8; 3],
    n: usize,
    zp: [i32; 3],
    left: u32,
    scales: [[i32; 5]; 3],
    clamp: crate::arch::Clamp,
    _: Vnni,
) {
    // SAFETY: the caller's `n` readable values at `x` and `y` and writable
    // ones at `out`; every load and store is masked to them.
    unsafe {
        let [s1, s2, so] = scales.map(|s| splat_parts(s));
        let left = _mm512_set1_epi32(left as i32);
        let [z1, z2, zo] = zp.map(|z| _mm512_set1_epi32(z));
        let (lo, hi) = (
            _mm512_set1_epi32(clamp.min as i32),
            _mm512_set1_epi32(clamp.max as i32),
        );
        let mut i = 0;
        while i < n {
            let m = lanes_mask64(n - i) as u16;
            let load =
                |p: *const i8| _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p.add(i) as *const _));
            let a = _mm512_sllv_epi32(_mm512_sub_epi32(load(x), z1), left);
            let b = _mm512_sllv_epi32(_mm512_sub_epi32(load(y), z2), left);
            let sum = _mm512_add_epi32(scale16(a, s1), scale16(b, s2));
            let q = _mm512_add_epi32(scale16(sum, so), zo);
            let q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
            _mm512_mask_cvtepi32_storeu_epi8(out.add(i) as *mut i8, m, q);
            i += 16;
        }
    }
}

/// TensorFlow Lite's requantization of sixteen accumulators, clamped and
/// stored as int8 to the first `n` bytes at `out`.
#[inline(always)]
unsafe fn requantize_store<const P: bool>(
    a: &ConvArgs<'_, P>,
    p: &Params,
    acc: __m512i,
    out: *mut i8,
    n: usize,
) {
    // SAFETY: the caller's AVX-512 F and `n` writable bytes at `out`.
    unsafe {
        let ld = |v: &[i32; LANES]| _mm512_load_si512(v.as_ptr() as *const _);
        let parts = [&p.multiplier, &p.left, &p.right, &p.mask, &p.half].map(ld);
        let q = scale16(acc, parts);
        let q = _mm512_add_epi32(q, _mm512_set1_epi32(a.output_zero_point));
        let q = _mm512_max_epi32(q, _mm512_set1_epi32(a.clamp.min as i32));
        let q = _mm512_min_epi32(q, _mm512_set1_epi32(a.clamp.max as i32));
        _mm512_mask_cvtepi32_storeu_epi8(out, lanes_mask64(n) as u16, q);
    }
}

/// Whether [`conv_i8`] takes this layer: one group (grouped layers keep
/// the AVX2 loops).
pub(crate) fn takes<const P: bool>(a: &ConvArgs<'_, P>) -> bool {
    a.geom.groups == 1 && a.geom.filter_depth() > 0 && a.geom.output.c > 0
}

/// A convolution of one group ([`takes`]), general or 1x1: columns of
/// `PIXELS` pixels at a time, each against every block of sixteen
/// channels.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) fn conv_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    v: Vnni,
) {
    WORK.with(|work| {
        // SAFETY: `v` proves the target features.
        unsafe { conv_in(a, input, output, &mut work.borrow_mut(), v) }
    })
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn conv_in<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    work: &mut Work,
    _: Vnni,
) {
    let geom = &a.geom;
    let depth = geom.filter_depth();
    let quads = depth.div_ceil(4);
    let stride = quads * 4;
    let (oc, ow) = (geom.output.c, geom.output.w);
    let pixels = geom.output.h * ow;
    if pixels == 0 {
        return;
    }
    let pointwise = geom.kernel == [1, 1] && geom.pad == [0, 0];
    let interior = Interior::of(geom);
    let layer = packing(a, depth, -128, work);
    work.cols.clear();
    work.cols.resize(PIXELS * stride + SLACK, 0);
    let layer = &work.layers[layer];
    let (packed, params, cols) = (&layer.packed[..], &layer.params[..], &mut work.cols[..]);
    let pad = a.input_offset.wrapping_neg() as i8;
    // Spans of at most 64 bytes (most layers): one mask for them all.
    let span = geom.kernel[1] * geom.input.c;
    let short = (span <= 64).then(|| lanes_mask64(span));
    let sign = _mm512_set1_epi8(-128);
    let mut p0 = 0;
    while p0 < pixels {
        // A short last pass repeats its last pixel (same bytes twice).
        let at = |j: usize| (p0 + j).min(pixels - 1);
        for j in 0..PIXELS {
            let (oy, ox) = (at(j) / ow, at(j) % ow);
            let col = &mut cols[j * stride..];
            if pointwise {
                let src = (oy * geom.stride[0] * geom.input.w + ox * geom.stride[1]) * depth;
                let src = &input[src..src + depth];
                // SAFETY: `depth` bytes from `src`; `col` has the column's
                // length rounded up to 64 (the slack covers the last one).
                unsafe { copy_flip(src.as_ptr(), col.as_mut_ptr(), depth) };
            } else if let (Some(start), Some(m)) = (interior.start(oy, ox), short) {
                interior.spans(start, |s, d, n| {
                    let (src, dst) = (&input[s..s + n], &mut col[d..d + 64]);
                    // SAFETY: as above; one masked load of the span, one
                    // store inside the column (or its slack).
                    unsafe {
                        let v = _mm512_maskz_loadu_epi8(m, src.as_ptr());
                        _mm512_storeu_si512(dst.as_mut_ptr() as *mut _, _mm512_xor_si512(v, sign));
                    }
                });
            } else if let Some(start) = interior.start(oy, ox) {
                interior.spans(start, |s, d, n| {
                    let (src, dst) = (&input[s..s + n], &mut col[d..d + n.next_multiple_of(64)]);
                    // SAFETY: as above, spans lie inside the column.
                    unsafe { copy_flip(src.as_ptr(), dst.as_mut_ptr(), n) }
                });
            } else {
                let col: &mut [i8] = {
                    let c = &mut col[..depth];
                    // SAFETY: `u8` and `i8` share size and alignment.
                    unsafe { core::slice::from_raw_parts_mut(c.as_mut_ptr() as *mut i8, c.len()) }
                };
                window(geom, oy, ox, 0, col, pad, |s, d, n| {
                    d[..n].copy_from_slice(&input[s..s + n])
                });
                // SAFETY: as above; `flip` stays inside the slice.
                unsafe {
                    flip(core::slice::from_raw_parts_mut(
                        col.as_mut_ptr() as *mut u8,
                        depth,
                    ))
                };
            }
        }
        // The column's bytes past `depth` may be anything: their weights
        // are zero. A whole-vector store of a later span may reach into
        // the next column, which is written after it.
        for (b, p) in params.iter().enumerate() {
            let block = &packed[b * quads * LANES..(b + 1) * quads * LANES];
            let lanes = (oc - b * LANES).min(LANES);
            // SAFETY: this function's target features; the loads are of
            // whole quads of columns and 16-word rows of the block, all in
            // their slices; each store writes `lanes` bytes of one output
            // pixel, checked.
            unsafe {
                let init = _mm512_load_si512(p.init.as_ptr() as *const _);
                let mut acc = [init; PIXELS];
                let c = cols.as_ptr() as *const i32;
                for q in 0..quads {
                    let w = _mm512_loadu_si512(block.as_ptr().add(q * LANES) as *const _);
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let x = _mm512_set1_epi32(c.add(j * quads + q).read_unaligned());
                        *acc = _mm512_dpbusd_epi32(*acc, x, w);
                    }
                }
                for (j, &acc) in acc.iter().enumerate() {
                    let o = at(j) * oc + b * LANES;
                    assert!(o + lanes <= output.len());
                    requantize_store(a, p, acc, output.as_mut_ptr().add(o), lanes);
                }
            }
        }
        p0 += PIXELS;
    }
}

/// Dense accumulators (`emit(o, bias[o] + sum_i w[o][i] (x[i] + offset))`):
/// four rows a pass, 64 products an instruction, the weights' sums for the
/// `x + 128` form taken in the same pass.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) fn dense_i8(
    input: &[i8],
    weights: &[i8],
    offset: i32,
    mut emit: impl FnMut(usize, i32),
    bias: &[i32],
    _: Vnni,
) {
    let n = input.len();
    let rows = bias.len();
    // The masked loads below read rows `0..rows` of `n` bytes.
    assert!(weights.len() >= rows * n);
    WORK.with(|work| {
        let cols = &mut work.borrow_mut().cols;
        cols.clear();
        cols.resize(n.next_multiple_of(64), 0);
        // SAFETY: this function's target features; `cols` has room for
        // whole 64-byte stores; the loads below are masked to each row.
        unsafe { copy_flip(input.as_ptr(), cols.as_mut_ptr(), n) };
        let x = |c: usize| {
            // SAFETY: as above, `c` is below `n` rounded up to 64.
            unsafe { _mm512_loadu_si512(cols.as_ptr().add(c) as *const _) }
        };
        let off = offset.wrapping_sub(128);
        let mut o = 0;
        while o < rows {
            let r = (rows - o).min(4);
            // SAFETY: as above; each row's loads are masked to its `n` bytes.
            let sums = unsafe {
                let ones = _mm512_set1_epi8(1);
                let mut acc = [_mm512_setzero_si512(); 4];
                let mut sw = [_mm512_setzero_si512(); 4];
                let row = |k: usize| weights.as_ptr().add((o + k.min(r - 1)) * n);
                let mut c = 0;
                while c < n {
                    let m = lanes_mask64(n - c);
                    let xv = x(c);
                    for k in 0..4 {
                        let w = _mm512_maskz_loadu_epi8(m, row(k).add(c));
                        acc[k] = _mm512_dpbusd_epi32(acc[k], xv, w);
                        sw[k] = _mm512_dpbusd_epi32(sw[k], ones, w);
                    }
                    c += 64;
                }
                let mut s = [0i32; 4];
                for k in 0..4 {
                    let w = _mm512_reduce_add_epi32(sw[k]);
                    s[k] = _mm512_reduce_add_epi32(acc[k]).wrapping_add(off.wrapping_mul(w));
                }
                s
            };
            for (k, s) in sums.iter().enumerate().take(r) {
                emit(o + k, bias[o + k].wrapping_add(*s));
            }
            o += r;
        }
    })
}

/// One max-pooling window: the clamped maximum of each of `c` channels
/// over input pixels `ylo..yhi` by `xlo..xhi` (row width `w`) into `dst`,
/// 64 channels a vector. Starting at the clamp's floor gives
/// `min(max(lo, taps), hi)`, the portable loop's value.
#[target_feature(enable = "avx512f,avx512bw")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn max_window_i8(
    input: &[i8],
    w: usize,
    c: usize,
    [ylo, yhi, xlo, xhi]: [usize; 4],
    dst: &mut [i8],
    clamp: crate::arch::Clamp,
    _: Vnni,
) {
    let dst = &mut dst[..c];
    if yhi > ylo && xhi > xlo {
        // Every load below ends at or before the last tap's end.
        assert!(((yhi - 1) * w + xhi) * c <= input.len());
    }
    let mut ch = 0;
    while ch < c {
        let m = lanes_mask64(c - ch);
        // SAFETY: this function's target features; the loads and the
        // store are masked to the channels `ch..c` of pixels checked above.
        unsafe {
            let mut acc = _mm512_set1_epi8(clamp.min);
            for y in ylo..yhi {
                for x in xlo..xhi {
                    let at = input.as_ptr().add((y * w + x) * c + ch);
                    acc = _mm512_max_epi8(acc, _mm512_maskz_loadu_epi8(m, at));
                }
            }
            let acc = _mm512_min_epi8(acc, _mm512_set1_epi8(clamp.max));
            _mm512_mask_storeu_epi8(dst.as_mut_ptr().add(ch), m, acc);
        }
        ch += 64;
    }
}

/// Depthwise convolution with one filter per channel (HWO filters):
/// sixteen channels a vector, each tap's products `(x + offset) w` as
/// int32 lanes. A window wholly inside the input starts from
/// `bias + offset sum(w)` and adds `x w`; a window at the border adds
/// `(x + offset) w` over its taps inside the input, padding giving zero.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn depthwise_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    _: Vnni,
) {
    let geom = &a.geom;
    let [kh, kw] = geom.kernel;
    let [dh, dw] = geom.dilation;
    let c = geom.input.c;
    let (taps, blocks) = (kh * kw, c.div_ceil(LANES));
    if c == 0 || geom.output.c != c || taps == 0 {
        return;
    }
    assert!(a.filter.len() >= taps * c && output.len() >= geom.output.len());
    // Weights widened, `[block][tap][16]`, and per block the biases, the
    // full windows' start and the scales.
    let mut w = std::vec![0i32; blocks * taps * LANES];
    let mut params = std::vec![Params::default(); blocks];
    let mut whole = std::vec![[0i32; LANES]; blocks];
    for o in 0..c {
        let (b, l) = (o / LANES, o % LANES);
        let mut sum = 0i32;
        for t in 0..taps {
            let v = a.filter[t * c + o] as i32;
            w[(b * taps + t) * LANES + l] = v;
            sum += v;
        }
        let p = &mut params[b];
        p.init[l] = a.bias[o];
        whole[b][l] = a.bias[o].wrapping_add(a.input_offset.wrapping_mul(sum));
        [p.multiplier[l], p.left[l], p.right[l], p.mask[l], p.half[l]] = a.requant_of(o).parts();
    }
    let in_w = geom.input.w;
    // SAFETY: this function's target features; every input load is masked
    // to channels `< c` of a pixel inside the input, every store to
    // channels `< c` of an output pixel (lengths checked above).
    unsafe {
        let off = _mm512_set1_epi32(a.input_offset);
        for oy in 0..geom.output.h {
            let y0 = (oy * geom.stride[0]) as isize - geom.pad[0] as isize;
            let (ky_lo, ky_hi) = crate::arch::taps(y0, geom.input.h, kh, dh);
            for ox in 0..geom.output.w {
                let x0 = (ox * geom.stride[1]) as isize - geom.pad[1] as isize;
                let (kx_lo, kx_hi) = crate::arch::taps(x0, in_w, kw, dw);
                let full = ky_hi - ky_lo == kh && kx_hi - kx_lo == kw;
                let out = output.as_mut_ptr().add((oy * geom.output.w + ox) * c);
                for b in 0..blocks {
                    let lanes = (c - b * LANES).min(LANES);
                    let m = lanes_mask64(lanes) as u16;
                    let wb = w.as_ptr().add(b * taps * LANES);
                    let start = if full { &whole[b] } else { &params[b].init };
                    let mut acc = _mm512_loadu_si512(start.as_ptr() as *const _);
                    for ky in ky_lo..ky_hi {
                        let iy = (y0 + (ky * dh) as isize) as usize;
                        for kx in kx_lo..kx_hi {
                            let ix = (x0 + (kx * dw) as isize) as usize;
                            let px = input.as_ptr().add((iy * in_w + ix) * c + b * LANES);
                            let x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, px));
                            let x = if full { x } else { _mm512_add_epi32(x, off) };
                            let wt = _mm512_loadu_si512(wb.add((ky * kw + kx) * LANES) as *const _);
                            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(x, wt));
                        }
                    }
                    let p = &params[b];
                    let ld = |v: &[i32; LANES]| _mm512_load_si512(v.as_ptr() as *const _);
                    let parts = [&p.multiplier, &p.left, &p.right, &p.mask, &p.half].map(ld);
                    let q = _mm512_add_epi32(
                        scale16(acc, parts),
                        _mm512_set1_epi32(a.output_zero_point),
                    );
                    let q = _mm512_max_epi32(q, _mm512_set1_epi32(a.clamp.min as i32));
                    let q = _mm512_min_epi32(q, _mm512_set1_epi32(a.clamp.max as i32));
                    _mm512_mask_cvtepi32_storeu_epi8(out.add(b * LANES), m, q);
                }
            }
        }
    }
}

/// One float pooling window over `c` channels (`f32` or `f16`), sixteen
/// a vector, with the portable loop's bits: the maximum keeps a tap only
/// when it is greater (`VMAXPS` with the tap first: a NaN tap is never
/// taken), the average adds the taps in order and divides by their count;
/// then the clamp to `range`. Half-precision values convert exactly both
/// ways (a maximum or a clamp bound is one of them, and the clamp bounds
/// are halves), an average's result rounds to nearest even as `half` does.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn pool_window_float<T: crate::arch::FloatLane>(
    max: bool,
    input: &[T],
    w: usize,
    c: usize,
    [ylo, yhi, xlo, xhi]: [usize; 4],
    dst: &mut [T],
    [lo, hi]: [f32; 2],
    _: Vnni,
) {
    let half = core::mem::size_of::<T>() == 2;
    let dst = &mut dst[..c];
    if yhi > ylo && xhi > xlo {
        assert!(((yhi - 1) * w + xhi) * c <= input.len());
    }
    let count = ((yhi - ylo) * (xhi - xlo)) as f32;
    let mut ch = 0;
    while ch < c {
        let m = lanes_mask64((c - ch).min(16)) as u16;
        // SAFETY: this function's target features; `T` is `f32` or `f16`
        // (sealed), so its values are read and written as such; every
        // load and store is masked to channels `ch..c` of pixels checked
        // above and of `dst`.
        unsafe {
            let load = |p: *const T| {
                if half {
                    _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p as *const i16))
                } else {
                    _mm512_maskz_loadu_ps(m, p as *const f32)
                }
            };
            let mut acc = _mm512_set1_ps(if max { f32::NEG_INFINITY } else { 0.0 });
            for y in ylo..yhi {
                for x in xlo..xhi {
                    let v = load(input.as_ptr().add((y * w + x) * c + ch));
                    acc = if max {
                        _mm512_max_ps(v, acc)
                    } else {
                        _mm512_add_ps(acc, v)
                    };
                }
            }
            if !max {
                acc = _mm512_div_ps(acc, _mm512_set1_ps(count));
            }
            // `clamp_f32`: below `lo` gives `lo`, then above `hi` gives `hi`.
            let acc = _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), acc));
            let out = dst.as_mut_ptr().add(ch);
            if half {
                let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(acc);
                _mm256_mask_storeu_epi16(out as *mut i16, m, h);
            } else {
                _mm512_mask_storeu_ps(out as *mut f32, m, acc);
            }
        }
        ch += 16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Clamp;
    use crate::rng::Rng;

    /// Random windows, channel counts across the 64-lane steps, and
    /// clamps: the vector maximum equals the scalar one.
    #[test]
    fn max_windows_equal_the_scalar_ones() {
        let Some(v) = Vnni::detect() else {
            eprintln!("no AVX-512 VNNI here: its pooling is not tested");
            return;
        };
        let mut rng = Rng::new(5);
        for case in 0..500 {
            let c = 1 + rng.below(150) as usize;
            let (h, w) = (1 + rng.below(5) as usize, 1 + rng.below(5) as usize);
            let input: Vec<i8> = (0..h * w * c).map(|_| rng.next_u64() as i8).collect();
            let (ylo, xlo) = (rng.below(h as u64) as usize, rng.below(w as u64) as usize);
            let yhi = ylo + rng.below((h - ylo + 1) as u64) as usize;
            let xhi = xlo + rng.below((w - xlo + 1) as u64) as usize;
            let clamp = match case % 3 {
                0 => Clamp::NONE,
                1 => Clamp { min: 0, max: 127 },
                _ => Clamp { min: -60, max: 50 },
            };
            let mut want = vec![clamp.min; c];
            for y in ylo..yhi {
                for x in xlo..xhi {
                    for ch in 0..c {
                        want[ch] = want[ch].max(input[(y * w + x) * c + ch]);
                    }
                }
            }
            let want: Vec<i8> = want.iter().map(|&m| m.min(clamp.max)).collect();
            let mut got = vec![99i8; c + 1];
            // SAFETY: `v` proves AVX-512.
            unsafe { max_window_i8(&input, w, c, [ylo, yhi, xlo, xhi], &mut got, clamp, v) };
            assert_eq!(&got[..c], &want[..], "case {case}");
            assert_eq!(got[c], 99, "case {case}: wrote past the channels");
        }
    }
}
