//! The one-channel convolution (input channels 1, one group: the first
//! layer of a grayscale network) computed directly, without im2col: its
//! im2col matrix is `kh * kw` times the input and its GEMMs are too narrow
//! to run fast.

use super::block::{rows_block_portable, taps_block_portable, COLS};
use crate::ops::conv::Conv2d;
use std::vec;
use std::vec::Vec;

/// Each image is padded once into a plane wide enough for whole blocks of
/// [`COLS`] output columns.
struct Plane {
    /// Padded input rows and columns.
    hp: usize,
    wp: usize,
    /// Output columns rounded up to a multiple of `COLS`.
    ow_pad: usize,
}

impl Plane {
    fn new(geom: &Conv2d) -> Plane {
        let outs = geom.output_shape();
        let [kh, kw] = geom.kernel();
        let [sh, sw] = geom.stride();
        let [dh, dw] = geom.dilation();
        let ow_pad = outs.w.div_ceil(COLS) * COLS;
        Plane {
            hp: (outs.h - 1) * sh + (kh - 1) * dh + 1,
            wp: (ow_pad - 1) * sw + (kw - 1) * dw + 1,
            ow_pad,
        }
    }

    /// Copies image `x` (HxWx1) into the zero-padded plane `xp`.
    fn fill(&self, geom: &Conv2d, x: &[f32], xp: &mut Vec<f32>) {
        let ins = geom.input_shape();
        let [pt, pl] = geom.padding();
        xp.clear();
        xp.resize(self.hp * self.wp, 0.0);
        for iy in 0..ins.h.min(self.hp.saturating_sub(pt)) {
            let n = ins.w.min(self.wp.saturating_sub(pl));
            let row = (iy + pt) * self.wp + pl;
            xp[row..row + n].copy_from_slice(&x[iy * ins.w..iy * ins.w + n]);
        }
    }

    /// Where tap `(ky, kx)` starts reading for output row `oy`.
    fn start(&self, geom: &Conv2d, oy: usize, ky: usize, kx: usize) -> usize {
        let [sh, _] = geom.stride();
        let [dh, dw] = geom.dilation();
        (oy * sh + ky * dh) * self.wp + kx * dw
    }
}

/// `acc[j] = sum over taps of w * x[base + off + j * step]`, taps in order:
/// the forward kernel.
#[inline]
fn taps_block(xp: &[f32], base: usize, taps: &[(usize, f32)], step: usize, acc: &mut [f32; COLS]) {
    #[cfg(target_arch = "x86_64")]
    if step == 1 && super::simd::taps_block(&xp[base..], taps, acc) {
        return;
    }
    taps_block_portable(xp, base, taps, step, acc)
}

/// `acc[j] += dy[d0 + r * ds + j] * x[x0 + r * xs + j * step]` for rows
/// `r` in `0..n`: the weight-gradient kernel.
#[allow(clippy::too_many_arguments)]
#[inline]
fn rows_block(
    xp: &[f32],
    x: (usize, usize),
    dy: &[f32],
    d: (usize, usize),
    n: usize,
    step: usize,
    acc: &mut [f32; COLS],
) {
    #[cfg(target_arch = "x86_64")]
    if step == 1 && super::simd::rows_block(xp, x, dy, d, n, acc) {
        return;
    }
    rows_block_portable(xp, x, dy, d, n, step, acc)
}

/// True when [`forward`] computes this convolution.
pub(crate) fn is_single_channel(geom: &Conv2d) -> bool {
    geom.input_shape().c == 1 && geom.groups() == 1
}

