//! The direct kernels in x86 vectors: one body, instantiated for AVX
//! (8 lanes) and AVX-512F (16 lanes). The same arithmetic as the portable
//! code, lane for lane (a multiply then an add, no FMA), so the results are
//! its bits.

use super::block::COLS;
use core::arch::x86_64::*;

/// Defines the forward (`taps`) and weight-gradient (`rows`) kernels for one
/// vector width, with its intrinsics.
macro_rules! direct_kernels {
    ($feature:literal, $lanes:literal, $taps:ident, $rows:ident, $vec:ty,
     $zero:ident, $set1:ident, $load:ident, $store:ident, $add:ident, $mul:ident) => {
        #[target_feature(enable = $feature)]
        fn $taps(xp: &[f32], taps: &[(usize, f32)], acc: &mut [f32; COLS]) {
            let mut a = [$zero(); COLS / $lanes];
            for &(off, w) in taps {
                let r: &[f32; COLS] = xp[off..off + COLS].try_into().expect("COLS");
                let wv = $set1(w);
                for (k, ak) in a.iter_mut().enumerate() {
                    // SAFETY: `r` holds COLS floats.
                    let x = unsafe { $load(r.as_ptr().add($lanes * k)) };
                    *ak = $add(*ak, $mul(wv, x));
                }
            }
            for (k, ak) in a.iter().enumerate() {
                // SAFETY: `acc` holds COLS floats.
                unsafe { $store(acc.as_mut_ptr().add($lanes * k), *ak) };
            }
        }

        #[target_feature(enable = $feature)]
        fn $rows(
            xp: &[f32],
            (x0, xs): (usize, usize),
            dy: &[f32],
            (d0, ds): (usize, usize),
            n: usize,
            acc: &mut [f32; COLS],
        ) {
            let mut a: [$vec; COLS / $lanes] = core::array::from_fn(|k| {
                // SAFETY: `acc` holds COLS floats.
                unsafe { $load(acc.as_ptr().add($lanes * k)) }
            });
            for r in 0..n {
                let x: &[f32; COLS] = xp[x0 + r * xs..][..COLS].try_into().expect("COLS");
                let d: &[f32; COLS] = dy[d0 + r * ds..][..COLS].try_into().expect("COLS");
                for (k, ak) in a.iter_mut().enumerate() {
                    // SAFETY: `x` and `d` hold COLS floats.
                    let (xv, dv) = unsafe {
                        (
                            $load(x.as_ptr().add($lanes * k)),
                            $load(d.as_ptr().add($lanes * k)),
                        )
                    };
                    *ak = $add(*ak, $mul(dv, xv));
                }
            }
            for (k, ak) in a.iter().enumerate() {
                // SAFETY: `acc` holds COLS floats.
                unsafe { $store(acc.as_mut_ptr().add($lanes * k), *ak) };
            }
        }
    };
}

direct_kernels!(
    "avx",
    8,
    taps_256,
    rows_256,
    __m256,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_add_ps,
    _mm256_mul_ps
);
direct_kernels!(
    "avx512f",
    16,
    taps_512,
    rows_512,
    __m512,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_add_ps,
    _mm512_mul_ps
);

/// [`taps_block_portable`](super::block::taps_block_portable) at step 1 in
/// the widest vectors the CPU has; false when it has none.
#[inline]
pub(super) fn taps_block(xp: &[f32], taps: &[(usize, f32)], acc: &mut [f32; COLS]) -> bool {
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        unsafe { taps_512(xp, taps, acc) };
    } else if std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX.
        unsafe { taps_256(xp, taps, acc) };
    } else {
        return false;
    }
    true
}

/// [`rows_block_portable`](super::block::rows_block_portable) at step 1 in
/// the widest vectors the CPU has; false when it has none.
#[inline]
pub(super) fn rows_block(
    xp: &[f32],
    x: (usize, usize),
    dy: &[f32],
    d: (usize, usize),
    n: usize,
    acc: &mut [f32; COLS],
) -> bool {
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        unsafe { rows_512(xp, x, dy, d, n, acc) };
    } else if std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX.
        unsafe { rows_256(xp, x, dy, d, n, acc) };
    } else {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::block::{rows_block_portable, taps_block_portable};
    use super::*;

    type Rows = (usize, usize);

    /// One vector width against the portable kernels, bit for bit.
    fn check(
        name: &str,
        taps_v: impl Fn(&[f32], &[(usize, f32)], &mut [f32; COLS]),
        rows_v: impl Fn(&[f32], Rows, &[f32], Rows, usize, &mut [f32; COLS]),
    ) {
        let xp: std::vec::Vec<f32> = (0..400)
            .map(|i| ((i * 7919 % 211) as f32 - 100.0) / 37.0)
            .collect();
        let dy: std::vec::Vec<f32> = (0..300)
            .map(|i| ((i * 104_729 % 97) as f32 - 48.0) / 13.0)
            .collect();
        let taps: std::vec::Vec<(usize, f32)> = (0..25)
            .map(|t| (t * 11 % 60, (t as f32 - 12.0) / 7.0))
            .collect();
        let (mut a, mut b) = ([0.0f32; COLS], [0.0f32; COLS]);
        taps_v(&xp[5..], &taps, &mut a);
        taps_block_portable(&xp, 5, &taps, 1, &mut b);
        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "{name}");
        let (mut a, mut b) = ([0.5f32; COLS], [0.5f32; COLS]);
        rows_v(&xp, (3, 41), &dy, (2, 33), 7, &mut a);
        rows_block_portable(&xp, (3, 41), &dy, (2, 33), 7, 1, &mut b);
        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "{name}");
    }

    /// Every vector width this CPU has gives the portable kernels' bits.
    #[test]
    fn direct_kernels_match_the_portable_code() {
        if std::is_x86_feature_detected!("avx") {
            check(
                "avx",
                // SAFETY: the CPU has AVX.
                |x, t, a| unsafe { taps_256(x, t, a) },
                // SAFETY: the CPU has AVX.
                |x, xs, d, ds, n, a| unsafe { rows_256(x, xs, d, ds, n, a) },
            );
        }
        if std::is_x86_feature_detected!("avx512f") {
            check(
                "avx512f",
                // SAFETY: the CPU has AVX-512F.
                |x, t, a| unsafe { taps_512(x, t, a) },
                // SAFETY: the CPU has AVX-512F.
                |x, xs, d, ds, n, a| unsafe { rows_512(x, xs, d, ds, n, a) },
            );
        }
    }
}
