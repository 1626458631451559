//! Inner loops per target, chosen by `cfg(target_feature)`, never by the
//! caller. The portable loops are the reference; every fast path is tested
//! bit-exact against them.

use crate::ops::conv::ConvArgs;

/// Scratch bytes for int16 im2col columns of `depth` values for two pixels,
/// plus one byte of slack to align them.
pub(crate) const fn im2col_bytes(depth: usize) -> usize {
    2 * depth * core::mem::size_of::<i16>() + 1
}

/// The largest aligned `i16` region inside a byte scratch buffer.
pub(crate) fn scratch_i16(scratch: &mut [u8]) -> &mut [i16] {
    // SAFETY: every bit pattern is a valid i16, and `align_to_mut` returns an
    // aligned middle part that lies within `scratch`.
    let (_, mid, _) = unsafe { scratch.align_to_mut::<i16>() };
    mid
}

/// Dot product of int16 activations and int8 weights, wrapping on overflow
/// as the int32 accumulators of the reference kernels do.
#[inline(always)]
pub(crate) fn dot_i16_i8(col: &[i16], w: &[i8]) -> i32 {
    col.iter()
        .zip(w)
        .fold(0i32, |acc, (&c, &w)| acc.wrapping_add(c as i32 * w as i32))
}

#[inline(always)]
pub(crate) fn conv_general_i8(a: &ConvArgs<'_>, input: &[i8], output: &mut [i8], col: &mut [i16]) {
    crate::ops::conv::conv_general_i8_portable(a, input, output, col)
}

#[inline(always)]
pub(crate) fn conv_pointwise_i8(
    a: &ConvArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    crate::ops::conv::conv_pointwise_i8_portable(a, input, output, col)
}
