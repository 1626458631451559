//! Depthwise convolution (HWO filters), on every target: blocks of four
//! channels over the whole output with the target's `mac4` and
//! `window_3x3`, the rest per output pixel.

use super::portable::{taps, ConvArgs};

/// Filter taps a block of four depthwise channels prepares at once: windows
/// up to 5x5 (larger ones take the per-pixel loop).
const DEPTHWISE_TAPS: usize = 25;

/// Depthwise convolution (HWO filters). With one filter per channel, blocks
/// of four channels each sweep the whole output: their filters are
/// prepared for the target's `mac4`, their requantization worked out and
/// their bias loaded once per block, and each window's taps are checked
/// once. Other channels (and multipliers above one) go per output pixel.
pub(crate) fn depthwise_i8<const P: bool>(a: &ConvArgs<'_, P>, input: &[i8], output: &mut [i8]) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let (true, Some(v)) = (a.geom.output.c == a.geom.input.c, super::vnni()) {
        // SAFETY: `v` proves the CPU runs AVX-512.
        return unsafe { super::x86::vnni::depthwise_i8(a, input, output, v) };
    }
    #[cfg(all(target_arch = "aarch64", feature = "std"))]
    if let (true, Some(n)) = (
        a.geom.output.c == a.geom.input.c,
        super::aarch64::Neon::detect(),
    ) {
        return super::aarch64::dot::depthwise_i8(a, input, output, n);
    }
    depthwise_blocks(a, input, output)
}

/// [`depthwise_i8`] without SIMD beyond the target's `mac4`.
pub(crate) fn depthwise_blocks<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
) {
    let geom = &a.geom;
    let [kh, kw] = geom.kernel;
    let [dh, dw] = geom.dilation;
    let (cin, oc) = (geom.input.c, geom.output.c);
    let mult = oc / cin;
    let blocks = if mult == 1 && kh * kw <= DEPTHWISE_TAPS {
        oc / 4 * 4
    } else {
        0
    };
    #[cfg(picocnn_dsp)]
    if super::cortex_m_dsp::depthwise_3x3_takes(geom) {
        super::cortex_m_dsp::depthwise_3x3(a, input, output, blocks);
    } else {
        for o0 in (0..blocks).step_by(4) {
            depthwise_block(a, input, output, o0);
        }
    }
    #[cfg(not(picocnn_dsp))]
    for o0 in (0..blocks).step_by(4) {
        depthwise_block(a, input, output, o0);
    }
    if blocks == oc {
        return;
    }
    let off = a.input_offset;
    let in_w = geom.input.w;
    for (p, out) in output.chunks_exact_mut(oc).enumerate() {
        let (oy, ox) = (p / geom.output.w, p % geom.output.w);
        let y0 = (oy * geom.stride[0]) as isize - geom.pad[0] as isize;
        let x0 = (ox * geom.stride[1]) as isize - geom.pad[1] as isize;
        let (ky_lo, ky_hi) = taps(y0, geom.input.h, kh, dh);
        let (kx_lo, kx_hi) = taps(x0, in_w, kw, dw);
        let mut o0 = blocks;
        while o0 < oc {
            let n = (oc - o0).min(4);
            let ic = [o0 / mult, (o0 + 1) / mult, (o0 + 2) / mult, (o0 + 3) / mult];
            let mut acc = [0i32; 4];
            for ky in ky_lo..ky_hi {
                let iy = (y0 + (ky * dh) as isize) as usize;
                for kx in kx_lo..kx_hi {
                    let ix = (x0 + (kx * dw) as isize) as usize;
                    let x = &input[(iy * in_w + ix) * cin..][..cin];
                    let w = &a.filter[(ky * kw + kx) * oc + o0..][..n];
                    for ((acc, &c), &w) in acc.iter_mut().zip(&ic).zip(w) {
                        *acc = acc.wrapping_add((x[c] as i32 + off) * w as i32);
                    }
                }
            }
            for (j, &v) in acc[..n].iter().enumerate() {
                let o = o0 + j;
                out[o] = a.requantize(v.wrapping_add(a.bias[o]), o);
            }
            o0 += 4;
        }
    }
}

