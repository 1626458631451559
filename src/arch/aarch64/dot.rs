//! aarch64 loops with output channels in the lanes (convolution with
//! `SDOT`, sixteen channels in four vectors) or with channels in the lanes
//! (depthwise, NEON), and a dense loop with `SDOT`. `SDOT` multiplies
//! signed bytes, so the columns hold the raw int8 input (padding holds its
//! zero point) and `offset sum(w)` joins each channel's bias.
//! TensorFlow Lite's requantization in vectors: `SQRDMULH` is its
//! rounding doubling high multiply, and the rounding shift with a sign
//! fix-up its rounding division (gemmlowp's NEON form).

use core::arch::aarch64::*;
use core::arch::asm;
use std::vec::Vec;

use super::Neon;
use crate::arch::packed::{packing, Params, Work, LANES, WORK};
use crate::arch::portable::{im2col_raw, ConvArgs};

/// Proof that the core has the dot-product instructions: only
/// [`Dot::detect`] makes one.
#[derive(Clone, Copy)]
pub(crate) struct Dot(());

impl Dot {
    /// The token, when the core has `SDOT` and neither `PICOCNN_PORTABLE`
    /// nor `PICOCNN_NO_DOTPROD` is set (asked once).
    #[inline(always)]
    pub(crate) fn detect() -> Option<Dot> {
        static HAS: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
        let has = crate::arch::remembered(&HAS, || {
            std::arch::is_aarch64_feature_detected!("dotprod")
                && crate::arch::unset(&["PICOCNN_PORTABLE", "PICOCNN_NO_DOTPROD"])
        });
        has.then_some(Dot(()))
    }
}

