//! Cortex-M4/M7 (DSP extension) int8 inner loops: SMLAD does two 16x16
//! multiply-accumulates per instruction.
//!
//! Activations are widened to int16 with the input offset added, in groups of
//! four stored as `[x0, x2, x1, x3]`, so that `SXTB16(w)` = `[w0, w2]` and
//! `SXTB16(w ROR 8)` = `[w1, w3]` pair with them without repacking the
//! weights (values past the last full group of four stay in natural order).
//! The results are bit-identical to the portable loops.

use core::arch::asm;

use super::portable::{for_pixel_pairs, im2col_raw, Interior};
use super::Scale;
use super::{ConvArgs, NarrowScale};

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

/// `(a b + 2^31) >> 32`: the high word of the product, rounded.
#[inline(always)]
pub(crate) fn smmulr(a: i32, b: i32) -> i32 {
    let r;
    // SAFETY: pure register arithmetic.
    unsafe {
        asm!("smmulr {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, options(pure, nomem, nostack))
    };
    r
}

mod depthwise;
mod depthwise_3x3;
mod sweep;
pub(crate) use depthwise::{filter4, mac4, window_3x3};
pub(crate) use depthwise_3x3::{depthwise_3x3, takes as depthwise_3x3_takes};
use sweep::Sweep;

/// Reads four bytes or two halfwords at `p` (ARMv7-M loads may be unaligned).
///
/// # Safety
/// `p .. p + 4 bytes` must be readable.
#[inline(always)]
unsafe fn ld32<T>(p: *const T) -> u32 {
    // SAFETY: the caller guarantees four readable bytes.
    unsafe { core::ptr::read_unaligned(p as *const u32) }
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

/// Dot products of one reordered column with four consecutive filter rows
/// of `n` values (`rows` holds `4 * n`): one pass over the column, four
/// accumulators.
#[inline(always)]
fn dot_1x4(col: &[i16], rows: &[i8], n: usize, mut acc: [i32; 4]) -> [i32; 4] {
    let n = n.min(col.len()).min(rows.len() / 4);
    let groups = n / 4;
    if groups > 0 {
        // SAFETY: the loop reads `groups` groups: 8 bytes of `col` (within
        // 2 * n bytes) and 4 bytes of each of the four rows at offsets 0, n,
        // 2n, 3n (within 4 * n bytes of `rows`); it stops when the column
        // pointer reaches `end`. The word pushed is popped before the end.
        unsafe {
            let end = col.as_ptr().add(4 * groups);
            asm!(
                "push {{{x}}}",
                "2:",
                "ldr {a02}, [{col}], #4",
                "ldr {a13}, [{col}], #4",
                "ldr {w}, [{w0}, {n}]",
                "sxtb16 {x}, {w}",
                "smlad {c1}, {a02}, {x}, {c1}",
                "sxtb16 {x}, {w}, ror #8",
                "smlad {c1}, {a13}, {x}, {c1}",
                "ldr {w}, [{w0}], #4",
                "sxtb16 {x}, {w}",
                "smlad {c0}, {a02}, {x}, {c0}",
                "sxtb16 {x}, {w}, ror #8",
                "smlad {c0}, {a13}, {x}, {c0}",
                "ldr {w}, [{w2}, {n}]",
                "sxtb16 {x}, {w}",
                "smlad {c3}, {a02}, {x}, {c3}",
                "sxtb16 {x}, {w}, ror #8",
                "smlad {c3}, {a13}, {x}, {c3}",
                "ldr {w}, [{w2}], #4",
                "sxtb16 {x}, {w}",
                "smlad {c2}, {a02}, {x}, {c2}",
                "sxtb16 {x}, {w}, ror #8",
                "smlad {c2}, {a13}, {x}, {c2}",
                "ldr {x}, [sp]",
                "cmp {col}, {x}",
                "bne 2b",
                "add sp, #4",
                col = inout(reg) col.as_ptr() => _,
                w0 = inout(reg) rows.as_ptr() => _,
                w2 = inout(reg) rows.as_ptr().add(2 * n) => _,
                n = in(reg) n,
                x = inout(reg) end => _,
                c0 = inout(reg) acc[0],
                c1 = inout(reg) acc[1],
                c2 = inout(reg) acc[2],
                c3 = inout(reg) acc[3],
                a02 = out(reg) _,
                a13 = out(reg) _,
                w = out(reg) _,
                options(readonly),
            );
        }
    }
    for k in 4 * groups..n {
        let c = col[k] as i32;
        for (j, a) in acc.iter_mut().enumerate() {
            *a = a.wrapping_add(c * rows[j * n + k] as i32);
        }
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

/// Widens two pixels' channels (`x + offset`) into the layout
/// [`dot_2x2_packed`] reads: per group of four values, the words
/// `A[0,2] B[0,2] A[1,3] B[1,3]`; then the tails of A and B in natural order.
#[inline(always)]
fn pack_pair_i8(a: &[i8], b: &[i8], offset: i32, packed: &mut [i16]) {
    let n = a.len().min(b.len());
    let groups = n / 4;
    let packed = &mut packed[..2 * n];
    let off2 = (offset as u32 & 0xffff) | ((offset as u32) << 16);
    for g in 0..groups {
        // SAFETY: 4 * g + 4 <= n <= a.len(), b.len(); 8 * g + 8 <= 2 * n = packed.len().
        unsafe {
            let xa = ld32(a.as_ptr().add(4 * g));
            let xb = ld32(b.as_ptr().add(4 * g));
            let d = packed.as_mut_ptr().add(8 * g) as *mut u32;
            core::ptr::write_unaligned(d, sxtab16(off2, xa));
            core::ptr::write_unaligned(d.add(1), sxtab16(off2, xb));
            core::ptr::write_unaligned(d.add(2), sxtab16_ror8(off2, xa));
            core::ptr::write_unaligned(d.add(3), sxtab16_ror8(off2, xb));
        }
    }
    let t = n - 4 * groups;
    for i in 0..t {
        packed[8 * groups + i] = a[4 * groups + i] as i16 + offset as i16;
        packed[8 * groups + t + i] = b[4 * groups + i] as i16 + offset as i16;
    }
}

/// The four dot products of two packed pixels and two filter rows of
/// `depth` values: `[A.wa, A.wb, B.wa, B.wb]` added to `acc`.
#[inline(always)]
fn dot_2x2_packed(
    packed: &[i16],
    wa: &[i8],
    wb: &[i8],
    depth: usize,
    mut acc: [i32; 4],
) -> [i32; 4] {
    let depth = depth.min(packed.len() / 2).min(wa.len()).min(wb.len());
    let groups = depth / 4;
    if groups > 0 {
        let col = packed.as_ptr();
        // SAFETY: the loop reads `groups` groups: 16 bytes of `packed` (8
        // halfwords, within 2 * depth) and 4 bytes of each filter row (within
        // depth) per group, and stops when the column pointer reaches `end`.
        // The one word pushed is popped before the block ends.
        unsafe {
            let end = col.add(8 * groups);
            asm!(
                "push {{{x}}}",
                "2:",
                "ldr {wa02}, [{wa}], #4",
                "ldr {wb02}, [{wb}], #4",
                "sxtb16 {wa13}, {wa02}, ror #8",
                "sxtb16 {wa02}, {wa02}",
                "sxtb16 {wb13}, {wb02}, ror #8",
                "sxtb16 {wb02}, {wb02}",
                "ldr {x}, [{col}], #4",
                "smlad {a0}, {x}, {wa02}, {a0}",
                "smlad {a1}, {x}, {wb02}, {a1}",
                "ldr {x}, [{col}], #4",
                "smlad {a2}, {x}, {wa02}, {a2}",
                "smlad {a3}, {x}, {wb02}, {a3}",
                "ldr {x}, [{col}], #4",
                "smlad {a0}, {x}, {wa13}, {a0}",
                "smlad {a1}, {x}, {wb13}, {a1}",
                "ldr {x}, [{col}], #4",
                "smlad {a2}, {x}, {wa13}, {a2}",
                "smlad {a3}, {x}, {wb13}, {a3}",
                "ldr {x}, [sp]",
                "cmp {col}, {x}",
                "bne 2b",
                "add sp, #4",
                col = inout(reg) col => _,
                wa = inout(reg) wa.as_ptr() => _,
                wb = inout(reg) wb.as_ptr() => _,
                x = inout(reg) end => _,
                a0 = inout(reg) acc[0],
                a1 = inout(reg) acc[1],
                a2 = inout(reg) acc[2],
                a3 = inout(reg) acc[3],
                wa02 = out(reg) _,
                wa13 = out(reg) _,
                wb02 = out(reg) _,
                wb13 = out(reg) _,
                options(readonly),
            );
        }
    }
    let t = depth - 4 * groups;
    let (ta, tb) = (
        &packed[8 * groups..8 * groups + t],
        &packed[8 * groups + t..8 * groups + 2 * t],
    );
    for i in 0..t {
        let (x, y) = (wa[4 * groups + i] as i32, wb[4 * groups + i] as i32);
        acc[0] = acc[0].wrapping_add(ta[i] as i32 * x);
        acc[1] = acc[1].wrapping_add(ta[i] as i32 * y);
        acc[2] = acc[2].wrapping_add(tb[i] as i32 * x);
        acc[3] = acc[3].wrapping_add(tb[i] as i32 * y);
    }
    acc
}

/// Output channels `lo..hi` of pixels `pa` and `pb` (equal for a lone last
/// pixel) from their packed columns, two channels at a time: in the
/// assembly loop of [`Sweep`] when the layer is narrow, else (and for a
/// lone last channel, paired with itself) here.
// Inlined into its one caller: the arguments are that loop's registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn channels<const P: bool>(
    a: &ConvArgs<'_, P>,
    depth: usize,
    lo: usize,
    hi: usize,
    packed: &[i16],
    output: &mut [i8],
    pa: usize,
    pb: usize,
    narrow: bool,
    sweep: Option<&mut Sweep>,
) {
    let oc = a.geom.output.c;
    // The tables and output cells this call touches, checked once.
    let filter = &a.filter[..hi * depth];
    let bias = &a.bias[..hi];
    let tables = if P { hi } else { 1 };
    let (multiplier, shift) = (&a.multiplier[..tables], &a.shift[..tables]);
    let output = &mut output[..pa.max(pb) * oc + hi];
    let (ra, rb) = (pa * oc, pb * oc);
    let mut o = lo;
    let pairs = (hi - lo) / 2;
    if let Some(s) = sweep.filter(|_| pairs > 0 && packed.len() >= 2 * depth) {
        // SAFETY: the slices above hold rows and values up to `hi`, outputs
        // up to `ra + hi` and `rb + hi`; `packed` the two columns.
        unsafe {
            s.run::<P>(
                packed,
                filter.as_ptr(),
                output.as_mut_ptr(),
                [ra, rb],
                lo,
                pairs,
            )
        };
        o = lo + 2 * pairs;
    }
    while o < hi {
        let ob = if o + 1 < hi { o + 1 } else { o };
        let (i, ib) = if P { (o, ob) } else { (0, 0) };
        // SAFETY: `o`, `ob` < `hi`, the tables' length (`i`, `ib` <
        // `tables`), and the rows `ra`, `rb` end at `output.len()` at most.
        unsafe {
            let w = |o: usize| filter.get_unchecked(o * depth..(o + 1) * depth);
            let (b0, b1) = (*bias.get_unchecked(o), *bias.get_unchecked(ob));
            let [x0, x1, y0, y1] = dot_2x2_packed(packed, w(o), w(ob), depth, [b0, b1, b0, b1]);
            let (m0, m1) = (*multiplier.get_unchecked(i), *multiplier.get_unchecked(ib));
            let (s0, s1) = (*shift.get_unchecked(i), *shift.get_unchecked(ib));
            let v = if narrow {
                let (r0, r1) = (
                    NarrowScale::new(m0, s0, a.output_zero_point),
                    NarrowScale::new(m1, s1, a.output_zero_point),
                );
                [
                    a.requantize_narrow(x0, r0),
                    a.requantize_narrow(x1, r1),
                    a.requantize_narrow(y0, r0),
                    a.requantize_narrow(y1, r1),
                ]
            } else {
                let (r0, r1) = (Scale::new(m0, s0), Scale::new(m1, s1));
                [
                    a.requantize_by(x0, r0),
                    a.requantize_by(x1, r1),
                    a.requantize_by(y0, r0),
                    a.requantize_by(y1, r1),
                ]
            };
            *output.get_unchecked_mut(ra + o) = v[0];
            *output.get_unchecked_mut(ra + ob) = v[1];
            *output.get_unchecked_mut(rb + o) = v[2];
            *output.get_unchecked_mut(rb + ob) = v[3];
        }
        o += 2;
    }
}

/// General convolution: gather two output pixels' raw windows, widen them
/// into the packed layout, then 2x2 blocks of pixels and output channels.
#[inline(never)]
pub(crate) fn conv_general_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    let geom = &a.geom;
    let depth = geom.filter_depth();
    let out_shape = geom.output;
    let ow = out_shape.w;
    let groups = geom.groups;
    let opg = out_shape.c / groups;
    let (packed, rest) = col.split_at_mut(2 * depth);
    let raw = as_bytes(rest);
    let (raw_a, rest) = raw.split_at_mut(depth);
    let raw_b = &mut rest[..depth];
    let interior = Interior::of(geom);
    let narrow = a.narrow;
    let mut sweep = Sweep::new(a, depth);
    let gather = |p: usize, g: usize, col: &mut [i8]| {
        let (oy, ox) = (p / ow, p % ow);
        match interior.start(oy, ox) {
            Some(start) if groups == 1 => gather_inside(&interior, input, start, col),
            _ => im2col_raw(a, input, oy, ox, g, col, copy_span),
        }
    };
    for_pixel_pairs(out_shape.h * ow, |p, q| {
        for g in 0..groups {
            gather(p, g, raw_a);
            gather(q, g, raw_b);
            pack_pair_i8(raw_a, raw_b, a.input_offset, packed);
            channels(
                a,
                depth,
                g * opg,
                (g + 1) * opg,
                packed,
                output,
                p,
                q,
                narrow,
                sweep.as_mut(),
            );
        }
    });
}

/// The raw window of a pixel whose window lies inside the input.
#[inline(always)]
fn gather_inside(interior: &Interior, input: &[i8], start: usize, col: &mut [i8]) {
    let (end, len) = interior.extent(start);
    // One check for all the spans (it fails only for a caller's wrong input
    // length, which the op has refused before).
    if end > input.len() || len > col.len() {
        return;
    }
    interior.spans(start, |s, d, n| {
        // SAFETY: every span lies below `end <= input.len()` in the input
        // and below `len <= col.len()` in the column.
        unsafe { copy_raw(input.as_ptr().add(s), col.as_mut_ptr().add(d), n) }
    });
}

/// `dst.copy_from_slice(src)` for the short spans of a window.
#[inline(always)]
fn copy_span(src: &[i8], dst: &mut [i8]) {
    let n = src.len().min(dst.len());
    // SAFETY: `n` bytes of each slice.
    unsafe { copy_raw(src.as_ptr(), dst.as_mut_ptr(), n) }
}

/// Copies `n` bytes a word at a time, then up to three bytes. (Written in
/// Rust, the word loop becomes a call to `memcpy`, whose set-up costs more
/// than these spans.)
///
/// # Safety
/// `src .. src + n` readable, `dst .. dst + n` writable, not overlapping.
#[inline(always)]
unsafe fn copy_raw(src: *const i8, dst: *mut i8, n: usize) {
    let words = n / 4;
    let (mut s, mut d) = (src, dst);
    if words > 0 {
        // SAFETY: reads and writes `4 * words <= n` bytes, as the caller allows.
        unsafe {
            asm!(
                "2:",
                "ldr {t}, [{s}], #4",
                "str {t}, [{d}], #4",
                "subs {c}, #1",
                "bne 2b",
                s = inout(reg) s,
                d = inout(reg) d,
                c = inout(reg) words => _,
                t = out(reg) _,
                options(nostack),
            );
        }
    }
    // SAFETY: the last `n % 4` bytes, within `n`.
    unsafe {
        let t = n % 4;
        if t > 0 {
            *d = *s;
        }
        if t > 1 {
            *d.add(1) = *s.add(1);
        }
        if t > 2 {
            *d.add(2) = *s.add(2);
        }
    }
}

/// An int16 scratch region as bytes.
#[inline(always)]
fn as_bytes(col: &mut [i16]) -> &mut [i8] {
    // SAFETY: the same memory, twice as many one-byte elements, every bit
    // pattern valid; the borrow of `col` covers the result.
    unsafe { core::slice::from_raw_parts_mut(col.as_mut_ptr() as *mut i8, 2 * col.len()) }
}

/// 1x1 convolution: widen and pack two pixels' channels, then 2x2 blocks.
pub(crate) fn conv_pointwise_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    let geom = &a.geom;
    let cin = geom.input.c;
    let in_w = geom.input.w;
    let out_shape = geom.output;
    let (oc, ow) = (out_shape.c, out_shape.w);
    let [sh, sw] = geom.stride;
    let packed = &mut col[..2 * cin];
    // At stride 1 the output pixels are the input's, in order.
    let dense = sh == 1 && sw == 1 && in_w == ow;
    let src = |p: usize| {
        let s = if dense {
            p * cin
        } else {
            ((p / ow) * sh * in_w + (p % ow) * sw) * cin
        };
        &input[s..s + cin]
    };
    let pixels = out_shape.h * ow;
    let narrow = a.narrow;
    let mut sweep = Sweep::new(a, cin);
    let mut p = 0;
    while p < pixels {
        let q = if p + 1 < pixels { p + 1 } else { p };
        pack_pair_i8(src(p), src(q), a.input_offset, packed);
        channels(a, cin, 0, oc, packed, output, p, q, narrow, sweep.as_mut());
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
    while o + 3 < outs {
        let acc = dot_1x4(
            col,
            &weights[o * n..(o + 4) * n],
            n,
            [bias[o], bias[o + 1], bias[o + 2], bias[o + 3]],
        );
        for (k, &v) in acc.iter().enumerate() {
            emit(o + k, v);
        }
        o += 4;
    }
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
