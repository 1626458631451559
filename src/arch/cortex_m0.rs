//! Cortex-M0/M0+/M3 (no DSP extension) int8 inner loops.
//!
//! Thumb-1 has no multiply-accumulate and only register-offset signed byte
//! loads, so the column of activations is widened to int32 (loaded with
//! immediate offsets) and each weight byte is loaded once per channel: one
//! pixel and two output channels per pass, four taps per loop turn, with the
//! accumulators in high registers. The results are bit-identical to the
//! portable loops.

use core::arch::asm;

use super::portable::{gather, Interior, Lane};
use super::ConvArgs;

/// Two dot products of one int32 column with two int8 filter rows:
/// `[col.wa, col.wb]` added to `acc`.
#[inline(always)]
fn dot_1x2(col: &[i32], wa: &[i8], wb: &[i8], acc: [i32; 2]) -> [i32; 2] {
    let n = col.len().min(wa.len()).min(wb.len());
    let groups = n / 4;
    let [mut x, mut y] = acc;
    if groups > 0 {
        // SAFETY: the loop reads `4 * groups <= n` values of each slice
        // (column words through `c`, weight bytes at offsets `i < 4 * groups`)
        // and stops when `i` reaches `4 * groups`.
        unsafe {
            asm!(
                "mov r8, {x}",
                "mov r10, {y}",
                "mov r12, {e}",
                "2:",
                "ldr {x}, [{c}, #0]",
                "ldrsb {y}, [{wa}, {i}]",
                "ldrsb {e}, [{wb}, {i}]",
                "muls {y}, {x}, {y}",
                "muls {e}, {x}, {e}",
                "add r8, {y}",
                "add r10, {e}",
                "adds {i}, #1",
                "ldr {x}, [{c}, #4]",
                "ldrsb {y}, [{wa}, {i}]",
                "ldrsb {e}, [{wb}, {i}]",
                "muls {y}, {x}, {y}",
                "muls {e}, {x}, {e}",
                "add r8, {y}",
                "add r10, {e}",
                "adds {i}, #1",
                "ldr {x}, [{c}, #8]",
                "ldrsb {y}, [{wa}, {i}]",
                "ldrsb {e}, [{wb}, {i}]",
                "muls {y}, {x}, {y}",
                "muls {e}, {x}, {e}",
                "add r8, {y}",
                "add r10, {e}",
                "adds {i}, #1",
                "ldr {x}, [{c}, #12]",
                "ldrsb {y}, [{wa}, {i}]",
                "ldrsb {e}, [{wb}, {i}]",
                "muls {y}, {x}, {y}",
                "muls {e}, {x}, {e}",
                "add r8, {y}",
                "add r10, {e}",
                "adds {i}, #1",
                "adds {c}, #16",
                "cmp {i}, r12",
                "bne 2b",
                "mov {x}, r8",
                "mov {y}, r10",
                c = inout(reg) col.as_ptr() => _,
                wa = in(reg) wa.as_ptr(),
                wb = in(reg) wb.as_ptr(),
                i = inout(reg) 0usize => _,
                x = inout(reg) x,
                y = inout(reg) y,
                e = inout(reg) 4 * groups => _,
                out("r8") _,
                out("r10") _,
                out("r12") _,
                options(readonly, nostack),
            );
        }
    }
    for k in 4 * groups..n {
        x = x.wrapping_add(col[k].wrapping_mul(wa[k] as i32));
        y = y.wrapping_add(col[k].wrapping_mul(wb[k] as i32));
    }
    [x, y]
}

/// The int32 column region of a scratch buffer viewed as int16.
#[inline(always)]
fn as_i32(col: &mut [i16]) -> &mut [i32] {
    let n = col.len() / 2;
    // SAFETY: `scratch_i16` hands out 4-byte aligned buffers, so the start is
    // aligned for i32; `n` words cover at most `col.len()` halfwords; every
    // bit pattern is a valid i32; the borrow of `col` covers the result.
    unsafe { core::slice::from_raw_parts_mut(col.as_mut_ptr() as *mut i32, n) }
}

/// Output channels `lo..hi` of one pixel, two at a time.
#[inline(always)]
fn channels<const P: bool>(
    a: &ConvArgs<'_, P>,
    depth: usize,
    lo: usize,
    hi: usize,
    col: &[i32],
    out: &mut [i8],
) {
    let w = |o: usize| &a.filter[o * depth..(o + 1) * depth];
    let mut o = lo;
    while o < hi {
        let ob = if o + 1 < hi { o + 1 } else { o };
        let [x, y] = dot_1x2(col, w(o), w(ob), [a.bias[o], a.bias[ob]]);
        out[o] = a.requantize(x, o);
        out[ob] = a.requantize(y, ob);
        o += 2;
    }
}

/// General convolution: im2col one pixel, then two channels at a time.
pub(crate) fn conv_general_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    let geom = &a.geom;
    let depth = geom.filter_depth();
    let out_shape = geom.output;
    let oc = out_shape.c;
    let opg = oc / geom.groups;
    let col = &mut as_i32(col)[..depth];
    let interior = Interior::of(geom);
    for oy in 0..out_shape.h {
        for ox in 0..out_shape.w {
            let p = oy * out_shape.w + ox;
            let out = &mut output[p * oc..(p + 1) * oc];
            for g in 0..geom.groups {
                gather(a, &interior, input, oy, ox, g, col);
                channels(a, depth, g * opg, (g + 1) * opg, col, out);
            }
        }
    }
}

/// 1x1 convolution: widen one pixel's channels, then two channels at a time.
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
    let oc = out_shape.c;
    let [sh, sw] = geom.stride;
    let col = &mut as_i32(col)[..cin];
    for oy in 0..out_shape.h {
        for ox in 0..out_shape.w {
            let s = (oy * sh * in_w + ox * sw) * cin;
            <i32 as Lane>::widen(&input[s..s + cin], col, a.input_offset);
            let p = oy * out_shape.w + ox;
            channels(a, cin, 0, oc, col, &mut output[p * oc..(p + 1) * oc]);
        }
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
    let col = &mut as_i32(col)[..n];
    <i32 as Lane>::widen(input, col, input_offset);
    let w = |o: usize| &weights[o * n..(o + 1) * n];
    let mut o = 0;
    while o < bias.len() {
        let ob = if o + 1 < bias.len() { o + 1 } else { o };
        let [x, y] = dot_1x2(col, w(o), w(ob), [bias[o], bias[ob]]);
        emit(o, x);
        emit(ob, y);
        o += 2;
    }
}