/// `acc[i] += w[4i..4i+4] . x[4L..4L+4]`: four filter values of each of
/// four channels times one quad of a column.
#[inline]
#[target_feature(enable = "dotprod")]
fn sdot_lane<const L: i32>(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: the target feature; registers only.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.4b[{l}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            l = const L,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// `acc[i] += a[4i..4i+4] . b[4i..4i+4]`.
#[inline]
#[target_feature(enable = "dotprod")]
fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: the target feature; registers only.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Pixels a pass of the convolution loop takes.
const PIXELS: usize = 4;

/// TensorFlow Lite's requantization of sixteen accumulators (four
/// vectors), plus the zero point, clamped, as int8 to the first `n`
/// bytes at `out`.
#[inline(always)]
unsafe fn requantize_store<const P: bool>(
    a: &ConvArgs<'_, P>,
    p: &Params,
    acc: [int32x4_t; 4],
    out: *mut i8,
    n: usize,
) {
    // SAFETY: `n` (at most 16) writable bytes at `out`, the caller's.
    unsafe {
        let zp = vdupq_n_s32(a.output_zero_point);
        let (lo, hi) = (
            vdupq_n_s32(a.clamp.min as i32),
            vdupq_n_s32(a.clamp.max as i32),
        );
        let mut h = [vdup_n_s16(0); 4];
        for v in 0..4 {
            let ld = |x: &[i32; LANES]| vld1q_s32(x.as_ptr().add(4 * v));
            let x = vshlq_s32(acc[v], ld(&p.left));
            let high = vqrdmulhq_s32(x, ld(&p.multiplier));
            // Rounding right shift, half away from zero: negative values
            // less one, then a rounding (half up) shift.
            let right = vnegq_s32(ld(&p.right));
            let fix = vshrq_n_s32::<31>(vandq_s32(high, right));
            let q = vrshlq_s32(vqaddq_s32(high, fix), right);
            let q = vminq_s32(vmaxq_s32(vaddq_s32(q, zp), lo), hi);
            h[v] = vmovn_s32(q);
        }
        let bytes = vcombine_s8(
            vmovn_s16(vcombine_s16(h[0], h[1])),
            vmovn_s16(vcombine_s16(h[2], h[3])),
        );
        if n >= 16 {
            vst1q_s8(out, bytes);
        } else {
            let mut tmp = [0i8; 16];
            vst1q_s8(tmp.as_mut_ptr(), bytes);
            core::ptr::copy_nonoverlapping(tmp.as_ptr(), out, n);
        }
    }
}

/// Whether [`conv_i8`] takes this layer: one group.
pub(crate) fn takes<const P: bool>(a: &ConvArgs<'_, P>) -> bool {
    a.geom.groups == 1 && a.geom.filter_depth() > 0 && a.geom.output.c > 0
}

/// A convolution of one group ([`takes`]), general or 1x1: `PIXELS`
/// columns at a time against every block of sixteen channels.
#[target_feature(enable = "dotprod")]
pub(crate) fn conv_i8<const P: bool>(a: &ConvArgs<'_, P>, input: &[i8], output: &mut [i8], _: Dot) {
    WORK.with(|work| conv_in(a, input, output, &mut work.borrow_mut()))
}

#[target_feature(enable = "dotprod")]
fn conv_in<const P: bool>(a: &ConvArgs<'_, P>, input: &[i8], output: &mut [i8], work: &mut Work) {
    let geom = &a.geom;
    let depth = geom.filter_depth();
    let quads = depth.div_ceil(4);
    // Columns are whole 16-byte vectors (zeros past the depth).
    let stride = depth.next_multiple_of(16);
    let (oc, ow) = (geom.output.c, geom.output.w);
    let pixels = geom.output.h * ow;
    if pixels == 0 {
        return;
    }
    assert!(output.len() >= pixels * oc);
    let pointwise = geom.kernel == [1, 1] && geom.pad == [0, 0];
    let layer = packing(a, depth, 0, work);
    work.cols.clear();
    work.cols.resize(PIXELS * stride, 0);
    let layer = &work.layers[layer];
    let cols = &mut work.cols[..];
    let mut p0 = 0;
    while p0 < pixels {
        // A short last pass repeats its last pixel (same bytes twice).
        let at = |j: usize| (p0 + j).min(pixels - 1);
        for j in 0..PIXELS {
            let (oy, ox) = (at(j) / ow, at(j) % ow);
            let col = &mut cols[j * stride..j * stride + depth];
            // SAFETY: `u8` and `i8` share size and alignment.
            let col = unsafe { &mut *(col as *mut [u8] as *mut [i8]) };
            if pointwise {
                let src = (oy * geom.stride[0] * geom.input.w + ox * geom.stride[1]) * depth;
                col.copy_from_slice(&input[src..src + depth]);
            } else {
                im2col_raw(a, input, oy, ox, 0, col, |s, d| d.copy_from_slice(s));
            }
        }
        for (b, p) in layer.params.iter().enumerate() {
            let block = &layer.packed[b * quads * LANES..(b + 1) * quads * LANES];
            let lanes = (oc - b * LANES).min(LANES);
            // SAFETY: the loads are of whole 16-byte vectors of the columns
            // (each `stride` long) and of the block's quads `< quads`; each
            // store writes `lanes` bytes of one output pixel (checked above).
            unsafe {
                let init = [0, 1, 2, 3].map(|v| vld1q_s32(p.init.as_ptr().add(4 * v)));
                let mut acc = [init; PIXELS];
                let c = cols.as_ptr() as *const i8;
                let w = |q: usize| {
                    let q = block.as_ptr().add(q * LANES) as *const i8;
                    [0, 1, 2, 3].map(|v| vld1q_s8(q.add(16 * v)))
                };
                let mut q = 0;
                while q < quads {
                    let x = [0, 1, 2, 3].map(|j| vld1q_s8(c.add(j * stride + 4 * q)));
                    macro_rules! lane {
                        ($l:literal) => {
                            if q + $l < quads {
                                let w = w(q + $l);
                                for (acc, x) in acc.iter_mut().zip(&x) {
                                    for v in 0..4 {
                                        acc[v] = sdot_lane::<$l>(acc[v], w[v], *x);
                                    }
                                }
                            }
                        };
                    }
                    lane!(0);
                    lane!(1);
                    lane!(2);
                    lane!(3);
                    q += 4;
                }
                for (j, acc) in acc.into_iter().enumerate() {
                    let out = output.as_mut_ptr().add(at(j) * oc + b * LANES);
                    requantize_store(a, p, acc, out, lanes);
                }
            }
        }
        p0 += PIXELS;
    }
}

/// Dense accumulators (`emit(o, bias[o] + sum_i w[o][i] (x[i] + offset))`):
/// 16 products a lane-group per `SDOT`, the weights' sums (for the offset)
/// in the same pass.
#[target_feature(enable = "dotprod")]
pub(crate) fn dense_i8(
    input: &[i8],
    weights: &[i8],
    offset: i32,
    mut emit: impl FnMut(usize, i32),
    bias: &[i32],
    _: Dot,
) {
    let n = input.len();
    let rows = bias.len();
    assert!(weights.len() >= rows * n);
    let whole = n / 16 * 16;
    for (o, &b) in bias.iter().enumerate() {
        let row = &weights[o * n..(o + 1) * n];
        // SAFETY: every load reads 16 bytes below `whole <= n`.
        let mut s = unsafe {
            let ones = vdupq_n_s8(1);
            let (mut acc, mut sum) = (vdupq_n_s32(0), vdupq_n_s32(0));
            let mut k = 0;
            while k < whole {
                let w = vld1q_s8(row.as_ptr().add(k));
                acc = sdot(acc, vld1q_s8(input.as_ptr().add(k)), w);
                sum = sdot(sum, ones, w);
                k += 16;
            }
            vaddvq_s32(acc).wrapping_add(offset.wrapping_mul(vaddvq_s32(sum)))
        };
        for (&x, &w) in input[whole..].iter().zip(&row[whole..]) {
            s = s.wrapping_add((x as i32 + offset) * w as i32);
        }
        emit(o, b.wrapping_add(s));
    }
}

/// Depthwise convolution with one filter per channel (HWO filters):
/// sixteen channels a pass, `(x + offset) w` widened to int16 (at most
/// 255 times 128 in size) and accumulated as int32; padding taps are left
/// out (they add zero).
pub(crate) fn depthwise_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    _: Neon,
) {
    let geom = &a.geom;
    let [kh, kw] = geom.kernel;
    let [dh, dw] = geom.dilation;
    let c = geom.input.c;
    if c == 0 || geom.output.c != c {
        return;
    }
    let blocks = c.div_ceil(LANES);
    let mut params: Vec<Params> = std::vec![Params::default(); blocks];
    for o in 0..c {
        let p = &mut params[o / LANES];
        let l = o % LANES;
        p.init[l] = a.bias[o];
        [p.multiplier[l], p.left[l], p.right[l], p.mask[l], p.half[l]] = a.requant_of(o).parts();
    }
    // Sixteen values from `src`, zeros past its end.
    let load16 = |src: &[i8]| {
        let mut v = [0i8; 16];
        let n = src.len().min(16);
        v[..n].copy_from_slice(&src[..n]);
        // SAFETY: a 16-byte array.
        unsafe { vld1q_s8(v.as_ptr()) }
    };
    let in_w = geom.input.w;
    for oy in 0..geom.output.h {
        let y0 = (oy * geom.stride[0]) as isize - geom.pad[0] as isize;
        let (ky_lo, ky_hi) = crate::arch::taps(y0, geom.input.h, kh, dh);
        for ox in 0..geom.output.w {
            let x0 = (ox * geom.stride[1]) as isize - geom.pad[1] as isize;
            let (kx_lo, kx_hi) = crate::arch::taps(x0, in_w, kw, dw);
            let out = &mut output[(oy * geom.output.w + ox) * c..][..c];
            for (b, p) in params.iter().enumerate() {
                let ch = b * LANES;
                // SAFETY: loads of the 64-byte `Params` rows and of
                // 16-byte arrays; the store is of `lanes` bytes of `out`.
                unsafe {
                    let off = vdupq_n_s16(a.input_offset as i16);
                    let mut acc = [0, 1, 2, 3].map(|v| vld1q_s32(p.init.as_ptr().add(4 * v)));
                    for ky in ky_lo..ky_hi {
                        let iy = (y0 + (ky * dh) as isize) as usize;
                        for kx in kx_lo..kx_hi {
                            let ix = (x0 + (kx * dw) as isize) as usize;
                            let x = load16(&input[(iy * in_w + ix) * c + ch..][..c - ch]);
                            let w = load16(&a.filter[(ky * kw + kx) * c + ch..][..c - ch]);
                            let xl = vaddq_s16(vmovl_s8(vget_low_s8(x)), off);
                            let xh = vaddq_s16(vmovl_high_s8(x), off);
                            let (wl, wh) = (vmovl_s8(vget_low_s8(w)), vmovl_high_s8(w));
                            acc[0] = vmlal_s16(acc[0], vget_low_s16(xl), vget_low_s16(wl));
                            acc[1] = vmlal_high_s16(acc[1], xl, wl);
                            acc[2] = vmlal_s16(acc[2], vget_low_s16(xh), vget_low_s16(wh));
                            acc[3] = vmlal_high_s16(acc[3], xh, wh);
                        }
                    }
                    let lanes = (c - ch).min(LANES);
                    requantize_store(a, p, acc, out.as_mut_ptr().add(ch), lanes);
                }
            }
        }
    }
}