/// Channels `o0..o0 + 4` of a one-per-channel depthwise convolution over
/// the whole output: the shorter requantization when the accumulators'
/// bound allows it.
#[inline(never)]
fn depthwise_block<const P: bool>(a: &ConvArgs<'_, P>, input: &[i8], output: &mut [i8], o0: usize) {
    let (taps, c) = (a.geom.kernel[0] * a.geom.kernel[1], a.geom.input.c);
    let mut w = [super::filter4(&[0; 4]); DEPTHWISE_TAPS];
    let (mut size, mut sum) = ([0u32; 4], [0i32; 4]);
    for (t, w) in w[..taps].iter_mut().enumerate() {
        let f = &a.filter[t * c + o0..][..4];
        *w = super::filter4(f);
        for j in 0..4 {
            size[j] += f[j].unsigned_abs() as u32;
            sum[j] += f[j] as i32;
        }
    }
    let bias: [i32; 4] = [0, 1, 2, 3].map(|j| a.bias[o0 + j]);
    // A window with every tap inside: the input offset's share is the same
    // for all, so it starts the accumulators (all sums wrap alike).
    let whole = [0, 1, 2, 3].map(|j| bias[j].wrapping_add(a.input_offset.wrapping_mul(sum[j])));
    let shift = |j: usize| a.shift[if P { o0 + j } else { 0 }];
    let multiplier = |j: usize| a.multiplier[if P { o0 + j } else { 0 }];
    // |x + offset| <= 255 for every int8 x and offset -zp.
    let narrow = (0..4).all(|j| {
        let bound = bias[j].unsigned_abs().saturating_add(255 * size[j]);
        super::NarrowScale::fits(bound, shift(j))
    });
    if narrow {
        let s = [0, 1, 2, 3]
            .map(|j| super::NarrowScale::new(multiplier(j), shift(j), a.output_zero_point));
        let c = a.clamp;
        depthwise_sweep(a, input, output, o0, &w[..taps], [bias, whole], |acc| {
            [
                c.apply(s[0].apply(acc[0])),
                c.apply(s[1].apply(acc[1])),
                c.apply(s[2].apply(acc[2])),
                c.apply(s[3].apply(acc[3])),
            ]
        });
    } else {
        let s = [0, 1, 2, 3].map(|j| a.requant_of(o0 + j));
        depthwise_sweep(a, input, output, o0, &w[..taps], [bias, whole], |acc| {
            [
                a.requantize_by(acc[0], s[0]),
                a.requantize_by(acc[1], s[1]),
                a.requantize_by(acc[2], s[2]),
                a.requantize_by(acc[3], s[3]),
            ]
        });
    }
}

/// [`depthwise_block`]'s loop over the output pixels, with prepared
/// filters `w` and a requantization of four accumulators.
#[inline(always)]
fn depthwise_sweep<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    o0: usize,
    w: &[super::Filter4],
    [bias, whole]: [[i32; 4]; 2],
    requantize: impl Fn([i32; 4]) -> [i8; 4],
) {
    let geom = &a.geom;
    let kw = geom.kernel[1];
    let [dh, dw] = geom.dilation;
    let (c, in_w) = (geom.input.c, geom.input.w);
    let (row_step, tap_step) = (dh * in_w * c, dw * c);
    let w3x3: Option<&[[super::Filter4; 3]; 3]> = match geom.kernel {
        [3, 3] => w.as_chunks::<3>().0.try_into().ok(),
        _ => None,
    };
    let mut out = output.chunks_exact_mut(c);
    for oy in 0..geom.output.h {
        let y0 = (oy * geom.stride[0]) as isize - geom.pad[0] as isize;
        let (ky_lo, ky_hi) = taps(y0, geom.input.h, geom.kernel[0], dh);
        for (ox, out) in (0..geom.output.w).zip(&mut out) {
            let x0 = (ox * geom.stride[1]) as isize - geom.pad[1] as isize;
            let (kx_lo, kx_hi) = taps(x0, in_w, kw, dw);
            let mut acc = bias;
            let full = ky_hi - ky_lo == 3 && kx_hi - kx_lo == 3;
            if let (Some(w), true) = (w3x3, full) {
                // A whole 3x3 window, the common case, in one piece.
                let start = ((y0 as usize) * in_w + x0 as usize) * c + o0;
                let input = &input[start..start + 2 * row_step + 2 * tap_step + 4];
                acc = super::window_3x3(whole, input, [row_step, tap_step], w);
            } else if ky_lo < ky_hi && kx_lo < kx_hi {
                let iy = (y0 + (ky_lo * dh) as isize) as usize;
                let ix = (x0 + (kx_lo * dw) as isize) as usize;
                let start = (iy * in_w + ix) * c + o0;
                // The window's last tap: one bounds check for all of them.
                let end =
                    start + (ky_hi - ky_lo - 1) * row_step + (kx_hi - kx_lo - 1) * tap_step + 4;
                let input = &input[..end];
                let mut row = start;
                for ky in ky_lo..ky_hi {
                    let mut q = row;
                    for w in &w[ky * kw + kx_lo..ky * kw + kx_hi] {
                        // SAFETY: `q + 4 <= end == input.len()`.
                        let x = unsafe { input.get_unchecked(q..q + 4) };
                        acc = super::mac4(acc, x, w, a.input_offset);
                        q += tap_step;
                    }
                    row += row_step;
                }
            }
            out[o0..o0 + 4].copy_from_slice(&requantize(acc));
        }
    }
}
