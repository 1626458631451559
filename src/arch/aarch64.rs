//! aarch64 int8 loops. NEON, which every aarch64 core has: the portable
//! loop nests with dot products of eight int16 activations and eight int8
//! weights (widened) per `SMLAL` pair. Where the core has the dot-product
//! instructions (Armv8.2-A's optional `SDOT`, Armv8.4-A's required one),
//! [`dot`]'s loops: output channels in the lanes, four products a lane per
//! instruction. Integer sums and TensorFlow Lite's requantization, so the
//! bits are the portable loops'.

use core::arch::aarch64::*;

use super::portable::{self, ConvArgs, Dots};

#[cfg(feature = "std")]
pub(crate) mod dot;

/// Proof that the loops may use NEON: only [`Neon::detect`] makes one.
#[derive(Clone, Copy)]
pub(crate) struct Neon(());

impl Neon {
    /// The token, unless `PICOCNN_PORTABLE` is set (with `std`: asked
    /// once) or the build leaves NEON out.
    #[inline(always)]
    pub(crate) fn detect() -> Option<Neon> {
        if !cfg!(target_feature = "neon") {
            return None;
        }
        #[cfg(feature = "std")]
        {
            static HAS: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
            if !super::remembered(&HAS, || super::unset(&["PICOCNN_PORTABLE"])) {
                return None;
            }
        }
        Some(Neon(()))
    }
}

/// Eight weights at `w`, widened.
#[inline(always)]
unsafe fn weights8(w: *const i8) -> int16x8_t {
    // SAFETY: the caller's: 8 readable bytes.
    unsafe { vmovl_s8(vld1_s8(w)) }
}

impl Dots for Neon {
    #[inline(always)]
    fn dot(self, col: &[i16], w: &[i8]) -> i32 {
        let n = col.len().min(w.len());
        let mut k = 0;
        // SAFETY: every load reads 8 values below `n`.
        let mut acc = unsafe {
            let (mut lo, mut hi) = (vdupq_n_s32(0), vdupq_n_s32(0));
            while k + 8 <= n {
                let c = vld1q_s16(col.as_ptr().add(k));
                let v = weights8(w.as_ptr().add(k));
                lo = vmlal_s16(lo, vget_low_s16(c), vget_low_s16(v));
                hi = vmlal_high_s16(hi, c, v);
                k += 8;
            }
            vaddvq_s32(vaddq_s32(lo, hi))
        };
        for i in k..n {
            acc = acc.wrapping_add(col[i] as i32 * w[i] as i32);
        }
        acc
    }

    #[inline(always)]
    fn dot2(self, col: &[i16], wa: &[i8], wb: &[i8], acc: [i32; 2]) -> [i32; 2] {
        let n = col.len().min(wa.len()).min(wb.len());
        let mut k = 0;
        // SAFETY: every load reads 8 values below `n`.
        let [mut x, mut y] = unsafe {
            let (mut a0, mut a1) = (vdupq_n_s32(0), vdupq_n_s32(0));
            let (mut b0, mut b1) = (vdupq_n_s32(0), vdupq_n_s32(0));
            while k + 8 <= n {
                let c = vld1q_s16(col.as_ptr().add(k));
                let va = weights8(wa.as_ptr().add(k));
                let vb = weights8(wb.as_ptr().add(k));
                a0 = vmlal_s16(a0, vget_low_s16(c), vget_low_s16(va));
                a1 = vmlal_high_s16(a1, c, va);
                b0 = vmlal_s16(b0, vget_low_s16(c), vget_low_s16(vb));
                b1 = vmlal_high_s16(b1, c, vb);
                k += 8;
            }
            [
                acc[0].wrapping_add(vaddvq_s32(vaddq_s32(a0, a1))),
                acc[1].wrapping_add(vaddvq_s32(vaddq_s32(b0, b1))),
            ]
        };
        for i in k..n {
            let c = col[i] as i32;
            x = x.wrapping_add(c * wa[i] as i32);
            y = y.wrapping_add(c * wb[i] as i32);
        }
        [x, y]
    }
}