/// `y = conv(x, w)` for `batch` images, without bias.
pub(crate) fn forward(geom: &Conv2d, x: &[f32], batch: usize, w: &[f32], y: &mut [f32]) {
    let (ins, outs) = (geom.input_shape(), geom.output_shape());
    let [kh, kw] = geom.kernel();
    let sw = geom.stride()[1];
    let pl = Plane::new(geom);
    let mut xp = Vec::new();
    // Per output channel, the taps as (offset from the row's start, weight).
    let taps: Vec<Vec<(usize, f32)>> = (0..outs.c)
        .map(|o| {
            (0..kh * kw)
                .map(|t| (pl.start(geom, 0, t / kw, t % kw), w[o * kh * kw + t]))
                .collect()
        })
        .collect();
    let mut acc = [0.0f32; COLS];
    let row_step = geom.stride()[0] * pl.wp;
    for n in 0..batch {
        pl.fill(geom, &x[n * ins.len()..(n + 1) * ins.len()], &mut xp);
        let yn = &mut y[n * outs.len()..(n + 1) * outs.len()];
        for (o, taps) in taps.iter().enumerate() {
            for oy in 0..outs.h {
                for c0 in (0..outs.w).step_by(COLS) {
                    taps_block(&xp, oy * row_step + c0 * sw, taps, sw, &mut acc);
                    let out = yn[(oy * outs.w + c0) * outs.c + o..].iter_mut();
                    for (v, &a) in out.step_by(outs.c).zip(&acc[..COLS.min(outs.w - c0)]) {
                        *v = a;
                    }
                }
            }
        }
    }
}

/// Weight gradient (and input gradient when `dx` is given) of [`forward`].
pub(crate) fn backward(
    geom: &Conv2d,
    x: &[f32],
    batch: usize,
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    mut dx: Option<&mut [f32]>,
) {
    let (ins, outs) = (geom.input_shape(), geom.output_shape());
    let [kh, kw] = geom.kernel();
    let taps = kh * kw;
    let sw = geom.stride()[1];
    let [pt, pleft] = geom.padding();
    let (oh, ow, owp) = (outs.h, outs.w, Plane::new(geom).ow_pad);
    let pl = Plane::new(geom);
    let mut xp = Vec::new();
    let mut dxp = vec![0.0f32; pl.hp * pl.wp];
    // dY of one image as channel planes, rows zero-padded to `owp`.
    let mut dyc = vec![0.0f32; outs.c * oh * owp];
    let row_step = geom.stride()[0] * pl.wp;
    // Per weight, column sums over the whole batch, added up at the end.
    let mut accs = vec![[0.0f32; COLS]; outs.c * taps];
    for n in 0..batch {
        pl.fill(geom, &x[n * ins.len()..(n + 1) * ins.len()], &mut xp);
        let dyn_ = &dy[n * outs.len()..(n + 1) * outs.len()];
        for oy in 0..oh {
            for ox in 0..ow {
                let d = &dyn_[(oy * ow + ox) * outs.c..(oy * ow + ox + 1) * outs.c];
                for (o, &v) in d.iter().enumerate() {
                    dyc[(o * oh + oy) * owp + ox] = v;
                }
            }
        }
        for o in 0..outs.c {
            for ky in 0..kh {
                for kx in 0..kw {
                    let acc = &mut accs[o * taps + ky * kw + kx];
                    for c0 in (0..owp).step_by(COLS) {
                        rows_block(
                            &xp,
                            (pl.start(geom, 0, ky, kx) + c0 * sw, row_step),
                            &dyc,
                            (o * oh * owp + c0, owp),
                            oh,
                            sw,
                            acc,
                        );
                    }
                }
            }
        }
        let Some(dx) = dx.as_deref_mut() else {
            continue;
        };
        dxp.fill(0.0);
        for o in 0..outs.c {
            for oy in 0..oh {
                let d = &dyc[(o * oh + oy) * owp..(o * oh + oy) * owp + ow];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = w[o * taps + ky * kw + kx];
                        let s = pl.start(geom, oy, ky, kx);
                        for (ox, &v) in d.iter().enumerate() {
                            dxp[s + ox * sw] += wv * v;
                        }
                    }
                }
            }
        }
        let dxn = &mut dx[n * ins.len()..(n + 1) * ins.len()];
        for iy in 0..ins.h.min(pl.hp.saturating_sub(pt)) {
            let m = ins.w.min(pl.wp.saturating_sub(pleft));
            let row = (iy + pt) * pl.wp + pleft;
            for (d, &v) in dxn[iy * ins.w..iy * ins.w + m]
                .iter_mut()
                .zip(&dxp[row..row + m])
            {
                *d += v;
            }
        }
    }
    for (g, acc) in dw.iter_mut().zip(&accs) {
        *g += acc.iter().sum::<f32>();
    }
}
