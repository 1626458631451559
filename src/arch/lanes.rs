//! Max pooling and the residual add written over arrays of lanes
//! (channels or elements side by side, each lane the portable loop's
//! arithmetic), for the compiler to vectorize on the widths the callers
//! compile them for: AVX2 on x86-64 without AVX-512, NEON on aarch64.
//! Lane by lane the operations are the portable ones, so the bits are too.

use super::{Clamp, Scale};

/// Channels (or elements) a pass takes.
const LANES: usize = 32;

/// One max-pooling window over `c` channels, 32 a pass: the clamp's floor,
/// then the maxima, then the ceiling, as the portable loop.
#[inline(always)]
pub(crate) fn max_window_i8(
    input: &[i8],
    w: usize,
    c: usize,
    [ylo, yhi, xlo, xhi]: [usize; 4],
    dst: &mut [i8],
    clamp: Clamp,
) {
    let mut ch = 0;
    while ch < c {
        let n = (c - ch).min(LANES);
        let mut m = [clamp.min; LANES];
        for y in ylo..yhi {
            for x in xlo..xhi {
                let tap = &input[(y * w + x) * c + ch..][..n];
                if let Ok(tap) = <&[i8; LANES]>::try_from(tap) {
                    for l in 0..LANES {
                        m[l] = m[l].max(tap[l]);
                    }
                } else {
                    for (m, &v) in m.iter_mut().zip(tap) {
                        *m = (*m).max(v);
                    }
                }
            }
        }
        for (d, &m) in dst[ch..ch + n].iter_mut().zip(&m) {
            *d = m.min(clamp.max);
        }
        ch += LANES;
    }
}

/// TensorFlow Lite's int8 `ADD` ([`crate::ops::add`]'s element path) over
/// `a` and `b` into `out`, 32 elements a pass.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_i8(
    a: &[i8],
    b: &[i8],
    out: &mut [i8],
    zp: [i32; 3],
    left: u32,
    [s1, s2, so]: [Scale; 3],
    clamp: Clamp,
) {
    let n = a.len().min(b.len()).min(out.len());
    let (a, b, out) = (&a[..n], &b[..n], &mut out[..n]);
    let one = |x: i8, y: i8| {
        let x = (x as i32 - zp[0]) << left;
        let y = (y as i32 - zp[1]) << left;
        let sum = s1.apply(x).wrapping_add(s2.apply(y));
        clamp.apply(so.apply(sum).wrapping_add(zp[2]))
    };
    let whole = n / LANES * LANES;
    for i in (0..whole).step_by(LANES) {
        let x: &[i8; LANES] = a[i..i + LANES].try_into().unwrap_or(&[0; LANES]);
        let y: &[i8; LANES] = b[i..i + LANES].try_into().unwrap_or(&[0; LANES]);
        let o: &mut [i8] = &mut out[i..i + LANES];
        let Ok(o) = <&mut [i8; LANES]>::try_from(o) else {
            continue;
        };
        for l in 0..LANES {
            o[l] = one(x[l], y[l]);
        }
    }
    for i in whole..n {
        out[i] = one(a[i], b[i]);
    }
}

/// [`add_i8`] in place: `a` holds the first input and the output.
#[inline(always)]
pub(crate) fn add_i8_in_place(
    a: &mut [i8],
    b: &[i8],
    zp: [i32; 3],
    left: u32,
    scales: [Scale; 3],
    clamp: Clamp,
) {
    let mut chunk = [0i8; LANES];
    let mut i = 0;
    while i < a.len() {
        let n = (a.len() - i).min(LANES);
        chunk[..n].copy_from_slice(&a[i..i + n]);
        add_i8(
            &chunk[..n],
            &b[i..],
            &mut a[i..i + n],
            zp,
            left,
            scales,
            clamp,
        );
        i += n;
    }
}