/// [`portable::conv_general_i8`] with NEON dot products.
pub(crate) fn conv_general_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
    d: Neon,
) {
    portable::conv_general_with(a, input, output, col, d)
}

/// [`portable::conv_pointwise_i8`] with NEON dot products.
pub(crate) fn conv_pointwise_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
    d: Neon,
) {
    portable::conv_pointwise_with(a, input, output, col, d)
}

/// [`portable::dense_i8`] with NEON dot products.
pub(crate) fn dense_i8(
    input: &[i8],
    weights: &[i8],
    col: &mut [i16],
    offset: i32,
    emit: impl FnMut(usize, i32),
    bias: &[i32],
    d: Neon,
) {
    portable::dense_with(input, weights, col, offset, emit, bias, d)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::arch::portable::{conv_general_with, conv_pointwise_with, dense_with};
    use crate::arch::simd_check::{Outputs, Paths};
    use std::vec;

    /// Every length up to 100 and the extreme values: the dot products
    /// equal the scalar ones.
    #[test]
    fn dots_equal_the_scalar_ones() {
        let d = Neon::detect().expect("every aarch64 build here has NEON");
        crate::arch::simd_check::check_dots(d);
    }

    /// The aarch64 paths this core has: the NEON dot products in the
    /// portable loops, and the `SDOT` loops.
    struct Arm(Neon);

    impl Paths for Arm {
        fn conv<const P: bool>(&self, a: &ConvArgs<'_, P>, input: &[i8]) -> Outputs<i8> {
            let g = &a.geom;
            let pointwise = g.kernel == [1, 1] && g.groups == 1 && g.pad == [0, 0];
            let mut out = vec![0i8; g.output.len()];
            let mut col = vec![0i16; g.filter_depth()];
            if pointwise {
                conv_pointwise_with(a, input, &mut out, &mut col, self.0);
            } else {
                conv_general_with(a, input, &mut out, &mut col, self.0);
            }
            let mut outs = vec![("neon", out)];
            if let (Some(d), true) = (dot::Dot::detect(), dot::takes(a)) {
                let mut out = vec![0i8; g.output.len()];
                // SAFETY: `d` proves the dot-product instructions.
                unsafe { dot::conv_i8(a, input, &mut out, d) };
                outs.push(("sdot", out));
            }
            outs
        }

        fn dense(&self, x: &[i8], w: &[i8], offset: i32, bias: &[i32]) -> Outputs<i32> {
            let mut out = vec![0i32; bias.len()];
            let mut col = vec![0i16; x.len()];
            dense_with(x, w, &mut col, offset, |o, v| out[o] = v, bias, self.0);
            let mut outs = vec![("neon", out)];
            if let Some(d) = dot::Dot::detect() {
                let mut out = vec![0i32; bias.len()];
                // SAFETY: `d` proves the dot-product instructions.
                unsafe { dot::dense_i8(x, w, offset, |o, s| out[o] = s, bias, d) };
                outs.push(("sdot", out));
            }
            outs
        }

        fn depthwise(&self, a: &ConvArgs<'_, true>, input: &[i8]) -> Outputs<i8> {
            let mut out = vec![0i8; a.geom.output.len()];
            dot::depthwise_i8(a, input, &mut out, self.0);
            vec![("neon", out)]
        }
    }

    /// Every aarch64 path gives the scalar loops' bytes over 400 random
    /// layers.
    #[test]
    fn kernels_equal_the_scalar_ones() {
        if dot::Dot::detect().is_none() {
            std::eprintln!(
                "this core has no SDOT (or PICOCNN_NO_DOTPROD): its loops are not tested"
            );
        }
        let d = Neon::detect().expect("every aarch64 build here has NEON");
        crate::arch::simd_check::check_paths(&Arm(d), 13, 400);
    }
}
