//! The single-precision GEMM (`matrixmultiply`) and the row sums of bias
//! gradients.

use std::vec;

/// `c = a * b + beta * c` with arbitrary strides (row, column).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() as isize > (m as isize - 1) * rsa + (k as isize - 1) * csa);
    assert!(b.len() as isize > (k as isize - 1) * rsb + (n as isize - 1) * csb);
    assert!(c.len() as isize > (m as isize - 1) * rsc + (n as isize - 1) * csc);
    // SAFETY: the assertions above check that the slices cover the strided
    // m x k, k x n and m x n matrices (all strides are non-negative).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
}

/// `acc[j] += sum over rows of x[row][j]` for rows of `acc.len()` values.
pub(crate) fn sum_rows(x: &[f32], acc: &mut [f32]) {
    // Rows of at least 64 values vectorise; a few channels alone do not.
    let c = acc.len();
    let reps = 64usize.div_ceil(c.max(1));
    let mut wide = vec![0.0f32; c * reps];
    let mut rows = x.chunks_exact(wide.len());
    for row in &mut rows {
        for (a, &v) in wide.iter_mut().zip(row) {
            *a += v;
        }
    }
    for (a, &v) in wide.iter_mut().zip(rows.remainder()) {
        *a += v;
    }
    for part in wide.chunks_exact(c) {
        for (a, &v) in acc.iter_mut().zip(part) {
            *a += v;
        }
    }
}
