//! What one block of the direct kernels computes, in plain Rust: the
//! reference that the vector kernels match bit for bit.

/// Output columns the direct kernels compute at once: four 8-lane vectors
/// of independent accumulators.
pub(crate) const COLS: usize = 32;

/// The forward block: `acc[j] = sum over taps of w * xp[base + off + j * step]`,
/// taps in order: the reference the vector kernels match.
pub(crate) fn taps_block_portable(
    xp: &[f32],
    base: usize,
    taps: &[(usize, f32)],
    step: usize,
    acc: &mut [f32; COLS],
) {
    *acc = [0.0; COLS];
    for &(off, w) in taps {
        let r = &xp[base + off..base + off + (COLS - 1) * step + 1];
        for (j, a) in acc.iter_mut().enumerate() {
            *a += w * r[j * step];
        }
    }
}

/// The weight-gradient block: `acc[j] += dy[d0 + r * ds + j] * xp[x0 + r * xs + j * step]`
/// for rows `r` in `0..n`: the reference the vector kernels match.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rows_block_portable(
    xp: &[f32],
    (x0, xs): (usize, usize),
    dy: &[f32],
    (d0, ds): (usize, usize),
    n: usize,
    step: usize,
    acc: &mut [f32; COLS],
) {
    for r in 0..n {
        let x = &xp[x0 + r * xs..x0 + r * xs + (COLS - 1) * step + 1];
        let d = &dy[d0 + r * ds..d0 + r * ds + COLS];
        for (j, a) in acc.iter_mut().enumerate() {
            *a += d[j] * x[j * step];
        }
    }
}
