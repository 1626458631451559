//! Cortex-M4/M7 (DSP extension) int8 inner loops: SMLAD does two 16x16
//! multiply-accumulates per instruction.
//!
//! Activations are widened to int16 with the input offset added, in groups of
//! four stored as `[x0, x2, x1, x3]`, so that `SXTB16(w)` = `[w0, w2]` and
//! `SXTB16(w ROR 8)` = `[w1, w3]` pair with them without repacking the
//! weights (values past the last full group of four stay in natural order).
//! The results are bit-identical to the portable loops.

use core::arch::asm;

use crate::ops::conv::{im2col_i8, ConvArgs};

#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let r;
    // SAFETY: pure register arithmetic.
    unsafe {
        asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let r;
    // SAFETY: pure register arithmetic.
    unsafe {
        asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

#[inline(always)]
fn sxtab16(acc: u32, x: u32) -> u32 {
    let r;
    // SAFETY: pure register arithmetic.
    unsafe {
        asm!("sxtab16 {r}, {a}, {x}", r = lateout(reg) r, a = in(reg) acc, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

#[inline(always)]
fn sxtab16_ror8(acc: u32, x: u32) -> u32 {
    let r;
    // SAFETY: pure register arithmetic.
    unsafe {
        asm!("sxtab16 {r}, {a}, {x}, ror #8", r = lateout(reg) r, a = in(reg) acc, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r;
    // SAFETY: pure register arithmetic (the Q flag it may set is unused).
    unsafe {
        asm!("smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, c = in(reg) acc, options(pure, nomem, nostack))
    };
    r
}

/// Reads four bytes or two halfwords at `p` (ARMv7-M loads may be unaligned).
///
/// # Safety
/// `p .. p + 4 bytes` must be readable.
#[inline(always)]
unsafe fn ld32<T>(p: *const T) -> u32 {
    // SAFETY: the caller guarantees four readable bytes.
    unsafe { core::ptr::read_unaligned(p as *const u32) }
}

/// Puts each full group of four int16 values in `col` into `[0, 2, 1, 3]` order.
#[inline(always)]
fn reorder(col: &mut [i16]) {
    for g in col.chunks_exact_mut(4) {
        g.swap(1, 2);
    }
}

/// Widens `src` into `dst` with `offset` added, in the reordered layout.
#[inline(always)]
fn widen_reordered(src: &[i8], dst: &mut [i16], offset: i32) {
    let n = src.len().min(dst.len());
    let n4 = n & !3;
    let off2 = (offset as u32 & 0xffff) | ((offset as u32) << 16);
    let mut k = 0;
    while k < n4 {
        // SAFETY: k + 4 <= n <= src.len() and dst.len().
        unsafe {
            let x = ld32(src.as_ptr().add(k));
            let lo = sxtab16(off2, x);
            let hi = sxtab16_ror8(off2, x);
            core::ptr::write_unaligned(dst.as_mut_ptr().add(k) as *mut u32, lo);
            core::ptr::write_unaligned(dst.as_mut_ptr().add(k + 2) as *mut u32, hi);
        }
        k += 4;
    }
    while k < n {
        dst[k] = src[k] as i16 + offset as i16;
        k += 1;
    }
}

/// Dot products of two reordered columns with two filter rows:
/// `[a.wa, a.wb, b.wa, b.wb]` added to `acc`.
#[inline(always)]
fn dot_2x2(ca: &[i16], cb: &[i16], wa: &[i8], wb: &[i8], mut acc: [i32; 4]) -> [i32; 4] {
    let n = ca.len().min(cb.len()).min(wa.len()).min(wb.len());
    let n4 = n & !3;
    let (pa, pb, qa, qb) = (ca.as_ptr(), cb.as_ptr(), wa.as_ptr(), wb.as_ptr());
    let mut k = 0;
    while k < n4 {
        // SAFETY: k + 4 <= n4 <= n, the length of all four slices.
        unsafe {
            let a02 = ld32(pa.add(k));
            let a13 = ld32(pa.add(k + 2));
            let b02 = ld32(pb.add(k));
            let b13 = ld32(pb.add(k + 2));
            let w = ld32(qa.add(k));
            let (w02, w13) = (sxtb16(w), sxtb16_ror8(w));
            acc[0] = smlad(a02, w02, acc[0]);
            acc[0] = smlad(a13, w13, acc[0]);
            acc[2] = smlad(b02, w02, acc[2]);
            acc[2] = smlad(b13, w13, acc[2]);
            let w = ld32(qb.add(k));
            let (w02, w13) = (sxtb16(w), sxtb16_ror8(w));
            acc[1] = smlad(a02, w02, acc[1]);
            acc[1] = smlad(a13, w13, acc[1]);
            acc[3] = smlad(b02, w02, acc[3]);
            acc[3] = smlad(b13, w13, acc[3]);
        }
        k += 4;
    }
    while k < n {
        let (a, b) = (ca[k] as i32, cb[k] as i32);
        let (x, y) = (wa[k] as i32, wb[k] as i32);
        acc[0] = acc[0].wrapping_add(a * x);
        acc[1] = acc[1].wrapping_add(a * y);
        acc[2] = acc[2].wrapping_add(b * x);
        acc[3] = acc[3].wrapping_add(b * y);
        k += 1;
    }
    acc
}

/// Dot products of one reordered column with two filter rows.
#[inline(always)]
fn dot_1x2(ca: &[i16], wa: &[i8], wb: &[i8], mut acc: [i32; 2]) -> [i32; 2] {
    let n = ca.len().min(wa.len()).min(wb.len());
    let n4 = n & !3;
    let (pa, qa, qb) = (ca.as_ptr(), wa.as_ptr(), wb.as_ptr());
    let mut k = 0;
    while k < n4 {
        // SAFETY: k + 4 <= n4 <= n, the length of all three slices.
        unsafe {
            let a02 = ld32(pa.add(k));
            let a13 = ld32(pa.add(k + 2));
            let w = ld32(qa.add(k));
            acc[0] = smlad(a02, sxtb16(w), acc[0]);
            acc[0] = smlad(a13, sxtb16_ror8(w), acc[0]);
            let w = ld32(qb.add(k));
            acc[1] = smlad(a02, sxtb16(w), acc[1]);
            acc[1] = smlad(a13, sxtb16_ror8(w), acc[1]);
        }
        k += 4;
    }
    while k < n {
        let a = ca[k] as i32;
        acc[0] = acc[0].wrapping_add(a * wa[k] as i32);
        acc[1] = acc[1].wrapping_add(a * wb[k] as i32);
        k += 1;
    }
    acc
}

/// Dot product of one reordered column with one filter row.
#[inline(always)]
pub(crate) fn dot_1x1(ca: &[i16], wa: &[i8], mut acc: i32) -> i32 {
    let n = ca.len().min(wa.len());
    let n4 = n & !3;
    let (pa, qa) = (ca.as_ptr(), wa.as_ptr());
    let mut k = 0;
    while k < n4 {
        // SAFETY: k + 4 <= n4 <= n, the length of both slices.
        unsafe {
            let w = ld32(qa.add(k));
            acc = smlad(ld32(pa.add(k)), sxtb16(w), acc);
            acc = smlad(ld32(pa.add(k + 2)), sxtb16_ror8(w), acc);
        }
        k += 4;
    }
    while k < n {
        acc = acc.wrapping_add(ca[k] as i32 * wa[k] as i32);
        k += 1;
    }
    acc
}

/// Output channels `lo..hi` of one or two pixels from their columns.
#[inline(always)]
fn channels(
    a: &ConvArgs<'_>,
    depth: usize,
    lo: usize,
    hi: usize,
    ca: &[i16],
    cb: Option<&[i16]>,
    out_a: &mut [i8],
    out_b: &mut [i8],
) {
    let w = |o: usize| &a.filter[o * depth..(o + 1) * depth];
    let mut o = lo;
    while o + 1 < hi {
        let (b0, b1) = (a.bias[o], a.bias[o + 1]);
        match cb {
            Some(cb) => {
                let [a0, a1, c0, c1] = dot_2x2(ca, cb, w(o), w(o + 1), [b0, b1, b0, b1]);
                out_a[o] = a.requantize(a0, o);
                out_a[o + 1] = a.requantize(a1, o + 1);
                out_b[o] = a.requantize(c0, o);
                out_b[o + 1] = a.requantize(c1, o + 1);
            }
            None => {
                let [a0, a1] = dot_1x2(ca, w(o), w(o + 1), [b0, b1]);
                out_a[o] = a.requantize(a0, o);
                out_a[o + 1] = a.requantize(a1, o + 1);
            }
        }
        o += 2;
    }
    if o < hi {
        out_a[o] = a.requantize(dot_1x1(ca, w(o), a.bias[o]), o);
        if let Some(cb) = cb {
            out_b[o] = a.requantize(dot_1x1(cb, w(o), a.bias[o]), o);
        }
    }
}

/// General convolution: im2col two output pixels, then 2x2 blocks of
/// pixels and output channels.
pub(crate) fn conv_general_i8(a: &ConvArgs<'_>, input: &[i8], output: &mut [i8], col: &mut [i16]) {
    let geom = &a.geom;
    let depth = geom.filter_depth();
    let out_shape = geom.output_shape();
    let (oc, ow) = (out_shape.c, out_shape.w);
    let groups = geom.groups();
    let opg = oc / groups;
    let stride = depth + (depth & 1);
    let (col_a, rest) = col.split_at_mut(stride);
    let col_a = &mut col_a[..depth];
    let col_b = &mut rest[..depth];
    let pixels = out_shape.h * ow;
    let mut p = 0;
    while p < pixels {
        let two = p + 1 < pixels;
        let (out_a, out_b) = if two {
            let (x, y) = output[p * oc..(p + 2) * oc].split_at_mut(oc);
            (x, y)
        } else {
            (&mut output[p * oc..(p + 1) * oc], &mut [][..])
        };
        for g in 0..groups {
            im2col_i8(a, input, p / ow, p % ow, g, col_a);
            reorder(col_a);
            if two {
                im2col_i8(a, input, (p + 1) / ow, (p + 1) % ow, g, col_b);
                reorder(col_b);
            }
            let cb = if two { Some(&col_b[..]) } else { None };
            channels(a, depth, g * opg, (g + 1) * opg, col_a, cb, out_a, out_b);
        }
        p += 2;
    }
}

/// 1x1 convolution: widen two pixels' channels, then 2x2 blocks.
pub(crate) fn conv_pointwise_i8(
    a: &ConvArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    let geom = &a.geom;
    let cin = geom.input_shape().c;
    let in_w = geom.input_shape().w;
    let out_shape = geom.output_shape();
    let (oc, ow) = (out_shape.c, out_shape.w);
    let [sh, sw] = geom.stride();
    let stride = cin + (cin & 1);
    let (col_a, rest) = col.split_at_mut(stride);
    let col_a = &mut col_a[..cin];
    let col_b = &mut rest[..cin];
    let src = |p: usize| {
        let s = ((p / ow) * sh * in_w + (p % ow) * sw) * cin;
        &input[s..s + cin]
    };
    let pixels = out_shape.h * ow;
    let mut p = 0;
    while p < pixels {
        let two = p + 1 < pixels;
        widen_reordered(src(p), col_a, a.input_offset);
        let (out_a, out_b) = if two {
            widen_reordered(src(p + 1), col_b, a.input_offset);
            let (x, y) = output[p * oc..(p + 2) * oc].split_at_mut(oc);
            (x, y)
        } else {
            (&mut output[p * oc..(p + 1) * oc], &mut [][..])
        };
        let cb = if two { Some(&col_b[..]) } else { None };
        channels(a, cin, 0, oc, col_a, cb, out_a, out_b);
        p += 2;
    }
}

/// Dense layer: widen the input once, then two output channels at a time.
pub(crate) fn dense_i8(
    input: &[i8],
    weights: &[i8],
    col: &mut [i16],
    input_offset: i32,
    mut emit: impl FnMut(usize, i32),
    bias: &[i32],
) {
    let n = input.len();
    let col = &mut col[..n];
    widen_reordered(input, col, input_offset);
    let outs = bias.len();
    let w = |o: usize| &weights[o * n..(o + 1) * n];
    let mut o = 0;
    while o + 1 < outs {
        let [x, y] = dot_1x2(col, w(o), w(o + 1), [bias[o], bias[o + 1]]);
        emit(o, x);
        emit(o + 1, y);
        o += 2;
    }
    if o < outs {
        emit(o, dot_1x1(col, w(o), bias[o]));
    }
}
