//! Inner loops per target, chosen by `cfg(target_feature)`, never by the
//! caller. The portable loops are the reference; every fast path is tested
//! bit-exact against them (on the host by property tests of the portable
//! loops against a naive reference, on the target by the conformance
//! firmware, whose digests must equal the host's).

use crate::ops::conv::ConvArgs;

#[cfg(all(target_arch = "arm", not(picocnn_dsp)))]
mod cortex_m0;
#[cfg(picocnn_dsp)]
mod cortex_m_dsp;

/// Scratch bytes of a general int8 convolution with filters of `depth`
/// values: two packed int16 columns and two natural-order ones, plus slack
/// to align the buffer. The same on every target, so a plan made on the
/// host sizes the arena of any board.
pub(crate) const fn im2col_bytes(depth: usize) -> usize {
    4 * depth * core::mem::size_of::<i16>() + 3
}

/// Scratch bytes of a 1x1 convolution or dense layer over `depth` inputs:
/// one packed pair of int16 columns, plus alignment slack.
pub(crate) const fn pointwise_bytes(depth: usize) -> usize {
    2 * depth * core::mem::size_of::<i16>() + 3
}

/// The largest 4-byte aligned `i16` region inside a byte scratch buffer.
pub(crate) fn scratch_i16(scratch: &mut [u8]) -> &mut [i16] {
    // SAFETY: every bit pattern is a valid u32, and `align_to_mut` returns an
    // aligned middle part that lies within `scratch`.
    let (_, mid, _) = unsafe { scratch.align_to_mut::<u32>() };
    let len = mid.len() * 2;
    // SAFETY: the u32 region is 4-byte aligned, so also 2-byte aligned, and
    // holds exactly `2 * mid.len()` halfwords; it stays borrowed from
    // `scratch` for the returned lifetime and every bit pattern is a valid i16.
    unsafe { core::slice::from_raw_parts_mut(mid.as_mut_ptr() as *mut i16, len) }
}

/// Dot product of int16 activations and int8 weights, wrapping on overflow
/// as the int32 accumulators of the reference kernels do.
#[inline(always)]
pub(crate) fn dot_i16_i8(col: &[i16], w: &[i8]) -> i32 {
    col.iter()
        .zip(w)
        .fold(0i32, |acc, (&c, &w)| acc.wrapping_add(c as i32 * w as i32))
}

/// Four independent multiply-accumulates (depthwise, one tap of four
/// channels): `acc[j] + (x[j] + offset) * w[j]`.
#[inline(always)]
pub(crate) fn mac4(acc: [i32; 4], x: &[i8], w: &[i8], offset: i32) -> [i32; 4] {
    #[cfg(picocnn_dsp)]
    return cortex_m_dsp::mac4(acc, x, w, offset);
    #[cfg(not(picocnn_dsp))]
    {
        let (x, w) = (&x[..4], &w[..4]);
        let mut acc = acc;
        for j in 0..4 {
            acc[j] = acc[j].wrapping_add((x[j] as i32 + offset) * w[j] as i32);
        }
        acc
    }
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
#[cfg_attr(target_arch = "arm", allow(dead_code))]
#[inline(always)]
pub(crate) fn channels_portable(
    a: &ConvArgs<'_>,
    depth: usize,
    lo: usize,
    hi: usize,
    col: &[i16],
    out: &mut [i8],
) {
    let w = |o: usize| &a.filter[o * depth..(o + 1) * depth];
    let mut o = lo;
    while o + 1 < hi {
        let [x, y] = dot2_i16_i8(col, w(o), w(o + 1), [a.bias[o], a.bias[o + 1]]);
        out[o] = a.requantize(x, o);
        out[o + 1] = a.requantize(y, o + 1);
        o += 2;
    }
    if o < hi {
        out[o] = a.requantize(a.bias[o].wrapping_add(dot_i16_i8(col, w(o))), o);
    }
}

#[inline(always)]
pub(crate) fn conv_general_i8(a: &ConvArgs<'_>, input: &[i8], output: &mut [i8], col: &mut [i16]) {
    #[cfg(picocnn_dsp)]
    cortex_m_dsp::conv_general_i8(a, input, output, col);
    #[cfg(all(target_arch = "arm", not(picocnn_dsp)))]
    cortex_m0::conv_general_i8(a, input, output, col);
    #[cfg(not(target_arch = "arm"))]
    crate::ops::conv::conv_general_i8_portable(a, input, output, col);
}

#[inline(always)]
pub(crate) fn conv_pointwise_i8(
    a: &ConvArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    #[cfg(picocnn_dsp)]
    cortex_m_dsp::conv_pointwise_i8(a, input, output, col);
    #[cfg(all(target_arch = "arm", not(picocnn_dsp)))]
    cortex_m0::conv_pointwise_i8(a, input, output, col);
    #[cfg(not(target_arch = "arm"))]
    crate::ops::conv::conv_pointwise_i8_portable(a, input, output, col);
}

/// Dense accumulators: `emit(o, bias[o] + sum_i w[o][i] * (x[i] + offset))`.
#[inline(always)]
pub(crate) fn dense_i8(
    input: &[i8],
    weights: &[i8],
    col: &mut [i16],
    offset: i32,
    emit: impl FnMut(usize, i32),
    bias: &[i32],
) {
    #[cfg(picocnn_dsp)]
    cortex_m_dsp::dense_i8(input, weights, col, offset, emit, bias);
    #[cfg(all(target_arch = "arm", not(picocnn_dsp)))]
    cortex_m0::dense_i8(input, weights, col, offset, emit, bias);
    #[cfg(not(target_arch = "arm"))]
    dense_i8_portable(input, weights, col, offset, emit, bias);
}

#[cfg_attr(target_arch = "arm", allow(dead_code))]
fn dense_i8_portable(
    input: &[i8],
    weights: &[i8],
    col: &mut [i16],
    offset: i32,
    mut emit: impl FnMut(usize, i32),
    bias: &[i32],
) {
    let n = input.len();
    let col = &mut col[..n];
    for (d, &s) in col.iter_mut().zip(input) {
        *d = s as i16 + offset as i16;
    }
    for (o, &b) in bias.iter().enumerate() {
        emit(
            o,
            b.wrapping_add(dot_i16_i8(col, &weights[o * n..(o + 1) * n])),
        );
    }
}
