//! im2col (each output pixel's window as a row) and its adjoint col2im,
//! with the per-thread buffers they fill.

use crate::arch::taps;
use crate::ops::conv::Conv2d;
use std::vec::Vec;

std::thread_local! {
    /// The im2col and column-gradient buffers of this thread, kept from
    /// batch to batch.
    static SCRATCH: core::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { core::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` with this thread's column and column-gradient buffers.
pub(crate) fn with_columns<R>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>) -> R) -> R {
    SCRATCH.with(|s| {
        let (col, dcol) = &mut *s.borrow_mut();
        f(col, dcol)
    })
}

/// Calls `f(col_offset, x_offset, len)` for every run of `len` values that
/// im2col copies for group `g`: the columns at `col_offset` (counted over
/// all images' columns) take the input at `x_offset` (counted over all
/// images). Padding taps are skipped; they stay zero.
fn for_each_window_run(
    geom: &Conv2d,
    batch: usize,
    g: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    let (ins, outs) = (geom.input_shape(), geom.output_shape());
    let [kh, kw] = geom.kernel();
    let [sh, sw] = geom.stride();
    let [dh, dw] = geom.dilation();
    let [pt, pl] = geom.padding();
    let cpg = ins.c / geom.groups();
    let k = kh * kw * cpg;
    let per = outs.h * outs.w * k;
    for n in 0..batch {
        let (col0, x0_img) = (n * per, n * ins.len());
        for oy in 0..outs.h {
            let y0 = (oy * sh) as isize - pt as isize;
            let (ky_lo, ky_hi) = taps(y0, ins.h, kh, dh);
            for ox in 0..outs.w {
                let x0 = (ox * sw) as isize - pl as isize;
                let (kx_lo, kx_hi) = taps(x0, ins.w, kw, dw);
                let row = col0 + (oy * outs.w + ox) * k;
                for ky in ky_lo..ky_hi {
                    let iy = (y0 + (ky * dh) as isize) as usize;
                    if cpg == ins.c && dw == 1 {
                        // One run per kernel row.
                        let ix = (x0 + kx_lo as isize) as usize;
                        f(
                            row + (ky * kw + kx_lo) * cpg,
                            x0_img + (iy * ins.w + ix) * ins.c,
                            (kx_hi - kx_lo) * cpg,
                        );
                        continue;
                    }
                    for kx in kx_lo..kx_hi {
                        let ix = (x0 + (kx * dw) as isize) as usize;
                        f(
                            row + (ky * kw + kx) * cpg,
                            x0_img + (iy * ins.w + ix) * ins.c + g * cpg,
                            cpg,
                        );
                    }
                }
            }
        }
    }
}

/// True when every window lies inside the input (no padding cells).
fn windows_inside(geom: &Conv2d) -> bool {
    let (ins, outs) = (geom.input_shape(), geom.output_shape());
    let [kh, kw] = geom.kernel();
    let [sh, sw] = geom.stride();
    let [dh, dw] = geom.dilation();
    geom.padding() == [0, 0]
        && (outs.h - 1) * sh + (kh - 1) * dh < ins.h
        && (outs.w - 1) * sw + (kw - 1) * dw < ins.w
}

/// im2col of every output pixel of every image for group `g`:
/// `(batch * P) x K`, zero padding.
pub(crate) fn im2col(geom: &Conv2d, x: &[f32], batch: usize, g: usize, col: &mut Vec<f32>) {
    let outs = geom.output_shape();
    // Cells outside the input stay zero; when there are none, every cell is
    // written below and the buffer's old contents need no clearing.
    if !windows_inside(geom) {
        col.clear();
    }
    col.resize(batch * outs.h * outs.w * geom.filter_depth(), 0.0);
    for_each_window_run(geom, batch, g, |c, xi, len| {
        col[c..c + len].copy_from_slice(&x[xi..xi + len]);
    });
}

/// Adds the columns back into the input gradient (the adjoint of im2col).
pub(crate) fn col2im(geom: &Conv2d, col: &[f32], batch: usize, g: usize, dx: &mut [f32]) {
    for_each_window_run(geom, batch, g, |c, xi, len| {
        for (d, &v) in dx[xi..xi + len].iter_mut().zip(&col[c..c + len]) {
            *d += v;
        }
    });
}
